//! The page's side of the benchmark: its bytes on the wire, the time to its first greeting in
//! headless Chromium, and its wasm client beside connect-web's in one page.

use std::path::Path;

use crate::{page, process, setup::Tools, Result};

use super::PAGE_RUNS;

/// The page's script and wasm bytes: raw, gzip and brotli, as the server sends them.
pub(super) struct PageBytes {
    pub(super) raw: usize,
    pub(super) gzip: usize,
    pub(super) brotli: usize,
}

pub(super) fn page_bytes(dist: &Path) -> Result<PageBytes> {
    let mut totals = PageBytes {
        raw: 0,
        gzip: 0,
        brotli: 0,
    };
    for entry in std::fs::read_dir(dist).map_err(|e| format!("cannot read dist/: {e}"))? {
        let path = entry.map_err(|e| e.to_string())?.path();
        if !matches!(
            path.extension().and_then(|e| e.to_str()),
            Some("wasm" | "js")
        ) {
            continue;
        }
        let bytes = std::fs::read(&path).map_err(|e| e.to_string())?;
        totals.raw += bytes.len();
        totals.gzip += page::gzip_best(&bytes).len();
        totals.brotli += page::brotli_best(&bytes).len();
    }
    Ok(totals)
}

/// Median navigation-to-greeting time (and its parts) over `PAGE_RUNS` cold page loads.
pub(super) struct FirstGreeting {
    pub(super) first_greeting_ms: f64,
    pub(super) ready_ms: f64,
    pub(super) round_trip_ms: f64,
    /// The parts, each a median: the page's HTML received, its script and wasm received, from
    /// the click to the call's request sent, the request's own time, and from its response to
    /// the greeting shown.
    pub(super) html_ms: f64,
    pub(super) code_ms: f64,
    pub(super) click_to_request_ms: f64,
    pub(super) request_ms: f64,
    pub(super) response_to_shown_ms: f64,
    /// When the field of a plain-HTML page with no script appears, loaded the same way.
    pub(super) floor_ms: f64,
}

pub(super) fn first_greeting(
    tools: &Tools,
    root: &Path,
    url: &str,
    floor_url: &str,
) -> Result<FirstGreeting> {
    let output = process::output(
        tools
            .command("node")
            .current_dir(root.join("bench/browser"))
            .args([
                "first-greeting.mjs",
                &format!("{url}/"),
                &PAGE_RUNS.to_string(),
                floor_url,
            ]),
    )
    .ok_or("the first-greeting measurement failed")?;
    let report: serde_json::Value =
        serde_json::from_str(output.trim()).map_err(|e| format!("{e}: {output}"))?;
    let runs = report["runs"].as_array().ok_or("no runs")?;
    let median = |mut values: Vec<f64>| {
        values.sort_by(f64::total_cmp);
        values.get(values.len() / 2).copied().unwrap_or(f64::NAN)
    };
    let field = |field: &str| median(runs.iter().filter_map(|run| run[field].as_f64()).collect());
    let floor = report["floor"].as_array().ok_or("no floor")?;
    Ok(FirstGreeting {
        first_greeting_ms: field("firstGreeting"),
        ready_ms: field("ready"),
        round_trip_ms: field("roundTrip"),
        html_ms: field("html"),
        code_ms: field("code"),
        click_to_request_ms: field("clickToRequest"),
        request_ms: field("request"),
        response_to_shown_ms: field("responseToShown"),
        floor_ms: median(floor.iter().filter_map(|value| value.as_f64()).collect()),
    })
}

/// The page's wasm client and connect-web's, timed in the same page against our server.
pub(super) struct SideBySide {
    pub(super) wasm_unary_ms: f64,
    pub(super) connect_unary_ms: f64,
    pub(super) wasm_stream_rate: f64,
    pub(super) connect_stream_rate: f64,
}

/// Builds the bench page into target/bench/page: bench/browser's page and connect-web bundle, and
/// bench/wasm's client through wasm-bindgen.
pub(super) fn build_bench_page(tools: &Tools, root: &Path) -> Result<std::path::PathBuf> {
    let out = root.join("target/bench/page");
    process::run(tools.command("cargo").current_dir(root).args([
        "build",
        "--release",
        "--quiet",
        "--target",
        "wasm32-unknown-unknown",
        "-p",
        "greeter-bench-wasm",
    ]))?;
    process::run(
        tools
            .command("wasm-bindgen")
            .args(["--target", "web", "--out-dir"])
            .arg(&out)
            .arg(root.join("target/wasm32-unknown-unknown/release/greeter_bench_wasm.wasm")),
    )?;
    process::run(
        tools
            .command("node")
            .current_dir(root.join("bench/browser"))
            .arg("build-page.mjs")
            .arg(&out),
    )?;
    Ok(out)
}

/// Runs the side-by-side page, served at `url`, in headless Chromium.
pub(super) fn page_clients(tools: &Tools, root: &Path, url: &str) -> Result<SideBySide> {
    let output = process::output(
        tools
            .command("node")
            .current_dir(root.join("bench/browser"))
            .args(["page-clients.mjs", &format!("{url}/")]),
    )
    .ok_or("the side-by-side page failed")?;
    let report: serde_json::Value =
        serde_json::from_str(output.trim()).map_err(|e| format!("{e}: {output}"))?;
    let figure = |client: &str, field: &str| {
        report[client][field]
            .as_f64()
            .ok_or_else(|| format!("no {client}.{field} in {output}"))
    };
    Ok(SideBySide {
        wasm_unary_ms: figure("wasm", "unaryMs")?,
        connect_unary_ms: figure("connect", "unaryMs")?,
        wasm_stream_rate: figure("wasm", "streamPerSecond")?,
        connect_stream_rate: figure("connect", "streamPerSecond")?,
    })
}

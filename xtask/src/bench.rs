//! `cargo xtask bench`: where the server and the page stand, against peers and against the ceiling,
//! all from one run so that the ratios hold on a noisy machine.
//!
//! Everything is on loopback and bounded in time (about four minutes): release builds of our
//! server, a bare tonic + tonic-web server, a plain hyper ceiling (bench/), connect-node's server
//! (interop/connect-server.mjs) and the seed's Python grpcio server, loaded by h2load (Debian's
//! nghttp2-client) for unary calls and by bench's loadgen for streams; the page in headless
//! Chromium (playwright-core). The table goes to standard output and to BENCHMARKS.md, with the
//! date and the machine.

use std::{
    fmt::Write as _,
    io::Write as _,
    path::Path,
    process::{Command, Stdio},
    time::Duration,
};

use crate::{
    page,
    process::{self, free_port, wait_for_port, Background},
    setup::{self, Tools},
    workspace_root, Result,
};

/// Each h2load measurement: this long, after a warm-up of a second.
const LOAD_SECONDS: u64 = 3;
/// Rounds of unary measurements; each row reports its median.
const UNARY_ROUNDS: usize = 5;
/// Streams held open for the memory measurement.
const HELD_STREAMS: usize = 1000;
/// Page loads for the first-greeting time.
const PAGE_RUNS: usize = 10;

/// One unary measurement.
struct Unary {
    server: &'static str,
    protocol: Protocol,
    requests_per_second: f64,
    p50_ms: f64,
    p99_ms: f64,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Protocol {
    Native,
    GrpcWebHttp1,
    GrpcWebHttp2,
    /// The ceiling's plain HTTP/1.1 POST.
    Http1,
}

impl Protocol {
    fn label(self) -> &'static str {
        match self {
            Protocol::Native => "gRPC, HTTP/2 (c4 m10)",
            Protocol::GrpcWebHttp1 => "gRPC-Web, HTTP/1.1 (c8)",
            Protocol::GrpcWebHttp2 => "gRPC-Web, HTTP/2 (c4 m10)",
            Protocol::Http1 => "plain HTTP/1.1 (c8)",
        }
    }
}

pub fn run() -> Result {
    let tools = setup::tools(true)?;
    setup::debian_packages(&["nghttp2-client"])?;
    let root = workspace_root();
    page::build_release(&tools)?;
    // The release server embeds the page just built.
    process::run(tools.command("cargo").current_dir(&root).args([
        "build",
        "--release",
        "--quiet",
        "-p",
        "greeter-server",
        "-p",
        "greeter-bench",
        "-p",
        "greeter-cli",
    ]))?;
    for dir in ["interop", "bench/browser"] {
        process::run(tools.command("npm").current_dir(root.join(dir)).args([
            "ci",
            "--no-audit",
            "--no-fund",
        ]))?;
    }
    let venv = &tools.test.as_ref().expect("set up for tests").venv;
    let python_stubs = crate::interop::python_stubs(&venv.join("bin/python"), &root)?;
    let release = root.join("target/release");
    let body = root.join("target/bench/say-hello-world.bin");
    std::fs::create_dir_all(body.parent().unwrap()).map_err(|e| e.to_string())?;
    // HelloRequest{name: "world"} in a gRPC frame: flag, length, then the message.
    std::fs::write(&body, b"\x00\x00\x00\x00\x07\x0a\x05world").map_err(|e| e.to_string())?;

    let ours = Server::start(
        "greeter-server",
        Command::new(release.join("greeter-server")).env("RUST_LOG", "warn"),
        |port| vec!["--addr".into(), format!("127.0.0.1:{port}")],
    )?;
    let idle_rss = settle_and_read_rss(&ours)?;

    // Every unary row is measured once a round, the rows in turn, for UNARY_ROUNDS rounds; each
    // row reports its median round. A burst of noise on this shared machine then lands on one
    // round of every row rather than on the whole of one row.
    let bare = Server::start(
        "bare tonic + tonic-web",
        &mut Command::new(release.join("bare_tonic")),
        |port| vec![format!("127.0.0.1:{port}")],
    )?;
    let ceiling = Server::start(
        "plain hyper (ceiling)",
        &mut Command::new(release.join("ceiling")),
        |port| vec![format!("127.0.0.1:{port}")],
    )?;
    let connect = Server::start(
        "connect-node",
        tools
            .command("node")
            .arg(root.join("interop/connect-server.mjs")),
        |_| Vec::new(),
    )?;
    let grpcio = Server::start(
        "Python grpcio (the seed's)",
        Command::new(venv.join("bin/python"))
            .arg(root.join("interop/seed/greeter_server.py"))
            .env("PYTHONPATH", &python_stubs)
            .stdout(Stdio::null()),
        |_| Vec::new(),
    )?;
    let rows = [
        (&ours, Protocol::Native),
        (&ours, Protocol::GrpcWebHttp1),
        (&ours, Protocol::GrpcWebHttp2),
        (&bare, Protocol::Native),
        (&bare, Protocol::GrpcWebHttp1),
        (&bare, Protocol::GrpcWebHttp2),
        (&ceiling, Protocol::Http1),
        (&connect, Protocol::GrpcWebHttp1),
        (&grpcio, Protocol::Native),
    ];
    let mut rounds: Vec<Vec<Unary>> = rows.iter().map(|_| Vec::new()).collect();
    for round in 1..=UNARY_ROUNDS {
        for ((server, protocol), measured) in rows.iter().zip(&mut rounds) {
            let row = h2load(&root, server, *protocol, &body)?;
            println!(
                "xtask: round {round}: {} over {}: {:.0} req/s",
                row.server,
                protocol.label(),
                row.requests_per_second
            );
            measured.push(row);
        }
    }
    let unary = rounds.into_iter().map(median_round).collect();
    drop((bare, ceiling, connect, grpcio));

    let streaming = [
        ("gRPC, HTTP/2", "native"),
        ("gRPC-Web, HTTP/1.1", "grpc-web"),
        ("gRPC over WebSocket (grpc-websockets)", "websocket"),
    ]
    .into_iter()
    .map(|(label, transport)| stream_rate(&release, &ours, transport).map(|rate| (label, rate)))
    .collect::<Result<Vec<_>>>()?;
    let held_rss = rss_with_open_streams(&release, &ours, false)?;
    let held_websocket_rss = rss_with_open_streams(&release, &ours, true)?;
    drop(ours);

    let page_bytes = page_bytes(&root.join("dist"))?;
    // The bench page (the two clients side by side, and the plain-HTML floor), from our server.
    let bench_page = build_bench_page(&tools, &root)?;
    let bench_server = Server::start(
        "greeter-server",
        Command::new(release.join("greeter-server")).env("RUST_LOG", "warn"),
        |port| {
            vec![
                "--addr".into(),
                format!("127.0.0.1:{port}"),
                "--static-dir".into(),
                bench_page.display().to_string(),
            ]
        },
    )?;
    let first_greeting = {
        let ours = Server::start(
            "greeter-server",
            Command::new(release.join("greeter-server")).env("RUST_LOG", "warn"),
            |port| vec!["--addr".into(), format!("127.0.0.1:{port}")],
        )?;
        first_greeting(
            &tools,
            &root,
            &ours.url,
            &format!("{}/floor.html", bench_server.url),
        )?
    };
    let side_by_side = page_clients(&tools, &root, &bench_server.url)?;

    let report = Report {
        unary,
        streaming,
        idle_rss,
        held_rss,
        held_websocket_rss,
        page_bytes,
        first_greeting,
        side_by_side,
    };
    let table = report.render();
    println!("\n{table}");
    let document = format!(
        "# Benchmarks\n\n`cargo xtask bench`, {date}, on {machine}. All figures from one run; \
         load generators and servers share the machine, so the ratios matter more than the \
         absolute numbers. greeter-server runs with its defaults but `RUST_LOG=warn` (no log line \
         per call), so that the difference from the bare tonic server is its layers alone.\n\n{table}",
        date = process::output(Command::new("date").args(["-u", "+%Y-%m-%d %H:%M UTC"]))
            .unwrap_or_default()
            .trim(),
        machine = machine(),
    );
    std::fs::write(root.join("BENCHMARKS.md"), document)
        .map_err(|e| format!("cannot write BENCHMARKS.md: {e}"))?;
    println!("xtask: written to BENCHMARKS.md");
    Ok(())
}

/// A server under measurement, on a free loopback port; stopped when dropped.
struct Server {
    name: &'static str,
    port: u16,
    url: String,
    process: Background,
}

impl Server {
    /// Starts `command` with the arguments `args(port)` gives, and `INTEROP_PORT` and
    /// `GREETER_ADDR` set for the servers that read those instead.
    fn start(
        name: &'static str,
        command: &mut Command,
        args: impl FnOnce(u16) -> Vec<String>,
    ) -> Result<Self> {
        let port = free_port()?;
        command
            .args(args(port))
            .env("INTEROP_PORT", port.to_string())
            .env("GREETER_ADDR", format!("127.0.0.1:{port}"));
        let mut process = Background::start(command)?;
        wait_for_port(port, Duration::from_secs(30), &mut process)?;
        Ok(Self {
            name,
            port,
            url: format!("http://127.0.0.1:{port}"),
            process,
        })
    }

    /// The server's resident set size now, and at its peak, in KiB.
    fn rss_kib(&self) -> Result<(u64, u64)> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.process.pid()))
            .map_err(|e| format!("cannot read {}'s memory: {e}", self.name))?;
        let field = |name: &str| {
            status
                .lines()
                .find_map(|line| line.strip_prefix(name))
                .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
                .ok_or_else(|| format!("no {name} in /proc/PID/status"))
        };
        Ok((field("VmRSS:")?, field("VmHWM:")?))
    }
}

/// The round with the median rate, with that round's latencies.
fn median_round(mut rounds: Vec<Unary>) -> Unary {
    rounds.sort_by(|a, b| a.requests_per_second.total_cmp(&b.requests_per_second));
    rounds.swap_remove(rounds.len() / 2)
}

/// Checks that one call gets its greeting, then loads the server with h2load.
fn h2load(root: &Path, server: &Server, protocol: Protocol, body: &Path) -> Result<Unary> {
    verify_greeting(root, server, protocol, body)?;
    let log = root.join("target/bench/h2load.log");
    // h2load appends to its log.
    let _ = std::fs::remove_file(&log);
    let path = match protocol {
        Protocol::Http1 => "/",
        _ => "/hello.Greeter/SayHello",
    };
    let mut command = Command::new("h2load");
    command
        .arg("-D")
        .arg(LOAD_SECONDS.to_string())
        .args(["--warm-up-time", "1"])
        .arg("-d")
        .arg(body)
        .arg("--log-file")
        .arg(&log);
    match protocol {
        Protocol::Native => command.args([
            "-c4",
            "-m10",
            "-H",
            "content-type: application/grpc",
            "-H",
            "te: trailers",
        ]),
        Protocol::GrpcWebHttp2 => command.args([
            "-c4",
            "-m10",
            "-H",
            "content-type: application/grpc-web+proto",
            "-H",
            "x-grpc-web: 1",
        ]),
        Protocol::GrpcWebHttp1 | Protocol::Http1 => command.args([
            "--h1",
            "-c8",
            "-H",
            "content-type: application/grpc-web+proto",
            "-H",
            "x-grpc-web: 1",
        ]),
    };
    command.arg(format!("{}{path}", server.url));
    let output = process::output(&mut command)
        .ok_or_else(|| format!("h2load against {} failed", server.name))?;
    // "requests: N total, N started, N done, N succeeded, 0 failed, 0 errored, 0 timeout"
    let requests = output
        .lines()
        .find(|line| line.starts_with("requests:"))
        .ok_or_else(|| format!("h2load printed no request counts:\n{output}"))?;
    let count = |what: &str| {
        requests
            .split(',')
            .find(|part| part.trim().ends_with(what))
            .and_then(|part| {
                part.split_whitespace()
                    .find_map(|word| word.parse::<u64>().ok())
            })
            .unwrap_or(u64::MAX)
    };
    // "finished in 5.00s, 57000.00 req/s, 3.1MB/s": the measurement period, warm-up excluded.
    let requests_per_second = output
        .lines()
        .find_map(|line| line.strip_prefix("finished in "))
        .and_then(|rest| rest.split(", ").nth(1))
        .and_then(|rate| rate.strip_suffix(" req/s"))
        .and_then(|rate| rate.parse::<f64>().ok())
        .ok_or_else(|| format!("h2load printed no rate:\n{output}"))?;
    if count("failed") != 0 || count("errored") != 0 || count("timeout") != 0 {
        return Err(format!(
            "{} over {}: not every request succeeded: {requests}",
            server.name,
            protocol.label()
        ));
    }
    let mut durations_us: Vec<u64> = std::fs::read_to_string(&log)
        .map_err(|e| format!("cannot read the h2load log: {e}"))?
        .lines()
        .filter_map(|line| line.split('\t').nth(2)?.parse().ok())
        .collect();
    durations_us.sort_unstable();
    if durations_us.is_empty() {
        return Err(format!("{}: h2load logged no requests", server.name));
    }
    let percentile = |p: f64| {
        let index =
            ((durations_us.len() as f64 * p).ceil() as usize).clamp(1, durations_us.len()) - 1;
        durations_us[index] as f64 / 1000.0
    };
    Ok(Unary {
        server: server.name,
        protocol,
        requests_per_second,
        p50_ms: percentile(0.50),
        p99_ms: percentile(0.99),
    })
}

/// One call before the load, checked for its greeting: h2load counts HTTP statuses only, and a
/// gRPC error is an HTTP 200.
fn verify_greeting(root: &Path, server: &Server, protocol: Protocol, body: &Path) -> Result {
    let expect = |output: Option<String>, wanted: &str| match output {
        Some(text) if text.contains(wanted) => Ok(()),
        other => Err(format!(
            "{} over {}: expected {wanted:?} in the answer, got {other:?}",
            server.name,
            protocol.label()
        )),
    };
    let address = format!("127.0.0.1:{}", server.port);
    match protocol {
        Protocol::Native => expect(
            process::output(Command::new(root.join("target/release/greeter")).args([
                "--addr",
                &address,
                "say-hello",
                "--name",
                "world",
            ])),
            "Hello, world",
        ),
        Protocol::GrpcWebHttp1 | Protocol::GrpcWebHttp2 => {
            let version = if protocol == Protocol::GrpcWebHttp2 {
                "--http2-prior-knowledge"
            } else {
                "--http1.1"
            };
            expect(
                process::output(Command::new("curl").args([
                    "-s",
                    version,
                    "--data-binary",
                    &format!("@{}", body.display()),
                    "-H",
                    "content-type: application/grpc-web+proto",
                    "-H",
                    "x-grpc-web: 1",
                    &format!("{}/hello.Greeter/SayHello", server.url),
                ]))
                .map(|answer| answer.replace('\r', "")),
                "Hello, world",
            )?;
            Ok(())
        }
        Protocol::Http1 => expect(
            process::output(Command::new("curl").args(["-s", "-d", "x", &server.url])),
            "Hello, world",
        ),
    }
}

/// Server-streaming messages per second received by 4 callers over `transport` for 5 s.
fn stream_rate(release: &Path, server: &Server, transport: &str) -> Result<f64> {
    let output = process::output(Command::new(release.join("loadgen")).args([
        "stream-rate",
        "--url",
        &server.url,
        "--transport",
        transport,
        "--streams",
        "4",
        "--seconds",
        "5",
    ]))
    .ok_or_else(|| format!("loadgen stream-rate over {transport} failed"))?;
    let field = |name: &str| {
        output
            .split_whitespace()
            .find_map(|word| word.strip_prefix(name))
            .and_then(|value| value.parse::<f64>().ok())
            .ok_or_else(|| format!("loadgen printed no {name} in {output:?}"))
    };
    Ok(field("messages=")? / field("seconds=")?)
}

/// The resident set a second after start-up, before any call: the server idle.
fn settle_and_read_rss(server: &Server) -> Result<u64> {
    // The port opens before the server has compressed its page; idle means serving it.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while process::output(Command::new("curl").args(["-sf", "-o", "/dev/null", &server.url]))
        .is_none()
    {
        if std::time::Instant::now() > deadline {
            return Err(format!(
                "{} did not serve its page within 30 s",
                server.name
            ));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_secs(1));
    Ok(server.rss_kib()?.0)
}

/// The server's RSS just before, and now and peak while `HELD_STREAMS` calls are open on it:
/// server streams, or idle `Chat` calls over WebSockets.
struct HeldRss {
    before: u64,
    now: u64,
    peak: u64,
}

fn rss_with_open_streams(release: &Path, server: &Server, websocket: bool) -> Result<HeldRss> {
    let before = server.rss_kib()?.0;
    let mut holder = Command::new(release.join("loadgen"))
        .args([
            "hold-streams",
            "--url",
            &server.url,
            "--streams",
            &HELD_STREAMS.to_string(),
        ])
        .args(websocket.then_some("--websocket"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start loadgen: {e}"))?;
    let mut stdout = std::io::BufReader::new(holder.stdout.take().expect("piped"));
    let mut line = String::new();
    std::io::BufRead::read_line(&mut stdout, &mut line).map_err(|e| e.to_string())?;
    let measured = if line.trim() == format!("ready {HELD_STREAMS}") {
        server
            .rss_kib()
            .map(|(now, peak)| HeldRss { before, now, peak })
    } else {
        Err(format!(
            "loadgen could not open {HELD_STREAMS} streams: {line:?}"
        ))
    };
    // Closing its standard input ends the holder, and with it the streams.
    drop(holder.stdin.take());
    let _ = holder.wait();
    measured
}

/// The page's script and wasm bytes: raw, gzip and brotli, as the server sends them.
struct PageBytes {
    raw: usize,
    gzip: usize,
    brotli: usize,
}

fn page_bytes(dist: &Path) -> Result<PageBytes> {
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
        totals.gzip += page::gzip_len(&bytes);
        totals.brotli += brotli_len(&bytes);
    }
    Ok(totals)
}

fn brotli_len(bytes: &[u8]) -> usize {
    let mut compressed = Vec::new();
    {
        let mut writer = brotli::CompressorWriter::new(&mut compressed, 4096, 11, 22);
        writer.write_all(bytes).expect("writing to memory");
    }
    compressed.len()
}

/// Median navigation-to-greeting time (and its parts) over `PAGE_RUNS` cold page loads.
struct FirstGreeting {
    first_greeting_ms: f64,
    ready_ms: f64,
    round_trip_ms: f64,
    /// When the field of a plain-HTML page with no script appears, loaded the same way.
    floor_ms: f64,
}

fn first_greeting(tools: &Tools, root: &Path, url: &str, floor_url: &str) -> Result<FirstGreeting> {
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
        floor_ms: median(floor.iter().filter_map(|value| value.as_f64()).collect()),
    })
}

/// The page's wasm client and connect-web's, timed in the same page against our server.
struct SideBySide {
    wasm_unary_ms: f64,
    connect_unary_ms: f64,
    wasm_stream_rate: f64,
    connect_stream_rate: f64,
}

/// Builds the bench page into target/bench/page: bench/browser's page and connect-web bundle, and
/// bench/wasm's client through wasm-bindgen.
fn build_bench_page(tools: &Tools, root: &Path) -> Result<std::path::PathBuf> {
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
fn page_clients(tools: &Tools, root: &Path, url: &str) -> Result<SideBySide> {
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

struct Report {
    unary: Vec<Unary>,
    streaming: Vec<(&'static str, f64)>,
    idle_rss: u64,
    held_rss: HeldRss,
    held_websocket_rss: HeldRss,
    page_bytes: PageBytes,
    first_greeting: FirstGreeting,
    side_by_side: SideBySide,
}

impl Report {
    fn rate(&self, server: &str, protocol: Protocol) -> f64 {
        self.unary
            .iter()
            .find(|row| row.server.starts_with(server) && row.protocol == protocol)
            .map_or(f64::NAN, |row| row.requests_per_second)
    }

    fn render(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "## Unary `SayHello` (h2load, {LOAD_SECONDS} s after 1 s of warm-up; the median of {UNARY_ROUNDS} interleaved rounds)\n"
        );
        let _ = writeln!(out, "| server | protocol | req/s | p50 ms | p99 ms |");
        let _ = writeln!(out, "|---|---|---:|---:|---:|");
        for row in &self.unary {
            let _ = writeln!(
                out,
                "| {} | {} | {:.0} | {:.2} | {:.2} |",
                row.server,
                row.protocol.label(),
                row.requests_per_second,
                row.p50_ms,
                row.p99_ms
            );
        }
        let _ = writeln!(
            out,
            "\n## Server streaming (`SayHelloStream`, 1,000 greetings a call, 4 callers, 5 s)\n"
        );
        let _ = writeln!(out, "| server | protocol | messages/s |");
        let _ = writeln!(out, "|---|---|---:|");
        for (protocol, rate) in &self.streaming {
            let _ = writeln!(out, "| greeter-server | {protocol} | {rate:.0} |");
        }
        let _ = writeln!(out, "\n## Memory and page\n");
        let _ = writeln!(out, "| measurement | value |");
        let _ = writeln!(out, "|---|---:|");
        let _ = writeln!(out, "| server RSS, idle | {:.1} MB |", mb(self.idle_rss));
        let _ = writeln!(
            out,
            "| server RSS, {HELD_STREAMS} open server streams (peak) | {:.1} MB ({:.1} MB) |",
            mb(self.held_rss.now),
            mb(self.held_rss.peak)
        );
        let websockets = &self.held_websocket_rss;
        let _ = writeln!(
            out,
            "| server RSS, {HELD_STREAMS} idle WebSocket calls (peak; just before) | {:.1} MB ({:.1} MB; {:.1} MB) |",
            mb(websockets.now),
            mb(websockets.peak),
            mb(websockets.before)
        );
        let page = &self.page_bytes;
        let _ = writeln!(
            out,
            "| page (wasm + JS): raw / gzip / brotli | {} / {} / {} B |",
            page.raw, page.gzip, page.brotli
        );
        let first = &self.first_greeting;
        let _ = writeln!(
            out,
            "| navigation → first greeting, headless Chromium, cold, median of {PAGE_RUNS} | {:.1} ms (app ready {:.1} ms + round trip {:.1} ms) |",
            first.first_greeting_ms, first.ready_ms, first.round_trip_ms
        );
        let _ = writeln!(
            out,
            "| the same field on a plain-HTML page with no script (this browser's floor), median of {PAGE_RUNS} | {:.1} ms |",
            first.floor_ms
        );
        let sides = &self.side_by_side;
        let _ = writeln!(
            out,
            "\n## In the page: the page's wasm client and connect-web, side by side (headless Chromium, same page, same server)\n"
        );
        let _ = writeln!(
            out,
            "| client | unary round trip | server stream received |"
        );
        let _ = writeln!(out, "|---|---:|---:|");
        let _ = writeln!(
            out,
            "| greeter-web (wasm, tonic-web-wasm-client) | {:.2} ms | {:.0} messages/s |",
            sides.wasm_unary_ms, sides.wasm_stream_rate
        );
        let _ = writeln!(
            out,
            "| connect-web 2.1 (JS) | {:.2} ms | {:.0} messages/s |",
            sides.connect_unary_ms, sides.connect_stream_rate
        );

        let ours_h1 = self.rate("greeter-server", Protocol::GrpcWebHttp1);
        let ours_native = self.rate("greeter-server", Protocol::Native);
        let ceiling = self.rate("plain hyper", Protocol::Http1);
        let layer_cost = [
            Protocol::Native,
            Protocol::GrpcWebHttp1,
            Protocol::GrpcWebHttp2,
        ]
        .into_iter()
        .map(|protocol| {
            1.0 - self.rate("greeter-server", protocol) / self.rate("bare tonic", protocol)
        })
        .fold(f64::NEG_INFINITY, f64::max);
        let connect = self.rate("connect-node", Protocol::GrpcWebHttp1);
        let grpcio = self.rate("Python grpcio", Protocol::Native);
        let websocket_growth = self
            .held_websocket_rss
            .now
            .saturating_sub(self.held_websocket_rss.before);
        let targets: Vec<(String, String, Option<bool>)> = vec![
            (
                "gRPC-Web over HTTP/1.1 ≥ 0.8 × the plain-hyper ceiling".into(),
                // Three places, so that a ratio at the threshold reads as what decided it.
                format!("{:.3} ×", ours_h1 / ceiling),
                Some(ours_h1 / ceiling >= 0.8),
            ),
            (
                "our layers cost ≤ 10 % against bare tonic (worst protocol)".into(),
                format!("{:.1} %", layer_cost * 100.0),
                Some(layer_cost <= 0.10),
            ),
            (
                "≥ 15 × connect-node's gRPC-Web req/s".into(),
                format!("{:.1} ×", ours_h1 / connect),
                Some(ours_h1 / connect >= 15.0),
            ),
            (
                "≥ 8 × grpcio's native req/s".into(),
                format!("{:.1} ×", ours_native / grpcio),
                Some(ours_native / grpcio >= 8.0),
            ),
            (
                "page ≤ 110 KB brotli (wasm + JS), all four RPC kinds".into(),
                format!("{:.1} KB", page.brotli as f64 / 1000.0),
                Some(page.brotli <= 110_000),
            ),
            (
                "first greeting ≤ 100 ms after navigation".into(),
                format!("{:.1} ms", first.first_greeting_ms),
                Some(first.first_greeting_ms <= 100.0),
            ),
            (
                "page unary round trip, wasm stub / connect-web ≤ 1.1".into(),
                format!("{:.3}", sides.wasm_unary_ms / sides.connect_unary_ms),
                Some(sides.wasm_unary_ms / sides.connect_unary_ms <= 1.1),
            ),
            (
                "page streaming receive rate ≥ connect-web's".into(),
                format!(
                    "{:.2} ×",
                    sides.wasm_stream_rate / sides.connect_stream_rate
                ),
                Some(sides.wasm_stream_rate >= sides.connect_stream_rate),
            ),
            (
                "RSS ≤ 20 MB idle".into(),
                format!("{:.1} MB", mb(self.idle_rss)),
                Some(mb(self.idle_rss) <= 20.0),
            ),
            (
                format!("RSS ≤ 64 MB with {HELD_STREAMS} open streams"),
                format!("{:.1} MB", mb(self.held_rss.now)),
                Some(mb(self.held_rss.now) <= 64.0),
            ),
            (
                format!("RSS ≤ 32 MB over idle with {HELD_STREAMS} idle WebSocket calls"),
                format!("+{:.1} MB", mb(websocket_growth)),
                Some(mb(websocket_growth) <= 32.0),
            ),
        ];
        let _ = writeln!(out, "\n## Targets\n");
        let _ = writeln!(out, "| target | measured | met |");
        let _ = writeln!(out, "|---|---:|---|");
        for (target, measured, met) in targets {
            let met = match met {
                Some(true) => "yes",
                Some(false) => "**no**",
                None => "not measured",
            };
            let _ = writeln!(out, "| {target} | {measured} | {met} |");
        }
        out
    }
}

fn mb(kib: u64) -> f64 {
    kib as f64 * 1024.0 / 1_000_000.0
}

/// The CPU, the number of cores and the memory, as /proc tells them.
fn machine() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|line| line.strip_prefix("model name"))
        .map(|rest| rest.trim_start_matches([' ', '\t', ':']).to_owned())
        .unwrap_or_else(|| "an unknown CPU".to_owned());
    let cores = cpuinfo
        .lines()
        .filter(|line| line.starts_with("processor"))
        .count();
    let memory_gib = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find_map(|line| line.strip_prefix("MemTotal:"))
                .and_then(|rest| {
                    rest.trim()
                        .trim_end_matches("kB")
                        .trim()
                        .parse::<f64>()
                        .ok()
                })
        })
        .map_or(0.0, |kib| kib / 1024.0 / 1024.0);
    format!("{model}, {cores} cores, {memory_gib:.0} GiB")
}

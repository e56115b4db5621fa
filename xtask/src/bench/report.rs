//! The benchmark's report: the figures of one run as the Markdown table printed and kept in
//! BENCHMARKS.md, with each target and whether it is met.

use std::fmt::Write as _;

use super::{
    balanced::ROLL_LOAD_SECONDS,
    instructions::{Instructions, COUNTED_CALLS},
    DuringRoll, FirstGreeting, HeldRss, PageBytes, Protocol, SideBySide, Unary, HELD_STREAMS,
    LOAD_SECONDS, PAGE_RUNS, UNARY_ROUNDS,
};

/// Every figure of one run, and the table they make.
pub(super) struct Report {
    pub(super) unary: Vec<Unary>,
    pub(super) streaming: Vec<(&'static str, f64)>,
    pub(super) idle_rss: u64,
    pub(super) held_rss: HeldRss,
    pub(super) held_websocket_rss: HeldRss,
    pub(super) page_bytes: PageBytes,
    pub(super) first_greeting: FirstGreeting,
    pub(super) side_by_side: SideBySide,
    pub(super) during_roll: DuringRoll,
    pub(super) instructions: Vec<Instructions>,
}

impl Report {
    fn rate(&self, server: &str, protocol: Protocol) -> f64 {
        self.unary
            .iter()
            .find(|row| row.server.starts_with(server) && row.protocol == protocol)
            .map_or(f64::NAN, |row| row.requests_per_second)
    }

    fn instructions(&self, server: &str, protocol: Protocol) -> f64 {
        self.instructions
            .iter()
            .find(|row| row.server.starts_with(server) && row.protocol == protocol)
            .map_or(f64::NAN, |row| row.per_call)
    }

    pub(super) fn render(&self) -> String {
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
            "\n## Instructions per unary call (callgrind, {COUNTED_CALLS} calls after a warm-up, user space, the same load's shape)\n"
        );
        let _ = writeln!(
            out,
            "The count does not move with the machine's load, so these ratios hold where the req/s above swing between runs.\n"
        );
        let _ = writeln!(
            out,
            "| server | protocol | instructions per call | against bare tonic |"
        );
        let _ = writeln!(out, "|---|---|---:|---:|");
        for row in &self.instructions {
            let _ = writeln!(
                out,
                "| {} | {} | {:.0} | {:.3} × |",
                row.server,
                row.protocol.label(),
                row.per_call,
                row.per_call / self.instructions("bare tonic", row.protocol)
            );
        }
        let roll = &self.during_roll;
        let _ = writeln!(
            out,
            "\n## A rolling restart through HAProxy (3 replicas, gRPC, HTTP/2 (c4 m10), {ROLL_LOAD_SECONDS} s of load each)\n"
        );
        let _ = writeln!(
            out,
            "| the cluster | req/s | p50 ms | p99 ms | p99 against left alone | requests failed (h2load) |"
        );
        let _ = writeln!(out, "|---|---:|---:|---:|---:|---:|");
        let _ = writeln!(
            out,
            "| left alone | {:.0} | {:.2} | {:.2} | 1 × | — |",
            roll.steady.requests_per_second, roll.steady.p50_ms, roll.steady.p99_ms
        );
        let _ = writeln!(
            out,
            "| every replica restarted once, one at a time (the roll took {:.1} s) | {:.0} | {:.2} | {:.2} | {:.2} × | {} |",
            roll.roll_took.as_secs_f64(),
            roll.rolling.requests_per_second,
            roll.rolling.p50_ms,
            roll.rolling.p99_ms,
            roll.rolling.p99_ms / roll.steady.p99_ms,
            roll.failed
        );
        let _ = writeln!(
            out,
            "\nh2load counts HTTP errors, reset streams and timeouts; it does not read gRPC trailers. \
             That no call fails during a roll, whatever its status, is what the cluster tests assert."
        );
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
        let _ = writeln!(
            out,
            "| … of which: HTML received / script and wasm received / app ready (medians) | {:.1} / {:.1} / {:.1} ms |",
            first.html_ms, first.code_ms, first.ready_ms
        );
        let _ = writeln!(
            out,
            "| … and of the round trip: click → request sent / request / response → greeting shown (medians) | {:.1} / {:.1} / {:.1} ms |",
            first.click_to_request_ms, first.request_ms, first.response_to_shown_ms
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
        let layer_instructions = [Protocol::Native, Protocol::GrpcWebHttp1]
            .into_iter()
            .map(|protocol| {
                self.instructions("greeter-server", protocol)
                    / self.instructions("bare tonic", protocol)
                    - 1.0
            })
            .fold(f64::NEG_INFINITY, f64::max);
        let connect = self.rate("connect-node", Protocol::GrpcWebHttp1);
        let connect_rust_h1 = self.rate("connect-rust", Protocol::GrpcWebHttp1);
        let connect_rust_native = self.rate("connect-rust", Protocol::Native);
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
                "our layers cost ≤ 5 % against bare tonic (worst protocol)".into(),
                format!("{:.1} %", layer_cost * 100.0),
                Some(layer_cost <= 0.05),
            ),
            (
                "our layers cost ≤ 5 % against bare tonic in instructions per call (worst protocol)"
                    .into(),
                format!("{:.1} %", layer_instructions * 100.0),
                Some(layer_instructions <= 0.05),
            ),
            (
                "gRPC-Web over HTTP/1.1 ≥ connect-rust's".into(),
                format!("{:.3} ×", ours_h1 / connect_rust_h1),
                Some(ours_h1 >= connect_rust_h1),
            ),
            (
                "native gRPC ≥ connect-rust's".into(),
                format!("{:.3} ×", ours_native / connect_rust_native),
                Some(ours_native >= connect_rust_native),
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
                "first greeting ≤ 2.2 × the script-free floor (same browser, same run)".into(),
                format!("{:.2} ×", first.first_greeting_ms / first.floor_ms),
                Some(first.first_greeting_ms / first.floor_ms <= 2.2),
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
pub(super) fn machine() -> String {
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

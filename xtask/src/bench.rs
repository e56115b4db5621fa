//! `cargo xtask bench`: where the server and the page stand, against peers and against the ceiling,
//! all from one run so that the ratios hold on a noisy machine.
//!
//! Everything is on loopback and bounded in time (about eight minutes): release builds of our
//! server, alone and as replicas behind HAProxy (deploy/haproxy.cfg, one replica and three, and
//! three during a rolling restart), a bare tonic + tonic-web server, a plain hyper ceiling
//! (bench/), connect-node's server (interop/connect-server.mjs) and the seed's Python grpcio
//! server, loaded by h2load (Debian's nghttp2-client) for unary calls and by bench's loadgen for
//! streams; the page in headless Chromium (playwright-core). The table goes to standard output
//! and to BENCHMARKS.md, with the date and the machine.

use std::{
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::Duration,
};

mod balanced;
mod browser;
mod instructions;
mod report;
mod server;

use balanced::{Balanced, DuringRoll};
use browser::{
    build_bench_page, first_greeting, page_bytes, page_clients, FirstGreeting, PageBytes,
    SideBySide,
};
use report::{machine, Report};
use server::{Server, Target, BARE_TONIC, CONNECT_RUST, GREETER_SERVER};

use crate::{page, process, setup, workspace_root, Result};

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
    /// The Connect protocol's unary POST (a bare protobuf body), over HTTP/1.1.
    ConnectHttp1,
    /// The ceiling's plain HTTP/1.1 POST.
    Http1,
}

impl Protocol {
    fn label(self) -> &'static str {
        match self {
            Protocol::Native => "gRPC, HTTP/2 (c4 m10)",
            Protocol::GrpcWebHttp1 => "gRPC-Web, HTTP/1.1 (c8)",
            Protocol::GrpcWebHttp2 => "gRPC-Web, HTTP/2 (c4 m10)",
            Protocol::ConnectHttp1 => "Connect, HTTP/1.1 (c8)",
            Protocol::Http1 => "plain HTTP/1.1 (c8)",
        }
    }
}

pub fn run() -> Result {
    let tools = setup::tools(true)?;
    setup::debian_packages(&["nghttp2-client", "valgrind"])?;
    let haproxy = setup::haproxy()?;
    let root = workspace_root();
    page::build_release_server(
        &tools,
        &["greeter-bench", "greeter-bench-connect-rust", "greeter-cli"],
    )?;
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
    let body = Bodies::write(&root.join("target/bench"))?;

    let ours = GREETER_SERVER.start(&release)?;
    let idle_rss = settle_and_read_rss(&ours)?;

    // Every unary row is measured once a round, the rows in turn, for UNARY_ROUNDS rounds; each
    // row reports its median round. A burst of noise on this shared machine then lands on one
    // round of every row rather than on the whole of one row.
    let bare = BARE_TONIC.start(&release)?;
    let ceiling = Server::start(
        "plain hyper (ceiling)",
        &mut Command::new(release.join("ceiling")),
        |port| vec![format!("127.0.0.1:{port}")],
    )?;
    let connect_rust = CONNECT_RUST.start(&release)?;
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
    // Our release server behind HAProxy (deploy/haproxy.cfg), one replica and three.
    let mut balanced = Balanced::start(&release, &haproxy, &root.join("target/bench/cluster"))?;
    let rows = [
        (ours.target(), Protocol::Native),
        (ours.target(), Protocol::GrpcWebHttp1),
        (ours.target(), Protocol::GrpcWebHttp2),
        (bare.target(), Protocol::Native),
        (bare.target(), Protocol::GrpcWebHttp1),
        (bare.target(), Protocol::GrpcWebHttp2),
        (ceiling.target(), Protocol::Http1),
        (connect_rust.target(), Protocol::Native),
        (connect_rust.target(), Protocol::GrpcWebHttp1),
        (connect_rust.target(), Protocol::GrpcWebHttp2),
        (connect_rust.target(), Protocol::ConnectHttp1),
        (connect.target(), Protocol::GrpcWebHttp1),
        (grpcio.target(), Protocol::Native),
        (balanced.one_replica(), Protocol::Native),
        (balanced.three_replicas(), Protocol::Native),
        (balanced.one_replica(), Protocol::GrpcWebHttp1),
        (balanced.three_replicas(), Protocol::GrpcWebHttp1),
    ];
    let mut rounds: Vec<Vec<Unary>> = rows.iter().map(|_| Vec::new()).collect();
    for round in 1..=UNARY_ROUNDS {
        for ((target, protocol), measured) in rows.iter().zip(&mut rounds) {
            let row = h2load(&root, target, *protocol, &body)?;
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
    drop((bare, ceiling, connect_rust, connect, grpcio));
    let during_roll = balanced.during_roll(&root, &body)?;
    drop(balanced);

    // The same three servers' paths again, each alone under callgrind: instructions per call.
    let mut instructions = Vec::new();
    for protocol in [Protocol::GrpcWebHttp1, Protocol::Native] {
        for server in [&GREETER_SERVER, &BARE_TONIC, &CONNECT_RUST] {
            instructions.push(instructions::per_call(
                &root, &release, server, protocol, &body,
            )?);
        }
    }

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
        during_roll,
        instructions,
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

/// The request bodies h2load sends: `HelloRequest{name: "world"}`, in a gRPC frame (flag, length,
/// then the message) for gRPC and gRPC-Web, and bare for the Connect protocol's unary POST.
struct Bodies {
    framed: PathBuf,
    bare: PathBuf,
}

impl Bodies {
    fn write(dir: &Path) -> Result<Self> {
        std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
        let bodies = Self {
            framed: dir.join("say-hello-world.grpc.bin"),
            bare: dir.join("say-hello-world.proto.bin"),
        };
        std::fs::write(&bodies.framed, b"\x00\x00\x00\x00\x07\x0a\x05world")
            .and_then(|()| std::fs::write(&bodies.bare, b"\x0a\x05world"))
            .map_err(|e| e.to_string())?;
        Ok(bodies)
    }

    fn for_protocol(&self, protocol: Protocol) -> &Path {
        match protocol {
            Protocol::ConnectHttp1 => &self.bare,
            _ => &self.framed,
        }
    }
}

/// The round with the median rate, with that round's latencies.
fn median_round(mut rounds: Vec<Unary>) -> Unary {
    rounds.sort_by(|a, b| a.requests_per_second.total_cmp(&b.requests_per_second));
    rounds.swap_remove(rounds.len() / 2)
}

/// Checks that one call gets its greeting, then loads the server with h2load for
/// [`LOAD_SECONDS`]; every request must succeed.
fn h2load(root: &Path, target: &Target, protocol: Protocol, body: &Bodies) -> Result<Unary> {
    verify_greeting(root, target, protocol, body)?;
    let (row, failed) = load(root, target, protocol, body, LOAD_SECONDS)?;
    match failed {
        0 => Ok(row),
        _ => Err(format!(
            "{} over {}: {failed} requests did not succeed",
            target.name,
            protocol.label()
        )),
    }
}

/// Loads `target` with h2load for `seconds` after a second of warm-up: the figures, and how many
/// requests failed (an HTTP error, a reset stream or a timeout; h2load does not read gRPC
/// trailers, so a gRPC error status is not counted).
fn load(
    root: &Path,
    target: &Target,
    protocol: Protocol,
    body: &Bodies,
    seconds: u64,
) -> Result<(Unary, u64)> {
    let log = root.join("target/bench/h2load.log");
    // h2load appends to its log.
    let _ = std::fs::remove_file(&log);
    let mut command = h2load_command(target, protocol, body);
    command
        .arg("-D")
        .arg(seconds.to_string())
        .args(["--warm-up-time", "1"])
        .arg("--log-file")
        .arg(&log);
    let output = process::output(&mut command)
        .ok_or_else(|| format!("h2load against {} failed", target.name))?;
    let count = |what: &str| request_count(&output, what);
    // "finished in 5.00s, 57000.00 req/s, 3.1MB/s": the measurement period, warm-up excluded.
    let requests_per_second = output
        .lines()
        .find_map(|line| line.strip_prefix("finished in "))
        .and_then(|rest| rest.split(", ").nth(1))
        .and_then(|rate| rate.strip_suffix(" req/s"))
        .and_then(|rate| rate.parse::<f64>().ok())
        .ok_or_else(|| format!("h2load printed no rate:\n{output}"))?;
    let failed = count("failed")
        .saturating_add(count("errored"))
        .saturating_add(count("timeout"));
    let mut durations_us: Vec<u64> = std::fs::read_to_string(&log)
        .map_err(|e| format!("cannot read the h2load log: {e}"))?
        .lines()
        .filter_map(|line| line.split('\t').nth(2)?.parse().ok())
        .collect();
    durations_us.sort_unstable();
    if durations_us.is_empty() {
        return Err(format!("{}: h2load logged no requests", target.name));
    }
    let percentile = |p: f64| {
        let index =
            ((durations_us.len() as f64 * p).ceil() as usize).clamp(1, durations_us.len()) - 1;
        durations_us[index] as f64 / 1000.0
    };
    let row = Unary {
        server: target.name,
        protocol,
        requests_per_second,
        p50_ms: percentile(0.50),
        p99_ms: percentile(0.99),
    };
    Ok((row, failed))
}

/// A count from h2load's summary line, "requests: N total, N started, N done, N succeeded,
/// 0 failed, 0 errored, 0 timeout": `what` is "succeeded", "failed", ...; `u64::MAX` when missing.
fn request_count(output: &str, what: &str) -> u64 {
    output
        .lines()
        .find_map(|line| line.strip_prefix("requests:"))
        .and_then(|requests| requests.split(',').find(|part| part.trim().ends_with(what)))
        .and_then(|part| {
            part.split_whitespace()
                .find_map(|word| word.parse::<u64>().ok())
        })
        .unwrap_or(u64::MAX)
}

/// h2load sending `protocol`'s unary request to `target`, the load's shape (connections, streams
/// per connection) fixed by the protocol; the caller adds how long or how many.
fn h2load_command(target: &Target, protocol: Protocol, body: &Bodies) -> Command {
    let path = match protocol {
        Protocol::Http1 => "/",
        _ => "/hello.Greeter/SayHello",
    };
    let mut command = Command::new("h2load");
    command.arg("-d").arg(body.for_protocol(protocol));
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
        Protocol::ConnectHttp1 => command.args([
            "--h1",
            "-c8",
            "-H",
            "content-type: application/proto",
            "-H",
            "connect-protocol-version: 1",
        ]),
    };
    command.arg(format!("{}{path}", target.url()));
    command
}

/// One call before the load, checked for its greeting: h2load counts HTTP statuses only, and a
/// gRPC error is an HTTP 200.
fn verify_greeting(root: &Path, target: &Target, protocol: Protocol, body: &Bodies) -> Result {
    let expect = |output: Option<String>, wanted: &str| match output {
        Some(text) if text.contains(wanted) => Ok(()),
        other => Err(format!(
            "{} over {}: expected {wanted:?} in the answer, got {other:?}",
            target.name,
            protocol.label()
        )),
    };
    let address = format!("127.0.0.1:{}", target.port);
    let url = target.url();
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
                    &format!("@{}", body.for_protocol(protocol).display()),
                    "-H",
                    "content-type: application/grpc-web+proto",
                    "-H",
                    "x-grpc-web: 1",
                    &format!("{url}/hello.Greeter/SayHello"),
                ]))
                .map(|answer| answer.replace('\r', "")),
                "Hello, world",
            )?;
            Ok(())
        }
        Protocol::ConnectHttp1 => expect(
            process::output(Command::new("curl").args([
                "-s",
                "--http1.1",
                "--data-binary",
                &format!("@{}", body.for_protocol(protocol).display()),
                "-H",
                "content-type: application/proto",
                "-H",
                "connect-protocol-version: 1",
                &format!("{url}/hello.Greeter/SayHello"),
            ])),
            "Hello, world",
        ),
        Protocol::Http1 => expect(
            process::output(Command::new("curl").args(["-s", "-d", "x", &url])),
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

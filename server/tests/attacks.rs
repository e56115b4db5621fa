//! What one hostile client can make the server hold, sent to the real binary as an attacker sends
//! it, each with the bound the server must keep: WebSocket ping floods, connections that never
//! send a request, upgraded sockets against the connection budget, metric labels, DNS
//! rebinding, an oversized summary, malformed body framing, and floods of refused calls. After
//! each attack a normal call must still succeed.

mod support;

use std::{
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

use futures_util::StreamExt;
use hello_proto::{HelloRequest, HelloStreamRequest};
use support::ServerProcess;
use test_support::{
    percent_decode,
    raw::{field, gauge, get, grpc_web_post, masked_frame, raw_exchange, upgrade},
};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};
use tonic::Code;

/// The `grpc-websockets` header block of a call.
const HEADER_BLOCK: &[u8] = b"content-type: application/grpc-web+proto\r\nx-grpc-web: 1\r\n";
/// An HTTP/2 client's connection preface followed by an empty SETTINGS frame.
const H2_PREFACE_AND_SETTINGS: &[u8] =
    b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00";

/// A Chat call over a WebSocket, open and idle: upgraded, header block sent.
async fn idle_chat(server: &ServerProcess) -> TcpStream {
    let (mut socket, status) = upgrade(
        server.addr,
        "/hello.Greeter/Chat",
        &server.addr.to_string(),
        None,
    )
    .await;
    assert_eq!(status, 101);
    socket
        .write_all(&masked_frame(0x2, HEADER_BLOCK))
        .await
        .unwrap();
    socket
}

#[tokio::test]
async fn a_websocket_client_that_pings_and_never_reads_cannot_grow_the_server() {
    let server = ServerProcess::start(&[]).await;
    let mut socket = idle_chat(&server).await;
    let rss_before = server.rss_kib();
    // 1,000 pings of 125 bytes per write, 64 MiB in all; the client never reads a pong.
    let batch = masked_frame(0x9, &[b'p'; 125]).repeat(1000);
    let writes = 64 * 1024 * 1024 / batch.len();
    let flood = async {
        for _ in 0..writes {
            socket.write_all(&batch).await.unwrap();
        }
    };
    // A server that stops reading a client that stops reading is bounded too: then the flood
    // cannot be sent in full, and the time limit ends it.
    let sent_all = tokio::time::timeout(Duration::from_secs(60), flood)
        .await
        .is_ok();
    let growth = server.rss_kib().saturating_sub(rss_before);
    println!("ping flood (all sent: {sent_all}): server RSS +{growth} KiB");
    assert!(growth < 16 * 1024, "RSS grew by {growth} KiB");
    drop(socket);
    server.assert_serving().await;
}

#[tokio::test]
async fn connections_that_send_no_request_are_closed_and_cannot_lock_clients_out() {
    let server =
        ServerProcess::start(&["--header-read-timeout", "1s", "--max-connections", "20"]).await;
    let opened = Instant::now();
    let mut silent = Vec::new();
    for i in 0..20 {
        let mut socket = TcpStream::connect(server.addr).await.unwrap();
        // Half send nothing at all, half only HTTP/2's preface and an empty SETTINGS frame.
        if i % 2 == 1 {
            socket.write_all(H2_PREFACE_AND_SETTINGS).await.unwrap();
        }
        silent.push(socket);
    }
    // Every slot is taken: a real client waits, but only until the silent ones are closed.
    let client = tokio::spawn(async move {
        server.assert_serving().await;
        server
    });
    for mut socket in silent {
        let mut rest = Vec::new();
        tokio::time::timeout(Duration::from_secs(5), socket.read_to_end(&mut rest))
            .await
            .expect("the server closes a silent connection")
            .ok();
    }
    let closed_after = opened.elapsed();
    assert!(
        closed_after >= Duration::from_millis(900) && closed_after < Duration::from_secs(4),
        "closed after {closed_after:?}"
    );
    let server = tokio::time::timeout(Duration::from_secs(5), client)
        .await
        .expect("the waiting client is served once the silent connections are closed")
        .unwrap();
    assert!(opened.elapsed() < Duration::from_secs(6));
    drop(server);
}

#[tokio::test]
async fn idle_connections_are_closed_after_the_idle_timeout_but_never_during_a_call() {
    let server = ServerProcess::start(&["--idle-timeout", "1s"]).await;
    // HTTP/1.1 keep-alive: answered, then closed once idle for a second.
    let started = Instant::now();
    let mut socket = TcpStream::connect(server.addr).await.unwrap();
    socket
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        .await
        .unwrap();
    let mut response = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), socket.read_to_end(&mut response))
        .await
        .expect("an idle keep-alive connection is closed")
        .unwrap();
    let closed_after = started.elapsed();
    assert!(response.starts_with(b"HTTP/1.1 200 OK"));
    assert!(
        closed_after >= Duration::from_millis(900) && closed_after < Duration::from_secs(4),
        "closed after {closed_after:?}"
    );

    // HTTP/2: a stream longer than the idle timeout, with nothing sent for 1.5 s at a time, is a
    // request in flight, not idleness.
    let mut client = server.native_client().await;
    let mut replies = client
        .say_hello_stream(HelloStreamRequest {
            name: "slow".into(),
            count: 3,
            interval_ms: 1500,
        })
        .await
        .unwrap()
        .into_inner();
    let mut received = Vec::new();
    while let Some(reply) = replies.message().await.unwrap() {
        received.push(reply.message);
    }
    assert_eq!(
        received,
        ["Hello #1, slow", "Hello #2, slow", "Hello #3, slow"]
    );
    server.assert_serving().await;
}

#[tokio::test]
async fn websockets_hold_their_connection_slot_and_are_counted() {
    let server = ServerProcess::start(&["--max-connections", "20"]).await;
    let host = server.addr.to_string();
    let mut sockets = Vec::new();
    for _ in 0..19 {
        sockets.push(idle_chat(&server).await);
    }
    // 19 sockets and the connection that asks.
    let page = get(server.addr, "/metrics", &host).await;
    assert_eq!(gauge(&page, "http_server_open_connections"), 20);
    sockets.push(idle_chat(&server).await);

    // The budget is spent: a new connection waits until a socket closes.
    let server = Arc::new(server);
    let waiting = tokio::spawn({
        let server = Arc::clone(&server);
        async move { get(server.addr, "/metrics", &host).await }
    });
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(!waiting.is_finished(), "a 21st connection was served");
    drop(sockets.pop());
    let page = tokio::time::timeout(Duration::from_secs(5), waiting)
        .await
        .expect("served once a socket closed")
        .unwrap();
    assert_eq!(gauge(&page, "http_server_open_connections"), 20);
    drop(sockets);
    server.assert_serving().await;
}

#[tokio::test]
async fn a_thousand_idle_websocket_calls_cost_little_memory() {
    let server = ServerProcess::start(&[]).await;
    // Warm up the allocator and the runtime with a few calls first.
    for _ in 0..20 {
        drop(idle_chat(&server).await);
    }
    server.assert_serving().await;
    let rss_before = server.rss_kib();
    let mut sockets = Vec::new();
    for _ in 0..1000 {
        sockets.push(idle_chat(&server).await);
    }
    // Every call is in flight once the server has read its header block: polled, not slept on,
    // and bounded.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let page = loop {
        let page = get(server.addr, "/metrics", &server.addr.to_string()).await;
        if gauge(&page, "grpc_server_calls_in_flight") == 1000
            || std::time::Instant::now() > deadline
        {
            break page;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(gauge(&page, "grpc_server_calls_in_flight"), 1000);
    assert_eq!(gauge(&page, "http_server_open_connections"), 1001);
    let growth = server.rss_kib().saturating_sub(rss_before);
    println!("1,000 idle WebSocket calls: server RSS +{growth} KiB");
    // About 30 KiB each in a debug build (the benchmark measures the release build); they cost
    // 140 KiB each when every socket allocated tungstenite's 128 KiB read buffer.
    assert!(growth < 40 * 1024, "RSS grew by {growth} KiB");
    drop(sockets);
    server.assert_serving().await;
}

/// The metrics page through Prometheus's own Python parser (`prometheus_client`), as a scraper
/// reads it: every `grpc_server_handled_total` sample as `[method, code, value]`.
fn parse_with_prometheus(page: &str) -> Vec<(String, String, f64)> {
    let python = std::env::var_os("GREETER_TEST_PYTHON")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| {
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../.tools/venv/bin/python")
        });
    let script = "import json, sys\n\
        from prometheus_client.parser import text_string_to_metric_families\n\
        samples = [[s.labels['grpc_method'], s.labels['grpc_code'], s.value]\n\
                   for family in text_string_to_metric_families(sys.stdin.read())\n\
                   for s in family.samples if s.name == 'grpc_server_handled_total']\n\
        print(json.dumps(samples))\n";
    let mut child = std::process::Command::new(&python)
        .args(["-c", script])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap_or_else(|error| {
            panic!(
                "cannot run {} ({error}): `cargo xtask setup --tests` installs it with \
                 prometheus_client, or set GREETER_TEST_PYTHON",
                python.display()
            )
        });
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), page.as_bytes()).unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "Prometheus's parser rejected the page: {}\n{page}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

#[tokio::test]
async fn invented_method_names_cannot_break_or_take_the_metrics() {
    let server = ServerProcess::start(&[]).await;
    let host = server.addr.to_string();
    let hostile = [
        "/hello.Greeter/a\"b",
        "/hello.Greeter/a\\b",
        "/hello.Greeter/a%0Ab\\n\"",
    ];
    for path in hostile {
        let response = grpc_web_post(server.addr, path, &host).await;
        assert_eq!(field(&response, "grpc-status"), Some("12"), "{response}");
    }
    for i in 0..100 {
        grpc_web_post(server.addr, &format!("/hello.Greeter/Invented{i}"), &host).await;
    }
    // A real method, called for the first time after them, is counted as itself.
    server.assert_serving().await;

    let page = get(server.addr, "/metrics", &host).await;
    let samples = parse_with_prometheus(page.split_once("\r\n\r\n").unwrap().1);
    let count = |method: &str, code: &str| {
        samples
            .iter()
            .find(|(m, c, _)| m == method && c == code)
            .map(|(_, _, value)| *value)
    };
    assert_eq!(
        count("unknown", "UNIMPLEMENTED"),
        Some(103.0),
        "{samples:?}"
    );
    assert_eq!(
        count("/hello.Greeter/SayHello", "OK"),
        Some(1.0),
        "{samples:?}"
    );
    assert_eq!(samples.len(), 2, "{samples:?}");
    server.assert_serving().await;
}

#[tokio::test]
async fn a_loopback_server_answers_only_loopback_host_names() {
    let server = ServerProcess::start(&[]).await;
    let port = server.addr.port();
    let evil = format!("evil.example:{port}");
    let misdirected = |response: &str| response.starts_with("HTTP/1.1 421 ");

    // A page on a rebinding domain: its requests carry its own name as the Host.
    let response = grpc_web_post(server.addr, "/hello.Greeter/SayHello", &evil).await;
    assert!(misdirected(&response), "{response}");
    // The reason names the host and the flag that admits it.
    assert!(
        response.ends_with(&format!(
            "this server does not answer for the host name `{evil}`; \
             start it with --allowed-host to admit that name\n"
        )),
        "{response}"
    );
    let response = get(server.addr, "/metrics", &evil).await;
    assert!(misdirected(&response), "{response}");
    let response = get(server.addr, "/", &evil).await;
    assert!(misdirected(&response), "{response}");
    let origin = format!("http://{evil}");
    let (_, status) = upgrade(server.addr, "/hello.Greeter/Chat", &evil, Some(&origin)).await;
    assert_eq!(status, 421);
    // Native gRPC, the host in HTTP/2's :authority.
    let channel = tonic::transport::Endpoint::from_shared(server.url())
        .unwrap()
        .origin(format!("http://{evil}").parse().unwrap())
        .connect()
        .await
        .unwrap();
    let status = hello_proto::greeter_client::GreeterClient::new(channel)
        .say_hello(HelloRequest { name: "x".into() })
        .await
        .unwrap_err();
    // gRPC clients show the reason as a status.
    assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");
    assert!(
        status.message().contains(&evil) && status.message().contains("--allowed-host"),
        "{status:?}"
    );
    // Refusals are summarised in the log, not logged one by one.
    let log = server.log();
    let warnings: Vec<_> = log
        .lines()
        .filter(|line| line.contains("WARN") && line.contains("host names this server"))
        .collect();
    assert_eq!(warnings.len(), 1, "{warnings:#?}");
    assert!(warnings[0].contains("evil.example"), "{}", warnings[0]);

    // Loopback names, with any port.
    for host in [
        format!("localhost:{port}"),
        format!("[::1]:{port}"),
        "127.0.0.1".to_owned(),
    ] {
        let response = get(server.addr, "/metrics", &host).await;
        assert!(
            response.starts_with("HTTP/1.1 200 OK"),
            "{host}: {response}"
        );
    }

    // Same origin is the same scheme, host and port.
    let host = server.addr.to_string();
    for (origin, expected) in [
        (format!("https://{host}"), 403),
        (format!("http://localhost:{port}"), 403),
        (format!("http://{host}"), 101),
    ] {
        let (_, status) = upgrade(server.addr, "/hello.Greeter/Chat", &host, Some(&origin)).await;
        assert_eq!(status, expected, "{origin}");
    }
    server.assert_serving().await;
}

#[tokio::test]
async fn allowed_hosts_are_answered_and_a_public_address_answers_any_host() {
    let named = ServerProcess::start(&["--allowed-host", "app.example"]).await;
    let response = get(named.addr, "/metrics", "APP.example:443").await;
    assert!(response.starts_with("HTTP/1.1 200 OK"), "{response}");
    let response = get(named.addr, "/metrics", "evil.example").await;
    assert!(response.starts_with("HTTP/1.1 421 "), "{response}");
    assert!(named
        .log()
        .contains("answering requests for loopback host names, app.example"));

    // Bound to every address (reached here over loopback only), as behind a load balancer.
    let public = ServerProcess::start_on("0.0.0.0", &[]).await;
    let response = get(public.addr, "/metrics", "anything.example").await;
    assert!(response.starts_with("HTTP/1.1 200 OK"), "{response}");
    assert!(public
        .log()
        .contains("answering requests for any host name"));
    let public_named = ServerProcess::start_on("0.0.0.0", &["--allowed-host", "app.example"]).await;
    let response = get(public_named.addr, "/metrics", "localhost").await;
    assert!(response.starts_with("HTTP/1.1 421 "), "{response}");
    let response = get(public_named.addr, "/metrics", "app.example").await;
    assert!(response.starts_with("HTTP/1.1 200 OK"), "{response}");
}

#[tokio::test]
async fn a_summary_too_large_to_send_is_refused_as_soon_as_it_would_be() {
    let server = ServerProcess::start(&[]).await;
    let name = "a".repeat(1024);
    // Each greeting encodes to 1 + 2 + 1,031 bytes: 4,056 fit in a 4 MiB reply, the 4,057th does not.
    let call = |pulled: Arc<AtomicUsize>| {
        let name = name.clone();
        let server = &server;
        async move {
            let names = futures_util::stream::iter(0..9_999).map(move |_| {
                pulled.fetch_add(1, Ordering::Relaxed);
                HelloRequest { name: name.clone() }
            });
            server
                .native_client()
                .await
                .say_hello_to_all(names)
                .await
                .unwrap_err()
        }
    };
    let rss_before = server.rss_kib();
    let pulled: Vec<_> = (0..8).map(|_| Arc::new(AtomicUsize::new(0))).collect();
    let statuses = futures_util::future::join_all(pulled.iter().cloned().map(call)).await;
    for (status, pulled) in statuses.iter().zip(&pulled) {
        assert_eq!(status.code(), Code::OutOfRange, "{status:?}");
        assert_eq!(
            status.message(),
            "name #4057: the summary would exceed the largest reply, 4194304 bytes; \
             send fewer or shorter names per call"
        );
        let pulled = pulled.load(Ordering::Relaxed);
        assert!(pulled < 6_000, "the client was let send {pulled} names");
    }
    let peak_growth = server.peak_rss_kib().saturating_sub(rss_before);
    println!("8 oversized summaries at once: server peak RSS +{peak_growth} KiB");
    assert!(
        peak_growth < 96 * 1024,
        "peak RSS grew by {peak_growth} KiB"
    );
    server.assert_serving().await;
}

#[tokio::test]
async fn a_malformed_chunk_size_gets_a_message_of_ours() {
    let server = ServerProcess::start(&[]).await;
    let response = raw_exchange(
        server.addr,
        &format!(
            "POST /hello.Greeter/SayHello HTTP/1.1\r\nHost: {}\r\n\
             Content-Type: application/grpc-web+proto\r\nX-Grpc-Web: 1\r\n\
             Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n\
             fffffffffffffffffffff\r\n",
            server.addr
        ),
    )
    .await;
    // tonic-web reports any unreadable body as INTERNAL, quoting the error it was given: ours,
    // not hyper's account of the chunk size.
    assert_eq!(field(&response, "grpc-status"), Some("13"), "{response}");
    let message = percent_decode(field(&response, "grpc-message").unwrap());
    assert!(
        message.contains("the request body's HTTP framing is malformed")
            && !message.contains("chunk"),
        "{message}"
    );
    server.assert_serving().await;
}

#[tokio::test]
async fn a_flood_of_refused_calls_is_logged_as_a_summary() {
    let server = ServerProcess::start(&["--max-concurrent-calls", "1"]).await;
    let mut client = server.native_client().await;
    // The one permitted call, held open.
    let mut held = client
        .say_hello_stream(HelloStreamRequest {
            name: "held".into(),
            count: 2,
            interval_ms: 10_000,
        })
        .await
        .unwrap()
        .into_inner();
    held.message().await.unwrap();
    for _ in 0..500 {
        let status = client
            .say_hello(HelloRequest { name: "x".into() })
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::ResourceExhausted);
    }
    drop(held);
    // The held call's cancellation reaches the server before the next call may take its place.
    let released = Instant::now();
    while server.gauge("grpc_server_calls_in_flight").await > 0 {
        assert!(
            released.elapsed() < Duration::from_secs(5),
            "the held call was not released"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let log = server.log();
    let warnings: Vec<_> = log
        .lines()
        .filter(|line| line.contains("WARN") && line.contains("refused"))
        .collect();
    assert_eq!(warnings.len(), 1, "{warnings:#?}");
    assert!(
        warnings[0].contains("calls refused at the concurrency limit since the last report")
            && warnings[0].contains("refused=1"),
        "{}",
        warnings[0]
    );
    server.assert_serving().await;
}

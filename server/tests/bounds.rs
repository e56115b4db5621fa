//! The bounds the serving stack keeps on every call and connection by itself, sent to the real
//! binary as an attacker sends them: clients that open their flow-control window and never read,
//! that grant no window at all and keep the connection alive with PINGs, that start calls and
//! never finish their request; and the deadline, the longest call and the drain enforced on a
//! service that checks none of them itself (gRPC health's `Watch`, a stream that never ends on
//! its own). After each attack a normal call must still succeed.

mod support;

use std::time::{Duration, Instant};

use hello_proto::HelloStreamRequest;
use prost::Message;
use support::ServerProcess;
use test_support::h2::{
    data, grpc_message, grpc_request, headers, ping, settings, settings_ack, window_update,
    INITIAL_WINDOW_SIZE, MAX_WINDOW, PREFACE,
};
use tokio::{io::AsyncWriteExt, net::TcpStream};
use tonic::Code;
use tonic_health::pb::{health_client::HealthClient, HealthCheckRequest};

/// Waits until `gauge` is at most `most`, failing the test after `within`; returns how long it took.
async fn until_gauge_at_most(
    server: &ServerProcess,
    gauge: &str,
    most: u64,
    within: Duration,
) -> Duration {
    let started = Instant::now();
    loop {
        let value = server.gauge(gauge).await;
        if value <= most {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < within,
            "{gauge} is still {value} after {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn a_client_that_opens_its_window_and_never_reads_holds_little_and_is_closed() {
    let server = ServerProcess::start(&["--idle-timeout", "2s"]).await;
    let rss_before = server.rss_kib();
    let authority = server.addr.to_string();
    let request = grpc_message(
        &HelloStreamRequest {
            name: "x".repeat(1024),
            count: 1000,
            interval_ms: 0,
        }
        .encode_to_vec(),
    );
    let mut sockets = Vec::new();
    for _ in 0..4 {
        let mut socket = TcpStream::connect(server.addr).await.unwrap();
        let mut bytes = PREFACE.to_vec();
        bytes.extend(settings(&[(INITIAL_WINDOW_SIZE, MAX_WINDOW)]));
        bytes.extend(window_update(0, MAX_WINDOW - 65_535));
        bytes.extend(settings_ack());
        socket.write_all(&bytes).await.unwrap();
        // The server's own window (sent in its preface) admits the requests' bodies.
        tokio::time::sleep(Duration::from_millis(200)).await;
        let mut bytes = Vec::new();
        for stream in (1..400).step_by(2) {
            let fields = grpc_request("/hello.Greeter/SayHelloStream", &authority);
            bytes.extend(headers(stream, &fields, false));
            bytes.extend(data(stream, &request, true));
        }
        socket.write_all(&bytes).await.unwrap();
        sockets.push(socket);
    }
    // 800 streams of a megabyte each, none read: the server queues what its bounds allow.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let in_flight = server.gauge("grpc_server_calls_in_flight").await;
    assert!(in_flight >= 700, "{in_flight} calls in flight");
    let growth = server.peak_rss_kib().saturating_sub(rss_before);
    println!("4 connections x 200 unread streams: server RSS +{growth} KiB");
    // Per stream: at most 16 KiB queued in HTTP/2 beyond the chunk the encoder handed over, and
    // the encoder's buffer; with hyper's default queue, a connection held over 100 MiB.
    assert!(growth < 4 * 32 * 1024, "RSS grew by {growth} KiB");
    // Once the socket buffers are full, no frame is taken: after the idle timeout every connection
    // is closed and every call ended.
    let closed_after = until_gauge_at_most(
        &server,
        "http_server_open_connections",
        1,
        Duration::from_secs(30),
    )
    .await;
    assert_eq!(server.gauge("grpc_server_calls_in_flight").await, 0);
    // The memory goes back to the system within the next trim.
    let started = Instant::now();
    let rss_after = loop {
        let rss = server.rss_kib();
        if rss < rss_before + 16 * 1024 || started.elapsed() > Duration::from_secs(15) {
            break rss;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    println!(
        "closed after {closed_after:?}; RSS then +{} KiB",
        rss_after.saturating_sub(rss_before)
    );
    assert!(
        rss_after < rss_before + 16 * 1024,
        "RSS stays {} KiB over what it was",
        rss_after.saturating_sub(rss_before)
    );
    drop(sockets);
    server.assert_serving().await;
}

#[tokio::test]
async fn a_zero_window_and_pings_cannot_hold_connections_and_lock_clients_out() {
    // A page to ask for: a response with a body, which a zero window never lets out.
    let page = tempfile::tempdir().unwrap();
    std::fs::write(
        page.path().join("index.html"),
        "<p>hello</p>\n".repeat(1000),
    )
    .unwrap();
    let static_dir = page.path().to_str().unwrap();
    let server = ServerProcess::start(&[
        "--idle-timeout",
        "1s",
        "--max-connections",
        "4",
        "--static-dir",
        static_dir,
    ])
    .await;
    let authority = server.addr.to_string();
    let mut sockets = Vec::new();
    for _ in 0..4 {
        let mut bytes = PREFACE.to_vec();
        bytes.extend(settings(&[(INITIAL_WINDOW_SIZE, 0)]));
        let fields = [
            (":method", "GET"),
            (":scheme", "http"),
            (":path", "/index.html"),
            (":authority", authority.as_str()),
        ];
        bytes.extend(headers(1, &fields, true));
        let mut socket = TcpStream::connect(server.addr).await.unwrap();
        socket.write_all(&bytes).await.unwrap();
        sockets.push(socket);
    }
    // Every slot is taken by a response that can never be sent; PINGs say the peer is alive.
    let pinger = tokio::spawn(async move {
        for _ in 0..100 {
            for socket in &mut sockets {
                let _ = socket.write_all(&ping(*b"stillhre")).await;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
    let waited = Instant::now();
    server.assert_serving().await;
    println!("a real client was served after {:?}", waited.elapsed());
    assert!(waited.elapsed() < Duration::from_secs(8));
    pinger.abort();
}

#[tokio::test]
async fn calls_whose_request_never_arrives_free_their_permits() {
    let server = ServerProcess::start(&[
        "--request-message-timeout",
        "1s",
        "--max-concurrent-calls",
        "100",
    ])
    .await;
    let authority = server.addr.to_string();
    // HTTP/2: 100 calls that send their headers and nothing else, taking every permit.
    let mut bytes = PREFACE.to_vec();
    bytes.extend(settings(&[]));
    for stream in (1..200).step_by(2) {
        bytes.extend(headers(
            stream,
            &grpc_request("/hello.Greeter/SayHello", &authority),
            false,
        ));
    }
    let mut stalled = TcpStream::connect(server.addr).await.unwrap();
    stalled.write_all(&bytes).await.unwrap();
    let started = Instant::now();
    while server.gauge("grpc_server_calls_in_flight").await < 100 {
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "the calls did not start"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Every permit is taken: a normal call is refused.
    let refused = server
        .native_client()
        .await
        .say_hello(hello_proto::HelloRequest { name: "x".into() })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::ResourceExhausted, "{refused:?}");
    until_gauge_at_most(
        &server,
        "grpc_server_calls_in_flight",
        0,
        Duration::from_secs(5),
    )
    .await;
    // Held for the request message timeout, not for as long as the client likes.
    let freed_after = started.elapsed();
    println!("100 stalled calls freed after {freed_after:?}");
    assert!(
        freed_after >= Duration::from_millis(800) && freed_after < Duration::from_secs(4),
        "freed after {freed_after:?}"
    );
    server.assert_serving().await;

    // HTTP/1.1: a body that promises 100 bytes and sends 8 is answered, and its connection closed.
    let started = Instant::now();
    let response = test_support::raw::raw_exchange(
        server.addr,
        &format!(
            "POST /hello.Greeter/SayHello HTTP/1.1\r\nHost: {authority}\r\n\
             content-type: application/grpc-web+proto\r\nx-grpc-web: 1\r\n\
             content-length: 100\r\n\r\n\0\0\0\0\x5f\x0a\x01a"
        ),
    )
    .await;
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "answered and closed after {:?}",
        started.elapsed()
    );
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(response.contains("grpc-status: 4"), "{response}");
    server.assert_serving().await;
}

/// A Watch of the server's overall health: a stream that ends only when its client or the stack
/// ends it.
async fn watch(
    server: &ServerProcess,
    timeout: Option<Duration>,
) -> tonic::Streaming<tonic_health::pb::HealthCheckResponse> {
    let mut client = HealthClient::new(test_support::channel(server.url()).await);
    let mut request = tonic::Request::new(HealthCheckRequest {
        service: String::new(),
    });
    if let Some(timeout) = timeout {
        request.set_timeout(timeout);
    }
    let mut stream = client.watch(request).await.unwrap().into_inner();
    stream.message().await.unwrap().expect("the current status");
    stream
}

/// How `stream` ends: its status, and when.
async fn end_of(
    mut stream: tonic::Streaming<tonic_health::pb::HealthCheckResponse>,
) -> (tonic::Status, Instant) {
    let status = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match stream.message().await {
                Ok(Some(_)) => continue,
                Ok(None) => panic!("the stream ended with OK"),
                Err(status) => return status,
            }
        }
    })
    .await
    .expect("the stream ends within 10 s");
    (status, Instant::now())
}

#[tokio::test]
async fn the_stack_ends_a_stream_at_its_deadline_and_at_the_longest_call_duration() {
    let server = ServerProcess::start(&["--max-call-duration", "2s"]).await;
    let started = Instant::now();
    let (status, ended) = end_of(watch(&server, Some(Duration::from_millis(500))).await).await;
    assert_eq!(status.code(), Code::DeadlineExceeded, "{status:?}");
    let took = ended - started;
    assert!(
        took >= Duration::from_millis(450) && took < Duration::from_secs(2),
        "{took:?}"
    );

    let started = Instant::now();
    let (status, ended) = end_of(watch(&server, None).await).await;
    assert_eq!(status.code(), Code::DeadlineExceeded, "{status:?}");
    let took = ended - started;
    assert!(
        took >= Duration::from_millis(1900) && took < Duration::from_secs(4),
        "{took:?}"
    );
    assert_eq!(server.gauge("grpc_server_calls_in_flight").await, 0);
    server.assert_serving().await;
}

#[tokio::test]
async fn the_drain_ends_every_open_stream_with_unavailable_and_counts_it() {
    let mut server = ServerProcess::start(&["--drain-timeout", "5s"]).await;
    let stream = watch(&server, None).await;
    server.signal(libc::SIGTERM);
    let (status, _) = end_of(stream).await;
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    assert!(status.message().contains("shutting down"), "{status:?}");
    assert!(server.exit_status(Duration::from_secs(5)).await.success());
    let log = server.log();
    let summary = log
        .lines()
        .find(|line| line.contains("calls handled") && line.contains("Watch"))
        .unwrap_or_else(|| panic!("no count of the Watch call in the final lines:\n{log}"));
    assert!(summary.contains("UNAVAILABLE"), "{summary}");
}

#[tokio::test]
async fn cross_origin_requests_are_refused_whatever_their_method() {
    let server = ServerProcess::start(&[]).await;
    let authority = server.addr.to_string();
    // HTTP/1.1: any method but a preflight, from a foreign origin, gets 403 and runs nothing.
    for method in ["GET", "PUT", "post", "DELETE"] {
        let response = test_support::raw::raw_exchange(
            server.addr,
            &format!(
                "{method} /hello.Greeter/SayHelloToAll HTTP/1.1\r\nHost: {authority}\r\n\
                 Origin: https://evil.example\r\ncontent-type: application/grpc-web+proto\r\n\
                 x-grpc-web: 1\r\ncontent-length: 0\r\nConnection: close\r\n\r\n"
            ),
        )
        .await;
        assert!(
            response.starts_with("HTTP/1.1 403 "),
            "{method}: {response}"
        );
    }
    // HTTP/2, where a GET reaches a gRPC service as well as a POST.
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .http2_only(true)
        .build_http::<http_body_util::Empty<bytes::Bytes>>();
    let request = hyper::Request::get(format!("{}/hello.Greeter/Chat", server.url()))
        .header("origin", "https://evil.example")
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .body(http_body_util::Empty::new())
        .unwrap();
    let response = client.request(request).await.unwrap();
    assert_eq!(response.status(), 403);
    let log = server.log();
    assert!(
        !log.contains("hello.Greeter/Chat") && !log.contains("hello.Greeter/SayHelloToAll"),
        "a refused request reached a service:\n{log}"
    );
    server.assert_serving().await;
}

#[tokio::test]
async fn a_host_header_that_disagrees_with_the_authority_is_refused() {
    let server = ServerProcess::start(&[]).await;
    let response = test_support::raw::raw_exchange(
        server.addr,
        &format!(
            "GET http://{}/metrics HTTP/1.1\r\nHost: evil.example\r\nConnection: close\r\n\r\n",
            server.addr
        ),
    )
    .await;
    assert!(response.starts_with("HTTP/1.1 400 "), "{response}");
    server.assert_serving().await;
}

#[tokio::test]
async fn what_a_client_sends_is_echoed_only_within_bounds() {
    let server = ServerProcess::start(&[]).await;
    let authority = server.addr.to_string();
    let call_with_id = |id: String| {
        let authority = authority.clone();
        async move {
            test_support::raw::raw_exchange(
                server.addr,
                &format!(
                    "POST /hello.Greeter/SayHello HTTP/1.1\r\nHost: {authority}\r\n\
                     content-type: application/grpc-web+proto\r\nx-grpc-web: 1\r\n\
                     x-request-id: {id}\r\ncontent-length: 5\r\nConnection: close\r\n\r\n\0\0\0\0\0"
                ),
            )
            .await
        }
    };
    // A short id is echoed; a long one is replaced by one of the server's.
    let short = "req-42".to_owned();
    let response = call_with_id(short.clone()).await;
    assert_eq!(
        test_support::raw::field(&response, "x-request-id"),
        Some("req-42")
    );
    let long = "x".repeat(3700);
    let response = call_with_id(long.clone()).await;
    let echoed = test_support::raw::field(&response, "x-request-id").unwrap();
    assert!(echoed.len() <= 128 && echoed != long, "{echoed}");
    assert!(!server.log().contains(&long[..200]));

    // A status message that echoes the request is cut.
    let channel = test_support::channel(server.url()).await;
    let mut client =
        tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient::new(channel);
    let symbol = "y".repeat(10_000);
    let request = tonic_reflection::pb::v1::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(
            tonic_reflection::pb::v1::server_reflection_request::MessageRequest::FileContainingSymbol(symbol),
        ),
    };
    let outcome = client
        .server_reflection_info(tokio_stream::iter([request.clone()]))
        .await;
    let message = match outcome {
        Err(status) => status.message().to_owned(),
        Ok(response) => match response.into_inner().message().await {
            Err(status) => status.message().to_owned(),
            Ok(reply) => format!("{reply:?}"),
        },
    };
    assert!(
        message.len() <= 1100,
        "a status message of {} bytes",
        message.len()
    );
    // A reflection request larger than reflection needs is refused.
    let huge = tonic_reflection::pb::v1::ServerReflectionRequest {
        host: "h".repeat(1024 * 1024),
        ..request
    };
    // (tonic's reflection ends its stream when a request cannot be decoded.)
    match client
        .server_reflection_info(tokio_stream::iter([huge]))
        .await
    {
        Err(status) => assert_eq!(status.code(), Code::OutOfRange, "{status:?}"),
        Ok(response) => match response.into_inner().message().await {
            Ok(None) => {}
            Err(status) => assert_eq!(status.code(), Code::OutOfRange, "{status:?}"),
            Ok(Some(reply)) => panic!("a 1 MiB request was answered: {reply:?}"),
        },
    }
    server.assert_serving().await;
}

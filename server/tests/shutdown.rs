//! Graceful shutdown of the real binary, on SIGTERM and on SIGINT: health goes NOT_SERVING, the
//! listener closes, open streams end with UNAVAILABLE (a status, not a reset), unary calls in
//! flight complete and are counted, and the process exits 0 as soon as the last call ends. A
//! client that never finishes its request is cut off at `--drain-timeout`, no later.

mod support;

use std::{
    convert::Infallible,
    net::SocketAddr,
    time::{Duration, Instant},
};

use bytes::Bytes;
use grpc_websocket::protocol::ServerFrame;
use hello_proto::{HelloRequest, HelloStreamRequest};
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use hyper_util::{client::legacy::Client, rt::TokioExecutor};
use prost::Message;
use support::ServerProcess;
use test_support::{raw, websocket::WsCall};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
    sync::mpsc,
};
use tonic::Code;
use tonic_health::pb::{
    health_check_response::ServingStatus, health_client::HealthClient, HealthCheckRequest,
};

/// A SayHello request as a gRPC frame: the 5-byte prefix, then the message.
fn say_hello_frame(name: &str) -> Vec<u8> {
    let message = HelloRequest { name: name.into() }.encode_to_vec();
    let mut frame = vec![0];
    frame.extend_from_slice(&(message.len() as u32).to_be_bytes());
    frame.extend_from_slice(&message);
    frame
}

/// Where a half-sent call stops: inside the frame's length prefix, so the server has the call's
/// headers and must wait for the rest.
const SPLIT: usize = 3;

/// A gRPC-Web SayHello over HTTP/1.1 whose headers and first bytes have been sent; the rest waits
/// for [`HalfSentGrpcWeb::finish`].
struct HalfSentGrpcWeb {
    socket: TcpStream,
    rest: Vec<u8>,
}

impl HalfSentGrpcWeb {
    async fn start(addr: SocketAddr, name: &str) -> Self {
        let frame = say_hello_frame(name);
        let mut socket = TcpStream::connect(addr).await.unwrap();
        let head = format!(
            "POST /hello.Greeter/SayHello HTTP/1.1\r\nHost: {addr}\r\n\
             Content-Type: application/grpc-web+proto\r\nX-Grpc-Web: 1\r\n\
             Content-Length: {}\r\n\r\n",
            frame.len()
        );
        socket.write_all(head.as_bytes()).await.unwrap();
        socket.write_all(&frame[..SPLIT]).await.unwrap();
        Self {
            socket,
            rest: frame[SPLIT..].to_vec(),
        }
    }

    /// Sends the rest of the request; returns everything the server sent until it closed.
    async fn finish(mut self) -> String {
        self.socket.write_all(&self.rest).await.unwrap();
        self.read_to_close().await
    }

    async fn read_to_close(mut self) -> String {
        let mut response = Vec::new();
        tokio::time::timeout(
            Duration::from_secs(10),
            self.socket.read_to_end(&mut response),
        )
        .await
        .expect("the server answers and closes within 10 s")
        .unwrap_or_default();
        String::from_utf8_lossy(&response).into_owned()
    }
}

type BodySender = mpsc::Sender<Result<Frame<Bytes>, Infallible>>;

/// A native gRPC SayHello over HTTP/2 whose headers and first bytes have been sent; returns the
/// sender of the rest and the task that reads the reply's message and `grpc-status`.
fn half_sent_native(
    addr: SocketAddr,
    name: &str,
) -> (BodySender, tokio::task::JoinHandle<(Bytes, String)>) {
    let (body, frames) = mpsc::channel(2);
    let request = http::Request::post(format!("http://{addr}/hello.Greeter/SayHello"))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .body(StreamBody::new(
            tokio_stream::wrappers::ReceiverStream::new(frames),
        ))
        .unwrap();
    let client = Client::builder(TokioExecutor::new())
        .http2_only(true)
        .build_http();
    let reply = tokio::spawn(async move {
        let response = client.request(request).await.unwrap();
        let collected = response.into_body().collect().await.unwrap();
        let status = collected
            .trailers()
            .and_then(|trailers| trailers.get("grpc-status"))
            .map(|status| status.to_str().unwrap().to_owned())
            .unwrap_or_default();
        (collected.to_bytes(), status)
    });
    let first = Bytes::from(say_hello_frame(name)[..SPLIT].to_vec());
    body.try_send(Ok(Frame::data(first))).unwrap();
    (body, reply)
}

/// Waits until the server reports `calls` calls in flight.
async fn wait_for_calls_in_flight(server: &ServerProcess, calls: u64) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let in_flight = server.gauge("grpc_server_calls_in_flight").await;
        if in_flight == calls {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{in_flight} calls in flight, expected {calls}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits until the server's port refuses connections.
async fn wait_for_listener_closed(addr: SocketAddr) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while TcpStream::connect(addr).await.is_ok() {
        assert!(
            Instant::now() < deadline,
            "the server still accepts connections 5 s into its shutdown"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// One shutdown, started by `signal`, with every kind of call open when it arrives.
async fn drains_on(signal: libc::c_int) {
    let mut server = ServerProcess::start(&["--drain-timeout", "20s"]).await;
    let mut client = server.native_client().await;

    let channel = test_support::channel(server.url()).await;
    let mut health = HealthClient::new(channel)
        .watch(HealthCheckRequest {
            service: "hello.Greeter".into(),
        })
        .await
        .unwrap()
        .into_inner();
    let serving = health.message().await.unwrap().unwrap();
    assert_eq!(serving.status(), ServingStatus::Serving);

    let mut stream = client
        .say_hello_stream(HelloStreamRequest {
            name: "Long".into(),
            count: 1000,
            interval_ms: 100,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        stream.message().await.unwrap().unwrap().message,
        "Hello #1, Long"
    );
    let (names, names_rx) = mpsc::channel(1);
    let mut chat = client
        .chat(tokio_stream::wrappers::ReceiverStream::new(names_rx))
        .await
        .unwrap()
        .into_inner();
    names.send(HelloRequest { name: "a".into() }).await.unwrap();
    assert_eq!(chat.message().await.unwrap().unwrap().message, "Hello, a");

    let grpc_web = HalfSentGrpcWeb::start(server.addr, "in flight over gRPC-Web").await;
    let (native_rest, native_reply) = half_sent_native(server.addr, "in flight over gRPC");
    // The watch, the stream, the chat and both unary calls.
    wait_for_calls_in_flight(&server, 5).await;

    let stopping = Instant::now();
    server.signal(signal);

    // Health says so first, for load balancers.
    let not_serving = tokio::time::timeout(Duration::from_secs(5), health.message())
        .await
        .expect("health changes within 5 s of the signal")
        .unwrap()
        .unwrap();
    assert_eq!(not_serving.status(), ServingStatus::NotServing);
    drop(health);

    wait_for_listener_closed(server.addr).await;

    let status = loop {
        match stream.message().await {
            Ok(Some(_)) => continue,
            Ok(None) => panic!("the stream ended without a status"),
            Err(status) => break status,
        }
    };
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    assert_eq!(
        status.message(),
        "the server is shutting down; retry the call"
    );
    let status = chat.message().await.unwrap_err();
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    assert_eq!(
        status.message(),
        "the server is shutting down; retry the call"
    );
    drop(names);

    // The unary calls in flight are answered in full, though the server is draining.
    let response = grpc_web.finish().await;
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(
        response.contains("Hello, in flight over gRPC-Web"),
        "{response}"
    );
    assert!(response.contains("grpc-status:0"), "{response}");
    let rest = say_hello_frame("in flight over gRPC")[SPLIT..].to_vec();
    native_rest
        .send(Ok(Frame::data(Bytes::from(rest))))
        .await
        .unwrap();
    drop(native_rest);
    let (message, status) = tokio::time::timeout(Duration::from_secs(10), native_reply)
        .await
        .expect("the native call is answered within 10 s")
        .unwrap();
    assert_eq!(status, "0");
    let reply = hello_proto::HelloReply::decode(&message[5..]).unwrap();
    assert_eq!(reply.message, "Hello, in flight over gRPC");

    // With nothing left in flight the process exits at once, well inside the drain timeout.
    let exit = server.exit_status(Duration::from_secs(10)).await;
    assert!(exit.success(), "{exit:?}");
    assert!(
        stopping.elapsed() < Duration::from_secs(8),
        "exited {:?} after the signal",
        stopping.elapsed()
    );
    let log = server.log();
    assert!(
        log.contains(r#"calls handled method="/hello.Greeter/SayHello" code="OK" count=2"#),
        "{log}"
    );
    assert!(
        log.contains(r#"calls handled method="/hello.Greeter/Chat" code="UNAVAILABLE" count=1"#),
        "{log}"
    );
}

#[tokio::test]
async fn sigterm_drains_every_kind_of_call_and_exits_zero() {
    drains_on(libc::SIGTERM).await;
}

#[tokio::test]
async fn sigint_drains_the_same_way() {
    drains_on(libc::SIGINT).await;
}

#[tokio::test]
async fn the_drain_timeout_cuts_off_a_client_that_never_finishes_its_call() {
    let drain_timeout = Duration::from_secs(2);
    let mut server = ServerProcess::start(&["--drain-timeout", "2s"]).await;
    let stalled = HalfSentGrpcWeb::start(server.addr, "never finished").await;
    wait_for_calls_in_flight(&server, 1).await;

    let stopping = Instant::now();
    server.signal(libc::SIGTERM);
    let exit = server.exit_status(Duration::from_secs(10)).await;
    let took = stopping.elapsed();
    assert!(exit.success(), "{exit:?}");
    // The stalled call holds the drain open to its limit, and no longer.
    assert!(
        took >= drain_timeout && took < drain_timeout + Duration::from_secs(4),
        "exited {took:?} after SIGTERM with a {drain_timeout:?} drain timeout"
    );
    assert!(
        server
            .log()
            .contains("connections still open after the drain timeout; closing them"),
        "{}",
        server.log()
    );
    // The client is disconnected with no response.
    assert_eq!(stalled.read_to_close().await, "");
}

/// The first step of a shutdown: not ready at once, yet everything is served for the shutdown
/// delay; HTTP/1.1 responses then close their connection; a WebSocket stream cut by the drain
/// that follows closes with 1001, going away.
#[tokio::test]
async fn not_ready_at_once_then_serving_through_the_shutdown_delay() {
    // Long enough for the checks below to finish inside it on two loaded cores.
    let delay = Duration::from_secs(5);
    let mut server = ServerProcess::start(&["--shutdown-delay", "5s"]).await;
    // Probes are answered with no Host at all, as load balancers' checks send them.
    let ready = raw::raw_exchange(server.addr, "GET /readyz HTTP/1.0\r\n\r\n").await;
    assert!(
        ready.contains(" 200 ") && ready.ends_with("\r\n\r\nready\n"),
        "{ready}"
    );
    let alive = raw::raw_exchange(server.addr, "GET /livez HTTP/1.0\r\n\r\n").await;
    assert!(
        alive.contains(" 200 ") && alive.ends_with("alive\n"),
        "{alive}"
    );
    // Before the signal, a kept-alive HTTP/1.1 response does not ask to close.
    let mut kept_alive = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    kept_alive
        .write_all(format!("GET /metrics HTTP/1.1\r\nHost: {}\r\n\r\n", server.addr).as_bytes())
        .await
        .unwrap();
    let head = raw::read_head(&mut kept_alive).await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert_eq!(raw::field(&head, "connection"), None, "{head}");
    drop(kept_alive);

    let mut chat = WsCall::open(server.addr, "/hello.Greeter/Chat").await;
    chat.send(&HelloRequest { name: "ws".into() }).await;
    assert!(matches!(
        chat.next_frame().await,
        Some(ServerFrame::Headers(_))
    ));
    let greeting: hello_proto::HelloReply = chat.next_message().await;
    assert_eq!(greeting.message, "Hello, ws");

    let stopping = Instant::now();
    server.signal(libc::SIGTERM);
    let not_ready = loop {
        let response = raw::raw_exchange(server.addr, "GET /readyz HTTP/1.0\r\n\r\n").await;
        if !response.contains(" 200 ") {
            break response;
        }
        assert!(
            stopping.elapsed() < Duration::from_secs(2),
            "still ready: {response}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    assert!(
        not_ready.contains(" 503 ") && not_ready.ends_with("shutting down\n"),
        "{not_ready}"
    );
    // Still serving: a new connection's call is answered, and HTTP/1.1 says to close.
    server.assert_serving().await;
    let page = raw::raw_exchange(
        server.addr,
        &format!("GET /metrics HTTP/1.1\r\nHost: {}\r\n\r\n", server.addr),
    )
    .await;
    assert!(page.starts_with("HTTP/1.1 200"), "{page}");
    assert_eq!(raw::field(&page, "connection"), Some("close"), "{page}");
    assert!(
        stopping.elapsed() < delay,
        "the checks took the whole delay: {:?}",
        stopping.elapsed()
    );

    // Then the drain: the open chat ends with UNAVAILABLE and a going-away close.
    let trailers = match chat.next_frame().await {
        Some(ServerFrame::Headers(trailers)) => trailers,
        other => panic!("expected the trailers, got {other:?}"),
    };
    assert!(stopping.elapsed() >= delay, "{:?}", stopping.elapsed());
    assert_eq!(trailers.get("grpc-status").unwrap(), "14");
    assert!(chat.next_frame().await.is_none());
    assert_eq!(chat.close_code(), Some(1001));
    let exit = server.exit_status(Duration::from_secs(10)).await;
    assert!(exit.success(), "{exit:?}");
}

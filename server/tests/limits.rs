//! The server's limits, each shown failing fast with a clear status or HTTP code, and the server
//! serving normally right after.

mod support;

use std::time::{Duration, Instant};

use grpc_websocket::protocol::ServerFrame;
use hello_proto::{HelloReply, HelloRequest, HelloStreamRequest};
use support::{grpc_web_http1, grpc_web_http2, native_client, TestServer};
use test_support::websocket::WsCall;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};
use tonic::Code;

fn hello(name: &str) -> HelloRequest {
    HelloRequest { name: name.into() }
}

fn long_stream() -> HelloStreamRequest {
    HelloStreamRequest {
        name: "Long".into(),
        count: 1000,
        interval_ms: 50,
    }
}

async fn assert_serving(server: &TestServer) {
    let reply = native_client(server)
        .await
        .say_hello(hello("ok"))
        .await
        .unwrap();
    assert_eq!(reply.into_inner().message, "Hello, ok");
}

/// The limit counts calls on every transport: two streams, one over gRPC-Web and one over a
/// WebSocket, fill it, and a third call on any transport is refused at once.
#[tokio::test]
async fn calls_beyond_the_concurrency_limit_fail_fast_on_every_transport() {
    const REFUSAL: &str = "the server is at its limit of 2 calls in progress; retry later";
    let server = TestServer::start(|config| config.serve.max_concurrent_calls = 2).await;
    let mut grpc_web_stream = grpc_web_http1(&server)
        .say_hello_stream(long_stream())
        .await
        .unwrap()
        .into_inner();
    grpc_web_stream.message().await.unwrap().unwrap();
    let mut websocket_stream = WsCall::open(server.addr, "/hello.Greeter/SayHelloStream").await;
    websocket_stream.send(&long_stream()).await;
    websocket_stream.end().await;
    assert!(matches!(
        websocket_stream.next_frame().await,
        Some(ServerFrame::Headers(_))
    ));
    websocket_stream.next_message::<HelloReply>().await;

    let refusals = [
        (
            "native",
            native_client(&server).await.say_hello(hello("third")).await,
        ),
        (
            "gRPC-Web over HTTP/1.1",
            grpc_web_http1(&server).say_hello(hello("third")).await,
        ),
        (
            "gRPC-Web over HTTP/2",
            grpc_web_http2(&server).say_hello(hello("third")).await,
        ),
    ];
    for (transport, refused) in refusals {
        let status = refused.unwrap_err();
        assert_eq!(
            status.code(),
            Code::ResourceExhausted,
            "{transport}: {status:?}"
        );
        assert_eq!(status.message(), REFUSAL, "{transport}");
    }
    let mut call = WsCall::open(server.addr, "/hello.Greeter/SayHello").await;
    call.send(&hello("third")).await;
    call.end().await;
    let response = call.response().await;
    assert_eq!(
        response.code(),
        Code::ResourceExhausted as i32,
        "{response:?}"
    );
    assert_eq!(response.message(), REFUSAL);

    // Ending a stream frees its permit.
    drop(grpc_web_stream);
    let mut client = native_client(&server).await;
    let mut freed = false;
    for _ in 0..50 {
        if client.say_hello(hello("again")).await.is_ok() {
            freed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(freed, "the permit of a dropped stream was not released");
    server.stop().await;
}

#[tokio::test]
async fn messages_over_the_size_limit_are_out_of_range() {
    let server = TestServer::start(|config| config.serve.max_message_size = 1024).await;
    let mut client = native_client(&server).await;
    let status = client
        .say_hello(hello(&"x".repeat(2000)))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::OutOfRange, "{status:?}");
    // The sizes are what the caller needs; the wording around them is tonic's.
    for fact in ["too large", "2003 bytes", "1024 bytes"] {
        assert!(status.message().contains(fact), "{status:?}");
    }
    assert_serving(&server).await;
    server.stop().await;
}

#[tokio::test]
async fn the_server_caps_how_long_a_call_may_run() {
    let server = TestServer::start(|config| {
        config.serve.max_call_duration = Some(Duration::from_millis(300))
    })
    .await;
    let mut client = native_client(&server).await;
    let started = Instant::now();
    let mut stream = client
        .say_hello_stream(long_stream())
        .await
        .unwrap()
        .into_inner();
    let status = loop {
        match stream.message().await {
            Ok(Some(_)) => continue,
            Ok(None) => panic!("the stream ended OK past the server's limit"),
            Err(status) => break status,
        }
    };
    let ended_after = started.elapsed();
    assert_eq!(status.code(), Code::DeadlineExceeded);
    // At the limit: not before it, and not long after.
    assert!(
        // The stream alone would run 50 s.
        ended_after >= Duration::from_millis(300) && ended_after < Duration::from_secs(5),
        "ended {ended_after:?} after it started"
    );
    server.stop().await;
}

/// Reads until the server closes `connection`; returns what it sent and when it closed, counted
/// from `since`.
async fn read_until_closed(connection: &mut TcpStream, since: Instant) -> (Vec<u8>, Duration) {
    let mut received = Vec::new();
    let read = tokio::time::timeout(
        Duration::from_secs(10),
        connection.read_to_end(&mut received),
    )
    .await
    .expect("the server closes the connection within 10 s");
    // A reset is a close too.
    let _ = read;
    (received, since.elapsed())
}

fn assert_cut_off_at_300_ms(after: Duration) {
    assert!(
        // Well before the 10 s default, on two loaded cores too.
        after >= Duration::from_millis(300) && after < Duration::from_secs(5),
        "cut off {after:?} after connecting, with a 300 ms limit"
    );
}

#[tokio::test]
async fn slow_headers_are_cut_off() {
    let server =
        TestServer::start(|config| config.serve.header_read_timeout = Duration::from_millis(300))
            .await;
    let connected = Instant::now();
    let mut slow = TcpStream::connect(server.addr).await.unwrap();
    slow.write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\nX-Slow: ")
        .await
        .unwrap();
    // The rest of the headers never comes; the server closes the connection.
    let (received, after) = read_until_closed(&mut slow, connected).await;
    let response = String::from_utf8_lossy(&received).into_owned();
    assert!(
        response.is_empty() || response.starts_with("HTTP/1.1 408"),
        "{response}"
    );
    assert_cut_off_at_300_ms(after);
    assert_serving(&server).await;
    server.stop().await;
}

/// HTTP/2: a HEADERS frame whose header block never ends (no END_HEADERS, no CONTINUATION) is no
/// request yet, so the connection is closed at the header read timeout like a silent one.
#[tokio::test]
async fn slow_headers_over_http2_are_cut_off() {
    const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
    const EMPTY_SETTINGS: &[u8] = &[0, 0, 0, 0x4, 0, 0, 0, 0, 0];
    // Stream 1, END_STREAM but not END_HEADERS, one HPACK byte (`:method: GET`).
    const UNFINISHED_HEADERS: &[u8] = &[0, 0, 1, 0x1, 0x1, 0, 0, 0, 1, 0x82];
    let server =
        TestServer::start(|config| config.serve.header_read_timeout = Duration::from_millis(300))
            .await;
    let connected = Instant::now();
    let mut slow = TcpStream::connect(server.addr).await.unwrap();
    slow.write_all(&[PREFACE, EMPTY_SETTINGS, UNFINISHED_HEADERS].concat())
        .await
        .unwrap();
    let (received, after) = read_until_closed(&mut slow, connected).await;
    // The server's SETTINGS came first, and a GOAWAY (type 0x7) before the close.
    assert_eq!(received.get(3), Some(&0x4), "{received:?}");
    assert!(
        h2_frame_types(&received).contains(&0x7),
        "no GOAWAY in {received:?}"
    );
    assert_cut_off_at_300_ms(after);
    assert_serving(&server).await;
    server.stop().await;
}

/// The types of the HTTP/2 frames in `bytes`, in order.
fn h2_frame_types(mut bytes: &[u8]) -> Vec<u8> {
    let mut types = Vec::new();
    while bytes.len() >= 9 {
        let length = u32::from_be_bytes([0, bytes[0], bytes[1], bytes[2]]) as usize;
        types.push(bytes[3]);
        bytes = bytes.get(9 + length..).unwrap_or_default();
    }
    types
}

#[tokio::test]
async fn oversized_headers_get_431() {
    let server = TestServer::start(|_| {}).await;
    let mut client = TcpStream::connect(server.addr).await.unwrap();
    let huge = "a".repeat(100 * 1024);
    client
        .write_all(
            format!("GET / HTTP/1.1\r\nHost: localhost\r\nX-Huge: {huge}\r\n\r\n").as_bytes(),
        )
        .await
        .unwrap();
    let mut response = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), client.read_to_end(&mut response)).await;
    let response = String::from_utf8_lossy(&response);
    assert!(response.starts_with("HTTP/1.1 431"), "{response}");
    assert_serving(&server).await;
    server.stop().await;
}

#[tokio::test]
async fn connections_beyond_the_cap_wait_for_a_free_slot() {
    let server = TestServer::start(|config| config.serve.max_connections = 2).await;
    let request = "GET / HTTP/1.1\r\nHost: localhost\r\n\r\n";
    let open = |_| async {
        let mut connection = TcpStream::connect(server.addr).await.unwrap();
        connection.write_all(request.as_bytes()).await.unwrap();
        let mut buffer = [0u8; 12];
        connection.read_exact(&mut buffer).await.unwrap();
        assert_eq!(&buffer, b"HTTP/1.1 200");
        connection
    };
    let held = [open(0).await, open(1).await];

    // A third connection is accepted by the kernel but not served while two are open.
    let mut third = TcpStream::connect(server.addr).await.unwrap();
    third.write_all(request.as_bytes()).await.unwrap();
    let mut buffer = [0u8; 12];
    let waited =
        tokio::time::timeout(Duration::from_millis(500), third.read_exact(&mut buffer)).await;
    assert!(
        waited.is_err(),
        "the third connection was served past the cap"
    );

    drop(held);
    tokio::time::timeout(Duration::from_secs(5), third.read_exact(&mut buffer))
        .await
        .expect("served once a slot is free")
        .unwrap();
    assert_eq!(&buffer, b"HTTP/1.1 200");
    server.stop().await;
}

/// Connections carry TCP keepalive, so a peer that vanished without closing is found: the kernel
/// shows the keepalive timer (2 in /proc/net/tcp's `tr` column) on the server's side of an idle
/// one, due to fire 30 s after the connection went quiet.
#[tokio::test]
async fn idle_connections_are_probed_by_tcp_keepalive_after_30_s() {
    let server = TestServer::start(|_| {}).await;
    let client = TcpStream::connect(server.addr).await.unwrap();
    let client_port = client.local_addr().unwrap().port();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let table = std::fs::read_to_string("/proc/net/tcp").unwrap();
    let port_of = |address: &str| u16::from_str_radix(address.rsplit(':').next().unwrap(), 16);
    let server_side = table
        .lines()
        .skip(1)
        .map(|line| line.split_whitespace().collect::<Vec<_>>())
        .find(|fields| {
            port_of(fields[1]) == Ok(server.addr.port()) && port_of(fields[2]) == Ok(client_port)
        })
        .unwrap_or_else(|| panic!("no server-side socket for port {client_port} in\n{table}"));
    let (timer, due_in) = server_side[5].split_once(':').unwrap();
    assert_eq!(timer, "02", "timer of {server_side:?}");
    // The time left, in clock ticks: just under 30 s, the connection having been idle 200 ms.
    // SAFETY: sysconf has no preconditions.
    let ticks_per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    let due_in = u64::from_str_radix(due_in, 16).unwrap() as f64 / ticks_per_second;
    assert!(
        (28.0..=30.0).contains(&due_in),
        "the first probe is due in {due_in} s"
    );
    drop(client);
    server.stop().await;
}

/// `--max-streams-per-connection` is advertised in the server's SETTINGS, and enforced on a
/// client that ignores it: the stream past the limit is refused (RST_STREAM REFUSED_STREAM, which
/// a client may retry elsewhere), while the streams within it go on and the server keeps serving.
#[tokio::test]
async fn streams_per_connection_are_capped() {
    use test_support::h2::{self, grpc_request, headers, settings, settings_ack, PREFACE};
    let server = TestServer::start(|config| config.serve.max_streams_per_connection = 2).await;
    let mut raw = TcpStream::connect(server.addr).await.unwrap();
    raw.write_all(PREFACE).await.unwrap();
    raw.write_all(&settings(&[])).await.unwrap();
    let (kind, _, _, payload) = read_frame(&mut raw).await;
    assert_eq!(kind, 0x4, "the server's first frame is its SETTINGS");
    let max_concurrent_streams = payload.chunks(6).find_map(|setting| {
        (setting[..2] == [0, 0x3])
            .then(|| u32::from_be_bytes([setting[2], setting[3], setting[4], setting[5]]))
    });
    assert_eq!(max_concurrent_streams, Some(2));
    raw.write_all(&settings_ack()).await.unwrap();

    // Three calls whose request bodies never end: the first two stay open, the third is refused.
    let authority = server.addr.to_string();
    let request = grpc_request("/hello.Greeter/SayHello", &authority);
    for stream in [1, 3, 5] {
        raw.write_all(&headers(stream, &request, false))
            .await
            .unwrap();
    }
    let refused = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            let (kind, _, stream, payload) = read_frame(&mut raw).await;
            if kind == 0x3 {
                break (stream, u32::from_be_bytes(payload[..4].try_into().unwrap()));
            }
        }
    })
    .await
    .expect("a stream past the limit was reset");
    const REFUSED_STREAM: u32 = 0x7;
    assert_eq!(refused, (5, REFUSED_STREAM));
    // The two within the limit are still open: finishing one's request answers it.
    raw.write_all(&h2::data(1, &h2::grpc_message(b"\x0a\x03one"), true))
        .await
        .unwrap();
    let answered = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            let (kind, flags, stream, _) = read_frame(&mut raw).await;
            if kind == 0x1 && stream == 1 && flags & 0x1 != 0 {
                break;
            }
            assert!(!(kind == 0x3 && stream == 1), "stream 1 was reset");
        }
    })
    .await;
    assert!(answered.is_ok(), "stream 1 was not answered");
    drop(raw);
    assert_serving(&server).await;
    server.stop().await;
}

/// HTTP/2 header lists are bounded at 64 KiB, as HTTP/1.1's request heads are: the bound is
/// advertised (SETTINGS_MAX_HEADER_LIST_SIZE), a request whose header list decodes to more is
/// answered 431 and its stream ended, one just under the bound is served, and so is the next
/// request on the same connection.
#[tokio::test]
async fn http2_header_lists_over_64_kib_get_431() {
    use test_support::h2::{headers_continued, settings, settings_ack, PREFACE};
    const MAX_HEADER_LIST_SIZE: u16 = 0x6;
    let server = TestServer::start(|_| {}).await;
    let mut raw = TcpStream::connect(server.addr).await.unwrap();
    raw.write_all(PREFACE).await.unwrap();
    raw.write_all(&settings(&[])).await.unwrap();
    let (kind, _, _, payload) = read_frame(&mut raw).await;
    assert_eq!(kind, 0x4, "the server's first frame is its SETTINGS");
    let advertised = payload.chunks(6).find_map(|setting| {
        (setting[..2] == MAX_HEADER_LIST_SIZE.to_be_bytes())
            .then(|| u32::from_be_bytes([setting[2], setting[3], setting[4], setting[5]]))
    });
    assert_eq!(advertised, Some(64 * 1024));
    raw.write_all(&settings_ack()).await.unwrap();

    let authority = server.addr.to_string();
    // HTTP/2 counts each field as its name, its value and 32 bytes.
    let request = |stream: u32, padding: usize| {
        let padding = "a".repeat(padding);
        let fields = [
            (":method", "GET"),
            (":scheme", "http"),
            (":path", "/livez"),
            (":authority", authority.as_str()),
            ("x-padding", padding.as_str()),
        ];
        headers_continued(stream, &fields, true)
    };
    // The first byte of a response header block holding `:status: 200` (static table entry 8).
    const STATUS_200: u8 = 0x88;
    for (stream, padding, served) in [(1, 60 * 1024, true), (3, 70 * 1024, false), (5, 0, true)] {
        raw.write_all(&request(stream, padding)).await.unwrap();
        let (flags, block) = tokio::time::timeout(Duration::from_secs(5), async {
            loop {
                let (kind, flags, on, payload) = read_frame(&mut raw).await;
                assert!(kind != 0x7, "the connection was closed: GOAWAY {payload:?}");
                if kind == 0x1 && on == stream {
                    break (flags, payload);
                }
            }
        })
        .await
        .unwrap_or_else(|_| panic!("no response on stream {stream} within 5 s"));
        assert_eq!(
            block.first() == Some(&STATUS_200),
            served,
            "stream {stream} ({padding} bytes of padding): response header block {block:?}"
        );
        if !served {
            // `:status` by its static-table name (entry 8), then "431", plain or Huffman-coded
            // ('4' 011010, '3' 011001, '1' 00001, padded with ones).
            let status_431 = [
                [0x48, 0x03, b'4', b'3', b'1'],
                [0x48, 0x83, 0b0110_1001, 0b1001_0000, 0b1111_1111],
            ];
            assert!(status_431.iter().any(|status| block == status), "{block:?}");
            assert_ne!(flags & 0x1, 0, "the refusal ends its stream");
        }
    }
    drop(raw);
    assert_serving(&server).await;
    server.stop().await;
}

/// An HTTP/2 connection idle past `--idle-timeout` after serving a request is closed with a GOAWAY,
/// so its client knows no request was lost.
#[tokio::test]
async fn an_idle_http2_connection_is_closed_with_a_goaway() {
    use test_support::h2::{headers, settings, settings_ack, PREFACE};
    let server =
        TestServer::start(|config| config.serve.idle_timeout = Duration::from_millis(300)).await;
    let mut raw = TcpStream::connect(server.addr).await.unwrap();
    raw.write_all(PREFACE).await.unwrap();
    raw.write_all(&settings(&[])).await.unwrap();
    raw.write_all(&settings_ack()).await.unwrap();
    let authority = server.addr.to_string();
    let request = [
        (":method", "GET"),
        (":scheme", "http"),
        (":path", "/livez"),
        (":authority", authority.as_str()),
    ];
    raw.write_all(&headers(1, &request, true)).await.unwrap();
    let served = Instant::now();
    let (goaway, after) = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let (kind, _, _, payload) = read_frame(&mut raw).await;
            if kind == 0x7 {
                break (payload, served.elapsed());
            }
        }
    })
    .await
    .expect("a GOAWAY within 10 s");
    // A graceful close: NO_ERROR.
    assert_eq!(&goaway[4..8], &[0, 0, 0, 0], "{goaway:?}");
    assert!(
        after >= Duration::from_millis(300) && after < Duration::from_secs(5),
        "GOAWAY {after:?} after the request"
    );
    let mut rest = Vec::new();
    let closed = tokio::time::timeout(Duration::from_secs(5), raw.read_to_end(&mut rest)).await;
    assert!(closed.is_ok(), "the connection stays open after its GOAWAY");
    assert_serving(&server).await;
    server.stop().await;
}

/// One HTTP/2 frame: its type, flags, stream and payload.
async fn read_frame(connection: &mut TcpStream) -> (u8, u8, u32, Vec<u8>) {
    let mut head = [0u8; 9];
    connection.read_exact(&mut head).await.unwrap();
    let len = u32::from_be_bytes([0, head[0], head[1], head[2]]) as usize;
    let stream = u32::from_be_bytes([head[5] & 0x7f, head[6], head[7], head[8]]);
    let mut payload = vec![0u8; len];
    connection.read_exact(&mut payload).await.unwrap();
    (head[3], head[4], stream, payload)
}

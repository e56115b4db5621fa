//! The server's limits, each shown failing fast with a clear status or HTTP code, and the server
//! serving normally right after.

mod support;

use std::time::Duration;

use hello_proto::{HelloRequest, HelloStreamRequest};
use support::{native_client, TestServer};
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

#[tokio::test]
async fn calls_beyond_the_concurrency_limit_fail_fast() {
    let server = TestServer::start(|config| config.max_concurrent_calls = 2).await;
    let mut client = native_client(&server).await;
    let mut first = client
        .say_hello_stream(long_stream())
        .await
        .unwrap()
        .into_inner();
    let mut second = client
        .say_hello_stream(long_stream())
        .await
        .unwrap()
        .into_inner();
    first.message().await.unwrap().unwrap();
    second.message().await.unwrap().unwrap();

    // Both permits are held by the open streams: a third call is refused at once.
    let started = std::time::Instant::now();
    let status = client.say_hello(hello("third")).await.unwrap_err();
    assert_eq!(status.code(), Code::ResourceExhausted);
    assert_eq!(
        status.message(),
        "the server is at its limit of 2 calls in progress; retry later"
    );
    assert!(started.elapsed() < Duration::from_secs(1));

    // Ending a stream frees its permit.
    drop(first);
    let mut freed = false;
    for _ in 0..50 {
        if client.say_hello(hello("again")).await.is_ok() {
            freed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(freed, "the permit of a dropped stream was not released");
    drop(second);
    server.stop().await;
}

#[tokio::test]
async fn messages_over_the_size_limit_are_out_of_range() {
    let server = TestServer::start(|config| config.max_message_size = 1024).await;
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
    let server =
        TestServer::start(|config| config.max_call_duration = Some(Duration::from_millis(300)))
            .await;
    let mut client = native_client(&server).await;
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
    assert_eq!(status.code(), Code::DeadlineExceeded);
    server.stop().await;
}

#[tokio::test]
async fn slow_headers_are_cut_off() {
    let server =
        TestServer::start(|config| config.header_read_timeout = Duration::from_millis(300)).await;
    let mut slow = TcpStream::connect(server.addr).await.unwrap();
    slow.write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\nX-Slow: ")
        .await
        .unwrap();
    // The rest of the headers never comes; the server closes the connection.
    let mut buffer = [0u8; 1024];
    let read = tokio::time::timeout(Duration::from_secs(5), slow.read(&mut buffer))
        .await
        .expect("the server closes a slow-header connection within 5 s");
    let response = String::from_utf8_lossy(&buffer[..read.unwrap_or(0)]).into_owned();
    assert!(
        response.is_empty() || response.starts_with("HTTP/1.1 408"),
        "{response}"
    );
    assert_serving(&server).await;
    server.stop().await;
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
    let server = TestServer::start(|config| config.max_connections = 2).await;
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
/// shows the keepalive timer (2 in /proc/net/tcp's `tr` column) on the server's side of an idle one.
#[tokio::test]
async fn idle_connections_are_probed_by_tcp_keepalive() {
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
    let timer = server_side[5].split(':').next().unwrap();
    assert_eq!(timer, "02", "timer of {server_side:?}");
    drop(client);
    server.stop().await;
}

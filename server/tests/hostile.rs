//! Hostile and malformed gRPC-Web input, sent as raw HTTP: each case gets an exact gRPC status or
//! HTTP code with a message, never a panic or a hang, and a normal call succeeds right after.

mod support;

use std::time::Duration;

use bytes::Bytes;
use http::{header, Method, Request, StatusCode};
use http_body_util::Full;
use support::{
    http1_client, native_client, percent_decode, send, HttpClient, ServerProcess, TestServer,
};

const PATH: &str = "/hello.Greeter/SayHello";

/// What came back: the HTTP status, and the gRPC status and message if there was one.
#[derive(Debug, PartialEq)]
struct Outcome {
    http: StatusCode,
    grpc: Option<(u32, String)>,
}

/// Reads the gRPC status from the headers (trailers-only) or from the trailer frame of the body.
async fn call(client: &HttpClient, request: Request<Full<Bytes>>) -> Outcome {
    let reply = tokio::time::timeout(Duration::from_secs(5), send(client, request))
        .await
        .expect("the server answers within 5 s");
    let from_headers = reply.header("grpc-status").map(|code| {
        (
            code.parse().unwrap(),
            percent_decode(reply.header("grpc-message").unwrap_or_default()),
        )
    });
    let from_body = trailer_frame(&reply.body);
    Outcome {
        http: reply.status,
        grpc: from_headers.or(from_body),
    }
}

fn trailer_frame(body: &[u8]) -> Option<(u32, String)> {
    let mut rest = body;
    while rest.len() >= 5 {
        let length = u32::from_be_bytes([rest[1], rest[2], rest[3], rest[4]]) as usize;
        let frame = rest.get(5..5 + length)?;
        if rest[0] & 0x80 != 0 {
            let text = String::from_utf8_lossy(frame);
            let mut code = None;
            let mut message = String::new();
            for line in text.split("\r\n") {
                if let Some((name, value)) = line.split_once(':') {
                    match name.trim().to_ascii_lowercase().as_str() {
                        "grpc-status" => code = value.trim().parse().ok(),
                        "grpc-message" => message = percent_decode(value.trim()),
                        _ => {}
                    }
                }
            }
            return code.map(|code| (code, message));
        }
        rest = &rest[5 + length..];
    }
    None
}

fn grpc_web(base_url: &str, content_type: Option<&str>, body: &[u8]) -> Request<Full<Bytes>> {
    let mut request = Request::post(format!("{base_url}{PATH}"));
    if let Some(content_type) = content_type {
        request = request.header(header::CONTENT_TYPE, content_type);
    }
    request
        .header("x-grpc-web", "1")
        .body(Full::new(Bytes::copy_from_slice(body)))
        .unwrap()
}

async fn assert_serving(server: &TestServer) {
    let reply = native_client(server)
        .await
        .say_hello(hello_proto::HelloRequest { name: "ok".into() })
        .await
        .unwrap();
    assert_eq!(reply.into_inner().message, "Hello, ok");
}

/// Every malformed request, with the outcome it must get, for the server at `base_url` (whose
/// maximum message size is 1,024 bytes).
fn malformed_cases(base_url: &str) -> Vec<(&'static str, Request<Full<Bytes>>, Outcome)> {
    let proto = Some("application/grpc-web+proto");
    let grpc = |code: u32, message: &str| Outcome {
        http: StatusCode::OK,
        grpc: Some((code, message.to_owned())),
    };
    let http = |status: StatusCode| Outcome {
        http: status,
        grpc: None,
    };
    vec![
        (
            "truncated prefix",
            grpc_web(base_url, proto, &[0, 0, 0]),
            grpc(13, "Unexpected EOF decoding stream."),
        ),
        (
            "length prefix larger than the body",
            grpc_web(base_url, proto, &[0, 0, 0, 0, 100, 0x0a, 0x01, b'a']),
            grpc(13, "Unexpected EOF decoding stream."),
        ),
        (
            "length over the maximum message size",
            grpc_web(base_url, proto, &[0, 0x7f, 0xff, 0xff, 0xff, 0x0a]),
            grpc(
                11,
                "Error, decoded message length too large: found 2147483647 bytes, the limit is: 1024 bytes",
            ),
        ),
        (
            "compressed flag without grpc-encoding",
            grpc_web(base_url, proto, &[1, 0, 0, 0, 3, 0x0a, 0x01, b'a']),
            grpc(
                13,
                "protocol error: received message with compressed-flag but no grpc-encoding was specified",
            ),
        ),
        (
            "invalid base64 in grpc-web-text",
            grpc_web(base_url, Some("application/grpc-web-text"), b"!!not base64!!"),
            grpc(13, "tonic-web: Invalid symbol 33, offset 0."),
        ),
        (
            "bytes that are not a HelloRequest",
            grpc_web(base_url, proto, &[0, 0, 0, 0, 2, 0xff, 0xff]),
            grpc(13, "failed to decode Protobuf message: invalid varint"),
        ),
        (
            "invalid UTF-8 in name",
            grpc_web(base_url, proto, &[0, 0, 0, 0, 4, 0x0a, 0x02, 0xff, 0xfe]),
            grpc(
                13,
                "failed to decode Protobuf message: HelloRequest.name: invalid string value: data is not UTF-8 encoded",
            ),
        ),
        (
            "wrong content-type",
            grpc_web(base_url, Some("text/plain"), &[0, 0, 0, 0, 0]),
            http(StatusCode::BAD_REQUEST),
        ),
        (
            "missing content-type",
            grpc_web(base_url, None, &[0, 0, 0, 0, 0]),
            http(StatusCode::BAD_REQUEST),
        ),
        (
            "GET on a method path",
            Request::builder()
                .method(Method::GET)
                .uri(format!("{base_url}{PATH}"))
                .header(header::CONTENT_TYPE, "application/grpc-web+proto")
                .body(Full::default())
                .unwrap(),
            http(StatusCode::METHOD_NOT_ALLOWED),
        ),
    ]
}

#[tokio::test]
async fn malformed_grpc_web_bodies() {
    let server = TestServer::start(|config| config.max_message_size = 1024).await;
    let client = http1_client();
    let cases = malformed_cases(&server.url());
    for (case, request, expected) in cases {
        assert_eq!(call(&client, request).await, expected, "{case}");
        assert_serving(&server).await;
    }
    server.stop().await;
}

/// hyper frames such a request by its chunked encoding, as RFC 9112 allows, drops the
/// Content-Length, and closes the connection after responding, so nothing left in the stream can
/// be read as a second, smuggled request.
#[tokio::test]
async fn conflicting_content_length_and_transfer_encoding_close_the_connection() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let server = TestServer::start(|_| {}).await;
    let mut connection = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    // Chunked, the body is empty; by Content-Length, it would be 5 bytes, and the bytes after it a
    // second request.
    connection
        .write_all(
            format!(
                "POST {PATH} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/grpc-web+proto\r\n\
                 Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n\
                 GET /smuggled HTTP/1.1\r\nHost: localhost\r\n\r\n"
            )
            .as_bytes(),
        )
        .await
        .unwrap();
    let mut response = Vec::new();
    tokio::time::timeout(
        Duration::from_secs(5),
        connection.read_to_end(&mut response),
    )
    .await
    .expect("the server closes the connection after its response")
    .unwrap();
    let response = String::from_utf8_lossy(&response);
    assert!(response.starts_with("HTTP/1.1 200 OK"), "{response}");
    assert!(response.contains("grpc-status: 13"), "{response}");
    assert!(
        response.contains("grpc-message: Missing%20request%20message."),
        "{response}"
    );
    assert_eq!(
        response.matches("HTTP/1.1").count(),
        1,
        "a second response: {response}"
    );
    assert_serving(&server).await;
    server.stop().await;
}

#[tokio::test]
async fn ten_thousand_connections_opened_and_dropped() {
    let server = TestServer::start(|_| {}).await;
    // In batches of 500 at once: the point is many connections, not a slow serial loop.
    for _ in 0..20 {
        let batch = (0..500).map(|_| tokio::net::TcpStream::connect(server.addr));
        for connection in futures_util::future::join_all(batch).await {
            drop(connection.unwrap());
        }
    }
    assert_serving(&server).await;
    server.stop().await;
}

/// The same malformed requests, 100 rounds of them, against the real binary: its memory must not
/// grow with them.
#[tokio::test]
async fn hostile_input_leaves_memory_bounded() {
    let server = ServerProcess::start(&["--max-message-size", "1024"]).await;
    let base_url = server.url();
    let client = http1_client();
    let mut rss_after_warm_up = 0;
    for round in 0..101 {
        for (case, request, expected) in malformed_cases(&base_url) {
            assert_eq!(call(&client, request).await, expected, "{case}");
        }
        if round == 0 {
            rss_after_warm_up = server.rss_kib();
        }
    }
    let rss_end = server.rss_kib();
    println!("hostile input x100: server RSS {rss_after_warm_up} KiB -> {rss_end} KiB");
    assert!(
        rss_end < rss_after_warm_up + 8 * 1024,
        "RSS grew from {rss_after_warm_up} KiB to {rss_end} KiB"
    );
}

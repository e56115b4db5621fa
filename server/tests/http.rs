//! The HTTP face of the server: the page, raw gRPC-Web frames as a browser sends them, unknown
//! services, and the CORS policy.

mod support;

use bytes::Bytes;
use http::{header, Method, Request, StatusCode};
use http_body_util::Full;
use support::{http1_client, http2_client, send, TestServer, INDEX_HTML};

fn get(server: &TestServer, path: &str) -> Request<Full<Bytes>> {
    Request::get(format!("{}{path}", server.url()))
        .body(Full::default())
        .unwrap()
}

/// A gRPC-Web request for SayHello{name: "world"}: one uncompressed data frame.
fn grpc_web_hello_world(server: &TestServer, path: &str) -> Request<Full<Bytes>> {
    Request::post(format!("{}{path}", server.url()))
        .header(header::CONTENT_TYPE, "application/grpc-web+proto")
        .header("x-grpc-web", "1")
        .body(Full::new(Bytes::from_static(
            b"\x00\x00\x00\x00\x07\x0a\x05world",
        )))
        .unwrap()
}

#[tokio::test]
async fn serves_the_page_at_root_and_for_unknown_paths() {
    let server = TestServer::start(|_| {}).await;
    let client = http1_client();
    for path in ["/", "/index.html", "/some/app/route", "/missing.js"] {
        let reply = send(&client, get(&server, path)).await;
        assert_eq!(reply.status, StatusCode::OK, "{path}");
        assert_eq!(reply.header("content-type"), Some("text/html"), "{path}");
        assert_eq!(reply.body, INDEX_HTML, "{path}");
    }
    server.stop().await;
}

#[tokio::test]
async fn serves_assets_with_their_content_types() {
    let server = TestServer::start(|_| {}).await;
    let client = http1_client();
    let wasm = send(&client, get(&server, "/assets/app-0123abcd_bg.wasm")).await;
    assert_eq!(wasm.status, StatusCode::OK);
    assert_eq!(wasm.header("content-type"), Some("application/wasm"));
    assert_eq!(&wasm.body[..4], b"\0asm");

    let js = send(&client, get(&server, "/assets/app-0123abcd.js")).await;
    assert_eq!(js.status, StatusCode::OK);
    assert_eq!(js.header("content-type"), Some("text/javascript"));
    server.stop().await;
}

#[tokio::test]
async fn path_traversal_does_not_leave_the_page_directory() {
    let server = TestServer::start(|_| {}).await;
    let client = http1_client();
    for path in [
        "/../Cargo.toml",
        "/assets/../../etc/passwd",
        "/%2e%2e/%2e%2e/etc/passwd",
    ] {
        let reply = send(&client, get(&server, path)).await;
        assert!(
            reply.status == StatusCode::NOT_FOUND
                || reply.status == StatusCode::BAD_REQUEST
                || reply.body == INDEX_HTML,
            "{path}: {}",
            reply.status
        );
        assert!(
            !String::from_utf8_lossy(&reply.body).contains("root:"),
            "{path}"
        );
    }
    server.stop().await;
}

#[tokio::test]
async fn answers_raw_grpc_web_frames_over_http1_and_http2() {
    let server = TestServer::start(|_| {}).await;
    for client in [http1_client(), http2_client()] {
        let reply = send(
            &client,
            grpc_web_hello_world(&server, "/hello.Greeter/SayHello"),
        )
        .await;
        assert_eq!(reply.status, StatusCode::OK);
        assert_eq!(
            reply.header("content-type"),
            Some("application/grpc-web+proto")
        );
        // A data frame holding HelloReply{message: "Hello, world"}, then the trailers frame.
        let message = b"\x0a\x0cHello, world";
        let mut expected = vec![0u8, 0, 0, 0, message.len() as u8];
        expected.extend_from_slice(message);
        assert_eq!(&reply.body[..expected.len()], &expected[..]);
        let trailers = &reply.body[expected.len()..];
        assert_eq!(trailers[0], 0x80, "trailers frame flag");
        let trailer_text = String::from_utf8_lossy(&trailers[5..]).to_lowercase();
        assert!(trailer_text.contains("grpc-status:0"), "{trailer_text}");
    }
    server.stop().await;
}

#[tokio::test]
async fn unknown_services_and_methods_are_unimplemented() {
    let server = TestServer::start(|_| {}).await;
    let client = http1_client();
    for path in ["/hello.Greeter/SayGoodbye", "/nope.Nothing/Call"] {
        let reply = send(&client, grpc_web_hello_world(&server, path)).await;
        assert_eq!(reply.status, StatusCode::OK, "{path}");
        assert_eq!(reply.header("grpc-status"), Some("12"), "{path}");
    }

    // Native gRPC to an unknown method, with a hand-made path on the generated client's channel.
    let channel = tonic::transport::Endpoint::from_shared(server.url())
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready().await.unwrap();
    let status = grpc
        .unary::<_, hello_proto::HelloReply, _>(
            tonic::Request::new(hello_proto::HelloRequest { name: "a".into() }),
            http::uri::PathAndQuery::from_static("/hello.Greeter/SayGoodbye"),
            tonic_prost::ProstCodec::default(),
        )
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::Unimplemented);
    server.stop().await;
}

fn preflight(server: &TestServer, origin: &str) -> Request<Full<Bytes>> {
    Request::builder()
        .method(Method::OPTIONS)
        .uri(format!("{}/hello.Greeter/SayHello", server.url()))
        .header(header::ORIGIN, origin)
        .header(header::ACCESS_CONTROL_REQUEST_METHOD, "POST")
        .header(
            header::ACCESS_CONTROL_REQUEST_HEADERS,
            "content-type,x-grpc-web,x-user-agent,grpc-timeout",
        )
        .body(Full::default())
        .unwrap()
}

#[tokio::test]
async fn cors_preflight_from_an_allowed_origin() {
    let server = TestServer::start(|config| {
        config.allow_origins = vec!["https://app.example.com".parse().unwrap()];
    })
    .await;
    let client = http1_client();
    let reply = send(&client, preflight(&server, "https://app.example.com")).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(
        reply.header("access-control-allow-origin"),
        Some("https://app.example.com")
    );
    let allowed_headers = reply.header("access-control-allow-headers").unwrap();
    for name in ["content-type", "x-grpc-web", "x-user-agent", "grpc-timeout"] {
        assert!(allowed_headers.contains(name), "{allowed_headers}");
    }

    // The actual call exposes the gRPC status headers to the page.
    let mut call = grpc_web_hello_world(&server, "/hello.Greeter/SayHello");
    call.headers_mut()
        .insert(header::ORIGIN, "https://app.example.com".parse().unwrap());
    let reply = send(&client, call).await;
    assert_eq!(
        reply.header("access-control-allow-origin"),
        Some("https://app.example.com")
    );
    let exposed = reply.header("access-control-expose-headers").unwrap();
    for name in ["grpc-status", "grpc-message", "grpc-status-details-bin"] {
        assert!(exposed.contains(name), "{exposed}");
    }
    server.stop().await;
}

#[tokio::test]
async fn cors_preflight_from_a_disallowed_origin_is_refused() {
    let server = TestServer::start(|config| {
        config.allow_origins = vec!["https://app.example.com".parse().unwrap()];
    })
    .await;
    let client = http1_client();
    for origin in ["https://evil.example.com", "http://127.0.0.1:8080"] {
        let reply = send(&client, preflight(&server, origin)).await;
        assert_eq!(reply.status, StatusCode::FORBIDDEN, "{origin}");
        assert_eq!(reply.header("access-control-allow-origin"), None);
    }
    server.stop().await;
}

#[tokio::test]
async fn dev_mode_allows_loopback_origins() {
    let server = TestServer::start(|config| config.dev = true).await;
    let client = http1_client();
    let reply = send(&client, preflight(&server, "http://127.0.0.1:8080")).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(
        reply.header("access-control-allow-origin"),
        Some("http://127.0.0.1:8080")
    );
    let reply = send(&client, preflight(&server, "https://evil.example.com")).await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
    server.stop().await;
}

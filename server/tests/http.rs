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
        assert_eq!(
            reply.header("content-type"),
            Some("text/html; charset=utf-8"),
            "{path}"
        );
        assert_eq!(reply.body, INDEX_HTML, "{path}");
    }
    server.stop().await;
}

#[tokio::test]
async fn serves_assets_with_their_content_types() {
    let server = TestServer::start(|_| {}).await;
    let client = http1_client();
    let wasm = send(
        &client,
        get(&server, "/assets/app-0123456789abcdef_bg.wasm"),
    )
    .await;
    assert_eq!(wasm.status, StatusCode::OK);
    assert_eq!(wasm.header("content-type"), Some("application/wasm"));
    assert_eq!(&wasm.body[..4], b"\0asm");

    let js = send(&client, get(&server, "/app-0123456789abcdef.js")).await;
    assert_eq!(js.status, StatusCode::OK);
    assert_eq!(
        js.header("content-type"),
        Some("text/javascript; charset=utf-8")
    );
    assert_eq!(js.header("x-content-type-options"), Some("nosniff"));
    server.stop().await;
}

fn get_with(server: &TestServer, path: &str, name: &str, value: &str) -> Request<Full<Bytes>> {
    Request::get(format!("{}{path}", server.url()))
        .header(name, value)
        .body(Full::default())
        .unwrap()
}

#[tokio::test]
async fn serves_brotli_or_gzip_as_the_browser_prefers() {
    use std::io::Read;
    let server = TestServer::start(|_| {}).await;
    let client = http1_client();
    let path = "/app-0123456789abcdef.js";
    let original = "export default 1;\n".repeat(200);

    let br = send(
        &client,
        get_with(&server, path, "accept-encoding", "gzip, deflate, br"),
    )
    .await;
    assert_eq!(br.header("content-encoding"), Some("br"));
    assert_eq!(br.header("vary"), Some("accept-encoding"));
    let mut decoded = String::new();
    brotli::Decompressor::new(&br.body[..], 4096)
        .read_to_string(&mut decoded)
        .unwrap();
    assert_eq!(decoded, original);
    assert!(
        br.body.len() < original.len() / 10,
        "{} bytes",
        br.body.len()
    );

    let gzip = send(&client, get_with(&server, path, "accept-encoding", "gzip")).await;
    assert_eq!(gzip.header("content-encoding"), Some("gzip"));
    let mut decoded = String::new();
    flate2::read::GzDecoder::new(&gzip.body[..])
        .read_to_string(&mut decoded)
        .unwrap();
    assert_eq!(decoded, original);

    let plain = send(&client, get(&server, path)).await;
    assert_eq!(plain.header("content-encoding"), None);
    assert_eq!(plain.body, original);
    server.stop().await;
}

#[tokio::test]
async fn etags_give_304_and_caching_follows_the_file_name() {
    let server = TestServer::start(|_| {}).await;
    let client = http1_client();
    for (path, cache_control) in [
        ("/", "no-cache"),
        (
            "/app-0123456789abcdef.js",
            "public, max-age=31536000, immutable",
        ),
    ] {
        let first = send(&client, get(&server, path)).await;
        assert_eq!(first.header("cache-control"), Some(cache_control), "{path}");
        let etag = first.header("etag").unwrap().to_owned();
        assert!(etag.starts_with('"') && etag.ends_with('"'), "{etag}");

        let again = send(&client, get_with(&server, path, "if-none-match", &etag)).await;
        assert_eq!(again.status, StatusCode::NOT_MODIFIED, "{path}");
        assert!(again.body.is_empty());
        let changed = send(
            &client,
            get_with(&server, path, "if-none-match", "\"other\""),
        )
        .await;
        assert_eq!(changed.status, StatusCode::OK, "{path}");
    }
    server.stop().await;
}

#[tokio::test]
async fn the_page_carries_a_content_security_policy() {
    use base64::Engine;
    use sha2::Digest;
    let server = TestServer::start(|_| {}).await;
    let reply = send(&http1_client(), get(&server, "/")).await;
    let csp = reply.header("content-security-policy").unwrap();
    let hash = base64::engine::general_purpose::STANDARD
        .encode(sha2::Sha256::digest(support::INLINE_SCRIPT.as_bytes()));
    let host = server.addr;
    assert_eq!(
        csp,
        format!(
            "default-src 'self'; script-src 'self' 'wasm-unsafe-eval' 'sha256-{hash}'; \
             connect-src 'self' ws://{host} wss://{host}; img-src 'self' data:; object-src 'none'; \
             base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
        )
    );
    server.stop().await;
}

#[tokio::test]
async fn the_page_answers_get_and_head_only() {
    let server = TestServer::start(|_| {}).await;
    let client = http1_client();
    let head = send(
        &client,
        Request::head(format!("{}/", server.url()))
            .body(Full::default())
            .unwrap(),
    )
    .await;
    assert_eq!(head.status, StatusCode::OK);
    assert!(head.body.is_empty());
    assert_eq!(
        head.header("content-length"),
        Some(INDEX_HTML.len().to_string().as_str())
    );
    let post = send(
        &client,
        Request::post(format!("{}/", server.url()))
            .body(Full::default())
            .unwrap(),
    )
    .await;
    assert_eq!(post.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(post.header("allow"), Some("GET, HEAD"));
    server.stop().await;
}

#[tokio::test]
async fn path_traversal_is_refused() {
    let server = TestServer::start(|_| {}).await;
    let client = http1_client();
    for path in [
        "/../Cargo.toml",
        "/assets/../../etc/passwd",
        "/%2e%2e/%2e%2e/etc/passwd",
        "/assets/..%2f..%2fetc/passwd",
    ] {
        let reply = send(&client, get(&server, path)).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{path}");
        assert_eq!(reply.body, "invalid path\n", "{path}");
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
    let channel = test_support::channel(server.url()).await;
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

/// The page elsewhere that the CORS tests' server allows.
const APP_ORIGIN: &str = "https://app.example.com";

async fn server_allowing(origin: &str) -> TestServer {
    let origin = origin.parse().unwrap();
    TestServer::start(|config| config.serve.allow_origins = vec![origin]).await
}

#[tokio::test]
async fn cors_preflight_from_an_allowed_origin() {
    let server = server_allowing(APP_ORIGIN).await;
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

/// The page's own calls (same origin) and calls without an `Origin` get no CORS headers, `Vary`
/// included: they need none, and the browser client reads every response header. A call from an
/// allowed other origin still varies by origin.
#[tokio::test]
async fn same_origin_calls_carry_no_cors_headers() {
    let server = server_allowing(APP_ORIGIN).await;
    let client = http1_client();
    for origin in [Some(server.url()), None] {
        let mut call = grpc_web_hello_world(&server, "/hello.Greeter/SayHello");
        if let Some(origin) = &origin {
            call.headers_mut()
                .insert(header::ORIGIN, origin.parse().unwrap());
        }
        let reply = send(&client, call).await;
        assert_eq!(
            reply.header("grpc-status"),
            None,
            "{origin:?}: status in the body"
        );
        assert!(reply.body.ends_with(b"grpc-status:0\r\n"), "{origin:?}");
        assert_eq!(reply.header("vary"), None, "{origin:?}");
        assert_eq!(
            reply.header("access-control-allow-origin"),
            None,
            "{origin:?}"
        );
    }
    let mut call = grpc_web_hello_world(&server, "/hello.Greeter/SayHello");
    call.headers_mut()
        .insert(header::ORIGIN, "https://app.example.com".parse().unwrap());
    let reply = send(&client, call).await;
    assert!(reply
        .header("vary")
        .is_some_and(|vary| vary.contains("origin")));
    server.stop().await;
}

/// A disallowed origin's preflight is refused, and so is its call when it comes without one: it
/// gets 403 and never reaches the service.
#[tokio::test]
async fn calls_from_a_disallowed_origin_are_refused_preflight_or_not() {
    let server = server_allowing(APP_ORIGIN).await;
    let client = http1_client();
    for origin in ["https://evil.example.com", "http://127.0.0.1:8080"] {
        let reply = send(&client, preflight(&server, origin)).await;
        assert_eq!(reply.status, StatusCode::FORBIDDEN, "{origin}");
        assert_eq!(reply.header("access-control-allow-origin"), None);

        let mut call = grpc_web_hello_world(&server, "/hello.Greeter/SayHello");
        call.headers_mut()
            .insert(header::ORIGIN, origin.parse().unwrap());
        let reply = send(&client, call).await;
        assert_eq!(reply.status, StatusCode::FORBIDDEN, "{origin}");
        assert_eq!(reply.body, "origin not allowed\n");
        assert_eq!(reply.header("access-control-allow-origin"), None);
    }
    let metrics = send(&client, get(&server, "/metrics")).await;
    let metrics = String::from_utf8_lossy(&metrics.body);
    assert!(
        metrics.contains(
            r#"grpc_server_handling_seconds_count{grpc_method="/hello.Greeter/SayHello"} 0"#
        ),
        "a refused call was run: {metrics}"
    );
    server.stop().await;
}

#[tokio::test]
async fn dev_mode_allows_loopback_origins() {
    let server = TestServer::start(|config| config.serve.dev = true).await;
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

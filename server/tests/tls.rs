//! TLS: native gRPC (HTTP/2 chosen by ALPN) and gRPC-Web over HTTP/1.1 on the same TLS port, with a
//! certificate made for the test; and a start-up error that names the flag at fault.

mod support;

use std::sync::Arc;

use bytes::Bytes;
use hello_proto::{greeter_client::GreeterClient, HelloRequest};
use http_body_util::{BodyExt, Full};
use support::TestServer;
use tokio_rustls::{
    rustls::{self, pki_types::ServerName, RootCertStore},
    TlsConnector,
};
use tonic::transport::{Certificate, ClientTlsConfig, Endpoint};

struct TestCertificate {
    pem: String,
    _dir: tempfile::TempDir,
    cert_path: std::path::PathBuf,
    key_path: std::path::PathBuf,
}

fn certificate() -> TestCertificate {
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cert_path = dir.path().join("cert.pem");
    let key_path = dir.path().join("key.pem");
    std::fs::write(&cert_path, certified.cert.pem()).unwrap();
    std::fs::write(&key_path, certified.key_pair.serialize_pem()).unwrap();
    TestCertificate {
        pem: certified.cert.pem(),
        _dir: dir,
        cert_path,
        key_path,
    }
}

async fn tls_server(cert: &TestCertificate) -> TestServer {
    let (cert_path, key_path) = (cert.cert_path.clone(), cert.key_path.clone());
    TestServer::start(move |config| {
        config.serve.tls_cert = Some(cert_path);
        config.serve.tls_key = Some(key_path);
    })
    .await
}

/// A client that opens a connection and never begins the TLS handshake holds it only for the
/// header read timeout.
#[tokio::test]
async fn a_tls_handshake_must_finish_within_the_header_read_timeout() {
    use tokio::io::AsyncReadExt;
    let cert = certificate();
    let (cert_path, key_path) = (cert.cert_path.clone(), cert.key_path.clone());
    let server = TestServer::start(move |config| {
        config.serve.tls_cert = Some(cert_path);
        config.serve.tls_key = Some(key_path);
        config.serve.header_read_timeout = std::time::Duration::from_millis(300);
    })
    .await;
    let started = std::time::Instant::now();
    let mut silent = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    let mut received = Vec::new();
    let closed = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        silent.read_to_end(&mut received),
    )
    .await;
    let after = started.elapsed();
    assert!(closed.is_ok(), "the connection is still open after 10 s");
    assert!(received.is_empty(), "{received:?}");
    // At the limit, and well before the 10 s default.
    assert!(
        after >= std::time::Duration::from_millis(300) && after < std::time::Duration::from_secs(5),
        "closed {after:?} after connecting"
    );
    server.stop().await;
}

#[tokio::test]
async fn native_grpc_over_tls() {
    let cert = certificate();
    let server = tls_server(&cert).await;
    let channel = Endpoint::from_shared(format!("https://localhost:{}", server.addr.port()))
        .unwrap()
        .tls_config(
            ClientTlsConfig::new()
                .ca_certificate(Certificate::from_pem(&cert.pem))
                .domain_name("localhost"),
        )
        .unwrap()
        .connect()
        .await
        .unwrap();
    let reply = GreeterClient::new(channel)
        .say_hello(HelloRequest { name: "TLS".into() })
        .await
        .unwrap();
    assert_eq!(reply.into_inner().message, "Hello, TLS");
    server.stop().await;
}

#[tokio::test]
async fn grpc_web_over_tls_http1() {
    let cert = certificate();
    let server = tls_server(&cert).await;
    let mut roots = RootCertStore::empty();
    for der in rustls_pemfile::certs(&mut cert.pem.as_bytes()) {
        roots.add(der.unwrap()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let tcp = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    let tls = TlsConnector::from(Arc::new(config))
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .unwrap();
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"http/1.1"[..]));
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tls))
            .await
            .unwrap();
    tokio::spawn(connection);
    let request = http::Request::post("/hello.Greeter/SayHello")
        .header("host", "localhost")
        .header("content-type", "application/grpc-web+proto")
        .header("x-grpc-web", "1")
        .body(Full::new(Bytes::from_static(
            b"\x00\x00\x00\x00\x05\x0a\x03web",
        )))
        .unwrap();
    let response = sender.send_request(request).await.unwrap();
    assert_eq!(response.status(), 200);
    let body = response.into_body().collect().await.unwrap().to_bytes();
    // One data frame holding HelloReply{message: "Hello, web"}, then the trailers.
    assert_eq!(&body[..17], b"\x00\x00\x00\x00\x0c\x0a\x0aHello, web");
    assert!(String::from_utf8_lossy(&body).contains("grpc-status:0"));
    server.stop().await;
}

#[tokio::test]
async fn a_missing_certificate_names_its_flag() {
    let options = grpc_serve::Options {
        tls_cert: Some("/nonexistent/cert.pem".into()),
        tls_key: Some("/nonexistent/key.pem".into()),
        ..grpc_serve::Options::new("127.0.0.1:0".parse().unwrap())
    };
    // Reported before the server listens.
    let error = grpc_serve::Server::new(options).bind().await.unwrap_err();
    assert!(
        error
            .to_string()
            .starts_with("--tls-cert /nonexistent/cert.pem: "),
        "{error}"
    );
}

//! What a user adds to the stack besides services, on `test.Store` (see `support`): an
//! interceptor on one service, a layer over every service, routes of their own, and the errors
//! the builder reports instead of panicking.

mod support;

use std::time::Duration;

use axum::routing::get;
use grpc_serve::{LayerScope, Options, ServeError, Server};
use support::{client, descriptor_set, unary, Store, Text};
use test_support::{raw, InProcess};
use tonic::{
    service::{interceptor::InterceptedService, InterceptorLayer},
    Code, Request, Status,
};
use tonic_health::pb::{health_client::HealthClient, HealthCheckRequest};

/// Options for a server on a free port that stops at once.
fn options() -> Options {
    let mut options = Options::new("127.0.0.1:0".parse().unwrap());
    options.shutdown_delay = Duration::ZERO;
    options
}

/// Admits a call that carries `authorization: Bearer s3cret`.
fn bearer(request: Request<()>) -> Result<Request<()>, Status> {
    match request.metadata().get("authorization") {
        Some(token) if token == "Bearer s3cret" => Ok(request),
        _ => Err(Status::unauthenticated("a bearer token is required")),
    }
}

/// `Reply` asked for three bytes, with `token` as its bearer token if there is one.
async fn reply(server: &InProcess, token: Option<&str>) -> Result<Text, Status> {
    let mut request = Request::new("3".to_owned());
    if let Some(token) = token {
        request
            .metadata_mut()
            .insert("authorization", format!("Bearer {token}").parse().unwrap());
    }
    unary(&mut client(server).await, request, "/test.Store/Reply").await
}

/// gRPC health's answer for `test.Store`, or its refusal.
async fn health(server: &InProcess) -> Result<i32, Status> {
    HealthClient::new(test_support::channel(server.url()).await)
        .check(HealthCheckRequest {
            service: "test.Store".into(),
        })
        .await
        .map(|response| response.into_inner().status)
}

#[tokio::test]
async fn a_service_with_an_interceptor_is_hosted_and_its_refusals_are_counted() {
    let service = InterceptedService::new(Store::default(), bearer);
    let server =
        InProcess::start(Server::new(options()).add_service(service, descriptor_set())).await;

    let refused = reply(&server, None).await.unwrap_err();
    assert_eq!(refused.code(), Code::Unauthenticated, "{refused:?}");
    assert_eq!(refused.message(), "a bearer token is required");
    assert_eq!(reply(&server, Some("s3cret")).await.unwrap(), "xxx");
    // Over gRPC-Web too, refused the same way.
    let response =
        raw::grpc_web_post(server.addr, "/test.Store/Reply", &server.addr.to_string()).await;
    assert_eq!(
        raw::field(&response, "grpc-status"),
        Some("16"),
        "{response}"
    );
    // The gate saw both calls and the refusals: the interceptor sits inside it.
    let metrics = raw::get(server.addr, "/metrics", &server.addr.to_string()).await;
    for line in [
        "grpc_server_handled_total{grpc_method=\"/test.Store/Reply\",grpc_code=\"UNAUTHENTICATED\"} 2",
        "grpc_server_handled_total{grpc_method=\"/test.Store/Reply\",grpc_code=\"OK\"} 1",
    ] {
        assert!(metrics.contains(line), "{line} in {metrics}");
    }
    server.stop().await;
}

#[tokio::test]
async fn a_layer_covers_the_services_and_with_everything_health_and_metrics_too() {
    let server = InProcess::start(
        Server::new(options())
            .add_service(Store::default(), descriptor_set())
            .layer(LayerScope::Services, InterceptorLayer::new(bearer)),
    )
    .await;
    assert_eq!(
        reply(&server, None).await.unwrap_err().code(),
        Code::Unauthenticated
    );
    assert_eq!(reply(&server, Some("s3cret")).await.unwrap(), "xxx");
    // Health, reflection and /metrics stay open.
    assert_eq!(health(&server).await.unwrap(), 1, "SERVING");
    let metrics = raw::get(server.addr, "/metrics", &server.addr.to_string()).await;
    assert!(metrics.contains("grpc_server_handled_total"), "{metrics}");
    server.stop().await;

    let server = InProcess::start(
        Server::new(options())
            .add_service(Store::default(), descriptor_set())
            .layer(LayerScope::Everything, InterceptorLayer::new(bearer)),
    )
    .await;
    assert_eq!(
        reply(&server, None).await.unwrap_err().code(),
        Code::Unauthenticated
    );
    let refused = health(&server).await.unwrap_err();
    assert_eq!(refused.code(), Code::Unauthenticated, "{refused:?}");
    // A gRPC interceptor refuses /metrics in gRPC's terms, and shows no metric.
    let metrics = raw::get(server.addr, "/metrics", &server.addr.to_string()).await;
    assert_eq!(raw::field(&metrics, "grpc-status"), Some("16"), "{metrics}");
    assert!(!metrics.contains("grpc_server_handled_total"), "{metrics}");
    server.stop().await;
}

#[tokio::test]
async fn the_users_routes_share_the_port_and_its_checks() {
    let routes = axum::Router::new()
        .route("/hello", get(|| async { "hello from a route" }))
        // The stack's own paths come first: this cannot take /metrics over.
        .route("/metrics", get(|| async { "not the metrics" }));
    let server = InProcess::start(
        Server::new(options())
            .add_service(Store::default(), descriptor_set())
            .routes(routes),
    )
    .await;
    let host = server.addr.to_string();
    let hello = raw::get(server.addr, "/hello", &host).await;
    assert!(hello.starts_with("HTTP/1.1 200"), "{hello}");
    assert!(hello.ends_with("hello from a route"), "{hello}");
    let metrics = raw::get(server.addr, "/metrics", &host).await;
    assert!(metrics.contains("grpc_server_handled_total"), "{metrics}");
    // The host check and the origin policy hold for them as for every path.
    let foreign_host = raw::get(server.addr, "/hello", "evil.example").await;
    assert!(foreign_host.starts_with("HTTP/1.1 421"), "{foreign_host}");
    let cross_origin = raw::raw_exchange(
        server.addr,
        &format!(
            "GET /hello HTTP/1.1\r\nHost: {host}\r\nOrigin: https://evil.example\r\n\
             Connection: close\r\n\r\n"
        ),
    )
    .await;
    assert!(cross_origin.starts_with("HTTP/1.1 403"), "{cross_origin}");
    // gRPC still reaches the service, and a path nobody serves is the page's (none here: 404).
    assert_eq!(reply(&server, None).await.unwrap(), "xxx");
    let nothing = raw::get(server.addr, "/nothing", &host).await;
    assert!(nothing.starts_with("HTTP/1.1 404"), "{nothing}");
    server.stop().await;
}

/// Every way the builder can be handed something it cannot serve, each reported by `bind` as an
/// error that says what and why.
#[tokio::test]
async fn what_cannot_be_hosted_is_an_error_from_bind_not_a_panic() {
    let cases: Vec<(Server, &str)> = vec![
        (
            Server::new(options()).add_service(Store::default(), b"\xff\xff\xff"),
            "cannot host test.Store: its descriptor set does not decode",
        ),
        (
            Server::new(options())
                .add_service(Store::default(), tonic_health::pb::FILE_DESCRIPTOR_SET),
            "cannot host test.Store: its descriptor set does not describe it",
        ),
        (
            Server::new(options())
                .add_service(Store::default(), descriptor_set())
                .add_service(Store::default(), descriptor_set()),
            "cannot host test.Store: a service of this name is already hosted",
        ),
        (
            Server::new(options()).add_service(
                tonic_health::server::health_reporter().1,
                tonic_health::pb::FILE_DESCRIPTOR_SET,
            ),
            "cannot host grpc.health.v1.Health: a service of this name is already hosted",
        ),
        (
            Server::new(Options {
                tls_cert: Some("/nonexistent/cert.pem".into()),
                tls_key: Some("/nonexistent/key.pem".into()),
                ..options()
            })
            .add_service(Store::default(), descriptor_set()),
            "/nonexistent/cert.pem",
        ),
    ];
    for (server, expected) in cases {
        let error = server.bind().await.unwrap_err();
        assert!(
            error.to_string().contains(expected),
            "{error} does not say {expected:?}"
        );
        // `serve` on a listener of the caller's own says the same, and returns.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let served = tokio::time::timeout(
            Duration::from_secs(5),
            server.serve(listener, std::future::pending()),
        )
        .await
        .expect("serve returns its error at once");
        assert!(
            matches!(&served, Err(error) if error.to_string().contains(expected)),
            "{served:?}"
        );
    }
}

/// An error a user matches on names the service.
#[tokio::test]
async fn the_error_names_the_service() {
    let error = Server::new(options())
        .add_service(Store::default(), b"\xff")
        .bind()
        .await
        .unwrap_err();
    assert!(
        matches!(
            error,
            ServeError::Service {
                service: "test.Store",
                ..
            }
        ),
        "{error:?}"
    );
}

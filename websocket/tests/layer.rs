//! The layer on its own, in front of tonic services that are not this repository's (gRPC health
//! for unary and server streaming, reflection for bidirectional streaming), served by
//! [`serve`]: every kind of call over a socket, the origin check, and the message size limit.

use std::{net::SocketAddr, time::Duration};

use grpc_websocket::server::{serve, GrpcWebSocketLayer, Limits};
use prost::Message as _;
use test_support::websocket::WsCall;
use tonic_health::{
    pb::{health_check_response::ServingStatus, HealthCheckRequest, HealthCheckResponse},
    server::HealthReporter,
};
use tonic_reflection::pb::v1::{
    server_reflection_request::MessageRequest, server_reflection_response::MessageResponse,
    ServerReflectionRequest, ServerReflectionResponse,
};
use tower::Layer;

/// Health and reflection behind `layer`, on an ephemeral port.
async fn start(layer: GrpcWebSocketLayer) -> (SocketAddr, HealthReporter) {
    let (reporter, health) = tonic_health::server::health_reporter();
    reporter
        .set_service_status("demo.Service", tonic_health::ServingStatus::Serving)
        .await;
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()
        .unwrap();
    let routes = tonic::service::Routes::new(health)
        .add_service(reflection)
        .prepare()
        .into_axum_router();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(serve(listener, layer.layer(routes)));
    (addr, reporter)
}

fn check(service: &str) -> HealthCheckRequest {
    HealthCheckRequest {
        service: service.into(),
    }
}

#[tokio::test]
async fn unary_and_server_streaming_calls() {
    let (addr, reporter) = start(GrpcWebSocketLayer::default()).await;
    let mut call = WsCall::open(addr, "/grpc.health.v1.Health/Check").await;
    call.send(&check("demo.Service")).await;
    call.end().await;
    let response = call.response().await;
    assert_eq!(response.code(), 0, "{response:?}");
    assert_eq!(
        response.decode::<HealthCheckResponse>()[0].status(),
        ServingStatus::Serving
    );

    // Under the route prefix too, as a development proxy forwards it.
    let mut call = WsCall::open(addr, "/grpc-websockets/grpc.health.v1.Health/Check").await;
    call.send(&check("demo.Service")).await;
    call.end().await;
    assert_eq!(call.response().await.code(), 0);

    let mut watch = WsCall::open(addr, "/grpc.health.v1.Health/Watch").await;
    watch.send(&check("demo.Service")).await;
    watch.end().await;
    let _headers = watch.next_frame().await;
    assert_eq!(
        watch.next_message::<HealthCheckResponse>().await.status(),
        ServingStatus::Serving
    );
    reporter
        .set_service_status("demo.Service", tonic_health::ServingStatus::NotServing)
        .await;
    assert_eq!(
        watch.next_message::<HealthCheckResponse>().await.status(),
        ServingStatus::NotServing
    );
}

#[tokio::test]
async fn a_bidirectional_call_answers_each_request_on_the_open_socket() {
    let (addr, _reporter) = start(GrpcWebSocketLayer::default()).await;
    let mut call = WsCall::open(
        addr,
        "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
    )
    .await;
    let request = |message| ServerReflectionRequest {
        host: String::new(),
        message_request: Some(message),
    };
    call.send(&request(MessageRequest::ListServices(String::new())))
        .await;
    let _headers = call.next_frame().await;
    let Some(MessageResponse::ListServicesResponse(list)) = call
        .next_message::<ServerReflectionResponse>()
        .await
        .message_response
    else {
        panic!("expected the list of services");
    };
    assert!(list
        .service
        .iter()
        .any(|service| service.name == "grpc.health.v1.Health"));
    // A second request on the same socket, after the first answer.
    call.send(&request(MessageRequest::FileContainingSymbol(
        "grpc.health.v1.Health".into(),
    )))
    .await;
    let Some(MessageResponse::FileDescriptorResponse(files)) = call
        .next_message::<ServerReflectionResponse>()
        .await
        .message_response
    else {
        panic!("expected the file describing health");
    };
    let file =
        prost_types_name(&files.file_descriptor_proto[0]).expect("a file descriptor with a name");
    assert!(file.ends_with("health.proto"), "{file}");
    call.end().await;
    assert_eq!(call.response().await.code(), 0);
}

/// The `name` field (1) of an encoded `FileDescriptorProto`.
fn prost_types_name(encoded: &[u8]) -> Option<String> {
    #[derive(Clone, PartialEq, prost::Message)]
    struct NameOnly {
        #[prost(string, optional, tag = "1")]
        name: Option<String>,
    }
    NameOnly::decode(encoded).ok()?.name
}

/// The handshake's HTTP status for a socket on the health service from a page of `origin`.
async fn upgrade_status(addr: SocketAddr, origin: Option<&str>) -> u16 {
    WsCall::handshake_status(addr, "/grpc.health.v1.Health/Check", origin).await
}

#[tokio::test]
async fn sockets_from_other_origins_are_refused_unless_allowed() {
    let (addr, _reporter) = start(GrpcWebSocketLayer::default()).await;
    let own = format!("http://{addr}");
    assert_eq!(upgrade_status(addr, Some(&own)).await, 101);
    assert_eq!(
        upgrade_status(addr, None).await,
        101,
        "a non-browser client"
    );
    for other in [
        "https://evil.example.com",
        &format!("http://127.0.0.1:{}", addr.port() + 1),
        &format!("http://localhost:{}", addr.port()),
    ] {
        assert_eq!(upgrade_status(addr, Some(other)).await, 403, "{other}");
    }

    let (addr, _reporter) = start(
        GrpcWebSocketLayer::default().allow_origins(|origin| origin == "https://app.example.com"),
    )
    .await;
    assert_eq!(
        upgrade_status(addr, Some("https://app.example.com")).await,
        101
    );
    assert_eq!(
        upgrade_status(addr, Some("https://evil.example.com")).await,
        403
    );
}

#[tokio::test]
async fn messages_over_the_limit_end_the_call_with_out_of_range() {
    let (addr, _reporter) = start(GrpcWebSocketLayer::new(Limits {
        max_message_size: 1024,
        header_timeout: Duration::from_secs(10),
    }))
    .await;
    let mut call = WsCall::open(addr, "/grpc.health.v1.Health/Check").await;
    call.send(&check(&"s".repeat(2000))).await;
    let response = call.response().await;
    assert_eq!(response.code(), 11, "{response:?}");
    assert_eq!(
        response.message(),
        "grpc-websockets: gRPC message of 2003 bytes exceeds the limit of 1024 bytes"
    );
}

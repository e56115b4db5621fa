//! What operators and tools use: gRPC health checking and server reflection.

mod support;

use support::TestServer;
use test_support::reflection;
use tonic::transport::Channel;
use tonic_health::pb::{
    health_check_response::ServingStatus, health_client::HealthClient, HealthCheckRequest,
};
use tonic_reflection::pb::v1::{
    server_reflection_request::MessageRequest, server_reflection_response::MessageResponse,
};

async fn channel(server: &TestServer) -> Channel {
    test_support::channel(server.url()).await
}

#[tokio::test]
async fn health_reports_every_service_serving() {
    let server = TestServer::start(|_| {}).await;
    let mut health = HealthClient::new(channel(&server).await);
    for service in ["", "hello.Greeter", "hello.GreeterStats"] {
        let status = health
            .check(HealthCheckRequest {
                service: service.into(),
            })
            .await
            .unwrap()
            .into_inner()
            .status;
        assert_eq!(status, ServingStatus::Serving as i32, "{service:?}");
    }
    let unknown = health
        .check(HealthCheckRequest {
            service: "nope.Nothing".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(unknown.code(), tonic::Code::NotFound);
    server.stop().await;
}

#[tokio::test]
async fn reflection_lists_and_describes_the_services() {
    let server = TestServer::start(|_| {}).await;
    let answers = reflection::ask(
        channel(&server).await,
        vec![
            MessageRequest::ListServices(String::new()),
            MessageRequest::FileContainingSymbol("hello.Greeter".into()),
        ],
    )
    .await;
    let [MessageResponse::ListServicesResponse(list), MessageResponse::FileDescriptorResponse(files)] =
        &answers[..]
    else {
        panic!(
            "expected the list of services, then the file describing hello.Greeter: {answers:?}"
        );
    };
    let mut names: Vec<&str> = list.service.iter().map(|s| s.name.as_str()).collect();
    names.sort();
    assert_eq!(
        names,
        [
            "grpc.health.v1.Health",
            "grpc.reflection.v1.ServerReflection",
            "hello.Greeter",
            "hello.GreeterStats"
        ]
    );

    let file = <prost_types::FileDescriptorProto as prost::Message>::decode(
        &files.file_descriptor_proto[0][..],
    )
    .unwrap();
    assert_eq!(file.name(), "hello.proto");
    let methods: Vec<&str> = file.service[0].method.iter().map(|m| m.name()).collect();
    assert_eq!(
        methods,
        ["SayHello", "SayHelloStream", "SayHelloToAll", "Chat"]
    );
    server.stop().await;
}

/// The value of the sample `series` (its name and labels) on a metrics page.
fn metric_value(page: &str, series: &str) -> f64 {
    page.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|value| value.parse().ok())
        .unwrap_or_else(|| panic!("no {series} in\n{page}"))
}

#[tokio::test]
async fn metrics_count_calls_by_method_and_code() {
    use hello_proto::{greeter_client::GreeterClient, HelloRequest, HelloStreamRequest};
    let server = TestServer::start(|_| {}).await;
    let mut client = GreeterClient::new(channel(&server).await);
    client
        .say_hello(HelloRequest { name: "a".into() })
        .await
        .unwrap();
    client
        .say_hello(HelloRequest { name: "b".into() })
        .await
        .unwrap();
    client
        .say_hello(HelloRequest { name: "".into() })
        .await
        .unwrap_err();
    // gRPC-Web carries its status in the body, not in trailers: counted by its code all the same.
    support::grpc_web_http1(&server)
        .say_hello(HelloRequest { name: "web".into() })
        .await
        .unwrap();
    let mut stream = client
        .say_hello_stream(HelloStreamRequest {
            name: "s".into(),
            count: 3,
            interval_ms: 150,
        })
        .await
        .unwrap()
        .into_inner();
    while stream.message().await.unwrap().is_some() {}
    let mut abandoned = client
        .say_hello_stream(HelloStreamRequest {
            name: "s".into(),
            count: 100,
            interval_ms: 50,
        })
        .await
        .unwrap()
        .into_inner();
    abandoned.message().await.unwrap();
    drop(abandoned);

    let metrics_url = format!("{}/metrics", server.url());
    let mut text = String::new();
    for _ in 0..100 {
        let reply = support::send(
            &support::http1_client(),
            http::Request::get(&metrics_url)
                .body(Default::default())
                .unwrap(),
        )
        .await;
        assert_eq!(
            reply.header("content-type"),
            Some("text/plain; version=0.0.4")
        );
        text = String::from_utf8(reply.body.to_vec()).unwrap();
        if text.contains("grpc_code=\"CANCELLED\"") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    for line in [
        "grpc_server_handled_total{grpc_method=\"/hello.Greeter/SayHello\",grpc_code=\"OK\"} 3",
        "grpc_server_handled_total{grpc_method=\"/hello.Greeter/SayHello\",grpc_code=\"INVALID_ARGUMENT\"} 1",
        "grpc_server_handled_total{grpc_method=\"/hello.Greeter/SayHelloStream\",grpc_code=\"OK\"} 1",
        "grpc_server_handled_total{grpc_method=\"/hello.Greeter/SayHelloStream\",grpc_code=\"CANCELLED\"} 1",
        "grpc_server_handling_seconds_count{grpc_method=\"/hello.Greeter/SayHello\"} 4",
        "grpc_server_handling_seconds_bucket{grpc_method=\"/hello.Greeter/SayHello\",le=\"+Inf\"} 4",
        "grpc_server_calls_in_flight 0",
    ] {
        assert!(text.lines().any(|l| l == line), "missing {line:?} in\n{text}");
    }
    // A stream is timed to its end, not to its first response: the one of three greetings 150 ms
    // apart took at least 300 ms, so it is above the 0.25 s bucket, and the sum counts it whole.
    let sum = metric_value(
        &text,
        r#"grpc_server_handling_seconds_sum{grpc_method="/hello.Greeter/SayHelloStream"}"#,
    );
    assert!(sum >= 0.3, "{text}");
    let quick = metric_value(
        &text,
        r#"grpc_server_handling_seconds_bucket{grpc_method="/hello.Greeter/SayHelloStream",le="0.25"}"#,
    );
    assert!(quick <= 1.0, "{text}");
    let connections: u64 = text
        .lines()
        .find_map(|l| l.strip_prefix("http_server_open_connections "))
        .unwrap()
        .parse()
        .unwrap();
    assert!(connections >= 1, "{text}");
    server.stop().await;
}

#[tokio::test]
async fn every_call_gets_a_request_id() {
    let server = TestServer::start(|_| {}).await;
    let mut client = hello_proto::greeter_client::GreeterClient::new(channel(&server).await);
    let mut request = tonic::Request::new(hello_proto::HelloRequest { name: "id".into() });
    request
        .metadata_mut()
        .insert("x-request-id", "client-chosen-42".parse().unwrap());
    let reply = client.say_hello(request).await.unwrap();
    assert_eq!(
        reply.metadata().get("x-request-id").unwrap(),
        "client-chosen-42"
    );
    let reply = client
        .say_hello(hello_proto::HelloRequest { name: "id".into() })
        .await
        .unwrap();
    assert!(reply.metadata().get("x-request-id").is_some());
    server.stop().await;
}

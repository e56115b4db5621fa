//! SayHello over every protocol the server speaks: native gRPC, and gRPC-Web over HTTP/1.1 and
//! HTTP/2, each with the generated client.

mod support;

use hello_proto::HelloRequest;
use support::{grpc_web_http1, grpc_web_http2, native_client, TestServer};
use tonic::Code;

fn hello(name: &str) -> HelloRequest {
    HelloRequest { name: name.into() }
}

/// Runs the same checks with any generated client.
macro_rules! check_greeter {
    ($client:expr) => {{
        let mut client = $client;
        let reply = client.say_hello(hello("Alice")).await.unwrap();
        assert_eq!(reply.into_inner().message, "Hello, Alice");

        let status = client.say_hello(hello("")).await.unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument);
        assert_eq!(status.message(), "name must not be empty");

        let status = client.say_hello(hello(" \t ")).await.unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument);
        assert_eq!(status.message(), "name must not be empty");

        let status = client
            .say_hello(hello(&"x".repeat(1025)))
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument);
        assert_eq!(
            status.message(),
            "name must be at most 1024 bytes, got 1025"
        );

        // The server keeps serving after the errors.
        let reply = client.say_hello(hello("Zoë 🦀")).await.unwrap();
        assert_eq!(reply.into_inner().message, "Hello, Zoë 🦀");
    }};
}

#[tokio::test]
async fn native_grpc() {
    let server = TestServer::start(|_| {}).await;
    check_greeter!(native_client(&server).await);
    server.stop().await;
}

#[tokio::test]
async fn grpc_web_over_http1() {
    let server = TestServer::start(|_| {}).await;
    check_greeter!(grpc_web_http1(&server));
    server.stop().await;
}

#[tokio::test]
async fn grpc_web_over_http2() {
    let server = TestServer::start(|_| {}).await;
    check_greeter!(grpc_web_http2(&server));
    server.stop().await;
}

#[tokio::test]
async fn many_concurrent_calls_over_one_channel() {
    let server = TestServer::start(|_| {}).await;
    let client = native_client(&server).await;
    let calls = (0..200).map(|i| {
        let mut client = client.clone();
        tokio::spawn(async move {
            let reply = client.say_hello(hello(&format!("n{i}"))).await.unwrap();
            assert_eq!(reply.into_inner().message, format!("Hello, n{i}"));
        })
    });
    for call in calls {
        call.await.unwrap();
    }
    server.stop().await;
}

//! The streaming RPC kinds over native gRPC (and server streaming over gRPC-Web): message order
//! and content, end-of-stream status, bad arguments, deadlines, and cancellation as the server
//! sees it.

mod support;

use std::time::Duration;

use hello_proto::{
    greeter_client::GreeterClient, greeter_stats_client::GreeterStatsClient, HelloRequest,
    HelloStreamRequest, StreamStats, StreamStatsRequest,
};
use support::{grpc_web_http1, native_client, TestServer};
use tokio_stream::StreamExt;
use tonic::{transport::Channel, Code, Request};

fn stream_request(name: &str, count: u32, interval_ms: u32) -> HelloStreamRequest {
    HelloStreamRequest {
        name: name.into(),
        count,
        interval_ms,
    }
}

fn names(
    names: impl IntoIterator<Item = String>,
) -> impl tokio_stream::Stream<Item = HelloRequest> {
    tokio_stream::iter(names.into_iter().map(|name| HelloRequest { name }))
}

async fn stats(server: &TestServer) -> StreamStats {
    let channel = test_support::channel(server.url()).await;
    GreeterStatsClient::new(channel)
        .get_stream_stats(StreamStatsRequest {})
        .await
        .unwrap()
        .into_inner()
}

/// A server with default settings and a native client to it.
async fn server_and_client() -> (TestServer, GreeterClient<Channel>) {
    let server = TestServer::start(|_| {}).await;
    let client = native_client(&server).await;
    (server, client)
}

/// Waits (up to 5 s) until one stream has ended as `outcome` counts and none is active, asserts
/// so, stops the server and returns the final counters.
async fn stop_after_one(server: TestServer, outcome: fn(&StreamStats) -> u64) -> StreamStats {
    let stats = wait_for_stats(&server, |s| outcome(s) == 1 && s.active == 0).await;
    assert_eq!((outcome(&stats), stats.active), (1, 0), "{stats:?}");
    server.stop().await;
    stats
}

/// The next greeting on an open stream of replies.
async fn next_message(replies: &mut tonic::Streaming<hello_proto::HelloReply>) -> String {
    replies.message().await.unwrap().unwrap().message
}

/// Waits (up to 5 s) until the server's stream counters satisfy `done`.
async fn wait_for_stats(server: &TestServer, done: impl Fn(&StreamStats) -> bool) -> StreamStats {
    for _ in 0..100 {
        let stats = stats(server).await;
        if done(&stats) {
            return stats;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stats(server).await
}

#[tokio::test]
async fn server_streaming_sends_count_greetings_in_order() {
    let (server, mut client) = server_and_client().await;
    let replies: Vec<String> = client
        .say_hello_stream(stream_request("Ann", 5, 10))
        .await
        .unwrap()
        .into_inner()
        .map(|reply| reply.unwrap().message)
        .collect()
        .await;
    assert_eq!(
        replies,
        (1..=5)
            .map(|i| format!("Hello #{i}, Ann"))
            .collect::<Vec<_>>()
    );
    let stats = stop_after_one(server, |s| s.completed).await;
    assert_eq!(stats.started, 1);
}

#[tokio::test]
async fn server_streaming_over_grpc_web() {
    let server = TestServer::start(|_| {}).await;
    let mut client = grpc_web_http1(&server);
    let mut stream = client
        .say_hello_stream(stream_request("Web", 3, 0))
        .await
        .unwrap()
        .into_inner();
    for i in 1..=3 {
        assert_eq!(
            stream.message().await.unwrap().unwrap().message,
            format!("Hello #{i}, Web")
        );
    }
    assert!(stream.message().await.unwrap().is_none());
    server.stop().await;
}

#[tokio::test]
async fn server_streaming_rejects_out_of_range_arguments() {
    let (server, mut client) = server_and_client().await;
    for (request, message) in [
        (
            stream_request("A", 0, 0),
            "count must be between 1 and 1000, got 0",
        ),
        (
            stream_request("A", 1001, 0),
            "count must be between 1 and 1000, got 1001",
        ),
        (
            stream_request("A", 1, 10_001),
            "interval_ms must be between 0 and 10000, got 10001",
        ),
        (stream_request(" ", 1, 0), "name must not be empty"),
    ] {
        let status = client.say_hello_stream(request).await.unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument);
        assert_eq!(status.message(), message);
    }
    server.stop().await;
}

#[tokio::test]
async fn server_streaming_ends_with_deadline_exceeded() {
    let (server, mut client) = server_and_client().await;
    let mut request = Request::new(stream_request("Slow", 10, 1000));
    request.set_timeout(Duration::from_millis(1500));
    let mut stream = client.say_hello_stream(request).await.unwrap().into_inner();
    let mut received = Vec::new();
    let status = loop {
        match stream.message().await {
            Ok(Some(reply)) => received.push(reply.message),
            Ok(None) => panic!("the stream ended without its deadline: {received:?}"),
            Err(status) => break status,
        }
    };
    assert_eq!(status.code(), Code::DeadlineExceeded, "{status:?}");
    // Greetings at 0 and 1000 ms fit in 1500 ms; the one at 2000 ms does not. Half a second
    // either side, so a loaded machine's late timer cannot change the count.
    assert_eq!(received, ["Hello #1, Slow", "Hello #2, Slow"]);
    // The stack ended it and dropped the stream: the service counts it as cancelled.
    stop_after_one(server, |s| s.cancelled).await;
}

#[tokio::test]
async fn dropping_a_server_stream_stops_it_on_the_server() {
    let (server, mut client) = server_and_client().await;
    let mut stream = client
        .say_hello_stream(stream_request("Gone", 1000, 20))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(next_message(&mut stream).await, "Hello #1, Gone");
    assert_eq!(stats(&server).await.active, 1);
    drop(stream);
    let stats = stop_after_one(server, |s| s.cancelled).await;
    assert_eq!(stats.completed, 0);
}

#[tokio::test]
async fn client_streaming_greets_every_name_in_order() {
    let (server, mut client) = server_and_client().await;
    let sent: Vec<String> = (1..=1000).map(|i| format!("n{i}")).collect();
    let summary = client
        .say_hello_to_all(names(sent.clone()))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(summary.count, 1000);
    assert_eq!(
        summary.messages,
        sent.iter()
            .map(|name| format!("Hello, {name}"))
            .collect::<Vec<_>>()
    );

    let empty = client
        .say_hello_to_all(names([]))
        .await
        .unwrap()
        .into_inner();
    assert_eq!((empty.count, empty.messages.len()), (0, 0));
    server.stop().await;
}

#[tokio::test]
async fn client_streaming_takes_at_most_ten_thousand_names() {
    let (server, mut client) = server_and_client().await;
    let many = |count: usize| names((0..count).map(|i| format!("n{i}")));
    let summary = client
        .say_hello_to_all(many(10_000))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(summary.count, 10_000);
    let status = client.say_hello_to_all(many(10_001)).await.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(status.message(), "at most 10000 names per call");
    server.stop().await;
}

#[tokio::test]
async fn client_streaming_names_the_bad_name() {
    let (server, mut client) = server_and_client().await;
    let status = client
        .say_hello_to_all(names(["a".into(), "b".into(), "".into(), "d".into()]))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(status.message(), "name #3: name must not be empty");
    server.stop().await;
}

#[tokio::test]
async fn client_streaming_ends_with_deadline_exceeded() {
    let server = TestServer::start(|_| {}).await;
    let mut client = support::bare_h2_client(&server);
    let slow_names = names(["a".to_string()]).chain(
        tokio_stream::iter(["b".to_string()])
            .throttle(Duration::from_secs(5))
            .map(|name| HelloRequest { name }),
    );
    let mut request = Request::new(slow_names);
    request.set_timeout(Duration::from_millis(300));
    let status = client.say_hello_to_all(request).await.unwrap_err();
    assert_eq!(status.code(), Code::DeadlineExceeded, "{status:?}");
    assert_eq!(
        status.message(),
        "deadline exceeded before the call completed"
    );
    // The stack ended it and dropped the stream: the service counts it as cancelled.
    stop_after_one(server, |s| s.cancelled).await;
}

#[tokio::test]
async fn bidi_answers_each_name_before_the_next_is_sent() {
    let (server, mut client) = server_and_client().await;
    let (names_tx, names_rx) = tokio::sync::mpsc::channel(1);
    let mut replies = client
        .chat(tokio_stream::wrappers::ReceiverStream::new(names_rx))
        .await
        .unwrap()
        .into_inner();
    for i in 1..=1000 {
        names_tx
            .send(HelloRequest {
                name: format!("n{i}"),
            })
            .await
            .unwrap();
        // The greeting arrives while the request stream is still open.
        let reply = replies.message().await.unwrap().unwrap();
        assert_eq!(reply.message, format!("Hello, n{i}"));
    }
    drop(names_tx);
    assert!(replies.message().await.unwrap().is_none());
    stop_after_one(server, |s| s.completed).await;
}

#[tokio::test]
async fn bidi_ends_at_a_bad_name_with_its_number() {
    let (server, mut client) = server_and_client().await;
    let mut replies = client
        .chat(names(["ok".into(), "x".repeat(2000)]))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(next_message(&mut replies).await, "Hello, ok");
    let status = replies.message().await.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(
        status.message(),
        "name #2: name must be at most 1024 bytes, got 2000"
    );
    server.stop().await;
}

#[tokio::test]
async fn cancelling_a_bidi_call_stops_it_on_the_server() {
    let server = TestServer::start(|_| {}).await;
    let mut client: GreeterClient<Channel> = native_client(&server).await;
    let (names_tx, names_rx) = tokio::sync::mpsc::channel(1);
    let mut replies = client
        .chat(tokio_stream::wrappers::ReceiverStream::new(names_rx))
        .await
        .unwrap()
        .into_inner();
    names_tx
        .send(HelloRequest { name: "a".into() })
        .await
        .unwrap();
    assert_eq!(next_message(&mut replies).await, "Hello, a");
    drop(replies);
    drop(names_tx);
    stop_after_one(server, |s| s.cancelled).await;
}

#[tokio::test]
async fn a_client_that_stops_reading_stalls_the_stream_instead_of_filling_memory() {
    let server = TestServer::start(|_| {}).await;
    // HTTP/2's default windows (64 KiB), where hyper's client would otherwise take 2 MiB.
    let channel = Channel::from_shared(server.url())
        .unwrap()
        .initial_stream_window_size(65_535)
        .initial_connection_window_size(65_535)
        .connect()
        .await
        .unwrap();
    let mut client = GreeterClient::new(channel);
    // 1,000 greetings of over 1 KiB each: far more than the flow-control windows hold.
    let name = "x".repeat(1024);
    let mut stream = client
        .say_hello_stream(stream_request(&name, 1000, 0))
        .await
        .unwrap()
        .into_inner();
    assert!(stream.message().await.unwrap().is_some());

    // The client reads nothing more. Had the server buffered, the stream would finish at once.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let stalled = stats(&server).await;
    assert_eq!((stalled.active, stalled.completed), (1, 0), "{stalled:?}");

    // Reading again drains it to the end.
    let mut received = 1;
    while stream.message().await.unwrap().is_some() {
        received += 1;
    }
    assert_eq!(received, 1000);
    stop_after_one(server, |s| s.completed).await;
}

//! The chat room served by `grpc-serve`, called as its users call it: over native gRPC, over
//! gRPC-Web (as a browser's unary and server-streaming calls), and over the WebSocket transport
//! (a browser's client and bidirectional streams), with health and reflection naming it.

use std::{net::SocketAddr, sync::Arc};

use chat_room::{
    ChatRoomClient, ChatRoomServer, HistoryRequest, Message, Room, FILE_DESCRIPTOR_SET,
};
use grpc_serve::{Options, Server};
use hyper_util::{client::legacy::Client, rt::TokioExecutor};
use test_support::websocket::WsCall;
use tokio::sync::oneshot;
use tonic::{transport::Channel, Code};

/// The example's `main`, on an ephemeral port: stops when the sender is dropped.
async fn start() -> (SocketAddr, oneshot::Sender<()>) {
    let mut options = Options::new("127.0.0.1:0".parse().unwrap());
    options.shutdown_delay = std::time::Duration::ZERO;
    let server = Server::new(options);
    let room = Arc::new(Room::new(server.draining()));
    let server = server.add_service(ChatRoomServer::new(room), FILE_DESCRIPTOR_SET);
    let listener = server.bind().await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(server.serve(listener, async {
        let _ = stopped.await;
    }));
    (addr, stop)
}

async fn native(addr: SocketAddr) -> ChatRoomClient<Channel> {
    ChatRoomClient::connect(format!("http://{addr}"))
        .await
        .unwrap()
}

fn message(author: &str, text: &str) -> Message {
    Message {
        author: author.into(),
        text: text.into(),
        id: 0,
    }
}

fn texts(messages: &[Message]) -> Vec<(u64, &str)> {
    messages.iter().map(|m| (m.id, m.text.as_str())).collect()
}

#[tokio::test]
async fn every_rpc_kind_over_native_grpc() {
    let (addr, _stop) = start().await;
    let mut ann = native(addr).await;
    let mut bob = native(addr).await;

    let posted = ann
        .post(message("ann", "hello"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(posted.id, 1);
    let all = ann
        .post_all(tokio_stream::iter([
            message("ann", "two"),
            message("ann", "three"),
        ]))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(all.count, 2);
    let mut history = ann.history(HistoryRequest {}).await.unwrap().into_inner();
    let mut seen = Vec::new();
    while let Some(message) = history.message().await.unwrap() {
        seen.push(message);
    }
    assert_eq!(texts(&seen), [(1, "hello"), (2, "two"), (3, "three")]);

    // Both join; what one says, both hear.
    let (ann_says, ann_sent) = tokio::sync::mpsc::channel(4);
    let mut ann_hears = ann
        .join(tokio_stream::wrappers::ReceiverStream::new(ann_sent))
        .await
        .unwrap()
        .into_inner();
    let (_bob_says, bob_sent) = tokio::sync::mpsc::channel::<Message>(4);
    let mut bob_hears = bob
        .join(tokio_stream::wrappers::ReceiverStream::new(bob_sent))
        .await
        .unwrap()
        .into_inner();
    ann_says.send(message("ann", "anyone here?")).await.unwrap();
    for hears in [&mut ann_hears, &mut bob_hears] {
        let heard = hears.message().await.unwrap().unwrap();
        assert_eq!(
            (heard.id, heard.author.as_str(), heard.text.as_str()),
            (4, "ann", "anyone here?")
        );
    }
}

#[tokio::test]
async fn bad_messages_are_refused_with_what_was_wrong() {
    let (addr, _stop) = start().await;
    let mut client = native(addr).await;
    let status = client.post(message("ann", " ")).await.unwrap_err();
    assert_eq!(
        (status.code(), status.message()),
        (Code::InvalidArgument, "text must not be empty")
    );
    let status = client
        .post_all(tokio_stream::iter([
            message("ann", "fine"),
            message(&"a".repeat(65), "x"),
        ]))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(
        status.message(),
        "message #2: author is 65 bytes, over the limit of 64"
    );
}

#[tokio::test]
async fn unary_and_server_streaming_over_grpc_web() {
    let (addr, _stop) = start().await;
    let http = Client::builder(TokioExecutor::new()).build_http();
    let grpc_web = tower::ServiceBuilder::new()
        .layer(tonic_web::GrpcWebClientLayer::new())
        .service(http);
    let mut client =
        ChatRoomClient::with_origin(grpc_web, format!("http://{addr}").parse().unwrap());
    assert_eq!(
        client
            .post(message("web", "from a page"))
            .await
            .unwrap()
            .into_inner()
            .id,
        1
    );
    let mut history = client
        .history(HistoryRequest {})
        .await
        .unwrap()
        .into_inner();
    let first = history.message().await.unwrap().unwrap();
    assert_eq!((first.id, first.text.as_str()), (1, "from a page"));
    assert!(history.message().await.unwrap().is_none());
}

#[tokio::test]
async fn client_and_bidirectional_streaming_over_websockets() {
    let (addr, _stop) = start().await;
    let mut post_all = WsCall::open(addr, "/chat.v1.ChatRoom/PostAll").await;
    post_all.send(&message("ws", "one")).await;
    post_all.send(&message("ws", "two")).await;
    post_all.end().await;
    let response = post_all.response().await;
    assert_eq!(response.code(), 0, "{response:?}");
    assert_eq!(response.decode::<chat_room::PostedAll>()[0].count, 2);

    // A browser joins over a WebSocket; a native client posts; the browser hears it.
    let mut join = WsCall::open(addr, "/chat.v1.ChatRoom/Join").await;
    join.send(&message("ws", "joined")).await;
    assert!(matches!(
        join.next_frame().await,
        Some(grpc_websocket::protocol::ServerFrame::Headers(_))
    ));
    assert_eq!(join.next_message::<Message>().await.text, "joined");
    native(addr)
        .await
        .post(message("native", "welcome"))
        .await
        .unwrap();
    let heard = join.next_message::<Message>().await;
    assert_eq!((heard.id, heard.author.as_str()), (4, "native"));
}

#[tokio::test]
async fn health_and_reflection_name_the_room() {
    use tonic_health::pb::{
        health_check_response::ServingStatus, health_client::HealthClient, HealthCheckRequest,
    };
    let (addr, _stop) = start().await;
    let channel = Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let health = HealthClient::new(channel.clone())
        .check(HealthCheckRequest {
            service: "chat.v1.ChatRoom".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(health.status(), ServingStatus::Serving);

    let names = test_support::reflection::service_names(channel).await;
    assert_eq!(
        names,
        [
            "chat.v1.ChatRoom",
            "grpc.health.v1.Health",
            "grpc.reflection.v1.ServerReflection"
        ]
    );
}

/// What one client can make the room hold: a member who never reads is dropped once the room has
/// moved on by the backlog, rather than buffered for, and the history keeps the last 100.
#[tokio::test]
async fn a_member_who_never_reads_is_dropped_and_the_history_is_bounded() {
    const POSTED: u32 = 10_000;
    let (addr, _stop) = start().await;
    let (_says, sent) = tokio::sync::mpsc::channel::<Message>(1);
    let mut silent = native(addr)
        .await
        .join(tokio_stream::wrappers::ReceiverStream::new(sent))
        .await
        .unwrap()
        .into_inner();
    let posts = (0..POSTED).map(|i| message("flood", &format!("#{i}")));
    let all = native(addr)
        .await
        .post_all(tokio_stream::iter(posts))
        .await
        .unwrap();
    assert_eq!(all.into_inner().count, POSTED);

    // What the transport had buffered arrives, then the drop.
    let mut delivered = 0;
    let status = loop {
        match silent.message().await {
            Ok(Some(_)) => delivered += 1,
            Ok(None) => panic!("the stream ended without a status"),
            Err(status) => break status,
        }
    };
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    assert!(
        status
            .message()
            .ends_with("messages went unread; join again"),
        "{status:?}"
    );
    assert!(delivered < POSTED, "{delivered} delivered");

    let mut history = native(addr)
        .await
        .history(HistoryRequest {})
        .await
        .unwrap()
        .into_inner();
    let mut ids = Vec::new();
    while let Some(message) = history.message().await.unwrap() {
        ids.push(message.id);
    }
    assert_eq!(ids, (9_901..=10_000).collect::<Vec<u64>>());
}

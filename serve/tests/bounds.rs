//! The stack's bounds on a service of its own that checks nothing: no deadline, no message size,
//! no drain. `test.Store` is written here by hand, as tonic's generated code would be, so these
//! tests prove what the stack does for any service, not what the Greeter does for itself:
//! - `Reply` answers with as many bytes as its request asks for;
//! - `Slow` answers after three seconds;
//! - `Ticks` streams a tick every 100 ms, forever.
//!
//! `Slow` and `Ticks` count how often their work is dropped before it ends, which is how a
//! service sees a call the stack ended.

use std::{
    convert::Infallible,
    future::Future,
    pin::Pin,
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc,
    },
    task::{Context, Poll},
    time::{Duration, Instant},
};

use grpc_serve::{Options, Server};
use http::uri::PathAndQuery;
use prost::Message;
use prost_types::{
    field_descriptor_proto::{Label, Type},
    DescriptorProto, FieldDescriptorProto, FileDescriptorProto, FileDescriptorSet,
    MethodDescriptorProto, ServiceDescriptorProto,
};
use test_support::{
    h2::{grpc_request, headers, settings, PREFACE},
    raw, InProcess,
};
use tokio::{io::AsyncWriteExt, net::TcpStream};
use tokio_stream::{Stream, StreamExt};
use tonic::{body::Body, server::NamedService, Code, Status};
use tonic_prost::ProstCodec;

/// Counts the calls whose work was dropped before it finished.
#[derive(Clone, Default)]
struct Dropped(Arc<AtomicUsize>);

impl Dropped {
    fn count(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }
}

/// Counts a drop unless disarmed.
struct DropGuard(Option<Dropped>);

impl DropGuard {
    /// The work finished: its end is no drop.
    fn disarm(&mut self) {
        self.0 = None;
    }
}

impl Drop for DropGuard {
    fn drop(&mut self) {
        if let Some(dropped) = self.0.take() {
            dropped.0.fetch_add(1, Ordering::SeqCst);
        }
    }
}

/// The service: a tower service over HTTP, as tonic generates them.
#[derive(Clone, Default)]
struct Store {
    dropped: Dropped,
}

impl NamedService for Store {
    const NAME: &'static str = "test.Store";
}

type Text = String;

struct Reply;

impl tonic::server::UnaryService<Text> for Reply {
    type Response = Text;
    type Future = Pin<Box<dyn Future<Output = Result<tonic::Response<Text>, Status>> + Send>>;

    fn call(&mut self, request: tonic::Request<Text>) -> Self::Future {
        Box::pin(async move {
            let size: usize = request.into_inner().parse().unwrap_or(1);
            Ok(tonic::Response::new("x".repeat(size)))
        })
    }
}

struct Slow(Dropped);

impl tonic::server::UnaryService<Text> for Slow {
    type Response = Text;
    type Future = Pin<Box<dyn Future<Output = Result<tonic::Response<Text>, Status>> + Send>>;

    fn call(&mut self, _request: tonic::Request<Text>) -> Self::Future {
        let mut guard = DropGuard(Some(self.0.clone()));
        Box::pin(async move {
            tokio::time::sleep(Duration::from_secs(3)).await;
            guard.disarm();
            Ok(tonic::Response::new("late".into()))
        })
    }
}

struct Ticks(Dropped);

type TickStream = Pin<Box<dyn Stream<Item = Result<Text, Status>> + Send>>;

impl tonic::server::ServerStreamingService<Text> for Ticks {
    type Response = Text;
    type ResponseStream = TickStream;
    type Future = std::future::Ready<Result<tonic::Response<TickStream>, Status>>;

    fn call(&mut self, _request: tonic::Request<Text>) -> Self::Future {
        let guard = DropGuard(Some(self.0.clone()));
        let ticks = tokio_stream::iter(0u64..)
            .throttle(Duration::from_millis(100))
            .map(move |tick| {
                let _held = &guard;
                Ok(tick.to_string())
            });
        std::future::ready(Ok(tonic::Response::new(Box::pin(ticks) as TickStream)))
    }
}

impl tower::Service<http::Request<Body>> for Store {
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        let dropped = self.dropped.clone();
        Box::pin(async move {
            let mut grpc = tonic::server::Grpc::new(ProstCodec::<Text, Text>::default());
            Ok(match request.uri().path() {
                "/test.Store/Reply" => grpc.unary(Reply, request).await,
                "/test.Store/Slow" => grpc.unary(Slow(dropped), request).await,
                "/test.Store/Ticks" => grpc.server_streaming(Ticks(dropped), request).await,
                _ => Status::unimplemented("").into_http(),
            })
        })
    }
}

/// The contract of `test.Store`, as a build script would encode it. `Text` has the wire format
/// of `google.protobuf.StringValue`, which is how the Rust side reads it.
fn descriptor_set() -> &'static [u8] {
    let method = |name: &str, server_streaming: bool| MethodDescriptorProto {
        name: Some(name.into()),
        input_type: Some(".test.Text".into()),
        output_type: Some(".test.Text".into()),
        server_streaming: Some(server_streaming),
        ..Default::default()
    };
    let set = FileDescriptorSet {
        file: vec![FileDescriptorProto {
            name: Some("test.proto".into()),
            package: Some("test".into()),
            syntax: Some("proto3".into()),
            message_type: vec![DescriptorProto {
                name: Some("Text".into()),
                field: vec![FieldDescriptorProto {
                    name: Some("value".into()),
                    number: Some(1),
                    label: Some(Label::Optional as i32),
                    r#type: Some(Type::String as i32),
                    json_name: Some("value".into()),
                    ..Default::default()
                }],
                ..Default::default()
            }],
            service: vec![ServiceDescriptorProto {
                name: Some("Store".into()),
                method: vec![
                    method("Reply", false),
                    method("Slow", false),
                    method("Ticks", true),
                ],
                ..Default::default()
            }],
            ..Default::default()
        }],
    };
    Box::leak(set.encode_to_vec().into_boxed_slice())
}

/// `test.Store` served in this process with `configure`d options (no shutdown delay).
async fn serve(store: &Store, configure: impl FnOnce(&mut Options)) -> InProcess {
    let mut options = Options::new("127.0.0.1:0".parse().unwrap());
    options.shutdown_delay = Duration::ZERO;
    configure(&mut options);
    InProcess::start(Server::new(options).add_service(store.clone(), descriptor_set())).await
}

/// A generated-style client of `test.Store`.
async fn client(server: &InProcess) -> tonic::client::Grpc<tonic::transport::Channel> {
    tonic::client::Grpc::new(test_support::channel(server.url()).await)
}

async fn unary(
    client: &mut tonic::client::Grpc<tonic::transport::Channel>,
    request: tonic::Request<Text>,
    method: &'static str,
) -> Result<Text, Status> {
    client.ready().await.unwrap();
    client
        .unary(
            request,
            PathAndQuery::from_static(method),
            ProstCodec::<Text, Text>::default(),
        )
        .await
        .map(tonic::Response::into_inner)
}

async fn ticks(
    client: &mut tonic::client::Grpc<tonic::transport::Channel>,
) -> tonic::Streaming<Text> {
    client.ready().await.unwrap();
    client
        .server_streaming(
            tonic::Request::new(Text::new()),
            PathAndQuery::from_static("/test.Store/Ticks"),
            ProstCodec::<Text, Text>::default(),
        )
        .await
        .unwrap()
        .into_inner()
}

/// Reads `stream` to its end; returns the ticks and the status it ended with.
async fn drain(mut stream: tonic::Streaming<Text>) -> (usize, Status) {
    let mut count = 0;
    tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match stream.message().await {
                Ok(Some(_)) => count += 1,
                Ok(None) => panic!("the stream ended with OK"),
                Err(status) => return (count, status),
            }
        }
    })
    .await
    .expect("the stream ends within 10 s")
}

/// Polls until `dropped` reaches `expected`, for at most a second.
async fn until_dropped(dropped: &Dropped, expected: usize) {
    let started = Instant::now();
    while dropped.count() < expected {
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "the service's work was not dropped"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn the_client_deadline_ends_a_handler_that_checks_none() {
    let store = Store::default();
    let server = serve(&store, |_| {}).await;
    // The header alone, from a client with no timer of its own (tonic's client would end the
    // call itself): the server must end it.
    let started = Instant::now();
    let response = raw::raw_exchange(
        server.addr,
        &format!(
            "POST /test.Store/Slow HTTP/1.1\r\nHost: {}\r\n\
             content-type: application/grpc-web+proto\r\nx-grpc-web: 1\r\ngrpc-timeout: 300m\r\n\
             content-length: 5\r\nConnection: close\r\n\r\n\0\0\0\0\0",
            server.addr
        ),
    )
    .await;
    assert_eq!(
        raw::field(&response, "grpc-status"),
        Some("4"),
        "{response}"
    );
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(250) && took < Duration::from_millis(1500),
        "{took:?}"
    );
    // The handler's future is dropped, not left to finish its three seconds.
    until_dropped(&store.dropped, 1).await;
}

#[tokio::test]
async fn the_longest_call_duration_ends_a_stream_that_never_ends() {
    let store = Store::default();
    let server = serve(&store, |options| {
        options.max_call_duration = Some(Duration::from_millis(500));
    })
    .await;
    let started = Instant::now();
    let (count, status) = drain(ticks(&mut client(&server).await).await).await;
    assert_eq!(status.code(), Code::DeadlineExceeded, "{status:?}");
    assert!(count >= 2, "{count} ticks");
    let took = started.elapsed();
    assert!(took >= Duration::from_millis(450), "{took:?}");
    until_dropped(&store.dropped, 1).await;
    // A unary handler too, with no deadline from its client.
    let status = unary(
        &mut client(&server).await,
        tonic::Request::new(Text::new()),
        "/test.Store/Slow",
    )
    .await
    .unwrap_err();
    assert_eq!(status.code(), Code::DeadlineExceeded, "{status:?}");
    until_dropped(&store.dropped, 2).await;
}

#[tokio::test]
async fn the_message_size_limit_holds_both_ways_on_every_transport() {
    let server = serve(&Store::default(), |options| {
        options.max_message_size = 1024;
    })
    .await;
    let mut client = client(&server).await;
    let request = |text: String| tonic::Request::new(text);
    // Within the limit.
    assert_eq!(
        unary(&mut client, request("100".into()), "/test.Store/Reply")
            .await
            .unwrap()
            .len(),
        100
    );
    // A request over it.
    let status = unary(&mut client, request("9".repeat(2000)), "/test.Store/Reply")
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::OutOfRange, "{status:?}");
    assert!(status.message().contains("request message too large"));
    // A reply over it.
    let status = unary(&mut client, request("2000".into()), "/test.Store/Reply")
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::OutOfRange, "{status:?}");
    assert!(status.message().contains("response message too large"));
    // gRPC-Web: a reply over the limit, asked for in a 9-byte message.
    let response = raw::raw_exchange(
        server.addr,
        &format!(
            "POST /test.Store/Reply HTTP/1.1\r\nHost: {}\r\n\
             content-type: application/grpc-web+proto\r\nx-grpc-web: 1\r\n\
             content-length: 11\r\nConnection: close\r\n\r\n\0\0\0\0\x06\x0a\x042000",
            server.addr
        ),
    )
    .await;
    assert!(
        response.contains("grpc-status:11") || response.contains("grpc-status: 11"),
        "{response}"
    );
}

#[tokio::test]
async fn a_unary_call_with_two_request_messages_fails() {
    let server = serve(&Store::default(), |_| {}).await;
    let request = |messages: usize| {
        let body = "\0\0\0\0\x05\x0a\x03100".repeat(messages);
        format!(
            "POST /test.Store/Reply HTTP/1.1\r\nHost: {}\r\n\
             content-type: application/grpc-web+proto\r\nx-grpc-web: 1\r\n\
             content-length: {}\r\nConnection: close\r\n\r\n{body}",
            server.addr,
            body.len()
        )
    };
    // In the trailers frame of the body, or in the headers of a trailers-only answer.
    let status = |response: &str| {
        let at = response.find("grpc-status:")? + "grpc-status:".len();
        response[at..]
            .split("\r\n")
            .next()
            .map(|value| value.trim().to_owned())
    };
    let one = raw::raw_exchange(server.addr, &request(1)).await;
    assert_eq!(status(&one).as_deref(), Some("0"), "{one}");
    // The service would read the first and never see the second: the call must not answer OK.
    let two = raw::raw_exchange(server.addr, &request(2)).await;
    assert_eq!(status(&two).as_deref(), Some("13"), "{two}");
    assert!(two.contains("takes%20one%20request%20message"), "{two}");
}

#[tokio::test]
async fn a_request_that_never_arrives_frees_its_permit() {
    let server = serve(&Store::default(), |options| {
        options.max_concurrent_calls = 1;
        options.request_message_timeout = Duration::from_millis(500);
    })
    .await;
    let mut bytes = PREFACE.to_vec();
    bytes.extend(settings(&[]));
    let authority = server.addr.to_string();
    bytes.extend(headers(
        1,
        &grpc_request("/test.Store/Reply", &authority),
        false,
    ));
    let mut stalled = TcpStream::connect(server.addr).await.unwrap();
    stalled.write_all(&bytes).await.unwrap();
    let mut client = client(&server).await;
    // Held: the one permit is the stalled call's.
    let started = Instant::now();
    loop {
        let outcome = unary(
            &mut client,
            tonic::Request::new("1".into()),
            "/test.Store/Reply",
        )
        .await;
        match outcome {
            Err(status) if status.code() == Code::ResourceExhausted => break,
            _ => assert!(
                started.elapsed() < Duration::from_millis(400),
                "the stalled call never took the permit"
            ),
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // Freed after the request message timeout.
    tokio::time::sleep(Duration::from_millis(700)).await;
    let reply = unary(
        &mut client,
        tonic::Request::new("1".into()),
        "/test.Store/Reply",
    )
    .await
    .unwrap();
    assert_eq!(reply, "x");
}

#[tokio::test]
async fn the_drain_ends_a_stream_the_service_never_ends() {
    let store = Store::default();
    let server = serve(&store, |_| {}).await;
    let mut stream = ticks(&mut client(&server).await).await;
    stream.message().await.unwrap().expect("a first tick");
    let stopping = tokio::spawn(server.stop());
    let (_, status) = drain(stream).await;
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    assert!(status.message().contains("shutting down"), "{status:?}");
    tokio::time::timeout(Duration::from_secs(5), stopping)
        .await
        .expect("the drain ends at once")
        .unwrap();
    until_dropped(&store.dropped, 1).await;
}

#[tokio::test]
async fn unknown_methods_are_answered_counted_and_logged_by_the_gate() {
    let server = serve(&Store::default(), |_| {}).await;
    let mut client = client(&server).await;
    for method in ["/test.Store/Nope", "/test.Elsewhere/Reply"] {
        client.ready().await.unwrap();
        let status = client
            .unary(
                tonic::Request::new(Text::new()),
                PathAndQuery::from_static(method),
                ProstCodec::<Text, Text>::default(),
            )
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::Unimplemented, "{method}: {status:?}");
    }
    let page = raw::get(server.addr, "/metrics", &server.addr.to_string()).await;
    assert!(
        page.contains(
            "grpc_server_handled_total{grpc_method=\"unknown\",grpc_code=\"UNIMPLEMENTED\"} 2"
        ),
        "{page}"
    );
}

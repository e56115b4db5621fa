//! `test.Store`, a service of the tests' own that checks nothing: no deadline, no message size,
//! no drain. It is written here by hand, as tonic's generated code would be, so the tests prove
//! what the stack does for any service, not what the Greeter does for itself:
//! - `Reply` answers with as many bytes as its request asks for;
//! - `Slow` answers after three seconds;
//! - `Ticks` streams a tick every 100 ms, forever.
//!
//! `Slow` and `Ticks` count how often their work is dropped before it ends, which is how a
//! service sees a call the stack ended.

// Each test file uses its own share of this module.
#![allow(dead_code)]

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
use test_support::InProcess;
use tokio_stream::{Stream, StreamExt};
use tonic::{body::Body, server::NamedService, Status};
use tonic_prost::ProstCodec;

/// Counts the calls whose work was dropped before it finished.
#[derive(Clone, Default)]
pub struct Dropped(Arc<AtomicUsize>);

impl Dropped {
    pub fn count(&self) -> usize {
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
pub struct Store {
    pub dropped: Dropped,
}

impl NamedService for Store {
    const NAME: &'static str = "test.Store";
}

pub type Text = String;

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
pub fn descriptor_set() -> &'static [u8] {
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
pub async fn serve(store: &Store, configure: impl FnOnce(&mut Options)) -> InProcess {
    let mut options = Options::new("127.0.0.1:0".parse().unwrap());
    options.shutdown_delay = Duration::ZERO;
    configure(&mut options);
    InProcess::start(Server::new(options).add_service(store.clone(), descriptor_set())).await
}

/// A generated-style client of `test.Store`.
pub async fn client(server: &InProcess) -> tonic::client::Grpc<tonic::transport::Channel> {
    tonic::client::Grpc::new(test_support::channel(server.url()).await)
}

pub async fn unary(
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

pub async fn ticks(
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
pub async fn drain(mut stream: tonic::Streaming<Text>) -> (usize, Status) {
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
pub async fn until_dropped(dropped: &Dropped, expected: usize) {
    let started = Instant::now();
    while dropped.count() < expected {
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "the service's work was not dropped"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

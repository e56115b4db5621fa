//! The baseline: the Greeter's SayHello on tonic + tonic-web as tonic's grpc-web example sets them up,
//! with none of greeter-server's layers (limits, metrics, CORS policy, WebSockets, the page). The
//! difference between the two is what those layers cost.
//!
//! Usage: bare-tonic ADDR

use std::pin::Pin;

use hello_proto::{
    greeter_server::{Greeter, GreeterServer},
    HelloReply, HelloRequest, HelloStreamRequest, HelloSummary,
};
use tokio_stream::Stream;
use tonic::{transport::Server, Request, Response, Status, Streaming};

type Replies = Pin<Box<dyn Stream<Item = Result<HelloReply, Status>> + Send>>;

struct BareGreeter;

#[tonic::async_trait]
impl Greeter for BareGreeter {
    async fn say_hello(
        &self,
        request: Request<HelloRequest>,
    ) -> Result<Response<HelloReply>, Status> {
        Ok(Response::new(HelloReply {
            message: format!("Hello, {}", request.into_inner().name),
        }))
    }

    type SayHelloStreamStream = Replies;

    async fn say_hello_stream(
        &self,
        _: Request<HelloStreamRequest>,
    ) -> Result<Response<Replies>, Status> {
        Err(Status::unimplemented("only SayHello is measured"))
    }

    async fn say_hello_to_all(
        &self,
        _: Request<Streaming<HelloRequest>>,
    ) -> Result<Response<HelloSummary>, Status> {
        Err(Status::unimplemented("only SayHello is measured"))
    }

    type ChatStream = Replies;

    async fn chat(&self, _: Request<Streaming<HelloRequest>>) -> Result<Response<Replies>, Status> {
        Err(Status::unimplemented("only SayHello is measured"))
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let addr = std::env::args()
        .nth(1)
        .ok_or("usage: bare-tonic ADDR")?
        .parse()?;
    Server::builder()
        .accept_http1(true)
        .layer(tonic_web::GrpcWebLayer::new())
        .add_service(GreeterServer::new(BareGreeter))
        .serve(addr)
        .await?;
    Ok(())
}

//! `connect_rust PORT`: the Greeter's `SayHello` on connect-rust, as its own benchmark servers
//! serve it (the generated dispatcher in `ConnectRpcService`, its hyper server with HTTP/1.1 and
//! h2c on one port), for `cargo xtask bench` to load beside our server and bare tonic. Only
//! `SayHello` is measured; the streaming methods answer UNIMPLEMENTED.

// The generated trait returns `impl Encodable<M>`; naming the concrete reply type refines it.
#![allow(refining_impl_trait)]

use std::net::SocketAddr;

use connectrpc::{
    ConnectError, ConnectRpcService, ErrorCode, InboundStream, RequestContext, Response, Server,
    ServiceRequest, ServiceResult, ServiceStream,
};

pub mod proto {
    connectrpc::include_generated!();
}

use proto::hello::{
    Greeter, GreeterServer, HelloReply, HelloRequest, HelloStreamRequest, HelloSummary,
};

struct Hello;

fn unimplemented<T>(method: &str) -> ServiceResult<T> {
    Err(ConnectError::new(
        ErrorCode::Unimplemented,
        format!("{method} is not measured"),
    ))
}

impl Greeter for Hello {
    async fn say_hello(
        &self,
        _context: RequestContext,
        request: ServiceRequest<'_, HelloRequest>,
    ) -> ServiceResult<HelloReply> {
        Response::ok(HelloReply {
            message: format!("Hello, {}", request.name),
            ..Default::default()
        })
    }

    async fn say_hello_stream(
        &self,
        _context: RequestContext,
        _request: ServiceRequest<'_, HelloStreamRequest>,
    ) -> ServiceResult<ServiceStream<HelloReply>> {
        unimplemented("SayHelloStream")
    }

    async fn say_hello_to_all(
        &self,
        _context: RequestContext,
        _requests: InboundStream<HelloRequest>,
    ) -> ServiceResult<HelloSummary> {
        unimplemented("SayHelloToAll")
    }

    async fn chat(
        &self,
        _context: RequestContext,
        _requests: InboundStream<HelloRequest>,
    ) -> ServiceResult<ServiceStream<HelloReply>> {
        unimplemented("Chat")
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let port: u16 = std::env::args()
        .nth(1)
        .ok_or("usage: connect_rust PORT")?
        .parse()?;
    let service = ConnectRpcService::new(GreeterServer::new(Hello));
    Server::bind(SocketAddr::from(([127, 0, 0, 1], port)))
        .await?
        .serve_with_service(service)
        .await
}

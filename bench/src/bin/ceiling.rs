//! The ceiling: a plain hyper HTTP/1.1 server that answers every request with the same 20 bytes.
//! No gRPC server on HTTP/1.1 can be faster on this machine; gRPC-Web is measured against it.
//!
//! Usage: ceiling ADDR

use std::convert::Infallible;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{body::Incoming, server::conn::http1, service::service_fn, Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

const BODY: &[u8; 20] = b"Hello, world 0123456";

async fn answer(request: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    // Read the request body, as a gRPC-Web server must.
    let _ = request.into_body().collect().await;
    Ok(Response::new(Full::new(Bytes::from_static(BODY))))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let addr = std::env::args().nth(1).ok_or("usage: ceiling ADDR")?;
    let listener = TcpListener::bind(addr).await?;
    loop {
        let (stream, _) = listener.accept().await?;
        tokio::spawn(async move {
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service_fn(answer))
                .await;
        });
    }
}

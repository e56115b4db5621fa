//! The built web page, served from the same port as the API.
//!
//! Files come from the configured directory (trunk's `dist`) with content types from their
//! extensions (`application/wasm` for the module, so browsers compile it while it streams). Any
//! path that is not a file gets index.html, so the app's own routes survive a reload.
//!
//! The one exception is a gRPC request for a service the server does not have: it must get the gRPC
//! status UNIMPLEMENTED, in the client's own protocol, not an HTML page.

use std::{convert::Infallible, path::Path};

use axum::{
    body::Body,
    extract::Request,
    response::{IntoResponse, Response},
};
use http::header;
use tonic::Status;
use tonic_web::GrpcWebLayer;
use tower::Layer;
use tower::ServiceExt;
use tower_http::services::{ServeDir, ServeFile};

/// The fallback for every path no gRPC service claimed.
pub fn fallback(
    static_dir: &Path,
) -> impl tower::Service<Request, Response = Response, Error = Infallible, Future: Send> + Clone + Send
{
    let index = static_dir.join("index.html");
    if !index.is_file() {
        tracing::warn!(
            "no page at {}: build it with `cargo xtask run` (or `trunk build --release`)",
            index.display()
        );
    }
    let files = ServeDir::new(static_dir).fallback(ServeFile::new(index));
    let unimplemented = GrpcWebLayer::new().layer(tower::service_fn(|_request| async {
        Ok::<_, Infallible>(Status::unimplemented("unknown service or method").into_http::<Body>())
    }));

    tower::service_fn(move |request: Request| {
        let files = files.clone();
        let unimplemented = unimplemented.clone();
        async move {
            let response = if is_grpc(&request) {
                unimplemented.oneshot(request).await.into_response()
            } else {
                files.oneshot(request).await.into_response()
            };
            Ok(response)
        }
    })
}

/// Native gRPC (`application/grpc…`) or gRPC-Web (`application/grpc-web…`).
fn is_grpc(request: &Request) -> bool {
    request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.starts_with("application/grpc"))
}

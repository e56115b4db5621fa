//! The Greeter server: the Greeter's services ([`greeter`], [`stats`]) served by the `grpc-serve`
//! stack, which answers native gRPC, gRPC-Web, gRPC over WebSockets and the web page on one port.
//!
//! The binary in `main.rs` only reads [`Config`] and calls [`serve`]; tests drive the same
//! functions on an ephemeral port.

pub mod app;
pub mod config;
pub mod greeter;
#[cfg(feature = "grpc-testing")]
pub mod grpc_testing;
pub mod page;
pub mod stats;

pub use config::Config;
pub use greeter::GreeterService;
pub use grpc_serve::ServeError;

use std::future::Future;

use tokio::net::TcpListener;

/// Binds the configured address. Split from [`serve`] so callers (and tests) can learn the real
/// port when they ask for port 0.
pub async fn bind(config: &Config) -> Result<TcpListener, ServeError> {
    grpc_serve::bind(config.serve.addr).await
}

/// Serves the Greeter and the page on `listener` until `shutdown` completes, then drains.
pub async fn serve(
    listener: TcpListener,
    config: &Config,
    shutdown: impl Future<Output = ()>,
) -> Result<(), ServeError> {
    app::server(config).serve(listener, shutdown).await
}

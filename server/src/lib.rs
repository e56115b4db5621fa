//! The Greeter server as a library: the service, the HTTP application around it, and the serve loop.
//!
//! One port answers native gRPC (HTTP/2), gRPC-Web (HTTP/1.1 and HTTP/2) and plain HTTP for the built
//! web page, so opening the server's URL in a browser is the whole app. The binary in `main.rs` only
//! parses [`Config`] and calls [`serve`]; tests drive the same functions on an ephemeral port.

pub mod app;
pub mod catalog;
pub mod config;
pub mod connection;
pub mod cors;
pub mod deadline;
pub mod gate;
pub mod greeter;
#[cfg(feature = "grpc-testing")]
pub mod grpc_testing;
pub mod host;
pub mod limits;
pub mod log_summary;
pub mod metrics;
pub mod serve;
pub mod stats;
pub mod tls;
pub mod web_assets;

pub use app::app;
pub use config::Config;
pub use greeter::GreeterService;

use std::{future::Future, io, sync::Arc};

use tokio::net::TcpListener;

/// Why the server could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: std::net::SocketAddr,
        source: io::Error,
    },
    #[error("server failed: {0}")]
    Io(#[from] io::Error),
    #[error(transparent)]
    Tls(#[from] tls::TlsError),
}

/// Binds the configured address. Split from [`serve`] so callers (and tests) can learn the real port
/// when they ask for port 0.
pub async fn bind(config: &Config) -> Result<TcpListener, ServeError> {
    TcpListener::bind(config.addr)
        .await
        .map_err(|source| ServeError::Bind {
            addr: config.addr,
            source,
        })
}

/// Serves the application on `listener` until `shutdown` completes, then drains in-flight calls.
pub async fn serve(
    listener: TcpListener,
    config: &Config,
    shutdown: impl Future<Output = ()>,
) -> Result<(), ServeError> {
    let tls = match (&config.tls_cert, &config.tls_key) {
        (Some(cert), Some(key)) => Some(tls::acceptor(cert, key)?),
        _ => None,
    };
    let app::App {
        service,
        health,
        shutdown: end_streams,
        metrics,
    } = app(config);
    for service in app::SERVICE_NAMES {
        health
            .set_service_status(service, tonic_health::ServingStatus::Serving)
            .await;
    }
    let shutdown = async {
        shutdown.await;
        // Health checks say so first, so load balancers stop sending new calls while we drain.
        for service in app::SERVICE_NAMES.into_iter().chain([""]) {
            health
                .set_service_status(service, tonic_health::ServingStatus::NotServing)
                .await;
        }
        // Open streams end with UNAVAILABLE, so clients see a status they can retry on.
        end_streams.cancel();
    };
    serve::serve_app(
        listener,
        service,
        shutdown,
        config,
        Arc::clone(&metrics),
        tls,
    )
    .await?;
    // What was served, in the last lines before exit: nothing acknowledged goes unaccounted.
    for (method, code, count) in metrics.handled() {
        tracing::info!(method, code, count, "calls handled");
    }
    Ok(())
}

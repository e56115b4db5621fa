//! Serve tonic services to browsers and gRPC clients on one port.
//!
//! One listener answers native gRPC (HTTP/2), gRPC-Web (HTTP/1.1 and HTTP/2), gRPC over
//! WebSockets (client and bidirectional streaming from browsers, see `grpc-websocket`) and the
//! web page that calls them, with TLS when given a certificate. Around the caller's services it
//! adds what a deployment needs: gRPC health and reflection (named from the services themselves),
//! Prometheus metrics at `/metrics`, a request id and an access-log line per call, a limit on
//! calls in flight, on connections and on message sizes, timeouts for slow and idle clients, an
//! origin policy (CORS, WebSocket origins, host names against DNS rebinding), and a graceful
//! shutdown that drains calls.
//!
//! ```no_run
//! # mod echo { pub const FILE_DESCRIPTOR_SET: &[u8] = &[]; }
//! # #[derive(Clone)] struct EchoServer;
//! # impl tonic::server::NamedService for EchoServer { const NAME: &'static str = "echo.Echo"; }
//! # impl tower::Service<http::Request<tonic::body::Body>> for EchoServer {
//! #     type Response = http::Response<tonic::body::Body>;
//! #     type Error = std::convert::Infallible;
//! #     type Future = std::future::Ready<Result<Self::Response, Self::Error>>;
//! #     fn poll_ready(&mut self, _: &mut std::task::Context<'_>) -> std::task::Poll<Result<(), Self::Error>> { todo!() }
//! #     fn call(&mut self, _: http::Request<tonic::body::Body>) -> Self::Future { todo!() }
//! # }
//! use grpc_serve::{options, Options, Server};
//!
//! /// The command line: the serving options, and flags of the application's own if it has any.
//! #[derive(clap::Parser)]
//! struct Cli {
//!     #[command(flatten)]
//!     serve: Options,
//! }
//!
//! #[tokio::main]
//! async fn main() -> Result<(), grpc_serve::ServeError> {
//!     // Every flag also read from the environment: --max-connections from APP_MAX_CONNECTIONS.
//!     let cli: Cli = options::parse("APP");
//!     grpc_serve::logging::init(cli.serve.log_format);
//!     let server = Server::new(cli.serve)
//!         // A tonic-generated server, and the descriptor set of its .proto for reflection.
//!         .add_service(EchoServer, echo::FILE_DESCRIPTOR_SET);
//!     let listener = server.bind().await?;
//!     server.serve(listener, grpc_serve::shutdown_signal()).await
//! }
//! ```

#![warn(missing_docs, unreachable_pub)]

mod accept;
mod body;
mod catalog;
mod connection;
mod cors;
mod deadline;
mod framing;
mod gate;
mod host;
mod hosted;
mod limits;
mod log_summary;
pub mod logging;
mod metrics;
pub mod options;
mod readiness;
mod request_body;
mod stack;
mod system;
mod tls;
mod web_assets;

pub use hosted::{BoxedService, LayerScope};
pub use options::{LogFormat, Options};
pub use tls::TlsError;
pub use web_assets::AssetStore;

use std::{convert::Infallible, future::Future, io, path::Path, sync::Arc};

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tonic::{body::Body, server::NamedService};

use crate::hosted::{Hosted, ServiceLayer};

/// Why the server could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The address could not be bound (in use, or not this machine's).
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address asked for.
        addr: std::net::SocketAddr,
        /// The operating system's reason.
        source: io::Error,
    },
    /// Serving failed after start-up.
    #[error("server failed: {0}")]
    Io(#[from] io::Error),
    /// The TLS certificate or key could not be used.
    #[error(transparent)]
    Tls(#[from] tls::TlsError),
    /// A service given to [`Server::add_service`] that the stack cannot host.
    #[error("cannot host {service}: {reason}")]
    Service {
        /// The service's name (`package.Service`).
        service: &'static str,
        /// Why it cannot be hosted.
        reason: String,
    },
}

/// The services to serve, the page, and the options to serve them with.
pub struct Server {
    options: Options,
    hosted: Vec<Hosted>,
    /// What [`Server::bind`] reports: the first service that cannot be hosted, and why.
    problem: Option<(&'static str, String)>,
    layer: Option<(ServiceLayer, LayerScope)>,
    routes: Option<axum::Router>,
    page: Option<AssetStore>,
    draining: CancellationToken,
}

impl Server {
    /// A server with `options` and nothing to serve yet.
    pub fn new(options: Options) -> Self {
        Self {
            options,
            hosted: Vec::new(),
            problem: None,
            layer: None,
            routes: None,
            page: None,
            draining: CancellationToken::new(),
        }
    }

    /// The options the server runs with.
    pub fn options(&self) -> &Options {
        &self.options
    }

    /// Cancelled when the shutdown begins. A service whose streams could run on (a subscription,
    /// a chat) ends them when it fires, with UNAVAILABLE, so clients see a status they can retry
    /// on instead of a reset at the drain timeout.
    pub fn draining(&self) -> CancellationToken {
        self.draining.clone()
    }

    /// Hosts a tonic-generated server (`EchoServer::new(...)`, or
    /// `EchoServer::with_interceptor(...)`, or one under a tower layer of its own), reachable
    /// over every transport, with `descriptor_set` the encoded `FileDescriptorSet` of its
    /// contract (`tonic::include_file_descriptor_set!`): reflection describes the service from
    /// it, and metrics label its methods by it. Health reports it by its name, `S::NAME`.
    ///
    /// A descriptor set that does not decode or does not describe the service, or a second
    /// service of the same name, is reported by [`Server::bind`] (and [`Server::serve`]).
    pub fn add_service<S, B>(mut self, service: S, descriptor_set: &'static [u8]) -> Self
    where
        S: tower::Service<http::Request<Body>, Response = http::Response<B>, Error = Infallible>
            + NamedService
            + Clone
            + Send
            + Sync
            + 'static,
        S::Future: Send + 'static,
        B: http_body::Body<Data = bytes::Bytes> + Send + 'static,
        B::Error: Into<tonic::codegen::StdError>,
    {
        let hosted = Hosted::new(service, descriptor_set);
        if self.problem.is_none() {
            let names: Vec<&str> = self.hosted.iter().map(|service| service.name).collect();
            self.problem = hosted.problem(&names).map(|reason| (hosted.name, reason));
        }
        self.hosted.push(hosted);
        self
    }

    /// Puts `layer` (a tower layer over gRPC services: authentication, for example, with
    /// `tonic::service::InterceptorLayer`) over every service given to [`Server::add_service`],
    /// and with [`LayerScope::Everything`] over health, reflection and `/metrics` too. It sits inside the call gate, so a call it refuses is
    /// counted, logged and bounded like any other. The services reach it with their types
    /// erased ([`BoxedService`]); a second call replaces the first.
    pub fn layer<L, B>(mut self, scope: LayerScope, layer: L) -> Self
    where
        L: tower::Layer<BoxedService> + Send + Sync + 'static,
        L::Service: tower::Service<http::Request<Body>, Response = http::Response<B>, Error = Infallible>
            + Clone
            + Send
            + Sync
            + 'static,
        <L::Service as tower::Service<http::Request<Body>>>::Future: Send + 'static,
        B: http_body::Body<Data = bytes::Bytes> + Send + 'static,
        B::Error: Into<tonic::codegen::StdError>,
    {
        self.layer = Some((hosted::erase_layer(layer), scope));
        self
    }

    /// Serves `router`'s routes (axum) on the same port, behind the same host and origin checks
    /// as the gRPC services. They come after the stack's own paths (the hosted services, health,
    /// reflection, `/metrics`, `/readyz`, `/livez`), which they cannot shadow, and before the page,
    /// which answers every path they leave. Routers given by more than one call are merged, as
    /// axum merges them.
    pub fn routes(mut self, router: axum::Router) -> Self {
        self.routes = Some(match self.routes.take() {
            Some(routes) => routes.merge(router),
            None => router,
        });
        self
    }

    /// Serves `page` as the web page (see [`AssetStore`]). Without it: the directory of
    /// `--static-dir`, else `./dist`.
    pub fn page(mut self, page: AssetStore) -> Self {
        self.page = Some(page);
        self
    }

    /// Checks what the server was given (its services, its TLS material), then binds the
    /// configured address. Split from [`Server::serve`] so callers (and tests) can learn the real
    /// port when they ask for port 0.
    pub async fn bind(&self) -> Result<TcpListener, ServeError> {
        self.check()?;
        bind(self.options.addr).await
    }

    /// Whether everything given to the builder can be served; the TLS acceptor, if TLS is on.
    fn check(&self) -> Result<Option<tokio_rustls::TlsAcceptor>, ServeError> {
        if let Some((service, reason)) = &self.problem {
            return Err(ServeError::Service {
                service,
                reason: reason.clone(),
            });
        }
        Ok(match (&self.options.tls_cert, &self.options.tls_key) {
            (Some(cert), Some(key)) => Some(tls::acceptor(cert, key)?),
            _ => None,
        })
    }

    /// Serves on `listener` until `shutdown` completes, then stops without losing a call:
    /// `/readyz` and health go NOT_SERVING at once; everything is still served for the shutdown
    /// delay, so load balancers stop sending calls; then the drain: [`Server::draining`] fires,
    /// the listener closes, HTTP/2 connections get a graceful GOAWAY, and open calls get up to the
    /// drain timeout to finish.
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()>,
    ) -> Result<(), ServeError> {
        let tls = self.check()?;
        let Server {
            options,
            hosted,
            problem: _,
            layer,
            routes,
            page,
            draining,
        } = self;
        let names: Vec<&'static str> = hosted.iter().map(|service| service.name).collect();
        let page = match page {
            Some(page) => page,
            // Reading and compressing the page takes seconds (brotli at its best quality): on
            // the blocking pool, so the runtime's other tasks go on meanwhile.
            None => {
                let static_dir = options.static_dir.clone();
                tokio::task::spawn_blocking(move || page_from(static_dir))
                    .await
                    .expect("loading the page does not panic")
            }
        };
        let readiness = readiness::Readiness::new();
        let stack::App {
            service,
            health,
            metrics,
        } = stack::app(stack::Parts {
            options: &options,
            hosted,
            layer,
            routes,
            page,
            readiness: &readiness,
            draining: draining.clone(),
        })?;
        for name in &names {
            health
                .set_service_status(name, tonic_health::ServingStatus::Serving)
                .await;
        }
        let shutdown_delay = options.shutdown_delay;
        let shutdown = async {
            shutdown.await;
            // Readiness and health say so first, and the replica serves on for the delay, so load
            // balancers stop sending new calls before any connection closes.
            readiness.stop();
            for name in names.iter().copied().chain([""]) {
                health
                    .set_service_status(name, tonic_health::ServingStatus::NotServing)
                    .await;
            }
            if !shutdown_delay.is_zero() {
                tracing::info!(?shutdown_delay, "not ready; serving on before the drain");
                tokio::time::sleep(shutdown_delay).await;
            }
            // Open streams end with UNAVAILABLE, so clients see a status they can retry on: the
            // call gate ends every one, whether or not its service watches `draining()`.
            draining.cancel();
        };
        system::raise_open_files_limit(options.max_connections);
        let trim = system::spawn_memory_trim();
        let served = accept::serve_app(
            listener,
            service,
            shutdown,
            &options,
            Arc::clone(&metrics),
            tls,
        )
        .await;
        trim.abort();
        served?;
        // What was served, in the last lines before exit: nothing acknowledged goes unaccounted.
        for (method, code, count) in metrics.handled() {
            tracing::info!(method, code, count, "calls handled");
        }
        Ok(())
    }
}

/// The listen backlog asked for; the kernel caps it (Linux at `net.core.somaxconn`, 4096 by
/// default). A burst of connections beyond the backlog is not refused: the kernel drops the
/// handshake's last packet and the client's first ones, so a client that closes at once may have
/// its close lost and its connection held until the first-request limit. tokio's default (1024)
/// overflows under a burst the accept loop takes in well under a second.
const LISTEN_BACKLOG: u32 = 4096;

/// Binds `addr`, with an error that names it.
pub async fn bind(addr: std::net::SocketAddr) -> Result<TcpListener, ServeError> {
    let listen = || {
        let socket = if addr.is_ipv4() {
            tokio::net::TcpSocket::new_v4()?
        } else {
            tokio::net::TcpSocket::new_v6()?
        };
        // As tokio's `TcpListener::bind` does: a restarted server can take its port back while
        // the old one's connections are in TIME_WAIT (on Windows the flag means port sharing).
        #[cfg(unix)]
        socket.set_reuseaddr(true)?;
        socket.bind(addr)?;
        socket.listen(LISTEN_BACKLOG)
    };
    listen().map_err(|source| ServeError::Bind { addr, source })
}

/// The page from `static_dir` (`--static-dir`), else from `./dist`; an empty one, with a
/// warning, when there is none.
fn page_from(static_dir: Option<std::path::PathBuf>) -> AssetStore {
    let dir = static_dir.unwrap_or_else(|| Path::new("dist").to_owned());
    match AssetStore::from_dir(&dir) {
        Ok(store) if !store.is_empty() => {
            tracing::info!(
                files = store.len(),
                "serving the page from {}",
                dir.display()
            );
            store
        }
        Ok(store) => store,
        Err(error) => {
            tracing::warn!(%error, "no page from {}: build it there with `trunk build --release`", dir.display());
            AssetStore::default()
        }
    }
}

/// Completes on Ctrl-C, or on SIGTERM where there is one (how service managers stop a process).
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
    tracing::info!("shutting down");
}

//! The accept loop: every connection is served by hyper with HTTP/1.1 and HTTP/2 auto-detected on
//! the same port, and HTTP/1.1 upgrades enabled (the WebSocket transport needs them; tonic's own
//! server has none).
//!
//! On shutdown the listener closes first, then each connection is told to finish: HTTP/2 gets a
//! GOAWAY, HTTP/1.1 closes after its current response, and the loop waits for them to drain, for
//! at most the drain timeout; connections still open then are closed.

use std::{future::Future, io, sync::Arc, time::Duration};

use axum::body::Body;
use hyper::body::Incoming;
use hyper_util::{
    rt::{TokioExecutor, TokioIo, TokioTimer},
    server::{conn::auto, graceful::GracefulShutdown},
    service::TowerToHyperService,
};
use tokio::{net::TcpListener, sync::Semaphore};
use tonic::transport::server::Connected;
use tower::ServiceExt;

use tokio_rustls::TlsAcceptor;

use crate::{app::AppService, metrics::Metrics, Config};

/// Probes an idle connection after 30 s, then every 10 s; three unanswered probes close it.
fn tcp_keepalive() -> socket2::TcpKeepalive {
    socket2::TcpKeepalive::new()
        .with_time(Duration::from_secs(30))
        .with_interval(Duration::from_secs(10))
        .with_retries(3)
}

/// How long a client may take to complete the TLS handshake.
const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Serves `app` on `listener` until `shutdown` completes, then drains open connections for at
/// most the configured drain timeout.
pub async fn serve_app(
    listener: TcpListener,
    app: AppService,
    shutdown: impl Future<Output = ()>,
    config: &Config,
    metrics: Arc<Metrics>,
    tls: Option<TlsAcceptor>,
) -> io::Result<()> {
    let drain_timeout = config.drain_timeout;
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(config.header_read_timeout)
        // Bounds the request head: larger headers get 431.
        .max_buf_size(64 * 1024);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(config.max_streams_per_connection)
        .max_header_list_size(64 * 1024);
    let keepalive = tcp_keepalive();
    let connections = Arc::new(Semaphore::new(config.max_connections as usize));
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);

    loop {
        // At the cap, wait for a connection to close; new ones queue in the listen backlog.
        let permit = tokio::select! {
            permit = Arc::clone(&connections).acquire_owned() => permit.expect("never closed"),
            () = &mut shutdown => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of file descriptors, or a connection reset before accept: keep serving.
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        // TCP keepalive finds dead peers (a client gone without a FIN, a NAT that forgot the
        // connection) and keeps idle NAT mappings alive. HTTP/2 PINGs would do the same from
        // inside hyper, but its keep-alive takes a shared lock on every frame every stream
        // receives: a fifth of the unary call rate on this server.
        let _ = socket2::SockRef::from(&stream).set_tcp_keepalive(&keepalive);
        // tonic's `Request::remote_addr` reads this extension.
        let connect_info = stream.connect_info();
        let service = app
            .clone()
            .map_request(move |mut request: http::Request<Incoming>| {
                request.extensions_mut().insert(connect_info.clone());
                request.map(Body::new)
            });
        let builder = builder.clone();
        let watcher = graceful.watcher();
        let tls = tls.clone();
        let metrics = Arc::clone(&metrics);
        metrics.connection_opened();
        tokio::spawn(async move {
            let service = TowerToHyperService::new(service);
            let served = match tls {
                None => {
                    let connection =
                        builder.serve_connection_with_upgrades(TokioIo::new(stream), service);
                    watcher.watch(connection.into_owned()).await
                }
                Some(tls) => {
                    match tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, tls.accept(stream)).await {
                        Ok(Ok(stream)) => {
                            let connection = builder
                                .serve_connection_with_upgrades(TokioIo::new(stream), service);
                            watcher.watch(connection.into_owned()).await
                        }
                        Ok(Err(error)) => Err(error.into()),
                        Err(_) => Err("TLS handshake timed out".into()),
                    }
                }
            };
            if let Err(error) = served {
                tracing::debug!(%peer, %error, "connection ended with an error");
            }
            metrics.connection_closed();
            drop(permit);
        });
    }

    drop(listener);
    if tokio::time::timeout(drain_timeout, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(
            ?drain_timeout,
            "connections still open after the drain timeout; closing them"
        );
    }
    Ok(())
}

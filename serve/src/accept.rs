//! The accept loop: every connection is served by hyper with HTTP/1.1 and HTTP/2 auto-detected on
//! the same port, and HTTP/1.1 upgrades enabled (the WebSocket transport needs them; tonic's own
//! server has none).
//!
//! Each connection holds a [`ConnectionSlot`] under `--max-connections`, WebSocket upgrades
//! included, and is closed when it has had no request in flight for its limit: the header read
//! timeout until its first request, the idle timeout after that.
//!
//! On shutdown the listener closes first, then each connection is told to finish: HTTP/2 gets a
//! GOAWAY, HTTP/1.1 closes after its current response, and the loop waits for them to drain, for
//! at most the drain timeout; connections still open then are closed.

use std::{future::Future, io, sync::Arc, time::Duration};

use axum::body::Body;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper_util::{
    rt::{TokioExecutor, TokioIo, TokioTimer},
    server::conn::auto,
    service::TowerToHyperService,
};
use tokio::{net::TcpListener, sync::Semaphore};
use tokio_rustls::TlsAcceptor;
use tokio_util::{sync::CancellationToken, task::TaskTracker};
use tonic::transport::server::Connected;
use tower::ServiceExt;

use crate::{
    connection::{Close, ConnectionSlot, Tracked},
    log_summary::LogSummary,
    metrics::Metrics,
    stack::AppService,
    Options,
};

/// Probes an idle connection after 30 s, then every 10 s; three unanswered probes close it.
fn tcp_keepalive() -> socket2::TcpKeepalive {
    socket2::TcpKeepalive::new()
        .with_time(Duration::from_secs(30))
        .with_interval(Duration::from_secs(10))
        .with_retries(3)
}

/// The most response data one HTTP/2 stream queues for its peer; the service's stream waits while
/// it is full. At 200 streams, 3.2 MiB per connection.
pub(crate) const MAX_SEND_BUF_PER_STREAM: usize = 16 * 1024;

/// Once an idle connection has been told to close, how long it may take to do so before it is
/// dropped: a client that stops reading cannot even be sent a GOAWAY.
const IDLE_CLOSE_GRACE: Duration = Duration::from_secs(1);

/// Serves `app` on `listener` until `shutdown` completes, then drains open connections for at
/// most the configured drain timeout.
pub(crate) async fn serve_app(
    listener: TcpListener,
    app: AppService,
    shutdown: impl Future<Output = ()>,
    options: &Options,
    metrics: Arc<Metrics>,
    tls: Option<TlsAcceptor>,
) -> io::Result<()> {
    let drain_timeout = options.drain_timeout;
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(options.header_read_timeout)
        // Bounds the request head: larger headers get 431.
        .max_buf_size(64 * 1024);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(options.max_streams_per_connection)
        .max_header_list_size(64 * 1024)
        // What one stream may queue for a peer that does not read, whatever window the peer
        // grants: hyper's default (400 KiB) times 200 streams let one connection hold 80 MiB.
        .max_send_buf_size(MAX_SEND_BUF_PER_STREAM);
    let limits = ConnectionLimits {
        first_request: options.header_read_timeout,
        idle: options.idle_timeout,
    };
    let keepalive = tcp_keepalive();
    let connections = Arc::new(Semaphore::new(options.max_connections as usize));
    // Tells every connection to finish; the tracker waits for them to.
    let draining = CancellationToken::new();
    let tasks = TaskTracker::new();
    let accept_failures = LogSummary::new(Duration::from_secs(10));
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
                    if let Some(failed) = accept_failures.event() {
                        tracing::warn!(%error, failed, "accepts failed since the last report");
                    }
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
        let slot = ConnectionSlot::new(permit, tasks.token(), Arc::clone(&metrics));
        // tonic's `Request::remote_addr` reads this extension.
        let connect_info = stream.connect_info();
        let service = Tracked::new(
            app.clone()
                .map_request(move |mut request: http::Request<Incoming>| {
                    request.extensions_mut().insert(connect_info.clone());
                    request.map(|body| Body::new(body.map_err(request_body_error)))
                }),
            Arc::clone(&slot),
        );
        let builder = builder.clone();
        let draining = draining.clone();
        let tls = tls.clone();
        tasks.spawn(async move {
            // The watch over idleness and the drain runs beside the connection, so that the
            // connection's own task, woken for every request, polls no timer.
            let watch = tokio::spawn({
                let slot = Arc::clone(&slot);
                async move {
                    slot.watch(limits.first_request, limits.idle, &draining)
                        .await;
                }
            });
            let service = TowerToHyperService::new(service);
            let served = match tls {
                None => {
                    let connection =
                        builder.serve_connection_with_upgrades(TokioIo::new(stream), service);
                    serve_connection(connection, &slot).await
                }
                // The handshake counts against the first-request limit too.
                Some(tls) => {
                    match tokio::time::timeout(limits.first_request, tls.accept(stream)).await {
                        Ok(Ok(stream)) => {
                            let connection = builder
                                .serve_connection_with_upgrades(TokioIo::new(stream), service);
                            serve_connection(connection, &slot).await
                        }
                        Ok(Err(error)) => Err(error.into()),
                        Err(_) => Err("TLS handshake timed out".into()),
                    }
                }
            };
            watch.abort();
            if let Err(error) = served {
                tracing::debug!(%peer, %error, "connection ended with an error");
            }
        });
    }

    drop(listener);
    draining.cancel();
    tasks.close();
    // The connections' tasks and their slots, which the sockets that outlive a task (WebSocket
    // calls) hold until their closing handshake is done.
    if tokio::time::timeout(drain_timeout, tasks.wait())
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

/// How long a connection may go without a request in flight.
#[derive(Debug, Clone, Copy)]
struct ConnectionLimits {
    /// From the accept to the first request's headers (TLS handshake included).
    first_request: Duration,
    /// Between requests, once one has been served.
    idle: Duration,
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Why a request body could not be read, when its HTTP/1.1 framing (a bad or overflowing chunk
/// size) is at fault: the caller's status says so in our words, not in hyper's internal ones.
#[derive(Debug, thiserror::Error)]
#[error("the request body's HTTP framing is malformed")]
struct MalformedBody;

/// A request body that could not be read, as the call sees it: [`MalformedBody`] for malformed
/// framing; other errors (a reset stream, a closed connection) keep hyper's error, which tonic
/// maps to their own codes.
fn request_body_error(error: hyper::Error) -> BoxError {
    let malformed = std::error::Error::source(&error)
        .and_then(|source| source.downcast_ref::<io::Error>())
        .is_some_and(|source| {
            matches!(
                source.kind(),
                io::ErrorKind::InvalidInput | io::ErrorKind::InvalidData
            )
        });
    if malformed {
        tracing::debug!(%error, "malformed request body");
        return Box::new(MalformedBody);
    }
    error.into()
}

/// Serves one connection to its end: closed by the client, idle past its limit, or drained.
async fn serve_connection<I, S, B>(
    connection: auto::UpgradeableConnection<'_, I, S, TokioExecutor>,
    slot: &ConnectionSlot,
) -> Result<(), BoxError>
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
    S: hyper::service::Service<http::Request<Incoming>, Response = http::Response<B>>,
    S::Future: 'static,
    S::Error: Into<BoxError>,
    B: http_body::Body + 'static,
    B::Error: Into<BoxError>,
    TokioExecutor: hyper_util::server::conn::auto::HttpServerConnExec<S::Future, B>,
{
    tokio::pin!(connection);
    let reason = tokio::select! {
        biased;
        served = connection.as_mut() => return served,
        reason = slot.closing() => reason,
    };
    // HTTP/2 gets a GOAWAY and finishes its streams; HTTP/1.1 closes after its current response.
    connection.as_mut().graceful_shutdown();
    if reason == Close::Draining {
        // The drain timeout bounds the drain as a whole.
        return connection.await;
    }
    tracing::debug!("closing an idle connection");
    match tokio::time::timeout(IDLE_CLOSE_GRACE, connection).await {
        Ok(served) => served,
        Err(_) => Ok(()),
    }
}

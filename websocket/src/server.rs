//! The server half: a tower layer that accepts `grpc-websockets` upgrades in front of tonic routes.
//!
//! An upgrade request on a method's path is answered `101 Switching Protocols`; the socket then
//! becomes an HTTP/2-style streaming request (`application/grpc`, body fed from the socket's
//! messages as they arrive) into the same inner service that serves native gRPC, and the response
//! goes back over the socket: headers, each message, trailers. Every other request passes through
//! untouched.
//!
//! Back-pressure holds both ways: the request body is a small bounded channel, so a service that
//! reads slowly stops the socket from being read; a response frame is sent only once the previous
//! one is flushed, so a client that stops reading stops the response stream from being polled.
//! When the client closes the socket or vanishes, the call is dropped, which cancels it.
//!
//! What a socket can make the server hold is bounded: its read buffer (8 KiB, growing only for a
//! message being read, up to the message size limit), its write buffer (two sent messages of at
//! most [`MAX_SENT_MESSAGE`] bytes, pongs included), four request messages waiting for the
//! service, and the call itself.
//!
//! What the server must provide: connections served with HTTP/1.1 upgrades enabled (hyper's
//! `serve_connection_with_upgrades`), since the layer answers `101` and takes the socket over
//! through `hyper::upgrade::on`. The request's extensions are kept alive until the socket closes,
//! so a per-connection value that the server puts there (a place under a connection limit)
//! covers the socket too.

use std::{
    convert::Infallible,
    future::Future,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
    time::Duration,
};

use axum::body::Body;
use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use grpc_call::status_code;
use http::{header, HeaderMap, HeaderValue, Method, Request, Response, StatusCode, Version};
use http_body::Frame;
use http_body_util::{BodyExt, StreamBody};
use hyper_util::rt::TokioIo;
use tokio::sync::mpsc;
use tokio_tungstenite::{
    tungstenite::{
        handshake::derive_accept_key,
        protocol::{frame::coding::CloseCode, CloseFrame, Role, WebSocketConfig},
        Message,
    },
    WebSocketStream,
};
use tonic::{Code, Status};
use tower::{Layer, Service, ServiceExt};

use crate::{
    protocol::{self, ClientMessage, ProtocolError},
    ROUTE_PREFIX, SUBPROTOCOL,
};

type BoxError = Box<dyn std::error::Error + Send + Sync>;
type Socket = WebSocketStream<TokioIo<hyper::upgrade::Upgraded>>;

/// Limits for calls carried over WebSockets.
#[derive(Debug, Clone)]
pub struct Limits {
    /// The largest gRPC message accepted from a client, in bytes.
    pub max_message_size: usize,
    /// How long a client may take to send its header block after the upgrade.
    pub header_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            // tonic's own default decoding limit.
            max_message_size: 4 * 1024 * 1024,
            header_timeout: Duration::from_secs(10),
        }
    }
}

/// Which other origins' pages may open sockets, besides the server's own.
type AllowOrigin = Arc<dyn Fn(&HeaderValue) -> bool + Send + Sync>;

/// Adds `grpc-websockets` support in front of a service that serves gRPC.
///
/// Browsers send no CORS preflight before a WebSocket, and the same-origin policy does not cover
/// one, so any page a user visits could open sockets to the server. The layer therefore refuses,
/// with 403, an upgrade whose `Origin` is not the server's own (the same host and port as the
/// request's `Host`) unless [`GrpcWebSocketLayer::allow_origins`] admits it. Clients that send no
/// `Origin` (anything but a browser) are not checked.
///
/// ```
/// use grpc_websocket::server::{GrpcWebSocketLayer, Limits};
///
/// let layer = GrpcWebSocketLayer::new(Limits::default())
///     .allow_origins(|origin| origin == "https://app.example.com");
/// # let _ = layer;
/// ```
#[derive(Clone)]
pub struct GrpcWebSocketLayer {
    limits: Arc<Limits>,
    allow_origin: AllowOrigin,
}

impl Default for GrpcWebSocketLayer {
    fn default() -> Self {
        Self::new(Limits::default())
    }
}

impl std::fmt::Debug for GrpcWebSocketLayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GrpcWebSocketLayer")
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

impl GrpcWebSocketLayer {
    /// Sockets from the server's own pages (and from non-browser clients) only.
    pub fn new(limits: Limits) -> Self {
        Self {
            limits: Arc::new(limits),
            allow_origin: Arc::new(|_| false),
        }
    }

    /// Also admits sockets from the pages of every origin `allowed` accepts (the `Origin`
    /// header's value, `scheme://host[:port]`).
    pub fn allow_origins(
        mut self,
        allowed: impl Fn(&HeaderValue) -> bool + Send + Sync + 'static,
    ) -> Self {
        self.allow_origin = Arc::new(allowed);
        self
    }
}

impl<S> Layer<S> for GrpcWebSocketLayer {
    type Service = GrpcWebSocket<S>;

    fn layer(&self, inner: S) -> Self::Service {
        GrpcWebSocket {
            inner,
            limits: Arc::clone(&self.limits),
            allow_origin: Arc::clone(&self.allow_origin),
        }
    }
}

/// See [`GrpcWebSocketLayer`].
#[derive(Clone)]
pub struct GrpcWebSocket<S> {
    inner: S,
    limits: Arc<Limits>,
    allow_origin: AllowOrigin,
}

impl<S: std::fmt::Debug> std::fmt::Debug for GrpcWebSocket<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GrpcWebSocket")
            .field("inner", &self.inner)
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

/// `/grpc-websockets/pkg.Service/Method` → `/pkg.Service/Method` (see [`ROUTE_PREFIX`]).
fn strip_route_prefix<B>(request: &mut Request<B>) {
    let Some(method_path) = request
        .uri()
        .path()
        .strip_prefix(ROUTE_PREFIX)
        .filter(|rest| rest.starts_with('/'))
    else {
        return;
    };
    if let Ok(uri) = http::Uri::try_from(method_path) {
        *request.uri_mut() = uri;
    }
}

/// The code a call over a WebSocket ended with when the client broke the protocol (a message over
/// the limit, a malformed frame). The layer ends such a call itself, dropping the service's
/// response; it puts this in the request's extensions and sets it first, so whatever records the
/// call inside (a call gate, metrics) can record that code rather than a cancellation.
#[derive(Debug, Clone, Default)]
pub struct ClientViolation(Arc<std::sync::OnceLock<Code>>);

impl ClientViolation {
    /// The code the call was ended with, if the client broke the protocol.
    pub fn code(&self) -> Option<Code> {
        self.0.get().copied()
    }

    fn record(&self, code: Code) {
        let _ = self.0.set(code);
    }
}

/// Whether the page at `origin` is the server's own: the `Origin` header's host and port (its
/// scheme's default port when it names none) are those of the request's `Host`.
pub fn is_same_origin<B>(origin: &HeaderValue, request: &Request<B>) -> bool {
    let Some((scheme, origin_authority)) = origin
        .to_str()
        .ok()
        .and_then(|origin| origin.split_once("://"))
    else {
        return false;
    };
    let Some(host) = request
        .headers()
        .get(header::HOST)
        .and_then(|host| host.to_str().ok())
        .or_else(|| {
            request
                .uri()
                .authority()
                .map(|authority| authority.as_str())
        })
    else {
        return false;
    };
    let default_port = match scheme {
        "https" => "443",
        "http" => "80",
        _ => return false,
    };
    let with_port = |authority: &str| -> String {
        // The port is what follows the last `:` after an IPv6 literal's `]`, if anything does.
        let host_end = authority.rfind(']').map_or(0, |end| end + 1);
        match authority[host_end..].rfind(':') {
            Some(_) => authority.to_ascii_lowercase(),
            None => format!("{}:{default_port}", authority.to_ascii_lowercase()),
        }
    };
    with_port(origin_authority) == with_port(host)
}

/// Whether `request` asks for a WebSocket this layer serves: one that offers the
/// `grpc-websockets` subprotocol, or no subprotocol at all. The second form exists for proxies
/// that do not pass subprotocols through (`trunk serve`'s is one); a client offering only other
/// subprotocols is left to the inner service.
pub fn is_grpc_websocket_upgrade<B>(request: &Request<B>) -> bool {
    let headers = request.headers();
    let has_token = |name: header::HeaderName, token: &str| {
        headers.get_all(name).iter().any(|value| {
            value
                .to_str()
                .is_ok_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
        })
    };
    has_token(header::UPGRADE, "websocket")
        && (!headers.contains_key(header::SEC_WEBSOCKET_PROTOCOL)
            || has_token(header::SEC_WEBSOCKET_PROTOCOL, SUBPROTOCOL))
}

impl<S, ResBody> Service<Request<Body>> for GrpcWebSocket<S>
where
    S: Service<Request<Body>, Response = Response<ResBody>, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send,
    ResBody: http_body::Body<Data = Bytes> + Send + 'static,
    ResBody::Error: Into<BoxError> + Send,
{
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<Body>) -> Self::Future {
        if !is_grpc_websocket_upgrade(&request) {
            return ResponseFuture::Passed {
                call: self.inner.call(request),
            };
        }
        if let Some(origin) = request.headers().get(header::ORIGIN) {
            if !is_same_origin(origin, &request) && !(self.allow_origin)(origin) {
                tracing::debug!(?origin, "refused a WebSocket from another origin");
                return ResponseFuture::Upgraded {
                    response: Some(
                        Response::builder()
                            .status(StatusCode::FORBIDDEN)
                            .header(header::CONTENT_TYPE, "text/plain")
                            .body(Body::from("origin not allowed\n"))
                            .expect("a valid response"),
                    ),
                };
            }
        }
        let mut request = request;
        strip_route_prefix(&mut request);
        // The clone that was made ready is the one that serves this call; keep a fresh one.
        let inner = self.inner.clone();
        let inner = std::mem::replace(&mut self.inner, inner);
        ResponseFuture::Upgraded {
            response: Some(accept(request, inner, Arc::clone(&self.limits))),
        }
    }
}

pin_project_lite::pin_project! {
    /// The response of [`GrpcWebSocket`]: the inner service's, for every request that is not an
    /// upgrade (without boxing: every call passes here), or the answer to the upgrade.
    #[project = ResponseFutureProjection]
    pub enum ResponseFuture<F> {
        Passed { #[pin] call: F },
        Upgraded { response: Option<Response<Body>> },
    }
}

impl<F, ResBody> Future for ResponseFuture<F>
where
    F: Future<Output = Result<Response<ResBody>, Infallible>>,
    ResBody: http_body::Body<Data = Bytes> + Send + 'static,
    ResBody::Error: Into<BoxError>,
{
    type Output = Result<Response<Body>, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project() {
            ResponseFutureProjection::Passed { call } => {
                call.poll(cx).map(|response| Ok(response?.map(Body::new)))
            }
            ResponseFutureProjection::Upgraded { response } => {
                Poll::Ready(Ok(response.take().expect("polled after completion")))
            }
        }
    }
}

/// Answers the upgrade and starts the call on the socket once the upgrade completes.
fn accept<S, ResBody>(mut request: Request<Body>, inner: S, limits: Arc<Limits>) -> Response<Body>
where
    S: Service<Request<Body>, Response = Response<ResBody>, Error = Infallible> + Send + 'static,
    S::Future: Send,
    ResBody: http_body::Body<Data = Bytes> + Send + 'static,
    ResBody::Error: Into<BoxError> + Send,
{
    let bad_request = |reason: &'static str| {
        Response::builder()
            .status(StatusCode::BAD_REQUEST)
            .body(Body::from(reason))
            .expect("a valid response")
    };
    if request.method() != Method::GET || request.version() != Version::HTTP_11 {
        return bad_request("a WebSocket upgrade is a GET over HTTP/1.1\n");
    }
    if request
        .headers()
        .get(header::SEC_WEBSOCKET_VERSION)
        .is_none_or(|version| version != "13")
    {
        return bad_request("unsupported Sec-WebSocket-Version (13 is required)\n");
    }
    let Some(key) = request.headers().get(header::SEC_WEBSOCKET_KEY) else {
        return bad_request("missing Sec-WebSocket-Key\n");
    };
    let accept_key = derive_accept_key(key.as_bytes());
    let offered_subprotocol = request
        .headers()
        .contains_key(header::SEC_WEBSOCKET_PROTOCOL);
    let on_upgrade = hyper::upgrade::on(&mut request);
    let (parts, _) = request.into_parts();
    // Whatever the server keeps per connection in the request's extensions (a place under its
    // connection limit, say) stays held for as long as the socket that replaces the connection.
    let connection_extensions = parts.extensions.clone();

    tokio::spawn(async move {
        match on_upgrade.await {
            Ok(upgraded) => {
                let socket = WebSocketStream::from_raw_socket(
                    TokioIo::new(upgraded),
                    Role::Server,
                    Some(socket_config(limits.max_message_size)),
                )
                .await;
                serve_call(socket, parts, inner, &limits).await;
            }
            Err(error) => tracing::debug!(%error, "WebSocket upgrade failed"),
        }
        drop(connection_extensions);
    });

    let mut response = Response::builder()
        .status(StatusCode::SWITCHING_PROTOCOLS)
        .header(header::CONNECTION, "upgrade")
        .header(header::UPGRADE, "websocket")
        .header(header::SEC_WEBSOCKET_ACCEPT, accept_key);
    // A client that offered subprotocols must get the chosen one back, or it fails the handshake.
    if offered_subprotocol {
        response = response.header(header::SEC_WEBSOCKET_PROTOCOL, SUBPROTOCOL);
    }
    response.body(Body::empty()).expect("a valid response")
}

/// Serves `service` on `listener` the way the layer needs its connections served: HTTP/1.1 with
/// upgrades enabled (the layer answers `101` and takes the socket over), and HTTP/2 on the same
/// port for native gRPC. For a server with no accept loop of its own; it sets no limits on
/// connections or timeouts (`grpc-serve` has a serving stack that does). A server with its own
/// loop serves each connection with hyper-util's
/// `auto::Builder::serve_connection_with_upgrades` instead of `serve_connection`.
///
/// ```no_run
/// # async fn run() -> std::io::Result<()> {
/// use grpc_websocket::server::{serve, GrpcWebSocketLayer};
/// use tower::Layer;
///
/// let (_, health) = tonic_health::server::health_reporter();
/// let routes = tonic::service::Routes::new(health).prepare().into_axum_router();
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:50051").await?;
/// serve(listener, GrpcWebSocketLayer::default().layer(routes)).await
/// # }
/// ```
pub async fn serve<S>(listener: tokio::net::TcpListener, service: S) -> std::io::Result<()>
where
    S: Service<Request<Body>, Response = Response<Body>, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    loop {
        let (stream, _) = listener.accept().await?;
        let service = service.clone();
        tokio::spawn(async move {
            let service =
                hyper::service::service_fn(move |request: Request<hyper::body::Incoming>| {
                    service.clone().oneshot(request.map(Body::new))
                });
            let builder =
                hyper_util::server::conn::auto::Builder::new(hyper_util::rt::TokioExecutor::new());
            if let Err(error) = builder
                .serve_connection_with_upgrades(TokioIo::new(stream), service)
                .await
            {
                tracing::debug!(%error, "connection ended with an error");
            }
        });
    }
}

/// The largest WebSocket message the server sends: a longer response frame is split across
/// messages (the protocol's clients reassemble frames that span messages), so the socket's write
/// buffer stays small whatever the message size.
pub const MAX_SENT_MESSAGE: usize = 16 * 1024;

/// What one socket may buffer: reads in chunks of 8 KiB (tungstenite's default, 128 KiB, is
/// allocated up front for every socket), and writes up to two sent messages. Pongs to a client's
/// pings wait in that same bounded buffer, so a client that pings and never reads can queue no
/// more than that: a pong that does not fit replaces the one already waiting.
fn socket_config(max_message_size: usize) -> WebSocketConfig {
    let largest_message = max_message_size + 1 + protocol::FRAME_PREFIX;
    WebSocketConfig::default()
        .read_buffer_size(8 * 1024)
        .write_buffer_size(0)
        .max_write_buffer_size(2 * MAX_SENT_MESSAGE)
        .max_message_size(Some(largest_message))
        .max_frame_size(Some(largest_message))
}

/// How the client's side of a call ended, if it ended before the response did.
enum ClientEnd {
    /// The socket closed or failed: the client is gone, and so is the call.
    Vanished,
    /// The client broke the protocol: the call ends with this status.
    Violation(Status),
}

/// Runs one call on an upgraded socket, from the header block to the closing handshake.
async fn serve_call<S, ResBody>(
    socket: Socket,
    parts: http::request::Parts,
    inner: S,
    limits: &Limits,
) where
    S: Service<Request<Body>, Response = Response<ResBody>, Error = Infallible>,
    ResBody: http_body::Body<Data = Bytes> + Send + 'static,
    ResBody::Error: Into<BoxError>,
{
    let (mut sink, mut source) = socket.split();
    let path = parts.uri.path().to_owned();

    let header_block = match tokio::time::timeout(limits.header_timeout, source.next()).await {
        Ok(Some(Ok(Message::Binary(block)))) => protocol::parse_header_block(&block)
            .map_err(|error| violation(&error.to_string(), Code::InvalidArgument)),
        Ok(Some(Ok(Message::Text(_)))) => Err(text_message()),
        Ok(Some(Ok(_))) => Err(violation(
            "expected the header block",
            Code::InvalidArgument,
        )),
        Ok(None | Some(Err(_))) => return,
        Err(_) => Err(violation(
            "no header block before the time limit",
            Code::InvalidArgument,
        )),
    };
    let headers = match header_block {
        Ok(headers) => headers,
        Err(status) => return end_with_status(&mut sink, status).await,
    };

    // The request body: client messages as they arrive, through a small bounded channel.
    let (body_tx, body_rx) = mpsc::channel::<Result<Frame<Bytes>, BoxError>>(4);
    let body = StreamBody::new(futures_util::stream::unfold(body_rx, |mut rx| async {
        rx.recv().await.map(|frame| (frame, rx))
    }));
    let mut request = Request::new(Body::new(body));
    *request.method_mut() = Method::POST;
    *request.uri_mut() = parts.uri;
    // tonic (and its gRPC-Web layer) treat an HTTP/2 `application/grpc` request as native gRPC.
    *request.version_mut() = Version::HTTP_2;
    *request.extensions_mut() = parts.extensions;
    let violation = ClientViolation::default();
    request.extensions_mut().insert(violation.clone());
    *request.headers_mut() = grpc_request_headers(headers);

    let client_end = {
        let read_client = read_client(&mut source, body_tx, limits.max_message_size);
        tokio::pin!(read_client);
        let respond = respond(inner.oneshot(request), &mut sink);
        tokio::pin!(respond);
        tokio::select! {
            end = &mut read_client => {
                // Before the call is dropped, so that its record says why.
                if let ClientEnd::Violation(status) = &end {
                    violation.record(status.code());
                }
                Err(end)
            }
            code = &mut respond => Ok(code),
        }
        // Leaving this block drops the call if it is still running: that is the cancellation.
    };
    match client_end {
        Ok(code) => close(&mut sink, code).await,
        Err(ClientEnd::Violation(status)) => {
            tracing::debug!(
                path,
                message = status.message(),
                "grpc-websockets violation"
            );
            end_with_status(&mut sink, status).await;
        }
        Err(ClientEnd::Vanished) => {
            tracing::debug!(path, "client left during the call");
            return;
        }
    }
    await_close_reply(&mut source).await;
}

/// How long the server waits for the client's reply to its close frame.
const CLOSE_REPLY_WAIT: Duration = Duration::from_secs(1);

/// After the server's close frame: reads, and drops, what the client still sends until its own
/// close frame, for at most [`CLOSE_REPLY_WAIT`]. The TCP connection then ends after the closing
/// handshake, not with a reset that can destroy the close frame (and the status before it) on its
/// way to a client that has not read it yet.
async fn await_close_reply(source: &mut futures_util::stream::SplitStream<Socket>) {
    let _ = tokio::time::timeout(CLOSE_REPLY_WAIT, async {
        while let Some(Ok(message)) = source.next().await {
            if message.is_close() {
                break;
            }
        }
    })
    .await;
}

/// The headers of the inner request: the client's, less connection-level ones, as native gRPC.
fn grpc_request_headers(client_headers: HeaderMap) -> HeaderMap {
    let mut headers = HeaderMap::with_capacity(client_headers.len() + 2);
    for (name, value) in &client_headers {
        let connection_level = matches!(
            name.as_str(),
            "host"
                | "connection"
                | "upgrade"
                | "content-length"
                | "transfer-encoding"
                | "te"
                | "keep-alive"
                | "content-type"
                | "x-grpc-web"
        );
        if !connection_level {
            headers.append(name.clone(), value.clone());
        }
    }
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/grpc"),
    );
    headers.insert(header::TE, HeaderValue::from_static("trailers"));
    headers
}

/// A WebSocket message over the socket's limit, refused by tungstenite before it is read, told in
/// the same words as a gRPC frame over the limit: clients send one frame a message, so the
/// message less its flag and frame prefix is the gRPC message's size.
fn too_large(
    error: tokio_tungstenite::tungstenite::error::CapacityError,
    max_message_size: usize,
) -> Status {
    let message = match error {
        tokio_tungstenite::tungstenite::error::CapacityError::MessageTooLong { size, .. } => {
            ProtocolError::TooLarge {
                size: size.saturating_sub(1 + protocol::FRAME_PREFIX),
                limit: max_message_size,
            }
            .to_string()
        }
        other => other.to_string(),
    };
    // OUT_OF_RANGE, as tonic's own decoder reports a message over the limit.
    violation(&message, Code::OutOfRange)
}

/// Feeds the client's messages into the request body until the client ends its side; then keeps
/// watching the socket, so a close or a protocol violation still ends the call.
async fn read_client(
    source: &mut futures_util::stream::SplitStream<Socket>,
    body_tx: mpsc::Sender<Result<Frame<Bytes>, BoxError>>,
    max_message_size: usize,
) -> ClientEnd {
    let mut body_tx = Some(body_tx);
    loop {
        let message = match source.next().await {
            Some(Ok(message)) => message,
            Some(Err(error)) => {
                return match error {
                    tokio_tungstenite::tungstenite::Error::Capacity(error) => {
                        ClientEnd::Violation(too_large(error, max_message_size))
                    }
                    _ => ClientEnd::Vanished,
                }
            }
            None => return ClientEnd::Vanished,
        };
        let bytes = match message {
            Message::Binary(bytes) => bytes,
            Message::Text(_) => return ClientEnd::Violation(text_message()),
            Message::Close(_) => return ClientEnd::Vanished,
            Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => continue,
        };
        match protocol::parse_client_message(&bytes, max_message_size) {
            Ok(ClientMessage::Data(frames)) => {
                let Some(tx) = &body_tx else {
                    return ClientEnd::Violation(violation(
                        "data after the end of the client stream",
                        Code::InvalidArgument,
                    ));
                };
                // The service stopped reading the body (the call is ending): drop the rest.
                if tx.send(Ok(Frame::data(frames))).await.is_err() {
                    body_tx = None;
                }
            }
            Ok(ClientMessage::EndOfStream) => {
                if body_tx.take().is_none() {
                    return ClientEnd::Violation(violation(
                        "the client stream was ended twice",
                        Code::InvalidArgument,
                    ));
                }
            }
            // OUT_OF_RANGE, as tonic's own decoder reports a message over the limit.
            Err(error @ ProtocolError::TooLarge { .. }) => {
                return ClientEnd::Violation(violation(&error.to_string(), Code::OutOfRange))
            }
            Err(error) => {
                return ClientEnd::Violation(violation(&error.to_string(), Code::InvalidArgument))
            }
        }
    }
}

/// Sends the response over the socket: a header frame, the body's data frames, the trailers.
/// Returns the call's status code, once sent.
async fn respond<F, B>(
    call: F,
    sink: &mut futures_util::stream::SplitSink<Socket, Message>,
) -> Option<Code>
where
    F: Future<Output = Result<Response<B>, Infallible>>,
    B: http_body::Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    let Ok(response) = call.await;
    let (parts, body) = response.into_parts();
    if parts.status != StatusCode::OK {
        let status = Status::unknown(format!("the server answered HTTP {}", parts.status));
        return send_status(sink, status).await;
    }
    // A trailers-only response carries its status here.
    let mut code = status_code(&parts.headers);
    if send(sink, protocol::encode_header_frame(&parts.headers))
        .await
        .is_err()
    {
        return None;
    }
    tokio::pin!(body);
    while let Some(frame) = body.frame().await {
        let message = match frame {
            Ok(frame) => match frame.into_data() {
                Ok(data) => data,
                Err(frame) => match frame.into_trailers() {
                    Ok(trailers) => {
                        code = status_code(&trailers);
                        protocol::encode_header_frame(&trailers)
                    }
                    Err(_) => continue,
                },
            },
            Err(error) => {
                let error: BoxError = error.into();
                return send_status(sink, Status::internal(error.to_string())).await;
            }
        };
        // Waits for the frame to be written: a client that stops reading holds the stream here.
        if send(sink, message).await.is_err() {
            return None;
        }
    }
    code
}

/// A status as a header frame: trailers-only when nothing else was sent, trailers otherwise.
/// Returns its code, once sent.
async fn send_status(
    sink: &mut futures_util::stream::SplitSink<Socket, Message>,
    status: Status,
) -> Option<Code> {
    let code = status.code();
    let response = status.into_http::<()>();
    send(sink, protocol::encode_header_frame(response.headers()))
        .await
        .ok()
        .map(|()| code)
}

async fn end_with_status(
    sink: &mut futures_util::stream::SplitSink<Socket, Message>,
    status: Status,
) {
    let code = send_status(sink, status).await;
    close(sink, code).await;
}

/// Sends `bytes` in messages of at most [`MAX_SENT_MESSAGE`] bytes, each once the previous one is
/// written.
async fn send(
    sink: &mut futures_util::stream::SplitSink<Socket, Message>,
    mut bytes: Bytes,
) -> Result<(), tokio_tungstenite::tungstenite::Error> {
    while bytes.len() > MAX_SENT_MESSAGE {
        let chunk = bytes.split_to(MAX_SENT_MESSAGE);
        sink.send(Message::Binary(chunk)).await?;
    }
    sink.send(Message::Binary(bytes)).await
}

/// Closes the socket after a call that ended with `code`: 1001 (going away) after UNAVAILABLE,
/// which is how a server that is shutting down ends its streams, so the client knows to reconnect;
/// 1000 (normal) otherwise.
async fn close(sink: &mut futures_util::stream::SplitSink<Socket, Message>, code: Option<Code>) {
    let close_code = match code {
        Some(Code::Unavailable) => CloseCode::Away,
        _ => CloseCode::Normal,
    };
    let _ = sink
        .send(Message::Close(Some(CloseFrame {
            code: close_code,
            reason: "".into(),
        })))
        .await;
    let _ = sink.close().await;
}

fn violation(reason: &str, code: Code) -> Status {
    Status::new(code, format!("grpc-websockets: {reason}"))
}

fn text_message() -> Status {
    violation(
        "text messages are not part of the protocol; send binary messages",
        Code::InvalidArgument,
    )
}

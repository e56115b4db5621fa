//! The gate every gRPC call passes, on any transport: it admits the call under the concurrency
//! limit, gives it a request id and a tracing span, bounds it, and records it in the metrics when
//! it ends.
//!
//! The gate wraps each gRPC service inside its gRPC-Web translation, so it always sees native gRPC:
//! the status in the trailers (or in the headers of a trailers-only response), whether the call
//! came as gRPC, gRPC-Web or over a WebSocket. A call lasts until its response body ends, so a
//! stream holds its permit and is timed for its whole life; a body dropped before its status (the
//! client left) counts as CANCELLED.
//!
//! It supervises every call itself, whatever the service does, so the bounds hold for any
//! service hosted on the stack, health and reflection included:
//! - the deadline, the client's `grpc-timeout` capped by `--max-call-duration`: when it passes,
//!   the handler's future or its response stream is dropped (the service sees the cancellation)
//!   and the call ends with DEADLINE_EXCEEDED;
//! - the drain: once it begins, every streaming call still open ends with UNAVAILABLE, in its
//!   trailers, whether or not the service watches [`crate::Server::draining`]; unary calls finish;
//! - message sizes, both ways: a request message over the limit is refused from its prefix (see
//!   [`crate::request_body`]), a response message over it is not sent; OUT_OF_RANGE;
//! - a request message that stops arriving (see [`crate::request_body`]);
//! - what a client can make it echo: a request id of at most [`MAX_REQUEST_ID_LEN`] visible ASCII
//!   bytes is kept, any other is replaced; the method path in log lines and a status message are
//!   cut to a bounded length.
//!
//! Timers are armed only when a call waits (its handler or its stream is pending), so a call that
//! is answered at once pays for none.
//!
//! It is a hand-written tower service rather than a middleware closure: every call passes it, and
//! a closure middleware costs each call a boxed future, a boxed body and a clone of the stack.
use std::{
    future::Future,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
    time::Duration,
};

use bytes::Bytes;
use grpc_call::{code_name, status_code};
use grpc_websocket::server::ClientViolation;
use http::{HeaderMap, HeaderName, HeaderValue, Request, Response};
use http_body::Frame;
use pin_project_lite::pin_project;
use tokio::{
    sync::OwnedSemaphorePermit,
    time::{Instant, Sleep},
};
use tokio_util::sync::{CancellationToken, WaitForCancellationFutureOwned};
use tonic::{body::Body, server::NamedService, Code, Status};
use tower::{Layer, Service};

use crate::{
    deadline,
    framing::Framing,
    limits::CallLimit,
    log_summary::printable,
    metrics::{MethodStats, Metrics},
    request_body::{BoundedRequest, RequestBounds},
};

/// A constant name: looked up by a `&str`, each call would parse the name again, and inserted by
/// one, each response would allocate it.
const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
const GRPC_TIMEOUT: HeaderName = HeaderName::from_static("grpc-timeout");
const GRPC_MESSAGE: HeaderName = HeaderName::from_static("grpc-message");

/// The longest request id kept from a client; a longer one is replaced by one of the server's.
pub(crate) const MAX_REQUEST_ID_LEN: usize = 128;
/// The longest method path written to a log line as it came; a longer one is cut.
pub(crate) const MAX_LOGGED_PATH_LEN: usize = 128;
/// The longest `grpc-message` sent, in bytes as encoded; a longer one is cut. A service may echo
/// what a client sent into its status message: that must not turn a small request into a large
/// response.
pub(crate) const MAX_STATUS_MESSAGE_LEN: usize = 1024;

/// The status open streams end with when the drain begins.
pub(crate) fn shutting_down() -> Status {
    Status::unavailable("the server is shutting down; retry the call")
}

/// The bounds every call is held to, from the options.
#[derive(Debug, Clone, Copy)]
pub(crate) struct CallBounds {
    /// The largest message either way, in bytes.
    pub max_message_size: u64,
    /// How long a request message may take to arrive (see [`crate::request_body`]).
    pub message_timeout: Duration,
    /// The longest any call may run, whatever its client asks for.
    pub max_call_duration: Option<Duration>,
}

/// What the gate needs: the metrics to record into, the limit to admit under, the bounds to hold
/// calls to and the drain to end streams at. Cheap to clone.
#[derive(Debug, Clone)]
pub(crate) struct CallGate {
    pub metrics: Arc<Metrics>,
    pub limit: CallLimit,
    pub bounds: CallBounds,
    /// Cancelled when the drain begins.
    pub draining: CancellationToken,
}

impl CallGate {
    /// When a call that arrived at `now` with this `grpc-timeout` must end, if ever.
    fn deadline(&self, grpc_timeout: Option<&HeaderValue>, now: Instant) -> Option<Instant> {
        let client = grpc_timeout
            .and_then(|value| value.to_str().ok())
            .and_then(deadline::parse_timeout)
            .map(|timeout| now + timeout);
        deadline::capped(client, self.bounds.max_call_duration, now)
    }
}

impl<S> Layer<S> for CallGate {
    type Service = Gated<S>;

    fn layer(&self, inner: S) -> Gated<S> {
        Gated {
            inner,
            gate: Arc::new(self.clone()),
        }
    }
}

/// A gRPC service behind the gate. The router clones it for every call: the gate is shared, so
/// a clone costs one reference count, not one for each of the gate's parts (the drain's token
/// among them, whose count is behind a lock).
#[derive(Debug, Clone)]
pub(crate) struct Gated<S> {
    inner: S,
    gate: Arc<CallGate>,
}

impl<S: NamedService> NamedService for Gated<S> {
    const NAME: &'static str = S::NAME;
}

/// The request headers the gate reads: `x-request-id` and `grpc-timeout`, the first of each. One
/// pass over the few headers of a call costs less than two lookups, each of which hashes its name.
fn gate_headers(headers: &HeaderMap) -> (Option<&HeaderValue>, Option<&HeaderValue>) {
    let (mut request_id, mut grpc_timeout) = (None, None);
    for (name, value) in headers {
        if *name == REQUEST_ID {
            request_id = request_id.or(Some(value));
        } else if *name == GRPC_TIMEOUT {
            grpc_timeout = grpc_timeout.or(Some(value));
        }
    }
    (request_id, grpc_timeout)
}

/// The client's request id if it is short and visible ASCII; else a fresh one.
fn request_id(sent: Option<&HeaderValue>, metrics: &Metrics) -> HeaderValue {
    let sent = sent.filter(|id| {
        let bytes = id.as_bytes();
        !bytes.is_empty()
            && bytes.len() <= MAX_REQUEST_ID_LEN
            && bytes.iter().all(|byte| byte.is_ascii_graphic())
    });
    match sent {
        Some(id) => id.clone(),
        None => HeaderValue::from(metrics.next_request_id()),
    }
}

/// Cuts a `grpc-message` longer than [`MAX_STATUS_MESSAGE_LEN`], never inside a
/// percent-encoded byte.
fn bound_status_message(headers: &mut HeaderMap) {
    let Some(message) = headers.get(&GRPC_MESSAGE) else {
        return;
    };
    let bytes = message.as_bytes();
    if bytes.len() <= MAX_STATUS_MESSAGE_LEN {
        return;
    }
    let mut end = MAX_STATUS_MESSAGE_LEN - 3;
    if let Some(percent) = bytes[end - 2..end].iter().position(|&byte| byte == b'%') {
        end = end - 2 + percent;
    }
    let mut cut = bytes[..end].to_vec();
    cut.extend_from_slice(b"...");
    if let Ok(value) = HeaderValue::from_bytes(&cut) {
        headers.insert(GRPC_MESSAGE, value);
    }
}

impl<S, ResBody> Service<Request<Body>> for Gated<S>
where
    S: Service<Request<Body>, Response = Response<ResBody>>,
    ResBody: Default,
{
    type Response = Response<CallBody<ResBody>>;
    type Error = S::Error;
    type Future = GatedCall<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<Body>) -> Self::Future {
        let gate = &self.gate;
        let metrics = &gate.metrics;
        let started = Instant::now();
        let (sent_id, grpc_timeout) = gate_headers(request.headers());
        let mut request_id = request_id(sent_id, metrics);
        // A value unique to each call: HTTP/2's header compression must not index it, or each
        // response evicts useful entries and the table's lookups slow down.
        request_id.set_sensitive(true);
        let method = request.uri().path();
        let stats = metrics.method(method);
        // Everything the handler logs is inside this span; it closes with the call's code.
        let span = tracing::info_span!(
            "call",
            method = %printable(method, MAX_LOGGED_PATH_LEN),
            peer = %request
                .extensions()
                .get::<tonic::transport::server::TcpConnectInfo>()
                .and_then(|info| info.remote_addr)
                .map(|peer| peer.to_string())
                .unwrap_or_default(),
            request_id = %request_id.to_str().unwrap_or_default(),
            code = tracing::field::Empty,
            latency_ms = tracing::field::Empty,
        );
        let streaming = stats.client_streaming || stats.server_streaming;
        let watch = Watch {
            deadline: gate.deadline(grpc_timeout, started),
            timer: None,
            // Only streaming calls end at the drain; unary calls in flight finish.
            draining: streaming.then(|| gate.draining.clone()),
            drained: None,
            watch_drain: stats.client_streaming,
        };
        let bounds = RequestBounds {
            max_message_size: gate.bounds.max_message_size,
            message_timeout: gate.bounds.message_timeout,
        };
        let single_message = !stats.client_streaming;
        let mut record = CallRecord {
            client_violation: request.extensions().get::<ClientViolation>().cloned(),
            stats,
            metrics: Arc::clone(metrics),
            span,
            started,
            code: None,
            permit: None,
        };
        metrics.call_started();
        let state = match gate.limit.admit() {
            Ok(permit) => {
                record.permit = Some(permit);
                let request = request.map(|body| {
                    Body::new(BoundedRequest::new(body, bounds, single_message, started))
                });
                let call = record.span.in_scope(|| self.inner.call(request));
                State::Admitted { call }
            }
            Err(refusal) => State::Refused {
                refusal: Some(refusal),
            },
        };
        GatedCall {
            state,
            call: Some(CallInProgress {
                record,
                watch,
                max_message_size: gate.bounds.max_message_size,
            }),
            request_id: Some(request_id),
        }
    }
}

/// What a call carries from its handler to the end of its response.
struct CallInProgress {
    record: CallRecord,
    watch: Watch,
    max_message_size: u64,
}

/// A call's deadline and, for streaming calls, the drain: the timers that end it. Each is armed
/// the first time the call waits.
struct Watch {
    deadline: Option<Instant>,
    timer: Option<Pin<Box<Sleep>>>,
    draining: Option<CancellationToken>,
    drained: Option<Pin<Box<WaitForCancellationFutureOwned>>>,
    /// Whether the drain ends the call at this stage: while the handler runs, for calls that read
    /// a stream; while the response is sent, for calls that send one.
    watch_drain: bool,
}

impl Watch {
    /// The status the call must end with now, if its deadline has passed or the drain has begun.
    fn poll_expired(&mut self, cx: &mut Context<'_>) -> Option<Status> {
        if let Some(deadline) = self.deadline {
            let timer = self
                .timer
                .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
            if timer.as_mut().poll(cx).is_ready() {
                return Some(deadline::exceeded());
            }
        }
        if let (true, Some(draining)) = (self.watch_drain, &self.draining) {
            let drained = self
                .drained
                .get_or_insert_with(|| Box::pin(draining.clone().cancelled_owned()));
            if drained.as_mut().poll(cx).is_ready() {
                return Some(shutting_down());
            }
        }
        None
    }
}

pin_project! {
    /// The response of a gated call: the service's own, the refusal, or the status that cut it.
    pub(crate) struct GatedCall<F> {
        #[pin]
        state: State<F>,
        call: Option<CallInProgress>,
        request_id: Option<HeaderValue>,
    }
}

pin_project! {
    #[project = StateProjection]
    enum State<F> {
        Admitted { #[pin] call: F },
        Refused { refusal: Option<Status>, },
    }
}

impl<F, B, E> Future for GatedCall<F>
where
    F: Future<Output = Result<Response<B>, E>>,
    B: Default,
{
    type Output = Result<Response<CallBody<B>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        let mut response = match this.state.as_mut().project() {
            StateProjection::Admitted { call } => {
                let progress = this.call.as_mut().expect("polled after completion");
                let _entered = progress.record.span.enter();
                match call.poll(cx) {
                    Poll::Ready(Ok(response)) => response,
                    Poll::Ready(Err(error)) => return Poll::Ready(Err(error)),
                    Poll::Pending => match progress.watch.poll_expired(cx) {
                        // The handler's future is dropped: the service sees the cancellation.
                        Some(status) => {
                            tracing::debug!(code = ?status.code(), "call cut: {}", status.message());
                            this.state.set(State::Refused { refusal: None });
                            status.into_http()
                        }
                        None => return Poll::Pending,
                    },
                }
            }
            StateProjection::Refused { refusal } => {
                refusal.take().expect("polled after completion").into_http()
            }
        };
        let CallInProgress {
            mut record,
            mut watch,
            max_message_size,
        } = this.call.take().expect("polled after completion");
        if let Some(id) = this.request_id.take() {
            response.headers_mut().insert(REQUEST_ID, id);
        }
        // A trailers-only response (an error before any message) carries its status in the headers.
        record.code = status_code(response.headers());
        if record.code.is_some_and(|code| code != Code::Ok) {
            bound_status_message(response.headers_mut());
        }
        // From here on the drain ends calls that send a stream.
        watch.watch_drain = record.stats.server_streaming;
        Poll::Ready(Ok(response.map(|inner| CallBody {
            inner: Some(inner),
            record,
            watch,
            framing: Framing::default(),
            max_message_size,
            after: None,
        })))
    }
}

/// A gated call's response body: it holds the call's record (and its permit) until it ends or is
/// dropped, reads the status from the trailers as they pass, and ends the call early, with its
/// status in trailers of its own, when the call's deadline passes, the drain begins under a
/// stream, or a message would exceed the size limit.
pub(crate) struct CallBody<B> {
    /// The service's body; dropped when the call is cut.
    inner: Option<B>,
    record: CallRecord,
    watch: Watch,
    framing: Framing,
    max_message_size: u64,
    /// The trailers to send after the data that came before an oversized message. Boxed: rare,
    /// and a header map would make every call's body larger, and every move of it dearer.
    after: Option<Box<Frame<Bytes>>>,
}

impl<B> CallBody<B> {
    /// Ends the call with `status`: the service's body is dropped and the trailers returned.
    fn cut(&mut self, status: Status) -> Frame<Bytes> {
        let _entered = self.record.span.enter();
        tracing::debug!(code = ?status.code(), "call cut: {}", status.message());
        self.inner = None;
        self.record.code = Some(status.code());
        let mut trailers = HeaderMap::with_capacity(2);
        let _ = status.add_header(&mut trailers);
        bound_status_message(&mut trailers);
        Frame::trailers(trailers)
    }
}

impl<B> http_body::Body for CallBody<B>
where
    B: http_body::Body<Data = Bytes> + Unpin,
{
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        let this = self.get_mut();
        if let Some(trailers) = this.after.take() {
            return Poll::Ready(Some(Ok(*trailers)));
        }
        let Some(inner) = this.inner.as_mut() else {
            return Poll::Ready(None);
        };
        match Pin::new(inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(mut frame))) => {
                if let Some(data) = frame.data_mut() {
                    let max = this.max_message_size;
                    if let Err(oversized) = this.framing.read(data, max) {
                        let sent = data.split_to(oversized.at);
                        let trailers = this.cut(Status::out_of_range(format!(
                            "response message too large: {} bytes, over the limit of {max} bytes",
                            oversized.len
                        )));
                        if sent.is_empty() {
                            return Poll::Ready(Some(Ok(trailers)));
                        }
                        this.after = Some(Box::new(trailers));
                        return Poll::Ready(Some(Ok(Frame::data(sent))));
                    }
                } else if let Some(trailers) = frame.trailers_mut() {
                    if let Some(code) = status_code(trailers) {
                        this.record.code = Some(code);
                        if code != Code::Ok {
                            bound_status_message(trailers);
                        }
                    }
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Pending => match this.watch.poll_expired(cx) {
                Some(status) => Poll::Ready(Some(Ok(this.cut(status)))),
                None => Poll::Pending,
            },
            other => other,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.after.is_none()
            && self
                .inner
                .as_ref()
                .is_none_or(|inner| inner.is_end_stream())
    }

    fn size_hint(&self) -> http_body::SizeHint {
        match (&self.inner, &self.after) {
            (Some(inner), None) => inner.size_hint(),
            _ => http_body::SizeHint::default(),
        }
    }
}

/// One call's record, written when its response ends (or is dropped).
pub(crate) struct CallRecord {
    stats: Arc<MethodStats>,
    metrics: Arc<Metrics>,
    span: tracing::Span,
    started: Instant,
    code: Option<Code>,
    /// The call's place under the concurrency limit, held until its response ends.
    permit: Option<OwnedSemaphorePermit>,
    /// Set by the WebSocket transport when it ends the call for the client's fault.
    client_violation: Option<ClientViolation>,
}

impl Drop for CallRecord {
    fn drop(&mut self) {
        let code = self
            .code
            .or_else(|| self.client_violation.as_ref()?.code())
            .unwrap_or(Code::Cancelled);
        let elapsed = self.started.elapsed();
        self.metrics.call_ended();
        self.stats.record(code, elapsed);
        if !self.span.is_disabled() {
            self.span.record("code", code_name(code));
            self.span
                .record("latency_ms", elapsed.as_secs_f64() * 1000.0);
            self.span.in_scope(|| tracing::info!("call ended"));
        }
    }
}

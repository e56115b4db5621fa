//! The gate every gRPC call passes, on any transport: it admits the call under the concurrency
//! limit, gives it a request id and a tracing span, and records it in the metrics when it ends.
//!
//! The gate wraps each gRPC service inside its gRPC-Web translation, so it always sees native gRPC:
//! the status in the trailers (or in the headers of a trailers-only response), whether the call
//! came as gRPC, gRPC-Web or over a WebSocket. A call lasts until its response body ends, so a
//! stream holds its permit and is timed for its whole life; a body dropped before its status (the
//! client left) counts as CANCELLED.
//!
//! It is a hand-written tower service rather than a middleware closure: every call passes it, and
//! a closure middleware costs each call a boxed future, a boxed body and a clone of the stack.

use std::{
    future::Future,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
    time::Instant,
};

use bytes::Bytes;
use grpc_call::{code_name, status_code};
use http::{HeaderName, HeaderValue, Request, Response};
use http_body::Frame;
use pin_project_lite::pin_project;
use tokio::sync::OwnedSemaphorePermit;
use tonic::{server::NamedService, Code, Status};
use tower::{Layer, Service};

use crate::{
    body::{BodyGuard, GuardedBody},
    limits::CallLimit,
    metrics::{MethodStats, Metrics},
};

/// A constant name: looked up by a `&str`, each call would parse the name again, and inserted by
/// one, each response would allocate it.
const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// What the gate needs: the metrics to record into and the limit to admit under. Cheap to clone.
#[derive(Debug, Clone)]
pub struct CallGate {
    pub metrics: Arc<Metrics>,
    pub limit: CallLimit,
}

impl<S> Layer<S> for CallGate {
    type Service = Gated<S>;

    fn layer(&self, inner: S) -> Gated<S> {
        Gated {
            inner,
            gate: self.clone(),
        }
    }
}

/// A gRPC service behind the gate.
#[derive(Debug, Clone)]
pub struct Gated<S> {
    inner: S,
    gate: CallGate,
}

impl<S: NamedService> NamedService for Gated<S> {
    const NAME: &'static str = S::NAME;
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for Gated<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    ResBody: Default,
{
    type Response = Response<CallBody<ResBody>>;
    type Error = S::Error;
    type Future = GatedCall<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        let metrics = &self.gate.metrics;
        let mut request_id = match request.headers().get(&REQUEST_ID) {
            Some(id) => id.clone(),
            None => HeaderValue::from(metrics.next_request_id()),
        };
        // A value unique to each call: HTTP/2's header compression must not index it, or each
        // response evicts useful entries and the table's lookups slow down.
        request_id.set_sensitive(true);
        let method = request.uri().path();
        // Everything the handler logs is inside this span; it closes with the call's code.
        let span = tracing::info_span!(
            "call",
            method = %method,
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
        let mut record = CallRecord {
            stats: metrics.method(method),
            metrics: Arc::clone(metrics),
            span,
            started: Instant::now(),
            code: None,
            permit: None,
        };
        metrics.call_started();
        let state = match self.gate.limit.admit() {
            Ok(permit) => {
                record.permit = Some(permit);
                let call = record.span.in_scope(|| self.inner.call(request));
                State::Admitted { call }
            }
            Err(refusal) => State::Refused {
                refusal: Some(refusal),
            },
        };
        GatedCall {
            state,
            record: Some(record),
            request_id: Some(request_id),
        }
    }
}

pin_project! {
    /// The response of a gated call: the service's own, or the refusal.
    pub struct GatedCall<F> {
        #[pin]
        state: State<F>,
        record: Option<CallRecord>,
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
        let this = self.project();
        let mut response = match this.state.project() {
            StateProjection::Admitted { call } => {
                let record = this.record.as_ref().expect("polled after completion");
                let _entered = record.span.enter();
                match call.poll(cx) {
                    Poll::Ready(Ok(response)) => response,
                    Poll::Ready(Err(error)) => return Poll::Ready(Err(error)),
                    Poll::Pending => return Poll::Pending,
                }
            }
            StateProjection::Refused { refusal } => {
                refusal.take().expect("polled after completion").into_http()
            }
        };
        let mut record = this.record.take().expect("polled after completion");
        if let Some(id) = this.request_id.take() {
            response.headers_mut().insert(REQUEST_ID, id);
        }
        // A trailers-only response (an error before any message) carries its status in the headers.
        record.code = status_code(response.headers());
        Poll::Ready(Ok(response.map(|inner| GuardedBody::new(inner, record))))
    }
}

/// A gated call's response body: it holds the call's record (and its permit) until it ends or is
/// dropped, and reads the status from the trailers as they pass.
pub type CallBody<B> = GuardedBody<B, CallRecord>;

impl BodyGuard for CallRecord {
    fn frame(&mut self, frame: &Frame<Bytes>) {
        if let Some(code) = frame.trailers_ref().and_then(status_code) {
            self.code = Some(code);
        }
    }
}

/// One call's record, written when its response ends (or is dropped).
pub struct CallRecord {
    stats: Arc<MethodStats>,
    metrics: Arc<Metrics>,
    span: tracing::Span,
    started: Instant,
    code: Option<Code>,
    /// The call's place under the concurrency limit, held until its response ends.
    permit: Option<OwnedSemaphorePermit>,
}

impl Drop for CallRecord {
    fn drop(&mut self) {
        let code = self.code.unwrap_or(Code::Cancelled);
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

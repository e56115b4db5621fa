//! One client connection's hold on the server: its place under `--max-connections`, its count in
//! the open-connections gauge, and whether it is doing anything.
//!
//! A [`ConnectionSlot`] lives as long as anything still uses the connection. The accept loop holds
//! it, and [`Tracked`] puts it into every request's extensions, so a socket taken over by a
//! WebSocket upgrade (which outlives hyper's connection) keeps holding the slot for as long as
//! the WebSocket layer keeps the request's extensions: an upgraded socket counts against the same
//! budget and in the same gauge as every other connection.
//!
//! [`Tracked`] also counts the requests in flight on the connection, each from its arrival to the
//! end (or drop) of its response body. [`ConnectionSlot::idle`] completes once the connection has
//! had none for its idle limit: the accept loop then closes it, so a client cannot hold a
//! connection by opening it and sending nothing, or only HTTP/2 frames that are not requests.

use std::{
    future::Future,
    pin::Pin,
    sync::{
        atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering},
        Arc,
    },
    task::{Context, Poll},
    time::Duration,
};

use bytes::Bytes;
use http::{Request, Response};
use http_body::Frame;
use pin_project_lite::pin_project;
use tokio::{
    sync::{Notify, OwnedSemaphorePermit},
    time::Instant,
};
use tower::Service;

use crate::metrics::Metrics;

/// A connection's place in the server; released (permit and gauge) when the last holder drops it.
#[derive(Debug)]
pub struct ConnectionSlot {
    _permit: OwnedSemaphorePermit,
    metrics: Arc<Metrics>,
    opened: Instant,
    /// When the connection last became idle, in milliseconds since `opened`.
    idle_since_ms: AtomicU64,
    in_flight: AtomicUsize,
    /// Whether a request has arrived yet: until one does, the shorter first-request limit applies.
    has_requested: AtomicBool,
    /// Woken when the last request in flight ends.
    became_idle: Notify,
}

impl ConnectionSlot {
    /// Takes the slot for a newly accepted connection, counting it as open.
    pub fn new(permit: OwnedSemaphorePermit, metrics: Arc<Metrics>) -> Arc<Self> {
        metrics.connection_opened();
        Arc::new(Self {
            _permit: permit,
            metrics,
            opened: Instant::now(),
            idle_since_ms: AtomicU64::new(0),
            in_flight: AtomicUsize::new(0),
            has_requested: AtomicBool::new(false),
            became_idle: Notify::new(),
        })
    }

    fn request_started(&self) {
        self.has_requested.store(true, Ordering::Relaxed);
        self.in_flight.fetch_add(1, Ordering::AcqRel);
    }

    fn request_ended(&self) {
        let idle_since = u64::try_from(self.opened.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.idle_since_ms.store(idle_since, Ordering::Relaxed);
        if self.in_flight.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.became_idle.notify_one();
        }
    }

    /// Completes once the connection has had no request in flight for `first_request` (before its
    /// first request arrives) or `idle` (after it).
    pub async fn idle(&self, first_request: Duration, idle: Duration) {
        loop {
            if self.in_flight.load(Ordering::Acquire) > 0 {
                self.became_idle.notified().await;
                continue;
            }
            let limit = if self.has_requested.load(Ordering::Relaxed) {
                idle
            } else {
                first_request
            };
            let idle_since =
                self.opened + Duration::from_millis(self.idle_since_ms.load(Ordering::Relaxed));
            let deadline = idle_since + limit;
            if Instant::now() >= deadline {
                return;
            }
            // A request may start and end meanwhile: look again at the deadline, or when one ends.
            tokio::select! {
                () = tokio::time::sleep_until(deadline) => {}
                () = self.became_idle.notified() => {}
            }
        }
    }
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        self.metrics.connection_closed();
    }
}

/// A request in flight on a connection, from its arrival to the end of its response body.
struct RequestInFlight(Arc<ConnectionSlot>);

impl RequestInFlight {
    fn new(slot: &Arc<ConnectionSlot>) -> Self {
        slot.request_started();
        Self(Arc::clone(slot))
    }
}

impl Drop for RequestInFlight {
    fn drop(&mut self) {
        self.0.request_ended();
    }
}

/// The service a connection serves: `inner`, with the connection's slot in each request's
/// extensions and each request counted in flight until its response body ends.
#[derive(Debug, Clone)]
pub struct Tracked<S> {
    inner: S,
    slot: Arc<ConnectionSlot>,
}

impl<S> Tracked<S> {
    pub fn new(inner: S, slot: Arc<ConnectionSlot>) -> Self {
        Self { inner, slot }
    }
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for Tracked<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
{
    type Response = Response<TrackedBody<ResBody>>;
    type Error = S::Error;
    type Future = TrackedResponse<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<ReqBody>) -> Self::Future {
        let in_flight = RequestInFlight::new(&self.slot);
        request.extensions_mut().insert(Arc::clone(&self.slot));
        TrackedResponse {
            call: self.inner.call(request),
            in_flight: Some(in_flight),
        }
    }
}

pin_project! {
    /// The response of [`Tracked`]: the request stays in flight while it is computed.
    pub struct TrackedResponse<F> {
        #[pin]
        call: F,
        in_flight: Option<RequestInFlight>,
    }
}

impl<F, B, E> Future for TrackedResponse<F>
where
    F: Future<Output = Result<Response<B>, E>>,
{
    type Output = Result<Response<TrackedBody<B>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let response = std::task::ready!(this.call.poll(cx))?;
        let in_flight = this.in_flight.take().expect("polled after completion");
        Poll::Ready(Ok(response.map(|inner| TrackedBody {
            inner,
            _in_flight: in_flight,
        })))
    }
}

pin_project! {
    /// A response body that keeps its request in flight until it ends or is dropped.
    pub struct TrackedBody<B> {
        #[pin]
        inner: B,
        _in_flight: RequestInFlight,
    }
}

impl<B> http_body::Body for TrackedBody<B>
where
    B: http_body::Body<Data = Bytes>,
{
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        self.project().inner.poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

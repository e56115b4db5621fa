//! One client connection's hold on the server: its place under `--max-connections`, its count in
//! the open-connections gauge, and whether it is doing anything.
//!
//! A [`ConnectionSlot`] lives as long as anything still uses the connection. The accept loop holds
//! it, and [`Tracked`] puts it into the extensions of every upgrade request, so a socket taken over by a
//! WebSocket upgrade (which outlives hyper's connection) keeps holding the slot for as long as
//! the WebSocket layer keeps the request's extensions: an upgraded socket counts against the same
//! budget and in the same gauge as every other connection.
//!
//! [`Tracked`] also counts the requests in flight on the connection, each from its arrival to the
//! end (or drop) of its response body. A watch beside the connection ([`ConnectionSlot::watch`])
//! fires once it has had none for its idle limit: the accept loop then closes it, so a client
//! cannot hold a connection by opening it and sending nothing, or only HTTP/2 frames that are not
//! requests.
//!
//! A request in flight is not enough to keep a connection open: a client can make its responses
//! wait forever (an HTTP/2 flow-control window of zero, a socket it never reads) while its PINGs
//! keep TCP alive. So the slot also counts the frames its responses hand to the connection and
//! the responses that have something ready that the connection has not taken (waiting on the
//! peer, not on the service). A connection with such a response and no frame taken for its idle
//! limit is closed like an idle one, whatever requests are in flight on it.

use std::{
    future::Future,
    pin::Pin,
    sync::{
        atomic::{AtomicBool, AtomicU64, AtomicU8, AtomicUsize, Ordering},
        Arc,
    },
    task::{Context, Poll},
    time::Duration,
};

use bytes::Bytes;
use futures_util::task::AtomicWaker;
use http::{Request, Response};
use http_body::Frame;
use pin_project_lite::pin_project;
use tokio::{sync::OwnedSemaphorePermit, time::Instant};
use tokio_util::{sync::CancellationToken, task::task_tracker::TaskTrackerToken};
use tower::Service;

use crate::{
    body::{BodyGuard, GuardedBody},
    metrics::Metrics,
};

/// A connection's place in the server; released (permit, gauge, and the drain's wait for it) when
/// the last holder drops it.
#[derive(Debug)]
pub(crate) struct ConnectionSlot {
    _permit: OwnedSemaphorePermit,
    /// The drain waits for this as for a connection's task, so a socket that outlives its task
    /// (a WebSocket call) is waited for too.
    _drain: TaskTrackerToken,
    metrics: Arc<Metrics>,
    opened: Instant,
    /// When the connection last became idle, in milliseconds since `opened`.
    idle_since_ms: AtomicU64,
    in_flight: AtomicUsize,
    /// Response frames the connection has taken, all requests together.
    frames_taken: AtomicU64,
    /// Responses with a frame ready that the connection has not taken yet.
    waiting_on_peer: AtomicUsize,
    /// Whether a request has arrived yet: until one does, the shorter first-request limit applies.
    has_requested: AtomicBool,
    /// Why the connection has been told to close (a [`Close`] as a number; 0 while it has not).
    close: AtomicU8,
    close_waker: AtomicWaker,
}

/// Why a connection is told to close.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Close {
    /// It had no request in flight for its limit.
    Idle = 1,
    /// The server is shutting down.
    Draining = 2,
}

impl ConnectionSlot {
    /// Takes the slot for a newly accepted connection, counting it as open.
    pub(crate) fn new(
        permit: OwnedSemaphorePermit,
        drain: TaskTrackerToken,
        metrics: Arc<Metrics>,
    ) -> Arc<Self> {
        metrics.connection_opened();
        Arc::new(Self {
            _permit: permit,
            _drain: drain,
            metrics,
            opened: Instant::now(),
            idle_since_ms: AtomicU64::new(0),
            in_flight: AtomicUsize::new(0),
            frames_taken: AtomicU64::new(0),
            waiting_on_peer: AtomicUsize::new(0),
            has_requested: AtomicBool::new(false),
            close: AtomicU8::new(0),
            close_waker: AtomicWaker::new(),
        })
    }

    fn request_started(&self) {
        self.has_requested.store(true, Ordering::Relaxed);
        self.in_flight.fetch_add(1, Ordering::AcqRel);
    }

    fn request_ended(&self) {
        let idle_since = u64::try_from(self.opened.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.idle_since_ms.store(idle_since, Ordering::Relaxed);
        self.in_flight.fetch_sub(1, Ordering::AcqRel);
    }

    /// Tells the connection to close, for the first reason given.
    fn close(&self, reason: Close) {
        let _ = self
            .close
            .compare_exchange(0, reason as u8, Ordering::AcqRel, Ordering::Acquire);
        self.close_waker.wake();
    }

    /// Completes when the connection is told to close, with the reason. Polling it costs an
    /// atomic load and a waker check, so the connection's task can poll it on every wake-up.
    pub(crate) fn closing(&self) -> Closing<'_> {
        Closing(self)
    }

    /// Tells the connection to close once it is idle past its limits, or when `draining` is
    /// cancelled. Meant for a task of its own beside the connection's, so that the connection's
    /// own task polls no timer.
    pub(crate) async fn watch(
        &self,
        first_request: Duration,
        idle: Duration,
        draining: &CancellationToken,
    ) {
        let reason = tokio::select! {
            () = self.idle(first_request, idle) => Close::Idle,
            () = draining.cancelled() => Close::Draining,
        };
        self.close(reason);
    }

    /// Completes once the connection has had no request in flight for `first_request` (before its
    /// first request arrives) or `idle` (after it), or has had a response waiting on the peer
    /// with no frame taken for `idle`.
    ///
    /// It looks only at deadlines, never at each request: a busy connection is looked at four
    /// times per limit, and an idle one when its limit runs out, so requests pay no timer of their
    /// own.
    async fn idle(&self, first_request: Duration, idle: Duration) {
        // The frames taken when last looked at, and since when no more have been while a response
        // waited on the peer.
        let mut taken = self.frames_taken.load(Ordering::Relaxed);
        let mut stalled_since = Instant::now();
        loop {
            let limit = if self.has_requested.load(Ordering::Relaxed) {
                idle
            } else {
                first_request
            };
            let now = Instant::now();
            let deadline = if self.in_flight.load(Ordering::Acquire) > 0 {
                let taken_now = self.frames_taken.load(Ordering::Relaxed);
                if taken_now != taken || self.waiting_on_peer.load(Ordering::Acquire) == 0 {
                    taken = taken_now;
                    stalled_since = now;
                } else if now >= stalled_since + idle {
                    tracing::debug!(
                        "closing a connection whose responses wait on a peer that takes nothing"
                    );
                    return;
                }
                (now + idle / 4).min(stalled_since + idle)
            } else if self.has_requested.load(Ordering::Relaxed) {
                let idle_since =
                    self.opened + Duration::from_millis(self.idle_since_ms.load(Ordering::Relaxed));
                idle_since + limit
            } else {
                // A first request may come and go before the first-request limit, and the idle
                // limit may be the shorter: look again within a quarter of it.
                (self.opened + first_request).min(now + idle / 4)
            };
            if now >= deadline {
                return;
            }
            tokio::time::sleep_until(deadline).await;
        }
    }
}

/// See [`ConnectionSlot::closing`].
pub(crate) struct Closing<'a>(&'a ConnectionSlot);

impl Future for Closing<'_> {
    type Output = Close;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Close> {
        let reason = |slot: &ConnectionSlot| match slot.close.load(Ordering::Acquire) {
            0 => None,
            1 => Some(Close::Idle),
            _ => Some(Close::Draining),
        };
        if let Some(reason) = reason(self.0) {
            return Poll::Ready(reason);
        }
        self.0.close_waker.register(cx.waker());
        // Told to close between the first look and the registration: the wake-up went nowhere.
        reason(self.0).map_or(Poll::Pending, Poll::Ready)
    }
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        self.metrics.connection_closed();
    }
}

/// A request in flight on a connection, from its arrival to the end of its response body, and
/// whether its response waits on the peer: it has handed a frame over (or its head) and has not
/// been polled since.
pub(crate) struct RequestInFlight {
    slot: Arc<ConnectionSlot>,
    waiting_on_peer: bool,
}

impl RequestInFlight {
    fn new(slot: &Arc<ConnectionSlot>) -> Self {
        slot.request_started();
        Self {
            slot: Arc::clone(slot),
            waiting_on_peer: false,
        }
    }

    fn set_waiting_on_peer(&mut self, waiting: bool) {
        if self.waiting_on_peer == waiting {
            return;
        }
        self.waiting_on_peer = waiting;
        if waiting {
            self.slot.waiting_on_peer.fetch_add(1, Ordering::AcqRel);
        } else {
            self.slot.waiting_on_peer.fetch_sub(1, Ordering::AcqRel);
        }
    }
}

impl Drop for RequestInFlight {
    fn drop(&mut self) {
        self.set_waiting_on_peer(false);
        self.slot.request_ended();
    }
}

/// The service a connection serves: `inner`, with the connection's slot in each request's
/// extensions and each request counted in flight until its response body ends.
#[derive(Debug, Clone)]
pub(crate) struct Tracked<S> {
    inner: S,
    slot: Arc<ConnectionSlot>,
}

impl<S> Tracked<S> {
    pub(crate) fn new(inner: S, slot: Arc<ConnectionSlot>) -> Self {
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
        // Only an upgrade can outlive the connection; other requests need not carry the slot.
        if request.headers().contains_key(http::header::UPGRADE) {
            request.extensions_mut().insert(Arc::clone(&self.slot));
        }
        TrackedResponse {
            call: self.inner.call(request),
            in_flight: Some(in_flight),
        }
    }
}

pin_project! {
    /// The response of [`Tracked`]: the request stays in flight while it is computed.
    pub(crate) struct TrackedResponse<F> {
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
        let mut in_flight = this.in_flight.take().expect("polled after completion");
        // The head is ready: until the connection polls the body, the response waits on it.
        in_flight.set_waiting_on_peer(true);
        Poll::Ready(Ok(response.map(|inner| GuardedBody::new(inner, in_flight))))
    }
}

/// A response body that keeps its request in flight until it ends or is dropped.
pub(crate) type TrackedBody<B> = GuardedBody<B, RequestInFlight>;

impl BodyGuard for RequestInFlight {
    fn frame(&mut self, _frame: &Frame<Bytes>) {
        self.slot.frames_taken.fetch_add(1, Ordering::Relaxed);
        self.set_waiting_on_peer(true);
    }

    fn pending(&mut self) {
        // The body has nothing ready: the response waits on its service, not on the peer.
        self.set_waiting_on_peer(false);
    }
}

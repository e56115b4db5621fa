//! Readiness for load balancers, and the first step of a shutdown that loses no call.
//!
//! `GET /readyz` answers 200 while this replica takes traffic and 503 from the moment a shutdown
//! begins; `GET /livez` answers 200 while the process serves at all. Both are plain text, never
//! the page, and answered in front of the host-name and origin checks: probes come from load
//! balancers and orchestrators, often with no `Host` or with an address for one, and say nothing
//! a client could not learn by calling. gRPC health says the same to gRPC-aware balancers.
//!
//! Once stopping, the replica still serves everything for `--shutdown-delay`, so balancers that
//! poll `/readyz` (or health) have time to stop sending it calls; meanwhile each HTTP/1.1 response
//! carries `Connection: close`, so keep-alive clients and proxies reconnect, to a replica that is
//! ready. (HTTP/2 connections get their GOAWAY when the drain that follows begins.)

use std::{
    future::Future,
    pin::Pin,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    task::{Context, Poll},
};

use axum::body::Body;
use http::{header, HeaderValue, Method, Request, Response, StatusCode, Version};
use pin_project_lite::pin_project;
use tower::{Layer, Service};

/// Whether this replica takes traffic: yes until [`Readiness::stop`]. Clones share the state.
#[derive(Debug, Clone, Default)]
pub(crate) struct Readiness {
    stopping: Arc<AtomicBool>,
}

impl Readiness {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    pub(crate) fn is_ready(&self) -> bool {
        !self.stopping.load(Ordering::Relaxed)
    }

    /// From now on: `/readyz` answers 503 and HTTP/1.1 responses close their connection.
    pub(crate) fn stop(&self) {
        self.stopping.store(true, Ordering::Relaxed);
    }
}

/// Answers `/readyz` and `/livez` in front of a service and, once stopping, makes the service's
/// HTTP/1.1 responses say `Connection: close`.
#[derive(Debug, Clone)]
pub(crate) struct ReadinessLayer {
    readiness: Readiness,
}

impl ReadinessLayer {
    pub(crate) fn new(readiness: Readiness) -> Self {
        Self { readiness }
    }
}

impl<S> Layer<S> for ReadinessLayer {
    type Service = ReadinessService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        ReadinessService {
            inner,
            readiness: self.readiness.clone(),
        }
    }
}

/// The service of [`ReadinessLayer`].
#[derive(Debug, Clone)]
pub(crate) struct ReadinessService<S> {
    inner: S,
    readiness: Readiness,
}

impl<S, ReqBody> Service<Request<ReqBody>> for ReadinessService<S>
where
    S: Service<Request<ReqBody>, Response = Response<Body>>,
{
    type Response = Response<Body>;
    type Error = S::Error;
    type Future = ReadinessFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        let ready = self.readiness.is_ready();
        if request.method() == Method::GET {
            let probe = match request.uri().path() {
                "/readyz" if ready => Some((StatusCode::OK, "ready\n")),
                "/readyz" => Some((StatusCode::SERVICE_UNAVAILABLE, "shutting down\n")),
                "/livez" => Some((StatusCode::OK, "alive\n")),
                _ => None,
            };
            if let Some((status, text)) = probe {
                let mut response = Response::new(Body::from(text));
                *response.status_mut() = status;
                response.headers_mut().insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("text/plain; charset=utf-8"),
                );
                response
                    .headers_mut()
                    .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
                return ReadinessFuture::Probe {
                    response: Some(response),
                };
            }
        }
        // Decided when the request arrives. HTTP/2 forbids the header (a connection-specific
        // field), and an upgrade's 101 keeps its own `Connection: upgrade`.
        let close = !ready
            && request.version() <= Version::HTTP_11
            && !request.headers().contains_key(header::UPGRADE);
        ReadinessFuture::Inner {
            response: self.inner.call(request),
            close,
        }
    }
}

pin_project! {
    /// The response of [`ReadinessService`]: a probe's, or the inner service's.
    #[project = ReadinessProjection]
    pub(crate) enum ReadinessFuture<F> {
        Probe { response: Option<Response<Body>> },
        Inner {
            #[pin]
            response: F,
            close: bool,
        },
    }
}

impl<F, E> Future for ReadinessFuture<F>
where
    F: Future<Output = Result<Response<Body>, E>>,
{
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project() {
            ReadinessProjection::Probe { response } => {
                Poll::Ready(Ok(response.take().expect("polled after completion")))
            }
            ReadinessProjection::Inner { response, close } => {
                let mut response = std::task::ready!(response.poll(cx))?;
                if *close {
                    response
                        .headers_mut()
                        .insert(header::CONNECTION, HeaderValue::from_static("close"));
                }
                Poll::Ready(Ok(response))
            }
        }
    }
}

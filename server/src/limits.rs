//! Load shedding: a bound on calls in progress across the server, streams included.
//!
//! A call takes a permit when it starts and keeps it in its response body, so a stream holds its
//! permit until it ends, not only until its headers are sent. With no permit left, the call fails
//! at once with RESOURCE_EXHAUSTED, in the caller's own protocol: work is refused up front rather
//! than queued without bound.

use std::{
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
};

use axum::{body::Body, extract::Request, middleware::Next, response::Response};
use bytes::Bytes;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tonic::Status;

/// The shared bound on calls in progress.
#[derive(Debug, Clone)]
pub struct CallLimit {
    permits: Arc<Semaphore>,
    max: u32,
}

impl CallLimit {
    pub fn new(max: u32) -> Self {
        Self {
            permits: Arc::new(Semaphore::new(max as usize)),
            max,
        }
    }

    /// Calls in progress now.
    pub fn in_flight(&self) -> usize {
        self.max as usize - self.permits.available_permits()
    }
}

/// Middleware for the gRPC routes: admits a call if a permit is free, refuses it otherwise.
pub async fn limit_calls(
    limit: axum::extract::State<CallLimit>,
    request: Request,
    next: Next,
) -> Response {
    let Ok(permit) = Arc::clone(&limit.permits).try_acquire_owned() else {
        tracing::warn!(
            max = limit.max,
            path = request.uri().path(),
            "call refused: at the concurrency limit"
        );
        return Status::resource_exhausted(format!(
            "the server is at its limit of {} calls in progress; retry later",
            limit.max
        ))
        .into_http();
    };
    let response = next.run(request).await;
    response.map(|body| {
        Body::new(PermitBody {
            inner: body,
            _permit: permit,
        })
    })
}

/// A response body that holds its call's permit until the body is done or dropped.
struct PermitBody {
    inner: Body,
    _permit: OwnedSemaphorePermit,
}

impl http_body::Body for PermitBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, Self::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

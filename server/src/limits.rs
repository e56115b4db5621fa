//! Load shedding: a bound on calls in progress across the server, streams included.
//!
//! A call takes a permit when it starts and keeps it in its response body, so a stream holds its
//! permit until it ends, not only until its headers are sent. With no permit left, the call fails
//! at once with RESOURCE_EXHAUSTED, in the caller's own protocol: work is refused up front rather
//! than queued without bound.

use std::sync::Arc;

use axum::{extract::Request, middleware::Next, response::Response};
use tokio::sync::Semaphore;
use tonic::Status;

use crate::call_body::CallBody;

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
    response.map(|body| CallBody::wrap(body, permit))
}

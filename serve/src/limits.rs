//! Load shedding: a bound on calls in progress across the server, streams included.
//!
//! A call takes a permit when it starts and keeps it in its response body (see
//! [`crate::gate`]), so a stream holds its permit until it ends, not only until its
//! headers are sent. With no permit left, the call fails at once with RESOURCE_EXHAUSTED, in the
//! caller's own protocol: work is refused up front rather than queued without bound.

use std::{sync::Arc, time::Duration};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tonic::Status;

use crate::log_summary::LogSummary;

/// The shared bound on calls in progress.
#[derive(Debug, Clone)]
pub(crate) struct CallLimit {
    permits: Arc<Semaphore>,
    max: u32,
    /// Refusals are logged as a summary: a flood of them must not flood the log.
    refusals: Arc<LogSummary>,
}

impl CallLimit {
    pub(crate) fn new(max: u32) -> Self {
        Self {
            permits: Arc::new(Semaphore::new(max as usize)),
            max,
            refusals: Arc::new(LogSummary::new(Duration::from_secs(10))),
        }
    }

    /// A permit for one call if one is free; RESOURCE_EXHAUSTED, saying so, if not.
    pub(crate) fn admit(&self) -> Result<OwnedSemaphorePermit, Status> {
        Arc::clone(&self.permits).try_acquire_owned().map_err(|_| {
            if let Some(refused) = self.refusals.event() {
                tracing::warn!(
                    max = self.max,
                    refused,
                    "calls refused at the concurrency limit since the last report"
                );
            }
            Status::resource_exhausted(format!(
                "the server is at its limit of {} calls in progress; retry later",
                self.max
            ))
        })
    }
}

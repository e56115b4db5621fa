//! Counts of streaming calls by how they ended, served by `GreeterStats/GetStreamStats`.
//!
//! The point is to make cancellation observable: a stream whose client went away, or that the
//! serving stack ended (its deadline, the drain), must stop its work on the server, and a test can
//! only see that from the server's side. Each streaming call holds a [`StreamGuard`]; whichever
//! way the call ends (finished, failed, or dropped before it finished) the guard records it
//! exactly once.

use std::sync::{
    atomic::{AtomicU64, Ordering},
    Arc,
};

use hello_proto::{greeter_stats_server::GreeterStats, StreamStats, StreamStatsRequest};
use tonic::{Request, Response, Status};

#[derive(Debug, Default)]
pub struct StreamCounters {
    started: AtomicU64,
    completed: AtomicU64,
    failed: AtomicU64,
    cancelled: AtomicU64,
    active: AtomicU64,
}

impl StreamCounters {
    /// Records the start of a streaming call; the guard records its end.
    pub fn start(self: &Arc<Self>, method: &'static str) -> StreamGuard {
        self.started.fetch_add(1, Ordering::Relaxed);
        self.active.fetch_add(1, Ordering::Relaxed);
        tracing::debug!(method, "stream started");
        StreamGuard {
            counters: Arc::clone(self),
            method,
            outcome: None,
        }
    }

    pub fn snapshot(&self) -> StreamStats {
        StreamStats {
            started: self.started.load(Ordering::Relaxed),
            completed: self.completed.load(Ordering::Relaxed),
            failed: self.failed.load(Ordering::Relaxed),
            cancelled: self.cancelled.load(Ordering::Relaxed),
            active: self.active.load(Ordering::Relaxed),
        }
    }
}

/// How a streaming call ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Completed,
    Failed,
    Cancelled,
}

impl Outcome {
    /// Refusals (bad arguments, sizes, a request message that stopped arriving) are failures;
    /// any other error on a stream comes from the transport: the client reset or dropped it.
    pub fn of_error(status: &Status) -> Self {
        match status.code() {
            tonic::Code::InvalidArgument
            | tonic::Code::DeadlineExceeded
            | tonic::Code::ResourceExhausted
            | tonic::Code::OutOfRange
            | tonic::Code::Unavailable => Self::Failed,
            _ => Self::Cancelled,
        }
    }
}

/// Held by a streaming call for as long as it runs. Dropped without [`StreamGuard::finish`], the
/// call was abandoned: its client went away or cancelled.
#[derive(Debug)]
pub struct StreamGuard {
    counters: Arc<StreamCounters>,
    method: &'static str,
    outcome: Option<Outcome>,
}

impl StreamGuard {
    pub fn finish(&mut self, outcome: Outcome) {
        self.outcome.get_or_insert(outcome);
    }

    /// Records the end of a call that returns a `Result`, and passes the result on.
    pub fn finish_with<T>(&mut self, result: Result<T, Status>) -> Result<T, Status> {
        self.finish(match &result {
            Ok(_) => Outcome::Completed,
            Err(status) => Outcome::of_error(status),
        });
        result
    }
}

impl Drop for StreamGuard {
    fn drop(&mut self) {
        let outcome = self.outcome.unwrap_or(Outcome::Cancelled);
        let counter = match outcome {
            Outcome::Completed => &self.counters.completed,
            Outcome::Failed => &self.counters.failed,
            Outcome::Cancelled => &self.counters.cancelled,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        self.counters.active.fetch_sub(1, Ordering::Relaxed);
        tracing::debug!(method = self.method, ?outcome, "stream ended");
    }
}

/// The `GreeterStats` service over shared counters.
#[derive(Debug, Clone)]
pub struct StatsService {
    counters: Arc<StreamCounters>,
}

impl StatsService {
    pub fn new(counters: Arc<StreamCounters>) -> Self {
        Self { counters }
    }
}

#[tonic::async_trait]
impl GreeterStats for StatsService {
    async fn get_stream_stats(
        &self,
        _request: Request<StreamStatsRequest>,
    ) -> Result<Response<StreamStats>, Status> {
        Ok(Response::new(self.counters.snapshot()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_call_is_counted_once_by_how_it_ended() {
        let counters = Arc::new(StreamCounters::default());
        let mut completed = counters.start("a");
        completed.finish(Outcome::Completed);
        completed.finish(Outcome::Failed); // the first outcome stands
        let mut failed = counters.start("b");
        let _ = failed.finish_with::<()>(Err(Status::invalid_argument("x")));
        let abandoned = counters.start("c");
        let running = counters.start("d");
        assert_eq!(counters.snapshot().active, 4);

        drop((completed, failed, abandoned));
        let stats = counters.snapshot();
        assert_eq!(
            (
                stats.started,
                stats.completed,
                stats.failed,
                stats.cancelled,
                stats.active
            ),
            (4, 1, 1, 1, 1)
        );
        drop(running);
        assert_eq!(counters.snapshot().cancelled, 2);
    }
}

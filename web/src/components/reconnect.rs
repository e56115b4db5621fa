//! Streams that ride through a server restart. A draining replica ends its streams with
//! `UNAVAILABLE`, and a restarting one cannot be reached for a moment; a panel whose stream ended
//! so shows "reconnecting…", waits a jittered pause and opens the stream again, up to nine times
//! in a row without a greeting in between: pauses that double from 50–100 ms to 1–2 s, so a lone
//! server has at least 5.5 s to come back (behind a balancer the first reopening succeeds).

use std::time::Duration;

use grpc_call::retry::RetryPolicy;
use leptos::prelude::*;
use tonic::Code;

use super::CallState;
use crate::api::{self, CallError};

/// How often, and after what pauses, a panel reopens its stream.
const REOPENING: RetryPolicy = RetryPolicy {
    max_attempts: 10,
    initial_backoff: Duration::from_millis(100),
    max_backoff: Duration::from_secs(2),
};

/// A panel's reopenings in a row.
#[derive(Debug, Default)]
pub struct Reconnects {
    in_a_row: u32,
}

impl Reconnects {
    /// After the panel's stream ended with `error`: whether to open it again. When it is, the
    /// panel shows `Reconnecting` until this returns, after the pause.
    pub async fn reopen_after(&mut self, error: &CallError, state: RwSignal<CallState>) -> bool {
        if error.code() != Code::Unavailable || self.in_a_row + 1 >= REOPENING.max_attempts {
            return false;
        }
        self.in_a_row += 1;
        state.set(CallState::Reconnecting(error.clone()));
        api::pause(REOPENING.backoff(self.in_a_row, js_sys::Math::random())).await;
        state.set(CallState::Running);
        true
    }

    /// A greeting arrived: the stream works again, and the count starts over.
    pub fn progressed(&mut self) {
        self.in_a_row = 0;
    }
}

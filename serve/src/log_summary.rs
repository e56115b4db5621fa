//! Warnings that clients can cause, summarised: at most one line per interval for each kind, with
//! the count of events since the last line, so a flood of refusals cannot flood the log; and
//! [`printable`], which bounds what a client sent before a log line or a reason repeats it.

use std::{
    borrow::Cow,
    sync::atomic::{AtomicU64, Ordering},
    time::Duration,
};

use tokio::time::Instant;

/// Counts events of one kind and says when to write the next line about them.
#[derive(Debug)]
pub(crate) struct LogSummary {
    interval: Duration,
    started: Instant,
    /// Events since the last line.
    pending: AtomicU64,
    /// When the next line may be written, in milliseconds since `started`.
    next_line_ms: AtomicU64,
}

impl LogSummary {
    /// At most one line per `interval`; the first event gets a line at once.
    pub(crate) fn new(interval: Duration) -> Self {
        Self {
            interval,
            started: Instant::now(),
            pending: AtomicU64::new(0),
            next_line_ms: AtomicU64::new(0),
        }
    }

    /// Counts one event; returns how many events the line written now should report, if it is
    /// time for one.
    pub(crate) fn event(&self) -> Option<u64> {
        self.pending.fetch_add(1, Ordering::Relaxed);
        let now_ms = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX);
        let next = self.next_line_ms.load(Ordering::Relaxed);
        if now_ms < next {
            return None;
        }
        let after = now_ms.saturating_add(u64::try_from(self.interval.as_millis()).unwrap_or(0));
        // One caller wins the line; the others are counted in the next one.
        self.next_line_ms
            .compare_exchange(next, after, Ordering::Relaxed, Ordering::Relaxed)
            .ok()?;
        Some(self.pending.swap(0, Ordering::Relaxed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn one_line_per_interval_with_the_count_since_the_last() {
        let summary = LogSummary::new(Duration::from_secs(10));
        assert_eq!(summary.event(), Some(1));
        let lines: Vec<_> = (0..1000).filter_map(|_| summary.event()).collect();
        assert!(lines.is_empty(), "{lines:?}");
        tokio::time::advance(Duration::from_secs(10)).await;
        assert_eq!(summary.event(), Some(1001));
        assert_eq!(summary.event(), None);
    }
}

/// `text`, from a client, fit to repeat: visible ASCII only (anything else becomes `?`), at most
/// `max` bytes of it, then `… (N bytes)` if it was longer. Borrowed when it is already fit.
pub(crate) fn printable(text: &str, max: usize) -> Cow<'_, str> {
    if text.len() <= max && text.bytes().all(|byte| byte.is_ascii_graphic()) {
        return text.into();
    }
    let mut printed: String = text
        .chars()
        .take(max)
        .map(|c| if c.is_ascii_graphic() { c } else { '?' })
        .collect();
    if text.len() > max {
        printed.push_str(&format!("… ({} bytes)", text.len()));
    }
    printed.into()
}

#[cfg(test)]
mod printable_tests {
    use super::*;

    #[test]
    fn repeats_short_visible_text_as_it_came_and_bounds_the_rest() {
        assert!(matches!(printable("/a.B/C", 10), Cow::Borrowed("/a.B/C")));
        assert_eq!(printable("a b\né", 10), "a?b??");
        assert_eq!(printable(&"x".repeat(300), 4), "xxxx… (300 bytes)");
    }
}

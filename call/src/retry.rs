//! Sending a failed call again, for clients that must ride through a server restart.
//!
//! A replica that restarts refuses connections for a moment, and one that drains refuses new
//! streams; a call that met either never reached a server's handler, so sending it again cannot
//! do anything twice. [`call_with_retries`] repeats such a call with jittered exponential backoff
//! ("equal jitter": each pause is half a cap that doubles, plus a random part of the other half, so
//! clients that failed together spread out, yet the attempts span a known least time), never past the call's
//! deadline: each attempt is sent with the time that is left, and no attempt starts when its pause
//! would use up the rest. Which failures qualify is the caller's to say (`retryable`), because only
//! the transport knows whether a request can have reached a server.
//!
//! The loop is the same in the browser and on a server; the clock, the timer and the randomness
//! are not, so each client brings a [`RetryTimer`].

use std::{future::Future, time::Duration};

/// How often a call is sent at most, and how long to pause between attempts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included.
    pub max_attempts: u32,
    /// The cap on the first pause; each later cap doubles it.
    pub initial_backoff: Duration,
    /// The largest cap.
    pub max_backoff: Duration,
}

impl Default for RetryPolicy {
    /// Five attempts, pauses capped at 50, 100, 200 and 400 ms: the attempts span 375 to 750 ms
    /// of pauses, longer than a replica on loopback takes to start listening.
    fn default() -> Self {
        Self {
            max_attempts: 5,
            initial_backoff: Duration::from_millis(50),
            max_backoff: Duration::from_secs(1),
        }
    }
}

impl RetryPolicy {
    /// The pause before retry number `retry` (1 for the first), given `random_fraction` in
    /// `[0, 1)`: half the cap `min(max_backoff, initial_backoff × 2^(retry − 1))`, plus that
    /// fraction of the other half.
    pub fn backoff(&self, retry: u32, random_fraction: f64) -> Duration {
        let doublings = retry.saturating_sub(1).min(31);
        let cap = self
            .initial_backoff
            .saturating_mul(1 << doublings)
            .min(self.max_backoff);
        (cap / 2).mul_f64(1.0 + random_fraction.clamp(0.0, 1.0))
    }
}

/// The platform's clock, timer and randomness, as the retry loop needs them.
pub trait RetryTimer {
    /// A monotonic reading; only differences between two readings are used.
    fn now(&self) -> Duration;
    /// Completes after `duration`.
    fn sleep(&self, duration: Duration) -> impl Future<Output = ()>;
    /// A random number in `[0, 1)`, for jitter: clients that failed together must not all come
    /// back at the same instant.
    fn random_fraction(&self) -> f64;
}

/// Runs `attempt` until it succeeds, fails in a way `retryable` refuses, runs out of attempts or
/// would run past `deadline`; returns the last result. `attempt` is given the time left of the
/// deadline, to send as the attempt's own.
pub async fn call_with_retries<T, E, Attempt>(
    policy: &RetryPolicy,
    timer: &impl RetryTimer,
    deadline: Option<Duration>,
    retryable: impl Fn(&E) -> bool,
    mut attempt: impl FnMut(Option<Duration>) -> Attempt,
) -> Result<T, E>
where
    Attempt: Future<Output = Result<T, E>>,
{
    let started = timer.now();
    let time_left = || deadline.map(|deadline| deadline.saturating_sub(timer.now() - started));
    let mut retries = 0;
    loop {
        let error = match attempt(time_left()).await {
            Err(error) if retryable(&error) && retries + 1 < policy.max_attempts => error,
            result => return result,
        };
        retries += 1;
        let pause = policy.backoff(retries, timer.random_fraction());
        if time_left().is_some_and(|left| left <= pause) {
            return Err(error);
        }
        timer.sleep(pause).await;
    }
}

#[cfg(test)]
mod tests {
    use std::{cell::Cell, future::ready};

    use super::*;

    /// A clock that moves only when slept on or when an attempt takes time, and a fixed
    /// "random" fraction: the loop's decisions, without waiting.
    struct FakeTimer {
        now: Cell<Duration>,
        fraction: f64,
        pauses: Cell<Vec<Duration>>,
    }

    impl FakeTimer {
        fn new(fraction: f64) -> Self {
            Self {
                now: Cell::new(Duration::ZERO),
                fraction,
                pauses: Cell::new(Vec::new()),
            }
        }

        fn advance(&self, by: Duration) {
            self.now.set(self.now.get() + by);
        }

        fn pauses(&self) -> Vec<Duration> {
            self.pauses.take()
        }
    }

    impl RetryTimer for FakeTimer {
        fn now(&self) -> Duration {
            self.now.get()
        }

        fn sleep(&self, duration: Duration) -> impl Future<Output = ()> {
            self.advance(duration);
            let mut pauses = self.pauses.take();
            pauses.push(duration);
            self.pauses.set(pauses);
            ready(())
        }

        fn random_fraction(&self) -> f64 {
            self.fraction
        }
    }

    fn run<T>(future: impl Future<Output = T>) -> T {
        futures_executor::block_on(future)
    }

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn backoff_caps_double_up_to_the_maximum_and_jitter_scales_them() {
        let policy = RetryPolicy::default();
        let caps: Vec<_> = (1..=7).map(|retry| policy.backoff(retry, 1.0)).collect();
        assert_eq!(caps, [50, 100, 200, 400, 800, 1000, 1000].map(|ms| ms * MS));
        assert_eq!(policy.backoff(3, 0.5), 150 * MS);
        assert_eq!(policy.backoff(3, 0.0), 100 * MS);
        assert_eq!(policy.backoff(u32::MAX, 0.5), 750 * MS);
    }

    /// Runs the loop with the default policy and `timer`; attempt `n` (from 1), sent with the
    /// time left, gets `outcome(n, time_left)`. Returns the result and the number of attempts.
    fn attempts<T>(
        timer: &FakeTimer,
        deadline: Option<Duration>,
        retryable: impl Fn(&&'static str) -> bool,
        outcome: impl Fn(u32, Option<Duration>) -> Result<T, &'static str>,
    ) -> (Result<T, &'static str>, u32) {
        let made = Cell::new(0);
        let result = run(call_with_retries(
            &RetryPolicy::default(),
            timer,
            deadline,
            retryable,
            |time_left| {
                made.set(made.get() + 1);
                ready(outcome(made.get(), time_left))
            },
        ));
        (result, made.get())
    }

    #[test]
    fn a_retryable_failure_is_sent_again_until_it_succeeds() {
        let timer = FakeTimer::new(0.5);
        let (result, made) = attempts(
            &timer,
            None,
            |error| *error == "refused",
            |n, _| if n < 3 { Err("refused") } else { Ok("Hello") },
        );
        assert_eq!((result, made), (Ok("Hello"), 3));
        assert_eq!(timer.pauses(), [37_500, 75_000].map(Duration::from_micros));
    }

    #[test]
    fn a_failure_that_is_not_retryable_is_returned_at_once() {
        let timer = FakeTimer::new(0.5);
        let (result, made) = attempts(
            &timer,
            None,
            |error| *error == "refused",
            |_, _| Err::<(), _>("invalid argument"),
        );
        assert_eq!((result, made), (Err("invalid argument"), 1));
        assert!(timer.pauses().is_empty());
    }

    #[test]
    fn attempts_stop_at_the_policy_maximum() {
        let timer = FakeTimer::new(1.0);
        let (result, made) = attempts(&timer, None, |_| true, |_, _| Err::<(), _>("refused"));
        assert_eq!((result, made), (Err("refused"), 5));
        assert_eq!(timer.pauses(), [50, 100, 200, 400].map(|ms| ms * MS));
    }

    #[test]
    fn each_attempt_gets_the_time_left_and_none_starts_past_the_deadline() {
        let timer = FakeTimer::new(1.0);
        let sent_with = Cell::new(Vec::new());
        let (result, made) = attempts(
            &timer,
            Some(300 * MS),
            |_| true,
            |_, time_left| {
                let mut all = sent_with.take();
                all.push(time_left.unwrap());
                sent_with.set(all);
                // Each attempt takes 20 ms before it fails.
                timer.advance(20 * MS);
                Err::<(), _>("refused")
            },
        );
        assert_eq!((result, made), (Err("refused"), 3));
        // 0: sent with 300; fails at 20, pauses 50 → 70: sent with 230; fails at 90, pauses 100
        // → 190: sent with 110; fails at 210 with 90 left, less than the next 200 ms pause.
        assert_eq!(sent_with.take(), [300, 230, 110].map(|ms| ms * MS));
        assert_eq!(timer.pauses(), [50 * MS, 100 * MS]);
    }
}

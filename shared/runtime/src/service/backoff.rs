//! The one backoff of every retry loop: exponential with jitter, built on `backon` (already in
//! the tree through lapin), and a sleep that ends early on shutdown.

use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBackoff, ExponentialBuilder};
use tokio_util::sync::CancellationToken;

/// Delays that double per attempt from `initial` up to `max`, each a random point in
/// [ceiling/2, ceiling) so reconnecting clients spread out. backon's jitter adds up to one
/// more delay, so the builder runs on half the bounds.
#[derive(Debug)]
pub struct Backoff {
    builder: ExponentialBuilder,
    delays: ExponentialBackoff,
    max: Duration,
    attempts: u32,
}

impl Backoff {
    pub fn new(initial: Duration, max: Duration) -> Self {
        let initial = initial.max(Duration::from_millis(1));
        let max = max.max(initial);
        let builder = ExponentialBuilder::new()
            .with_min_delay(initial / 2)
            .with_max_delay(max / 2)
            .with_factor(2.0)
            .with_jitter()
            .without_max_times();
        Backoff {
            builder,
            delays: builder.build(),
            max,
            attempts: 0,
        }
    }

    /// The wait before the next attempt.
    pub fn next_delay(&mut self) -> Duration {
        self.attempts = self.attempts.saturating_add(1);
        // Without max_times the iterator never ends; the fallback is the cap, never reached.
        self.delays.next().unwrap_or(self.max)
    }

    /// After a success: the next failure waits the shortest delay again.
    pub fn reset(&mut self) {
        self.delays = self.builder.build();
        self.attempts = 0;
    }

    /// Delays handed out since the last reset (= failed attempts in a row).
    pub fn attempts(&self) -> u32 {
        self.attempts
    }
}

impl Clone for Backoff {
    /// A fresh backoff with the same bounds.
    fn clone(&self) -> Self {
        Backoff {
            builder: self.builder,
            delays: self.builder.build(),
            max: self.max,
            attempts: 0,
        }
    }
}

/// Sleeps `delay`; returns false when shutdown came first.
pub async fn sleep_or_shutdown(delay: Duration, shutdown: &CancellationToken) -> bool {
    tokio::select! {
        _ = tokio::time::sleep(delay) => true,
        _ = shutdown.cancelled() => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_and_stay_capped() {
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_millis(1000));
        let first = b.next_delay();
        assert!(
            first >= Duration::from_millis(50) && first <= Duration::from_millis(100),
            "{first:?}"
        );
        for _ in 0..30 {
            assert!(b.next_delay() <= Duration::from_millis(1000));
        }
        let late = b.next_delay();
        assert!(late >= Duration::from_millis(500), "{late:?}");
        assert_eq!(b.attempts(), 32);
        b.reset();
        assert_eq!(b.attempts(), 0);
        assert!(b.next_delay() <= Duration::from_millis(100));
    }
}

//! Events that both count and log, without logging per packet.
//!
//! A [`CountedEvent`] bumps its counter on every occurrence and lets the caller log at most once
//! per interval, with how many occurrences happened since the last log line. Use it for drops,
//! decode issues, publish failures: the counter is exact, the log is a summary.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use prometheus::IntCounter;

/// Allows one action per interval and counts what happened in between.
#[derive(Debug)]
pub struct Throttle {
    interval: Duration,
    state: Mutex<ThrottleState>,
}

#[derive(Debug)]
struct ThrottleState {
    last: Option<Instant>,
    since_last: u64,
}

impl Throttle {
    pub fn new(interval: Duration) -> Self {
        Throttle {
            interval,
            state: Mutex::new(ThrottleState {
                last: None,
                since_last: 0,
            }),
        }
    }

    /// Records `n` occurrences; returns `Some(total since the last permitted action)` when the
    /// caller may act now (the first occurrence always may).
    pub fn hit(&self, n: u64) -> Option<u64> {
        let mut state = self
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        state.since_last = state.since_last.saturating_add(n);
        let now = Instant::now();
        let due = state
            .last
            .is_none_or(|last| now.duration_since(last) >= self.interval);
        if due {
            state.last = Some(now);
            Some(std::mem::take(&mut state.since_last))
        } else {
            None
        }
    }
}

/// A counter plus a log throttle: `record(n, |since| warn!(...))`.
#[derive(Debug)]
pub struct CountedEvent {
    counter: IntCounter,
    throttle: Throttle,
}

impl CountedEvent {
    pub fn new(counter: IntCounter, log_interval: Duration) -> Self {
        CountedEvent {
            counter,
            throttle: Throttle::new(log_interval),
        }
    }

    /// Counts `n` occurrences and calls `log` with the number since the last log line, at most
    /// once per interval.
    pub fn record(&self, n: u64, log: impl FnOnce(u64)) {
        if n == 0 {
            return;
        }
        self.counter.inc_by(n);
        if let Some(since_last) = self.throttle.hit(n) {
            log(since_last);
        }
    }

    pub fn total(&self) -> u64 {
        self.counter.get()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_every_occurrence_and_logs_once_per_interval() {
        let counter = IntCounter::new("x_total", "x").unwrap();
        let event = CountedEvent::new(counter.clone(), Duration::from_secs(3600));
        let mut logged = Vec::new();
        for _ in 0..5 {
            event.record(2, |since| logged.push(since));
        }
        assert_eq!(counter.get(), 10);
        assert_eq!(logged, vec![2]);
    }
}

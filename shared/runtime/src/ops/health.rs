//! Liveness: a heartbeat the service's main loop touches; `/health` fails when it goes stale.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Last sign of life of the main loop. Cheap to clone and to touch (one atomic store).
#[derive(Debug, Clone)]
pub struct Heartbeat {
    inner: Arc<HeartbeatInner>,
}

#[derive(Debug)]
struct HeartbeatInner {
    origin: Instant,
    /// Milliseconds since `origin` at the last beat.
    last_ms: AtomicU64,
    max_age: Duration,
}

impl Heartbeat {
    /// A heartbeat considered stale when not touched for `max_age`. Starts fresh.
    pub fn new(max_age: Duration) -> Self {
        Heartbeat {
            inner: Arc::new(HeartbeatInner {
                origin: Instant::now(),
                last_ms: AtomicU64::new(0),
                max_age,
            }),
        }
    }

    /// Records that the main loop is alive.
    pub fn beat(&self) {
        let now = elapsed_ms(self.inner.origin);
        self.inner.last_ms.store(now, Ordering::Relaxed);
    }

    /// Time since the last beat.
    pub fn age(&self) -> Duration {
        let now = elapsed_ms(self.inner.origin);
        let last = self.inner.last_ms.load(Ordering::Relaxed);
        Duration::from_millis(now.saturating_sub(last))
    }

    pub fn max_age(&self) -> Duration {
        self.inner.max_age
    }

    pub fn is_alive(&self) -> bool {
        self.age() <= self.inner.max_age
    }
}

fn elapsed_ms(origin: Instant) -> u64 {
    u64::try_from(origin.elapsed().as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn goes_stale_without_beats_and_recovers_with_one() {
        let heartbeat = Heartbeat::new(Duration::from_millis(20));
        assert!(heartbeat.is_alive());
        std::thread::sleep(Duration::from_millis(60));
        assert!(!heartbeat.is_alive());
        heartbeat.beat();
        assert!(heartbeat.is_alive());
    }
}

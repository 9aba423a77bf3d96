//! What the publisher's /health and /ready report on (served by `netpipe_runtime::ops`): the readiness
//! condition names, the heartbeat's max age, and waits that keep the heartbeat going.
//!
//! /health follows the main loop, which is two tasks: the intake (broker reads, acks) and the
//! batcher (cuts batches, hands them to senders). The batcher beats its own heartbeat; the intake
//! beats the service heartbeat only while the batcher's is fresh, so either loop wedging turns
//! /health 503. Waiting on bounded work is not wedging: while the API is down every sender backs
//! off (up to ANTINEX_RETRY_MAX_MS per sleep, ANTINEX_REQUEST_TIMEOUT_SECS per request, for as
//! long as the outage lasts) and the loops wait for them, beating every [`BEAT_INTERVAL`].

use std::future::Future;
use std::time::Duration;

use netpipe_runtime::ops::Heartbeat;
use tokio::time::MissedTickBehavior;

/// Readiness: the last AntiNex login worked (declared unmet until the start-up login).
pub const READY_LOGIN: &str = "antinex login";
/// Readiness: the last read of the rows stream worked.
pub const READY_BROKER: &str = "rows broker";
/// Readiness: POST /ml/ has not failed `--unready-after-failures` times in a row.
pub const READY_DELIVERY: &str = "antinex delivery";

/// How often waiting loops wake up to beat (and the batcher's idle tick).
pub const BEAT_INTERVAL: Duration = Duration::from_secs(1);

/// Room for the longest single call the loops make without beating: one broker call, which the
/// broker layer bounds (block time + 5 s response margin, reconnect within its connect timeout,
/// pool waits of twice that), with ample margin so a slow broker is not mistaken for a wedge.
const MAX_AGE_BASE: Duration = Duration::from_secs(60);

/// The heartbeat's max age: independent of the HTTP timeouts and backoff (those waits beat).
pub fn heartbeat_max_age(rows_block: Duration) -> Duration {
    MAX_AGE_BASE + rows_block
}

/// The service heartbeat (what /health reads) and the batcher's own.
#[derive(Debug, Clone)]
pub struct Liveness {
    service: Heartbeat,
    batcher: Heartbeat,
}

impl Liveness {
    /// Starts the batcher's heartbeat fresh: create it when the batcher starts.
    pub fn new(service: Heartbeat) -> Self {
        let batcher = Heartbeat::new(service.max_age());
        Liveness { service, batcher }
    }

    /// The intake is alive; counts only while the batcher is too.
    pub fn beat_intake(&self) {
        if self.batcher.is_alive() {
            self.service.beat();
        }
    }

    pub fn beat_batcher(&self) {
        self.batcher.beat();
    }
}

/// Awaits `future`, calling `beat` at once and then every [`BEAT_INTERVAL`] until it is done.
pub async fn beating<F: Future>(future: F, beat: impl Fn()) -> F::Output {
    let mut ticks = tokio::time::interval(BEAT_INTERVAL);
    ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
    tokio::pin!(future);
    loop {
        tokio::select! {
            biased;
            out = &mut future => return out,
            _ = ticks.tick() => beat(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stale_batcher_stops_the_service_heartbeat() {
        let service = Heartbeat::new(Duration::from_millis(40));
        let liveness = Liveness::new(service.clone());
        std::thread::sleep(Duration::from_millis(80));
        liveness.beat_intake();
        assert!(!service.is_alive(), "the batcher stopped beating");
        liveness.beat_batcher();
        liveness.beat_intake();
        assert!(service.is_alive());
    }

    #[tokio::test(start_paused = true)]
    async fn a_long_wait_keeps_beating() {
        let service = Heartbeat::new(Duration::from_secs(3));
        let beats = std::sync::atomic::AtomicU32::new(0);
        let answer = beating(
            async {
                tokio::time::sleep(Duration::from_secs(10)).await;
                42
            },
            || {
                beats.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                service.beat();
            },
        )
        .await;
        assert_eq!(answer, 42);
        // One beat at once, then one per second of the 10 s wait.
        assert!(beats.into_inner() >= 10);
    }
}

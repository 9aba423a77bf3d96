//! The one connect-with-retry loop: attempt, and while the failure is transient wait a backoff
//! delay (beating the heartbeat, so /health stays green while waiting) until connected,
//! refused for good, or shut down.

use std::fmt::Display;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::backoff::Backoff;
use crate::ops::Heartbeat;

/// How [`connect_with_retry`] ended.
#[derive(Debug)]
pub enum RetryOutcome<T, E> {
    Connected(T),
    /// A failure `retryable` called permanent.
    Failed(E),
    /// Shutdown came first.
    Shutdown,
}

/// How often a wait beats the heartbeat.
const BEAT_EVERY: Duration = Duration::from_secs(1);

/// Calls `attempt` until it succeeds. A failure `retryable` accepts is passed to `on_retry`
/// (with the coming delay: log it, mark not ready) and retried after the backoff's delay.
pub async fn connect_with_retry<T, E, F, Fut>(
    backoff: &mut Backoff,
    shutdown: &CancellationToken,
    heartbeat: Option<&Heartbeat>,
    mut attempt: F,
    retryable: impl Fn(&E) -> bool,
    mut on_retry: impl FnMut(&E, Duration),
) -> RetryOutcome<T, E>
where
    E: Display,
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    loop {
        if shutdown.is_cancelled() {
            return RetryOutcome::Shutdown;
        }
        if let Some(heartbeat) = heartbeat {
            heartbeat.beat();
        }
        match attempt().await {
            Ok(value) => {
                backoff.reset();
                return RetryOutcome::Connected(value);
            }
            Err(error) if retryable(&error) => {
                let delay = backoff.next_delay();
                on_retry(&error, delay);
                if !wait(delay, shutdown, heartbeat).await {
                    return RetryOutcome::Shutdown;
                }
            }
            Err(error) => return RetryOutcome::Failed(error),
        }
    }
}

/// Sleeps `delay` in slices, beating between them; false when shutdown came first.
async fn wait(
    delay: Duration,
    shutdown: &CancellationToken,
    heartbeat: Option<&Heartbeat>,
) -> bool {
    let deadline = tokio::time::Instant::now() + delay;
    loop {
        let now = tokio::time::Instant::now();
        if now >= deadline {
            return true;
        }
        let slice = (deadline - now).min(BEAT_EVERY);
        if !super::sleep_or_shutdown(slice, shutdown).await {
            return false;
        }
        if let Some(heartbeat) = heartbeat {
            heartbeat.beat();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn retries_transient_failures_and_stops_on_permanent_ones() {
        let shutdown = CancellationToken::new();
        let mut backoff = Backoff::new(Duration::from_millis(10), Duration::from_millis(100));
        let mut calls = 0;
        let mut retries = 0;
        let outcome = connect_with_retry(
            &mut backoff,
            &shutdown,
            None,
            || {
                calls += 1;
                let n = calls;
                async move { if n < 3 { Err("down") } else { Ok(n) } }
            },
            |_| true,
            |_, _| retries += 1,
        )
        .await;
        assert!(matches!(outcome, RetryOutcome::Connected(3)));
        assert_eq!(retries, 2);
        assert_eq!(backoff.attempts(), 0, "reset after success");

        let outcome: RetryOutcome<(), &str> = connect_with_retry(
            &mut backoff,
            &shutdown,
            None,
            || async { Err("refused") },
            |e| *e != "refused",
            |_, _| {},
        )
        .await;
        assert!(matches!(outcome, RetryOutcome::Failed("refused")));

        shutdown.cancel();
        let outcome: RetryOutcome<(), &str> = connect_with_retry(
            &mut backoff,
            &shutdown,
            None,
            || async { Err("down") },
            |_| true,
            |_, _| {},
        )
        .await;
        assert!(matches!(outcome, RetryOutcome::Shutdown));
    }
}

//! What a broker crash can lose, read once at connect: Redis `INFO persistence` (is the AOF on?)
//! and `CONFIG GET appendfsync` (when the managed service allows it). Without AOF, Redis keeps
//! accepted messages only in memory until the next RDB snapshot: a crash loses them although
//! every publish was acknowledged. The services export `broker_durable` (1/0), carry a warning
//! reason on `/ready` (still 200), and log one line saying what a crash would lose.

use std::time::Duration;

use deadpool_redis::redis::{self, Value};
use prometheus::IntGauge;

use super::redis_conn::{RedisEndpoint, value_string};
use super::{Backend, BrokerConfig, BrokerError};
use crate::ops::Readiness;

/// Name of the `/ready` warning.
pub const DURABILITY_WARNING: &str = "broker durability";

/// Whether messages the broker accepted survive its crash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Durability {
    pub durable: bool,
    /// One sentence: what a crash loses.
    pub detail: String,
}

/// The broker's durability; `None` for `memory://` (in-process, nothing to ask).
pub async fn durability(config: &BrokerConfig) -> Result<Option<Durability>, BrokerError> {
    match config.url.backend() {
        Backend::Redis => redis_durability(config.url.target(), config)
            .await
            .map(Some),
        Backend::Amqp => Ok(Some(Durability {
            durable: true,
            detail: "RabbitMQ durable quorum queue, persistent messages, publisher confirms".into(),
        })),
        Backend::Memory => Ok(None),
    }
}

async fn redis_durability(url: &str, config: &BrokerConfig) -> Result<Durability, BrokerError> {
    let endpoint = RedisEndpoint::open(url, config)?;
    let mut conn = endpoint.connection(Duration::ZERO).await?;
    let info: Value = redis::cmd("INFO")
        .arg("persistence")
        .query_async(&mut conn)
        .await
        .map_err(|e| endpoint.error(e))?;
    let info = value_string(&info).unwrap_or_default();
    let aof = info_field(&info, "aof_enabled") == Some("1");
    // Managed services may forbid CONFIG; the policy is then unknown.
    let fsync: Option<String> = redis::cmd("CONFIG")
        .arg("GET")
        .arg("appendfsync")
        .query_async::<Vec<String>>(&mut conn)
        .await
        .ok()
        .and_then(|pair| pair.into_iter().nth(1));
    Ok(classify(aof, fsync.as_deref()))
}

fn info_field<'a>(info: &'a str, name: &str) -> Option<&'a str> {
    info.lines()
        .filter_map(|line| line.trim().split_once(':'))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value)
}

fn classify(aof: bool, fsync: Option<&str>) -> Durability {
    let detail = match (aof, fsync) {
        (false, _) => "Redis has no AOF (appendonly no): a Redis crash loses every message \
                       accepted since the last RDB snapshot; enable appendonly (see docs/brokers.md)"
            .to_string(),
        (true, Some("always")) => {
            "Redis AOF with appendfsync always: accepted messages survive a Redis or host crash"
                .to_string()
        }
        (true, Some("everysec")) => "Redis AOF with appendfsync everysec: accepted messages \
                                     survive a Redis crash; a host crash can lose about the last second"
            .to_string(),
        (true, Some(other)) => format!(
            "Redis AOF with appendfsync {other}: accepted messages survive a Redis crash; a host \
             crash can lose what the OS had not yet written"
        ),
        (true, None) => "Redis AOF on (appendfsync policy not readable): accepted messages \
                         survive a Redis crash"
            .to_string(),
    };
    Durability {
        durable: aof,
        detail,
    }
}

/// Reads the broker's durability and reports it: `gauge` 1/0, a `/ready` warning when not
/// durable, one log line. False when the broker could not be asked (try again later); a broker
/// that cannot tell (`memory://`) leaves all three unchanged.
pub async fn report_durability(
    config: &BrokerConfig,
    readiness: &Readiness,
    gauge: &IntGauge,
) -> bool {
    match tokio::time::timeout(config.connect_timeout * 2, durability(config)).await {
        Ok(Ok(Some(durability))) => {
            gauge.set(i64::from(durability.durable));
            if durability.durable {
                readiness.clear_warning(DURABILITY_WARNING);
                tracing::info!(broker = %config.redacted_url(), durability = %durability.detail, "broker durability");
            } else {
                readiness.set_warning(DURABILITY_WARNING, durability.detail.clone());
                tracing::warn!(broker = %config.redacted_url(), durability = %durability.detail, "broker is not durable");
            }
            true
        }
        Ok(Ok(None)) => true,
        Ok(Err(error)) => {
            tracing::debug!(%error, "broker durability unknown");
            false
        }
        Err(_) => {
            tracing::debug!("broker durability unknown: timed out");
            false
        }
    }
}

/// Reports the durability once the broker answers (retrying every few seconds until then or
/// until `stop`), in the background so start-up does not wait for it. Dropping the handle ends
/// the task.
pub fn spawn_durability_report(
    config: BrokerConfig,
    readiness: Readiness,
    gauge: IntGauge,
    stop: tokio_util::sync::CancellationToken,
) -> tokio_util::task::AbortOnDropHandle<()> {
    tokio_util::task::AbortOnDropHandle::new(tokio::spawn(async move {
        while !report_durability(&config, &readiness, &gauge).await {
            tokio::select! {
                () = stop.cancelled() => return,
                () = tokio::time::sleep(Duration::from_secs(5)) => {}
            }
        }
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn persistence_settings_say_what_a_crash_loses() {
        let info = "# Persistence\r\nloading:0\r\naof_enabled:0\r\naof_rewrite_in_progress:0\r\n";
        assert_eq!(info_field(info, "aof_enabled"), Some("0"));
        assert_eq!(info_field(info, "aof"), None);
        assert!(!classify(false, Some("always")).durable);
        assert!(classify(false, None).detail.contains("no AOF"));
        assert!(classify(true, Some("always")).durable);
        assert!(
            classify(true, Some("everysec"))
                .detail
                .contains("last second")
        );
        assert!(classify(true, None).durable);
    }
}

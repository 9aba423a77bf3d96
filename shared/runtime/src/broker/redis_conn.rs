//! Connecting to Redis (shared by the Streams and kombu backends): bounded connect time,
//! response timeouts set above any blocking command, and error mapping without secrets.

use std::time::Duration;

use deadpool_redis::redis::aio::MultiplexedConnection;
use deadpool_redis::redis::{self, AsyncConnectionConfig, RedisError, Value};
use deadpool_redis::{Manager, Pool, PoolError, Runtime};

use super::{BrokerConfig, BrokerError};

/// Extra time on top of a blocking command's own timeout before the client gives up on it.
const RESPONSE_MARGIN: Duration = Duration::from_secs(5);

/// A Redis endpoint: the client plus what errors may show of its URL.
#[derive(Clone)]
pub(crate) struct RedisEndpoint {
    pub client: redis::Client,
    pub redacted: String,
    pub connect_timeout: Duration,
    /// The URL's password, scrubbed from any error text.
    password: Option<String>,
}

impl RedisEndpoint {
    /// `url` is what the redis crate connects to; errors show `config.url` (redacted), which
    /// differs for `kombu+redis://`.
    pub fn open(url: &str, config: &BrokerConfig) -> Result<Self, BrokerError> {
        let connect_timeout = config.connect_timeout;
        let redacted = config.url.redacted().to_string();
        let password = config.url.password();
        let client = redis::Client::open(url).map_err(|e| BrokerError::BadUrl {
            url: redacted.clone(),
            reason: scrub(&e.to_string(), password.as_deref()),
        })?;
        Ok(RedisEndpoint {
            client,
            redacted,
            connect_timeout,
            password,
        })
    }

    /// A dedicated connection whose responses may take `blocking` plus a margin
    /// (`XREADGROUP … BLOCK`, `BLMOVE`); the redis crate's default of 500 ms would cut them.
    pub async fn connection(
        &self,
        blocking: Duration,
    ) -> Result<MultiplexedConnection, BrokerError> {
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(self.connect_timeout))
            .set_response_timeout(Some(blocking + RESPONSE_MARGIN));
        let connecting = self
            .client
            .get_multiplexed_async_connection_with_config(&config);
        match tokio::time::timeout(self.connect_timeout + Duration::from_secs(1), connecting).await
        {
            Ok(result) => result.map_err(|e| self.error(e)),
            Err(_) => Err(self.unreachable("connect timed out")),
        }
    }

    /// A pool for short commands (publish, ack); connections are made on demand.
    pub fn pool(&self, url: &str, size: usize) -> Result<Pool, BrokerError> {
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(self.connect_timeout))
            .set_response_timeout(Some(RESPONSE_MARGIN + self.connect_timeout));
        let manager = Manager::new_with_config(url, config).map_err(|e| BrokerError::BadUrl {
            url: self.redacted.clone(),
            reason: self.scrubbed(&e),
        })?;
        Pool::builder(manager)
            .max_size(size)
            .runtime(Runtime::Tokio1)
            .create_timeout(Some(self.connect_timeout))
            .wait_timeout(Some(self.connect_timeout * 2))
            .build()
            .map_err(|e| BrokerError::Protocol {
                url: self.redacted.clone(),
                reason: format!("cannot build the connection pool: {e}"),
            })
    }

    pub async fn pooled(&self, pool: &Pool) -> Result<deadpool_redis::Connection, BrokerError> {
        pool.get().await.map_err(|e| match e {
            PoolError::Backend(e) => self.error(e),
            PoolError::Timeout(_) => self.unreachable("timed out getting a connection"),
            other => self.unreachable(&other.to_string()),
        })
    }

    /// Connection trouble is `Unreachable` (retry later); anything else is `Protocol`.
    pub fn error(&self, e: RedisError) -> BrokerError {
        if is_connection_error(&e) {
            self.unreachable(&self.scrubbed(&e))
        } else {
            BrokerError::Protocol {
                url: self.redacted.clone(),
                reason: self.scrubbed(&e),
            }
        }
    }

    pub fn unreachable(&self, reason: &str) -> BrokerError {
        BrokerError::Unreachable {
            url: self.redacted.clone(),
            reason: reason.to_string(),
        }
    }

    pub fn protocol(&self, reason: impl Into<String>) -> BrokerError {
        BrokerError::Protocol {
            url: self.redacted.clone(),
            reason: reason.into(),
        }
    }

    fn scrubbed(&self, e: &RedisError) -> String {
        scrub(&e.to_string(), self.password.as_deref())
    }
}

/// True when the connection itself failed, so it must be replaced.
pub(crate) fn is_connection_error(e: &RedisError) -> bool {
    e.is_io_error()
        || e.is_connection_dropped()
        || e.is_connection_refusal()
        || e.is_timeout()
        || e.is_unrecoverable_error()
}

fn scrub(text: &str, password: Option<&str>) -> String {
    match password {
        Some(p) => text.replace(p, "***"),
        None => text.to_string(),
    }
}

/// Bytes of a bulk/simple string reply.
pub(crate) fn value_bytes(value: &Value) -> Option<&[u8]> {
    match value {
        Value::BulkString(b) => Some(b),
        Value::SimpleString(s) => Some(s.as_bytes()),
        Value::VerbatimString { text, .. } => Some(text.as_bytes()),
        _ => None,
    }
}

pub(crate) fn value_string(value: &Value) -> Option<String> {
    value_bytes(value).map(|b| String::from_utf8_lossy(b).into_owned())
}

pub(crate) fn value_int(value: &Value) -> Option<i64> {
    match value {
        Value::Int(i) => Some(*i),
        other => value_string(other)?.parse().ok(),
    }
}

/// Items of an array-like reply (arrays, sets, and maps flattened to key, value, ...).
pub(crate) fn value_items(value: &Value) -> Vec<&Value> {
    match value {
        Value::Array(items) | Value::Set(items) => items.iter().collect(),
        Value::Map(pairs) => pairs.iter().flat_map(|(k, v)| [k, v]).collect(),
        _ => Vec::new(),
    }
}

/// Looks up `key` in a flat key/value reply such as `XINFO GROUPS` entries.
pub(crate) fn field<'a>(items: &[&'a Value], key: &str) -> Option<&'a Value> {
    items
        .chunks(2)
        .find(|pair| pair.first().and_then(|k| value_bytes(k)) == Some(key.as_bytes()))
        .and_then(|pair| pair.get(1).copied())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_scrubbed_from_errors() {
        assert_eq!(
            scrub("auth failed for s3cret", Some("s3cret")),
            "auth failed for ***"
        );
    }
}

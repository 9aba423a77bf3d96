//! Brokers: publish messages (each a batch of frames or rows) and consume them with
//! acknowledgement. The URL picks the backend; services never name one.
//!
//! | URL | backend |
//! |---|---|
//! | `redis://`, `rediss://` | Redis Streams: `XADD` with approximate `MAXLEN`, consumer groups, `XACK`, `XAUTOCLAIM` |
//! | `amqp://`, `amqps://` | RabbitMQ: durable quorum queue bound to a durable exchange, confirms, prefetch, DLQ |
//! | `memory://NAME` | bounded in-process channel (embedded pipeline, tests) |
//! | `kombu+redis://` | the original's kombu envelope on a Redis list (`NEW_PACKETS`) |
//!
//! A message body is opaque bytes here; [`codec`] turns frames and rows into bodies and back.

pub mod codec;
mod memory;

use std::time::Duration;

pub use memory::{
    MemoryConsumer, MemoryPublisher, dead_letters as memory_dead_letters, forget as forget_memory,
};

/// Where and how to talk to a broker. Names default to the original's (`NEW_PACKETS`).
#[derive(Debug, Clone)]
pub struct BrokerConfig {
    /// Broker URL; the scheme picks the backend.
    pub url: String,
    /// Redis stream / AMQP queue / kombu list to publish to or consume from.
    pub stream: String,
    /// AMQP exchange (and kombu exchange name in the envelope).
    pub exchange: String,
    /// AMQP routing key.
    pub routing_key: String,
    /// Consumer group (Redis Streams).
    pub group: String,
    /// This consumer's name inside the group (unique per process).
    pub consumer: String,
    /// Where poison messages go, with their reason.
    pub dead_letter: String,
    /// Approximate cap on the stream length for producers (Redis `MAXLEN ~`); `None` = no cap.
    pub max_len: Option<usize>,
    /// Messages a consumer may hold unacknowledged (AMQP prefetch; Redis `COUNT`).
    pub prefetch: u16,
    /// Pending entries idle this long are reclaimed from a dead consumer (`XAUTOCLAIM`).
    pub claim_idle: Duration,
    /// How long one `receive` waits for new messages before returning an empty batch.
    pub block: Duration,
    /// Capacity of a `memory://` channel, in messages.
    pub memory_capacity: usize,
}

impl BrokerConfig {
    pub fn new(url: impl Into<String>) -> Self {
        BrokerConfig {
            url: url.into(),
            stream: "NEW_PACKETS".into(),
            exchange: "NEW_PACKETS".into(),
            routing_key: "NEW_PACKETS".into(),
            group: "netpipe-processor".into(),
            consumer: default_consumer_name(),
            dead_letter: "NEW_PACKETS.dead".into(),
            max_len: Some(1_000_000),
            prefetch: 64,
            claim_idle: Duration::from_secs(30),
            block: Duration::from_millis(1000),
            memory_capacity: 1024,
        }
    }

    /// The URL with any password replaced by `***`, for logs and errors.
    pub fn redacted_url(&self) -> String {
        redact_url(&self.url)
    }
}

/// `host-pid`, unique per process on a host.
pub fn default_consumer_name() -> String {
    let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "netpipe".into());
    format!("{host}-{}", std::process::id())
}

/// Replaces the password of `scheme://user:password@host` with `***`.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let Some((userinfo, host)) = rest.split_once('@') else {
        return url.to_string();
    };
    match userinfo.split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:***@{host}"),
        None => url.to_string(),
    }
}

/// Broker failures. Connection problems are retryable; configuration problems are not.
#[derive(Debug, thiserror::Error)]
pub enum BrokerError {
    #[error("invalid broker URL {url}: {reason}")]
    BadUrl { url: String, reason: String },
    #[error(
        "unsupported broker URL scheme in {url} (use redis://, rediss://, amqp://, amqps://, memory://, kombu+redis://)"
    )]
    UnsupportedScheme { url: String },
    #[error("broker {url} unreachable: {reason}")]
    Unreachable { url: String, reason: String },
    #[error("broker {url} rejected the message: {reason}")]
    Rejected { url: String, reason: String },
    #[error("broker {url}: {reason}")]
    Protocol { url: String, reason: String },
    /// The in-process channel was closed (the other side has shut down).
    #[error("memory broker {name} is closed")]
    Closed { name: String },
}

impl BrokerError {
    /// True when retrying later may succeed (the broker is down or restarting).
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            BrokerError::Unreachable { .. } | BrokerError::Protocol { .. }
        )
    }
}

/// Identifies a received message for acknowledgement, per backend.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AckToken {
    /// Redis stream entry id.
    Redis(String),
    /// AMQP delivery tag.
    Amqp(u64),
    /// In-process message number.
    Memory(u64),
    /// kombu delivery tag (uuid) of a list element.
    Kombu(String),
}

/// One consumed message.
#[derive(Debug, Clone)]
pub struct Message {
    pub body: Vec<u8>,
    pub token: AckToken,
    /// True when the broker says this message was delivered before (reclaimed / requeued).
    pub redelivered: bool,
}

/// Publishes message bodies. Returns only once the broker has accepted the message
/// (Redis reply, AMQP publisher confirm, channel send).
#[derive(Debug, Clone)]
pub enum Publisher {
    Memory(MemoryPublisher),
}

impl Publisher {
    pub async fn connect(config: &BrokerConfig) -> Result<Self, BrokerError> {
        match scheme(&config.url)? {
            Scheme::Memory(name) => Ok(Publisher::Memory(MemoryPublisher::connect(
                &name,
                config.memory_capacity,
            ))),
        }
    }

    /// Publishes one message (one batch).
    pub async fn publish(&self, body: Vec<u8>) -> Result<(), BrokerError> {
        match self {
            Publisher::Memory(p) => p.publish(body).await,
        }
    }

    /// Checks that the broker answers (for `/ready`).
    pub async fn ping(&self) -> Result<(), BrokerError> {
        match self {
            Publisher::Memory(p) => p.ping(),
        }
    }
}

/// Consumes messages; each must be acknowledged (or dead-lettered) once what it became is durable.
#[derive(Debug)]
pub enum Consumer {
    Memory(MemoryConsumer),
}

impl Consumer {
    pub async fn connect(config: &BrokerConfig) -> Result<Self, BrokerError> {
        match scheme(&config.url)? {
            Scheme::Memory(name) => Ok(Consumer::Memory(MemoryConsumer::connect(&name, config))),
        }
    }

    /// Up to `max` messages; waits at most `BrokerConfig::block` and returns an empty batch then.
    /// Returns `BrokerError::Closed` once a memory channel is closed and drained.
    pub async fn receive(&mut self, max: usize) -> Result<Vec<Message>, BrokerError> {
        match self {
            Consumer::Memory(c) => c.receive(max).await,
        }
    }

    /// Acknowledges messages: the broker may forget them.
    pub async fn ack(&mut self, tokens: &[AckToken]) -> Result<(), BrokerError> {
        match self {
            Consumer::Memory(c) => c.ack(tokens),
        }
    }

    /// Sends a poison message to the dead-letter stream/queue with its reason, then acknowledges it.
    pub async fn dead_letter(
        &mut self,
        message: &Message,
        reason: &str,
    ) -> Result<(), BrokerError> {
        match self {
            Consumer::Memory(c) => c.dead_letter(message, reason),
        }
    }

    pub async fn ping(&mut self) -> Result<(), BrokerError> {
        match self {
            Consumer::Memory(_) => Ok(()),
        }
    }
}

enum Scheme {
    Memory(String),
}

fn scheme(url: &str) -> Result<Scheme, BrokerError> {
    let Some((scheme, rest)) = url.split_once("://") else {
        return Err(BrokerError::BadUrl {
            url: redact_url(url),
            reason: "missing scheme://".into(),
        });
    };
    match scheme {
        "memory" => {
            let name = rest.trim_end_matches('/');
            if name.is_empty() {
                return Err(BrokerError::BadUrl {
                    url: url.into(),
                    reason: "memory:// needs a name".into(),
                });
            }
            Ok(Scheme::Memory(name.to_string()))
        }
        _ => Err(BrokerError::UnsupportedScheme {
            url: redact_url(url),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(
            redact_url("amqp://guest:secret@localhost:5672/%2f"),
            "amqp://guest:***@localhost:5672/%2f"
        );
        assert_eq!(
            redact_url("redis://localhost:6379/15"),
            "redis://localhost:6379/15"
        );
        assert_eq!(redact_url("redis://:pw@h:1"), "redis://:***@h:1");
    }

    #[test]
    fn bad_urls_are_clear_errors() {
        assert!(matches!(
            scheme("localhost:6379"),
            Err(BrokerError::BadUrl { .. })
        ));
        assert!(matches!(
            scheme("mqtt://x"),
            Err(BrokerError::UnsupportedScheme { .. })
        ));
        assert!(matches!(
            scheme("memory://"),
            Err(BrokerError::BadUrl { .. })
        ));
    }
}

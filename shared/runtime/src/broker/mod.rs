//! Brokers: publish messages (each a batch of frames or rows) and consume them with
//! acknowledgement. The URL picks the backend; services never name one.
//!
//! | URL | backend |
//! |---|---|
//! | `redis://`, `rediss://` | Redis Streams: `XADD` (a `MAXLEN` cap only on request), consumer groups, `XACK`, `XAUTOCLAIM`, `XTRIM MINID` of what every group acknowledged |
//! | `amqp://`, `amqps://` | RabbitMQ: durable quorum queue bound to a durable exchange, confirms, prefetch, DLQ |
//! | `memory://NAME` | bounded in-process channel (embedded pipeline, tests) |
//! | `kombu+redis://`, `kombu+rediss://` | the original's kombu envelope on a Redis list (`NEW_PACKETS`, db 15) |
//!
//! A message body is opaque bytes here; [`codec`] turns frames and rows into bodies and back.
//! docs/brokers.md describes names, guarantees and the dead-letter format per backend.

pub mod agent_stats;
mod amqp;
pub mod batch;
pub mod codec;
mod durability;
pub mod flow_batch;
mod kombu;
pub mod kombu_envelope;
mod memory;
mod redis_conn;
mod redis_streams;
mod stats;

use std::borrow::Cow;
use std::time::Duration;

pub use amqp::{AmqpConsumer, AmqpPublisher};
pub use durability::{
    DURABILITY_WARNING, Durability, durability, report_durability, spawn_durability_report,
};
pub use kombu::{KombuConsumer, KombuPublisher};
pub use memory::{
    MemoryConsumer, MemoryPublisher, dead_letters as memory_dead_letters, forget as forget_memory,
};
pub use redis_streams::{RedisStreamConsumer, RedisStreamPublisher};
pub use stats::{ConsumerStats, PublisherStats};

/// Where and how to talk to a broker. Names default to the original's (`NEW_PACKETS`).
#[derive(Debug, Clone)]
pub struct BrokerConfig {
    /// Broker URL; the scheme picks the backend.
    pub url: String,
    /// Redis stream / AMQP queue / kombu list to publish to or consume from.
    pub stream: String,
    /// AMQP exchange (and kombu exchange name in the envelope). Empty = AMQP default exchange.
    pub exchange: String,
    /// AMQP routing key.
    pub routing_key: String,
    /// Consumer group (Redis Streams).
    pub group: String,
    /// This consumer's name inside the group (unique per process).
    pub consumer: String,
    /// Where poison messages go, with their reason.
    pub dead_letter: String,
    /// Approximate cap on the stream length for producers (Redis `MAXLEN ~`); `None` (the
    /// default) = no cap, the consumers trim what is acknowledged instead. A cap may delete
    /// unread entries (counted in `PublisherStats::trimmed_unread`). Also caps the Redis
    /// dead-letter stream.
    pub max_len: Option<usize>,
    /// Consumers trim entries every group has delivered and acknowledged (Redis Streams
    /// `XTRIM MINID`), so the stream holds only the real backlog. Default true.
    pub trim_acked: bool,
    /// Messages a consumer may hold unacknowledged (AMQP prefetch; Redis `COUNT`).
    pub prefetch: u16,
    /// Pending entries idle this long are reclaimed from a dead consumer (`XAUTOCLAIM`; kombu:
    /// a consumer silent this long is dead and its processing list is taken over).
    pub claim_idle: Duration,
    /// How long one `receive` waits for new messages before returning an empty batch.
    pub block: Duration,
    /// Capacity of a `memory://` channel, in messages.
    pub memory_capacity: usize,
    /// Bound on establishing a connection (TCP + handshake); past it the broker is `Unreachable`.
    pub connect_timeout: Duration,
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
            // No blind cap: a cap deletes entries nobody has read yet.
            max_len: None,
            trim_acked: true,
            prefetch: 64,
            claim_idle: Duration::from_secs(30),
            block: Duration::from_millis(1000),
            memory_capacity: 1024,
            connect_timeout: Duration::from_secs(5),
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
    let Some((userinfo, host)) = rest.rsplit_once('@') else {
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
    /// True when the broker refused our credentials (AMQP ACCESS_REFUSED, Redis WRONGPASS /
    /// NOAUTH / AuthenticationFailed): retrying cannot help, unlike a broker that is down.
    /// Judged from the broker's own words, which both clients pass through.
    pub fn is_auth_failure(&self) -> bool {
        let reason = match self {
            BrokerError::Unreachable { reason, .. } | BrokerError::Protocol { reason, .. } => {
                reason
            }
            _ => return false,
        };
        [
            "ACCESS_REFUSED",
            "ACCESS-REFUSED",
            "WRONGPASS",
            "NOAUTH",
            "AuthenticationFailed",
        ]
        .iter()
        .any(|marker| reason.contains(marker))
    }

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
    /// AMQP delivery tag, valid only on the connection (`session`) that delivered it.
    Amqp { session: u64, tag: u64 },
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
/// (Redis reply, AMQP publisher confirm, channel send). Clones share connections, and
/// `publish` may run concurrently from several tasks (several messages in flight).
#[derive(Debug, Clone)]
pub enum Publisher {
    Memory(MemoryPublisher),
    RedisStreams(RedisStreamPublisher),
    Amqp(AmqpPublisher),
    Kombu(KombuPublisher),
}

impl Publisher {
    pub async fn connect(config: &BrokerConfig) -> Result<Self, BrokerError> {
        match scheme(&config.url)? {
            Scheme::Memory(name) => Ok(Publisher::Memory(MemoryPublisher::connect(
                &name,
                config.memory_capacity,
            ))),
            Scheme::Redis(url) => Ok(Publisher::RedisStreams(
                RedisStreamPublisher::connect(&url, config).await?,
            )),
            Scheme::Amqp(url) => Ok(Publisher::Amqp(AmqpPublisher::connect(&url, config).await?)),
            Scheme::Kombu(url) => Ok(Publisher::Kombu(
                KombuPublisher::connect(&url, config).await?,
            )),
        }
    }

    /// Publishes one message (one batch). A borrowed body is copied only where the broker
    /// keeps it (`memory://`); a caller that may have to retry keeps its body and lends it.
    pub async fn publish(&self, body: impl Into<Cow<'_, [u8]>>) -> Result<(), BrokerError> {
        let body = body.into();
        match self {
            Publisher::Memory(p) => p.publish(body.into_owned()).await,
            Publisher::RedisStreams(p) => p.publish(&body).await,
            Publisher::Amqp(p) => p.publish(&body).await,
            Publisher::Kombu(p) => p.publish(&body).await,
        }
    }

    /// Messages the broker holds for consumers (Redis Streams: `XLEN`, which the consumers keep
    /// down to what is not yet acknowledged). `None` where the backend does not tell.
    pub async fn backlog(&self) -> Result<Option<u64>, BrokerError> {
        match self {
            Publisher::RedisStreams(p) => p.backlog().await.map(Some),
            Publisher::Memory(_) | Publisher::Amqp(_) | Publisher::Kombu(_) => Ok(None),
        }
    }

    /// Checks that the broker answers (for `/ready`).
    pub async fn ping(&self) -> Result<(), BrokerError> {
        match self {
            Publisher::Memory(p) => p.ping(),
            Publisher::RedisStreams(p) => p.ping().await,
            Publisher::Amqp(p) => p.ping().await,
            Publisher::Kombu(p) => p.ping().await,
        }
    }

    /// Counters since connect (shared by clones), for metrics.
    pub fn stats(&self) -> PublisherStats {
        match self {
            Publisher::Memory(p) => p.stats(),
            Publisher::RedisStreams(p) => p.stats(),
            Publisher::Amqp(p) => p.stats(),
            Publisher::Kombu(p) => p.stats(),
        }
    }
}

/// Consumes messages; each must be acknowledged (or dead-lettered) once what it became is durable.
// One consumer per service: its size does not matter, and boxing would only add indirection.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum Consumer {
    Memory(MemoryConsumer),
    RedisStreams(RedisStreamConsumer),
    Amqp(AmqpConsumer),
    Kombu(KombuConsumer),
}

impl Consumer {
    pub async fn connect(config: &BrokerConfig) -> Result<Self, BrokerError> {
        match scheme(&config.url)? {
            Scheme::Memory(name) => Ok(Consumer::Memory(MemoryConsumer::connect(&name, config))),
            Scheme::Redis(url) => Ok(Consumer::RedisStreams(
                RedisStreamConsumer::connect(&url, config).await?,
            )),
            Scheme::Amqp(url) => Ok(Consumer::Amqp(AmqpConsumer::connect(&url, config).await?)),
            Scheme::Kombu(url) => Ok(Consumer::Kombu(KombuConsumer::connect(&url, config).await?)),
        }
    }

    /// Up to `max` messages; waits at most `BrokerConfig::block` and returns an empty batch then.
    /// Returns `BrokerError::Closed` once a memory channel is closed and drained.
    /// After a connection failure (`Unreachable`), the next call reconnects.
    pub async fn receive(&mut self, max: usize) -> Result<Vec<Message>, BrokerError> {
        match self {
            Consumer::Memory(c) => c.receive(max).await,
            Consumer::RedisStreams(c) => c.receive(max).await,
            Consumer::Amqp(c) => c.receive(max).await,
            Consumer::Kombu(c) => c.receive(max).await,
        }
    }

    /// Acknowledges messages: the broker may forget them.
    pub async fn ack(&mut self, tokens: &[AckToken]) -> Result<(), BrokerError> {
        match self {
            Consumer::Memory(c) => c.ack(tokens),
            Consumer::RedisStreams(c) => c.ack(tokens).await,
            Consumer::Amqp(c) => c.ack(tokens).await,
            Consumer::Kombu(c) => c.ack(tokens).await,
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
            Consumer::RedisStreams(c) => c.dead_letter(message, reason).await,
            Consumer::Amqp(c) => c.dead_letter(message, reason).await,
            Consumer::Kombu(c) => c.dead_letter(message, reason).await,
        }
    }

    /// Messages waiting on the broker that no consumer of this group/queue has received yet
    /// (Redis: the group's `lag`; RabbitMQ: the queue's ready messages; kombu: the list length;
    /// memory: the channel's queued messages). `None` when the broker cannot tell (Redis < 7).
    pub async fn lag(&mut self) -> Result<Option<u64>, BrokerError> {
        match self {
            Consumer::Memory(c) => Ok(Some(c.lag().await)),
            Consumer::RedisStreams(c) => c.lag().await,
            Consumer::Amqp(c) => c.lag().await,
            Consumer::Kombu(c) => c.lag().await,
        }
    }

    /// Messages of the group delivered to some consumer and not yet acknowledged (Redis:
    /// `XINFO GROUPS` `pending`); `None` where the backend does not tell.
    pub async fn group_pending(&mut self) -> Result<Option<u64>, BrokerError> {
        match self {
            Consumer::RedisStreams(c) => c.group_pending().await,
            Consumer::Memory(_) | Consumer::Amqp(_) | Consumer::Kombu(_) => Ok(None),
        }
    }

    pub async fn ping(&mut self) -> Result<(), BrokerError> {
        match self {
            Consumer::Memory(_) => Ok(()),
            Consumer::RedisStreams(c) => c.ping().await,
            Consumer::Amqp(c) => c.ping().await,
            Consumer::Kombu(c) => c.ping().await,
        }
    }

    /// Counters since connect, for metrics.
    pub fn stats(&self) -> ConsumerStats {
        match self {
            Consumer::Memory(c) => c.stats(),
            Consumer::RedisStreams(c) => c.stats(),
            Consumer::Amqp(c) => c.stats(),
            Consumer::Kombu(c) => c.stats(),
        }
    }

    /// Closes the connection cleanly. AMQP requeues what was not acknowledged; the other
    /// backends keep unacknowledged messages pending for this consumer name.
    pub async fn close(self) {
        if let Consumer::Amqp(c) = self {
            c.close().await;
        }
    }
}

enum Scheme {
    Memory(String),
    /// A `redis://` / `rediss://` URL for the redis crate.
    Redis(String),
    Amqp(String),
    /// The `redis://` URL behind `kombu+redis://`, with the db defaulted to 15.
    Kombu(String),
}

fn bad_url(url: &str, reason: impl Into<String>) -> BrokerError {
    BrokerError::BadUrl {
        url: redact_url(url),
        reason: reason.into(),
    }
}

fn scheme(url: &str) -> Result<Scheme, BrokerError> {
    let Some((scheme, rest)) = url.split_once("://") else {
        return Err(bad_url(url, "missing scheme://"));
    };
    match scheme {
        "memory" => {
            let name = rest.trim_end_matches('/');
            if name.is_empty() {
                return Err(bad_url(url, "memory:// needs a name"));
            }
            Ok(Scheme::Memory(name.to_string()))
        }
        "redis" | "rediss" => {
            require_host(url, rest)?;
            Ok(Scheme::Redis(url.to_string()))
        }
        "amqp" | "amqps" => {
            require_host(url, rest)?;
            Ok(Scheme::Amqp(url.to_string()))
        }
        "kombu+redis" | "kombu+rediss" => {
            require_host(url, rest)?;
            let inner_scheme = scheme.trim_start_matches("kombu+");
            Ok(Scheme::Kombu(kombu_redis_url(inner_scheme, rest)))
        }
        _ => Err(BrokerError::UnsupportedScheme {
            url: redact_url(url),
        }),
    }
}

/// Checks a broker URL's syntax (scheme, host) without connecting: services call it before they
/// create anything, so a typo fails at start with nothing written.
pub fn check_url(url: &str) -> Result<(), BrokerError> {
    scheme(url).map(|_| ())
}

/// `host[:port][/db]` must at least name a host.
fn require_host(url: &str, rest: &str) -> Result<(), BrokerError> {
    let authority = rest.split(['/', '?']).next().unwrap_or("");
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    if host.is_empty() || host.starts_with(':') {
        return Err(bad_url(url, "no host after scheme://"));
    }
    Ok(())
}

/// kombu's Redis transport defaults to db 0, but the original always used db 15.
fn kombu_redis_url(inner_scheme: &str, rest: &str) -> String {
    let (path_part, query) = match rest.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (rest, None),
    };
    let (authority, db) = match path_part.split_once('/') {
        Some((a, db)) if !db.trim_matches('/').is_empty() => (a, db.trim_matches('/')),
        Some((a, _)) => (a, "15"),
        None => (path_part, "15"),
    };
    match query {
        Some(q) => format!("{inner_scheme}://{authority}/{db}?{q}"),
        None => format!("{inner_scheme}://{authority}/{db}"),
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
        assert!(matches!(
            scheme("redis://"),
            Err(BrokerError::BadUrl { .. })
        ));
        assert!(matches!(
            scheme("amqp://user:pw@/vhost"),
            Err(BrokerError::BadUrl { .. })
        ));
    }

    #[test]
    fn kombu_urls_default_to_db_15() {
        let url = |u: &str| match scheme(u) {
            Ok(Scheme::Kombu(url)) => url,
            _ => panic!("not a kombu url: {u}"),
        };
        assert_eq!(
            url("kombu+redis://localhost:6379"),
            "redis://localhost:6379/15"
        );
        assert_eq!(
            url("kombu+redis://localhost:6379/"),
            "redis://localhost:6379/15"
        );
        assert_eq!(url("kombu+redis://h:1/3"), "redis://h:1/3");
        assert_eq!(url("kombu+rediss://:pw@h:1/3"), "rediss://:pw@h:1/3");
    }

    #[test]
    fn passwords_with_at_signs_are_redacted() {
        assert_eq!(redact_url("redis://u:p@ss@h:1/0"), "redis://u:***@h:1/0");
    }
}

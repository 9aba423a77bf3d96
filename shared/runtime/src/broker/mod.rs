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
//! The URL also picks the wire format ([`codec::WireFormat`]): frames cross `memory://`
//! unserialised, as JSON frame batches over Redis Streams and AMQP, and as the original's
//! per-packet messages in kombu's envelope over `kombu+redis://`. [`arrival`] decodes what a
//! consumer received into a typed [`arrival::Arrived`] (or a dead-letter reason).
//! docs/brokers.md describes names, guarantees and the dead-letter format per backend.

pub mod agent_stats;
mod amqp;
pub mod arrival;
pub mod codec;
mod durability;
pub mod flow_batch;
mod kombu;
pub mod kombu_envelope;
mod memory;
mod redis_conn;
mod redis_streams;
mod stats;
pub mod url;

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
pub use url::{Backend, BrokerUrl, Endpoint, redact as redact_url};

/// Where and how to talk to a broker. Names default to the original's (`NEW_PACKETS`).
#[derive(Debug, Clone)]
pub struct BrokerConfig {
    /// Broker URL; its scheme picks the backend and the wire format.
    pub url: BrokerUrl,
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
    /// Capacity of a `memory://` channel, in messages (batches): enough to keep both sides
    /// busy, small enough that the embedded pipeline's memory stays bounded (a frame batch is
    /// up to `--batch-size` frames held as they are).
    pub memory_capacity: usize,
    /// Bound on establishing a connection (TCP + handshake); past it the broker is `Unreachable`.
    pub connect_timeout: Duration,
}

impl BrokerConfig {
    pub fn new(url: BrokerUrl) -> Self {
        BrokerConfig {
            url,
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
            memory_capacity: 16,
            connect_timeout: Duration::from_secs(5),
        }
    }

    /// Parses `url` and takes the defaults; a bad URL is one clear error.
    pub fn parse(url: impl AsRef<str>) -> Result<Self, BrokerError> {
        BrokerUrl::parse(url.as_ref()).map(BrokerConfig::new)
    }

    /// The URL with any password replaced by `***`, for logs and errors.
    pub fn redacted_url(&self) -> String {
        self.url.redacted().to_string()
    }
}

/// `host-pid`, unique per process on a host.
pub fn default_consumer_name() -> String {
    let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "netpipe".into());
    format!("{host}-{}", std::process::id())
}

/// Broker failures. Connection problems are retryable; configuration problems are not.
#[derive(Debug, thiserror::Error)]
pub enum BrokerError {
    #[error("invalid broker URL {url}: {reason}")]
    BadUrl { url: String, reason: String },
    #[error(
        "unsupported scheme in broker URL {url} (use redis://, rediss://, amqp://, amqps://, memory://, kombu+redis://)"
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
    /// The encoded body; empty when `frames` holds the content.
    pub body: Vec<u8>,
    /// Frames that crossed a `memory://` channel unserialised.
    pub frames: Option<arrival::FrameBatch>,
    pub token: AckToken,
    /// True when the broker says this message was delivered before (reclaimed / requeued).
    pub redelivered: bool,
}

impl Message {
    /// A message received as bytes.
    pub fn encoded(body: Vec<u8>, token: AckToken, redelivered: bool) -> Self {
        Message {
            body,
            frames: None,
            token,
            redelivered,
        }
    }

    /// A message that carries frames unserialised.
    pub fn frames(frames: arrival::FrameBatch, token: AckToken) -> Self {
        Message {
            body: Vec::new(),
            frames: Some(frames),
            token,
            redelivered: false,
        }
    }

    /// The body as bytes (frames are encoded as a JSON batch), e.g. for a dead-letter stream.
    pub fn bytes(&self) -> Cow<'_, [u8]> {
        match &self.frames {
            Some(frames) => Cow::Owned(codec::encode_frames(frames)),
            None => Cow::Borrowed(&self.body),
        }
    }
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
        let url = &config.url;
        Ok(match (url.backend(), url.is_kombu()) {
            (Backend::Memory, _) => Publisher::Memory(MemoryPublisher::connect(
                url.target(),
                config.memory_capacity,
            )),
            (Backend::Redis, false) => {
                Publisher::RedisStreams(RedisStreamPublisher::connect(url.target(), config).await?)
            }
            (Backend::Redis, true) => {
                Publisher::Kombu(KombuPublisher::connect(url.target(), config).await?)
            }
            (Backend::Amqp, _) => {
                Publisher::Amqp(AmqpPublisher::connect(url.target(), config).await?)
            }
        })
    }

    /// Publishes one message (one batch). A borrowed body is copied only where the broker
    /// keeps it (`memory://`); a caller that may have to retry keeps its body and lends it.
    pub async fn publish(&self, body: impl Into<Cow<'_, [u8]>>) -> Result<(), BrokerError> {
        let body = body.into();
        match self {
            Publisher::Memory(p) => p.publish(codec::Payload::Bytes(body.into_owned())).await,
            Publisher::RedisStreams(p) => p.publish(&body).await,
            Publisher::Amqp(p) => p.publish(&body).await,
            Publisher::Kombu(p) => p.publish(&body).await,
        }
    }

    /// Publishes one message a [`codec::FrameCodec`] made: `memory://` takes the frames as they
    /// are (a shared pointer, no copy); the other backends send the encoded body.
    pub async fn publish_payload(&self, payload: &codec::Payload) -> Result<(), BrokerError> {
        match (self, payload) {
            (Publisher::Memory(p), payload) => p.publish(payload.clone()).await,
            (_, codec::Payload::Bytes(body)) => self.publish(&body[..]).await,
            (_, codec::Payload::Frames(frames)) => self.publish(codec::encode_frames(frames)).await,
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
        let url = &config.url;
        Ok(match (url.backend(), url.is_kombu()) {
            (Backend::Memory, _) => Consumer::Memory(MemoryConsumer::connect(url.target(), config)),
            (Backend::Redis, false) => {
                Consumer::RedisStreams(RedisStreamConsumer::connect(url.target(), config).await?)
            }
            (Backend::Redis, true) => {
                Consumer::Kombu(KombuConsumer::connect(url.target(), config).await?)
            }
            (Backend::Amqp, _) => {
                Consumer::Amqp(AmqpConsumer::connect(url.target(), config).await?)
            }
        })
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

/// Checks a broker URL's syntax (scheme, host) without connecting: services call it before they
/// create anything, so a typo fails at start with nothing written.
pub fn check_url(url: &str) -> Result<(), BrokerError> {
    BrokerUrl::parse(url).map(|_| ())
}

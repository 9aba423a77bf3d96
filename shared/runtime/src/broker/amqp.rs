//! `amqp://` / `amqps://`: RabbitMQ with lapin.
//!
//! Topology (declared by publishers and consumers alike, idempotently):
//! - durable quorum queue `stream`, with `x-dead-letter-exchange = ""` and
//!   `x-dead-letter-routing-key = dead_letter` so broker-side rejections land in the DLQ too;
//! - durable quorum queue `dead_letter`;
//! - durable `direct` exchange `exchange`, with `stream` bound under `routing_key`
//!   (an empty exchange name means the default exchange: publish straight to the queue).
//!
//! A queue or exchange that already exists is used as it is (checked with a passive declare
//! first), so a `NEW_PACKETS` exchange left by the original as `topic` keeps working: a topic
//! binding without wildcards routes exactly like a direct one.
//!
//! Messages are persistent (`delivery_mode` 2) and mandatory; `publish` returns after the
//! publisher confirm; a nack or an unroutable return is `Rejected`. Consumers use prefetch
//! (`basic_qos`) and manual acks; a dead letter is republished to the DLQ with its reason in
//! the `x-netpipe-reason` header (confirmed), then the original is acked.

use std::sync::Arc;
use std::time::Duration;

use futures::{FutureExt, StreamExt};
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicPublishOptions, BasicQosOptions,
    ConfirmSelectOptions, ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions,
};
use lapin::protocol::{AMQPErrorKind, AMQPSoftError};
use lapin::types::{AMQPValue, FieldTable, LongString, ShortString};
use lapin::uri::AMQPUri;
use lapin::{
    BasicProperties, Channel, Confirmation, Connection, ConnectionProperties, ErrorKind,
    ExchangeKind,
};

use super::stats::PublisherCounters;
use super::{AckToken, BrokerConfig, BrokerError, ConsumerStats, Message, PublisherStats};

/// Header names on dead-lettered messages.
pub const REASON_HEADER: &str = "x-netpipe-reason";
pub const QUEUE_HEADER: &str = "x-netpipe-queue";
pub const CONSUMER_HEADER: &str = "x-netpipe-consumer";

/// Connection details and names, shared by publishers and consumers.
#[derive(Clone)]
struct Endpoint {
    uri: AMQPUri,
    redacted: String,
    password: Option<String>,
    connect_timeout: Duration,
    exchange: String,
    routing_key: String,
    queue: String,
    dead_letter: String,
}

impl Endpoint {
    fn new(url: &str, config: &BrokerConfig) -> Result<Self, BrokerError> {
        let redacted = config.url.redacted().to_string();
        let uri: AMQPUri = url.parse().map_err(|reason: String| BrokerError::BadUrl {
            url: redacted.clone(),
            reason,
        })?;
        let password = Some(uri.authority.userinfo.password.clone()).filter(|p| !p.is_empty());
        Ok(Endpoint {
            uri,
            redacted,
            password,
            connect_timeout: config.connect_timeout,
            exchange: config.exchange.clone(),
            routing_key: config.routing_key.clone(),
            queue: config.stream.clone(),
            dead_letter: config.dead_letter.clone(),
        })
    }

    /// Where publishes go: the exchange with the routing key, or the queue itself.
    fn publish_route(&self) -> (ShortString, ShortString) {
        if self.exchange.is_empty() {
            ("".into(), self.queue.as_str().into())
        } else {
            (
                self.exchange.as_str().into(),
                self.routing_key.as_str().into(),
            )
        }
    }

    /// Connects (bounded by `connect_timeout`) and declares the topology.
    async fn connect(&self) -> Result<Connection, BrokerError> {
        let properties = ConnectionProperties::default().with_connection_name("netpipe".into());
        let connecting = Connection::connect_uri(self.uri.clone(), properties);
        let connection = match tokio::time::timeout(self.connect_timeout, connecting).await {
            Ok(result) => result.map_err(|e| self.error(&e))?,
            Err(_) => return Err(self.unreachable("connect timed out")),
        };
        self.declare_topology(&connection)
            .await
            .map_err(|e| self.error(&e))?;
        Ok(connection)
    }

    async fn declare_topology(&self, connection: &Connection) -> Result<(), lapin::Error> {
        ensure_queue(connection, &self.dead_letter, quorum_arguments(None)).await?;
        ensure_queue(
            connection,
            &self.queue,
            quorum_arguments(Some(&self.dead_letter)),
        )
        .await?;
        if self.exchange.is_empty() {
            return Ok(());
        }
        ensure_exchange(connection, &self.exchange).await?;
        let channel = connection.create_channel().await?;
        channel
            .queue_bind(
                self.queue.as_str().into(),
                self.exchange.as_str().into(),
                self.routing_key.as_str().into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await?;
        close_quietly(&channel).await;
        Ok(())
    }

    /// Connection trouble is `Unreachable`; errors the broker reports are `Protocol`.
    fn error(&self, e: &lapin::Error) -> BrokerError {
        let text = match &self.password {
            Some(p) => e.to_string().replace(p.as_str(), "***"),
            None => e.to_string(),
        };
        match e.kind() {
            ErrorKind::ProtocolError(_)
            | ErrorKind::ParsingError(_)
            | ErrorKind::SerialisationError(_) => BrokerError::Protocol {
                url: self.redacted.clone(),
                reason: text,
            },
            _ => self.unreachable(&text),
        }
    }

    fn unreachable(&self, reason: &str) -> BrokerError {
        BrokerError::Unreachable {
            url: self.redacted.clone(),
            reason: reason.to_string(),
        }
    }

    fn rejected(&self, reason: impl Into<String>) -> BrokerError {
        BrokerError::Rejected {
            url: self.redacted.clone(),
            reason: reason.into(),
        }
    }

    /// Publishes and waits for the broker's confirm (the channel must be in confirm mode).
    async fn publish_confirmed(
        &self,
        channel: &Channel,
        exchange: ShortString,
        routing_key: ShortString,
        body: &[u8],
        properties: BasicProperties,
    ) -> Result<(), BrokerError> {
        let options = BasicPublishOptions {
            mandatory: true,
            ..BasicPublishOptions::default()
        };
        let confirm = channel
            .basic_publish(exchange, routing_key, options, body, properties)
            .await
            .map_err(|e| self.error(&e))?
            .await
            .map_err(|e| self.error(&e))?;
        match confirm {
            Confirmation::Ack(None) | Confirmation::NotRequested => Ok(()),
            Confirmation::Ack(Some(returned)) => Err(self.rejected(format!(
                "unroutable (no queue bound): {}",
                returned.reply_text
            ))),
            Confirmation::Nack(_) => Err(self.rejected("the broker nacked the message")),
        }
    }
}

fn quorum_arguments(dead_letter: Option<&str>) -> FieldTable {
    let mut arguments = FieldTable::default();
    arguments.insert(
        "x-queue-type".into(),
        AMQPValue::LongString(LongString::from("quorum")),
    );
    if let Some(dead_letter) = dead_letter {
        arguments.insert(
            "x-dead-letter-exchange".into(),
            AMQPValue::LongString(LongString::from("")),
        );
        arguments.insert(
            "x-dead-letter-routing-key".into(),
            AMQPValue::LongString(LongString::from(dead_letter)),
        );
    }
    arguments
}

fn is_not_found(e: &lapin::Error) -> bool {
    matches!(e.kind(), ErrorKind::ProtocolError(amqp)
        if matches!(amqp.kind(), AMQPErrorKind::Soft(AMQPSoftError::NOTFOUND)))
}

async fn close_quietly(channel: &Channel) {
    // The channel has done its job; a failure to close it changes nothing.
    let _ = channel.close(200, "OK".into()).await;
}

/// Uses an existing queue as is; otherwise declares a durable one with `arguments`.
async fn ensure_queue(
    connection: &Connection,
    name: &str,
    arguments: FieldTable,
) -> Result<(), lapin::Error> {
    let probe = connection.create_channel().await?;
    let passive = QueueDeclareOptions {
        passive: true,
        ..QueueDeclareOptions::default()
    };
    match probe
        .queue_declare(name.into(), passive, FieldTable::default())
        .await
    {
        Ok(_) => {
            close_quietly(&probe).await;
            return Ok(());
        }
        // NOT_FOUND closes the probe channel.
        Err(e) if is_not_found(&e) => {}
        Err(e) => return Err(e),
    }
    let channel = connection.create_channel().await?;
    channel
        .queue_declare(name.into(), QueueDeclareOptions::durable(), arguments)
        .await?;
    close_quietly(&channel).await;
    Ok(())
}

/// Uses an existing exchange whatever its type; otherwise declares a durable direct one.
async fn ensure_exchange(connection: &Connection, name: &str) -> Result<(), lapin::Error> {
    let probe = connection.create_channel().await?;
    let passive = ExchangeDeclareOptions {
        passive: true,
        ..ExchangeDeclareOptions::default()
    };
    match probe
        .exchange_declare(
            name.into(),
            ExchangeKind::Direct,
            passive,
            FieldTable::default(),
        )
        .await
    {
        Ok(()) => {
            close_quietly(&probe).await;
            return Ok(());
        }
        Err(e) if is_not_found(&e) => {}
        Err(e) => return Err(e),
    }
    let channel = connection.create_channel().await?;
    let durable = ExchangeDeclareOptions {
        durable: true,
        ..ExchangeDeclareOptions::default()
    };
    channel
        .exchange_declare(
            name.into(),
            ExchangeKind::Direct,
            durable,
            FieldTable::default(),
        )
        .await?;
    close_quietly(&channel).await;
    Ok(())
}

fn persistent_json() -> BasicProperties {
    BasicProperties::default()
        .with_delivery_mode(2)
        .with_content_type("application/json".into())
}

/// A connection and its confirm-mode channel.
struct Session {
    connection: Connection,
    channel: Channel,
}

impl Session {
    fn is_usable(&self) -> bool {
        self.connection.status().connected() && self.channel.status().connected()
    }
}

async fn open_confirm_channel(
    endpoint: &Endpoint,
    connection: &Connection,
) -> Result<Channel, BrokerError> {
    let channel = connection
        .create_channel()
        .await
        .map_err(|e| endpoint.error(&e))?;
    channel
        .confirm_select(ConfirmSelectOptions::default())
        .await
        .map_err(|e| endpoint.error(&e))?;
    Ok(channel)
}

#[derive(Clone)]
pub struct AmqpPublisher {
    inner: Arc<PublisherInner>,
}

struct PublisherInner {
    endpoint: Endpoint,
    /// Reconnected lazily after a failure; publishes share the channel (many in flight).
    session: tokio::sync::Mutex<Option<Session>>,
    counters: PublisherCounters,
}

impl std::fmt::Debug for AmqpPublisher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AmqpPublisher")
            .field("url", &self.inner.endpoint.redacted)
            .field("exchange", &self.inner.endpoint.exchange)
            .finish_non_exhaustive()
    }
}

impl AmqpPublisher {
    pub async fn connect(url: &str, config: &BrokerConfig) -> Result<Self, BrokerError> {
        let endpoint = Endpoint::new(url, config)?;
        let publisher = AmqpPublisher {
            inner: Arc::new(PublisherInner {
                endpoint,
                session: tokio::sync::Mutex::new(None),
                counters: PublisherCounters::default(),
            }),
        };
        publisher.channel().await?;
        Ok(publisher)
    }

    async fn channel(&self) -> Result<Channel, BrokerError> {
        let mut session = self.inner.session.lock().await;
        if let Some(live) = session.as_ref().filter(|s| s.is_usable()) {
            return Ok(live.channel.clone());
        }
        let endpoint = &self.inner.endpoint;
        let connection = endpoint.connect().await?;
        let channel = open_confirm_channel(endpoint, &connection).await?;
        *session = Some(Session {
            connection,
            channel: channel.clone(),
        });
        Ok(channel)
    }

    pub async fn publish(&self, body: &[u8]) -> Result<(), BrokerError> {
        let channel = self.channel().await?;
        let endpoint = &self.inner.endpoint;
        let (exchange, routing_key) = endpoint.publish_route();
        endpoint
            .publish_confirmed(&channel, exchange, routing_key, body, persistent_json())
            .await?;
        self.inner.counters.count_published();
        Ok(())
    }

    pub async fn ping(&self) -> Result<(), BrokerError> {
        self.channel().await.map(|_| ())
    }

    pub fn stats(&self) -> PublisherStats {
        self.inner.counters.snapshot()
    }
}

struct ConsumerSession {
    session: Session,
    deliveries: lapin::Consumer,
    /// Distinguishes this connection's delivery tags from an earlier one's.
    id: u64,
}

pub struct AmqpConsumer {
    endpoint: Endpoint,
    consumer_tag: String,
    prefetch: u16,
    block: Duration,
    live: Option<ConsumerSession>,
    sessions_opened: u64,
    stats: ConsumerStats,
}

impl std::fmt::Debug for AmqpConsumer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AmqpConsumer")
            .field("url", &self.endpoint.redacted)
            .field("queue", &self.endpoint.queue)
            .field("consumer", &self.consumer_tag)
            .finish_non_exhaustive()
    }
}

impl AmqpConsumer {
    pub async fn connect(url: &str, config: &BrokerConfig) -> Result<Self, BrokerError> {
        let mut consumer = AmqpConsumer {
            endpoint: Endpoint::new(url, config)?,
            consumer_tag: config.consumer.clone(),
            prefetch: config.prefetch.max(1),
            block: config.block,
            live: None,
            sessions_opened: 0,
            stats: ConsumerStats::default(),
        };
        consumer.session().await?;
        Ok(consumer)
    }

    async fn session(&mut self) -> Result<&mut ConsumerSession, BrokerError> {
        let usable = self.live.as_ref().is_some_and(|l| l.session.is_usable());
        if !usable {
            self.live = None;
            let endpoint = &self.endpoint;
            let connection = endpoint.connect().await?;
            let channel = open_confirm_channel(endpoint, &connection).await?;
            channel
                .basic_qos(self.prefetch, BasicQosOptions::default())
                .await
                .map_err(|e| endpoint.error(&e))?;
            let deliveries = channel
                .basic_consume(
                    endpoint.queue.as_str().into(),
                    self.consumer_tag.as_str().into(),
                    BasicConsumeOptions::default(),
                    FieldTable::default(),
                )
                .await
                .map_err(|e| endpoint.error(&e))?;
            self.sessions_opened += 1;
            self.live = Some(ConsumerSession {
                session: Session {
                    connection,
                    channel,
                },
                deliveries,
                id: self.sessions_opened,
            });
        }
        self.live
            .as_mut()
            .ok_or_else(|| self.endpoint.unreachable("no connection"))
    }

    pub async fn receive(&mut self, max: usize) -> Result<Vec<Message>, BrokerError> {
        let block = self.block;
        self.session().await?;
        let Some(live) = self.live.as_mut() else {
            return Err(self.endpoint.unreachable("no connection"));
        };
        let id = live.id;
        let mut deliveries = Vec::new();
        let failure = match tokio::time::timeout(block, live.deliveries.next()).await {
            Err(_elapsed) => return Ok(Vec::new()),
            Ok(Some(Ok(delivery))) => {
                deliveries.push(delivery);
                None
            }
            Ok(Some(Err(e))) => Some(self.endpoint.error(&e)),
            Ok(None) => Some(
                self.endpoint
                    .unreachable("the broker cancelled the consumer"),
            ),
        };
        if let Some(error) = failure {
            self.live = None;
            return Err(error);
        }
        // Whatever else has already arrived, without waiting.
        while deliveries.len() < max {
            match live.deliveries.next().now_or_never() {
                Some(Some(Ok(delivery))) => deliveries.push(delivery),
                _ => break,
            }
        }
        let messages: Vec<Message> = deliveries
            .into_iter()
            .map(|d| {
                let token = AckToken::Amqp {
                    session: id,
                    tag: d.delivery_tag,
                };
                Message::encoded(d.data, token, d.redelivered)
            })
            .collect();
        self.stats.received += messages.len() as u64;
        self.stats.redelivered += messages.iter().filter(|m| m.redelivered).count() as u64;
        Ok(messages)
    }

    /// The live channel if `token` was delivered on it; `None` when that connection is gone
    /// (the broker has requeued the message already).
    fn channel_for(&mut self, token: &AckToken) -> Result<Option<Channel>, BrokerError> {
        let AckToken::Amqp { session, .. } = token else {
            return Err(BrokerError::Protocol {
                url: self.endpoint.redacted.clone(),
                reason: format!("not an AMQP token: {token:?}"),
            });
        };
        match &self.live {
            Some(live) if live.id == *session => Ok(Some(live.session.channel.clone())),
            _ => {
                self.stats.stale_acks += 1;
                Ok(None)
            }
        }
    }

    pub async fn ack(&mut self, tokens: &[AckToken]) -> Result<(), BrokerError> {
        for token in tokens {
            let Some(channel) = self.channel_for(token)? else {
                continue;
            };
            if let AckToken::Amqp { tag, .. } = token {
                let acked = channel.basic_ack(*tag, BasicAckOptions::default()).await;
                if let Err(e) = acked {
                    self.live = None;
                    return Err(self.endpoint.error(&e));
                }
            }
        }
        Ok(())
    }

    pub async fn dead_letter(
        &mut self,
        message: &Message,
        reason: &str,
    ) -> Result<(), BrokerError> {
        let Some(channel) = self.channel_for(&message.token)? else {
            // It will be delivered again and dead-lettered then.
            return Ok(());
        };
        let mut headers = FieldTable::default();
        let text = |s: &str| AMQPValue::LongString(LongString::from(s));
        headers.insert(REASON_HEADER.into(), text(reason));
        headers.insert(QUEUE_HEADER.into(), text(&self.endpoint.queue));
        headers.insert(CONSUMER_HEADER.into(), text(&self.consumer_tag));
        let properties = persistent_json().with_headers(headers);
        let endpoint = &self.endpoint;
        endpoint
            .publish_confirmed(
                &channel,
                "".into(),
                endpoint.dead_letter.as_str().into(),
                &message.body,
                properties,
            )
            .await?;
        self.stats.dead_lettered += 1;
        self.ack(std::slice::from_ref(&message.token)).await
    }

    pub async fn ping(&mut self) -> Result<(), BrokerError> {
        self.session().await.map(|_| ())
    }

    /// The queue's ready messages (a passive declare on the consuming channel).
    pub async fn lag(&mut self) -> Result<Option<u64>, BrokerError> {
        let channel = self.session().await?.session.channel.clone();
        let passive = QueueDeclareOptions {
            passive: true,
            ..QueueDeclareOptions::default()
        };
        let declared = channel
            .queue_declare(
                self.endpoint.queue.as_str().into(),
                passive,
                FieldTable::default(),
            )
            .await;
        match declared {
            Ok(queue) => Ok(Some(u64::from(queue.message_count()))),
            Err(e) => {
                let error = self.endpoint.error(&e);
                // A failed declare closes the channel; reconnect on the next call.
                self.live = None;
                Err(error)
            }
        }
    }

    pub fn stats(&self) -> ConsumerStats {
        self.stats
    }

    /// Closes the channel and connection; unacknowledged messages go back to the queue.
    pub async fn close(mut self) {
        if let Some(live) = self.live.take() {
            close_quietly(&live.session.channel).await;
            // Closing a connection that is already gone has nothing left to do.
            let _ = live.session.connection.close(200, "OK".into()).await;
        }
    }
}

//! `kombu+redis://host:port/db` (db 15 by default): the original's wire format, so Python
//! kombu producers and consumers can share the list with us.
//!
//! Publisher: `LPUSH <queue> <envelope>` (FIFO with the consumers' right-hand pops), and the
//! `_kombu.binding.<exchange>` member a kombu producer keeps.
//! Consumer: reliable pop. `BLMOVE <queue> <processing> RIGHT LEFT` moves each element to this
//! consumer's processing list; `ack` removes it there. A consumer refreshes a heartbeat key while
//! it runs; elements in the processing list of a consumer whose heartbeat expired (`claim_idle`)
//! are taken over, and on start a consumer re-delivers its own leftovers first.
//! Elements that are not kombu envelopes are moved to the dead-letter list with their reason
//! (counted as `malformed`), never handed out and never dropped.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use deadpool_redis::Pool;
use deadpool_redis::redis::aio::MultiplexedConnection;
use deadpool_redis::redis::{self, RedisError, Value};
use serde_json::{Map, Value as Json};

use super::kombu_envelope::{
    decode_kombu_envelope, encode_kombu_envelope, encode_with_headers, kombu_binding_member,
    new_delivery_tag,
};
use super::redis_conn::{
    RedisEndpoint, is_connection_error, value_bytes, value_int, value_items, value_string,
};
use super::stats::PublisherCounters;
use super::{AckToken, BrokerConfig, BrokerError, ConsumerStats, Message, PublisherStats};

const PUBLISHER_POOL_SIZE: usize = 16;
/// Elements moved per round trip when taking over a dead consumer's processing list.
const TAKEOVER_CHUNK: usize = 100;

/// Header names on dead-lettered envelopes.
pub const REASON_HEADER: &str = "x-netpipe-reason";
pub const QUEUE_HEADER: &str = "x-netpipe-queue";
pub const CONSUMER_HEADER: &str = "x-netpipe-consumer";

fn processing_list(queue: &str, consumer: &str) -> String {
    format!("{queue}.netpipe.processing.{consumer}")
}

fn consumers_set(queue: &str) -> String {
    format!("{queue}.netpipe.consumers")
}

fn heartbeat_key(queue: &str, consumer: &str) -> String {
    format!("{queue}.netpipe.alive.{consumer}")
}

#[derive(Clone)]
pub struct KombuPublisher {
    inner: Arc<PublisherInner>,
}

struct PublisherInner {
    endpoint: RedisEndpoint,
    pool: Pool,
    queue: String,
    exchange: String,
    routing_key: String,
    counters: PublisherCounters,
}

impl std::fmt::Debug for KombuPublisher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KombuPublisher")
            .field("url", &self.inner.endpoint.redacted)
            .field("queue", &self.inner.queue)
            .finish_non_exhaustive()
    }
}

impl KombuPublisher {
    pub async fn connect(url: &str, config: &BrokerConfig) -> Result<Self, BrokerError> {
        let endpoint = RedisEndpoint::open(url, config)?;
        let pool = endpoint.pool(url, PUBLISHER_POOL_SIZE)?;
        let mut conn = endpoint.pooled(&pool).await?;
        if !config.exchange.is_empty() {
            let binding = kombu_binding_member(&config.routing_key, &config.stream);
            redis::cmd("SADD")
                .arg(format!("_kombu.binding.{}", config.exchange))
                .arg(binding)
                .query_async::<()>(&mut conn)
                .await
                .map_err(|e| endpoint.error(e))?;
        }
        drop(conn);
        Ok(KombuPublisher {
            inner: Arc::new(PublisherInner {
                endpoint,
                pool,
                queue: config.stream.clone(),
                exchange: config.exchange.clone(),
                routing_key: config.routing_key.clone(),
                counters: PublisherCounters::default(),
            }),
        })
    }

    /// `body` is the inner JSON document (`{"data", "created", "source"}` for packets).
    pub async fn publish(&self, body: &[u8]) -> Result<(), BrokerError> {
        let inner = &self.inner;
        let element = encode_kombu_envelope(
            body,
            &inner.exchange,
            &inner.routing_key,
            &new_delivery_tag(),
        );
        let mut conn = inner.endpoint.pooled(&inner.pool).await?;
        redis::cmd("LPUSH")
            .arg(&inner.queue)
            .arg(element)
            .query_async::<()>(&mut conn)
            .await
            .map_err(|e| inner.endpoint.error(e))?;
        inner.counters.count_published();
        Ok(())
    }

    pub async fn ping(&self) -> Result<(), BrokerError> {
        let mut conn = self.inner.endpoint.pooled(&self.inner.pool).await?;
        redis::cmd("PING")
            .query_async::<()>(&mut conn)
            .await
            .map_err(|e| self.inner.endpoint.error(e))
    }

    pub fn stats(&self) -> PublisherStats {
        self.inner.counters.snapshot()
    }
}

pub struct KombuConsumer {
    endpoint: RedisEndpoint,
    conn: Option<MultiplexedConnection>,
    queue: String,
    exchange: String,
    consumer: String,
    processing: String,
    dead_letter: String,
    block: Duration,
    claim_idle: Duration,
    /// Elements to hand out (again) before popping new ones: leftovers and take-overs.
    backlog: VecDeque<Vec<u8>>,
    /// Elements handed out and not yet acknowledged, by delivery tag (a list may hold copies).
    held: HashMap<String, Vec<Vec<u8>>>,
    next_heartbeat: Instant,
    next_takeover: Instant,
    stats: ConsumerStats,
}

impl std::fmt::Debug for KombuConsumer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KombuConsumer")
            .field("url", &self.endpoint.redacted)
            .field("queue", &self.queue)
            .field("consumer", &self.consumer)
            .finish_non_exhaustive()
    }
}

impl KombuConsumer {
    pub async fn connect(url: &str, config: &BrokerConfig) -> Result<Self, BrokerError> {
        let endpoint = RedisEndpoint::open(url, config)?;
        let now = Instant::now();
        let mut consumer = KombuConsumer {
            endpoint,
            conn: None,
            queue: config.stream.clone(),
            exchange: config.exchange.clone(),
            consumer: config.consumer.clone(),
            processing: processing_list(&config.stream, &config.consumer),
            dead_letter: config.dead_letter.clone(),
            block: config.block,
            claim_idle: config.claim_idle.max(Duration::from_millis(100)),
            backlog: VecDeque::new(),
            held: HashMap::new(),
            next_heartbeat: now,
            next_takeover: now,
            stats: ConsumerStats::default(),
        };
        consumer.heartbeat().await?;
        // Leftovers of an earlier run under this name: oldest (right end) first.
        let leftovers = consumer
            .query(
                redis::cmd("LRANGE")
                    .arg(&consumer.processing)
                    .arg(0)
                    .arg(-1),
            )
            .await?;
        consumer.backlog = value_items(&leftovers)
            .into_iter()
            .rev()
            .filter_map(|v| value_bytes(v).map(<[u8]>::to_vec))
            .collect();
        Ok(consumer)
    }

    async fn connection(&mut self) -> Result<MultiplexedConnection, BrokerError> {
        if let Some(conn) = &self.conn {
            return Ok(conn.clone());
        }
        let conn = self.endpoint.connection(self.block).await?;
        self.conn = Some(conn.clone());
        Ok(conn)
    }

    fn failed(&mut self, e: RedisError) -> BrokerError {
        if is_connection_error(&e) {
            self.conn = None;
        }
        self.endpoint.error(e)
    }

    async fn query(&mut self, cmd: &redis::Cmd) -> Result<Value, BrokerError> {
        let mut conn = self.connection().await?;
        let result = cmd.query_async::<Value>(&mut conn).await;
        result.map_err(|e| self.failed(e))
    }

    async fn run(&mut self, pipe: &redis::Pipeline) -> Result<Vec<Value>, BrokerError> {
        let mut conn = self.connection().await?;
        let result = pipe.query_async::<Vec<Value>>(&mut conn).await;
        result.map_err(|e| self.failed(e))
    }

    /// Registers this consumer and refreshes its heartbeat (due every third of `claim_idle`).
    async fn heartbeat(&mut self) -> Result<(), BrokerError> {
        if Instant::now() < self.next_heartbeat {
            return Ok(());
        }
        let mut pipe = redis::pipe();
        pipe.cmd("SADD")
            .arg(consumers_set(&self.queue))
            .arg(&self.consumer)
            .ignore()
            .cmd("SET")
            .arg(heartbeat_key(&self.queue, &self.consumer))
            .arg(1)
            .arg("PX")
            .arg(self.claim_idle.as_millis() as u64)
            .ignore();
        self.run(&pipe).await?;
        self.next_heartbeat = Instant::now() + self.claim_idle / 3;
        Ok(())
    }

    /// Moves the processing lists of consumers whose heartbeat expired into ours (backlog).
    async fn take_over_dead_consumers(&mut self) -> Result<(), BrokerError> {
        let members = self
            .query(redis::cmd("SMEMBERS").arg(consumers_set(&self.queue)))
            .await?;
        let others: Vec<String> = value_items(&members)
            .into_iter()
            .filter_map(value_string)
            .filter(|name| name != &self.consumer)
            .collect();
        for other in others {
            let alive = self
                .query(redis::cmd("EXISTS").arg(heartbeat_key(&self.queue, &other)))
                .await?;
            if alive != Value::Int(0) {
                continue;
            }
            let theirs = processing_list(&self.queue, &other);
            loop {
                let mut pipe = redis::pipe();
                for _ in 0..TAKEOVER_CHUNK {
                    pipe.cmd("LMOVE")
                        .arg(&theirs)
                        .arg(&self.processing)
                        .arg("RIGHT")
                        .arg("LEFT");
                }
                let moved: Vec<Vec<u8>> = self
                    .run(&pipe)
                    .await?
                    .iter()
                    .filter_map(|v| value_bytes(v).map(<[u8]>::to_vec))
                    .collect();
                let done = moved.len() < TAKEOVER_CHUNK;
                self.backlog.extend(moved);
                if done {
                    break;
                }
            }
            self.query(
                redis::cmd("SREM")
                    .arg(consumers_set(&self.queue))
                    .arg(&other),
            )
            .await?;
        }
        self.next_takeover = Instant::now() + self.claim_idle / 2;
        Ok(())
    }

    pub async fn receive(&mut self, max: usize) -> Result<Vec<Message>, BrokerError> {
        let max = max.max(1);
        self.heartbeat().await?;
        if self.backlog.is_empty() && Instant::now() >= self.next_takeover {
            self.take_over_dead_consumers().await?;
        }
        if !self.backlog.is_empty() {
            let take = max.min(self.backlog.len());
            let elements: Vec<Vec<u8>> = self.backlog.drain(..take).collect();
            return self.deliverable(elements, true).await;
        }
        let first = if self.block.is_zero() {
            self.query(
                redis::cmd("LMOVE")
                    .arg(&self.queue)
                    .arg(&self.processing)
                    .arg("RIGHT")
                    .arg("LEFT"),
            )
            .await?
        } else {
            self.query(
                redis::cmd("BLMOVE")
                    .arg(&self.queue)
                    .arg(&self.processing)
                    .arg("RIGHT")
                    .arg("LEFT")
                    .arg(self.block.as_secs_f64()),
            )
            .await?
        };
        let Some(first) = value_bytes(&first).map(<[u8]>::to_vec) else {
            return Ok(Vec::new());
        };
        let mut elements = vec![first];
        if max > 1 {
            let mut pipe = redis::pipe();
            for _ in 1..max {
                pipe.cmd("LMOVE")
                    .arg(&self.queue)
                    .arg(&self.processing)
                    .arg("RIGHT")
                    .arg("LEFT");
            }
            let more = self.run(&pipe).await?;
            elements.extend(
                more.iter()
                    .filter_map(|v| value_bytes(v).map(<[u8]>::to_vec)),
            );
        }
        self.deliverable(elements, false).await
    }

    /// Decodes elements; malformed ones go to the dead-letter list right away.
    async fn deliverable(
        &mut self,
        elements: Vec<Vec<u8>>,
        redelivered: bool,
    ) -> Result<Vec<Message>, BrokerError> {
        let mut messages = Vec::with_capacity(elements.len());
        for element in elements {
            match decode_kombu_envelope(&element) {
                Ok(decoded) => {
                    let tag = if decoded.delivery_tag.is_empty() {
                        new_delivery_tag()
                    } else {
                        decoded.delivery_tag
                    };
                    self.held.entry(tag.clone()).or_default().push(element);
                    messages.push(Message::encoded(
                        decoded.body,
                        AckToken::Kombu(tag),
                        redelivered,
                    ));
                }
                Err(e) => {
                    self.move_to_dead_letter(&element, &element, &e.to_string())
                        .await?;
                    self.stats.malformed += 1;
                }
            }
        }
        self.stats.received += messages.len() as u64;
        if redelivered {
            self.stats.redelivered += messages.len() as u64;
        }
        Ok(messages)
    }

    /// Pushes a kombu envelope carrying `body` and the reason onto the dead-letter list and
    /// removes `element` from the processing list, atomically.
    async fn move_to_dead_letter(
        &mut self,
        element: &[u8],
        body: &[u8],
        reason: &str,
    ) -> Result<(), BrokerError> {
        let mut headers = Map::new();
        headers.insert(REASON_HEADER.into(), Json::String(reason.into()));
        headers.insert(QUEUE_HEADER.into(), Json::String(self.queue.clone()));
        headers.insert(CONSUMER_HEADER.into(), Json::String(self.consumer.clone()));
        let dead = encode_with_headers(
            body,
            &self.exchange,
            &self.dead_letter,
            &new_delivery_tag(),
            &headers,
        );
        let mut pipe = redis::pipe();
        pipe.atomic()
            .cmd("LPUSH")
            .arg(&self.dead_letter)
            .arg(dead)
            .ignore()
            .cmd("LREM")
            .arg(&self.processing)
            .arg(1)
            .arg(element)
            .ignore();
        self.run(&pipe).await?;
        self.stats.dead_lettered += 1;
        Ok(())
    }

    fn take_held(&mut self, token: &AckToken) -> Result<Vec<u8>, BrokerError> {
        let AckToken::Kombu(tag) = token else {
            return Err(self
                .endpoint
                .protocol(format!("not a kombu token: {token:?}")));
        };
        let copies = self.held.get_mut(tag);
        let element = copies.and_then(|c| c.pop());
        if self.held.get(tag).is_some_and(Vec::is_empty) {
            self.held.remove(tag);
        }
        element.ok_or_else(|| {
            self.endpoint.protocol(format!(
                "unknown or already acknowledged kombu delivery tag {tag}"
            ))
        })
    }

    pub async fn ack(&mut self, tokens: &[AckToken]) -> Result<(), BrokerError> {
        if tokens.is_empty() {
            return Ok(());
        }
        let mut pipe = redis::pipe();
        let mut taken = Vec::with_capacity(tokens.len());
        let mut unknown = None;
        for token in tokens {
            match self.take_held(token) {
                Ok(element) => {
                    pipe.cmd("LREM")
                        .arg(&self.processing)
                        .arg(1)
                        .arg(&element)
                        .ignore();
                    taken.push((token, element));
                }
                Err(e) => unknown = Some(e),
            }
        }
        if !taken.is_empty()
            && let Err(e) = self.run(&pipe).await
        {
            for (token, element) in taken {
                self.hold_again(token, element);
            }
            return Err(e);
        }
        if let Some(e) = unknown {
            return Err(e);
        }
        self.heartbeat().await
    }

    /// The dead-letter list gets a kombu envelope with the original body and the reason in
    /// the `x-netpipe-reason` header.
    pub async fn dead_letter(
        &mut self,
        message: &Message,
        reason: &str,
    ) -> Result<(), BrokerError> {
        let element = self.take_held(&message.token)?;
        let result = self
            .move_to_dead_letter(&element, &message.body, reason)
            .await;
        if result.is_err() {
            self.hold_again(&message.token, element);
        }
        result
    }

    /// Puts back an element whose ack failed, so the caller may retry it.
    fn hold_again(&mut self, token: &AckToken, element: Vec<u8>) {
        if let AckToken::Kombu(tag) = token {
            self.held.entry(tag.clone()).or_default().push(element);
        }
    }

    /// Original messages waiting in the queue's list.
    pub async fn lag(&mut self) -> Result<Option<u64>, BrokerError> {
        let mut cmd = redis::cmd("LLEN");
        cmd.arg(&self.queue);
        let reply = self.query(&cmd).await?;
        Ok(value_int(&reply).and_then(|n| u64::try_from(n).ok()))
    }

    pub async fn ping(&mut self) -> Result<(), BrokerError> {
        self.query(&redis::cmd("PING")).await.map(|_| ())
    }

    pub fn stats(&self) -> ConsumerStats {
        self.stats
    }
}

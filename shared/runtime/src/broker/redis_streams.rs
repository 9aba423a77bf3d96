//! `redis://` / `rediss://`: Redis Streams with one consumer group.
//!
//! Publisher: `XADD stream * body <bytes>` on pooled connections (several in flight), plus `XLEN`
//! in the same round trip (the backlog the agent bounds). No blind `MAXLEN` by default: the
//! consumers trim what every group has delivered and acknowledged (`XTRIM MINID`), so unread and
//! pending entries are never deleted. Only with an explicit `max_len` cap (`MAXLEN ~ N`) may a
//! publish trim unread entries; at the cap it asks `XINFO GROUPS` whether the trim took entries a
//! group had not read yet (lag larger than the stream) and counts them.
//! Consumer: its own pending entries first (a restart with the same name gets its unacked
//! messages back), then entries other consumers left pending longer than `claim_idle`
//! (`XAUTOCLAIM`), then new ones (`XREADGROUP … BLOCK` on a dedicated connection whose response
//! timeout exceeds the block time). While the caller holds entries unacknowledged, the consumer
//! resets their idle time every third of `claim_idle` (`XCLAIM … JUSTID` to itself), so a live
//! consumer that holds entries for long (until a snapshot is durable) keeps them. After an ack,
//! at most every `TRIM_INTERVAL`, it trims the stream below the oldest entry any group still
//! needs (the smallest pending id, or the entry after the last delivered one).

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use deadpool_redis::Pool;
use deadpool_redis::redis::aio::MultiplexedConnection;
use deadpool_redis::redis::{self, RedisError, Value};

use super::redis_conn::{
    RedisEndpoint, field, is_connection_error, value_bytes, value_int, value_items, value_string,
};
use super::stats::PublisherCounters;
use super::{AckToken, BrokerConfig, BrokerError, ConsumerStats, Message, PublisherStats};

/// The stream entry field holding the message body.
const BODY_FIELD: &str = "body";
/// Connections a publisher may keep open (one per message in flight).
const PUBLISHER_POOL_SIZE: usize = 16;
/// How often a consumer trims acknowledged entries (at most; after an ack).
const TRIM_INTERVAL: Duration = Duration::from_millis(250);

#[derive(Clone)]
pub struct RedisStreamPublisher {
    inner: Arc<PublisherInner>,
}

struct PublisherInner {
    endpoint: RedisEndpoint,
    pool: Pool,
    stream: String,
    max_len: Option<usize>,
    counters: PublisherCounters,
}

impl std::fmt::Debug for RedisStreamPublisher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStreamPublisher")
            .field("url", &self.inner.endpoint.redacted)
            .field("stream", &self.inner.stream)
            .finish_non_exhaustive()
    }
}

impl RedisStreamPublisher {
    /// Connects, and creates the consumer group (reading from the start) if it does not exist,
    /// so nothing published before the first consumer starts is skipped, and trimming of
    /// unread entries can be measured from the first message on.
    pub async fn connect(url: &str, config: &BrokerConfig) -> Result<Self, BrokerError> {
        let endpoint = RedisEndpoint::open(url, config)?;
        let pool = endpoint.pool(url, PUBLISHER_POOL_SIZE)?;
        let mut conn = endpoint.pooled(&pool).await?;
        ensure_group(&mut conn, &config.stream, &config.group)
            .await
            .map_err(|e| endpoint.error(e))?;
        drop(conn);
        Ok(RedisStreamPublisher {
            inner: Arc::new(PublisherInner {
                endpoint,
                pool,
                stream: config.stream.clone(),
                max_len: config.max_len,
                counters: PublisherCounters::default(),
            }),
        })
    }

    pub async fn publish(&self, body: &[u8]) -> Result<(), BrokerError> {
        let inner = &self.inner;
        let mut conn = inner.endpoint.pooled(&inner.pool).await?;
        let mut pipe = redis::pipe();
        pipe.cmd("XADD").arg(&inner.stream);
        if let Some(cap) = inner.max_len {
            pipe.arg("MAXLEN").arg("~").arg(cap);
        }
        pipe.arg("*").arg(BODY_FIELD).arg(body);
        pipe.cmd("XLEN").arg(&inner.stream);
        let (_id, len): (String, u64) = pipe
            .query_async(&mut conn)
            .await
            .map_err(|e| inner.endpoint.error(e))?;
        inner.counters.count_published();
        inner.counters.backlog.store(len, Ordering::Relaxed);
        if let Some(cap) = inner.max_len
            && len >= cap as u64
        {
            inner.counters.stream_full.fetch_add(1, Ordering::Relaxed);
            // The message is stored; a failed check must not fail the publish.
            if let Ok(lost) = trimmed_unread(&mut conn, &inner.stream, len).await {
                inner
                    .counters
                    .trimmed_unread
                    .fetch_max(lost, Ordering::Relaxed);
            }
        }
        Ok(())
    }

    /// Entries the stream holds now (`XLEN`): what consumers have not yet acknowledged and
    /// trimmed. Also kept in `stats().backlog`.
    pub async fn backlog(&self) -> Result<u64, BrokerError> {
        let inner = &self.inner;
        let mut conn = inner.endpoint.pooled(&inner.pool).await?;
        let len: u64 = redis::cmd("XLEN")
            .arg(&inner.stream)
            .query_async(&mut conn)
            .await
            .map_err(|e| inner.endpoint.error(e))?;
        inner.counters.backlog.store(len, Ordering::Relaxed);
        Ok(len)
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

/// Entries trimmed before the slowest group read them. A group's lag counts every entry added
/// after its last delivered one (Redis 7 keeps `entries-read` exact for groups created with
/// `ENTRIESREAD`); what the stream no longer holds of that lag was trimmed unread.
async fn trimmed_unread<C: redis::aio::ConnectionLike>(
    conn: &mut C,
    stream: &str,
    len: u64,
) -> Result<u64, RedisError> {
    let reply: Value = redis::cmd("XINFO")
        .arg("GROUPS")
        .arg(stream)
        .query_async(conn)
        .await?;
    let lost = value_items(&reply)
        .into_iter()
        .filter_map(|group| {
            let items = value_items(group);
            let lag = value_int(field(&items, "lag")?)?;
            u64::try_from(lag).ok()
        })
        .map(|lag| lag.saturating_sub(len))
        .max()
        .unwrap_or(0);
    Ok(lost)
}

/// `XGROUP CREATE stream group 0 MKSTREAM ENTRIESREAD 0`; an existing group is fine.
async fn ensure_group<C: redis::aio::ConnectionLike>(
    conn: &mut C,
    stream: &str,
    group: &str,
) -> Result<(), RedisError> {
    let create = |entries_read: bool| {
        let mut cmd = redis::cmd("XGROUP");
        cmd.arg("CREATE")
            .arg(stream)
            .arg(group)
            .arg("0")
            .arg("MKSTREAM");
        if entries_read {
            // Redis 7+: makes the group's lag exact, which the publisher's trim check relies on.
            cmd.arg("ENTRIESREAD").arg(0);
        }
        cmd
    };
    match create(true).query_async::<()>(conn).await {
        Ok(()) => Ok(()),
        Err(e) if e.code() == Some("BUSYGROUP") => Ok(()),
        Err(e) if is_connection_error(&e) => Err(e),
        // Redis 6.2 does not know ENTRIESREAD.
        Err(_) => match create(false).query_async::<()>(conn).await {
            Err(e) if e.code() == Some("BUSYGROUP") => Ok(()),
            other => other,
        },
    }
}

/// One stream entry; `body` is `None` when the entry was deleted (trimmed) while pending.
struct Entry {
    id: String,
    body: Option<Vec<u8>>,
}

/// Items of an array-like reply, taken out of it (maps flattened to key, value, ...): bodies
/// are moved out of the reply, not copied.
fn into_items(value: Value) -> Vec<Value> {
    match value {
        Value::Array(items) | Value::Set(items) => items,
        Value::Map(pairs) => pairs.into_iter().flat_map(|(k, v)| [k, v]).collect(),
        _ => Vec::new(),
    }
}

/// Bytes of a bulk/simple string reply, taken out of it.
fn into_bytes(value: Value) -> Option<Vec<u8>> {
    match value {
        Value::BulkString(bytes) => Some(bytes),
        Value::SimpleString(text) | Value::VerbatimString { text, .. } => Some(text.into_bytes()),
        _ => None,
    }
}

/// Entries of one `[id, [field, value, ...]]` list.
fn parse_entry_list(list: Value) -> Vec<Entry> {
    into_items(list)
        .into_iter()
        .filter_map(|entry| {
            let mut parts = into_items(entry).into_iter();
            let id = value_string(&parts.next()?)?;
            let body = match parts.next() {
                None | Some(Value::Nil) => None,
                Some(fields) => {
                    let mut fields = into_items(fields).into_iter();
                    let mut body = None;
                    while let (Some(key), Some(value)) = (fields.next(), fields.next()) {
                        if value_bytes(&key) == Some(BODY_FIELD.as_bytes()) {
                            body = into_bytes(value);
                            break;
                        }
                    }
                    // An entry without our field (written by someone else) is handed out empty,
                    // so the caller dead-letters it instead of it vanishing.
                    Some(body.unwrap_or_default())
                }
            };
            Some(Entry { id, body })
        })
        .collect()
}

/// Entries of an `XREADGROUP` reply for a single stream (`Nil` when the block timed out).
fn parse_read_reply(reply: Value) -> Vec<Entry> {
    match reply {
        Value::Map(pairs) => pairs
            .into_iter()
            .flat_map(|(_, list)| parse_entry_list(list))
            .collect(),
        other => into_items(other)
            .into_iter()
            .filter_map(|stream| into_items(stream).into_iter().nth(1))
            .flat_map(parse_entry_list)
            .collect(),
    }
}

pub struct RedisStreamConsumer {
    endpoint: RedisEndpoint,
    conn: Option<MultiplexedConnection>,
    stream: String,
    group: String,
    consumer: String,
    dead_letter: String,
    max_len: Option<usize>,
    prefetch: usize,
    block: Duration,
    claim_idle: Duration,
    /// `Some(id)` while this consumer's own pending entries (after `id`) are being re-read.
    own_pending_after: Option<String>,
    claim_cursor: String,
    next_claim: Instant,
    /// Entries handed out and not yet acknowledged or dead-lettered.
    held: HashSet<String>,
    next_touch: Instant,
    /// Trim acknowledged entries after acks (`BrokerConfig::trim_acked`).
    trim_acked: bool,
    next_trim: Instant,
    stats: ConsumerStats,
}

impl std::fmt::Debug for RedisStreamConsumer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStreamConsumer")
            .field("url", &self.endpoint.redacted)
            .field("stream", &self.stream)
            .field("group", &self.group)
            .field("consumer", &self.consumer)
            .finish_non_exhaustive()
    }
}

impl RedisStreamConsumer {
    pub async fn connect(url: &str, config: &BrokerConfig) -> Result<Self, BrokerError> {
        let endpoint = RedisEndpoint::open(url, config)?;
        let mut consumer = RedisStreamConsumer {
            endpoint,
            conn: None,
            stream: config.stream.clone(),
            group: config.group.clone(),
            consumer: config.consumer.clone(),
            dead_letter: config.dead_letter.clone(),
            max_len: config.max_len,
            prefetch: usize::from(config.prefetch.max(1)),
            block: config.block,
            claim_idle: config.claim_idle,
            own_pending_after: None,
            claim_cursor: "0-0".into(),
            next_claim: Instant::now(),
            held: HashSet::new(),
            next_touch: Instant::now() + config.claim_idle / 3,
            trim_acked: config.trim_acked,
            next_trim: Instant::now(),
            stats: ConsumerStats::default(),
        };
        consumer.connection().await?;
        Ok(consumer)
    }

    /// The live connection, reconnecting (and re-reading own pending entries) after a failure.
    async fn connection(&mut self) -> Result<MultiplexedConnection, BrokerError> {
        if let Some(conn) = &self.conn {
            return Ok(conn.clone());
        }
        let mut conn = self.endpoint.connection(self.block).await?;
        ensure_group(&mut conn, &self.stream, &self.group)
            .await
            .map_err(|e| self.endpoint.error(e))?;
        self.own_pending_after = Some("0-0".into());
        self.conn = Some(conn.clone());
        Ok(conn)
    }

    /// Runs a command; recreates a vanished group once; drops the connection when it failed.
    async fn query(&mut self, cmd: &redis::Cmd) -> Result<Value, BrokerError> {
        let mut conn = self.connection().await?;
        let result = match cmd.query_async::<Value>(&mut conn).await {
            Err(e) if e.code() == Some("NOGROUP") => {
                match ensure_group(&mut conn, &self.stream, &self.group).await {
                    Ok(()) => cmd.query_async::<Value>(&mut conn).await,
                    Err(e) => Err(e),
                }
            }
            other => other,
        };
        result.map_err(|e| {
            if is_connection_error(&e) {
                self.conn = None;
            }
            self.endpoint.error(e)
        })
    }

    pub async fn receive(&mut self, max: usize) -> Result<Vec<Message>, BrokerError> {
        let count = max.clamp(1, self.prefetch);
        self.connection().await?;
        if Instant::now() >= self.next_touch {
            self.touch_held().await?;
        }
        while let Some(after) = self.own_pending_after.clone() {
            let entries = self.read_own_pending(&after, count).await?;
            match entries.last() {
                None => self.own_pending_after = None,
                Some(last) => self.own_pending_after = Some(last.id.clone()),
            }
            let messages = self.deliverable(entries, true).await?;
            if !messages.is_empty() {
                return Ok(messages);
            }
        }
        if Instant::now() >= self.next_claim {
            let messages = self.claim_abandoned(count).await?;
            if !messages.is_empty() {
                return Ok(messages);
            }
        }
        let mut cmd = redis::cmd("XREADGROUP");
        cmd.arg("GROUP")
            .arg(&self.group)
            .arg(&self.consumer)
            .arg("COUNT")
            .arg(count);
        let block_ms = self.block.as_millis();
        if block_ms > 0 {
            // BLOCK 0 would wait forever.
            cmd.arg("BLOCK").arg(block_ms as u64);
        }
        cmd.arg("STREAMS").arg(&self.stream).arg(">");
        let reply = self.query(&cmd).await?;
        let entries = parse_read_reply(reply);
        self.deliverable(entries, false).await
    }

    async fn read_own_pending(
        &mut self,
        after: &str,
        count: usize,
    ) -> Result<Vec<Entry>, BrokerError> {
        let mut cmd = redis::cmd("XREADGROUP");
        cmd.arg("GROUP")
            .arg(&self.group)
            .arg(&self.consumer)
            .arg("COUNT")
            .arg(count)
            .arg("STREAMS")
            .arg(&self.stream)
            .arg(after);
        let reply = self.query(&cmd).await?;
        Ok(parse_read_reply(reply))
    }

    /// Resets the idle time of the entries this consumer holds, so nobody reclaims them.
    async fn touch_held(&mut self) -> Result<(), BrokerError> {
        let held: Vec<String> = self.held.iter().cloned().collect();
        for chunk in held.chunks(1000) {
            let mut cmd = redis::cmd("XCLAIM");
            cmd.arg(&self.stream)
                .arg(&self.group)
                .arg(&self.consumer)
                .arg(0)
                .arg(chunk)
                .arg("JUSTID");
            self.query(&cmd).await?;
        }
        self.next_touch = Instant::now() + self.claim_idle / 3;
        Ok(())
    }

    /// Takes over entries idle longer than `claim_idle` (their consumer died or hangs).
    async fn claim_abandoned(&mut self, count: usize) -> Result<Vec<Message>, BrokerError> {
        let mut cmd = redis::cmd("XAUTOCLAIM");
        cmd.arg(&self.stream)
            .arg(&self.group)
            .arg(&self.consumer)
            .arg(self.claim_idle.as_millis() as u64)
            .arg(&self.claim_cursor)
            .arg("COUNT")
            .arg(count);
        let reply = self.query(&cmd).await?;
        let parts = into_items(reply);
        let cursor = parts
            .first()
            .and_then(value_string)
            .unwrap_or_else(|| "0-0".into());
        if cursor == "0-0" {
            // A full pass is done; look again after a while.
            self.next_claim =
                Instant::now() + (self.claim_idle / 2).max(Duration::from_millis(100));
            // Dead consumers whose entries were all claimed would stay in the group forever.
            if let Err(error) = self.remove_dead_consumers().await {
                tracing::debug!(%error, "removing dead consumers failed");
            }
        }
        self.claim_cursor = cursor;
        // Redis 7 lists entries deleted while pending separately (and drops them from the PEL).
        let deleted = parts.get(2).map_or(0, |d| value_items(d).len());
        self.stats.lost_pending += deleted as u64;
        let entries = parts
            .into_iter()
            .nth(1)
            .map(parse_entry_list)
            .unwrap_or_default();
        self.deliverable(entries, true).await
    }

    /// `XGROUP DELCONSUMER` for other consumers of the group that hold no pending entries and
    /// have been idle longer than twice `claim_idle` (a restart under a new name leaves its old
    /// name behind). A live consumer touches the group at least every block time, and one
    /// removed while merely paused comes back with its next read: removing it loses nothing.
    async fn remove_dead_consumers(&mut self) -> Result<(), BrokerError> {
        let limit = i64::try_from((self.claim_idle * 2).as_millis()).unwrap_or(i64::MAX);
        let mut cmd = redis::cmd("XINFO");
        cmd.arg("CONSUMERS").arg(&self.stream).arg(&self.group);
        let reply = self.query(&cmd).await?;
        let dead: Vec<String> = value_items(&reply)
            .into_iter()
            .filter_map(|consumer| {
                let items = value_items(consumer);
                let name = field(&items, "name").and_then(value_string)?;
                let pending = field(&items, "pending").and_then(value_int)?;
                // Redis 7.2 reports `inactive` (since the last successful read); older ones `idle`.
                let idle = field(&items, "inactive")
                    .and_then(value_int)
                    .filter(|i| *i >= 0)
                    .or_else(|| field(&items, "idle").and_then(value_int))?;
                (name != self.consumer && pending == 0 && idle > limit).then_some(name)
            })
            .collect();
        for name in dead {
            let mut cmd = redis::cmd("XGROUP");
            cmd.arg("DELCONSUMER")
                .arg(&self.stream)
                .arg(&self.group)
                .arg(&name);
            self.query(&cmd).await?;
            self.stats.consumers_removed += 1;
            tracing::info!(consumer = %name, group = %self.group, "removed a dead consumer from the group");
        }
        Ok(())
    }

    /// Messages for the live entries; entries deleted while pending are acked and counted.
    async fn deliverable(
        &mut self,
        entries: Vec<Entry>,
        redelivered: bool,
    ) -> Result<Vec<Message>, BrokerError> {
        let mut gone = Vec::new();
        let mut messages = Vec::with_capacity(entries.len());
        for entry in entries {
            if self.held.contains(&entry.id) {
                // Already out with the caller (seen again after a reconnect or a reclaim).
                continue;
            }
            match entry.body {
                Some(body) => {
                    self.held.insert(entry.id.clone());
                    messages.push(Message::encoded(
                        body,
                        AckToken::Redis(entry.id),
                        redelivered,
                    ));
                }
                None => gone.push(entry.id),
            }
        }
        if !gone.is_empty() {
            self.stats.lost_pending += gone.len() as u64;
            self.xack(&gone).await?;
        }
        self.stats.received += messages.len() as u64;
        if redelivered {
            self.stats.redelivered += messages.len() as u64;
        }
        Ok(messages)
    }

    async fn xack(&mut self, ids: &[String]) -> Result<(), BrokerError> {
        if ids.is_empty() {
            return Ok(());
        }
        let mut cmd = redis::cmd("XACK");
        cmd.arg(&self.stream).arg(&self.group).arg(ids);
        self.query(&cmd).await.map(|_| ())
    }

    pub async fn ack(&mut self, tokens: &[AckToken]) -> Result<(), BrokerError> {
        let ids = redis_ids(tokens, &self.endpoint)?;
        // Keep each command a reasonable size.
        for chunk in ids.chunks(1000) {
            self.xack(chunk).await?;
            for id in chunk {
                self.held.remove(id);
            }
        }
        if self.trim_acked && !ids.is_empty() && Instant::now() >= self.next_trim {
            self.next_trim = Instant::now() + TRIM_INTERVAL;
            // The acks are done; a failed trim only leaves the entries for the next one.
            match self.trim_acknowledged().await {
                Ok(trimmed) => self.stats.trimmed_acked += trimmed,
                Err(error) => tracing::debug!(%error, "trimming acknowledged entries failed"),
            }
        }
        Ok(())
    }

    /// `XTRIM stream MINID ~ <floor>`, where the floor is the oldest entry any group still
    /// needs: its smallest pending id, or the entry after its last delivered one. Groups are
    /// read before their pending lists, so an entry delivered in between (newer than the group's
    /// last delivered id then) is never below the floor. No group: nothing is trimmed.
    async fn trim_acknowledged(&mut self) -> Result<u64, BrokerError> {
        let mut cmd = redis::cmd("XINFO");
        cmd.arg("GROUPS").arg(&self.stream);
        let reply = self.query(&cmd).await?;
        let mut groups = Vec::new();
        for group in value_items(&reply) {
            let items = value_items(group);
            let (Some(name), Some(last)) = (
                field(&items, "name").and_then(value_string),
                field(&items, "last-delivered-id")
                    .and_then(value_string)
                    .and_then(|id| StreamId::parse(&id)),
            ) else {
                // A group we cannot read: keep everything.
                return Ok(0);
            };
            let pending = field(&items, "pending").and_then(value_int).unwrap_or(1);
            groups.push((name, last, pending));
        }
        let mut floor: Option<StreamId> = None;
        for (name, last, pending) in groups {
            let mut needed = last.next();
            if pending > 0 {
                let mut cmd = redis::cmd("XPENDING");
                cmd.arg(&self.stream).arg(&name);
                let summary = self.query(&cmd).await?;
                let items = value_items(&summary);
                match items.get(1).and_then(|v| value_string(v)) {
                    Some(id) => match StreamId::parse(&id) {
                        Some(smallest) => needed = needed.min(smallest),
                        None => return Ok(0),
                    },
                    // Acknowledged in the meantime: nothing pending below `last`.
                    None if items.first().and_then(|v| value_int(v)) == Some(0) => {}
                    None => return Ok(0),
                }
            }
            floor = Some(floor.map_or(needed, |f| f.min(needed)));
        }
        let Some(floor) = floor else {
            return Ok(0);
        };
        if floor <= StreamId(0, 1) {
            return Ok(0);
        }
        let mut cmd = redis::cmd("XTRIM");
        cmd.arg(&self.stream)
            .arg("MINID")
            .arg("~")
            .arg(floor.to_string());
        let trimmed = self.query(&cmd).await?;
        Ok(value_int(&trimmed)
            .and_then(|n| u64::try_from(n).ok())
            .unwrap_or(0))
    }

    /// `XADD dead_letter * body <bytes> reason <text> stream <s> group <g> id <entry id>
    /// consumer <name>`, then `XACK`, in one transaction.
    pub async fn dead_letter(
        &mut self,
        message: &Message,
        reason: &str,
    ) -> Result<(), BrokerError> {
        let ids = redis_ids(std::slice::from_ref(&message.token), &self.endpoint)?;
        let Some(id) = ids.first() else {
            return Err(self.endpoint.protocol("dead_letter needs a Redis message"));
        };
        let mut pipe = redis::pipe();
        pipe.atomic().cmd("XADD").arg(&self.dead_letter);
        if let Some(cap) = self.max_len {
            pipe.arg("MAXLEN").arg("~").arg(cap);
        }
        pipe.arg("*")
            .arg(BODY_FIELD)
            .arg(&message.body)
            .arg("reason")
            .arg(reason)
            .arg("stream")
            .arg(&self.stream)
            .arg("group")
            .arg(&self.group)
            .arg("id")
            .arg(id)
            .arg("consumer")
            .arg(&self.consumer)
            .ignore();
        pipe.cmd("XACK")
            .arg(&self.stream)
            .arg(&self.group)
            .arg(id)
            .ignore();
        let mut conn = self.connection().await?;
        let result: Result<(), RedisError> = pipe.query_async(&mut conn).await;
        result.map_err(|e| {
            if is_connection_error(&e) {
                self.conn = None;
            }
            self.endpoint.error(e)
        })?;
        self.held.remove(id);
        self.stats.dead_lettered += 1;
        Ok(())
    }

    pub async fn ping(&mut self) -> Result<(), BrokerError> {
        self.query(&redis::cmd("PING")).await.map(|_| ())
    }

    /// Entries not yet delivered to any member of the group. Redis's own `lag` stays high
    /// after a trim took unread entries or after an AOF reload (it may count entries that are
    /// long gone), so it is checked against the stream: nothing is waiting once the group's
    /// last delivered id is the stream's last id, and never more than the stream holds.
    pub async fn lag(&mut self) -> Result<Option<u64>, BrokerError> {
        let mut cmd = redis::cmd("XINFO");
        cmd.arg("GROUPS").arg(&self.stream);
        let reply = self.query(&cmd).await?;
        let group = value_items(&reply).into_iter().find(|group| {
            let items = value_items(group);
            field(&items, "name")
                .and_then(value_string)
                .is_some_and(|name| name == self.group)
        });
        let Some(group) = group else {
            return Ok(None);
        };
        let items = value_items(group);
        let lag = field(&items, "lag")
            .and_then(value_int)
            .and_then(|lag| u64::try_from(lag).ok());
        let delivered = field(&items, "last-delivered-id")
            .and_then(value_string)
            .and_then(|id| StreamId::parse(&id));
        let mut cmd = redis::cmd("XINFO");
        cmd.arg("STREAM").arg(&self.stream);
        let reply = self.query(&cmd).await?;
        let items = value_items(&reply);
        let last = field(&items, "last-generated-id")
            .and_then(value_string)
            .and_then(|id| StreamId::parse(&id));
        let length = field(&items, "length")
            .and_then(value_int)
            .and_then(|n| u64::try_from(n).ok());
        if let (Some(delivered), Some(last)) = (delivered, last)
            && delivered >= last
        {
            return Ok(Some(0));
        }
        Ok(match (lag, length) {
            (Some(lag), Some(length)) => Some(lag.min(length)),
            (lag, length) => lag.or(length),
        })
    }

    /// Entries of the group delivered and not yet acknowledged, over all its consumers
    /// (`XINFO GROUPS` `pending`).
    pub async fn group_pending(&mut self) -> Result<Option<u64>, BrokerError> {
        let mut cmd = redis::cmd("XINFO");
        cmd.arg("GROUPS").arg(&self.stream);
        let reply = self.query(&cmd).await?;
        Ok(value_items(&reply).into_iter().find_map(|group| {
            let items = value_items(group);
            let name = field(&items, "name").and_then(value_string)?;
            if name != self.group {
                return None;
            }
            let pending = field(&items, "pending").and_then(value_int)?;
            u64::try_from(pending).ok()
        }))
    }

    pub fn stats(&self) -> ConsumerStats {
        self.stats
    }
}

/// A stream entry id `ms-seq`, ordered as Redis orders them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct StreamId(u64, u64);

impl StreamId {
    fn parse(text: &str) -> Option<StreamId> {
        let (ms, seq) = text.split_once('-')?;
        Some(StreamId(ms.parse().ok()?, seq.parse().ok()?))
    }

    /// The smallest id after this one.
    fn next(self) -> StreamId {
        match self.1.checked_add(1) {
            Some(seq) => StreamId(self.0, seq),
            None => StreamId(self.0.saturating_add(1), 0),
        }
    }
}

impl std::fmt::Display for StreamId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}-{}", self.0, self.1)
    }
}

fn redis_ids(tokens: &[AckToken], endpoint: &RedisEndpoint) -> Result<Vec<String>, BrokerError> {
    tokens
        .iter()
        .map(|token| match token {
            AckToken::Redis(id) => Ok(id.clone()),
            other => Err(endpoint.protocol(format!("not a Redis stream token: {other:?}"))),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::StreamId;

    #[test]
    fn stream_ids_order_and_step_like_redis() {
        assert_eq!(
            StreamId::parse("1700000000000-5"),
            Some(StreamId(1_700_000_000_000, 5))
        );
        assert_eq!(StreamId::parse("12"), None);
        assert_eq!(StreamId::parse("a-1"), None);
        assert!(StreamId(1, 9) < StreamId(2, 0));
        assert_eq!(StreamId(3, 4).next(), StreamId(3, 5));
        assert_eq!(StreamId(3, u64::MAX).next(), StreamId(4, 0));
        assert_eq!(StreamId(7, 1).to_string(), "7-1");
    }
}

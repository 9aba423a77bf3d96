//! The publisher task: takes frames from the bounded buffer in batches and hands each batch to
//! a task that encodes it and publishes it, with up to `max_in_flight` such tasks at once (the
//! broker's `Publisher` is a cheap clone that accepts concurrent publishes, and encoding one
//! batch overlaps with the broker round trip of another). The tasks share one connection and
//! reconnect with exponential backoff while the broker is down; a failed publish is retried, so
//! every frame is counted exactly once: published, rejected, or (after the shutdown grace
//! period) dropped. The task stops once the capture side has closed the buffer and every batch
//! in flight has finished.
//!
//! The broker's backlog is bounded (`--max-backlog`, from the `XLEN` each publish returns): at
//! the bound a replay waits for the consumers, a live capture drops the batch and counts it
//! (`dropped{reason="broker_backlog"}`), so nothing has to be trimmed unread on the broker.
//!
//! Batches may reach the broker out of order; consumers must not rely on order across messages
//! (the processor deduplicates by (agent, seq) and tracks gaps as ranges, so it does not).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use netpipe_packet::frame::Frame;
use netpipe_runtime::broker::agent_stats::AgentStats;
use netpipe_runtime::broker::codec::{Payload, WireFormat};
use netpipe_runtime::broker::{BrokerConfig, BrokerError, Publisher};
use netpipe_runtime::ops::{Readiness, Throttle};
use tokio::sync::{Mutex, mpsc};
use tokio::task::{JoinError, JoinSet};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::metrics::{AgentMetrics, drop_reason, publish_failure};
use crate::resume::Progress;

/// Readiness condition owned by this task.
pub const BROKER_REACHABLE: &str = "broker reachable";

/// How long one connect or publish may take before it counts as failed.
const OPERATION_TIMEOUT: Duration = Duration::from_secs(10);
/// While idle, how often the broker is pinged so /ready stays truthful.
const IDLE_CHECK: Duration = Duration::from_secs(2);
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
/// While a replay waits for the backlog to shrink, how often it asks the broker.
const BACKLOG_POLL: Duration = Duration::from_millis(50);

pub struct PublishTask {
    pub rx: mpsc::Receiver<Frame>,
    /// A connection made at start-up, if the broker was reachable then.
    pub connected: Option<Publisher>,
    /// How frames travel on this broker (chosen by the broker layer from the URL).
    pub format: WireFormat,
    pub broker: BrokerConfig,
    pub batch_size: usize,
    /// Batches being encoded or published at once (at least 1).
    pub max_in_flight: usize,
    pub batch_delay: Duration,
    pub metrics: Arc<AgentMetrics>,
    pub readiness: Readiness,
    pub shutdown: CancellationToken,
    pub shutdown_grace: Duration,
    pub max_backoff: Duration,
    /// Most messages the broker may hold (`--max-backlog`); `None` = no bound.
    pub max_backlog: Option<u64>,
    /// At the backlog bound: wait (replay) or drop the batch (live capture).
    pub wait_for_backlog: bool,
    /// In-band loss reports: who this run is and how often to report.
    pub stats_message: Option<StatsMessage>,
    /// --resume: the replay's confirmed prefix, kept in the state file.
    pub progress: Option<Arc<std::sync::Mutex<Progress>>>,
}

/// The run the in-band loss reports describe.
#[derive(Debug, Clone)]
pub struct StatsMessage {
    pub agent: Arc<str>,
    pub boot: u64,
    pub interval: Duration,
}

impl StatsMessage {
    /// The report now: cumulative counters of this run.
    fn body(&self, metrics: &AgentMetrics) -> Vec<u8> {
        AgentStats {
            agent: self.agent.to_string(),
            boot: self.boot,
            captured: metrics.packets_captured.get(),
            dropped: drop_reason::ALL
                .iter()
                .map(|reason| (reason.to_string(), metrics.dropped(reason)))
                .filter(|(_, n)| *n > 0)
                .collect(),
            trimmed_unread_messages: metrics.stream_trimmed_unread.get(),
        }
        .encode()
    }
}

/// Why a message could not be delivered.
enum Undelivered {
    /// Refused by the broker (not retryable); the batch is dropped and counted.
    Rejected,
    /// Shutdown grace period over with the broker still unreachable.
    GaveUp,
}

/// How a batch task ended (its frames are already counted either way).
enum Outcome {
    Delivered,
    /// The shutdown grace period ended first; the rest of the buffer is lost too.
    GaveUp,
}

struct Connection {
    publisher: Option<Publisher>,
    /// Bumped on every new connection, so a failure seen on an old one does not tear down a
    /// fresh one (several batches may fail on the same outage).
    generation: u64,
    backoff: Duration,
    next_attempt: Instant,
}

/// What the batch tasks share.
struct Delivery {
    connection: Mutex<Connection>,
    /// Set once, when the first task sees the shutdown; every task gives up at the same time.
    grace_deadline: std::sync::OnceLock<Instant>,
    format: WireFormat,
    broker: BrokerConfig,
    metrics: Arc<AgentMetrics>,
    readiness: Readiness,
    shutdown: CancellationToken,
    shutdown_grace: Duration,
    max_backoff: Duration,
    /// Highest count of entries trimmed unread the broker reported (opt-in cap); the counter
    /// grows by what is new.
    trimmed_unread_seen: std::sync::atomic::AtomicU64,
    trimmed_unread_log: Throttle,
    progress: Option<Arc<std::sync::Mutex<Progress>>>,
}

impl PublishTask {
    pub async fn run(mut self) {
        let delivery = Arc::new(Delivery {
            connection: Mutex::new(Connection {
                publisher: self.connected.take(),
                generation: 0,
                backoff: FIRST_BACKOFF,
                next_attempt: Instant::now(),
            }),
            grace_deadline: std::sync::OnceLock::new(),
            format: self.format.clone(),
            broker: self.broker.clone(),
            metrics: self.metrics.clone(),
            readiness: self.readiness.clone(),
            shutdown: self.shutdown.clone(),
            shutdown_grace: self.shutdown_grace,
            max_backoff: self.max_backoff,
            trimmed_unread_seen: std::sync::atomic::AtomicU64::new(0),
            trimmed_unread_log: Throttle::new(Duration::from_secs(10)),
            progress: self.progress.clone(),
        });
        {
            let mut connection = delivery.connection.lock().await;
            if connection.publisher.is_some() {
                delivery.mark_up(&mut connection);
            } else {
                delivery.try_connect(&mut connection).await;
            }
        }
        let batch_size = self.batch_size.max(1);
        let max_in_flight = self.max_in_flight.max(1);
        let mut in_flight: JoinSet<Outcome> = JoinSet::new();
        // Frames per running task, so a task that fails (panics) has its batch counted as lost.
        let mut sizes: HashMap<tokio::task::Id, u64> = HashMap::new();
        let mut gave_up = false;
        let stats_message = self
            .stats_message
            .clone()
            .filter(|_| delivery.format.carries_agent_stats());
        let mut stats_tick = tokio::time::interval(
            stats_message
                .as_ref()
                .map_or(Duration::from_secs(3600), |s| {
                    s.interval.max(Duration::from_millis(100))
                }),
        );
        stats_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        stats_tick.tick().await;
        while !gave_up {
            while in_flight.len() >= max_in_flight {
                if let Some(joined) = in_flight.join_next_with_id().await {
                    gave_up |= settle(joined, &mut sizes, &self.metrics);
                }
            }
            if gave_up {
                break;
            }
            let mut batch: Vec<Frame> = Vec::with_capacity(batch_size);
            // recv_many is cancel safe: when another branch wins, nothing was taken.
            let received = tokio::select! {
                n = self.rx.recv_many(&mut batch, batch_size) => n,
                Some(joined) = in_flight.join_next_with_id(), if !in_flight.is_empty() => {
                    gave_up |= settle(joined, &mut sizes, &self.metrics);
                    continue;
                }
                () = tokio::time::sleep(IDLE_CHECK) => {
                    if in_flight.is_empty() {
                        delivery.check_idle().await;
                    }
                    continue;
                }
                _ = stats_tick.tick(), if stats_message.is_some() => {
                    if let Some(stats) = &stats_message {
                        let body = stats.body(&self.metrics);
                        let delivery = delivery.clone();
                        in_flight.spawn(async move { delivery.publish_report(body).await });
                    }
                    continue;
                }
            };
            if received == 0 {
                break; // capture side closed and the buffer is empty
            }
            self.fill(&mut batch, batch_size).await;
            self.metrics
                .buffered_frames
                .set(i64::try_from(self.rx.len()).unwrap_or(i64::MAX));
            if !self.within_backlog(&delivery, batch.len()).await {
                continue; // dropped and counted
            }
            let delivery = delivery.clone();
            let frames = batch.len() as u64;
            let handle = in_flight.spawn(async move { delivery.publish_batch(batch).await });
            sizes.insert(handle.id(), frames);
        }
        while let Some(joined) = in_flight.join_next_with_id().await {
            gave_up |= settle(joined, &mut sizes, &self.metrics);
        }
        if gave_up {
            self.give_up();
        } else if let Some(stats) = &stats_message {
            // The last report: every packet of this run is counted by now.
            delivery.publish_report(stats.body(&self.metrics)).await;
        }
        if let Some(progress) = &self.progress {
            progress
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .write();
        }
        self.metrics.buffered_frames.set(0);
    }

    /// Tops a partial batch up for at most `batch_delay`.
    async fn fill(&mut self, batch: &mut Vec<Frame>, batch_size: usize) {
        if batch.len() >= batch_size || self.batch_delay.is_zero() {
            return;
        }
        let deadline = Instant::now() + self.batch_delay;
        while batch.len() < batch_size {
            let room = batch_size - batch.len();
            match tokio::time::timeout_at(deadline, self.rx.recv_many(batch, room)).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    }

    /// The backlog bound (`--max-backlog`): true when the batch may be published. A replay
    /// waits until the consumers have acknowledged (and trimmed) enough; a live capture drops
    /// the batch and counts it. Shutdown ends a wait: what is buffered then goes out (a small,
    /// bounded overshoot). Without a connection the publish itself handles the outage.
    async fn within_backlog(&self, delivery: &Delivery, frames: usize) -> bool {
        let Some(limit) = self.max_backlog else {
            return true;
        };
        let mut waiting_logged = false;
        loop {
            let Some(publisher) = delivery.connected().await else {
                return true;
            };
            let mut backlog = publisher.stats().backlog;
            if backlog >= limit {
                // The last publish saw a full stream; the consumers may have trimmed since.
                match tokio::time::timeout(OPERATION_TIMEOUT, publisher.backlog()).await {
                    Ok(Ok(Some(now))) => backlog = now,
                    Ok(Ok(None)) | Ok(Err(_)) | Err(_) => return true,
                }
            }
            self.metrics
                .broker_backlog
                .set(i64::try_from(backlog).unwrap_or(i64::MAX));
            if backlog < limit || self.shutdown.is_cancelled() {
                return true;
            }
            if !self.wait_for_backlog {
                self.metrics.backlog_drops.record(frames as u64, |since_last| {
                    tracing::warn!(
                        dropped = since_last,
                        backlog,
                        max_backlog = limit,
                        "broker backlog at --max-backlog (consumers not keeping up); dropping new packets"
                    );
                });
                return false;
            }
            if !waiting_logged {
                waiting_logged = true;
                tracing::info!(
                    backlog,
                    max_backlog = limit,
                    "broker backlog at --max-backlog; the replay waits for the consumers"
                );
            }
            tokio::select! {
                () = tokio::time::sleep(BACKLOG_POLL) => {}
                () = self.shutdown.cancelled() => {}
            }
        }
    }

    /// Shutdown grace is over: count everything still buffered (batches in flight counted
    /// their own frames).
    fn give_up(&mut self) {
        self.rx.close();
        let mut left = 0u64;
        while self.rx.try_recv().is_ok() {
            left += 1;
        }
        count_lost_at_shutdown(&self.metrics, left, "buffered frames");
    }
}

/// Frames lost because the broker was still unreachable when the shutdown grace ran out:
/// counted as drops and logged once per batch or buffer.
fn count_lost_at_shutdown(metrics: &AgentMetrics, frames: u64, what: &str) {
    metrics
        .packets_dropped
        .with_label_values(&[drop_reason::SHUTDOWN])
        .inc_by(frames);
    tracing::error!(
        frames,
        lost = what,
        "broker still unreachable at the end of the shutdown grace period; frames lost"
    );
}

/// Forgets a finished task's batch size; a failed task's frames are counted as `internal` drops.
fn settle(
    joined: Result<(tokio::task::Id, Outcome), JoinError>,
    sizes: &mut HashMap<tokio::task::Id, u64>,
    metrics: &AgentMetrics,
) -> bool {
    match joined {
        Ok((id, outcome)) => {
            sizes.remove(&id);
            finished(Ok(outcome))
        }
        Err(e) => {
            let lost = sizes.remove(&e.id()).unwrap_or(0);
            metrics
                .packets_dropped
                .with_label_values(&[drop_reason::INTERNAL])
                .inc_by(lost);
            finished(Err(e))
        }
    }
}

/// True when the batch task gave up (shutdown grace over).
fn finished(joined: Result<Outcome, JoinError>) -> bool {
    match joined {
        Ok(Outcome::Delivered) => false,
        Ok(Outcome::GaveUp) => true,
        Err(e) => {
            tracing::error!(error = %e, "a publish task failed");
            false
        }
    }
}

impl Delivery {
    /// Encodes one batch and publishes it, retrying while the broker is unreachable; counts
    /// every frame of it exactly once.
    async fn publish_batch(&self, batch: Vec<Frame>) -> Outcome {
        let seqs = batch.iter().map(|f| f.seq);
        let range = seqs.clone().min().zip(seqs.max());
        let messages = self.format.messages(batch);
        let mut messages = messages.into_iter();
        while let Some((frames, body)) = messages.next() {
            match self.deliver(body).await {
                Ok(()) => {
                    self.metrics.frames_published.inc_by(frames);
                    self.metrics.batches_published.inc();
                }
                Err(Undelivered::Rejected) => {
                    self.metrics
                        .packets_dropped
                        .with_label_values(&[drop_reason::BROKER_REJECTED])
                        .inc_by(frames);
                }
                Err(Undelivered::GaveUp) => {
                    let left: u64 = frames + messages.map(|(n, _)| n).sum::<u64>();
                    count_lost_at_shutdown(&self.metrics, left, "a batch");
                    return Outcome::GaveUp;
                }
            }
        }
        // Settled (published, or refused and counted): a resumed replay need not send it again.
        if let (Some(progress), Some((first, last))) = (&self.progress, range) {
            progress
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .settled(first, last);
        }
        Outcome::Delivered
    }

    /// Publishes an in-band loss report (not a batch: no frame counters). A later report
    /// repeats its counters, so one lost to the shutdown grace costs nothing but freshness.
    async fn publish_report(&self, body: Vec<u8>) -> Outcome {
        if self.deliver(Payload::Bytes(body)).await.is_err() {
            tracing::debug!("a loss report was not delivered");
        }
        Outcome::Delivered
    }

    /// Publishes one message, retrying while the broker is unreachable.
    async fn deliver(&self, payload: Payload) -> Result<(), Undelivered> {
        loop {
            if self.shutdown.is_cancelled() {
                let deadline = *self
                    .grace_deadline
                    .get_or_init(|| Instant::now() + self.shutdown_grace);
                if Instant::now() >= deadline {
                    return Err(Undelivered::GaveUp);
                }
            }
            let Some((publisher, generation)) = self.current_publisher().await else {
                continue;
            };
            let attempt =
                tokio::time::timeout(OPERATION_TIMEOUT, publisher.publish_payload(&payload)).await;
            match attempt {
                Ok(Ok(())) => {
                    self.count_trimmed_unread(&publisher);
                    let mut connection = self.connection.lock().await;
                    if connection.generation == generation && connection.publisher.is_some() {
                        self.mark_up(&mut connection);
                    }
                    return Ok(());
                }
                Ok(Err(e)) if e.is_retryable() => {
                    self.count_failure(&e);
                    self.mark_down_if_current(generation, &e.to_string()).await;
                }
                Ok(Err(e)) => {
                    self.count_failure(&e);
                    self.metrics.broker_rejections.inc();
                    tracing::warn!(error = %e, "broker refused a batch; dropping it");
                    return Err(Undelivered::Rejected);
                }
                Err(_) => {
                    self.metrics
                        .publish_failures
                        .with_label_values(&[publish_failure::TIMEOUT])
                        .inc();
                    self.mark_down_if_current(generation, "publish timed out")
                        .await;
                }
            }
        }
    }

    /// The connected publisher; otherwise one connection attempt when the backoff allows it
    /// (one task at a time: the others wait on the lock and then reuse its connection), or a
    /// wait until it does (cut short by the shutdown, so the grace period starts).
    async fn current_publisher(&self) -> Option<(Publisher, u64)> {
        let next_attempt = {
            let mut connection = self.connection.lock().await;
            if let Some(publisher) = &connection.publisher {
                return Some((publisher.clone(), connection.generation));
            }
            if Instant::now() >= connection.next_attempt {
                self.try_connect(&mut connection).await;
                let generation = connection.generation;
                return connection.publisher.clone().map(|p| (p, generation));
            }
            connection.next_attempt
        };
        tokio::select! {
            () = tokio::time::sleep_until(next_attempt) => {}
            () = self.shutdown.cancelled(), if !self.shutdown.is_cancelled() => {}
        }
        None
    }

    /// The connected publisher, if any (no connection attempt).
    async fn connected(&self) -> Option<Publisher> {
        self.connection.lock().await.publisher.clone()
    }

    /// An opt-in `--max-len` cap may delete unread entries: the broker's count (cumulative for
    /// the group) raises the counter by what is new.
    fn count_trimmed_unread(&self, publisher: &Publisher) {
        let reported = publisher.stats().trimmed_unread;
        let before = self
            .trimmed_unread_seen
            .fetch_max(reported, std::sync::atomic::Ordering::Relaxed);
        if reported > before {
            self.metrics.stream_trimmed_unread.inc_by(reported - before);
            if let Some(since_last) = self.trimmed_unread_log.hit(reported - before) {
                tracing::warn!(
                    trimmed_unread = reported,
                    since_last,
                    "the --max-len cap deleted stream entries before the processor read them"
                );
            }
        }
    }

    async fn mark_down_if_current(&self, generation: u64, why: &str) {
        let mut connection = self.connection.lock().await;
        if connection.generation == generation && connection.publisher.is_some() {
            self.mark_down(&mut connection, why);
        }
    }

    async fn try_connect(&self, connection: &mut Connection) {
        let attempt = tokio::time::timeout(OPERATION_TIMEOUT, Publisher::connect(&self.broker));
        match attempt.await {
            Ok(Ok(publisher)) => {
                connection.publisher = Some(publisher);
                connection.generation += 1;
                tracing::info!(broker = %self.broker.redacted_url(), "connected to broker");
                self.mark_up(connection);
            }
            Ok(Err(e)) => {
                self.count_failure(&e);
                self.mark_down(connection, &e.to_string());
            }
            Err(_) => {
                self.metrics
                    .publish_failures
                    .with_label_values(&[publish_failure::TIMEOUT])
                    .inc();
                self.mark_down(connection, "connect timed out");
            }
        }
    }

    /// No traffic: make sure /ready still tells the truth about the broker.
    async fn check_idle(&self) {
        let mut connection = self.connection.lock().await;
        match connection.publisher.clone() {
            Some(publisher) => {
                match tokio::time::timeout(OPERATION_TIMEOUT, publisher.ping()).await {
                    Ok(Ok(())) => self.mark_up(&mut connection),
                    Ok(Err(e)) => self.mark_down(&mut connection, &e.to_string()),
                    Err(_) => self.mark_down(&mut connection, "ping timed out"),
                }
            }
            None if Instant::now() >= connection.next_attempt => {
                self.try_connect(&mut connection).await;
            }
            None => {}
        }
    }

    fn mark_up(&self, connection: &mut Connection) {
        connection.backoff = FIRST_BACKOFF;
        if !self.readiness.is_met(BROKER_REACHABLE) {
            self.readiness.set_met(BROKER_REACHABLE);
        }
        self.metrics.broker_up.set(1);
    }

    fn mark_down(&self, connection: &mut Connection, why: &str) {
        if connection.publisher.is_some() || self.readiness.is_met(BROKER_REACHABLE) {
            tracing::warn!(
                broker = %self.broker.redacted_url(),
                error = why,
                "broker unreachable; buffering and reconnecting"
            );
        }
        connection.publisher = None;
        connection.next_attempt = Instant::now() + connection.backoff;
        connection.backoff = (connection.backoff * 2).min(self.max_backoff.max(FIRST_BACKOFF));
        self.readiness.set_not_met(BROKER_REACHABLE, why);
        self.metrics.broker_up.set(0);
    }

    fn count_failure(&self, e: &BrokerError) {
        let reason = match e {
            BrokerError::Unreachable { .. } => publish_failure::UNREACHABLE,
            BrokerError::Rejected { .. } => publish_failure::REJECTED,
            BrokerError::Closed { .. } => publish_failure::CLOSED,
            _ => publish_failure::PROTOCOL,
        };
        self.metrics
            .publish_failures
            .with_label_values(&[reason])
            .inc();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A publish task that fails (a bug) does not take its frames away silently.
    #[tokio::test]
    async fn a_failed_publish_task_counts_its_frames_as_lost() {
        let metrics = AgentMetrics::new("test").unwrap();
        let mut tasks: JoinSet<Outcome> = JoinSet::new();
        let mut sizes = HashMap::new();
        let failing = tasks.spawn(async { panic!("a bug in a publish task") });
        sizes.insert(failing.id(), 256);
        let ok = tasks.spawn(async { Outcome::Delivered });
        sizes.insert(ok.id(), 10);
        while let Some(joined) = tasks.join_next_with_id().await {
            assert!(!settle(joined, &mut sizes, &metrics));
        }
        assert!(sizes.is_empty());
        assert_eq!(metrics.dropped(drop_reason::INTERNAL), 256);
    }
}

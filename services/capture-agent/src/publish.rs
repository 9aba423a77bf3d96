//! The publisher task: takes frames from the bounded buffer in batches, encodes each batch as
//! one message and publishes it, reconnecting with exponential backoff while the broker is
//! down. It stops once the capture side has closed the buffer and everything is published (or,
//! after shutdown, once the grace period is over; what is left is counted as dropped).

use std::sync::Arc;
use std::time::Duration;

use shared::broker::codec::encode_frames;
use shared::broker::{BrokerConfig, BrokerError, Publisher};
use shared::frame::Frame;
use shared::ops::Readiness;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::metrics::{AgentMetrics, drop_reason, publish_failure};

/// The original's message for one packet; `created` is local time at one-second resolution,
/// as the original wrote it.
fn legacy_body(frame: &Frame, source: &str) -> Vec<u8> {
    let created = chrono::DateTime::from_timestamp_nanos(frame.ts_ns)
        .with_timezone(&chrono::Local)
        .format("%Y-%m-%d %H:%M:%S")
        .to_string();
    let message = shared::schema::legacy::message_from_frame(frame, &created, source);
    serde_json::to_vec(&message).unwrap_or_default()
}

/// Readiness condition owned by this task.
pub const BROKER_REACHABLE: &str = "broker reachable";

/// How long one connect or publish may take before it counts as failed.
const OPERATION_TIMEOUT: Duration = Duration::from_secs(10);
/// While idle, how often the broker is pinged so /ready stays truthful.
const IDLE_CHECK: Duration = Duration::from_secs(2);
const FIRST_BACKOFF: Duration = Duration::from_millis(100);

/// How frames become message bodies.
#[derive(Debug, Clone)]
pub enum Encoding {
    /// One message per batch: a JSON array of frames (Redis Streams, AMQP, memory).
    FrameBatch,
    /// One message per packet in the original's format (kombu+redis://), with its `source`.
    LegacyPerPacket { source: String },
}

impl Encoding {
    pub fn for_url(url: &str, source: &str) -> Self {
        if url.starts_with("kombu+") {
            Encoding::LegacyPerPacket {
                source: source.to_string(),
            }
        } else {
            Encoding::FrameBatch
        }
    }
}

pub struct PublishTask {
    pub rx: mpsc::Receiver<Frame>,
    /// A connection made at start-up, if the broker was reachable then.
    pub connected: Option<Publisher>,
    pub encoding: Encoding,
    pub broker: BrokerConfig,
    pub batch_size: usize,
    pub batch_delay: Duration,
    pub metrics: Arc<AgentMetrics>,
    pub readiness: Readiness,
    pub shutdown: CancellationToken,
    pub shutdown_grace: Duration,
    pub max_backoff: Duration,
}

/// Why a batch could not be delivered.
enum Undelivered {
    /// Refused by the broker (not retryable); the batch is dropped and counted.
    Rejected,
    /// Shutdown grace period over with the broker still unreachable.
    GaveUp,
}

struct Connection {
    publisher: Option<Publisher>,
    backoff: Duration,
    next_attempt: Instant,
}

impl PublishTask {
    pub async fn run(mut self) {
        let mut connection = Connection {
            publisher: self.connected.take(),
            backoff: FIRST_BACKOFF,
            next_attempt: Instant::now(),
        };
        if connection.publisher.is_some() {
            self.mark_up(&mut connection);
        } else {
            self.try_connect(&mut connection).await;
        }
        let batch_size = self.batch_size.max(1);
        let mut batch: Vec<Frame> = Vec::with_capacity(batch_size);
        loop {
            let received = tokio::select! {
                n = self.rx.recv_many(&mut batch, batch_size) => n,
                () = tokio::time::sleep(IDLE_CHECK) => {
                    self.check_idle(&mut connection).await;
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
            let messages: Vec<(u64, Vec<u8>)> = match &self.encoding {
                Encoding::FrameBatch => vec![(batch.len() as u64, encode_frames(&batch))],
                Encoding::LegacyPerPacket { source } => batch
                    .iter()
                    .map(|frame| (1, legacy_body(frame, source)))
                    .collect(),
            };
            batch.clear();
            let mut messages = messages.into_iter();
            while let Some((frames, body)) = messages.next() {
                match self.deliver(&mut connection, body).await {
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
                        self.give_up(left);
                        return;
                    }
                }
            }
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

    /// Publishes one message, retrying while the broker is unreachable.
    async fn deliver(&self, connection: &mut Connection, body: Vec<u8>) -> Result<(), Undelivered> {
        let mut grace_deadline: Option<Instant> = None;
        loop {
            if self.shutdown.is_cancelled() {
                let deadline = *grace_deadline.get_or_insert(Instant::now() + self.shutdown_grace);
                if Instant::now() >= deadline {
                    return Err(Undelivered::GaveUp);
                }
            }
            if connection.publisher.is_none() {
                tokio::select! {
                    () = tokio::time::sleep_until(connection.next_attempt) => {}
                    () = self.shutdown.cancelled(), if grace_deadline.is_none() => continue,
                }
                self.try_connect(connection).await;
                continue;
            }
            let Some(publisher) = connection.publisher.clone() else {
                continue;
            };
            let attempt =
                tokio::time::timeout(OPERATION_TIMEOUT, publisher.publish(body.clone())).await;
            match attempt {
                Ok(Ok(())) => {
                    self.mark_up(connection);
                    return Ok(());
                }
                Ok(Err(e)) if e.is_retryable() => {
                    self.count_failure(&e);
                    self.mark_down(connection, &e.to_string());
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
                    self.mark_down(connection, "publish timed out");
                }
            }
        }
    }

    async fn try_connect(&self, connection: &mut Connection) {
        let attempt = tokio::time::timeout(OPERATION_TIMEOUT, Publisher::connect(&self.broker));
        match attempt.await {
            Ok(Ok(publisher)) => {
                connection.publisher = Some(publisher);
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
    async fn check_idle(&self, connection: &mut Connection) {
        match connection.publisher.clone() {
            Some(publisher) => {
                match tokio::time::timeout(OPERATION_TIMEOUT, publisher.ping()).await {
                    Ok(Ok(())) => self.mark_up(connection),
                    Ok(Err(e)) => self.mark_down(connection, &e.to_string()),
                    Err(_) => self.mark_down(connection, "ping timed out"),
                }
            }
            None if Instant::now() >= connection.next_attempt => {
                self.try_connect(connection).await;
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

    /// Shutdown grace is over: count the in-flight batch and everything still buffered.
    fn give_up(&mut self, in_flight: u64) {
        self.rx.close();
        let mut left = in_flight;
        while self.rx.try_recv().is_ok() {
            left += 1;
        }
        self.metrics
            .packets_dropped
            .with_label_values(&[drop_reason::SHUTDOWN])
            .inc_by(left);
        self.metrics.buffered_frames.set(0);
        tracing::error!(
            frames = left,
            "broker still unreachable at the end of the shutdown grace period; frames lost"
        );
    }
}

//! The flow: intake (owns the broker consumer: reads, acks, dead-letters) -> batcher (decodes
//! row batches, writes row JSON, cuts batches by size or delay) -> senders (one task per batch,
//! at most `max_in_flight`) -> back to intake with each batch's outcome.
//!
//! A broker message is acknowledged only when every one of its rows was accepted (201); rows
//! refused with a 4xx go to the dead-letter stream with the response; rows still unsent at
//! shutdown stay unacknowledged so the broker delivers them again.
//!
//! The intake and the batcher are the main loop that /health follows (see `probes`): both wake
//! at least every `BEAT_INTERVAL`, also while idle or waiting.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use netpipe_runtime::broker::codec::RowBatch;
use netpipe_runtime::broker::{BrokerError, Consumer, Message};
use netpipe_runtime::ops::Readiness;
use tokio::sync::{Semaphore, mpsc};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::api::Api;
use crate::auth::Auth;
use crate::batch::{Batch, Part, RowBatchRef};
use crate::body::BodyBuilder;
use crate::metrics::PublisherMetrics;
use crate::predictions::PollJob;
use crate::probes::{BEAT_INTERVAL, Liveness, READY_BROKER, READY_DELIVERY, beating};
use netpipe_runtime::service::{Backoff, sleep_or_shutdown};

/// What happened to a batch.
#[derive(Debug, Clone)]
pub enum Outcome {
    Accepted,
    /// A 4xx other than 401: the rows go to the dead-letter stream with this reason.
    Refused(String),
    /// Shutdown before the server accepted it: left unacknowledged.
    Abandoned,
}

#[derive(Debug)]
pub enum Event {
    Decoded { message: u64, rows: usize },
    Undecodable { message: u64, reason: String },
    BatchDone { parts: Vec<Part>, outcome: Outcome },
}

/// Settings and shared handles for the batcher and senders.
pub struct Context {
    pub builder: BodyBuilder,
    pub api: Api,
    pub auth: Arc<Auth>,
    pub metrics: PublisherMetrics,
    pub liveness: Liveness,
    pub batch_rows: usize,
    pub batch_delay: Duration,
    pub max_in_flight: usize,
    pub retry_initial: Duration,
    pub retry_max: Duration,
    pub polls: Option<mpsc::Sender<PollJob>>,
    pub shutdown: CancellationToken,
    pub delivery: DeliveryHealth,
}

/// Consecutive failed POST /ml/ attempts (over all senders), and /ready's verdict on them.
pub struct DeliveryHealth {
    readiness: Readiness,
    threshold: u32,
    failures: std::sync::atomic::AtomicU32,
}

impl DeliveryHealth {
    /// `threshold` failures in a row make /ready 503; 0 = never. Starts ready.
    pub fn new(readiness: Readiness, threshold: u32) -> Self {
        readiness.set_met(READY_DELIVERY);
        DeliveryHealth {
            readiness,
            threshold,
            failures: std::sync::atomic::AtomicU32::new(0),
        }
    }

    fn delivered(&self) {
        if self.failures.swap(0, std::sync::atomic::Ordering::Relaxed) > 0 {
            self.readiness.set_met(READY_DELIVERY);
        }
    }

    fn failed(&self, reason: &str) {
        let n = self
            .failures
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            .saturating_add(1);
        if self.threshold > 0 && n >= self.threshold {
            self.readiness.set_not_met(
                READY_DELIVERY,
                format!("{n} POST /ml/ attempts in a row failed; last: {reason}"),
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------
// intake

#[derive(Debug)]
struct Tracked {
    message: Arc<Message>,
    total: Option<usize>,
    settled: usize,
    refused: Vec<(usize, usize)>,
    reason: Option<String>,
    abandoned: bool,
}

/// Counts the intake keeps for the summary.
#[derive(Debug, Default, Clone, Copy)]
pub struct IntakeCounts {
    pub messages_received: u64,
    pub rows_abandoned: u64,
}

pub struct Intake {
    pub consumer: Consumer,
    pub prefetch: usize,
    pub metrics: PublisherMetrics,
    pub readiness: Readiness,
    pub liveness: Liveness,
    pub retry_initial: Duration,
    pub retry_max: Duration,
}

impl Intake {
    /// Runs until the input is closed (or shutdown) and every message read has been settled.
    pub async fn run(
        mut self,
        to_batcher: mpsc::Sender<(u64, Arc<Message>)>,
        mut events: mpsc::UnboundedReceiver<Event>,
        shutdown: CancellationToken,
    ) -> IntakeCounts {
        let mut counts = IntakeCounts::default();
        let mut tracked: HashMap<u64, Tracked> = HashMap::new();
        let mut next_id: u64 = 0;
        let mut to_batcher = Some(to_batcher);
        let mut backoff = Backoff::new(self.retry_initial, self.retry_max);
        let liveness = self.liveness.clone();
        let beat = || liveness.beat_intake();
        loop {
            beat();
            let mut pending = Vec::new();
            while let Ok(event) = events.try_recv() {
                pending.push(event);
            }
            self.settle(&mut tracked, pending, &mut counts).await;

            if shutdown.is_cancelled() {
                to_batcher = None;
            }
            if let Some(sender) = &to_batcher {
                // Returns within the broker's block time, also when nothing comes.
                match self.consumer.receive(self.prefetch).await {
                    Ok(messages) => {
                        backoff.reset();
                        self.readiness.set_met(READY_BROKER);
                        for message in messages {
                            let id = next_id;
                            next_id += 1;
                            counts.messages_received += 1;
                            let message = Arc::new(message);
                            tracked.insert(
                                id,
                                Tracked {
                                    message: message.clone(),
                                    total: None,
                                    settled: 0,
                                    refused: Vec::new(),
                                    reason: None,
                                    abandoned: false,
                                },
                            );
                            // Waits while the batcher is busy: that is the back-pressure.
                            if beating(sender.send((id, message)), beat).await.is_err() {
                                to_batcher = None;
                                break;
                            }
                        }
                    }
                    Err(BrokerError::Closed { .. }) => {
                        tracing::info!("rows stream closed; finishing what is in flight");
                        to_batcher = None;
                    }
                    Err(error) => {
                        self.readiness.set_not_met(READY_BROKER, error.to_string());
                        let delay = backoff.next_delay();
                        tracing::warn!(%error, retry_in_ms = delay.as_millis() as u64, "reading the rows stream failed");
                        beating(sleep_or_shutdown(delay, &shutdown), beat).await;
                    }
                }
                continue;
            }
            // Input finished: wait for the outcomes of what was read.
            match beating(events.recv(), beat).await {
                Some(event) => self.settle(&mut tracked, vec![event], &mut counts).await,
                None => break,
            }
        }
        for t in tracked.values() {
            let unsettled = t.total.unwrap_or(0).saturating_sub(t.settled);
            counts.rows_abandoned += unsettled as u64;
        }
        counts
    }

    async fn settle(
        &mut self,
        tracked: &mut HashMap<u64, Tracked>,
        events: Vec<Event>,
        counts: &mut IntakeCounts,
    ) {
        if events.is_empty() {
            return;
        }
        let mut finished = Vec::new();
        for event in events {
            match event {
                Event::Decoded { message, rows } => {
                    if let Some(t) = tracked.get_mut(&message) {
                        t.total = Some(rows);
                        if t.settled >= rows {
                            finished.push(message);
                        }
                    }
                }
                Event::Undecodable { message, reason } => {
                    if let Some(t) = tracked.remove(&message) {
                        self.dead_letter(&t.message, &reason).await;
                    }
                }
                Event::BatchDone { parts, outcome } => {
                    for part in parts {
                        let Some(t) = tracked.get_mut(&part.message) else {
                            continue;
                        };
                        t.settled += part.len;
                        match &outcome {
                            Outcome::Accepted => {}
                            Outcome::Refused(reason) => {
                                t.refused.push((part.start, part.len));
                                t.reason.get_or_insert_with(|| reason.clone());
                            }
                            Outcome::Abandoned => t.abandoned = true,
                        }
                        if t.total.is_some_and(|total| t.settled >= total) {
                            finished.push(part.message);
                        }
                    }
                }
            }
        }
        let mut acks = Vec::new();
        for id in finished {
            let Some(t) = tracked.remove(&id) else {
                continue;
            };
            if t.abandoned {
                // Not acknowledged: the broker redelivers it to whoever consumes next.
                let rows = t.total.unwrap_or(0) as u64;
                counts.rows_abandoned += rows;
                continue;
            }
            if let Some(reason) = &t.reason {
                let subset = refused_rows(&t.message, &t.refused);
                self.metrics
                    .rows_dead_lettered
                    .inc_by(t.refused.iter().map(|(_, len)| *len as u64).sum());
                self.dead_letter(&subset, reason).await;
                continue;
            }
            acks.push(t.message.token.clone());
        }
        if !acks.is_empty() {
            match self.consumer.ack(&acks).await {
                Ok(()) => self.metrics.messages_acked.inc_by(acks.len() as u64),
                Err(error) => {
                    // The rows were delivered; the broker will deliver them again (at-least-once).
                    tracing::warn!(%error, messages = acks.len(), "acknowledging rows failed");
                }
            }
        }
    }

    async fn dead_letter(&mut self, message: &Message, reason: &str) {
        // One broker call per message: beat between them so a long series is not a stall.
        self.liveness.beat_intake();
        match self.consumer.dead_letter(message, reason).await {
            Ok(()) => {
                self.metrics.dead_letters.inc();
                tracing::warn!(reason, "rows sent to the dead-letter stream");
            }
            Err(error) => {
                tracing::error!(%error, reason, "dead-lettering failed; the message stays unacknowledged")
            }
        }
    }
}

/// The same message with only the refused rows, so the dead-letter stream holds exactly them.
fn refused_rows(message: &Message, ranges: &[(usize, usize)]) -> Message {
    let Ok(mut batch) = RowBatch::decode(&message.body) else {
        return message.clone();
    };
    let rows = std::mem::take(&mut batch.rows);
    batch.rows = rows
        .into_iter()
        .enumerate()
        .filter(|(i, _)| {
            ranges
                .iter()
                .any(|(start, len)| *i >= *start && *i < start + len)
        })
        .map(|(_, row)| row)
        .collect();
    Message {
        body: batch.encode(),
        ..message.clone()
    }
}

// ---------------------------------------------------------------------------------------------
// batcher

/// Runs until `messages` closes; then sends what it holds and waits for every sender.
pub async fn run_batcher(
    mut messages: mpsc::Receiver<(u64, Arc<Message>)>,
    context: Context,
    events: mpsc::UnboundedSender<Event>,
) {
    let context = Arc::new(context);
    let in_flight = Arc::new(Semaphore::new(context.max_in_flight.max(1)));
    let mut senders = JoinSet::new();
    let mut batch = Batch::with_capacity(context.batch_rows, 256);
    let mut deadline: Option<Instant> = None;
    let mut bytes_per_row = 256;
    let keep_identities = context.polls.is_some();
    loop {
        context.liveness.beat_batcher();
        // Wakes for the batch deadline, and at least every BEAT_INTERVAL while idle.
        let idle_tick = Instant::now() + BEAT_INTERVAL;
        let wake = deadline.map_or(idle_tick, |at| at.min(idle_tick));
        let next = tokio::select! {
            next = messages.recv() => next,
            _ = tokio::time::sleep_until(wake) => {
                if deadline.is_some_and(|at| Instant::now() >= at) {
                    let full = std::mem::replace(&mut batch, Batch::with_capacity(context.batch_rows, bytes_per_row));
                    dispatch(full, &context, &in_flight, &mut senders, &events).await;
                    deadline = None;
                }
                continue;
            }
        };
        let Some((id, message)) = next else { break };
        let rows = match serde_json::from_slice::<RowBatchRef>(&message.body) {
            Ok(rows) => rows,
            Err(e) => {
                context.metrics.undecodable_messages.inc();
                let _ = events.send(Event::Undecodable {
                    message: id,
                    reason: format!("not a row batch: {e}"),
                });
                continue;
            }
        };
        let _ = events.send(Event::Decoded {
            message: id,
            rows: rows.rows.len(),
        });
        context.metrics.rows_received.inc_by(rows.rows.len() as u64);
        context.metrics.backlog_rows.add(rows.rows.len() as i64);
        let columns = context.builder.column_map(&rows.columns);
        let mut failed = 0;
        for (index, row) in rows.rows.iter().enumerate() {
            if batch.is_empty() {
                deadline = Some(Instant::now() + context.batch_delay);
            }
            batch.add_row(id, index, &row.agent, row.seq, keep_identities);
            failed += context
                .builder
                .write_row(&columns, &row.cells, &mut batch.rows_json);
            if batch.rows >= context.batch_rows {
                bytes_per_row = (batch.rows_json.len() / batch.rows).max(16) + 16;
                let full = std::mem::replace(
                    &mut batch,
                    Batch::with_capacity(context.batch_rows, bytes_per_row),
                );
                dispatch(full, &context, &in_flight, &mut senders, &events).await;
                deadline = None;
            }
        }
        if failed > 0 {
            context.metrics.failed_conversions.inc_by(failed as u64);
        }
        while senders.try_join_next().is_some() {}
    }
    if !batch.is_empty() {
        dispatch(batch, &context, &in_flight, &mut senders, &events).await;
    }
    let beat = || context.liveness.beat_batcher();
    while let Some(result) = beating(senders.join_next(), beat).await {
        if let Err(e) = result {
            tracing::error!(error = %e, "a batch sender failed");
        }
    }
}

async fn dispatch(
    batch: Batch,
    context: &Arc<Context>,
    in_flight: &Arc<Semaphore>,
    senders: &mut JoinSet<()>,
    events: &mpsc::UnboundedSender<Event>,
) {
    if batch.is_empty() {
        return;
    }
    // Senders are bounded (request timeout, backoff sleeps) but retry for as long as the API
    // fails: waiting for one of them is not a stall.
    let beat = || context.liveness.beat_batcher();
    let Ok(permit) = beating(in_flight.clone().acquire_owned(), beat).await else {
        return;
    };
    let context = context.clone();
    let events = events.clone();
    senders.spawn(async move {
        let _permit = permit;
        let rows = batch.rows as i64;
        context.metrics.in_flight.inc();
        let outcome = send_batch(&context, batch, &events).await;
        context.metrics.in_flight.dec();
        context.metrics.backlog_rows.sub(rows);
        drop(outcome);
    });
}

// ---------------------------------------------------------------------------------------------
// sender

#[derive(serde::Deserialize)]
struct Created {
    job: Option<IdOnly>,
    results: Option<IdOnly>,
}

#[derive(serde::Deserialize)]
struct IdOnly {
    id: Option<i64>,
}

/// 408 and 429 mean "try later", not "this body is wrong".
fn is_refusal(status: u16) -> bool {
    (400..500).contains(&status) && !matches!(status, 401 | 408 | 429)
}

async fn send_batch(
    context: &Context,
    batch: Batch,
    events: &mpsc::UnboundedSender<Event>,
) -> Outcome {
    let key = batch.idempotency_key(context.builder.model_name());
    let body = context.builder.body(&batch.rows_json);
    let Batch {
        parts,
        identities,
        rows,
        ..
    } = batch;
    let metrics = &context.metrics;
    let mut backoff = Backoff::new(context.retry_initial, context.retry_max);
    let mut unauthorized_in_a_row = 0u32;
    // The last attempt timed out: the API may have stored the rows, and cannot deduplicate.
    let mut resending = false;
    let outcome = loop {
        let Some(token) = context.auth.token(&context.shutdown).await else {
            break Outcome::Abandoned;
        };
        if resending {
            metrics.rows_resent.inc_by(rows as u64);
        }
        let started = std::time::Instant::now();
        let result = context.api.post_ml(&token.value, body.clone(), &key).await;
        metrics
            .request_seconds
            .observe(started.elapsed().as_secs_f64());
        let retry_reason = match result {
            Ok(reply) => {
                // An answer: the API says what it did with this attempt.
                resending = false;
                metrics
                    .batches
                    .with_label_values(&[&reply.status.to_string()])
                    .inc();
                match reply.status {
                    201 => {
                        context.delivery.delivered();
                        metrics.rows_sent.inc_by(rows as u64);
                        if let Some(polls) = &context.polls {
                            queue_poll(polls, &reply.body, identities, metrics);
                        }
                        break Outcome::Accepted;
                    }
                    401 => {
                        metrics.unauthorized.inc();
                        context.auth.reject(&token);
                        unauthorized_in_a_row += 1;
                        // A fresh token refused as well: something is wrong, slow down.
                        if unauthorized_in_a_row < 2 {
                            continue;
                        }
                        format!("HTTP 401 with a fresh token: {}", reply.excerpt())
                    }
                    status if is_refusal(status) => {
                        let reason = format!(
                            "AntiNex refused the batch: HTTP {status}: {}",
                            reply.excerpt()
                        );
                        break Outcome::Refused(reason);
                    }
                    status => format!("HTTP {status}: {}", reply.excerpt()),
                }
            }
            Err(error) => {
                metrics.batches.with_label_values(&[error.label()]).inc();
                resending = matches!(error, crate::api::TransportError::Timeout);
                error.to_string()
            }
        };
        context.delivery.failed(&retry_reason);
        metrics.retries.inc();
        let delay = backoff.next_delay();
        tracing::warn!(
            reason = retry_reason.as_str(),
            rows,
            attempt = backoff.attempts(),
            retry_in_ms = delay.as_millis() as u64,
            "POST /ml/ failed; will retry"
        );
        if !sleep_or_shutdown(delay, &context.shutdown).await {
            break Outcome::Abandoned;
        }
    };
    let _ = events.send(Event::BatchDone {
        parts,
        outcome: outcome.clone(),
    });
    outcome
}

fn queue_poll(
    polls: &mpsc::Sender<PollJob>,
    body: &[u8],
    rows: Vec<crate::batch::RowIdentity>,
    metrics: &PublisherMetrics,
) {
    let Ok(created) = serde_json::from_slice::<Created>(body) else {
        metrics
            .predictions_skipped
            .with_label_values(&["no_ids"])
            .inc();
        return;
    };
    let (Some(job_id), Some(result_id)) = (
        created.job.and_then(|j| j.id),
        created.results.and_then(|r| r.id),
    ) else {
        metrics
            .predictions_skipped
            .with_label_values(&["no_ids"])
            .inc();
        return;
    };
    if polls
        .try_send(PollJob {
            job_id,
            result_id,
            rows,
        })
        .is_err()
    {
        metrics
            .predictions_skipped
            .with_label_values(&["queue_full"])
            .inc();
    }
}

//! The broker side of the processor. One task owns the consumer: it receives and decodes the
//! next messages while the writer appends and fsyncs the previous ones (JSON decoding is most of
//! the processor's CPU), dead-letters poison itself, and acknowledges on the writer's behalf.
//! Messages are decoded and handed over `DECODE_CHUNK` at a time; at most `READ_AHEAD` decoded
//! chunks wait for the writer, so memory stays bounded.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use netpipe_runtime::broker::{AckToken, BrokerError, Consumer, ConsumerStats, Message};
use netpipe_runtime::ops::{Readiness, Throttle};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::metrics::{ProcessorMetrics, dead_letter_reason};
use netpipe_runtime::broker::arrival::Arrived;

/// Bytes of a poison message copied into the dead-letter stream.
pub const DEAD_LETTER_MAX_BODY: usize = 64 * 1024;

/// Decoded batches that may wait for the writer.
const READ_AHEAD: usize = 2;
/// Messages decoded and handed over at a time, however many one receive brought: the writer
/// appends one chunk while the next is decoded, also when the consumer has fallen behind, and
/// at most `READ_AHEAD` chunks are held decoded.
const DECODE_CHUNK: usize = 4;
/// Messages taken per receive at most (the Redis read's COUNT), whatever `--prefetch` allows
/// the broker to hand out ahead (AMQP's window): small reads keep Redis writing a reply, the
/// client parsing the previous one and the decoder working at once, where a 64-message reply
/// (~10 MB) held all three up in turn (10k-packet end-to-end run, median of 20: 45.5 -> 43 ms).
pub const RECEIVE_MAX: usize = 2 * DECODE_CHUNK;
/// How often the broker is asked for the consumer lag.
const LAG_INTERVAL: Duration = Duration::from_secs(2);
/// At most one log line per this interval for dead letters (the counter is exact).
const DEAD_LETTER_LOG_INTERVAL: Duration = Duration::from_secs(10);
pub const READY_BROKER: &str = "broker";
const RETRY_MIN: Duration = Duration::from_millis(100);
const RETRY_MAX: Duration = Duration::from_secs(5);

/// One decoded message, to be appended and then acknowledged with `token`.
pub struct Decoded {
    pub token: AckToken,
    pub input: Arrived,
}

/// What one `receive` gave. Empty when the broker had nothing within its block time.
pub struct Batch {
    pub messages: u64,
    pub decoded: Vec<Decoded>,
    /// Reasons of the messages dead-lettered from this batch (already acknowledged).
    pub dead_lettered: Vec<&'static str>,
    pub stats: ConsumerStats,
}

pub enum Received {
    Batch(Batch),
    /// A memory stream was closed and drained: nothing more will come.
    Closed,
    /// A broker error that retrying cannot fix.
    Failed(BrokerError),
}

enum Command {
    Ack(Vec<AckToken>, oneshot::Sender<Result<(), BrokerError>>),
    Stats(oneshot::Sender<ConsumerStats>),
}

/// The writer's handle on the receiver task.
pub struct Receiver {
    batches: mpsc::Receiver<Received>,
    commands: mpsc::Sender<Command>,
    task: JoinHandle<Consumer>,
}

pub struct ReceiverConfig {
    pub max_messages: usize,
    pub max_message_bytes: usize,
    /// Original-format messages can only become antinex-v1 rows.
    pub accepts_legacy: bool,
    /// Stop receiving once this many packets were handed over (STOP_AFTER_NUM).
    pub stop_after: Option<u64>,
}

impl Receiver {
    pub fn spawn(
        consumer: Consumer,
        config: ReceiverConfig,
        metrics: ProcessorMetrics,
        readiness: Readiness,
        shutdown: CancellationToken,
    ) -> Receiver {
        let (batch_tx, batches) = mpsc::channel(READ_AHEAD);
        let (commands, command_rx) = mpsc::channel(4);
        let task = tokio::spawn(
            Task {
                consumer,
                config,
                metrics,
                readiness,
                shutdown,
                commands: command_rx,
                handed_over: 0,
                next_lag: Instant::now(),
                dead_letter_log: Throttle::new(DEAD_LETTER_LOG_INTERVAL),
                backlog: VecDeque::new(),
                receiving: true,
                exported: ConsumerStats::default(),
                lost_pending_log: Throttle::new(DEAD_LETTER_LOG_INTERVAL),
            }
            .run(batch_tx),
        );
        Receiver {
            batches,
            commands,
            task,
        }
    }

    /// The next batch; `None` once the task has stopped handing out batches and none is left.
    pub async fn next(&mut self) -> Option<Received> {
        self.batches.recv().await
    }

    /// Acknowledges `tokens` through the task's consumer.
    pub async fn ack(&self, tokens: Vec<AckToken>) -> Result<(), BrokerError> {
        let (reply, answer) = oneshot::channel();
        let gone = || BrokerError::Closed {
            name: "processor receiver".into(),
        };
        self.commands
            .send(Command::Ack(tokens, reply))
            .await
            .map_err(|_| gone())?;
        answer.await.map_err(|_| gone())?
    }

    /// The consumer's counters now (a batch carries them too, but the last one may not have
    /// come before a shutdown).
    pub async fn stats(&self) -> Option<ConsumerStats> {
        let (reply, answer) = oneshot::channel();
        self.commands.send(Command::Stats(reply)).await.ok()?;
        answer.await.ok()
    }

    /// Stops the task (it acknowledges nothing more) and closes the consumer. Batches not yet
    /// taken are dropped unacknowledged: the broker delivers them again.
    pub async fn close(self) {
        drop(self.commands);
        drop(self.batches);
        match self.task.await {
            Ok(consumer) => consumer.close().await,
            Err(error) => tracing::error!(message = "The receiver task failed.", %error),
        }
    }
}

struct Task {
    consumer: Consumer,
    config: ReceiverConfig,
    metrics: ProcessorMetrics,
    readiness: Readiness,
    shutdown: CancellationToken,
    commands: mpsc::Receiver<Command>,
    handed_over: u64,
    next_lag: Instant,
    dead_letter_log: Throttle,
    /// Received messages not yet decoded (at most one receive's worth).
    backlog: VecDeque<Message>,
    /// False once shutdown, STOP_AFTER_NUM, a closed stream or a fatal error ended receiving;
    /// the task then only serves acknowledgements until the writer closes it.
    receiving: bool,
    /// Consumer counters already added to the metrics.
    exported: ConsumerStats,
    lost_pending_log: Throttle,
}

impl Task {
    async fn run(mut self, batches: mpsc::Sender<Received>) -> Consumer {
        let mut delay = RETRY_MIN;
        loop {
            if !self.receiving {
                match self.commands.recv().await {
                    Some(command) => self.serve(command).await,
                    None => return self.consumer,
                }
                continue;
            }
            // Room for one more batch; acknowledgements are served while the writer is busy.
            let permit = tokio::select! {
                biased;
                command = self.commands.recv() => {
                    match command {
                        Some(command) => self.serve(command).await,
                        None => return self.consumer,
                    }
                    continue;
                }
                _ = self.shutdown.cancelled() => {
                    self.receiving = false;
                    continue;
                }
                // The writer may be stuck (commits failing): the lag gauge stays current.
                _ = tokio::time::sleep_until(self.next_lag.into()) => {
                    self.report_lag().await;
                    continue;
                }
                permit = batches.reserve() => match permit {
                    Ok(permit) => permit,
                    Err(_) => return self.consumer,
                },
            };
            if self.backlog.is_empty() {
                let received = tokio::select! {
                    _ = self.shutdown.cancelled() => {
                        self.receiving = false;
                        continue;
                    }
                    received = self.consumer.receive(self.config.max_messages) => received,
                };
                match received {
                    Ok(messages) => {
                        self.readiness.set_met(READY_BROKER);
                        delay = RETRY_MIN;
                        if messages.is_empty() {
                            permit.send(Received::Batch(self.decode(Vec::new()).await));
                            self.report_lag().await;
                            continue;
                        }
                        self.backlog.extend(messages);
                    }
                    Err(BrokerError::Closed { .. }) => {
                        permit.send(Received::Closed);
                        self.receiving = false;
                        continue;
                    }
                    Err(error) if error.is_retryable() => {
                        drop(permit);
                        self.readiness.set_not_met(READY_BROKER, error.to_string());
                        tracing::warn!(message = "Receive failed; retrying.", %error);
                        tokio::select! {
                            _ = self.shutdown.cancelled() => self.receiving = false,
                            _ = tokio::time::sleep(delay) => {}
                        }
                        delay = (delay * 2).min(RETRY_MAX);
                        continue;
                    }
                    Err(error) => {
                        permit.send(Received::Failed(error));
                        self.receiving = false;
                        continue;
                    }
                }
            }
            let chunk: Vec<Message> = self
                .backlog
                .drain(..self.backlog.len().min(DECODE_CHUNK))
                .collect();
            let batch = self.decode(chunk).await;
            self.handed_over += batch.decoded.iter().map(|d| d.input.packets()).sum::<u64>();
            if self
                .config
                .stop_after
                .is_some_and(|n| self.handed_over >= n)
            {
                // What is left of the backlog stays unacknowledged and is delivered again.
                self.receiving = false;
            }
            permit.send(Received::Batch(batch));
            self.report_lag().await;
        }
    }

    async fn serve(&mut self, command: Command) {
        match command {
            Command::Ack(tokens, reply) => {
                let result = self.consumer.ack(&tokens).await;
                self.export_stats();
                // The writer may have given up waiting; then it retries with the same tokens.
                let _ = reply.send(result);
            }
            Command::Stats(reply) => {
                self.export_stats();
                let _ = reply.send(self.consumer.stats());
            }
        }
    }

    async fn decode(&mut self, messages: Vec<Message>) -> Batch {
        let mut batch = Batch {
            messages: messages.len() as u64,
            decoded: Vec::with_capacity(messages.len()),
            dead_lettered: Vec::new(),
            stats: ConsumerStats::default(),
        };
        self.metrics.messages_received.inc_by(batch.messages);
        for message in messages {
            let input = match Arrived::decode(&message, self.config.max_message_bytes) {
                Ok(Arrived::Legacy(_)) if !self.config.accepts_legacy => {
                    Err(dead_letter_reason::LEGACY_WITHOUT_ANTINEX)
                }
                other => other,
            };
            match input {
                Ok(input) => batch.decoded.push(Decoded {
                    token: message.token,
                    input,
                }),
                Err(reason) => {
                    if self.dead_letter(&message, reason).await {
                        batch.dead_lettered.push(reason);
                    }
                }
            }
        }
        batch.stats = self.consumer.stats();
        self.export_stats();
        batch
    }

    /// Adds what the consumer counted since the last call to the metrics; pending messages found
    /// deleted are a loss and are logged (at most once per interval).
    fn export_stats(&mut self) {
        let now = self.consumer.stats();
        let lost = now.lost_pending.saturating_sub(self.exported.lost_pending);
        if lost > 0 {
            self.metrics.broker_lost_pending.inc_by(lost);
            if let Some(since_last) = self.lost_pending_log.hit(lost) {
                tracing::error!(
                    message = "Pending messages were deleted from the stream before they were processed (a stream cap trimmed them): lost.",
                    messages = since_last,
                    total = now.lost_pending,
                );
            }
        }
        self.metrics.stream_trimmed.inc_by(
            now.trimmed_acked
                .saturating_sub(self.exported.trimmed_acked),
        );
        self.exported = now;
    }

    /// Sends a poison message to the dead-letter stream (which acknowledges it). If that fails
    /// the message stays unacknowledged and comes back later; nothing is lost.
    async fn dead_letter(&mut self, message: &Message, reason: &'static str) -> bool {
        // The dead-letter stream keeps evidence, not a second copy of a huge poison message:
        // its first DEAD_LETTER_MAX_BODY bytes (the original length is in the log line).
        let bytes = message.bytes();
        let cut;
        let kept = if bytes.len() > DEAD_LETTER_MAX_BODY || message.frames.is_some() {
            cut = Message::encoded(
                bytes.get(..DEAD_LETTER_MAX_BODY).unwrap_or(&bytes).to_vec(),
                message.token.clone(),
                message.redelivered,
            );
            &cut
        } else {
            message
        };
        match self.consumer.dead_letter(kept, reason).await {
            Ok(()) => {
                self.metrics.dead_letters.with_label_values(&[reason]).inc();
                if let Some(since_last) = self.dead_letter_log.hit(1) {
                    tracing::warn!(
                        message = "Poison messages dead-lettered.",
                        since_last_report = since_last,
                        last_reason = reason,
                        last_bytes = bytes.len()
                    );
                }
                true
            }
            Err(error) => {
                tracing::error!(message = "Dead-lettering failed; the message will come again.", reason, %error);
                false
            }
        }
    }

    /// Updates the consumer lag gauge every `LAG_INTERVAL`; a failure only leaves it stale.
    async fn report_lag(&mut self) {
        if Instant::now() < self.next_lag {
            return;
        }
        self.next_lag = Instant::now() + LAG_INTERVAL;
        match self.consumer.lag().await {
            Ok(Some(lag)) => self.metrics.consumer_lag.set(lag as i64),
            Ok(None) => {}
            Err(error) => tracing::debug!(message = "Consumer lag unknown.", %error),
        }
        match self.consumer.group_pending().await {
            Ok(Some(pending)) => self.metrics.consumer_pending.set(pending as i64),
            Ok(None) => {}
            Err(error) => tracing::debug!(message = "Group pending count unknown.", %error),
        }
    }
}

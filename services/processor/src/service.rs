//! The processor's `run`: its main loop (receive, append, commit, acknowledge) and the ops
//! server around it.

use std::time::{Duration, Instant};

use netpipe_runtime::broker::{AckToken, Consumer, ConsumerStats, Publisher};
use netpipe_runtime::ops::{Heartbeat, OpsState, Readiness, serve_at};
use netpipe_runtime::service::{Backoff, RetryOutcome, sleep_or_shutdown};
use tokio_util::sync::CancellationToken;

use crate::datasets::{AppendCounts, Datasets, schema_by_name};
use crate::metrics::ProcessorMetrics;
use crate::receiver::{Batch, READY_BROKER, RECEIVE_MAX, Received, Receiver, ReceiverConfig};
use crate::{Config, ProcessorError, Summary};
use netpipe_runtime::broker::arrival::Arrived;

const READY_DATASET: &str = "dataset";
/// Rows per message on the rows stream.
const FORWARD_BATCH_ROWS: usize = 1000;
const IDLE_WAKE: Duration = Duration::from_secs(1);
const RETRY_MIN: Duration = Duration::from_millis(100);
const RETRY_MAX: Duration = Duration::from_secs(5);
const COMMIT_RETRY_MIN: Duration = Duration::from_millis(250);

/// Runs until `shutdown`, STOP_AFTER_NUM packets, or the end of a memory:// stream; then
/// commits, acknowledges and closes the files.
pub async fn run(config: Config, shutdown: CancellationToken) -> Result<Summary, ProcessorError> {
    let mut schema_names: Vec<String> = Vec::new();
    for name in &config.schemas {
        let name = name.trim().to_string();
        if !name.is_empty() && !schema_names.contains(&name) {
            schema_names.push(name);
        }
    }
    if schema_names.is_empty() {
        return Err(ProcessorError::Config(
            "at least one --schema is needed".into(),
        ));
    }
    let schemas = schema_names
        .iter()
        .map(|n| schema_by_name(n))
        .collect::<Result<Vec<_>, _>>()
        .map_err(ProcessorError::Config)?;
    let mut config = config;
    config.schemas = schema_names.clone();
    // A mistyped URL fails here, before any dataset file is created.
    let packet_broker = config.broker()?;
    let rows_broker = config.rows_broker()?;

    let metrics = ProcessorMetrics::new(env!("CARGO_PKG_VERSION"), &schema_names)?;
    let readiness = Readiness::new();
    readiness.declare(&[READY_DATASET, READY_BROKER]);
    let heartbeat = Heartbeat::new(Duration::from_secs(30));
    let ops_shutdown = shutdown.child_token();
    let ops_server = serve_at(
        &config.common.ops_addr,
        OpsState::new(heartbeat.clone(), readiness.clone(), metrics.ops.clone()),
        ops_shutdown.clone(),
    )
    .await?;

    if config.flows && !netpipe_runtime::broker::flow_batch::carries_flows(&config.broker_url) {
        return Err(ProcessorError::Config(
            "--flows needs a redis:// or amqp:// broker (memory:// and kombu+redis:// carry no flow stream)".into(),
        ));
    }
    // --flows: the flow stream on its own consumer and dataset; it stops with the packet loop.
    let flow_stop = shutdown.child_token();
    let flows_task = config.flows.then(|| {
        tokio::spawn(crate::flows::run(
            config.clone(),
            metrics.clone(),
            flow_stop.clone(),
        ))
    });

    let result = async {
        let Some(datasets) = open_datasets(
            &config, &schemas, &readiness, &heartbeat, &metrics, &shutdown,
        )
        .await?
        else {
            return Ok(Summary::default());
        };
        let mut broker = packet_broker;
        broker.block = broker.block.min(config.commit_interval());
        let _durability = netpipe_runtime::broker::spawn_durability_report(
            broker.clone(),
            readiness.clone(),
            metrics.broker_durable.clone(),
            shutdown.child_token(),
        );
        let Some(consumer) = connect_with_retry(&broker, &readiness, &heartbeat, &shutdown).await?
        else {
            datasets.close()?;
            return Ok(Summary::default());
        };
        let rows_publisher = match rows_broker {
            Some(rows) => Some(Publisher::connect(&rows).await?),
            None => None,
        };
        let receiver = Receiver::spawn(
            consumer,
            ReceiverConfig {
                max_messages: usize::from(config.prefetch.max(1)).min(RECEIVE_MAX),
                max_message_bytes: config.max_message_bytes,
                accepts_legacy: datasets.has_antinex(),
                stop_after: config.stop_after(),
            },
            metrics.clone(),
            readiness.clone(),
            shutdown.clone(),
        );
        let state = LoopState {
            config: &config,
            metrics: &metrics,
            readiness: &readiness,
            heartbeat: &heartbeat,
            shutdown: &shutdown,
            receiver,
            rows_publisher,
            datasets: Some(datasets),
            unacked: Vec::new(),
            packets_since_commit: 0,
            oldest_pending: None,
            summary: Summary {
                rows_written: schema_names.iter().map(|n| (n.clone(), 0)).collect(),
                ..Default::default()
            },
        };
        state.run().await
    }
    .await;
    flow_stop.cancel();
    let result = match flows_task {
        None => result,
        Some(task) => {
            let flows = task
                .await
                .map_err(|e| ProcessorError::Internal(format!("flow task: {e}")))
                .and_then(|r| r);
            match (result, flows) {
                (Ok(mut summary), Ok(flows)) => {
                    summary.flows = Some(flows);
                    Ok(summary)
                }
                (Err(e), _) | (Ok(_), Err(e)) => Err(e),
            }
        }
    };

    ops_shutdown.cancel();
    if let Some(server) = ops_server {
        let _ = server.task.await;
    }
    result
}

/// Opens the writers, retrying (not ready) while the directory is unusable.
/// `None` when shutdown came first.
async fn open_datasets(
    config: &Config,
    schemas: &[&'static netpipe_packet::schema::ColumnSchema],
    readiness: &Readiness,
    heartbeat: &Heartbeat,
    metrics: &ProcessorMetrics,
    shutdown: &CancellationToken,
) -> Result<Option<Datasets>, ProcessorError> {
    let mut backoff = Backoff::new(RETRY_MIN, RETRY_MAX);
    let first_failure = Instant::now();
    loop {
        heartbeat.beat();
        let attempt = {
            let config = config.clone();
            let schemas = schemas.to_vec();
            tokio::task::spawn_blocking(move || Datasets::open(&config, &schemas))
                .await
                .map_err(|e| ProcessorError::Internal(e.to_string()))?
        };
        match attempt {
            Ok((datasets, reports)) => {
                for report in &reports {
                    metrics
                        .repaired_torn_lines
                        .inc_by(report.torn_lines_truncated);
                    metrics
                        .repaired_uncommitted_rows
                        .inc_by(report.uncommitted_rows_truncated);
                    tracing::info!(
                        message = "Dataset file opened.",
                        path = %report.path.display(),
                        recovered_agents = report.recovered_agents,
                        torn_lines_truncated = report.torn_lines_truncated,
                        uncommitted_rows_truncated = report.uncommitted_rows_truncated,
                    );
                }
                readiness.set_met(READY_DATASET);
                return Ok(Some(datasets));
            }
            Err(netpipe_runtime::dataset::DatasetError::Config(reason)) => {
                return Err(ProcessorError::Config(reason));
            }
            Err(error) => {
                readiness.set_not_met(READY_DATASET, error.to_string());
                if gave_up(config, first_failure) {
                    return Err(error.into());
                }
                tracing::error!(message = "Cannot open the dataset; retrying.", %error);
                if !sleep_or_shutdown(backoff.next_delay(), shutdown).await {
                    return Err(error.into());
                }
            }
        }
    }
}

async fn connect_with_retry(
    broker: &netpipe_runtime::broker::BrokerConfig,
    readiness: &Readiness,
    heartbeat: &Heartbeat,
    shutdown: &CancellationToken,
) -> Result<Option<Consumer>, ProcessorError> {
    let mut backoff = Backoff::new(RETRY_MIN, RETRY_MAX);
    let outcome = netpipe_runtime::service::connect_with_retry(
        &mut backoff,
        shutdown,
        Some(heartbeat),
        || Consumer::connect(broker),
        |error| error.is_retryable(),
        |error, _| {
            readiness.set_not_met(READY_BROKER, error.to_string());
            tracing::warn!(message = "Broker unreachable; retrying.", %error);
        },
    )
    .await;
    match outcome {
        RetryOutcome::Connected(consumer) => {
            readiness.set_met(READY_BROKER);
            tracing::info!(
                message = "Consuming.",
                broker = %broker.redacted_url(),
                stream = %broker.stream,
                group = %broker.group,
                consumer = %broker.consumer,
            );
            Ok(Some(consumer))
        }
        RetryOutcome::Failed(error) => Err(error.into()),
        RetryOutcome::Shutdown => Ok(None),
    }
}

/// True once `--give-up-secs` have passed since the first of a run of failures.
fn gave_up(config: &Config, first_failure: Instant) -> bool {
    config
        .give_up_after()
        .is_some_and(|limit| first_failure.elapsed() >= limit)
}

/// Messages the consumer found deleted on the broker since the last note go into the summary
/// and the manifests' loss figures.
fn note_broker_loss(summary: &mut Summary, datasets: &mut Datasets, stats: &ConsumerStats) {
    let lost = stats
        .lost_pending
        .saturating_sub(summary.broker_lost_pending);
    if lost > 0 {
        summary.broker_lost_pending += lost;
        datasets.note_broker_loss("pending_trimmed", lost);
    }
}

/// What a commit is for.
#[derive(Debug, Clone, Copy)]
enum Commit {
    /// SAVE_AFTER_NUM or the commit interval: the file stays open.
    Snapshot,
    /// The last one before exit: the manifest write also marks the files closed.
    Closing,
}

struct LoopState<'a> {
    config: &'a Config,
    metrics: &'a ProcessorMetrics,
    readiness: &'a Readiness,
    heartbeat: &'a Heartbeat,
    shutdown: &'a CancellationToken,
    receiver: Receiver,
    rows_publisher: Option<Publisher>,
    /// Taken while a commit runs on the blocking pool.
    datasets: Option<Datasets>,
    /// Messages whose rows are buffered (or already durable but not yet acknowledged).
    unacked: Vec<AckToken>,
    packets_since_commit: u64,
    oldest_pending: Option<Instant>,
    summary: Summary,
}

impl LoopState<'_> {
    async fn run(mut self) -> Result<Summary, ProcessorError> {
        let save_after = self.config.save_after();
        let stop_after = self.config.stop_after();
        let interval = self.config.commit_interval();
        loop {
            self.heartbeat.beat();
            if stop_after.is_some_and(|n| self.summary.packets >= n) {
                tracing::info!(
                    message = "STOP_AFTER_NUM reached.",
                    packets = self.summary.packets
                );
                break;
            }
            let due = self.packets_since_commit >= save_after
                || self.oldest_pending.is_some_and(|t| t.elapsed() >= interval);
            if due && !self.commit_and_ack(Commit::Snapshot).await? {
                break;
            }
            // Wake up for a time-based commit even when the broker is silent, and at least
            // every second so the heartbeat stays fresh whatever the commit interval.
            let wait = self
                .oldest_pending
                .map_or(interval, |t| interval.saturating_sub(t.elapsed()))
                .min(IDLE_WAKE);
            let received = tokio::select! {
                _ = self.shutdown.cancelled() => break,
                _ = tokio::time::sleep(wait) => continue,
                received = self.receiver.next() => received,
            };
            match received {
                Some(Received::Batch(batch)) => self.handle(batch),
                Some(Received::Closed) => {
                    tracing::info!(message = "The stream was closed; finishing.");
                    break;
                }
                Some(Received::Failed(error)) => {
                    // Keep what is buffered: commit and acknowledge it before failing.
                    self.finish().await?;
                    return Err(error.into());
                }
                None => return Err(ProcessorError::Internal("the receiver stopped".into())),
            }
        }
        self.finish().await
    }

    fn handle(&mut self, batch: Batch) {
        self.summary.messages += batch.messages;
        self.metrics.redelivered.set(batch.stats.redelivered as i64);
        let Some(datasets) = self.datasets.as_mut() else {
            return;
        };
        for reason in batch.dead_lettered {
            self.summary.dead_letters += 1;
            datasets.note_dead_letter(reason);
        }
        note_broker_loss(&mut self.summary, datasets, &batch.stats);
        let mut counts = AppendCounts::default();
        let mut packets = 0;
        for decoded in batch.decoded {
            match decoded.input {
                Arrived::Frames(frames) => {
                    for frame in frames.iter() {
                        datasets.append_frame(frame, &mut counts);
                    }
                    packets += frames.len() as u64;
                }
                Arrived::Legacy(legacy) => {
                    datasets.append_legacy(&legacy, &mut counts);
                    packets += 1;
                }
                Arrived::AgentStats(stats) => {
                    self.metrics.agent_reports.inc();
                    datasets.note_agent_stats(&stats);
                }
            }
            self.unacked.push(decoded.token);
            self.oldest_pending.get_or_insert_with(Instant::now);
        }
        self.count_packets(packets);
        self.record_drops(counts);
        self.metrics.messages_unacked.set(self.unacked.len() as i64);
    }

    fn count_packets(&mut self, n: u64) {
        self.summary.packets += n;
        self.packets_since_commit += n;
        self.metrics.packets_received.inc_by(n);
    }

    fn record_drops(&mut self, counts: AppendCounts) {
        self.summary.duplicates += counts.duplicates + counts.below_window;
        let dedup = &self.metrics.dedup_dropped;
        dedup
            .with_label_values(&["duplicate"])
            .inc_by(counts.duplicates);
        dedup
            .with_label_values(&["below_window"])
            .inc_by(counts.below_window);
        if counts.legacy_skipped > 0 {
            self.metrics
                .legacy_rows_skipped
                .with_label_values(&["netpipe"])
                .inc_by(counts.legacy_skipped);
        }
    }

    /// Commits the datasets (retrying while the disk fails, not ready meanwhile), forwards the
    /// committed rows, then acknowledges. False when shutdown interrupted a failing commit.
    async fn commit_and_ack(&mut self, kind: Commit) -> Result<bool, ProcessorError> {
        let mut backoff = Backoff::new(COMMIT_RETRY_MIN, RETRY_MAX);
        let first_failure = Instant::now();
        loop {
            self.heartbeat.beat();
            let Some(mut datasets) = self.datasets.take() else {
                return Err(ProcessorError::Internal("datasets missing".into()));
            };
            let (datasets, result) = tokio::task::spawn_blocking(move || {
                let result = match kind {
                    Commit::Snapshot => datasets.commit(),
                    Commit::Closing => datasets.commit_closing(),
                };
                (datasets, result)
            })
            .await
            .map_err(|e| ProcessorError::Internal(e.to_string()))?;
            self.datasets = Some(datasets);
            match result {
                Ok(reports) => {
                    self.readiness.set_met(READY_DATASET);
                    for (schema, report) in reports {
                        if report.rows > 0 {
                            self.metrics
                                .rows_written
                                .with_label_values(&[schema])
                                .inc_by(report.rows);
                            self.metrics
                                .fsync_seconds
                                .observe(report.fsync.as_secs_f64());
                        }
                        if let Some((_, n)) = self
                            .summary
                            .rows_written
                            .iter_mut()
                            .find(|(name, _)| name == schema)
                        {
                            *n += report.rows;
                        }
                    }
                    self.metrics.snapshots.inc();
                    self.summary.commits += 1;
                    break;
                }
                Err(error) => {
                    self.metrics.commit_failures.inc();
                    self.readiness.set_not_met(READY_DATASET, error.to_string());
                    tracing::error!(
                        message = "Commit failed; nothing acknowledged, retrying.",
                        %error
                    );
                    if self.shutdown.is_cancelled() || gave_up(self.config, first_failure) {
                        return Err(error.into());
                    }
                    if !sleep_or_shutdown(backoff.next_delay(), self.shutdown).await {
                        return Err(error.into());
                    }
                }
            }
        }
        if let Some(datasets) = &self.datasets {
            self.metrics.missing_seq.set(datasets.missing_seq() as i64);
        }
        self.forward_rows().await;
        self.ack().await;
        self.packets_since_commit = 0;
        self.oldest_pending = None;
        Ok(true)
    }

    async fn forward_rows(&mut self) {
        let (Some(publisher), Some(datasets)) = (&self.rows_publisher, self.datasets.as_mut())
        else {
            return;
        };
        for batch in datasets.take_forward(FORWARD_BATCH_ROWS) {
            let rows = batch.rows.len() as u64;
            match publisher.publish(batch.encode()).await {
                Ok(()) => self.metrics.rows_forwarded.inc_by(rows),
                Err(error) => {
                    self.metrics.rows_forward_failures.inc();
                    tracing::warn!(
                        message = "Rows not forwarded (they are in the dataset file).",
                        rows,
                        %error
                    );
                }
            }
        }
    }

    /// Acknowledges everything durable. On failure the tokens are kept for the next commit;
    /// if the broker redelivers meanwhile, the dedup window drops the copies.
    async fn ack(&mut self) {
        if self.unacked.is_empty() {
            return;
        }
        match self.receiver.ack(self.unacked.clone()).await {
            Ok(()) => self.unacked.clear(),
            Err(error) => {
                tracing::warn!(message = "Acknowledgement failed; will retry.", %error);
            }
        }
        self.metrics.messages_unacked.set(self.unacked.len() as i64);
    }

    async fn finish(mut self) -> Result<Summary, ProcessorError> {
        if let (Some(stats), Some(datasets)) = (self.receiver.stats().await, self.datasets.as_mut())
        {
            note_broker_loss(&mut self.summary, datasets, &stats);
        }
        self.commit_and_ack(Commit::Closing).await?;
        if let Some(datasets) = self.datasets.take() {
            self.summary.files = datasets.paths();
            tokio::task::spawn_blocking(move || datasets.close())
                .await
                .map_err(|e| ProcessorError::Internal(e.to_string()))??;
        }
        self.receiver.close().await;
        tracing::info!(
            message = "Processor finished.",
            packets = self.summary.packets,
            commits = self.summary.commits,
            duplicates = self.summary.duplicates,
            dead_letters = self.summary.dead_letters,
        );
        Ok(self.summary)
    }
}

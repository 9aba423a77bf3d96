//! `--flows`: the capture-agents' flow records ([`netpipe_runtime::broker::flow_batch`]) from their own
//! stream/queue into a flow dataset, `{DS_NAME}-flows-*.csv`, with the packet rows' guarantees:
//! rows are appended and fsynced (with the manifest: counts, agents, gaps, dead letters) before
//! the messages are acknowledged, and redeliveries are dropped by (agent, boot, flow id).
//! A crash therefore loses no acknowledged flow and writes none twice.
//!
//! Runs beside the packet loop on its own consumer; it stops when the packet loop does.

use std::path::PathBuf;
use std::time::Duration;

use netpipe_runtime::broker::flow_batch::{FlowBatch, flow_dataset_schema};
use netpipe_runtime::broker::{AckToken, BrokerError, Consumer};
use netpipe_runtime::dataset::{AppendOutcome, DatasetWriter, RowId};
use tokio_util::sync::CancellationToken;

use crate::metrics::ProcessorMetrics;
use crate::{Config, ProcessorError};

/// Dead-letter reason of a message on the flow stream that is not a flow batch.
pub const BAD_FLOW_BATCH: &str = crate::metrics::flow_dead_letter_reason::BAD_FLOW_BATCH;
const MAX_MESSAGES: usize = 8;
const RETRY_MIN: Duration = Duration::from_millis(100);
const RETRY_MAX: Duration = Duration::from_secs(5);

/// What the flow side of a run did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FlowSummary {
    pub messages: u64,
    /// Flow rows made durable.
    pub flows_written: u64,
    /// Flow rows dropped as already written (redeliveries).
    pub duplicates: u64,
    pub dead_letters: u64,
    pub file: Option<PathBuf>,
}

/// Consumes the flow stream until `stop`; commits and acknowledges what it received. The
/// `processor_flow_*` metrics count what it does.
pub async fn run(
    config: Config,
    metrics: ProcessorMetrics,
    stop: CancellationToken,
) -> Result<FlowSummary, ProcessorError> {
    let mut broker = config.flow_broker()?;
    broker.block = broker.block.min(config.commit_interval());
    let dataset = config.flow_dataset();
    let (mut writer, report) =
        tokio::task::spawn_blocking(move || DatasetWriter::open(dataset, flow_dataset_schema()))
            .await
            .map_err(|e| ProcessorError::Internal(e.to_string()))??;
    tracing::info!(
        message = "Flow dataset opened.",
        path = %report.path.display(),
        torn_lines_truncated = report.torn_lines_truncated,
        uncommitted_rows_truncated = report.uncommitted_rows_truncated,
    );
    let mut summary = FlowSummary::default();
    let Some(mut consumer) = connect(&broker, &stop).await? else {
        summary.file = Some(writer.path().to_path_buf());
        tokio::task::spawn_blocking(move || writer.close())
            .await
            .map_err(|e| ProcessorError::Internal(e.to_string()))??;
        return Ok(summary);
    };
    let mut delay = RETRY_MIN;
    loop {
        // Checked between receives, not raced with one: a receive cut short could leave
        // delivered messages pending until they are reclaimed. A receive waits at most
        // the commit interval.
        if stop.is_cancelled() {
            break;
        }
        let messages = match consumer.receive(MAX_MESSAGES).await {
            Ok(messages) => {
                delay = RETRY_MIN;
                messages
            }
            Err(BrokerError::Closed { .. }) => break,
            Err(e) if e.is_retryable() => {
                tracing::warn!(message = "Flow stream: receive failed; retrying.", error = %e);
                tokio::select! {
                    () = tokio::time::sleep(delay) => {}
                    () = stop.cancelled() => break,
                }
                delay = (delay * 2).min(RETRY_MAX);
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        if messages.is_empty() {
            continue;
        }
        let mut tokens: Vec<AckToken> = Vec::with_capacity(messages.len());
        for message in &messages {
            summary.messages += 1;
            metrics.flow_messages_received.inc();
            match FlowBatch::decode(&message.body) {
                Ok(batch) => {
                    for row in &batch.rows {
                        let id = RowId {
                            agent: &batch.agent,
                            boot: batch.boot,
                            // Flow ids count from 0 per run; the dedup key is (agent, boot, seq).
                            seq: batch.boot.saturating_add(row.id),
                            ts_ns: row.first_seen_ms.saturating_mul(1_000_000),
                        };
                        let dropped = match writer.append_line(id, row.csv.as_bytes()) {
                            AppendOutcome::Buffered => {
                                summary.flows_written += 1;
                                continue;
                            }
                            AppendOutcome::Duplicate => "duplicate",
                            AppendOutcome::BelowWindow => "below_window",
                        };
                        summary.duplicates += 1;
                        metrics
                            .flow_dedup_dropped
                            .with_label_values(&[dropped])
                            .inc();
                    }
                    tokens.push(message.token.clone());
                }
                Err(error) => {
                    tracing::warn!(
                        message = "Flow stream: message dead-lettered.",
                        reason = BAD_FLOW_BATCH,
                        %error
                    );
                    consumer.dead_letter(message, BAD_FLOW_BATCH).await?;
                    writer.note_dead_letter(BAD_FLOW_BATCH);
                    summary.dead_letters += 1;
                    metrics
                        .flow_dead_letters
                        .with_label_values(&[BAD_FLOW_BATCH])
                        .inc();
                }
            }
        }
        // Durable first, acknowledged after: a crash in between only causes redeliveries.
        commit(&mut writer, &metrics)?;
        consumer.ack(&tokens).await?;
    }
    commit(&mut writer, &metrics)?;
    summary.file = Some(writer.path().to_path_buf());
    tokio::task::spawn_blocking(move || writer.close())
        .await
        .map_err(|e| ProcessorError::Internal(e.to_string()))??;
    consumer.close().await;
    Ok(summary)
}

/// Appends and fsyncs what is buffered; the metrics count only what became durable.
fn commit(writer: &mut DatasetWriter, metrics: &ProcessorMetrics) -> Result<(), ProcessorError> {
    let report = writer.commit()?;
    metrics.flow_rows_written.inc_by(report.rows);
    metrics
        .flow_missing_seq
        .set(i64::try_from(writer.missing_seq()).unwrap_or(i64::MAX));
    Ok(())
}

async fn connect(
    broker: &netpipe_runtime::broker::BrokerConfig,
    stop: &CancellationToken,
) -> Result<Option<Consumer>, ProcessorError> {
    let mut delay = RETRY_MIN;
    loop {
        match Consumer::connect(broker).await {
            Ok(consumer) => {
                tracing::info!(message = "Consuming flows.", stream = %broker.stream);
                return Ok(Some(consumer));
            }
            Err(error) if error.is_retryable() => {
                tracing::warn!(message = "Flow stream: broker unreachable; retrying.", %error);
                tokio::select! {
                    () = tokio::time::sleep(delay) => {}
                    () = stop.cancelled() => return Ok(None),
                }
                delay = (delay * 2).min(RETRY_MAX);
            }
            Err(error) => return Err(error.into()),
        }
    }
}

//! The processor's counters, declared once. Label values are fixed here.

use netpipe_runtime::ops::{Metrics, MetricsError};
use prometheus::{Histogram, IntCounter, IntCounterVec, IntGauge};

/// Why a broker message was dead-lettered.
pub mod dead_letter_reason {
    // What the broker layer tells apart when it decodes a message (`arrival::reason`).
    pub use netpipe_runtime::broker::arrival::reason::{
        BAD_AGENT_STATS, BAD_FRAME, BAD_LEGACY, INVALID_FRAME, NOT_JSON, OVERSIZED, WRONG_VERSION,
    };
    /// An original message while no antinex-v1 schema is configured (it cannot become a
    /// netpipe row).
    pub const LEGACY_WITHOUT_ANTINEX: &str = "legacy_without_antinex_schema";
    pub const ALL: [&str; 8] = [
        NOT_JSON,
        BAD_FRAME,
        WRONG_VERSION,
        INVALID_FRAME,
        OVERSIZED,
        BAD_LEGACY,
        LEGACY_WITHOUT_ANTINEX,
        BAD_AGENT_STATS,
    ];
}

#[derive(Debug, Clone)]
pub struct ProcessorMetrics {
    pub ops: Metrics,
    pub messages_received: IntCounter,
    pub packets_received: IntCounter,
    pub rows_written: IntCounterVec,
    pub snapshots: IntCounter,
    pub fsync_seconds: Histogram,
    pub dedup_dropped: IntCounterVec,
    pub dead_letters: IntCounterVec,
    pub legacy_rows_skipped: IntCounterVec,
    pub commit_failures: IntCounter,
    pub rows_forwarded: IntCounter,
    pub rows_forward_failures: IntCounter,
    pub messages_unacked: IntGauge,
    pub redelivered: IntGauge,
    pub consumer_lag: IntGauge,
    pub consumer_pending: IntGauge,
    pub broker_lost_pending: IntCounter,
    pub broker_durable: IntGauge,
    pub stream_trimmed: IntCounter,
    pub agent_reports: IntCounter,
    pub missing_seq: IntGauge,
    pub repaired_torn_lines: IntCounter,
    pub repaired_uncommitted_rows: IntCounter,
    /// --flows: the flow stream's side, named like the packet side with a `flow_` prefix.
    pub flow_messages_received: IntCounter,
    pub flow_rows_written: IntCounter,
    pub flow_dedup_dropped: IntCounterVec,
    pub flow_dead_letters: IntCounterVec,
    pub flow_missing_seq: IntGauge,
}

/// Why a message on the flow stream was dead-lettered.
pub mod flow_dead_letter_reason {
    /// Not a flow batch (bad JSON, wrong schema version, no agent).
    pub const BAD_FLOW_BATCH: &str = "bad_flow_batch";
    pub const ALL: [&str; 1] = [BAD_FLOW_BATCH];
}

impl ProcessorMetrics {
    pub fn new(version: &str, schemas: &[String]) -> Result<Self, MetricsError> {
        let ops = Metrics::new("processor", "processor", version)?;
        let schema_names: Vec<&str> = schemas.iter().map(String::as_str).collect();
        let metrics = ProcessorMetrics {
            messages_received: ops.counter(
                "messages_received_total",
                "Broker messages received (redeliveries included)",
            )?,
            packets_received: ops.counter(
                "packets_received_total",
                "Packets (frames or original messages) in valid broker messages",
            )?,
            rows_written: ops.counter_vec(
                "rows_written_total",
                "Rows made durable (appended and fsynced), by schema",
                "schema",
                &schema_names,
            )?,
            snapshots: ops.counter("snapshots_total", "Commits: append + fsync + manifest")?,
            fsync_seconds: ops.histogram(
                "fsync_seconds",
                "Time of the data fsync of one commit",
                vec![
                    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
                ],
            )?,
            dedup_dropped: ops.counter_vec(
                "dedup_dropped_total",
                "Packets dropped because (agent, seq) was already written, by kind",
                "kind",
                &["duplicate", "below_window"],
            )?,
            dead_letters: ops.counter_vec(
                "dead_letters_total",
                "Broker messages sent to the dead-letter stream, by reason",
                "reason",
                &dead_letter_reason::ALL,
            )?,
            legacy_rows_skipped: ops.counter_vec(
                "legacy_rows_skipped_total",
                "Original-format messages a schema cannot represent (netpipe), by schema",
                "schema",
                &schema_names,
            )?,
            commit_failures: ops.counter(
                "commit_failures_total",
                "Commits that failed (nothing committed, nothing acknowledged; retried)",
            )?,
            rows_forwarded: ops
                .counter("rows_forwarded_total", "Rows published to the rows stream")?,
            rows_forward_failures: ops.counter(
                "rows_forward_failures_total",
                "Row batches that could not be published to the rows stream (rows stay in the CSV)",
            )?,
            messages_unacked: ops.gauge(
                "messages_unacked",
                "Messages received and not yet acknowledged (consumer lag held by this process)",
            )?,
            redelivered: ops.gauge(
                "messages_redelivered",
                "Messages the broker delivered again (reclaimed or requeued) since start",
            )?,
            consumer_lag: ops.gauge(
                "consumer_lag_messages",
                "Messages waiting on the broker, not yet delivered to any consumer of the group",
            )?,
            consumer_pending: ops.gauge(
                "consumer_pending_messages",
                "Messages delivered to the group's consumers and not yet acknowledged (Redis XINFO GROUPS pending)",
            )?,
            broker_lost_pending: ops.counter(
                "broker_lost_pending_total",
                "Delivered, unacknowledged messages whose data the broker had deleted (a stream cap) when this consumer came to them: lost",
            )?,
            broker_durable: {
                let gauge = ops.gauge(
                    "broker_durable",
                    "1 when the broker keeps accepted messages across a crash (Redis AOF, RabbitMQ quorum queue), 0 when not, -1 unknown",
                )?;
                gauge.set(-1);
                gauge
            },
            agent_reports: ops.counter(
                "agent_reports_total",
                "In-band loss reports of capture-agents received (kept in the manifests)",
            )?,
            stream_trimmed: ops.counter(
                "stream_trimmed_total",
                "Acknowledged messages trimmed from the stream (XTRIM MINID up to what every group acknowledged)",
            )?,
            missing_seq: ops.gauge(
                "missing_seq",
                "Sequence numbers never received, summed over remembered agent runs",
            )?,
            repaired_torn_lines: ops.counter(
                "repaired_torn_lines_total",
                "Torn last lines cut from dataset files at start-up",
            )?,
            repaired_uncommitted_rows: ops.counter(
                "repaired_uncommitted_rows_total",
                "Uncommitted rows cut from dataset files at start-up",
            )?,
            flow_messages_received: ops.counter(
                "flow_messages_received_total",
                "Flow-stream messages received, redeliveries included (--flows)",
            )?,
            flow_rows_written: ops.counter(
                "flow_rows_written_total",
                "Flow records made durable (appended and fsynced) in the flow dataset (--flows)",
            )?,
            flow_dedup_dropped: ops.counter_vec(
                "flow_dedup_dropped_total",
                "Flow records dropped because (agent, boot, flow id) was already written, by kind (--flows)",
                "kind",
                &["duplicate", "below_window"],
            )?,
            flow_dead_letters: ops.counter_vec(
                "flow_dead_letters_total",
                "Flow-stream messages sent to the dead-letter stream, by reason (--flows)",
                "reason",
                &flow_dead_letter_reason::ALL,
            )?,
            flow_missing_seq: ops.gauge(
                "flow_missing_seq",
                "Flow ids never received (flow records lost before the processor), summed over remembered agent runs (--flows)",
            )?,
            ops,
        };
        Ok(metrics)
    }
}

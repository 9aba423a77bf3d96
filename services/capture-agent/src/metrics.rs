//! The agent's counters. Every way a packet can be lost has a `reason` on
//! `capture_agent_packets_dropped_total`; label values are fixed here.

use std::time::Duration;

use netpipe_packet::frame::DecodeIssue;
use netpipe_runtime::ops::{CountedEvent, Metrics, MetricsError};
use prometheus::{IntCounter, IntCounterVec, IntGauge};

/// Why packets were lost.
pub mod drop_reason {
    /// libpcap/kernel ring buffer full (`ps_drop`).
    pub const KERNEL: &str = "kernel";
    /// Dropped by the interface or driver (`ps_ifdrop`).
    pub const INTERFACE: &str = "interface";
    /// Our bounded buffer was full (live capture drops the newest packet).
    pub const BUFFER_FULL: &str = "buffer_full";
    /// The broker refused a batch (not retryable).
    pub const BROKER_REJECTED: &str = "broker_rejected";
    /// Still buffered when the shutdown grace period ran out with the broker unreachable.
    pub const SHUTDOWN: &str = "shutdown";
    /// Live capture: the broker already held --max-backlog messages (no processor keeping up).
    pub const BROKER_BACKLOG: &str = "broker_backlog";
    /// A publish task failed (a bug): its batch is counted, never silently gone.
    pub const INTERNAL: &str = "internal";
    pub const ALL: [&str; 7] = [
        KERNEL,
        INTERFACE,
        BUFFER_FULL,
        BROKER_REJECTED,
        SHUTDOWN,
        BROKER_BACKLOG,
        INTERNAL,
    ];
}

/// Why finished flow records (--flows) were lost.
pub mod flow_drop_reason {
    /// The bounded queue between the flow meter and the flow publisher was full (live capture).
    pub const BUFFER_FULL: &str = "buffer_full";
    /// The broker refused a flow batch (not retryable).
    pub const BROKER_REJECTED: &str = "broker_rejected";
    /// Still queued when the shutdown grace period ran out with the broker unreachable.
    pub const SHUTDOWN: &str = "shutdown";
    /// The live flow meter thread died; the flows it held are lost.
    pub const METER_DIED: &str = "meter_died";
    pub const ALL: [&str; 4] = [BUFFER_FULL, BROKER_REJECTED, SHUTDOWN, METER_DIED];
}

/// Why a publish attempt failed.
pub mod publish_failure {
    pub const UNREACHABLE: &str = "unreachable";
    pub const PROTOCOL: &str = "protocol";
    pub const REJECTED: &str = "rejected";
    pub const CLOSED: &str = "closed";
    pub const TIMEOUT: &str = "timeout";
    pub const ALL: [&str; 5] = [UNREACHABLE, PROTOCOL, REJECTED, CLOSED, TIMEOUT];
}

/// Counters shared by the capture thread and the publisher task.
#[derive(Debug)]
pub struct AgentMetrics {
    pub ops: Metrics,
    pub packets_captured: IntCounter,
    /// Packets a file filter left out (replay with --filter).
    pub packets_filtered: IntCounter,
    /// Packets a resumed replay skipped: an earlier run had them confirmed (--resume).
    pub packets_resume_skipped: IntCounter,
    pub frames_published: IntCounter,
    pub batches_published: IntCounter,
    pub packets_dropped: IntCounterVec,
    pub publish_failures: IntCounterVec,
    pub broker_rejections: IntCounter,
    pub decode_issues: Vec<IntCounter>,
    pub buffered_frames: IntGauge,
    pub broker_up: IntGauge,
    /// Messages the broker held at the last check (Redis Streams XLEN).
    pub broker_backlog: IntGauge,
    /// 1 when the broker keeps accepted messages across its crash, 0 when not, -1 unknown.
    pub broker_durable: IntGauge,
    /// Stream entries (messages) deleted unread by an opt-in --max-len cap.
    pub stream_trimmed_unread: IntCounter,
    pub backlog_drops: CountedEvent,
    pub kernel_drops: CountedEvent,
    pub interface_drops: CountedEvent,
    pub buffer_drops: CountedEvent,
    /// --flows: finished flow records, published ones, lost ones by reason, and packets the
    /// live flow meter's queue could not take.
    pub flows_emitted: IntCounter,
    pub flows_published: IntCounter,
    pub flows_dropped: IntCounterVec,
    pub flow_meter_packets_dropped: IntCounter,
}

impl AgentMetrics {
    pub fn new(version: &str) -> Result<Self, MetricsError> {
        let ops = Metrics::new("capture_agent", "capture-agent", version)?;
        let packets_dropped = ops.counter_vec(
            "packets_dropped_total",
            "Packets lost, by reason",
            "reason",
            &drop_reason::ALL,
        )?;
        let issue_names: Vec<&str> = DecodeIssue::ALL.iter().map(|i| i.as_str()).collect();
        let decode_issue_vec = ops.counter_vec(
            "decode_issues_total",
            "Frames with a part that could not be decoded, by reason (the frame is still published)",
            "reason",
            &issue_names,
        )?;
        let decode_issues = issue_names
            .iter()
            .map(|name| decode_issue_vec.with_label_values(&[*name]))
            .collect();
        let log_every = Duration::from_secs(10);
        Ok(AgentMetrics {
            packets_captured: ops.counter(
                "packets_captured_total",
                "Packets read from the interface or file",
            )?,
            packets_filtered: ops.counter(
                "packets_filtered_total",
                "Packets of a replayed file left out by the filter",
            )?,
            packets_resume_skipped: ops.counter(
                "packets_resume_skipped_total",
                "Packets a resumed replay (--resume) skipped because an earlier run had them confirmed",
            )?,
            frames_published: ops
                .counter("frames_published_total", "Frames the broker accepted")?,
            batches_published: ops.counter(
                "batches_published_total",
                "Messages (batches of frames) the broker accepted",
            )?,
            publish_failures: ops.counter_vec(
                "publish_failures_total",
                "Failed publish attempts, by reason (retryable ones are retried)",
                "reason",
                &publish_failure::ALL,
            )?,
            broker_rejections: ops.counter(
                "broker_rejections_total",
                "Batches the broker refused (not retried)",
            )?,
            buffered_frames: ops.gauge(
                "buffered_frames",
                "Frames waiting in the buffer between capture and broker",
            )?,
            broker_up: ops.gauge("broker_up", "1 when the last broker operation succeeded")?,
            broker_backlog: ops.gauge(
                "broker_backlog_messages",
                "Messages the broker held unacknowledged at the last check (Redis Streams XLEN)",
            )?,
            broker_durable: {
                let gauge = ops.gauge(
                    "broker_durable",
                    "1 when the broker keeps accepted messages across a crash (Redis AOF, RabbitMQ quorum queue), 0 when not, -1 unknown",
                )?;
                gauge.set(-1);
                gauge
            },
            stream_trimmed_unread: ops.counter(
                "stream_trimmed_unread_total",
                "Messages an opt-in --max-len cap deleted before the consumer group read them",
            )?,
            backlog_drops: CountedEvent::new(
                packets_dropped.with_label_values(&[drop_reason::BROKER_BACKLOG]),
                log_every,
            ),
            kernel_drops: CountedEvent::new(
                packets_dropped.with_label_values(&[drop_reason::KERNEL]),
                log_every,
            ),
            interface_drops: CountedEvent::new(
                packets_dropped.with_label_values(&[drop_reason::INTERFACE]),
                log_every,
            ),
            buffer_drops: CountedEvent::new(
                packets_dropped.with_label_values(&[drop_reason::BUFFER_FULL]),
                log_every,
            ),
            flows_emitted: ops.counter(
                "flows_emitted_total",
                "Flow records the flow meter finished (--flows)",
            )?,
            flows_published: ops.counter(
                "flows_published_total",
                "Flow records the broker accepted (--flows)",
            )?,
            flows_dropped: ops.counter_vec(
                "flows_dropped_total",
                "Flow records lost, by reason (--flows)",
                "reason",
                &flow_drop_reason::ALL,
            )?,
            flow_meter_packets_dropped: ops.counter(
                "flow_meter_packets_dropped_total",
                "Packets the live flow meter's bounded queue could not take (--flows)",
            )?,
            packets_dropped,
            decode_issues,
            ops,
        })
    }

    pub fn dropped(&self, reason: &str) -> u64 {
        self.packets_dropped.with_label_values(&[reason]).get()
    }

    pub fn flows_dropped(&self, reason: &str) -> u64 {
        self.flows_dropped.with_label_values(&[reason]).get()
    }

    pub fn count_decode_issues(&self, issues: &[DecodeIssue]) {
        for issue in issues {
            let index = DecodeIssue::ALL.iter().position(|known| known == issue);
            if let Some(counter) = index.and_then(|i| self.decode_issues.get(i)) {
                counter.inc();
            }
        }
    }
}

//! The publisher's metrics on the shared ops registry (prefix `publisher_`, plus
//! `publisher_build_info` and the process metrics). Label values are fixed words or HTTP status
//! codes: never a URL, a user name, a password or a token.

use netpipe_runtime::ops::{Metrics, MetricsError};
use prometheus::{Histogram, IntCounter, IntCounterVec, IntGauge};

/// `publisher_batches_total{status}` series created at 0; other HTTP statuses appear when seen.
const BATCH_STATUSES: [&str; 9] = [
    "201", "400", "401", "429", "500", "503", "timeout", "connect", "error",
];
/// `publisher_logins_total{outcome}`: `ok`, `refused` (the server answered without a token),
/// or the transport failure.
const LOGIN_OUTCOMES: [&str; 5] = ["ok", "refused", "timeout", "connect", "error"];
/// `publisher_prediction_polls_total{outcome}`: HTTP status or transport failure.
const POLL_OUTCOMES: [&str; 6] = ["200", "401", "404", "timeout", "connect", "error"];
/// `publisher_predictions_skipped_total{reason}`.
const SKIP_REASONS: [&str; 6] = [
    "no_ids",
    "queue_full",
    "write",
    "timeout",
    "shutdown",
    "not_found",
];

/// POST /ml/ latency buckets (seconds), up to the default 30 s request timeout.
const REQUEST_BUCKETS: [f64; 12] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

#[derive(Debug, Clone)]
pub struct PublisherMetrics {
    pub ops: Metrics,
    pub rows_received: IntCounter,
    pub rows_sent: IntCounter,
    /// Batches by outcome: HTTP status code, or `timeout` / `connect` / `error`.
    pub batches: IntCounterVec,
    pub logins: IntCounterVec,
    pub token_renewals: IntCounter,
    pub unauthorized: IntCounter,
    pub retries: IntCounter,
    /// Rows POSTed again after a timeout: the API may have stored them already and cannot
    /// deduplicate, so these may be duplicates there.
    pub rows_resent: IntCounter,
    pub request_seconds: Histogram,
    pub backlog_rows: IntGauge,
    pub in_flight: IntGauge,
    pub messages_acked: IntCounter,
    pub dead_letters: IntCounter,
    pub rows_dead_lettered: IntCounter,
    pub undecodable_messages: IntCounter,
    pub failed_conversions: IntCounter,
    pub predictions_written: IntCounter,
    pub prediction_polls: IntCounterVec,
    pub predictions_skipped: IntCounterVec,
}

impl PublisherMetrics {
    /// A fresh registry. Fails only on a programming error (a duplicate or invalid name).
    pub fn new() -> Result<Self, MetricsError> {
        let ops = Metrics::new("publisher", "publisher", env!("CARGO_PKG_VERSION"))?;
        Ok(PublisherMetrics {
            rows_received: ops.counter("rows_received_total", "Rows read from the rows stream")?,
            rows_sent: ops.counter("rows_sent_total", "Rows the API accepted (201)")?,
            batches: ops.counter_vec(
                "batches_total",
                "POST /ml/ attempts by outcome (HTTP status or timeout/connect/error)",
                "status",
                &BATCH_STATUSES,
            )?,
            logins: ops.counter_vec(
                "logins_total",
                "Logins by outcome",
                "outcome",
                &LOGIN_OUTCOMES,
            )?,
            token_renewals: ops.counter(
                "token_renewals_total",
                "Logins after the first (the token was about to expire, or a 401 dropped it)",
            )?,
            unauthorized: ops.counter("unauthorized_total", "401 answers to POST /ml/")?,
            retries: ops.counter("retries_total", "Batch attempts repeated after a failure")?,
            rows_resent: ops.counter(
                "rows_resent_total",
                "Rows POSTed again after a timed-out attempt (the API may hold them twice: it cannot deduplicate)",
            )?,
            request_seconds: ops.histogram(
                "request_seconds",
                "Latency of POST /ml/ requests, seconds",
                REQUEST_BUCKETS.to_vec(),
            )?,
            backlog_rows: ops.gauge(
                "backlog_rows",
                "Rows read but not yet accepted or dead-lettered",
            )?,
            in_flight: ops.gauge("batches_in_flight", "Batches being sent")?,
            messages_acked: ops.counter("messages_acked_total", "Broker messages acknowledged")?,
            dead_letters: ops.counter("dead_letters_total", "Broker messages dead-lettered")?,
            rows_dead_lettered: ops.counter("rows_dead_lettered_total", "Rows dead-lettered")?,
            undecodable_messages: ops.counter(
                "undecodable_messages_total",
                "Messages that were not row batches",
            )?,
            failed_conversions: ops.counter(
                "failed_conversions_total",
                "Cells that did not convert to a number",
            )?,
            predictions_written: ops.counter(
                "predictions_written_total",
                "Predictions written beside their rows",
            )?,
            prediction_polls: ops.counter_vec(
                "prediction_polls_total",
                "GET /mlresults/ by outcome",
                "outcome",
                &POLL_OUTCOMES,
            )?,
            predictions_skipped: ops.counter_vec(
                "predictions_skipped_total",
                "Jobs whose predictions were not written, by reason",
                "reason",
                &SKIP_REASONS,
            )?,
            ops,
        })
    }

    /// Prometheus text exposition (what /metrics serves).
    pub fn render(&self) -> String {
        self.ops.render()
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn names_keep_the_publisher_prefix_and_series_start_at_zero() {
        let m = super::PublisherMetrics::new().unwrap();
        m.batches.with_label_values(&["201"]).inc();
        m.batches.with_label_values(&["418"]).inc();
        let text = m.render();
        assert!(text.contains("publisher_batches_total{status=\"201\"} 1"));
        assert!(text.contains("publisher_batches_total{status=\"418\"} 1"));
        assert!(text.contains("publisher_batches_total{status=\"timeout\"} 0"));
        assert!(text.contains("publisher_logins_total{outcome=\"refused\"} 0"));
        assert!(text.contains("publisher_request_seconds_bucket"));
        assert!(text.contains("publisher_build_info{service=\"publisher\",version="));
        assert!(text.contains("publisher_rows_sent_total 0"));
    }
}

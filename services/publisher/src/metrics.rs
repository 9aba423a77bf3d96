//! The publisher's metrics, in one registry of its own. Label values are fixed words or HTTP
//! status codes: never a URL, a user name, a password or a token.

use prometheus::{
    Encoder, Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, Opts, Registry,
    TextEncoder,
};

#[derive(Clone)]
pub struct Metrics {
    registry: Registry,
    pub rows_received: IntCounter,
    pub rows_sent: IntCounter,
    /// Batches by outcome: HTTP status code, or `timeout` / `connect` / `error`.
    pub batches: IntCounterVec,
    pub logins: IntCounterVec,
    pub token_renewals: IntCounter,
    pub unauthorized: IntCounter,
    pub retries: IntCounter,
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

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

fn counter(registry: &Registry, name: &str, help: &str) -> IntCounter {
    let c = IntCounter::new(name, help).unwrap_or_else(|_| unreachable_metric(name));
    let _ = registry.register(Box::new(c.clone()));
    c
}

fn counter_vec(registry: &Registry, name: &str, help: &str, label: &str) -> IntCounterVec {
    let c = IntCounterVec::new(Opts::new(name, help), &[label])
        .unwrap_or_else(|_| unreachable_metric(name));
    let _ = registry.register(Box::new(c.clone()));
    c
}

fn gauge(registry: &Registry, name: &str, help: &str) -> IntGauge {
    let g = IntGauge::new(name, help).unwrap_or_else(|_| unreachable_metric(name));
    let _ = registry.register(Box::new(g.clone()));
    g
}

/// Metric names and help texts are constants; an invalid one is a programming error caught by
/// the unit test below.
#[allow(clippy::panic)]
fn unreachable_metric(name: &str) -> ! {
    panic!("invalid metric definition {name}")
}

impl Metrics {
    pub fn new() -> Self {
        let r = Registry::new();
        let request_seconds = Histogram::with_opts(
            HistogramOpts::new(
                "publisher_request_seconds",
                "Latency of POST /ml/ requests, seconds",
            )
            .buckets(vec![
                0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
            ]),
        )
        .unwrap_or_else(|_| unreachable_metric("publisher_request_seconds"));
        let _ = r.register(Box::new(request_seconds.clone()));
        Metrics {
            rows_received: counter(
                &r,
                "publisher_rows_received_total",
                "Rows read from the rows stream",
            ),
            rows_sent: counter(
                &r,
                "publisher_rows_sent_total",
                "Rows the API accepted (201)",
            ),
            batches: counter_vec(
                &r,
                "publisher_batches_total",
                "POST /ml/ attempts by outcome",
                "status",
            ),
            logins: counter_vec(&r, "publisher_logins_total", "Logins by outcome", "outcome"),
            token_renewals: counter(
                &r,
                "publisher_token_renewals_total",
                "Logins made because the token was about to expire",
            ),
            unauthorized: counter(
                &r,
                "publisher_unauthorized_total",
                "401 answers to POST /ml/",
            ),
            retries: counter(
                &r,
                "publisher_retries_total",
                "Batch attempts repeated after a failure",
            ),
            request_seconds,
            backlog_rows: gauge(
                &r,
                "publisher_backlog_rows",
                "Rows read but not yet accepted or dead-lettered",
            ),
            in_flight: gauge(&r, "publisher_batches_in_flight", "Batches being sent"),
            messages_acked: counter(
                &r,
                "publisher_messages_acked_total",
                "Broker messages acknowledged",
            ),
            dead_letters: counter(
                &r,
                "publisher_dead_letters_total",
                "Broker messages dead-lettered",
            ),
            rows_dead_lettered: counter(
                &r,
                "publisher_rows_dead_lettered_total",
                "Rows dead-lettered",
            ),
            undecodable_messages: counter(
                &r,
                "publisher_undecodable_messages_total",
                "Messages that were not row batches",
            ),
            failed_conversions: counter(
                &r,
                "publisher_failed_conversions_total",
                "Cells that did not convert to a number",
            ),
            predictions_written: counter(
                &r,
                "publisher_predictions_written_total",
                "Predictions written beside their rows",
            ),
            prediction_polls: counter_vec(
                &r,
                "publisher_prediction_polls_total",
                "GET /mlresults/ by outcome",
                "outcome",
            ),
            predictions_skipped: counter_vec(
                &r,
                "publisher_predictions_skipped_total",
                "Jobs whose predictions were not written, by reason",
                "reason",
            ),
            registry: r,
        }
    }

    /// Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut out = Vec::new();
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut out);
        String::from_utf8(out).unwrap_or_default()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn all_metrics_register_and_render() {
        let m = super::Metrics::new();
        m.batches.with_label_values(&["201"]).inc();
        m.logins.with_label_values(&["ok"]).inc();
        let text = m.render();
        assert!(text.contains("publisher_batches_total{status=\"201\"} 1"));
        assert!(text.contains("publisher_request_seconds_bucket"));
    }
}

//! Test harness: a stand-in on 127.0.0.1:0, rows on a memory:// stream, a publisher config
//! with short delays.
#![allow(dead_code)]

use std::time::Duration;

use antinex_standin::{Standin, StandinConfig};
use netpipe_runtime::broker::codec::{RowBatch, RowRecord};
use netpipe_runtime::broker::{BrokerConfig, Publisher};
use publisher::Config;

pub const COLUMNS: [&str; 8] = [
    "idx",
    "eth_type",
    "ip_len",
    "ip_tos",
    "tcp_dport",
    "tcp_fields_options.MSS",
    "label_value",
    "eth_src",
];
pub const FEATURES: &str =
    "idx,eth_type,ip_len,ip_tos,tcp_dport,tcp_fields_options.MSS,label_value";
pub const SENT_FEATURES: [&str; 6] = [
    "idx",
    "eth_type",
    "ip_len",
    "ip_tos",
    "tcp_dport",
    "tcp_fields_options.MSS",
];
pub const AGENT: &str = "agent-test";
pub const SEQ_BASE: u64 = 1_000_000;

/// A unique memory stream name per test.
pub fn stream(test: &str) -> String {
    format!("memory://publisher-{test}-{}", std::process::id())
}

/// Rows `first..first+count`: idx = i, seq = SEQ_BASE + i, ip_tos = 0 (a real zero),
/// MSS absent, label_value = 1 (must not be sent), eth_src a string (not a feature).
pub fn row_batch(first: u64, count: u64) -> RowBatch {
    RowBatch {
        schema: "antinex-v1".into(),
        columns: COLUMNS.iter().map(|c| c.to_string()).collect(),
        rows: (first..first + count)
            .map(|i| RowRecord {
                agent: AGENT.into(),
                seq: SEQ_BASE + i,
                cells: vec![
                    i.to_string(),
                    "2048".into(),
                    (40 + i % 1000).to_string(),
                    "0".into(),
                    "8080".into(),
                    String::new(),
                    "1".into(),
                    "00:11:22:33:44:55".into(),
                ],
            })
            .collect(),
    }
}

/// Publishes `messages` batches of `per_message` rows; returns the publisher (drop it and
/// `forget` the name to close the stream).
pub async fn feed(url: &str, messages: u64, per_message: u64) -> Publisher {
    let mut config = BrokerConfig::parse(url).unwrap();
    config.memory_capacity = 10_000;
    let publisher = Publisher::connect(&config).await.unwrap();
    for m in 0..messages {
        publisher
            .publish(row_batch(m * per_message, per_message).encode())
            .await
            .unwrap();
    }
    publisher
}

/// Closes a memory stream: the publisher's run ends once everything read is settled.
pub fn close(url: &str, publisher: Publisher) {
    drop(publisher);
    netpipe_runtime::broker::forget_memory(url.trim_start_matches("memory://"));
}

pub fn config(rows_url: &str, antinex_url: &str) -> Config {
    let mut c = Config::for_tests(rows_url, antinex_url);
    c.features_to_process = Some(FEATURES.into());
    c.rows_block = Duration::from_millis(50);
    c.batch_rows = 1000;
    c.batch_delay = Duration::from_millis(50);
    c.retry_initial = Duration::from_millis(20);
    c.retry_max = Duration::from_millis(200);
    c.request_timeout = Duration::from_secs(5);
    c.connect_timeout = Duration::from_secs(1);
    c.poll_initial = Duration::from_millis(20);
    c.poll_max = Duration::from_millis(100);
    c.poll_timeout = Duration::from_secs(20);
    c.poll_predictions = publisher::PollPredictions::Off;
    c
}

pub async fn standin(config: StandinConfig) -> Standin {
    Standin::start(config, "127.0.0.1:0").await.unwrap()
}

/// Every posted `idx`, in arrival order, across all jobs.
pub fn posted_idx(standin: &Standin) -> Vec<u64> {
    standin
        .state
        .jobs()
        .iter()
        .flat_map(|job| job.row_idx.iter().map(|i| i.unwrap_or(-1.0) as u64))
        .collect()
}

/// Asserts each of 0..n arrived exactly once.
pub fn assert_exactly_once(standin: &Standin, n: u64) {
    let mut seen = posted_idx(standin);
    assert_eq!(seen.len() as u64, n, "rows at the stand-in");
    seen.sort_unstable();
    seen.dedup();
    assert_eq!(seen.len() as u64, n, "no row twice");
    assert_eq!(seen.first().copied(), Some(0));
    assert_eq!(seen.last().copied(), Some(n - 1));
}

/// Polls `condition` every 20 ms for up to 30 s.
pub async fn wait_for(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while !condition() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A free loopback port (bound then released).
pub fn free_addr() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().to_string()
}

pub async fn with_timeout<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(60), f)
        .await
        .expect("test took over 60 s")
}

/// Runs the publisher until `condition` holds, then shuts it down and returns its summary.
/// (A memory stream cannot be closed before the consumer joins it, so tests stop the run.)
pub async fn run_until(
    config: Config,
    what: &str,
    condition: impl FnMut() -> bool,
) -> publisher::Summary {
    run_with_metrics_until(
        config,
        publisher::metrics::PublisherMetrics::new().unwrap(),
        what,
        condition,
    )
    .await
}

pub async fn run_with_metrics_until(
    config: Config,
    metrics: publisher::metrics::PublisherMetrics,
    what: &str,
    condition: impl FnMut() -> bool,
) -> publisher::Summary {
    let shutdown = tokio_util::sync::CancellationToken::new();
    let run = tokio::spawn(publisher::run_with_metrics(
        config,
        shutdown.clone(),
        metrics,
    ));
    wait_for(what, condition).await;
    shutdown.cancel();
    with_timeout(run).await.unwrap().unwrap()
}

pub fn accepted(standin: &Standin) -> u64 {
    standin.state.count(&standin.state.counters.rows_accepted)
}

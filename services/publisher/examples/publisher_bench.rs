//! Throughput of the publisher library against a stand-in on loopback (run by
//! bench/publisher_throughput.sh). Rows are encoded before timing starts; the process's own
//! CPU (utime + stime from /proc/self/stat) is measured around the run.

use std::time::{Duration, Instant};

use netpipe_runtime::broker::codec::{RowBatch, RowRecord};
use netpipe_runtime::broker::{BrokerConfig, Publisher};
use publisher::metrics::PublisherMetrics;
use tokio_util::sync::CancellationToken;

fn arg(name: &str, default: &str) -> String {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
        .unwrap_or_else(|| default.to_string())
}

/// CPU seconds used by this process so far (user + system).
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name, which is in parentheses.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // utime and stime are fields 14 and 15 of the full line: 11 and 12 after the name.
    (ticks(11) + ticks(12)) / 100.0
}

/// One message of realistic antinex-v1 rows: the 67 Full-Django features plus string columns.
fn message(first: u64, count: u64, columns: &[String]) -> Vec<u8> {
    RowBatch {
        schema: "antinex-v1".into(),
        columns: columns.to_vec(),
        rows: (first..first + count)
            .map(|i| RowRecord {
                agent: "bench-agent".into(),
                seq: 1_000_000 + i,
                cells: columns
                    .iter()
                    .enumerate()
                    .map(|(c, name)| match name.as_str() {
                        "idx" => i.to_string(),
                        "eth_src" | "eth_dst" => "00:00:00:00:00:00".into(),
                        "ip_src" | "ip_dst" => "127.0.0.1".into(),
                        "eth_type" => "2048".into(),
                        "tcp_dport" => "8080".into(),
                        "tcp_sport" => (30000 + i % 30000).to_string(),
                        _ if c % 3 == 0 => String::new(),
                        _ => ((i * 7 + c as u64) % 65536).to_string(),
                    })
                    .collect(),
            })
            .collect(),
    }
    .encode()
}

#[tokio::main]
async fn main() {
    let url = arg("--url", "http://127.0.0.1:8010");
    let rows: u64 = arg("--rows", "500000").parse().unwrap_or(500_000);
    let batch_rows: usize = arg("--batch-rows", "1000").parse().unwrap_or(1000);
    let in_flight: usize = arg("--in-flight", "4").parse().unwrap_or(4);
    let per_message: u64 = arg("--rows-per-message", "100").parse().unwrap_or(100);

    let mut columns: Vec<String> = publisher::template::full_django_features()
        .iter()
        .map(|s| s.to_string())
        .collect();
    columns.extend(["eth_src", "eth_dst", "ip_src", "ip_dst", "label_value"].map(String::from));
    columns.sort();
    let messages: Vec<Vec<u8>> = (0..rows.div_ceil(per_message))
        .map(|m| {
            message(
                m * per_message,
                per_message.min(rows - m * per_message),
                &columns,
            )
        })
        .collect();

    let stream = format!("memory://publisher-bench-{}", std::process::id());
    let mut broker = BrokerConfig::parse(stream.clone()).unwrap();
    broker.memory_capacity = 256;
    let feeder = Publisher::connect(&broker).await.expect("memory broker");

    let mut config = publisher::Config::for_tests(&stream, &url);
    config.batch_rows = batch_rows;
    config.max_in_flight = in_flight;
    config.batch_delay = Duration::from_millis(50);
    config.rows_block = Duration::from_millis(20);
    config.rows_prefetch = 64;
    config.poll_predictions = publisher::PollPredictions::Off;
    let metrics = PublisherMetrics::new().expect("metrics registry");
    let shutdown = CancellationToken::new();

    let cpu_before = cpu_seconds();
    let started = Instant::now();
    let run = tokio::spawn(publisher::run_with_metrics(
        config,
        shutdown.clone(),
        metrics.clone(),
    ));
    for body in messages {
        feeder.publish(body).await.expect("feed");
    }
    while metrics.rows_sent.get() < rows {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let cpu = cpu_seconds() - cpu_before;
    shutdown.cancel();
    let summary = run.await.expect("join").expect("run");
    println!(
        "rows={} batch_rows={} in_flight={} seconds={:.3} rows_per_s={:.0} cpu_s={:.2} cpu_us_per_row={:.2} batches={} retries={}",
        summary.rows_sent,
        batch_rows,
        in_flight,
        elapsed,
        summary.rows_sent as f64 / elapsed,
        cpu,
        cpu * 1e6 / summary.rows_sent.max(1) as f64,
        summary.batches_accepted,
        summary.retries,
    );
}

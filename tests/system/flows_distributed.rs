//! Flows through the distributed path: capture-agent `--flows` -> Redis (its own `-flows`
//! stream) or RabbitMQ (its own `-flows` queue) -> processor `--flows` -> flow dataset, equal to
//! `netpipe flows` on the same file. Uses the real Redis on 127.0.0.1:6379 and RabbitMQ on
//! 127.0.0.1:5672 with unique stream/queue names.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

const REDIS: &str = "redis://127.0.0.1:6379";
const AMQP: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";
const AGENT: &str = "flow-edge";

fn unique(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{prefix}-{}-{nanos}", std::process::id())
}

/// How the agent meters: `netpipe flows`' defaults, or with `--flow-tcp-end`.
#[derive(Clone, Copy, PartialEq)]
enum TcpEnd {
    Off,
    On,
}

/// `netpipe flows` on `pcap`, as sorted CSV records (header first).
fn netpipe_flows(pcap: &Path, tcp_end: TcpEnd) -> (csv::StringRecord, Vec<csv::StringRecord>) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_netpipe"));
    command.args(["flows", "--agent", AGENT, "-r"]).arg(pcap);
    if tcp_end == TcpEnd::On {
        command.arg("--flow-tcp-end");
    }
    let out = command.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    sorted(csv::Reader::from_reader(out.stdout.as_slice()))
}

fn sorted<R: std::io::Read>(
    mut reader: csv::Reader<R>,
) -> (csv::StringRecord, Vec<csv::StringRecord>) {
    let header = reader.headers().unwrap().clone();
    let mut rows: Vec<csv::StringRecord> = reader.records().map(|r| r.unwrap()).collect();
    rows.sort_by(|a, b| a.iter().cmp(b.iter()));
    (header, rows)
}

/// The processor's flow dataset files in `ds`.
fn flow_files(ds: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(ds)
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    files.retain(|p| {
        p.extension().is_some_and(|e| e == "csv")
            && p.file_name()
                .is_some_and(|n| n.to_string_lossy().contains("-flows-"))
    });
    files.sort();
    files
}

fn flow_rows(ds: &Path) -> (Option<csv::StringRecord>, Vec<csv::StringRecord>) {
    let mut header = None;
    let mut rows = Vec::new();
    for file in flow_files(ds) {
        let (h, mut r) = sorted(csv::Reader::from_path(&file).unwrap());
        header = Some(h);
        rows.append(&mut r);
    }
    rows.sort_by(|a, b| a.iter().cmp(b.iter()));
    (header, rows)
}

fn agent_config(pcap: &Path, url: &str, stream: &str, tcp_end: TcpEnd) -> capture_agent::Config {
    let mut config = capture_agent::Config::for_replay(pcap, url, stream);
    // AMQP: frames and flows through an exchange of this test's own.
    config.exchange = format!("{stream}.x");
    config.routing_key = stream.to_string();
    config.agent_id = Some(AGENT.into());
    config.flows = true;
    config.flow_tcp_end = tcp_end == TcpEnd::On;
    config.batch_size = 16;
    config.stats_interval_secs = 3600;
    config
}

fn processor_config(url: &str, stream: &str, ds: &Path) -> processor::Config {
    let mut config = processor::Config::new(url, ds);
    config.stream = stream.to_string();
    config.exchange = format!("{stream}.x");
    config.routing_key = stream.to_string();
    config.consumer = Some(format!("{stream}-c"));
    config.group = format!("{stream}-g");
    config.dead_letter = format!("{stream}.dead");
    config.commit_interval_ms = 100;
    config.flows = true;
    config
}

async fn delete_streams(url: &str, stream: &str) {
    if url.starts_with("amqp") {
        return delete_queues(stream).await;
    }
    let client = redis::Client::open(REDIS).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let _: redis::RedisResult<i64> = redis::cmd("DEL")
        .arg(stream)
        .arg(format!("{stream}-flows"))
        .arg(format!("{stream}.dead"))
        .query_async(&mut conn)
        .await;
}

/// The test's queues (frames, flows, dead letters) and exchange on RabbitMQ.
async fn delete_queues(stream: &str) {
    use lapin::options::{ExchangeDeleteOptions, QueueDeleteOptions};
    let Ok(connection) =
        lapin::Connection::connect(AMQP, lapin::ConnectionProperties::default()).await
    else {
        return;
    };
    // A failed delete (not found) closes its channel: one channel per delete.
    for queue in [
        stream.to_string(),
        format!("{stream}-flows"),
        format!("{stream}.dead"),
    ] {
        if let Ok(channel) = connection.create_channel().await {
            let _ = channel
                .queue_delete(queue.as_str().into(), QueueDeleteOptions::default())
                .await;
        }
    }
    if let Ok(channel) = connection.create_channel().await {
        let exchange = format!("{stream}.x");
        let _ = channel
            .exchange_delete(exchange.as_str().into(), ExchangeDeleteOptions::default())
            .await;
    }
    let _ = connection.close(200, "done".into()).await;
}

/// Replays `pcap` through agent -> broker (`url`) -> processor and checks the flow dataset
/// equals `netpipe flows` on the same file, row for row.
async fn replay_equals_netpipe_flows(pcap: &Path, url: &str, tcp_end: TcpEnd) {
    let dir = tempfile::tempdir().unwrap();
    let ds = dir.path().join("ds");
    let stream = unique("flows-dist");
    let (want_header, want) = netpipe_flows(pcap, tcp_end);
    assert!(!want.is_empty(), "{} has flows", pcap.display());

    let stop = CancellationToken::new();
    let processor = tokio::spawn(processor::run(
        processor_config(url, &stream, &ds),
        stop.clone(),
    ));
    let agent = capture_agent::run(
        agent_config(pcap, url, &stream, tcp_end),
        CancellationToken::new(),
    )
    .await
    .unwrap();
    assert_eq!(agent.flows_emitted, want.len() as u64, "{agent}");
    assert_eq!(agent.flows_published, agent.flows_emitted, "{agent}");
    assert_eq!(agent.flows_dropped.values().sum::<u64>(), 0);

    let deadline = Instant::now() + Duration::from_secs(60);
    while flow_rows(&ds).1.len() < want.len() {
        assert!(
            Instant::now() < deadline,
            "the flow dataset never filled up"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stop.cancel();
    let summary = processor.await.unwrap().unwrap();
    let flows = summary.flows.clone().expect("a flow summary");
    assert_eq!(flows.flows_written, want.len() as u64, "{summary}");
    assert_eq!(flows.dead_letters, 0);

    let (header, got) = flow_rows(&ds);
    assert_eq!(header.as_ref(), Some(&want_header));
    assert_eq!(got.len(), want.len());
    for (g, w) in got.iter().zip(&want) {
        assert_eq!(g, w);
    }
    // The manifest counts the rows and reports no gap in the flow ids.
    let manifests: Vec<_> = netpipe_runtime::dataset::Manifest::scan(&ds)
        .unwrap()
        .into_iter()
        .filter(|(path, _)| path.to_string_lossy().contains("-flows-"))
        .collect();
    assert!(!manifests.is_empty());
    for (_, manifest) in &manifests {
        assert_eq!(manifest.loss.missing_seq, 0);
    }
    delete_streams(url, &stream).await;
}

#[cfg_attr(
    not(feature = "system-tests"),
    ignore = "needs Redis at 127.0.0.1:6379: run with --features system-tests (scripts/test.sh does)"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fixture_flows_through_redis_equal_netpipe_flows() {
    let dir = tempfile::tempdir().unwrap();
    let pcap = dir.path().join("sample.pcap");
    netpipe_runtime::capture::sample::write_sample_pcap(&pcap).unwrap();
    replay_equals_netpipe_flows(&pcap, REDIS, TcpEnd::Off).await;
}

#[cfg_attr(
    not(feature = "system-tests"),
    ignore = "needs Redis at 127.0.0.1:6379: run with --features system-tests (scripts/test.sh does)"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_capture_flows_through_redis_equal_netpipe_flows() {
    let Some(data) = netpipe_testkit::paths::shared_data_or_skip(
        "real_capture_flows_through_redis_equal_netpipe_flows",
    ) else {
        return;
    };
    for name in ["pcpp-example.pcap", "dpkt-http.pcap"] {
        replay_equals_netpipe_flows(&data.join("pcaps").join(name), REDIS, TcpEnd::Off).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fixture_flows_through_rabbitmq_equal_netpipe_flows() {
    let dir = tempfile::tempdir().unwrap();
    let pcap = dir.path().join("sample.pcap");
    netpipe_runtime::capture::sample::write_sample_pcap(&pcap).unwrap();
    replay_equals_netpipe_flows(&pcap, AMQP, TcpEnd::Off).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_capture_flows_through_rabbitmq_equal_netpipe_flows() {
    let Some(data) = netpipe_testkit::paths::shared_data_or_skip(
        "real_capture_flows_through_rabbitmq_equal_netpipe_flows",
    ) else {
        return;
    };
    for name in ["pcpp-example.pcap", "dpkt-http.pcap"] {
        replay_equals_netpipe_flows(&data.join("pcaps").join(name), AMQP, TcpEnd::Off).await;
    }
}

/// `--flow-tcp-end` on the agent ends TCP flows exactly where `netpipe flows --flow-tcp-end`
/// does (the capture has TCP conversations that close, so the setting changes the flows).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_flow_tcp_end_equals_netpipe_flows_tcp_end() {
    let Some(data) = netpipe_testkit::paths::shared_data_or_skip(
        "agent_flow_tcp_end_equals_netpipe_flows_tcp_end",
    ) else {
        return;
    };
    let pcap = data.join("pcaps").join("dpkt-http.pcap");
    let reasons = |rows: &[csv::StringRecord], header: &csv::StringRecord| {
        let column = header
            .iter()
            .position(|c| c == "expiration_reason")
            .unwrap();
        rows.iter().filter(|r| &r[column] == "tcp_end").count()
    };
    let (header, with_end) = netpipe_flows(&pcap, TcpEnd::On);
    assert!(
        reasons(&with_end, &header) > 0,
        "no TCP flow ends in the capture"
    );
    replay_equals_netpipe_flows(&pcap, AMQP, TcpEnd::On).await;
}

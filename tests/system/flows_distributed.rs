//! Flows through the distributed path: capture-agent `--flows` -> Redis (its own `-flows`
//! stream) -> processor `--flows` -> flow dataset, equal to `netpipe flows` on the same file.
//! Uses the real Redis on 127.0.0.1:6379 with unique stream names.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

const REDIS: &str = "redis://127.0.0.1:6379";
const AGENT: &str = "flow-edge";

fn unique(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{prefix}-{}-{nanos}", std::process::id())
}

/// `netpipe flows` on `pcap`, as sorted CSV records (header first).
fn netpipe_flows(pcap: &Path) -> (csv::StringRecord, Vec<csv::StringRecord>) {
    let out = Command::new(env!("CARGO_BIN_EXE_netpipe"))
        .args(["flows", "--agent", AGENT, "-r"])
        .arg(pcap)
        .output()
        .unwrap();
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

fn agent_config(pcap: &Path, stream: &str) -> capture_agent::Config {
    let mut config = capture_agent::Config::for_replay(pcap, REDIS, stream);
    config.agent_id = Some(AGENT.into());
    config.flows = true;
    config.batch_size = 16;
    config.stats_interval_secs = 3600;
    config
}

fn processor_config(stream: &str, ds: &Path) -> processor::Config {
    let mut config = processor::Config::new(REDIS, ds);
    config.stream = stream.to_string();
    config.consumer = Some(format!("{stream}-c"));
    config.group = format!("{stream}-g");
    config.dead_letter = format!("{stream}.dead");
    config.commit_interval_ms = 100;
    config.flows = true;
    config
}

async fn delete_streams(stream: &str) {
    let client = redis::Client::open(REDIS).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let _: redis::RedisResult<i64> = redis::cmd("DEL")
        .arg(stream)
        .arg(format!("{stream}-flows"))
        .arg(format!("{stream}.dead"))
        .query_async(&mut conn)
        .await;
}

/// Replays `pcap` through agent -> Redis -> processor and checks the flow dataset equals
/// `netpipe flows` on the same file, row for row.
async fn replay_equals_netpipe_flows(pcap: &Path) {
    let dir = tempfile::tempdir().unwrap();
    let ds = dir.path().join("ds");
    let stream = unique("flows-dist");
    let (want_header, want) = netpipe_flows(pcap);
    assert!(!want.is_empty(), "{} has flows", pcap.display());

    let stop = CancellationToken::new();
    let processor = tokio::spawn(processor::run(processor_config(&stream, &ds), stop.clone()));
    let agent = capture_agent::run(agent_config(pcap, &stream), CancellationToken::new())
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
    delete_streams(&stream).await;
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
    replay_equals_netpipe_flows(&pcap).await;
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
        replay_equals_netpipe_flows(&data.join("pcaps").join(name)).await;
    }
}

//! `--read FILE --resume STATE_FILE`: a replay killed with SIGKILL and started again continues
//! after the packets the broker confirmed, with the same sequence numbers, so the processor's
//! dataset holds each packet exactly once (without --resume the restart gets a new boot and
//! every packet it sends again is a new row).

use std::collections::HashSet;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::*;
use tokio_util::sync::CancellationToken;

const BIN: &str = env!("CARGO_BIN_EXE_capture-agent");

fn spawn_replay(pcap: &Path, state: &Path, url: &str, stream: &str) -> Child {
    Command::new(BIN)
        .arg("--read")
        .arg(pcap)
        .args(["--loop", "100", "--resume"])
        .arg(state)
        .args(["--broker-url", url, "--stream", stream])
        .args(["--agent-id", "resume-agent", "--batch-size", "64"])
        .args(["--exit-at-eof", "--ops-addr", "127.0.0.1:0"])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

fn confirmed(state: &Path) -> u64 {
    std::fs::read_to_string(state)
        .ok()
        .and_then(|text| serde_json::from_str::<serde_json::Value>(&text).ok())
        .and_then(|v| v["confirmed"].as_u64())
        .unwrap_or(0)
}

/// (pending, lag) of the processor's group, -1 when unknown.
async fn group_state(url: &str, stream: &str) -> (i64, i64) {
    let mut config = netpipe_runtime::broker::BrokerConfig::parse(url).unwrap();
    config.stream = stream.to_string();
    config.consumer = "probe".into();
    let Ok(mut consumer) = netpipe_runtime::broker::Consumer::connect(&config).await else {
        return (-1, -1);
    };
    let lag = consumer.lag().await.ok().flatten().map_or(-1, |l| l as i64);
    let mut conn = redis_conn(url).await;
    let pending: redis::Value = redis::cmd("XPENDING")
        .arg(stream)
        .arg(&config.group)
        .query_async(&mut conn)
        .await
        .unwrap_or(redis::Value::Nil);
    let pending = match pending {
        redis::Value::Array(items) => match items.first() {
            Some(redis::Value::Int(n)) => *n,
            _ => -1,
        },
        _ => -1,
    };
    (pending, lag)
}

async fn redis_conn(url: &str) -> redis::aio::MultiplexedConnection {
    redis::Client::open(url)
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap()
}

#[cfg_attr(
    not(feature = "system-tests"),
    ignore = "needs redis-server installed: run with --features system-tests (scripts/test.sh does)"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_and_resumed_replay_records_each_packet_once() {
    let redis = PrivateRedis::start();
    let url = redis.url();
    let stream = unique("resume");
    let dir = tempfile::tempdir().unwrap();
    let pcap = dir.path().join("replay.pcap");
    write_pcap(&pcap, &make_packets(1000, 1_700_000_000_000_000, 10));
    let state = dir.path().join("replay.resume.json");
    const TOTAL: u64 = 100 * 1000;

    let mut first = spawn_replay(&pcap, &state, &url, &stream);
    let started = Instant::now();
    while confirmed(&state) < 30_000 {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the first run never confirmed 30,000 packets"
        );
        assert!(
            first.try_wait().unwrap().is_none(),
            "the first run ended early"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    first.kill().unwrap(); // SIGKILL mid-replay
    first.wait().unwrap();
    let at_kill = confirmed(&state);
    assert!(at_kill < TOTAL, "killed mid-replay ({at_kill})");

    let mut second = spawn_replay(&pcap, &state, &url, &stream);
    let started = Instant::now();
    let status = loop {
        if let Some(status) = second.try_wait().unwrap() {
            break status;
        }
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "the resumed run hangs"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success());
    assert_eq!(
        confirmed(&state),
        TOTAL,
        "the state says the whole replay is confirmed"
    );

    // The processor writes the dataset: each packet exactly once.
    let ds = dir.path().join("ds");
    let mut config = processor::Config::new(&url, &ds);
    config.stream = stream.clone();
    config.consumer = Some("resume-processor".into());
    config.dead_letter = format!("{stream}.dead");
    config.commit_interval_ms = 200;
    let stop = CancellationToken::new();
    let run = tokio::spawn(processor::run(config, stop.clone()));
    let started = Instant::now();
    while group_state(&url, &stream).await != (0, 0) {
        assert!(started.elapsed() < Duration::from_secs(120), "not drained");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.cancel();
    run.await.unwrap().unwrap();

    let mut rows = 0u64;
    let mut seqs = HashSet::new();
    let mut boots = HashSet::new();
    for entry in std::fs::read_dir(&ds).unwrap().flatten() {
        let path = entry.path();
        if path.extension().is_none_or(|e| e != "csv") {
            continue;
        }
        let mut reader = csv::Reader::from_path(&path).unwrap();
        let header = reader.headers().unwrap().clone();
        let col = |name: &str| header.iter().position(|h| h == name).unwrap();
        let (seq, boot) = (col("seq"), col("boot"));
        for record in reader.records() {
            let record = record.unwrap();
            rows += 1;
            seqs.insert(record[seq].to_string());
            boots.insert(record[boot].to_string());
        }
    }
    assert_eq!(boots.len(), 1, "one replay, one boot: {boots:?}");
    assert_eq!(seqs.len() as u64, TOTAL, "every packet recorded");
    assert_eq!(rows, TOTAL, "each packet once");
}

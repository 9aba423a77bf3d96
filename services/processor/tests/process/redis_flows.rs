//! The processor's flow side (`--flows`) against the real Redis (127.0.0.1:6379): kill -9 while
//! a flow stream is consumed, then restart: every flow is in the dataset exactly once; a poison
//! message on the flow stream is dead-lettered and counted, in the summary, the manifest and
//! the `processor_flow_*` metrics.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::unique;
use netpipe_runtime::broker::flow_batch::{FLOW_SCHEMA_VERSION, FlowBatch, FlowRow};
use netpipe_runtime::broker::{BrokerConfig, Publisher};
use tokio_util::sync::CancellationToken;

const REDIS: &str = "redis://127.0.0.1:6379";

/// Publishes `messages` flow batches of `per_message` flows of one agent run on `stream`.
async fn publish_flows(stream: &str, agent: &str, boot: u64, messages: u64, per_message: u64) {
    let mut config = BrokerConfig::parse(REDIS).unwrap();
    config.stream = stream.to_string();
    let publisher = Publisher::connect(&config).await.unwrap();
    for m in 0..messages {
        let rows = (0..per_message)
            .map(|i| {
                let id = m * per_message + i;
                FlowRow {
                    id,
                    first_seen_ms: 1_700_000_000_000 + id as i64,
                    csv: format!("{id},synthetic,\"[1,-1]\""),
                }
            })
            .collect();
        let batch = FlowBatch {
            agent: agent.into(),
            boot,
            schema_version: FLOW_SCHEMA_VERSION,
            rows,
        };
        publisher.publish(batch.encode()).await.unwrap();
    }
}

/// Flow ids in the flow datasets of `ds`, with how often each occurs.
fn flow_id_counts(ds: &Path) -> BTreeMap<u64, u32> {
    let mut counts = BTreeMap::new();
    for entry in std::fs::read_dir(ds).into_iter().flatten().flatten() {
        let path = entry.path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if !name.contains("-flows-") || !name.ends_with(".csv") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        // Only complete lines: a run may be killed in the middle of one.
        for line in text.split_inclusive('\n').skip(1) {
            if let Some(id) = line
                .strip_suffix('\n')
                .and_then(|l| l.split(',').next())
                .and_then(|f| f.parse().ok())
            {
                *counts.entry(id).or_default() += 1;
            }
        }
    }
    counts
}

fn spawn_processor(args: &[String]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_processor"))
        .args(args)
        .env_remove("FORWARD_BROKER_URL")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn cleanup(keys: &[String]) {
    let client = redis::Client::open(REDIS).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    for key in keys {
        let _: redis::RedisResult<i64> = redis::cmd("DEL").arg(key).query_async(&mut conn).await;
    }
}

#[cfg_attr(
    not(feature = "system-tests"),
    ignore = "needs Redis at 127.0.0.1:6379: run with --features system-tests (scripts/test.sh does)"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_mid_flow_stream_then_restart_writes_each_flow_once() {
    let dir = tempfile::tempdir().unwrap();
    let stream = unique("proc-flows-crash");
    let flow_stream = format!("{stream}-flows");
    const MESSAGES: u64 = 2000;
    const PER_MESSAGE: u64 = 20;
    const TOTAL: u64 = MESSAGES * PER_MESSAGE;
    publish_flows(&flow_stream, "edge-1", 7_000, MESSAGES, PER_MESSAGE).await;
    let ds = dir.path().to_str().unwrap().to_string();
    let group = format!("{stream}-g");
    let dead = format!("{stream}-dead");
    let args: Vec<String> = [
        "--broker-url",
        REDIS,
        "--stream",
        &stream,
        "--group",
        &group,
        "--consumer",
        "c1",
        "--dead-letter",
        &dead,
        "--ds-dir",
        &ds,
        "--ops-addr",
        "",
        "--commit-interval-ms",
        "100",
        "--flows",
    ]
    .iter()
    .map(|a| a.to_string())
    .collect();
    let mut killed_mid_stream = 0;
    for _round in 0..3 {
        let mut child = spawn_processor(&args);
        let before: u64 = flow_id_counts(dir.path()).len() as u64;
        let target = before + (TOTAL - before) * (10 + rand::random::<u64>() % 41) / 100;
        let give_up = Instant::now() + Duration::from_secs(30);
        while (flow_id_counts(dir.path()).len() as u64) < target && Instant::now() < give_up {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        if (flow_id_counts(dir.path()).len() as u64) < TOTAL {
            killed_mid_stream += 1;
        }
    }
    assert!(killed_mid_stream > 0, "no kill landed mid-stream");
    // The last run drains the stream and stops with SIGTERM.
    let mut child = spawn_processor(&args);
    let deadline = Instant::now() + Duration::from_secs(120);
    while (flow_id_counts(dir.path()).len() as u64) < TOTAL {
        assert!(
            Instant::now() < deadline,
            "only {} of {TOTAL} flows written",
            flow_id_counts(dir.path()).len()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Let the last commit's acknowledgements go out, then stop.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let status = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status()
        .unwrap();
    assert!(status.success());
    let status = child.wait().unwrap();
    assert!(status.success(), "{status:?}");

    let counts = flow_id_counts(dir.path());
    assert_eq!(counts.len() as u64, TOTAL, "every flow written");
    let twice: Vec<_> = counts.iter().filter(|(_, n)| **n > 1).take(5).collect();
    assert!(twice.is_empty(), "flows written twice: {twice:?}");
    cleanup(&[stream, flow_stream, dead]).await;
}

#[cfg_attr(
    not(feature = "system-tests"),
    ignore = "needs Redis at 127.0.0.1:6379: run with --features system-tests (scripts/test.sh does)"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poison_on_the_flow_stream_is_dead_lettered_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    let stream = unique("proc-flows-poison");
    let flow_stream = format!("{stream}-flows");
    let mut broker = BrokerConfig::parse(REDIS).unwrap();
    broker.stream = flow_stream.clone();
    let publisher = Publisher::connect(&broker).await.unwrap();
    publisher
        .publish(b"not a flow batch".to_vec())
        .await
        .unwrap();
    publish_flows(&flow_stream, "edge-2", 0, 2, 3).await;
    // A batch repeated (a redelivery or an agent's retry): its flows are written once.
    publish_flows(&flow_stream, "edge-2", 0, 1, 3).await;
    // Another agent whose flows 1-3 never arrived: a gap of 3.
    let gap = FlowBatch {
        agent: "edge-3".into(),
        boot: 0,
        schema_version: FLOW_SCHEMA_VERSION,
        rows: [0u64, 4]
            .iter()
            .map(|&id| FlowRow {
                id,
                first_seen_ms: 1_700_000_000_000,
                csv: format!("{id},gap"),
            })
            .collect(),
    };
    publisher.publish(gap.encode()).await.unwrap();
    let ops = format!("127.0.0.1:{}", free_port());

    let mut config = processor::Config::new(REDIS, dir.path());
    config.stream = stream.clone();
    config.group = format!("{stream}-g");
    config.consumer = Some("c1".into());
    config.dead_letter = format!("{stream}-dead");
    config.commit_interval_ms = 100;
    config.flows = true;
    config.common.ops_addr = netpipe_runtime::service::OpsAddr::At(ops.clone());
    let stop = CancellationToken::new();
    let run = tokio::spawn(processor::run(config, stop.clone()));
    let deadline = Instant::now() + Duration::from_secs(30);
    // edge-2's flows 0-5 and edge-3's 0 and 4: 8 rows.
    while flow_id_counts(dir.path()).values().sum::<u32>() < 8 {
        assert!(Instant::now() < deadline, "flows never written");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let metrics = reqwest::get(format!("http://{ops}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let value = |name: &str| {
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
            .and_then(|v| v.trim().parse::<f64>().ok())
            .unwrap_or_else(|| panic!("{name} not in\n{metrics}"))
    };
    assert_eq!(value("processor_flow_messages_received_total"), 5.0);
    assert_eq!(value("processor_flow_rows_written_total"), 8.0);
    assert_eq!(
        value("processor_flow_dedup_dropped_total{kind=\"duplicate\"}"),
        3.0
    );
    assert_eq!(
        value("processor_flow_dead_letters_total{reason=\"bad_flow_batch\"}"),
        1.0
    );
    assert_eq!(value("processor_flow_missing_seq"), 3.0);
    stop.cancel();
    let summary = run.await.unwrap().unwrap();
    let flows = summary.flows.expect("flow summary");
    assert_eq!(flows.flows_written, 8);
    assert_eq!(flows.duplicates, 3);
    assert_eq!(flows.dead_letters, 1);
    let manifests = netpipe_runtime::dataset::Manifest::scan(dir.path()).unwrap();
    let flow_manifest = manifests
        .iter()
        .find(|(p, _)| p.to_string_lossy().contains("-flows-"))
        .map(|(_, m)| m)
        .expect("a flow manifest");
    assert_eq!(
        flow_manifest
            .loss
            .dead_lettered
            .get(processor::flows::BAD_FLOW_BATCH),
        Some(&1)
    );
    cleanup(&[stream.clone(), flow_stream, format!("{stream}-dead")]).await;
}

//! The broker goes down mid-replay and comes back: what fits in the buffer is delivered, what
//! did not is counted, /ready says 503 meanwhile.

use std::collections::BTreeSet;
use std::time::Duration;

use crate::support::*;
use capture_agent::config::Overflow;
use capture_agent::metrics::drop_reason;
use capture_agent::{Config, start};
use tokio_util::sync::CancellationToken;

const GROUP_A: usize = 100;
const GROUP_B: usize = 1000;
const BUFFER: usize = 300;
const BATCH: usize = 50;
const MAX_IN_FLIGHT: usize = 2;

#[cfg_attr(
    not(feature = "system-tests"),
    ignore = "needs redis-server and promtool installed: run with --features system-tests (scripts/test.sh does)"
)]
#[tokio::test]
async fn broker_down_and_back_loses_only_what_overflowed_the_buffer() {
    let mut redis = PrivateRedis::start();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("outage.pcap");
    // Group A at t=0; group B 4 s later (replayed at the recorded pace), while redis is down.
    let t0 = 1_700_000_000_000_000;
    let mut packets = make_packets(GROUP_A, t0, 10);
    packets.extend(make_packets(GROUP_B, t0 + 4_000_000, 10));
    write_pcap(&path, &packets);

    let stream = unique("outage");
    let mut config = Config::for_replay(&path, &redis.url(), &stream);
    config.speed = Some(1.0);
    config.overflow = Some(Overflow::Drop);
    config.buffer_frames = BUFFER;
    config.batch_size = BATCH;
    config.max_in_flight = MAX_IN_FLIGHT;
    config.batch_delay_ms = 5;
    config.reconnect_max_ms = 300;
    config.exit_at_eof = false;
    let shutdown = CancellationToken::new();
    let agent = start(config, shutdown.clone()).await.unwrap();
    let metrics = agent.metrics.clone();
    let ops = agent.ops_addr.expect("ops server");

    // Group A is delivered while redis is up.
    let mut first = consumer(&redis.url(), &stream).await;
    let group_a = receive_frames(&mut first, GROUP_A, Duration::from_secs(10)).await;
    assert_eq!(group_a.len(), GROUP_A);
    assert_eq!(ops_get(ops, "/ready").await.0, 200);
    drop(first);

    redis.stop();
    let all_captured = wait_until(Duration::from_secs(15), || async {
        metrics.packets_captured.get() == (GROUP_A + GROUP_B) as u64
    })
    .await;
    assert!(all_captured, "group B was not captured");
    // Let the publisher notice (it is retrying the batches it holds).
    assert!(
        wait_until(Duration::from_secs(5), || async {
            ops_get(ops, "/ready").await.0 == 503
        })
        .await
    );
    let (_, body) = ops_get(ops, "/ready").await;
    assert!(body.contains("broker reachable"), "{body}");
    let dropped = metrics.dropped(drop_reason::BUFFER_FULL);
    // The buffer holds BUFFER frames, the publisher up to MAX_IN_FLIGHT batches more.
    assert!(
        dropped >= (GROUP_B - BUFFER - MAX_IN_FLIGHT * BATCH) as u64
            && dropped <= (GROUP_B - BUFFER) as u64,
        "dropped {dropped}"
    );
    let (_, text) = ops_get(ops, "/metrics").await;
    assert!(
        text.contains(&format!(
            "capture_agent_packets_dropped_total{{reason=\"buffer_full\"}} {dropped}"
        )),
        "{text}"
    );
    netpipe_testkit::promtool_check("broker_outage", &text).unwrap();

    // Redis comes back (empty: it keeps nothing on disk); the buffered frames are delivered.
    redis.restart();
    let mut second = consumer(&redis.url(), &stream).await;
    let expected_b = GROUP_B - dropped as usize;
    let group_b = receive_frames(&mut second, expected_b, Duration::from_secs(20)).await;
    let extra = receive_more(&mut second, Duration::from_millis(500)).await;
    assert!(extra.is_empty(), "{} unexpected extra frames", extra.len());
    assert_eq!(
        group_b.len(),
        expected_b,
        "everything within the buffer arrives"
    );
    assert!(
        wait_until(Duration::from_secs(5), || async {
            ops_get(ops, "/ready").await.0 == 200
        })
        .await
    );

    shutdown.cancel();
    let summary = agent.wait().await.unwrap();
    assert_eq!(summary.packets_captured, (GROUP_A + GROUP_B) as u64);
    assert_eq!(summary.dropped[drop_reason::BUFFER_FULL], dropped);
    assert_eq!(
        summary.frames_published + dropped,
        (GROUP_A + GROUP_B) as u64
    );
    assert!(summary.publish_failures > 0);

    // No duplicates, and every sequence number is either delivered or counted as dropped.
    let seqs: BTreeSet<u64> = group_a.iter().chain(&group_b).map(|f| f.seq).collect();
    assert_eq!(seqs.len(), group_a.len() + group_b.len());
    let boot = group_a[0].boot;
    assert!(
        seqs.iter()
            .all(|s| (boot..boot + (GROUP_A + GROUP_B) as u64).contains(s))
    );
}

#[tokio::test]
async fn unreachable_broker_keeps_ready_at_503_while_retrying() {
    let port = free_port();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("few.pcap");
    write_pcap(&path, &make_packets(10, 1_700_000_000_000_000, 10));
    let url = format!("redis://127.0.0.1:{port}");
    let mut config = Config::for_replay(&path, &url, &unique("unreachable"));
    config.reconnect_max_ms = 200;
    config.shutdown_grace_secs = 1;
    let shutdown = CancellationToken::new();
    let agent = start(config, shutdown.clone()).await.unwrap();
    let ops = agent.ops_addr.expect("ops server");
    for _ in 0..3 {
        let (status, body) = ops_get(ops, "/ready").await;
        assert_eq!(status, 503);
        let json: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(json["ready"], false);
        let reasons = json["reasons"].as_array().unwrap();
        assert_eq!(reasons.len(), 1, "{body}");
        assert!(
            reasons[0]
                .as_str()
                .unwrap()
                .starts_with("broker reachable:"),
            "{body}"
        );
        assert_eq!(ops_get(ops, "/health").await.0, 200);
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let failures_before = agent
        .metrics
        .publish_failures
        .with_label_values(&["unreachable"])
        .get();
    assert!(
        failures_before >= 2,
        "reconnects are attempted: {failures_before}"
    );
    shutdown.cancel();
    let summary = agent.wait().await.unwrap();
    // Nothing could be published; everything is accounted for as lost at shutdown.
    assert_eq!(summary.frames_published, 0);
    assert_eq!(summary.dropped[drop_reason::SHUTDOWN], 10);
}

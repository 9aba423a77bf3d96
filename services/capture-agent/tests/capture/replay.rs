//! Replaying pcaps into real brokers: one frame per packet, equal to the decoder's output.

use std::path::Path;
use std::time::Duration;

use crate::support::*;
use capture_agent::{Config, run};
use netpipe_packet::decode::DecodeOptions;
use netpipe_packet::frame::Frame;
use tokio_util::sync::CancellationToken;

/// Replays `path` into `url`/`stream` and checks every frame against the decoder.
async fn replay_and_compare(path: &Path, url: &str, stream: &str) -> usize {
    let mut consumer = consumer(url, stream).await;
    let mut config = Config::for_replay(path, url, stream);
    config.agent_id = Some("replay-test".into());
    config.batch_size = 64;
    let summary = run(config, CancellationToken::new()).await.unwrap();

    let mut frames = receive_frames(
        &mut consumer,
        summary.frames_published as usize,
        Duration::from_secs(20),
    )
    .await;
    frames.extend(receive_more(&mut consumer, Duration::from_millis(300)).await);
    frames.sort_by_key(|f| f.seq);
    assert!(!frames.is_empty(), "{}: nothing received", path.display());
    let boot = frames[0].boot;
    let expected = expected_frames(path, "replay-test", boot, &DecodeOptions::default());
    assert_eq!(summary.packets_captured, expected.len() as u64);
    assert_eq!(summary.frames_published, expected.len() as u64);
    assert_eq!(summary.dropped_total(), 0);
    assert_eq!(
        frames.len(),
        expected.len(),
        "{}: one frame per packet",
        path.display()
    );
    for (got, want) in frames.iter().zip(&expected) {
        assert_eq!(got, want, "{}: frame seq {}", path.display(), want.seq);
    }
    frames.len()
}

#[cfg_attr(
    not(feature = "system-tests"),
    ignore = "needs Redis at 127.0.0.1:6379: run with --features system-tests (scripts/test.sh does)"
)]
#[tokio::test]
async fn generated_pcap_replays_into_redis_streams() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("generated.pcap");
    write_pcap(&path, &make_packets(1000, 1_700_000_000_000_000, 10));
    let stream = unique("generated_redis");
    assert_eq!(replay_and_compare(&path, REDIS_URL, &stream).await, 1000);
}

#[cfg_attr(
    not(feature = "system-tests"),
    ignore = "needs Redis at 127.0.0.1:6379: run with --features system-tests (scripts/test.sh does)"
)]
#[tokio::test]
async fn corpus_pcaps_replay_into_redis_streams() {
    let Some(data) =
        netpipe_testkit::paths::shared_data_or_skip("corpus_pcaps_replay_into_redis_streams")
    else {
        return;
    };
    for name in [
        "dpkt-http.pcap",
        "pcpp-VlanPackets.pcap",
        "sanders-arp_resolution.pcapng",
        "pcpp-sll.pcap",
        "pcpp-ip4_fragments.pcap",
        "dpkt-truncated_dns.pcap",
    ] {
        let path = data.join("pcaps").join(name);
        let stream = unique(&format!("corpus_redis.{name}"));
        let n = replay_and_compare(&path, REDIS_URL, &stream).await;
        assert!(n > 0, "{name}");
    }
}

#[cfg_attr(
    not(feature = "system-tests"),
    ignore = "needs RabbitMQ at 127.0.0.1:5672: run with --features system-tests (scripts/test.sh does)"
)]
#[tokio::test]
async fn generated_pcap_replays_into_rabbitmq() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("generated.pcap");
    write_pcap(&path, &make_packets(500, 1_700_000_000_000_000, 10));
    let queue = unique("generated_amqp");
    assert_eq!(replay_and_compare(&path, AMQP_URL, &queue).await, 500);
}

#[cfg_attr(
    not(feature = "system-tests"),
    ignore = "needs Redis at 127.0.0.1:6379: run with --features system-tests (scripts/test.sh does)"
)]
#[tokio::test]
async fn a_replay_filter_keeps_only_matching_packets() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mixed.pcap");
    write_pcap(&path, &make_packets(200, 1_700_000_000_000_000, 10));
    let stream = unique("replay_filter");
    let mut consumer = consumer(REDIS_URL, &stream).await;
    let mut config = Config::for_replay(&path, REDIS_URL, &stream);
    config.filter = Some("udp".into());
    let summary = run(config, CancellationToken::new()).await.unwrap();
    assert_eq!(summary.packets_filtered, 100);
    assert_eq!(summary.frames_published, 100);
    let frames: Vec<Frame> = receive_frames(&mut consumer, 100, Duration::from_secs(10)).await;
    assert_eq!(frames.len(), 100);
    assert!(frames.iter().all(|f| f.udp.is_some() && f.tcp.is_none()));
}

#[cfg_attr(
    not(feature = "system-tests"),
    ignore = "needs Redis at 127.0.0.1:6379: run with --features system-tests (scripts/test.sh does)"
)]
#[tokio::test]
async fn kombu_redis_gets_the_original_message_per_packet() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kombu.pcap");
    write_pcap(&path, &make_packets(50, 1_700_000_000_000_000, 10));
    let queue = unique("kombu");
    let url = "kombu+redis://127.0.0.1:6379/15";
    let mut consumer = consumer(url, &queue).await;
    let mut config = Config::for_replay(&path, url, &queue);
    config.agent_id = Some("kombu-agent".into());
    let summary = run(config, CancellationToken::new()).await.unwrap();
    assert_eq!(summary.frames_published, 50);
    assert_eq!(summary.batches_published, 50, "one message per packet");

    let mut bodies = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while bodies.len() < 50 && std::time::Instant::now() < deadline {
        let messages = consumer.receive(64).await.unwrap();
        let tokens: Vec<_> = messages.iter().map(|m| m.token.clone()).collect();
        for m in &messages {
            bodies.push(serde_json::from_slice::<serde_json::Value>(&m.body).unwrap());
        }
        if !tokens.is_empty() {
            consumer.ack(&tokens).await.unwrap();
        }
    }
    assert_eq!(bodies.len(), 50);
    let expected = expected_frames(&path, "kombu-agent", 0, &DecodeOptions::default());
    for (body, frame) in bodies.iter().zip(&expected) {
        assert_eq!(body["source"], "kombu-agent");
        let want = netpipe_packet::schema::legacy::message_from_frame(frame, "", "kombu-agent");
        assert_eq!(body["data"], want["data"]);
        assert_eq!(
            body["created"].as_str().unwrap().len(),
            "2018-01-28 22:58:16".len()
        );
    }
}

#[cfg_attr(
    not(feature = "system-tests"),
    ignore = "needs Redis at 127.0.0.1:6379: run with --features system-tests (scripts/test.sh does)"
)]
#[tokio::test]
async fn loop_replays_the_file_again_with_new_sequence_numbers() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("loop.pcap");
    write_pcap(&path, &make_packets(40, 1_700_000_000_000_000, 10));
    let stream = unique("replay_loop");
    let mut consumer = consumer(REDIS_URL, &stream).await;
    let mut config = Config::for_replay(&path, REDIS_URL, &stream);
    config.agent_id = Some("loop-agent".into());
    config.loops = 3;
    let summary = run(config, CancellationToken::new()).await.unwrap();
    assert_eq!(summary.packets_captured, 120);
    assert_eq!(summary.frames_published, 120);
    let mut frames = receive_frames(&mut consumer, 120, Duration::from_secs(10)).await;
    frames.sort_by_key(|f| f.seq);
    assert_eq!(frames.len(), 120);
    let seqs: std::collections::BTreeSet<u64> = frames.iter().map(|f| f.seq).collect();
    assert_eq!(
        seqs.len(),
        120,
        "every replayed packet is a new (agent, seq)"
    );
    let once = expected_frames(
        &path,
        "loop-agent",
        frames[0].boot,
        &DecodeOptions::default(),
    );
    for (i, frame) in frames.iter().enumerate() {
        let mut want = once[i % 40].clone();
        want.seq = frame.seq;
        assert_eq!(frame, &want, "replay {} packet {}", i / 40, i % 40);
    }
}

#[cfg_attr(
    not(feature = "system-tests"),
    ignore = "needs Redis at 127.0.0.1:6379: run with --features system-tests (scripts/test.sh does)"
)]
#[tokio::test]
async fn count_stops_a_replay_after_that_many_packets() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("count.pcap");
    write_pcap(&path, &make_packets(40, 1_700_000_000_000_000, 10));
    // Endless replay (loop 0), stopped by the count in the middle of the third pass.
    let stream = unique("replay_count");
    let mut config = Config::for_replay(&path, REDIS_URL, &stream);
    config.loops = 0;
    config.count = Some(100);
    let summary = run(config, CancellationToken::new()).await.unwrap();
    assert_eq!(summary.packets_captured, 100);
    assert_eq!(summary.frames_published, 100);

    let mut bad = Config::for_replay(&path, REDIS_URL, &stream);
    bad.count = Some(0);
    let error = run(bad, CancellationToken::new()).await.unwrap_err();
    assert!(error.to_string().contains("--count"), "{error}");
}

#[cfg_attr(
    not(feature = "system-tests"),
    ignore = "needs Redis at 127.0.0.1:6379: run with --features system-tests (scripts/test.sh does)"
)]
#[tokio::test]
async fn a_file_cut_mid_record_still_publishes_every_packet_before_the_cut() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cut.pcap");
    // 100 packets: one whole chunk of frames and a partial one, then half a record header.
    write_pcap(&path, &make_packets(100, 1_700_000_000_000_000, 10));
    let mut bytes = std::fs::read(&path).unwrap();
    bytes.extend_from_slice(&[0x01, 0x02, 0x03, 0x04, 0x05, 0x06]);
    std::fs::write(&path, bytes).unwrap();
    let stream = unique("replay_cut");
    let config = Config::for_replay(&path, REDIS_URL, &stream);
    let error = run(config, CancellationToken::new()).await.unwrap_err();
    assert!(error.to_string().contains("cut.pcap"), "{error}");
    let mut consumer = consumer(REDIS_URL, &stream).await;
    let frames = receive_frames(&mut consumer, 100, Duration::from_secs(10)).await;
    assert_eq!(frames.len(), 100);
    assert!(
        receive_more(&mut consumer, Duration::from_millis(300))
            .await
            .is_empty()
    );
}

#[cfg_attr(
    not(feature = "system-tests"),
    ignore = "needs Redis at 127.0.0.1:6379: run with --features system-tests (scripts/test.sh does)"
)]
#[tokio::test]
async fn an_endless_replay_of_a_file_without_packets_ends() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("empty.pcap");
    write_pcap(&path, &[]);
    let stream = unique("replay_empty_loop");
    let mut config = Config::for_replay(&path, REDIS_URL, &stream);
    config.loops = 0;
    let summary = tokio::time::timeout(
        Duration::from_secs(30),
        run(config, CancellationToken::new()),
    )
    .await
    .expect("an empty file must not be replayed for ever")
    .unwrap();
    assert_eq!(summary.packets_captured, 0);
}

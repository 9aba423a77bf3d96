//! Rows from a processor run reach the AntiNex stand-in exactly once: frames -> processor
//! (antinex-v1 rows, fsynced, forwarded on a rows stream) -> publisher -> stand-in.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use antinex_standin::{Standin, StandinConfig};
use clap::Parser;
use netpipe_packet::decode::{DecodeOptions, FrameMeta, decode};
use netpipe_runtime::broker::{BrokerConfig, Publisher, codec::encode_frames, forget_memory};
use netpipe_runtime::capture::{LinkType, RawPacket};
use tokio_util::sync::CancellationToken;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rows_from_a_processor_run_arrive_exactly_once() {
    let pid = std::process::id();
    let frames_name = format!("p2p-frames-{pid}");
    let rows_name = format!("p2p-rows-{pid}");
    let dir = tempfile::tempdir().unwrap();
    let standin = Standin::start(
        StandinConfig {
            prediction_delay: Duration::from_millis(20),
            ..StandinConfig::default()
        },
        "127.0.0.1:0",
    )
    .await
    .unwrap();

    let processor_config = processor::Config::try_parse_from([
        "processor",
        "--broker-url",
        &format!("memory://{frames_name}"),
        "--ds-dir",
        dir.path().to_str().unwrap(),
        "--schema",
        "antinex-v1",
        "--save-after-num",
        "4",
        "--rows-stream",
        "rows",
        "--rows-broker-url",
        &format!("memory://{rows_name}"),
        "--ops-addr",
        "",
    ])
    .unwrap_or_else(|e| panic!("{e}"));
    let publisher_config =
        publisher::Config::for_tests(&format!("memory://{rows_name}"), &standin.url());

    let stop = CancellationToken::new();
    let processor = tokio::spawn(processor::run(processor_config, stop.clone()));
    let publisher_task = tokio::spawn(publisher::run(publisher_config, stop.clone()));

    // The agent side: the sample capture decoded into frames, published in batches of 5.
    let packets = netpipe_runtime::capture::sample::sample_packets();
    let meta = |seq| FrameMeta {
        agent: Arc::from("p2p-agent"),
        boot: 1,
        seq,
    };
    let frames: Vec<_> = packets
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let raw = RawPacket {
                ts_ns: p.ts_ns,
                wire_len: p.data.len() as u32,
                link: LinkType::ETHERNET,
                data: &p.data,
            };
            decode(&raw, &meta(1 + i as u64), &DecodeOptions::default())
        })
        .collect();
    let frames_out =
        Publisher::connect(&BrokerConfig::parse(format!("memory://{frames_name}")).unwrap())
            .await
            .unwrap();
    for batch in frames.chunks(5) {
        frames_out.publish(encode_frames(batch)).await.unwrap();
    }
    drop(frames_out);
    forget_memory(&frames_name);

    let processed = tokio::time::timeout(Duration::from_secs(60), processor)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(
        processed.rows_written,
        vec![("antinex-v1".to_string(), packets.len() as u64)]
    );
    // Every row is forwarded; closing the rows stream lets the publisher finish once all are settled.
    forget_memory(&rows_name);
    let published = tokio::time::timeout(Duration::from_secs(60), publisher_task)
        .await
        .unwrap()
        .unwrap()
        .unwrap();

    assert_eq!(published.rows_sent, packets.len() as u64, "{published:?}");
    let counters = &standin.state.counters;
    assert_eq!(
        counters.rows_accepted.load(Ordering::Relaxed),
        packets.len() as u64
    );
    assert_eq!(counters.duplicates.load(Ordering::Relaxed), 0);
    let posted: usize = standin.state.jobs().iter().map(|job| job.row_count).sum();
    assert_eq!(posted, packets.len(), "each row posted once");
    standin.stop().await;
}

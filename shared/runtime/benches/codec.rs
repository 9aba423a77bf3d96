//! Frame batch codec: encoding (capture-agent) and decoding (processor) of 256-frame batches
//! of real traffic (the first 25,600 packets of `large-100k.pcap`), payload capture off.
//!
//! `cargo bench -p netpipe-runtime --bench codec`

use std::sync::Arc;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use netpipe_packet::decode::{DecodeOptions, FrameMeta, decode};
use netpipe_packet::frame::Frame;
use netpipe_runtime::broker::codec::{decode_frames, encode_frames};
use netpipe_runtime::capture::CaptureFile;

const BATCH: usize = 256;
const BATCHES: usize = 100;

fn load() -> Option<Vec<Vec<Frame>>> {
    let path = netpipe_testkit::paths::shared_data_dir()?.join("pcaps/large-100k.pcap");
    let mut capture = CaptureFile::open(&path).ok()?;
    let options = DecodeOptions { payload_bytes: 0 };
    let mut frames = Vec::new();
    while frames.len() < BATCH * BATCHES {
        let Ok(Some(raw)) = capture.next_packet() else {
            break;
        };
        let meta = FrameMeta {
            agent: Arc::from("bench-agent"),
            boot: 1,
            seq: frames.len() as u64,
        };
        frames.push(decode(&raw, &meta, &options));
    }
    Some(frames.chunks(BATCH).map(<[Frame]>::to_vec).collect())
}

fn bench_codec(c: &mut Criterion) {
    let Some(batches) = load() else {
        eprintln!("codec bench skipped: ../shared/data/pcaps/large-100k.pcap is absent");
        return;
    };
    let bodies: Vec<Vec<u8>> = batches.iter().map(|b| encode_frames(b)).collect();
    let frames: usize = batches.iter().map(Vec::len).sum();
    let mut group = c.benchmark_group("frame_codec");
    group.throughput(Throughput::Elements(frames as u64));
    group.sample_size(20);
    group.measurement_time(Duration::from_secs(5));
    group.bench_function("encode_serde_json", |b| {
        b.iter(|| {
            batches
                .iter()
                .map(|f| serde_json::to_vec(f).map_or(0, |v| v.len()))
                .sum::<usize>()
        })
    });
    group.bench_function("encode_netpipe", |b| {
        b.iter(|| {
            batches
                .iter()
                .map(|f| encode_frames(f).len())
                .sum::<usize>()
        })
    });
    group.bench_function("decode_serde_json", |b| {
        b.iter(|| {
            bodies
                .iter()
                .map(|body| serde_json::from_slice::<Vec<Frame>>(body).map_or(0, |f| f.len()))
                .sum::<usize>()
        })
    });
    group.bench_function("decode_netpipe", |b| {
        b.iter(|| {
            bodies
                .iter()
                .map(|body| decode_frames(body).map_or(0, |f| f.len()))
                .sum::<usize>()
        })
    });
    group.finish();
}

criterion_group!(benches, bench_codec);
criterion_main!(benches);

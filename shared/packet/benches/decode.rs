//! Decoder throughput on `../shared/data/pcaps/large-100k.pcap`, read into memory first so
//! only decoding is measured. Payload capture off (the agent's default hot path) and on.
//!
//! `cargo bench -p netpipe-packet --bench decode`

use std::sync::Arc;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use netpipe_packet::decode::{DecodeOptions, FrameMeta, decode};
use netpipe_runtime::capture::{CaptureFile, LinkType, RawPacket};

struct Packet {
    link: LinkType,
    wire_len: u32,
    data: Vec<u8>,
}

fn load() -> Option<Vec<Packet>> {
    let path = netpipe_testkit::paths::shared_data_dir()?.join("pcaps/large-100k.pcap");
    let mut capture = CaptureFile::open(&path).ok()?;
    let mut packets = Vec::new();
    while let Ok(Some(p)) = capture.next_packet() {
        packets.push(Packet {
            link: p.link,
            wire_len: p.wire_len,
            data: p.data.to_vec(),
        });
    }
    Some(packets)
}

fn bench_decode(c: &mut Criterion) {
    let Some(packets) = load() else {
        eprintln!("decode bench skipped: ../shared/data/pcaps/large-100k.pcap is absent");
        return;
    };
    let meta = FrameMeta {
        agent: Arc::from("bench"),
        boot: 1,
        seq: 0,
    };
    let mut group = c.benchmark_group("decode_large_100k");
    group.throughput(Throughput::Elements(packets.len() as u64));
    group.sample_size(20);
    group.measurement_time(Duration::from_secs(10));
    for (name, payload_bytes) in [("payload_off", 0), ("payload_64", 64)] {
        let options = DecodeOptions { payload_bytes };
        group.bench_function(name, |b| {
            b.iter(|| {
                let mut layers = 0usize;
                for p in &packets {
                    let raw = RawPacket {
                        ts_ns: 0,
                        wire_len: p.wire_len,
                        link: p.link,
                        data: &p.data,
                    };
                    let frame = decode(&raw, &meta, &options);
                    layers += usize::from(frame.tcp.is_some()) + frame.errors.len();
                    std::hint::black_box(&frame);
                }
                layers
            });
        });
    }
    group.finish();
}

criterion_group!(benches, bench_decode);
criterion_main!(benches);

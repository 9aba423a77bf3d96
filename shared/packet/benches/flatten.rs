//! Flatten speed: one CSV row per frame for each schema, over typical hand-built frames
//! (TCP SYN with options, HTTP data segment, UDP DNS, ICMP echo, ARP, IPv6 TCP).
//!
//! Run: `cargo bench -p netpipe-packet --bench flatten`; figures go to docs/schemas.md.
//! Measured in **thread CPU time** (CLOCK_THREAD_CPUTIME_ID), not wall time, so a busy shared
//! machine inflates the figures less; throughput is frames (rows) per CPU-second.

use std::hint::black_box;

use criterion::measurement::{Measurement, ValueFormatter};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use netpipe_packet::schema::legacy::message_from_frame;
use netpipe_packet::schema::{RowContext, by_name};
use netpipe_testkit::samples;

/// Thread CPU time in nanoseconds.
struct ThreadCpuTime;

#[allow(unsafe_code)] // libc::clock_gettime
fn thread_cpu_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes into the timespec we own; the clock id is a constant.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime(CLOCK_THREAD_CPUTIME_ID) failed");
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

impl Measurement for ThreadCpuTime {
    type Intermediate = u64;
    type Value = u64;
    fn start(&self) -> u64 {
        thread_cpu_ns()
    }
    fn end(&self, start: u64) -> u64 {
        thread_cpu_ns().saturating_sub(start)
    }
    fn add(&self, a: &u64, b: &u64) -> u64 {
        a + b
    }
    fn zero(&self) -> u64 {
        0
    }
    fn to_f64(&self, v: &u64) -> f64 {
        *v as f64
    }
    fn formatter(&self) -> &dyn ValueFormatter {
        &CpuNanos
    }
}

struct CpuNanos;

impl ValueFormatter for CpuNanos {
    fn scale_values(&self, typical: f64, values: &mut [f64]) -> &'static str {
        let (div, unit) = if typical < 1e3 {
            (1.0, "ns cpu")
        } else if typical < 1e6 {
            (1e3, "µs cpu")
        } else {
            (1e6, "ms cpu")
        };
        values.iter_mut().for_each(|v| *v /= div);
        unit
    }

    fn scale_throughputs(&self, typical: f64, t: &Throughput, values: &mut [f64]) -> &'static str {
        let n = match t {
            Throughput::Elements(n) | Throughput::Bytes(n) | Throughput::BytesDecimal(n) => *n,
        } as f64;
        let per_sec = n * 1e9 / typical;
        let (div, unit) = if per_sec >= 1e6 {
            (1e6, "Melem/cpu-s")
        } else {
            (1e3, "Kelem/cpu-s")
        };
        values.iter_mut().for_each(|v| *v = n * 1e9 / *v / div);
        unit
    }

    fn scale_for_machines(&self, _values: &mut [f64]) -> &'static str {
        "ns"
    }
}

fn flatten(c: &mut Criterion<ThreadCpuTime>) {
    let frames = samples::typical();
    let mut payload_off = frames.clone();
    for f in &mut payload_off {
        if let Some(p) = f.payload.as_mut() {
            p.hex = None;
        }
        if let Some(p) = f.padding.as_mut() {
            p.hex = None;
        }
    }
    // Capture fields only (no layers): the fixed per-row cost of ~100 mostly empty columns.
    let bare: Vec<_> = frames
        .iter()
        .map(|f| {
            netpipe_packet::Frame::new(
                f.agent.clone(),
                f.boot,
                f.seq,
                f.ts_ns,
                f.wire_len,
                f.cap_len,
                f.link,
            )
        })
        .collect();
    let mut group = c.benchmark_group("flatten");
    group.throughput(Throughput::Elements(frames.len() as u64));
    for (schema_name, set_name, set) in [
        ("netpipe", "bare", &bare),
        ("netpipe", "payload_off", &payload_off),
        ("netpipe", "payload_on", &frames),
        ("antinex-v1", "payload_on", &frames),
    ] {
        let schema = by_name(schema_name).unwrap();
        let mut out = Vec::with_capacity(64 * 1024);
        group.bench_function(format!("{schema_name}/{set_name}"), |b| {
            b.iter(|| {
                out.clear();
                for (i, f) in set.iter().enumerate() {
                    schema.write_row(black_box(f), &RowContext { idx: i as u64 }, &mut out);
                }
                black_box(out.len())
            })
        });
    }
    group.bench_function("legacy_message/payload_on", |b| {
        b.iter(|| {
            let mut n = 0;
            for f in &frames {
                n += message_from_frame(black_box(f), "2018-01-28 22:58:16", "localdev")
                    .as_object()
                    .map_or(0, |m| m.len());
            }
            black_box(n)
        })
    });
    group.finish();
}

/// The first packets of `../shared/data/pcaps/large-100k.pcap`, owned, when the data is there.
fn corpus_packets(max: usize) -> Option<Vec<(netpipe_runtime::capture::LinkType, u32, Vec<u8>)>> {
    let path = netpipe_testkit::paths::shared_data_dir()?.join("pcaps/large-100k.pcap");
    let mut capture = netpipe_runtime::capture::CaptureFile::open(&path).ok()?;
    let mut packets = Vec::new();
    while packets.len() < max
        && let Ok(Some(p)) = capture.next_packet()
    {
        packets.push((p.link, p.wire_len, p.data.to_vec()));
    }
    Some(packets)
}

/// Real traffic: flatten of decoded corpus frames, and decode + flatten together (the
/// processor-side cost per packet with payload capture off).
fn corpus(c: &mut Criterion<ThreadCpuTime>) {
    use netpipe_packet::decode::{DecodeOptions, FrameMeta, decode};
    use netpipe_runtime::capture::RawPacket;
    let Some(packets) = corpus_packets(20_000) else {
        eprintln!("corpus flatten bench skipped: ../shared/data/pcaps/large-100k.pcap is absent");
        return;
    };
    let meta = FrameMeta {
        agent: "bench".into(),
        boot: 1,
        seq: 0,
    };
    let options = DecodeOptions { payload_bytes: 0 };
    fn raw(p: &(netpipe_runtime::capture::LinkType, u32, Vec<u8>)) -> RawPacket<'_> {
        RawPacket {
            ts_ns: 1_517_180_765_123_456_789,
            wire_len: p.1,
            link: p.0,
            data: &p.2,
        }
    }
    let frames: Vec<_> = packets
        .iter()
        .map(|p| decode(&raw(p), &meta, &options))
        .collect();
    let schema = by_name("netpipe").unwrap();
    let mut group = c.benchmark_group("corpus_20k");
    group.throughput(Throughput::Elements(packets.len() as u64));
    group.sample_size(20);
    let mut out = Vec::with_capacity(16 << 20);
    group.bench_function("netpipe_flatten/payload_off", |b| {
        b.iter(|| {
            out.clear();
            for (i, f) in frames.iter().enumerate() {
                schema.write_row(f, &RowContext { idx: i as u64 }, &mut out);
            }
            black_box(out.len())
        })
    });
    group.bench_function("decode+netpipe_flatten/payload_off", |b| {
        b.iter(|| {
            out.clear();
            for (i, p) in packets.iter().enumerate() {
                let frame = decode(&raw(p), &meta, &options);
                schema.write_row(&frame, &RowContext { idx: i as u64 }, &mut out);
            }
            black_box(out.len())
        })
    });
    group.finish();
}

fn config() -> Criterion<ThreadCpuTime> {
    Criterion::default().with_measurement(ThreadCpuTime)
}

criterion_group! {
    name = benches;
    config = config();
    targets = flatten, corpus
}
criterion_main!(benches);

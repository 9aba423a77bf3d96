//! One pass of frame-batch work over the first 25,600 packets of `large-100k.pcap`, for
//! instruction counting under callgrind (`bench/codec_instructions.sh`): criterion's wall-clock
//! figures move by +-30% on a shared VM, instruction counts do not.
//!
//!   codec_work PCAP (load|encode|decode|csv|encode_serde_json|decode_serde_json|encode_sonic_rs|
//!                    decode_sonic_rs|encode_simd_json|decode_simd_json)
//!
//! The `*_serde_json`, `*_sonic_rs` and `*_simd_json` modes do the same work through those crates'
//! serde APIs, to weigh the hand-written codec (`frame_json`) against them (docs/benchmarks.md).
//! The sonic-rs and simd-json modes (and `check`) need `--features json-alternatives`, so the
//! two crates are not built by every test run.
//!
//! `load` only decodes the packets and encodes the batches; every other mode does that too and
//! then its own work once, so (mode - load) / frames is the mode's cost per frame.

use std::process::ExitCode;
use std::sync::Arc;

use netpipe_packet::decode::{DecodeOptions, FrameMeta, decode};
use netpipe_packet::frame::Frame;
use netpipe_packet::schema::RowContext;
use netpipe_runtime::broker::codec::{decode_frames, encode_frames};
use netpipe_runtime::capture::CaptureFile;

const FRAMES: usize = 25_600;
const BATCH: usize = 256;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let (Some(path), Some(mode)) = (args.get(1), args.get(2)) else {
        eprintln!("usage: codec_work PCAP MODE (see the top of codec_work.rs)");
        return ExitCode::from(2);
    };
    let mut capture = match CaptureFile::open(std::path::Path::new(path)) {
        Ok(capture) => capture,
        Err(error) => {
            eprintln!("codec_work: {path}: {error}");
            return ExitCode::from(1);
        }
    };
    let options = DecodeOptions { payload_bytes: 0 };
    let agent: Arc<str> = Arc::from("bench-agent");
    let mut frames: Vec<Frame> = Vec::with_capacity(FRAMES);
    while frames.len() < FRAMES {
        let Ok(Some(raw)) = capture.next_packet() else {
            break;
        };
        let meta = FrameMeta {
            agent: agent.clone(),
            boot: 1,
            seq: frames.len() as u64,
        };
        frames.push(decode(&raw, &meta, &options));
    }
    let bodies: Vec<Vec<u8>> = frames.chunks(BATCH).map(encode_frames).collect();
    let work: usize = match mode.as_str() {
        "load" => 0,
        "encode" => frames.chunks(BATCH).map(|b| encode_frames(b).len()).sum(),
        "decode" => bodies
            .iter()
            .map(|body| decode_frames(body).map_or(0, |f| f.len()))
            .sum(),
        "encode_serde_json" => frames
            .chunks(BATCH)
            .map(|b| serde_json::to_vec(b).map_or(0, |v| v.len()))
            .sum(),
        "decode_serde_json" => bodies
            .iter()
            .map(|body| serde_json::from_slice::<Vec<Frame>>(body).map_or(0, |f| f.len()))
            .sum(),
        #[cfg(feature = "json-alternatives")]
        "encode_sonic_rs" => frames
            .chunks(BATCH)
            .map(|b| sonic_rs::to_vec(b).map_or(0, |v| v.len()))
            .sum(),
        #[cfg(feature = "json-alternatives")]
        "decode_sonic_rs" => bodies
            .iter()
            .map(|body| sonic_rs::from_slice::<Vec<Frame>>(body).map_or(0, |f| f.len()))
            .sum(),
        #[cfg(feature = "json-alternatives")]
        "encode_simd_json" => frames
            .chunks(BATCH)
            .map(|b| simd_json::serde::to_vec(b).map_or(0, |v| v.len()))
            .sum(),
        // simd-json parses in place: the copy of each body is part of its cost.
        #[cfg(feature = "json-alternatives")]
        "decode_simd_json" => bodies
            .iter()
            .map(|body| {
                let mut owned = body.clone();
                simd_json::serde::from_slice::<Vec<Frame>>(&mut owned).map_or(0, |f| f.len())
            })
            .sum(),
        #[cfg(feature = "json-alternatives")]
        "check" => {
            // Every crate reads what frame_json writes back to the same frames.
            let mut same = 0;
            for (body, batch) in bodies.iter().zip(frames.chunks(BATCH)) {
                let sonic: Vec<Frame> = sonic_rs::from_slice(body).unwrap_or_default();
                let simd: Vec<Frame> =
                    simd_json::serde::from_slice(&mut body.clone()).unwrap_or_default();
                let ours = decode_frames(body).unwrap_or_default();
                let sonic_out = sonic_rs::to_vec(batch).unwrap_or_default();
                let simd_out = simd_json::serde::to_vec(batch).unwrap_or_default();
                if sonic == batch
                    && simd == batch
                    && ours == batch
                    && sonic_out == *body
                    && simd_out == *body
                {
                    same += batch.len();
                }
            }
            same
        }
        "csv" => {
            let Some(schema) = netpipe_packet::schema::by_name("netpipe") else {
                return ExitCode::from(1);
            };
            let mut out = Vec::with_capacity(1 << 20);
            frames
                .iter()
                .map(|frame| {
                    out.clear();
                    schema.write_row(frame, &RowContext { idx: 0 }, &mut out);
                    out.len()
                })
                .sum()
        }
        other => {
            eprintln!("codec_work: unknown mode {other}");
            return ExitCode::from(2);
        }
    };
    println!("frames={} work={work}", frames.len());
    ExitCode::SUCCESS
}

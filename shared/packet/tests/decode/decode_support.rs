//! Helpers shared by the decoder tests: reading corpus files and decoding every packet.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::Arc;

use netpipe_packet::decode::{DecodeOptions, FrameMeta, decode};
use netpipe_packet::frame::Frame;
use netpipe_runtime::capture::{CaptureFile, FileError, LinkType, RawPacket};

/// `../shared/data/pcaps`, or `None` (with a skip notice) when the reference data is absent.
pub fn pcaps_dir(test: &str) -> Option<PathBuf> {
    netpipe_testkit::paths::shared_data_or_skip(test).map(|d| d.join("pcaps"))
}

pub fn meta() -> FrameMeta {
    FrameMeta {
        agent: Arc::from("test"),
        boot: 1,
        seq: 0,
    }
}

/// Decodes one in-memory packet with the given link type.
pub fn decode_bytes(link: u16, data: &[u8], options: &DecodeOptions) -> Frame {
    let packet = RawPacket {
        ts_ns: 0,
        wire_len: u32::try_from(data.len()).unwrap_or(u32::MAX),
        link: LinkType(link),
        data,
    };
    decode(&packet, &meta(), options)
}

/// Decodes a packet whose capture was cut by a snaplen (the wire length is larger).
pub fn decode_cut(link: u16, data: &[u8], options: &DecodeOptions) -> Frame {
    let packet = RawPacket {
        ts_ns: 0,
        wire_len: u32::try_from(data.len())
            .unwrap_or(u32::MAX)
            .saturating_add(1000),
        link: LinkType(link),
        data,
    };
    decode(&packet, &meta(), options)
}

/// Decodes every packet of a capture file (stops at a file-level error, returned with the
/// frames decoded before it).
pub fn decode_file(path: &Path, options: &DecodeOptions) -> (Vec<Frame>, Option<FileError>) {
    let mut frames = Vec::new();
    let mut capture = match CaptureFile::open(path) {
        Ok(capture) => capture,
        Err(e) => return (frames, Some(e)),
    };
    let meta = meta();
    loop {
        match capture.next_packet() {
            Ok(Some(packet)) => frames.push(decode(&packet, &meta, options)),
            Ok(None) => return (frames, None),
            Err(e) => return (frames, Some(e)),
        }
    }
}

/// Every packet of a capture file as (link type, bytes, wire length).
pub fn raw_packets(path: &Path) -> Vec<(u16, Vec<u8>, u32)> {
    let mut out = Vec::new();
    let Ok(mut capture) = CaptureFile::open(path) else {
        return out;
    };
    while let Ok(Some(packet)) = capture.next_packet() {
        out.push((packet.link.0, packet.data.to_vec(), packet.wire_len));
    }
    out
}

/// Capture files directly inside `dir` (not recursive), sorted.
pub fn capture_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| {
                    p.is_file() && p.extension().is_some_and(|e| e == "pcap" || e == "pcapng")
                })
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    files
}

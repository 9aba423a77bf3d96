//! Helpers of the flow tests: a capture file or fixture packets through decode and the flow table.

#![allow(dead_code)]

use std::path::Path;
use std::sync::Arc;

use netpipe_packet::decode::{DecodeOptions, FrameMeta, decode};
use netpipe_packet::flow::{FlowConfig, FlowRecord, FlowTable};
use netpipe_runtime::capture::sample::FixturePacket;
use netpipe_runtime::capture::{CaptureFile, LinkType, RawPacket};

fn meta() -> FrameMeta {
    FrameMeta {
        agent: Arc::from("test"),
        boot: 0,
        seq: 0,
    }
}

/// Every flow of a capture file, in emission order, and the table (for its counters).
pub fn flows_of_file(path: &Path, config: FlowConfig) -> (Vec<FlowRecord>, FlowTable) {
    let mut file = CaptureFile::open(path).unwrap();
    let mut table = FlowTable::new(config, 0);
    let mut out = Vec::new();
    let options = DecodeOptions { payload_bytes: 0 };
    let meta = meta();
    while let Some(packet) = file.next_packet().unwrap() {
        let frame = decode(&packet, &meta, &options);
        table.push_frame(&frame, &mut out);
    }
    table.finish(&mut out);
    (out, table)
}

/// Every flow of fixture packets on an Ethernet link.
pub fn flows_of_packets(
    packets: &[FixturePacket],
    config: FlowConfig,
) -> (Vec<FlowRecord>, FlowTable) {
    let mut table = FlowTable::new(config, 0);
    let mut out = Vec::new();
    let options = DecodeOptions { payload_bytes: 0 };
    let meta = meta();
    for p in packets {
        let raw = RawPacket {
            ts_ns: p.ts_ns,
            wire_len: u32::try_from(p.data.len()).unwrap(),
            link: LinkType::ETHERNET,
            data: &p.data,
        };
        table.push_frame(&decode(&raw, &meta, &options), &mut out);
    }
    table.finish(&mut out);
    (out, table)
}

/// A record's value of one column, as text.
pub fn cell_text(record: &FlowRecord, column: &str) -> Option<String> {
    record.to_json().get(column).map(|v| match v {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    })
}

//! Decoder fuzz target: the first 2 bytes (big-endian) pick the link type, the rest is the
//! packet. Besides "no panic" it checks the frame's own invariants.
#![no_main]

use std::sync::Arc;

use libfuzzer_sys::fuzz_target;
use netpipe_fuzz::link::{LinkType, RawPacket};
use netpipe_fuzz::decode::{DecodeOptions, FrameMeta, decode};

fuzz_target!(|input: &[u8]| {
    let Some((selector, data)) = input.split_first_chunk::<2>() else {
        return;
    };
    let link = LinkType(netpipe_fuzz::pick_link(u16::from_be_bytes(*selector)));
    let meta = FrameMeta {
        agent: Arc::from("fuzz"),
        boot: 0,
        seq: 0,
    };
    for (payload_bytes, wire_extra) in [(0usize, 0u32), (16, 100)] {
        let packet = RawPacket {
            ts_ns: 0,
            wire_len: data.len() as u32 + wire_extra,
            link,
            data,
        };
        let frame = decode(&packet, &meta, &DecodeOptions { payload_bytes });
        let payload = frame.payload.as_ref().map_or(0, |p| p.len);
        let padding = frame.padding.as_ref().map_or(0, |p| p.len);
        assert!(payload as usize + padding as usize <= data.len());
        for part in [&frame.payload, &frame.padding].into_iter().flatten() {
            let hex_len = part.hex.as_ref().map_or(0, String::len);
            assert!(hex_len <= 2 * payload_bytes);
            assert!(hex_len <= 2 * part.len as usize);
        }
        let json = serde_json::to_string(&frame).expect("frame serializes");
        let back: netpipe_fuzz::frame::Frame = serde_json::from_str(&json).expect("round trip");
        assert_eq!(back, frame);
    }
});

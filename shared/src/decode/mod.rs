//! Decoder: raw packet bytes to a [`Frame`]. Pure: no I/O, no clock, no logging.

use std::sync::Arc;

use crate::capture::RawPacket;
use crate::frame::Frame;

/// Decoder settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecodeOptions {
    /// Payload bytes copied into the frame as hex; `0` turns payload capture off.
    pub payload_bytes: usize,
}

impl Default for DecodeOptions {
    fn default() -> Self {
        DecodeOptions { payload_bytes: 64 }
    }
}

/// Who captured a packet and its sequence number.
#[derive(Debug, Clone)]
pub struct FrameMeta {
    pub agent: Arc<str>,
    pub boot: u64,
    pub seq: u64,
}

/// Decodes one packet. Never panics; what cannot be decoded is listed in `Frame::errors`.
pub fn decode(packet: &RawPacket<'_>, meta: &FrameMeta, options: &DecodeOptions) -> Frame {
    let _ = options;
    Frame::new(
        meta.agent.clone(),
        meta.boot,
        meta.seq,
        packet.ts_ns,
        packet.wire_len,
        u32::try_from(packet.data.len()).unwrap_or(u32::MAX),
        packet.link.0,
    )
}

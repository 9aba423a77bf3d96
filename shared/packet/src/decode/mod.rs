//! Decoder: raw packet bytes to a [`Frame`]. Pure: no I/O, no clock, no logging.
//!
//! One pass from the link header down to DNS. Fixed headers are validated with etherparse's
//! header slices; length handling is lax in the same way as etherparse's `LaxSlicedPacket`
//! (a truncated capture keeps every layer that parsed). See docs/decoding.md for what is
//! decoded per layer and every [`DecodeIssue`](crate::frame::DecodeIssue).
//!
//! Every read goes through the bounds-checked helpers in `bytes`, so malformed input ends a
//! layer with an issue in `Frame::errors` instead of a panic.

mod arp;
mod bytes;
mod dns;
mod ip;
mod link;
mod llc;
mod payload;
mod tcp_options;
mod transport;

use std::sync::Arc;

use crate::frame::{DecodeIssue, Frame};
use crate::link::RawPacket;

/// Decoder settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecodeOptions {
    /// Payload bytes copied into the frame as hex; `0` turns payload capture off.
    pub payload_bytes: usize,
}

impl Default for DecodeOptions {
    fn default() -> Self {
        DecodeOptions {
            payload_bytes: DEFAULT_PAYLOAD_BYTES,
        }
    }
}

/// Payload bytes kept when nothing is configured and the output is netpipe's own.
pub const DEFAULT_PAYLOAD_BYTES: usize = 64;
/// The largest payload setting: libpcap's MAXIMUM_SNAPLEN, so no captured packet is longer.
pub const MAX_PAYLOAD_BYTES: usize = 262_144;
/// "Keep the whole payload": no captured packet is longer than the largest setting.
pub const FULL_PAYLOAD: usize = MAX_PAYLOAD_BYTES;

/// The payload policy: an explicit setting always wins; otherwise 64 bytes, or the whole
/// payload when the output must equal the original network-pipeline's (antinex-v1 rows or
/// kombu messages, whose `raw_load` is the full payload).
pub fn payload_bytes_for(explicit: Option<usize>, original_compatible: bool) -> usize {
    match explicit {
        Some(n) => n,
        None if original_compatible => FULL_PAYLOAD,
        None => DEFAULT_PAYLOAD_BYTES,
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
    let cap_len = u32::try_from(packet.data.len()).unwrap_or(u32::MAX);
    let frame = Frame::new(
        meta.agent.clone(),
        meta.boot,
        meta.seq,
        packet.ts_ns,
        packet.wire_len,
        cap_len,
        packet.link.0,
    );
    let mut ctx = Ctx {
        frame,
        payload_bytes: options.payload_bytes,
        whole_packet: packet.wire_len <= cap_len,
    };
    link::decode_link(&mut ctx, packet.link, packet.data);
    ctx.frame
}

/// Decoding state shared by the layer decoders.
pub(crate) struct Ctx {
    frame: Frame,
    /// Hex byte limit for payload and padding (0 = off).
    payload_bytes: usize,
    /// The capture holds every byte of the wire packet (no snaplen cut), so a length field
    /// that points past the end is a lie, not a truncation.
    whole_packet: bool,
}

impl Ctx {
    fn issue(&mut self, issue: DecodeIssue) {
        // One entry per problem kind is enough (a chain of 40 bad headers is one problem).
        if !self.frame.errors.contains(&issue) {
            self.frame.errors.push(issue);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_policy() {
        assert_eq!(payload_bytes_for(None, false), 64);
        assert_eq!(payload_bytes_for(None, true), FULL_PAYLOAD);
        assert_eq!(payload_bytes_for(Some(0), true), 0);
        assert_eq!(payload_bytes_for(Some(16), false), 16);
    }
}

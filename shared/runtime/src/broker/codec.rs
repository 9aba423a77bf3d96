//! Wire formats: batches of frames (capture-agent -> processor) and batches of rows
//! (processor -> publisher), as JSON; the original's per-packet messages for kombu. The
//! broker URL picks the format ([`WireFormat::for_url`]); services never choose one.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use netpipe_packet::frame::Frame;

use super::BrokerUrl;
use super::arrival::FrameBatch;

pub use super::kombu_envelope::{
    KombuEnvelopeError, KombuMessage, decode_kombu_envelope, encode_kombu_envelope,
};

/// Typical size of one encoded frame without payload, to size the body once.
const FRAME_JSON_BYTES: usize = 600;

/// Encodes frames as one message body: a JSON array of Frame documents (the bytes
/// `serde_json::to_vec` would write, written by [`netpipe_packet::frame_json`]).
pub fn encode_frames(frames: &[Frame]) -> Vec<u8> {
    let mut body = Vec::with_capacity(frames.len() * FRAME_JSON_BYTES + 2);
    netpipe_packet::frame_json::write_frames(frames, &mut body);
    body
}

/// Decodes a frame batch. Fails on anything that is not a JSON array of valid frames.
/// The common shape takes the fast path; anything else (and every error) is serde_json's.
pub fn decode_frames(body: &[u8]) -> Result<Vec<Frame>, serde_json::Error> {
    match netpipe_packet::frame_json::read_frames(body) {
        Some(frames) => Ok(frames),
        None => serde_json::from_slice(body),
    }
}

/// How frames travel on a broker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WireFormat {
    /// `memory://`: the batch itself crosses the in-process channel, never serialised.
    InProcess,
    /// Redis Streams and AMQP: one message per batch, a JSON array of frames.
    FrameBatch,
    /// `kombu+redis://`: one message per packet in the original's format (`data`, `created`,
    /// `source`), which the kombu backend wraps in kombu's envelope. `source` is the original's
    /// SOURCE_HOST.
    LegacyPerPacket { source: String },
}

impl WireFormat {
    pub fn for_url(url: &BrokerUrl, source: &str) -> Self {
        match (url.backend(), url.is_kombu()) {
            (super::Backend::Memory, _) => WireFormat::InProcess,
            (_, true) => WireFormat::LegacyPerPacket {
                source: source.to_string(),
            },
            (_, false) => WireFormat::FrameBatch,
        }
    }

    /// The original's consumers know nothing of in-band loss reports.
    pub fn carries_agent_stats(&self) -> bool {
        !matches!(self, WireFormat::LegacyPerPacket { .. })
    }

    /// The messages one batch becomes, each with the number of frames it carries.
    pub fn messages(&self, frames: Vec<Frame>) -> Vec<(u64, Payload)> {
        match self {
            WireFormat::InProcess => {
                vec![(frames.len() as u64, Payload::Frames(Arc::new(frames)))]
            }
            WireFormat::FrameBatch => {
                vec![(frames.len() as u64, Payload::Bytes(encode_frames(&frames)))]
            }
            WireFormat::LegacyPerPacket { source } => frames
                .iter()
                .map(|frame| (1, Payload::Bytes(legacy_body(frame, source))))
                .collect(),
        }
    }
}

/// One outgoing message: encoded bytes, or frames for an in-process channel.
#[derive(Debug, Clone)]
pub enum Payload {
    Bytes(Vec<u8>),
    Frames(FrameBatch),
}

/// The original's message for one packet; `created` is local time at one-second resolution,
/// as the original wrote it.
pub fn legacy_body(frame: &Frame, source: &str) -> Vec<u8> {
    let created = chrono::DateTime::from_timestamp_nanos(frame.ts_ns)
        .with_timezone(&chrono::Local)
        .format("%Y-%m-%d %H:%M:%S")
        .to_string();
    let message = netpipe_packet::schema::legacy::message_from_frame(frame, &created, source);
    serde_json::to_vec(&message).unwrap_or_default()
}

/// One row on the rows stream, with its identity so a prediction can be matched to it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RowRecord {
    pub agent: String,
    pub seq: u64,
    /// Cells in the order of [`RowBatch::columns`]; empty string = absent.
    pub cells: Vec<String>,
}

/// A batch of rows under one column schema.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RowBatch {
    /// Column schema name, e.g. `antinex-v1`.
    pub schema: String,
    pub columns: Vec<String>,
    pub rows: Vec<RowRecord>,
}

impl RowBatch {
    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }

    pub fn decode(body: &[u8]) -> Result<Self, serde_json::Error> {
        serde_json::from_slice(body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_batches_round_trip_and_garbage_fails() {
        let frames = vec![
            Frame::new("a".into(), 1, 1, 5, 60, 60, 1),
            Frame::new("a".into(), 1, 2, 6, 60, 60, 1),
        ];
        assert_eq!(decode_frames(&encode_frames(&frames)).unwrap(), frames);
        assert!(decode_frames(b"not json").is_err());
        assert!(decode_frames(b"{\"v\":1}").is_err());
    }

    #[test]
    fn the_url_picks_the_wire_format() {
        let format = |url: &str| WireFormat::for_url(&url.parse().unwrap(), "h");
        let frames = vec![
            Frame::new("a".into(), 1, 1, 5, 60, 60, 1),
            Frame::new("a".into(), 1, 2, 6, 60, 60, 1),
        ];
        let memory = format("memory://x").messages(frames.clone());
        assert!(matches!(&memory[..], [(2, Payload::Frames(f))] if **f == frames));
        let redis = format("redis://h").messages(frames.clone());
        assert!(
            matches!(&redis[..], [(2, Payload::Bytes(b))] if decode_frames(b).unwrap() == frames)
        );
        assert_eq!(format("amqp://h"), WireFormat::FrameBatch);
        let kombu = format("kombu+redis://h").messages(frames);
        assert_eq!(kombu.len(), 2);
        assert!(!format("kombu+redis://h").carries_agent_stats());
        assert!(matches!(&kombu[0], (1, Payload::Bytes(b)) if b.starts_with(b"{")));
    }
}

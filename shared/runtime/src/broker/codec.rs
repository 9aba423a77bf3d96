//! Message bodies: batches of frames (capture-agent -> processor) and batches of rows
//! (processor -> publisher), as JSON.

use serde::{Deserialize, Serialize};

use netpipe_packet::frame::Frame;

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
}

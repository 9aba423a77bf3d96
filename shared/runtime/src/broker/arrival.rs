//! What a consumed message holds, decoded in the broker layer: a batch of frames, one message in
//! the original's format (JSON object `{"data", "created", "source"}`, as kombu producers send),
//! or a capture-agent's in-band loss report. Anything else is poison, with a dead-letter reason.
//! A `memory://` message carries its frames unserialised and skips the JSON entirely.

use std::sync::Arc;

use netpipe_packet::frame::{FRAME_VERSION, Frame};
use serde_json::Value;

use super::Message;
use super::agent_stats::AgentStats;
use super::codec::decode_frames;

/// Why a message is poison (the `reason` label of the dead-letter metrics).
pub mod reason {
    /// The body is not JSON.
    pub const NOT_JSON: &str = "not_json";
    /// JSON, but not an array of frames (nor an original message object).
    pub const BAD_FRAME: &str = "bad_frame";
    /// A frame with `v` other than this build's FRAME_VERSION.
    pub const WRONG_VERSION: &str = "wrong_version";
    /// A frame that fails validation (empty agent, seq below boot).
    pub const INVALID_FRAME: &str = "invalid_frame";
    /// Larger than the consumer's message size limit.
    pub const OVERSIZED: &str = "oversized";
    /// An original message object that is not `{"data": {...}}`.
    pub const BAD_LEGACY: &str = "bad_legacy_message";
    /// A message marked as an agent's loss report that does not parse.
    pub const BAD_AGENT_STATS: &str = "bad_agent_stats";
}

/// A batch of frames, shared with the in-process channel it came through.
pub type FrameBatch = Arc<Vec<Frame>>;

/// A message's content.
#[derive(Debug)]
pub enum Arrived {
    Frames(FrameBatch),
    /// An original message body; `data` is a JSON object (checked).
    Legacy(LegacyMessage),
    /// A capture-agent's in-band loss report (no packets).
    AgentStats(AgentStats),
}

#[derive(Debug)]
pub struct LegacyMessage {
    pub body: Value,
    /// `source` (the original's SOURCE_HOST), used as the agent of forwarded rows.
    pub source: String,
    /// `created` read as local time, ns since the epoch, when it parses.
    pub created_ns: Option<i64>,
}

impl Arrived {
    pub fn packets(&self) -> u64 {
        match self {
            Arrived::Frames(frames) => frames.len() as u64,
            Arrived::Legacy(_) => 1,
            Arrived::AgentStats(_) => 0,
        }
    }

    /// Decodes and validates a consumed message; `Err` carries the dead-letter reason.
    pub fn decode(message: &Message, max_bytes: usize) -> Result<Arrived, &'static str> {
        match &message.frames {
            Some(frames) => validate(frames).map(|()| Arrived::Frames(frames.clone())),
            None => Arrived::decode_body(&message.body, max_bytes),
        }
    }

    /// Decodes and validates an encoded body; `Err` carries the dead-letter reason.
    pub fn decode_body(body: &[u8], max_bytes: usize) -> Result<Arrived, &'static str> {
        if body.len() > max_bytes {
            return Err(reason::OVERSIZED);
        }
        if let Some(stats) = AgentStats::decode(body) {
            return stats
                .map(Arrived::AgentStats)
                .map_err(|_| reason::BAD_AGENT_STATS);
        }
        // Frame batches are arrays; the original's messages are objects.
        match body.iter().find(|b| !b.is_ascii_whitespace()) {
            Some(b'{') => legacy(body).map(Arrived::Legacy),
            _ => frames(body).map(|f| Arrived::Frames(Arc::new(f))),
        }
    }
}

fn frames(body: &[u8]) -> Result<Vec<Frame>, &'static str> {
    let frames = match decode_frames(body) {
        Ok(frames) => frames,
        Err(_) => return Err(why_not_frames(body)),
    };
    validate(&frames)?;
    Ok(frames)
}

fn validate(frames: &[Frame]) -> Result<(), &'static str> {
    for frame in frames {
        if frame.v != FRAME_VERSION {
            return Err(reason::WRONG_VERSION);
        }
        if frame.agent.is_empty() || frame.seq < frame.boot {
            return Err(reason::INVALID_FRAME);
        }
    }
    Ok(())
}

/// Tells "not JSON" from "JSON frames of another version" from "JSON, but not frames".
fn why_not_frames(body: &[u8]) -> &'static str {
    let Ok(value) = serde_json::from_slice::<Value>(body) else {
        return reason::NOT_JSON;
    };
    let other_version = value.as_array().is_some_and(|items| {
        items.iter().any(|item| {
            item.get("v")
                .and_then(Value::as_u64)
                .is_some_and(|v| v != u64::from(FRAME_VERSION))
        })
    });
    if other_version {
        reason::WRONG_VERSION
    } else {
        reason::BAD_FRAME
    }
}

fn legacy(body: &[u8]) -> Result<LegacyMessage, &'static str> {
    let Ok(value) = serde_json::from_slice::<Value>(body) else {
        return Err(reason::NOT_JSON);
    };
    if !value.get("data").is_some_and(Value::is_object) {
        return Err(reason::BAD_LEGACY);
    }
    let source = value
        .get("source")
        .and_then(Value::as_str)
        .unwrap_or("localdev")
        .to_string();
    let created_ns = value
        .get("created")
        .and_then(Value::as_str)
        .and_then(parse_local_time);
    Ok(LegacyMessage {
        body: value,
        source,
        created_ns,
    })
}

/// The original's `created` (`%Y-%m-%d %H:%M:%S`, local time, no zone).
fn parse_local_time(text: &str) -> Option<i64> {
    use chrono::TimeZone;
    let naive = chrono::NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S").ok()?;
    chrono::Local
        .from_local_datetime(&naive)
        .earliest()?
        .timestamp_nanos_opt()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::broker::codec::encode_frames;

    fn classify(body: &[u8], max: usize) -> Result<Arrived, &'static str> {
        Arrived::decode_body(body, max)
    }

    #[test]
    fn poison_gets_a_reason() {
        assert_eq!(classify(b"not json", 100).unwrap_err(), reason::NOT_JSON);
        assert_eq!(classify(b"[1,2]", 100).unwrap_err(), reason::BAD_FRAME);
        assert_eq!(classify(&[b' '; 200], 100).unwrap_err(), reason::OVERSIZED);
        assert_eq!(classify(b"{\"x\":1}", 100).unwrap_err(), reason::BAD_LEGACY);
        let mut frame = Frame::new("a".into(), 10, 10, 1, 60, 60, 1);
        frame.v = FRAME_VERSION + 1;
        let body = encode_frames(&[frame.clone()]);
        assert_eq!(classify(&body, 1 << 20).unwrap_err(), reason::WRONG_VERSION);
        frame.v = FRAME_VERSION;
        frame.seq = 9;
        let body = encode_frames(&[frame]);
        assert_eq!(classify(&body, 1 << 20).unwrap_err(), reason::INVALID_FRAME);
    }

    #[test]
    fn agent_loss_reports_are_recognised_before_the_original_format() {
        let stats = AgentStats {
            agent: "a".into(),
            boot: 3,
            captured: 9,
            ..AgentStats::default()
        };
        match classify(&stats.encode(), 1 << 20).unwrap() {
            Arrived::AgentStats(got) => assert_eq!(got, stats),
            other => panic!("{other:?}"),
        }
        assert_eq!(
            classify(br#"{"netpipe_agent_stats": []}"#, 1 << 20).unwrap_err(),
            reason::BAD_AGENT_STATS
        );
    }

    #[test]
    fn frames_and_legacy_messages_are_recognised() {
        let frame = Frame::new("a".into(), 10, 11, 1, 60, 60, 1);
        let body = encode_frames(&[frame]);
        assert_eq!(classify(&body, 1 << 20).unwrap().packets(), 1);
        let legacy =
            br#"{"data":{"ether":{"type":2048}},"created":"2018-01-28 22:58:16","source":"h"}"#;
        match classify(legacy, 1 << 20).unwrap() {
            Arrived::Legacy(m) => {
                assert_eq!(m.source, "h");
                assert!(m.created_ns.is_some());
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn unserialised_frames_are_validated_too() {
        let mut frame = Frame::new("a".into(), 10, 11, 1, 60, 60, 1);
        let ok = Message::frames(
            Arc::new(vec![frame.clone()]),
            super::super::AckToken::Memory(0),
        );
        assert_eq!(Arrived::decode(&ok, 10).unwrap().packets(), 1);
        frame.seq = 9;
        let bad = Message::frames(Arc::new(vec![frame]), super::super::AckToken::Memory(1));
        assert_eq!(
            Arrived::decode(&bad, 10).unwrap_err(),
            reason::INVALID_FRAME
        );
    }
}

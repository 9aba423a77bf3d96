//! What a broker message holds: a batch of frames (JSON array) or one message in the original's
//! format (JSON object `{"data", "created", "source"}`, as kombu producers send). Anything else
//! is poison and gets a dead-letter reason. A capture-agent's in-band loss report
//! (`{"netpipe_agent_stats": …}`) is recognised before the original's format.

use netpipe_packet::frame::{FRAME_VERSION, Frame};
use netpipe_runtime::broker::agent_stats::AgentStats;
use netpipe_runtime::broker::codec::decode_frames;
use serde_json::Value;

use crate::metrics::dead_letter_reason as reason;

/// A message's content.
#[derive(Debug)]
pub enum Input {
    Frames(Vec<Frame>),
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

impl Input {
    pub fn packets(&self) -> u64 {
        match self {
            Input::Frames(frames) => frames.len() as u64,
            Input::Legacy(_) => 1,
            Input::AgentStats(_) => 0,
        }
    }
}

/// Decodes and validates a message body; `Err` carries the dead-letter reason.
pub fn classify(body: &[u8], max_bytes: usize) -> Result<Input, &'static str> {
    if body.len() > max_bytes {
        return Err(reason::OVERSIZED);
    }
    if let Some(stats) = AgentStats::decode(body) {
        return stats
            .map(Input::AgentStats)
            .map_err(|_| reason::BAD_AGENT_STATS);
    }
    match body.iter().find(|b| !b.is_ascii_whitespace()) {
        Some(b'{') => legacy(body).map(Input::Legacy),
        _ => frames(body).map(Input::Frames),
    }
}

fn frames(body: &[u8]) -> Result<Vec<Frame>, &'static str> {
    let frames = match decode_frames(body) {
        Ok(frames) => frames,
        Err(_) => return Err(why_not_frames(body)),
    };
    for frame in &frames {
        if frame.v != FRAME_VERSION {
            return Err(reason::WRONG_VERSION);
        }
        if frame.agent.is_empty() || frame.seq < frame.boot {
            return Err(reason::INVALID_FRAME);
        }
    }
    Ok(frames)
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
    use netpipe_runtime::broker::codec::encode_frames;

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
            Input::AgentStats(got) => assert_eq!(got, stats),
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
            Input::Legacy(m) => {
                assert_eq!(m.source, "h");
                assert!(m.created_ns.is_some());
            }
            other => panic!("{other:?}"),
        }
    }
}

//! The capture-agent's loss counters, sent in-band on the packet stream: one message per
//! `--stats-message-secs` and one at the end of a run, so the processor's manifest states the loss
//! per agent run and reason (kernel, buffer, backlog, trimmed entries), not only `missing_seq`.
//!
//! Body: `{"netpipe_agent_stats": {"agent", "boot", "captured", "dropped": {reason: n},
//! "trimmed_unread_messages"}}`. Counters are cumulative for the `(agent, boot)` run, so the
//! latest report wins and a lost or repeated one does no harm.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The JSON key that marks the message.
pub const AGENT_STATS_KEY: &str = "netpipe_agent_stats";

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentStats {
    pub agent: String,
    pub boot: u64,
    /// Packets this run read from its interface or file.
    pub captured: u64,
    /// Packets lost at the agent, by reason (zero reasons left out).
    #[serde(default)]
    pub dropped: BTreeMap<String, u64>,
    /// Stream entries an opt-in `--max-len` cap deleted before the processor read them.
    #[serde(default)]
    pub trimmed_unread_messages: u64,
}

#[derive(Serialize, Deserialize)]
struct Envelope {
    netpipe_agent_stats: AgentStats,
}

impl AgentStats {
    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(&Envelope {
            netpipe_agent_stats: self.clone(),
        })
        .unwrap_or_default()
    }

    /// `None` when the body is not a stats message; `Some(Err)` when it claims to be one but
    /// does not parse.
    pub fn decode(body: &[u8]) -> Option<Result<AgentStats, serde_json::Error>> {
        let head = body.iter().position(|b| !b.is_ascii_whitespace())?;
        if body.get(head) != Some(&b'{') {
            return None;
        }
        let marker = format!("\"{AGENT_STATS_KEY}\"");
        if !body
            .windows(marker.len())
            .take(64)
            .any(|w| w == marker.as_bytes())
        {
            return None;
        }
        Some(serde_json::from_slice::<Envelope>(body).map(|e| e.netpipe_agent_stats))
    }

    /// Total packets lost at the agent.
    pub fn dropped_total(&self) -> u64 {
        self.dropped.values().sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stats_round_trip_and_are_told_from_other_messages() {
        let stats = AgentStats {
            agent: "a1".into(),
            boot: 7,
            captured: 100,
            dropped: BTreeMap::from([("kernel".to_string(), 3)]),
            trimmed_unread_messages: 2,
        };
        let body = stats.encode();
        assert_eq!(AgentStats::decode(&body).unwrap().unwrap(), stats);
        assert!(AgentStats::decode(br#"[{"v":1}]"#).is_none());
        assert!(AgentStats::decode(br#"{"data":{},"created":"x"}"#).is_none());
        assert!(
            AgentStats::decode(br#"{"netpipe_agent_stats": {"agent": 5}}"#)
                .unwrap()
                .is_err()
        );
        assert_eq!(stats.dropped_total(), 3);
    }
}

//! Flow records on the broker: a capture-agent with `--flows` publishes its finished flows as
//! their own message kind, on their own stream/queue (`{stream}-flows` by default), in batches.
//!
//! Body: `{"netpipe_flows": {"agent", "boot", "schema_version", "rows": [{"id", "first_seen_ms",
//! "csv"}]}}`. `csv` is the record's CSV line exactly as `netpipe flows` writes it, so the
//! processor's flow dataset equals `netpipe flows` on the same capture. Flow ids count up from 0
//! per (agent, boot) in emission order; the processor deduplicates by (agent, boot, id), and a
//! lost batch shows as a gap in the manifest's `missing_seq`.

use serde::{Deserialize, Serialize};

/// The JSON key that marks the message.
pub const FLOW_BATCH_KEY: &str = "netpipe_flows";
/// Version of the flow columns (`netpipe_packet::flow::column_names`) the rows are written with.
pub const FLOW_SCHEMA_VERSION: u32 = 1;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FlowRow {
    pub id: u64,
    pub first_seen_ms: i64,
    pub csv: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FlowBatch {
    pub agent: String,
    pub boot: u64,
    pub schema_version: u32,
    pub rows: Vec<FlowRow>,
}

#[derive(Serialize, Deserialize)]
struct Envelope {
    netpipe_flows: FlowBatch,
}

/// Why a body is not a usable flow batch.
#[derive(Debug, thiserror::Error)]
pub enum FlowBatchError {
    #[error("not a flow batch: {0}")]
    NotJson(#[from] serde_json::Error),
    #[error("flow batch of schema version {0}, this build writes {FLOW_SCHEMA_VERSION}")]
    WrongVersion(u32),
    #[error("flow batch without an agent")]
    NoAgent,
}

impl FlowBatch {
    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(&Envelope {
            netpipe_flows: self.clone(),
        })
        .unwrap_or_default()
    }

    pub fn decode(body: &[u8]) -> Result<FlowBatch, FlowBatchError> {
        let batch = serde_json::from_slice::<Envelope>(body)?.netpipe_flows;
        if batch.schema_version != FLOW_SCHEMA_VERSION {
            return Err(FlowBatchError::WrongVersion(batch.schema_version));
        }
        if batch.agent.is_empty() {
            return Err(FlowBatchError::NoAgent);
        }
        Ok(batch)
    }
}

/// Name of the flow dataset's column schema in manifests.
pub const FLOW_SCHEMA: &str = "netpipe-flows";

/// The flow dataset's columns (those of `netpipe flows`), for a `DatasetWriter`.
pub fn flow_dataset_schema() -> crate::dataset::SchemaInfo {
    let names = netpipe_packet::flow::column_names();
    let columns: Vec<&str> = names.iter().map(String::as_str).collect();
    crate::dataset::SchemaInfo::from_columns(FLOW_SCHEMA, FLOW_SCHEMA_VERSION, &columns)
}

/// Whether a broker URL can carry flow records on a stream/queue of their own: Redis Streams
/// and AMQP can; a `memory://` channel is named by its URL (flows would mix with frames) and
/// `kombu+redis://` consumers know only the original's messages.
pub fn carries_flows(url: &str) -> bool {
    let url = url.trim_start().to_ascii_lowercase();
    ["redis://", "rediss://", "amqp://", "amqps://"]
        .iter()
        .any(|scheme| url.starts_with(scheme))
}

/// The flow stream/queue name that goes with a frame stream name.
pub fn flow_stream_name(frame_stream: &str) -> String {
    format!("{frame_stream}-flows")
}

/// The broker settings of the flow stream/queue: the frames' settings (`frames`) on
/// `flow_stream` when one is named, else on the frame stream's name + `-flows`.
pub fn flow_broker(
    mut frames: super::BrokerConfig,
    flow_stream: Option<&str>,
) -> super::BrokerConfig {
    let name = match flow_stream.map(str::trim) {
        Some(name) if !name.is_empty() => name.to_string(),
        _ => flow_stream_name(&frames.stream),
    };
    frames.stream = name.clone();
    frames.routing_key = name;
    frames
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_round_trip_and_bad_ones_are_refused() {
        let batch = FlowBatch {
            agent: "a".into(),
            boot: 5,
            schema_version: FLOW_SCHEMA_VERSION,
            rows: vec![FlowRow {
                id: 0,
                first_seen_ms: 1,
                csv: "1,\"x,y\"".into(),
            }],
        };
        assert_eq!(FlowBatch::decode(&batch.encode()).unwrap(), batch);
        assert!(FlowBatch::decode(b"[1]").is_err());
        let mut old = batch.clone();
        old.schema_version = 0;
        assert!(matches!(
            FlowBatch::decode(&old.encode()),
            Err(FlowBatchError::WrongVersion(0))
        ));
        let mut nobody = batch;
        nobody.agent.clear();
        assert!(matches!(
            FlowBatch::decode(&nobody.encode()),
            Err(FlowBatchError::NoAgent)
        ));
        assert_eq!(flow_stream_name("packets"), "packets-flows");
        assert!(carries_flows("redis://127.0.0.1:6379"));
        assert!(carries_flows("AMQP://guest:guest@127.0.0.1:5672/%2f"));
        assert!(!carries_flows("memory://x"));
        assert!(!carries_flows("kombu+redis://127.0.0.1:6379/15"));
    }
}

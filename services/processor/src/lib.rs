//! processor: frames from a broker -> validated, deduplicated rows -> durable CSV datasets.
//!
//! One loop: receive a few messages, turn each into rows of every configured schema (poison goes
//! to the dead-letter stream with its reason), and every `SAVE_AFTER_NUM` packets (or every
//! commit interval while something is buffered) commit the datasets (append + fsync + manifest)
//! and only then acknowledge the messages. A crash at any point therefore loses nothing that was
//! acknowledged, and the redeliveries it causes are dropped by `(agent, seq)`.
//! See docs/processor.md.

pub mod config;
pub mod datasets;
pub mod flows;
pub mod metrics;
mod receiver;
pub mod service;

use std::path::PathBuf;

pub use config::Config;
use netpipe_runtime::broker::BrokerError;
use netpipe_runtime::dataset::DatasetError;
pub use receiver::DEAD_LETTER_MAX_BODY;
pub use service::run;

/// What a run did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    /// Broker messages received (redeliveries included).
    pub messages: u64,
    /// Packets in valid messages.
    pub packets: u64,
    /// Rows made durable, per schema (in --schema order).
    pub rows_written: Vec<(String, u64)>,
    /// Packets dropped as already written (summed over schemas).
    pub duplicates: u64,
    pub dead_letters: u64,
    /// Delivered, unacknowledged messages the broker had deleted before they were processed.
    pub broker_lost_pending: u64,
    pub commits: u64,
    /// The files written last (one per schema).
    pub files: Vec<PathBuf>,
    /// --flows: what the flow side wrote.
    pub flows: Option<flows::FlowSummary>,
}

/// The end-of-run line.
impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let rows: Vec<String> = self
            .rows_written
            .iter()
            .map(|(schema, n)| format!("{n} {schema} rows"))
            .collect();
        let files: Vec<String> = self.files.iter().map(|f| f.display().to_string()).collect();
        write!(
            f,
            "{} messages, {} packets -> {} in {} commits; {} duplicates dropped, {} dead-lettered; files: {}",
            self.messages,
            self.packets,
            if rows.is_empty() {
                "no rows".to_string()
            } else {
                rows.join(", ")
            },
            self.commits,
            self.duplicates,
            self.dead_letters,
            if files.is_empty() {
                "none".to_string()
            } else {
                files.join(" ")
            },
        )?;
        if let Some(flows) = &self.flows {
            write!(
                f,
                "; flows: {} written, {} duplicates dropped, {} dead-lettered",
                flows.flows_written, flows.duplicates, flows.dead_letters
            )?;
            if let Some(file) = &flows.file {
                write!(f, " in {}", file.display())?;
            }
        }
        Ok(())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ProcessorError {
    #[error("processor: {0}")]
    Config(String),
    #[error("processor: {0}")]
    Broker(#[from] BrokerError),
    #[error("processor: {0}")]
    Dataset(#[from] DatasetError),
    #[error("processor: {0}")]
    Ops(#[from] netpipe_runtime::ops::OpsError),
    #[error("processor: {0}")]
    Metrics(#[from] netpipe_runtime::ops::MetricsError),
    #[error("processor: internal error: {0}")]
    Internal(String),
}

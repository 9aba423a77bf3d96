//! Dataset files: append-only CSV snapshots, fsync before ack, manifests, crash repair.
//!
//! A [`DatasetWriter`] owns one chain of CSV files for one column schema. Rows arrive already
//! formatted, with their identity `(agent, boot, seq, ts_ns)`; [`DatasetWriter::append_with`]
//! drops redeliveries by `(agent, seq)` and buffers the rest; [`DatasetWriter::commit`] appends
//! the buffer, fsyncs, then replaces the manifest atomically. Only after `commit` returns may the
//! caller acknowledge the broker messages the rows came from. Work per commit is proportional to
//! the new rows; old rows are never rewritten. See docs/processor.md for the file layout, the
//! manifest fields and the exact dedup guarantee.

pub mod dedup;
pub mod manifest;
pub mod naming;
pub mod repair;
mod write_ahead;
mod writer;

use std::path::PathBuf;
use std::time::Duration;

pub use dedup::{DedupLimits, DedupState, Seen};
pub use manifest::{Manifest, RepairFigures};
pub use writer::{AppendOutcome, CommitReport, DatasetWriter, OpenReport, RowId, WriterTotals};

/// Where and how a writer writes.
#[derive(Debug, Clone)]
pub struct DatasetConfig {
    /// Output directory (`DS_DIR`); created when missing.
    pub dir: PathBuf,
    /// Dataset name (`DS_NAME`), the first part of every file name.
    pub name: String,
    /// Distinguishes processors that write into one directory (`-{instance}` in file names).
    pub instance: Option<String>,
    /// Fixed path of the first file (`OUTPUT_CSV`); later files get `-2`, `-3`, ...
    pub output_csv: Option<PathBuf>,
    pub rotate: RotatePolicy,
    pub dedup: DedupLimits,
    /// Agent runs listed per file in the manifest; more are folded into one counter.
    pub max_agent_spans: usize,
}

impl DatasetConfig {
    pub fn new(dir: impl Into<PathBuf>, name: impl Into<String>) -> Self {
        DatasetConfig {
            dir: dir.into(),
            name: name.into(),
            instance: None,
            output_csv: None,
            rotate: RotatePolicy::default(),
            dedup: DedupLimits::default(),
            max_agent_spans: 1024,
        }
    }

    /// The directory files are written to: that of `OUTPUT_CSV` when set, else `dir`.
    pub fn output_dir(&self) -> PathBuf {
        match &self.output_csv {
            Some(path) => match path.parent() {
                Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
                _ => PathBuf::from("."),
            },
            None => self.dir.clone(),
        }
    }
}

/// When to close the current file and start a new one (checked after each commit; `None` =
/// never for that criterion).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RotatePolicy {
    pub rows: Option<u64>,
    pub bytes: Option<u64>,
    pub age: Option<Duration>,
}

/// The column schema of a dataset: name, version, column names and the exact header line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchemaInfo {
    pub name: String,
    pub version: u32,
    pub columns: Vec<String>,
    /// Header line including its trailing `\n`.
    pub header: Vec<u8>,
}

impl SchemaInfo {
    /// A schema whose header is the column names joined by commas (names must not need quoting).
    pub fn from_columns(name: &str, version: u32, columns: &[&str]) -> Self {
        let mut header = columns.join(",").into_bytes();
        header.push(b'\n');
        SchemaInfo {
            name: name.to_string(),
            version,
            columns: columns.iter().map(|c| c.to_string()).collect(),
            header,
        }
    }
}

impl From<&netpipe_packet::schema::ColumnSchema> for SchemaInfo {
    /// Name, version, columns and the exact header line of a column schema.
    fn from(schema: &netpipe_packet::schema::ColumnSchema) -> Self {
        let mut header = Vec::new();
        schema.write_header(&mut header);
        SchemaInfo {
            name: schema.name.to_string(),
            version: schema.version,
            columns: schema
                .column_names()
                .iter()
                .map(|c| c.to_string())
                .collect(),
            header,
        }
    }
}

/// Dataset failures. Nothing is committed when one is returned.
#[derive(Debug, thiserror::Error)]
pub enum DatasetError {
    #[error("dataset: cannot {op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("dataset: manifest {path} is not usable: {reason}")]
    BadManifest { path: PathBuf, reason: String },
    #[error("dataset: invalid configuration: {0}")]
    Config(String),
    /// A failed commit could not be rolled back; the writer must be reopened (start-up repair
    /// cuts the uncommitted tail).
    #[error("dataset: writer for {path} is unusable after a failed rollback; restart to repair")]
    Poisoned { path: PathBuf },
}

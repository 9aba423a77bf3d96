//! One dataset writer per configured column schema, fed the same packets.

use netpipe_packet::frame::Frame;
use netpipe_packet::schema::{CellOut, ColumnSchema, RowContext, legacy};
use netpipe_runtime::broker::codec::{RowBatch, RowRecord};
use netpipe_runtime::dataset::{
    AppendOutcome, CommitReport, DatasetError, DatasetWriter, OpenReport, RowId, SchemaInfo,
};

use crate::config::Config;
use netpipe_runtime::broker::arrival::LegacyMessage;

/// The `antinex-v1` schema name (the one original-format messages can become).
pub const ANTINEX_V1: &str = "antinex-v1";

struct SchemaWriter {
    schema: &'static ColumnSchema,
    writer: DatasetWriter,
}

/// What appending one packet did, summed over writers.
#[derive(Debug, Default, Clone, Copy)]
pub struct AppendCounts {
    pub duplicates: u64,
    pub below_window: u64,
    /// Writers that could not represent an original-format message.
    pub legacy_skipped: u64,
}

/// The writers, plus the rows of the first schema waiting to be forwarded after commit.
pub struct Datasets {
    writers: Vec<SchemaWriter>,
    /// Rows of the first schema appended since the last commit (only with --rows-stream).
    forward: Option<Vec<RowRecord>>,
}

/// Looks a schema up by name, with a clear error listing the known ones.
pub fn schema_by_name(name: &str) -> Result<&'static ColumnSchema, String> {
    netpipe_packet::schema::by_name(name).ok_or_else(|| {
        let known: Vec<&str> = netpipe_packet::schema::SCHEMAS
            .iter()
            .map(|s| s.name)
            .collect();
        format!("unknown --schema {name:?} (known: {})", known.join(", "))
    })
}

impl Datasets {
    /// Opens (repairing earlier files) one writer per schema of `config`.
    pub fn open(
        config: &Config,
        schemas: &[&'static ColumnSchema],
    ) -> Result<(Datasets, Vec<OpenReport>), DatasetError> {
        let mut writers = Vec::with_capacity(schemas.len());
        let mut reports = Vec::with_capacity(schemas.len());
        for schema in schemas {
            let (writer, report) =
                DatasetWriter::open(config.dataset(schema.name), SchemaInfo::from(*schema))?;
            writers.push(SchemaWriter { schema, writer });
            reports.push(report);
        }
        Ok((
            Datasets {
                writers,
                forward: config.rows_stream.as_ref().map(|_| Vec::new()),
            },
            reports,
        ))
    }

    pub fn has_antinex(&self) -> bool {
        self.writers.iter().any(|w| w.schema.name == ANTINEX_V1)
    }

    /// Appends one frame to every writer (each drops it if it already holds `(agent, seq)`).
    pub fn append_frame(&mut self, frame: &Frame, counts: &mut AppendCounts) {
        let id = RowId {
            agent: &frame.agent,
            boot: frame.boot,
            seq: frame.seq,
            ts_ns: frame.ts_ns,
        };
        for (i, w) in self.writers.iter_mut().enumerate() {
            let schema = w.schema;
            let mut row_idx = None;
            let outcome = w.writer.append_with(id, |idx, buf| {
                row_idx = Some(idx);
                schema.write_row(frame, &RowContext { idx }, buf);
            });
            match outcome {
                AppendOutcome::Buffered => {}
                AppendOutcome::Duplicate => counts.duplicates += 1,
                AppendOutcome::BelowWindow => counts.below_window += 1,
            }
            if let (0, Some(forward), Some(idx)) = (i, self.forward.as_mut(), row_idx) {
                forward.push(RowRecord {
                    agent: frame.agent.to_string(),
                    seq: frame.seq,
                    cells: schema.row_cells(frame, &RowContext { idx }),
                });
            }
        }
    }

    /// Appends an original-format message to the antinex-v1 writer; other schemas skip it.
    pub fn append_legacy(&mut self, message: &LegacyMessage, counts: &mut AppendCounts) {
        let Some(data) = message.body.get("data").and_then(|d| d.as_object()) else {
            return;
        };
        for (i, w) in self.writers.iter_mut().enumerate() {
            if w.schema.name != ANTINEX_V1 {
                counts.legacy_skipped += 1;
                continue;
            }
            let mut forwarded = None;
            let want_cells = i == 0 && self.forward.is_some();
            w.writer.append_untracked(message.created_ns, |idx, buf| {
                let cells = legacy::antinex_cells_from_data(data, &RowContext { idx });
                write_cells(&cells, buf);
                if want_cells {
                    forwarded = Some((idx, cells));
                }
            });
            if let (Some(forward), Some((idx, cells))) = (self.forward.as_mut(), forwarded) {
                // No sequence number in the original format: the row's index stands in.
                forward.push(RowRecord {
                    agent: message.source.clone(),
                    seq: idx,
                    cells,
                });
            }
        }
    }

    /// Counts a dead-lettered message in every writer's current manifest.
    pub fn note_dead_letter(&mut self, reason: &str) {
        for w in &mut self.writers {
            w.writer.note_dead_letter(reason);
        }
    }

    /// Keeps an agent's loss report in every writer's current manifest.
    pub fn note_agent_stats(&mut self, stats: &netpipe_runtime::broker::agent_stats::AgentStats) {
        for w in &mut self.writers {
            w.writer.note_agent_stats(stats);
        }
    }

    /// Counts broker messages lost before they were read in every writer's current manifest.
    pub fn note_broker_loss(&mut self, reason: &str, messages: u64) {
        for w in &mut self.writers {
            w.writer.note_broker_loss(reason, messages);
        }
    }

    pub fn pending_rows(&self) -> u64 {
        self.writers
            .iter()
            .map(|w| w.writer.pending_rows())
            .max()
            .unwrap_or(0)
    }

    /// Commits every writer; stops at the first failure (earlier writers stay committed, and
    /// their dedup windows drop the redelivered rows later).
    pub fn commit(&mut self) -> Result<Vec<(&'static str, CommitReport)>, DatasetError> {
        self.commit_each(DatasetWriter::commit)
    }

    /// `commit` before exit: each file's manifest is marked closed by the same write.
    pub fn commit_closing(&mut self) -> Result<Vec<(&'static str, CommitReport)>, DatasetError> {
        self.commit_each(DatasetWriter::commit_closing)
    }

    fn commit_each(
        &mut self,
        commit: impl Fn(&mut DatasetWriter) -> Result<CommitReport, DatasetError>,
    ) -> Result<Vec<(&'static str, CommitReport)>, DatasetError> {
        let mut reports = Vec::with_capacity(self.writers.len());
        for w in &mut self.writers {
            reports.push((w.schema.name, commit(&mut w.writer)?));
        }
        Ok(reports)
    }

    /// The rows committed since the last call, as batches for the rows stream.
    pub fn take_forward(&mut self, max_rows: usize) -> Vec<RowBatch> {
        let (Some(forward), Some(first)) = (self.forward.as_mut(), self.writers.first()) else {
            return Vec::new();
        };
        let rows = std::mem::take(forward);
        let columns: Vec<String> = first
            .schema
            .column_names()
            .iter()
            .map(|c| c.to_string())
            .collect();
        let mut batches = Vec::new();
        let mut rows = rows.into_iter().peekable();
        while rows.peek().is_some() {
            batches.push(RowBatch {
                schema: first.schema.name.to_string(),
                columns: columns.clone(),
                rows: rows.by_ref().take(max_rows.max(1)).collect(),
            });
        }
        batches
    }

    pub fn missing_seq(&self) -> u64 {
        self.writers.first().map_or(0, |w| w.writer.missing_seq())
    }

    pub fn paths(&self) -> Vec<std::path::PathBuf> {
        self.writers
            .iter()
            .map(|w| w.writer.path().to_path_buf())
            .collect()
    }

    /// Commits and marks every file closed.
    pub fn close(self) -> Result<(), DatasetError> {
        for w in self.writers {
            w.writer.close()?;
        }
        Ok(())
    }
}

/// Writes unquoted cells as one CSV line (quoting where needed).
fn write_cells(cells: &[String], buf: &mut Vec<u8>) {
    for (i, cell) in cells.iter().enumerate() {
        if i > 0 {
            buf.push(b',');
        }
        CellOut::csv(buf).text(cell);
    }
    buf.push(b'\n');
}

//! The snapshot writer: buffer rows, append + fsync + manifest on commit, rotate, repair.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::dedup::{DedupState, Seen};
use super::manifest::{
    AgentSpan, LossFigures, MANIFEST_FORMAT, MANIFEST_VERSION, Manifest, RepairFigures, SchemaRef,
    sync_dir,
};
use super::write_ahead::{CHUNK_BYTES, WriteAhead};
use super::{DatasetConfig, DatasetError, SchemaInfo, naming, repair};

/// Room for the row that fills a chunk, so it rarely reallocates.
const CHUNK_SLACK: usize = 16 * 1024;

/// Identity of one row: who captured the packet, which run, its number and capture time.
#[derive(Debug, Clone, Copy)]
pub struct RowId<'a> {
    pub agent: &'a str,
    pub boot: u64,
    pub seq: u64,
    pub ts_ns: i64,
}

/// What `append` did with a row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppendOutcome {
    Buffered,
    /// Already in the dataset (redelivery); dropped and counted.
    Duplicate,
    /// Below the agent's dedup floor; dropped and counted.
    BelowWindow,
}

/// What start-up found and repaired.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OpenReport {
    /// The new file this writer appends to.
    pub path: PathBuf,
    /// Torn last lines cut from earlier files.
    pub torn_lines_truncated: u64,
    /// Complete but uncommitted rows cut from earlier files.
    pub uncommitted_rows_truncated: u64,
    /// Earlier files found open (their writer stopped without closing) and closed now.
    pub files_closed: u64,
    /// Agents whose dedup window was recovered from the latest manifest.
    pub recovered_agents: usize,
}

/// Result of a successful commit.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CommitReport {
    /// Rows made durable by this commit.
    pub rows: u64,
    pub bytes: u64,
    /// Time spent in the data fsync (the manifest's is not included).
    pub fsync: Duration,
    /// Set when the commit closed the file and started this new one.
    pub rotated_to: Option<PathBuf>,
}

/// Lifetime counters of a writer (for metrics).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WriterTotals {
    pub rows: u64,
    pub commits: u64,
    pub files: u64,
    pub duplicates: u64,
    pub below_window: u64,
}

#[derive(Debug, Clone, Copy)]
struct SpanAcc {
    rows: u64,
    first_seq: u64,
    last_seq: u64,
}

/// Per-file figures, reset on rotation.
#[derive(Debug, Default)]
struct FileStats {
    /// Agent -> (boot, rows of that run in this file).
    spans: HashMap<Arc<str>, Vec<(u64, SpanAcc)>>,
    span_count: usize,
    spans_overflow_rows: u64,
    untracked_rows: u64,
    first_ts_ns: Option<i64>,
    last_ts_ns: Option<i64>,
    loss: LossFigures,
    repaired: RepairFigures,
}

impl FileStats {
    /// Widens the file's capture-time span to include `ts_ns`.
    fn note_capture_time(&mut self, ts_ns: i64) {
        self.first_ts_ns = Some(self.first_ts_ns.map_or(ts_ns, |t| t.min(ts_ns)));
        self.last_ts_ns = Some(self.last_ts_ns.map_or(ts_ns, |t| t.max(ts_ns)));
    }
}

/// Appends rows of one schema to a chain of CSV files. See the module docs of `dataset`.
#[derive(Debug)]
pub struct DatasetWriter {
    config: DatasetConfig,
    schema: SchemaInfo,
    dedup: DedupState,
    file: Arc<File>,
    path: PathBuf,
    file_index: u64,
    created: String,
    opened: Instant,
    committed_bytes: u64,
    committed_rows: u64,
    commits_in_file: u64,
    /// Rows since the last commit: full chunks (`sealed`, the first `handed` of them given to
    /// `write_ahead`) and the chunk being filled (`pending`). All stay here until the commit
    /// succeeds, so a failed commit can write them again.
    sealed: Vec<Arc<Vec<u8>>>,
    sealed_bytes: u64,
    handed: usize,
    pending: Vec<u8>,
    pending_rows: u64,
    write_ahead: Option<WriteAhead>,
    /// Something changed since the last manifest write (rows, drops, dead letters).
    dirty: bool,
    stats: FileStats,
    totals: WriterTotals,
    poisoned: bool,
    /// The latest manifest write marked the file closed (`commit_closing`).
    closed: bool,
}

impl DatasetWriter {
    /// Repairs and closes this writer's earlier files, recovers the dedup window from the latest
    /// manifest, and starts a new file (header written and fsynced, manifest with 0 rows).
    pub fn open(
        config: DatasetConfig,
        schema: SchemaInfo,
    ) -> Result<(Self, OpenReport), DatasetError> {
        if let Some(id) = &config.instance
            && !naming::valid_instance(id)
        {
            return Err(DatasetError::Config(format!(
                "instance id {id:?} must be 1-64 characters of A-Z a-z 0-9 - _ ."
            )));
        }
        if schema.header.last() != Some(&b'\n') {
            return Err(DatasetError::Config(
                "the schema header must end with a newline".into(),
            ));
        }
        let dir = config.output_dir();
        std::fs::create_dir_all(&dir).map_err(|source| DatasetError::Io {
            op: "create dataset directory",
            path: dir.clone(),
            source,
        })?;

        let mut report = OpenReport::default();
        let mut latest: Option<Manifest> = None;
        for (manifest_path, mut manifest) in Manifest::scan(&dir)? {
            if manifest.dataset != config.name
                || manifest.instance != config.instance
                || manifest.schema.name != schema.name
            {
                continue;
            }
            if !manifest.closed {
                close_stale(&dir, &manifest_path, &mut manifest, &mut report)?;
            }
            if latest
                .as_ref()
                .is_none_or(|l| manifest.file_index > l.file_index)
            {
                latest = Some(manifest);
            }
        }
        let dedup = match &latest {
            Some(m) => DedupState::restore(config.dedup, &m.dedup),
            None => DedupState::new(config.dedup),
        };
        report.recovered_agents = dedup.agent_count();
        let file_index = latest.map_or(0, |m| m.file_index + 1);

        let (file, path) = create_file(&config, &schema.header)?;
        let header_len = schema.header.len() as u64;
        let writer = DatasetWriter {
            config,
            schema,
            dedup,
            file: Arc::new(file),
            path,
            file_index,
            created: now_rfc3339(),
            opened: Instant::now(),
            committed_bytes: header_len,
            committed_rows: 0,
            commits_in_file: 0,
            sealed: Vec::new(),
            sealed_bytes: 0,
            handed: 0,
            pending: Vec::with_capacity(CHUNK_BYTES + CHUNK_SLACK),
            pending_rows: 0,
            write_ahead: WriteAhead::start(),
            dirty: false,
            stats: FileStats::default(),
            totals: WriterTotals {
                files: 1,
                ..Default::default()
            },
            poisoned: false,
            closed: false,
        };
        writer.store_manifest(false)?;
        report.path = writer.path.clone();
        if report.torn_lines_truncated > 0 || report.uncommitted_rows_truncated > 0 {
            tracing::warn!(
                message = "Repaired dataset files left by a crash.",
                torn_lines = report.torn_lines_truncated,
                uncommitted_rows = report.uncommitted_rows_truncated,
                files = report.files_closed,
            );
        }
        Ok((writer, report))
    }

    /// Buffers one row unless `(agent, seq)` is already in the dataset. `write` gets the row's
    /// 0-based index within the current file and appends exactly one CSV line (with `\n`).
    pub fn append_with(
        &mut self,
        id: RowId<'_>,
        write: impl FnOnce(u64, &mut Vec<u8>),
    ) -> AppendOutcome {
        match self.dedup.check_and_insert(id.agent, id.boot, id.seq) {
            Seen::Duplicate => {
                self.stats.loss.duplicates_dropped += 1;
                self.totals.duplicates += 1;
                self.dirty = true;
                return AppendOutcome::Duplicate;
            }
            Seen::BelowWindow => {
                self.stats.loss.below_window_dropped += 1;
                self.totals.below_window += 1;
                self.dirty = true;
                return AppendOutcome::BelowWindow;
            }
            Seen::New => {}
        }
        self.buffer_row(write);
        self.count_span(id);
        AppendOutcome::Buffered
    }

    /// Appends one row to the pending buffer as exactly one complete line.
    fn buffer_row(&mut self, write: impl FnOnce(u64, &mut Vec<u8>)) {
        let idx = self.committed_rows + self.pending_rows;
        let before = self.pending.len();
        write(idx, &mut self.pending);
        // Every file must hold complete lines only.
        if self.pending.len() == before || self.pending.last() != Some(&b'\n') {
            self.pending.push(b'\n');
        }
        self.pending_rows += 1;
        self.dirty = true;
        if self.pending.len() >= CHUNK_BYTES {
            self.seal_chunk();
        }
    }

    /// Moves the filled chunk to `sealed` and offers it for writing ahead; chunks are handed
    /// over in order, so one the queue refused leaves all later ones to the commit.
    fn seal_chunk(&mut self) {
        let fresh = Vec::with_capacity(CHUNK_BYTES + CHUNK_SLACK);
        let chunk = Arc::new(std::mem::replace(&mut self.pending, fresh));
        let at = self.committed_bytes + self.sealed_bytes;
        if self.handed == self.sealed.len()
            && let Some(write_ahead) = &self.write_ahead
            && write_ahead.offer(&self.file, at, &chunk)
        {
            self.handed += 1;
        }
        self.sealed_bytes += chunk.len() as u64;
        self.sealed.push(chunk);
    }

    /// Bytes of the rows since the last commit.
    fn uncommitted_bytes(&self) -> u64 {
        self.sealed_bytes + self.pending.len() as u64
    }

    /// Buffers one row that has no `(agent, seq)` identity (the original's message format):
    /// no dedup, so such rows are written at least once. `ts_ns` feeds the capture-time span.
    pub fn append_untracked(&mut self, ts_ns: Option<i64>, write: impl FnOnce(u64, &mut Vec<u8>)) {
        self.buffer_row(write);
        if let Some(ts) = ts_ns {
            self.stats.note_capture_time(ts);
        }
        self.stats.untracked_rows += 1;
    }

    /// Buffers one already formatted line (a `\n` is added when missing).
    pub fn append_line(&mut self, id: RowId<'_>, line: &[u8]) -> AppendOutcome {
        self.append_with(id, |_, buf| buf.extend_from_slice(line))
    }

    /// Counts a dead-lettered broker message in the current file's loss figures.
    pub fn note_dead_letter(&mut self, reason: &str) {
        *self
            .stats
            .loss
            .dead_lettered
            .entry(reason.to_string())
            .or_default() += 1;
        self.dirty = true;
    }

    /// Keeps the latest loss report of an agent run (cumulative counters: the one that has seen
    /// more packets wins) in the current file's loss figures.
    pub fn note_agent_stats(&mut self, stats: &crate::broker::agent_stats::AgentStats) {
        /// Agent runs listed per file at most; more are rare and the oldest are kept.
        const MAX_REPORTS: usize = 1024;
        let reports = &mut self.stats.loss.agent_reports;
        let known = reports
            .iter()
            .position(|r| r.agent == stats.agent && r.boot == stats.boot);
        match known {
            Some(i) => {
                if let Some(known) = reports.get_mut(i)
                    && stats.captured >= known.captured
                {
                    *known = stats.clone();
                }
            }
            None if reports.len() < MAX_REPORTS => reports.push(stats.clone()),
            None => return,
        }
        self.dirty = true;
    }

    /// Counts broker messages lost before they could be read, in the current file's loss figures.
    pub fn note_broker_loss(&mut self, reason: &str, messages: u64) {
        if messages == 0 {
            return;
        }
        *self
            .stats
            .loss
            .broker_lost_messages
            .entry(reason.to_string())
            .or_default() += messages;
        self.dirty = true;
    }

    fn count_span(&mut self, id: RowId<'_>) {
        let stats = &mut self.stats;
        stats.note_capture_time(id.ts_ns);
        let limit = self.config.max_agent_spans.max(1);
        let span_count = &mut stats.span_count;
        let boots = match stats.spans.get_mut(id.agent) {
            Some(boots) => boots,
            None => {
                if *span_count >= limit {
                    stats.spans_overflow_rows += 1;
                    return;
                }
                stats.spans.entry(Arc::from(id.agent)).or_default()
            }
        };
        match boots.iter_mut().find(|(boot, _)| *boot == id.boot) {
            Some((_, span)) => {
                span.rows += 1;
                span.first_seq = span.first_seq.min(id.seq);
                span.last_seq = span.last_seq.max(id.seq);
            }
            None if *span_count >= limit => stats.spans_overflow_rows += 1,
            None => {
                *span_count += 1;
                boots.push((
                    id.boot,
                    SpanAcc {
                        rows: 1,
                        first_seq: id.seq,
                        last_seq: id.seq,
                    },
                ));
            }
        }
    }

    /// Rows buffered since the last commit.
    pub fn pending_rows(&self) -> u64 {
        self.pending_rows
    }

    /// Appends the buffered rows, fsyncs the file, then replaces the manifest. On error nothing
    /// is committed: the file is cut back to its committed length and the rows stay buffered,
    /// so a later `commit` may retry. Rotates afterwards when the policy says so.
    pub fn commit(&mut self) -> Result<CommitReport, DatasetError> {
        if self.poisoned {
            return Err(DatasetError::Poisoned {
                path: self.path.clone(),
            });
        }
        let mut report = CommitReport::default();
        if self.dirty || self.pending_rows > 0 {
            report = self.write_pending(false)?;
        }
        if self.committed_rows > 0 && self.should_rotate() {
            report.rotated_to = Some(self.rotate()?);
        }
        Ok(report)
    }

    /// `commit` for the last time: the same manifest write marks the file closed, so a
    /// writer that is about to be dropped saves one manifest write and two fsyncs. Never
    /// rotates; `close` afterwards writes nothing more unless rows came in between.
    pub fn commit_closing(&mut self) -> Result<CommitReport, DatasetError> {
        if self.poisoned {
            return Err(DatasetError::Poisoned {
                path: self.path.clone(),
            });
        }
        let report = if self.dirty || self.pending_rows > 0 {
            self.write_pending(true)?
        } else {
            self.store_manifest(true)?;
            CommitReport::default()
        };
        self.closed = true;
        Ok(report)
    }

    fn write_pending(&mut self, closed: bool) -> Result<CommitReport, DatasetError> {
        let started = Instant::now();
        let mut fsync = Duration::ZERO;
        let bytes = self.uncommitted_bytes();
        let result = (|| {
            if bytes > 0 {
                self.write_uncommitted()?;
                let sync_started = Instant::now();
                self.file
                    .sync_data()
                    .map_err(|source| self.io_error("fsync", source))?;
                fsync = sync_started.elapsed();
                release_written(&self.file, self.committed_bytes, bytes);
            }
            self.commits_in_file += 1;
            let result = self.store_manifest_with(
                closed,
                self.committed_bytes + bytes,
                self.committed_rows + self.pending_rows,
            );
            if result.is_err() {
                self.commits_in_file -= 1;
            }
            result
        })();
        if let Err(error) = result {
            // Roll back to the last commit so a retry appends the same rows once.
            if let Err(rollback) = self
                .file
                .set_len(self.committed_bytes)
                .and_then(|()| self.file.sync_data())
            {
                tracing::error!(message = "Dataset rollback failed.", error = %rollback);
                self.poisoned = true;
            }
            return Err(error);
        }
        let report = CommitReport {
            rows: self.pending_rows,
            bytes,
            fsync,
            rotated_to: None,
        };
        self.committed_bytes += bytes;
        self.committed_rows += self.pending_rows;
        self.totals.rows += self.pending_rows;
        self.totals.commits += 1;
        self.sealed.clear();
        self.sealed_bytes = 0;
        self.pending.clear();
        self.pending_rows = 0;
        self.dirty = false;
        self.closed = closed;
        tracing::debug!(
            message = "Dataset commit.",
            rows = report.rows,
            elapsed_us = started.elapsed().as_micros() as u64
        );
        Ok(report)
    }

    /// Appends what the write-ahead thread has not: after waiting for it, the chunks it did
    /// not take and the one being filled; everything, from the committed length on, if any of
    /// its writes failed.
    fn write_uncommitted(&mut self) -> Result<(), DatasetError> {
        let handed = std::mem::take(&mut self.handed);
        let in_file = self
            .write_ahead
            .as_ref()
            .map_or(0, |write_ahead| write_ahead.settle(handed));
        let from = if in_file == handed {
            in_file
        } else {
            tracing::warn!(
                message = "Writing rows ahead failed; the commit writes them itself.",
                path = %self.path.display(),
                chunks_written = in_file,
                chunks_handed = handed,
            );
            self.file
                .set_len(self.committed_bytes)
                .map_err(|source| self.io_error("cut back", source))?;
            0
        };
        let mut file = &*self.file;
        for chunk in self.sealed[from..].iter().map(|c| c.as_slice()) {
            file.write_all(chunk)
                .map_err(|source| self.io_error("append to", source))?;
        }
        file.write_all(&self.pending)
            .map_err(|source| self.io_error("append to", source))
    }

    fn should_rotate(&self) -> bool {
        let policy = self.config.rotate;
        policy.rows.is_some_and(|n| self.committed_rows >= n)
            || policy.bytes.is_some_and(|n| self.committed_bytes >= n)
            || policy.age.is_some_and(|age| self.opened.elapsed() >= age)
    }

    /// Closes the current file (manifest `closed: true`) and starts the next one.
    fn rotate(&mut self) -> Result<PathBuf, DatasetError> {
        self.store_manifest(true)?;
        let (file, path) = create_file(&self.config, &self.schema.header)?;
        self.file = Arc::new(file);
        self.path = path;
        self.file_index += 1;
        self.created = now_rfc3339();
        self.opened = Instant::now();
        self.committed_bytes = self.schema.header.len() as u64;
        self.committed_rows = 0;
        self.commits_in_file = 0;
        self.stats = FileStats::default();
        self.closed = false;
        self.totals.files += 1;
        self.store_manifest(false)?;
        tracing::info!(message = "Dataset file rotated.", path = %self.path.display());
        Ok(self.path.clone())
    }

    /// Commits what is buffered and marks the file closed.
    pub fn close(mut self) -> Result<WriterTotals, DatasetError> {
        self.commit()?;
        if !self.closed {
            self.store_manifest(true)?;
        }
        Ok(self.totals)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn schema(&self) -> &SchemaInfo {
        &self.schema
    }

    pub fn totals(&self) -> WriterTotals {
        self.totals
    }

    /// Missing sequence numbers summed over the remembered agent runs.
    pub fn missing_seq(&self) -> u64 {
        self.dedup.missing_total()
    }

    fn io_error(&self, op: &'static str, source: std::io::Error) -> DatasetError {
        DatasetError::Io {
            op,
            path: self.path.clone(),
            source,
        }
    }

    fn store_manifest(&self, closed: bool) -> Result<(), DatasetError> {
        self.store_manifest_with(closed, self.committed_bytes, self.committed_rows)
    }

    fn store_manifest_with(&self, closed: bool, bytes: u64, rows: u64) -> Result<(), DatasetError> {
        self.build_manifest(closed, bytes, rows).store(&self.path)
    }

    fn build_manifest(&self, closed: bool, bytes: u64, rows: u64) -> Manifest {
        let mut agents: Vec<AgentSpan> = self
            .stats
            .spans
            .iter()
            .flat_map(|(agent, boots)| boots.iter().map(move |(boot, span)| (agent, boot, span)))
            .map(|(agent, boot, span)| AgentSpan {
                agent: agent.to_string(),
                boot: *boot,
                rows: span.rows,
                first_seq: span.first_seq,
                last_seq: span.last_seq,
                missing: self
                    .dedup
                    .boot_counters(agent, *boot)
                    .map_or(0, |c| c.missing()),
            })
            .collect();
        agents.sort_by(|a, b| a.agent.cmp(&b.agent).then(a.boot.cmp(&b.boot)));
        let mut loss = self.stats.loss.clone();
        loss.missing_seq = agents.iter().map(|a| a.missing).sum();
        loss.dedup_agents_evicted = self.dedup.agents_evicted();
        Manifest {
            format: MANIFEST_FORMAT.into(),
            manifest_version: MANIFEST_VERSION,
            dataset: self.config.name.clone(),
            instance: self.config.instance.clone(),
            file: self
                .path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            file_index: self.file_index,
            schema: SchemaRef {
                name: self.schema.name.clone(),
                version: self.schema.version,
                columns: self.schema.columns.clone(),
            },
            created: self.created.clone(),
            updated: now_rfc3339(),
            closed,
            rows,
            bytes,
            header_bytes: self.schema.header.len() as u64,
            commits: self.commits_in_file,
            first_ts_ns: self.stats.first_ts_ns,
            last_ts_ns: self.stats.last_ts_ns,
            first_ts: self.stats.first_ts_ns.map(utc_rfc3339),
            last_ts: self.stats.last_ts_ns.map(utc_rfc3339),
            agents,
            agents_truncated_rows: self.stats.spans_overflow_rows,
            untracked_rows: self.stats.untracked_rows,
            loss,
            repaired: self.stats.repaired,
            dedup: self.dedup.snapshot(),
        }
    }
}

/// Repairs a file whose writer stopped without closing it, and marks it closed.
fn close_stale(
    dir: &Path,
    manifest_path: &Path,
    manifest: &mut Manifest,
    report: &mut OpenReport,
) -> Result<(), DatasetError> {
    let data_path = dir.join(&manifest.file);
    if data_path.exists() {
        let figures = repair::repair_file(&data_path, Some(manifest.bytes))?;
        report.torn_lines_truncated += figures.torn_lines;
        report.uncommitted_rows_truncated += figures.uncommitted_rows;
        manifest.repaired.torn_lines += figures.torn_lines;
        manifest.repaired.uncommitted_rows += figures.uncommitted_rows;
    } else {
        tracing::warn!(
            message = "Dataset file named by a manifest is missing.",
            manifest = %manifest_path.display()
        );
    }
    manifest.closed = true;
    manifest.updated = now_rfc3339();
    manifest.store(&data_path)?;
    report.files_closed += 1;
    Ok(())
}

/// Lets the kernel drop the page-cache pages of a range that is now on disk. Dataset files
/// are written once and read much later (if at all); keeping every written page cached
/// grows the page cache by the whole dataset, and writing into pages the machine has not
/// used yet costs far more than reusing the ones just released (see docs/processor.md).
#[allow(unsafe_code)] // libc::posix_fadvise on an open file
fn release_written(file: &File, offset: u64, len: u64) {
    use std::os::fd::AsRawFd;
    let (Ok(offset), Ok(len)) = (libc::off_t::try_from(offset), libc::off_t::try_from(len)) else {
        return;
    };
    // Advice only: a failure changes nothing about what is durable.
    // SAFETY: posix_fadvise reads no memory; the descriptor is open for the call's duration.
    unsafe {
        libc::posix_fadvise(file.as_raw_fd(), offset, len, libc::POSIX_FADV_DONTNEED);
    }
}

/// Creates a new file (never an existing one), writes the header, fsyncs file and directory.
fn create_file(config: &DatasetConfig, header: &[u8]) -> Result<(File, PathBuf), DatasetError> {
    let dir = config.output_dir();
    let stamp = naming::local_stamp(chrono::Local::now());
    let base = naming::base_path(
        &dir,
        &config.name,
        config.instance.as_deref(),
        config.output_csv.as_deref(),
        &stamp,
    );
    if config.output_csv.is_some() && base.exists() {
        // A fixed OUTPUT_CSV written by something without a manifest: make it whole at least.
        let figures = repair::repair_file(&base, None)?;
        if figures.torn_lines > 0 {
            tracing::warn!(message = "Cut a torn last line.", path = %base.display());
        }
    }
    for n in 1..=10_000u32 {
        let path = if n == 1 {
            base.clone()
        } else {
            naming::numbered(&base, n)
        };
        match OpenOptions::new().append(true).create_new(true).open(&path) {
            Ok(mut file) => {
                let io = |op, source| DatasetError::Io {
                    op,
                    path: path.clone(),
                    source,
                };
                let written = file
                    .write_all(header)
                    .map_err(|source| io("write header to", source))
                    .and_then(|()| file.sync_all().map_err(|source| io("fsync", source)))
                    .and_then(|()| sync_dir(&dir));
                if let Err(error) = written {
                    // The file holds nothing yet: leave no empty file behind (a full disk
                    // retried would otherwise leave one per attempt).
                    drop(file);
                    let _ = std::fs::remove_file(&path);
                    return Err(error);
                }
                return Ok((file, path));
            }
            Err(error) if error.kind() == ErrorKind::AlreadyExists => continue,
            Err(source) => {
                return Err(DatasetError::Io {
                    op: "create",
                    path,
                    source,
                });
            }
        }
    }
    Err(DatasetError::Config(format!(
        "no free file name next to {}",
        base.display()
    )))
}

fn now_rfc3339() -> String {
    chrono::Local::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, false)
}

fn utc_rfc3339(ts_ns: i64) -> String {
    chrono::DateTime::from_timestamp_nanos(ts_ns)
        .to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
}

//! The manifest beside each dataset file (`<file>.manifest.json`): what the file holds, the loss
//! figures for its span, and the dedup window that lets a restart recognise redeliveries.
//!
//! The manifest is the commit point: rows past `bytes` in the data file were never acknowledged
//! and are cut away at start-up. It is replaced atomically (temp file, fsync, rename, dir fsync).

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::DatasetError;
use super::dedup::AgentWindowState;

/// `format` field value, so other JSON files in the directory are never mistaken for manifests.
pub const MANIFEST_FORMAT: &str = "netpipe-dataset-manifest";
/// Bumped on an incompatible manifest change.
pub const MANIFEST_VERSION: u32 = 1;
/// Suffix added to the dataset file's name.
pub const MANIFEST_SUFFIX: &str = ".manifest.json";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SchemaRef {
    pub name: String,
    pub version: u32,
    pub columns: Vec<String>,
}

/// Rows of one agent run in this file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentSpan {
    pub agent: String,
    pub boot: u64,
    pub rows: u64,
    pub first_seq: u64,
    pub last_seq: u64,
    /// Numbers of this run between its boot and the highest seen that never arrived (so far,
    /// in this writer's state; includes gaps before this file).
    pub missing: u64,
}

/// Loss figures for the span of this file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LossFigures {
    /// Broker messages sent to the dead-letter stream while this file was open, by reason.
    pub dead_lettered: BTreeMap<String, u64>,
    /// Redeliveries recognised by `(agent, seq)` and dropped.
    pub duplicates_dropped: u64,
    /// Packets below an agent's dedup floor (see docs/processor.md), dropped.
    pub below_window_dropped: u64,
    /// Sum of `missing` over the agent runs in `agents`.
    pub missing_seq: u64,
    /// Agents whose dedup window was forgotten (more agents than the limit), lifetime count.
    pub dedup_agents_evicted: u64,
    /// Broker messages (batches of packets) lost on the broker while this file was open, by
    /// reason: `pending_trimmed` = entries deleted while delivered and unacknowledged (an opt-in
    /// stream cap), found at a restart or a reclaim.
    #[serde(default)]
    pub broker_lost_messages: BTreeMap<String, u64>,
    /// The latest in-band loss report of each agent run seen while this file was open
    /// (cumulative for the run): packets it captured and lost, by reason.
    #[serde(default)]
    pub agent_reports: Vec<crate::broker::agent_stats::AgentStats>,
}

/// What start-up repair did to this file.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RepairFigures {
    /// A last line without its newline (a write cut by a crash) was cut away.
    pub torn_lines: u64,
    /// Complete rows past the last commit (never acknowledged, so redelivered) were cut away.
    pub uncommitted_rows: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub format: String,
    pub manifest_version: u32,
    /// Dataset name (`DS_NAME`, plus the schema name when several schemas are written).
    pub dataset: String,
    #[serde(default)]
    pub instance: Option<String>,
    /// File name of the data file (same directory).
    pub file: String,
    /// Position in this writer's chain of files (rotation and restarts increase it).
    pub file_index: u64,
    pub schema: SchemaRef,
    /// Local time the file was created, RFC 3339.
    pub created: String,
    /// Local time of the last update, RFC 3339.
    pub updated: String,
    /// True once the writer rotated away from this file or shut down: it will not grow.
    pub closed: bool,
    /// Data rows committed (header not counted).
    pub rows: u64,
    /// Committed length of the data file in bytes, header included.
    pub bytes: u64,
    pub header_bytes: u64,
    pub commits: u64,
    /// Earliest and latest capture time of the rows, ns since the Unix epoch, and RFC 3339 UTC.
    pub first_ts_ns: Option<i64>,
    pub last_ts_ns: Option<i64>,
    pub first_ts: Option<String>,
    pub last_ts: Option<String>,
    pub agents: Vec<AgentSpan>,
    /// Agent runs beyond the per-file limit, folded together.
    #[serde(default)]
    pub agents_truncated_rows: u64,
    /// Rows without `(agent, seq)` (original-format messages): not deduplicated.
    #[serde(default)]
    pub untracked_rows: u64,
    pub loss: LossFigures,
    pub repaired: RepairFigures,
    /// Dedup window after this file's last commit.
    pub dedup: Vec<AgentWindowState>,
}

impl Manifest {
    pub fn path_for(data_file: &Path) -> PathBuf {
        let mut name = data_file.as_os_str().to_owned();
        name.push(MANIFEST_SUFFIX);
        PathBuf::from(name)
    }

    /// Writes the manifest atomically next to `data_file`, then fsyncs the directory.
    pub fn store(&self, data_file: &Path) -> Result<(), DatasetError> {
        let path = Self::path_for(data_file);
        let mut tmp_name = path.as_os_str().to_owned();
        tmp_name.push(".tmp");
        let tmp = PathBuf::from(tmp_name);
        let body = serde_json::to_vec_pretty(self).map_err(|e| DatasetError::BadManifest {
            path: path.clone(),
            reason: e.to_string(),
        })?;
        let write = || -> std::io::Result<()> {
            let mut file = OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .open(&tmp)?;
            file.write_all(&body)?;
            file.write_all(b"\n")?;
            file.sync_all()?;
            fs::rename(&tmp, &path)
        };
        write().map_err(|source| DatasetError::Io {
            op: "write manifest",
            path: path.clone(),
            source,
        })?;
        sync_dir(path.parent().unwrap_or(Path::new(".")))
    }

    pub fn load(path: &Path) -> Result<Manifest, DatasetError> {
        let body = fs::read(path).map_err(|source| DatasetError::Io {
            op: "read manifest",
            path: path.to_path_buf(),
            source,
        })?;
        let manifest: Manifest =
            serde_json::from_slice(&body).map_err(|e| DatasetError::BadManifest {
                path: path.to_path_buf(),
                reason: e.to_string(),
            })?;
        if manifest.format != MANIFEST_FORMAT || manifest.manifest_version != MANIFEST_VERSION {
            return Err(DatasetError::BadManifest {
                path: path.to_path_buf(),
                reason: format!(
                    "format {} v{} (expected {MANIFEST_FORMAT} v{MANIFEST_VERSION})",
                    manifest.format, manifest.manifest_version
                ),
            });
        }
        Ok(manifest)
    }

    /// Every readable manifest in `dir` (unreadable or foreign JSON files are skipped).
    pub fn scan(dir: &Path) -> Result<Vec<(PathBuf, Manifest)>, DatasetError> {
        let entries = fs::read_dir(dir).map_err(|source| DatasetError::Io {
            op: "list dataset directory",
            path: dir.to_path_buf(),
            source,
        })?;
        let mut out = Vec::new();
        for entry in entries.flatten() {
            let path = entry.path();
            let is_manifest = path
                .file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.ends_with(MANIFEST_SUFFIX));
            if !is_manifest {
                continue;
            }
            match Manifest::load(&path) {
                Ok(manifest) => out.push((path, manifest)),
                Err(error) => {
                    tracing::warn!(message = "Skipping unreadable manifest.", %error);
                }
            }
        }
        Ok(out)
    }
}

/// fsyncs a directory so a file created or renamed in it survives a power loss.
pub fn sync_dir(dir: &Path) -> Result<(), DatasetError> {
    // `Path::new("new.csv").parent()` is `""`: the current directory.
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|source| DatasetError::Io {
            op: "fsync directory",
            path: dir.to_path_buf(),
            source,
        })
}

//! `--read FILE --resume STATE_FILE`: a replay that is killed and restarted continues after the
//! last packet the broker confirmed, and records each packet once.
//!
//! The state file holds the replay's `boot` and how many of its packets (in replay order, the
//! sequence numbers `boot..boot + confirmed`) the broker has confirmed as one unbroken prefix.
//! A restart reuses that `boot`, so every packet gets the sequence number it had before, and
//! skips the confirmed prefix. Packets confirmed beyond the prefix (batches finish out of order)
//! are published again with the same `(agent, boot, seq)`, which the processor's dedup drops.
//! The file is replaced atomically (temp file + rename), so a kill -9 leaves the old or the new
//! state, never a torn one; it may lag the broker by a little, which costs only such duplicates.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::AgentError;

const FORMAT: &str = "netpipe-replay-resume";
/// How often the state file is rewritten at most while the prefix grows.
const WRITE_INTERVAL: Duration = Duration::from_millis(200);

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResumeState {
    pub format: String,
    /// The replayed file and its size, so a state is never applied to another file.
    pub file: String,
    pub file_len: u64,
    pub loops: u64,
    pub agent: String,
    pub boot: u64,
    /// Packets `boot..boot + confirmed` are confirmed by the broker.
    pub confirmed: u64,
}

impl ResumeState {
    pub fn new(file: &Path, loops: u64, agent: &str, boot: u64) -> Result<Self, AgentError> {
        Ok(ResumeState {
            format: FORMAT.into(),
            file: file.display().to_string(),
            file_len: file_len(file)?,
            loops,
            agent: agent.to_string(),
            boot,
            confirmed: 0,
        })
    }

    /// The state in `path`, if any, checked against this replay: a state written for another
    /// file, size, loop count or agent is a configuration error (one clear line).
    pub fn load(
        path: &Path,
        file: &Path,
        loops: u64,
        agent: &str,
    ) -> Result<Option<Self>, AgentError> {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => {
                return Err(AgentError::Config(format!(
                    "--resume {}: {e}",
                    path.display()
                )));
            }
        };
        let state: ResumeState = serde_json::from_str(&text).map_err(|e| {
            AgentError::Config(format!(
                "--resume {}: not a resume state file ({e})",
                path.display()
            ))
        })?;
        let expected = ResumeState::new(file, loops, agent, state.boot)?;
        if state.format != FORMAT
            || state.file != expected.file
            || state.file_len != expected.file_len
            || state.loops != expected.loops
            || state.agent != expected.agent
        {
            return Err(AgentError::Config(format!(
                "--resume {}: the state is for another replay ({} of {} bytes, --loop {}, agent {}); \
                 remove it to start over",
                path.display(),
                state.file,
                state.file_len,
                state.loops,
                state.agent
            )));
        }
        Ok(Some(state))
    }

    /// Replaces the state file atomically.
    pub fn store(&self, path: &Path) -> std::io::Result<()> {
        let mut temp = path.as_os_str().to_owned();
        temp.push(".tmp");
        let temp = PathBuf::from(temp);
        let text = serde_json::to_vec_pretty(self).map_err(std::io::Error::other)?;
        std::fs::write(&temp, text)?;
        std::fs::rename(&temp, path)
    }
}

fn file_len(file: &Path) -> Result<u64, AgentError> {
    std::fs::metadata(file)
        .map(|m| m.len())
        .map_err(|e| AgentError::Config(format!("--read {}: {e}", file.display())))
}

/// Settled sequence ranges (published, or refused and counted) and the confirmed prefix.
#[derive(Debug)]
pub struct Progress {
    path: PathBuf,
    state: ResumeState,
    /// Settled ranges beyond the prefix: start -> end (inclusive).
    settled: BTreeMap<u64, u64>,
    last_write: Option<Instant>,
    written: u64,
}

impl Progress {
    pub fn new(path: PathBuf, state: ResumeState) -> Self {
        let written = state.confirmed;
        Progress {
            path,
            state,
            settled: BTreeMap::new(),
            last_write: None,
            written,
        }
    }

    /// Sequence numbers `first..=last` reached the broker (or were refused and counted).
    pub fn settled(&mut self, first: u64, last: u64) {
        self.settled.insert(first, last);
        let mut next = self.state.boot + self.state.confirmed;
        while let Some((&start, &end)) = self.settled.first_key_value() {
            if start > next {
                break;
            }
            self.settled.pop_first();
            next = next.max(end.saturating_add(1));
        }
        self.state.confirmed = next - self.state.boot;
        if self
            .last_write
            .is_none_or(|t| t.elapsed() >= WRITE_INTERVAL)
        {
            self.write();
        }
    }

    /// Writes the state if the prefix grew since the last write.
    pub fn write(&mut self) {
        if self.state.confirmed == self.written && self.last_write.is_some() {
            return;
        }
        self.last_write = Some(Instant::now());
        match self.state.store(&self.path) {
            Ok(()) => self.written = self.state.confirmed,
            Err(error) => tracing::error!(
                path = %self.path.display(),
                %error,
                "cannot write the --resume state; a restart would replay more again"
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_prefix_grows_only_over_settled_ranges() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("x.pcap");
        std::fs::write(&file, b"data").unwrap();
        let state = ResumeState::new(&file, 1, "a", 100).unwrap();
        let path = dir.path().join("state.json");
        let mut progress = Progress::new(path.clone(), state);
        progress.settled(110, 119);
        assert_eq!(progress.state.confirmed, 0, "a gap before 110");
        progress.settled(100, 109);
        assert_eq!(progress.state.confirmed, 20);
        progress.write();
        let loaded = ResumeState::load(&path, &file, 1, "a").unwrap().unwrap();
        assert_eq!(loaded.confirmed, 20);
        assert_eq!(loaded.boot, 100);
        assert!(ResumeState::load(&path, &file, 2, "a").is_err());
        std::fs::write(&path, b"garbage").unwrap();
        assert!(ResumeState::load(&path, &file, 1, "a").is_err());
        assert!(
            ResumeState::load(&dir.path().join("none"), &file, 1, "a")
                .unwrap()
                .is_none()
        );
    }
}

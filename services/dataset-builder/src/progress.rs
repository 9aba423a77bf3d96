//! Progress lines on stderr (through tracing) for long runs: at most one per interval. Also
//! where a long pass notices that shutdown was requested.

use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use crate::error::BuildError;

/// How many rows pass between two looks at the clock.
pub const ROWS_PER_CHECK: u64 = 16_384;

pub struct Progress {
    pass: &'static str,
    total_bytes: u64,
    done_before: u64,
    every: Duration,
    started: Instant,
    last: Instant,
    cancel: CancellationToken,
}

impl Progress {
    /// `cancel` stops the pass at its next tick or file (with [`BuildError::Cancelled`]).
    pub fn new(
        pass: &'static str,
        total_bytes: u64,
        every_secs: u64,
        cancel: CancellationToken,
    ) -> Self {
        let now = Instant::now();
        Progress {
            pass,
            total_bytes,
            done_before: 0,
            every: Duration::from_secs(every_secs.max(1)),
            started: now,
            last: now,
            cancel,
        }
    }

    /// Fails when shutdown was requested.
    pub fn check_cancelled(&self) -> Result<(), BuildError> {
        if self.cancel.is_cancelled() {
            return Err(BuildError::Cancelled);
        }
        Ok(())
    }

    /// `in_file` bytes of the current file are done. Fails when shutdown was requested.
    pub fn tick(&mut self, in_file: u64) -> Result<(), BuildError> {
        self.check_cancelled()?;
        if self.last.elapsed() < self.every {
            return Ok(());
        }
        self.last = Instant::now();
        let done = self.done_before + in_file;
        let secs = self.started.elapsed().as_secs_f64().max(1e-9);
        let pct = if self.total_bytes == 0 {
            100.0
        } else {
            100.0 * done as f64 / self.total_bytes as f64
        };
        tracing::info!(
            pass = self.pass,
            done_mb = format!("{:.0}", done as f64 / 1e6),
            total_mb = format!("{:.0}", self.total_bytes as f64 / 1e6),
            percent = format!("{pct:.1}"),
            mb_per_s = format!("{:.1}", done as f64 / 1e6 / secs),
            "progress"
        );
        Ok(())
    }

    /// The current file is finished.
    pub fn file_done(&mut self, bytes: u64) {
        self.done_before += bytes;
    }
}

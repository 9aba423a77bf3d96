//! Progress lines on stderr (through tracing) for long runs: at most one per interval.

use std::time::{Duration, Instant};

/// How many rows pass between two looks at the clock.
pub const ROWS_PER_CHECK: u64 = 16_384;

pub struct Progress {
    pass: &'static str,
    total_bytes: u64,
    done_before: u64,
    every: Duration,
    started: Instant,
    last: Instant,
}

impl Progress {
    pub fn new(pass: &'static str, total_bytes: u64, every_secs: u64) -> Self {
        let now = Instant::now();
        Progress {
            pass,
            total_bytes,
            done_before: 0,
            every: Duration::from_secs(every_secs.max(1)),
            started: now,
            last: now,
        }
    }

    /// `in_file` bytes of the current file are done.
    pub fn tick(&mut self, in_file: u64) {
        if self.last.elapsed() < self.every {
            return;
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
    }

    /// The current file is finished.
    pub fn file_done(&mut self, bytes: u64) {
        self.done_before += bytes;
    }
}

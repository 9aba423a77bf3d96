//! Per-agent sequence numbers that never repeat, even across restarts.
//!
//! A run starts at its boot id: the wall-clock time in nanoseconds since the Unix epoch when the
//! agent started (raised past the last number a previous run persisted, if a state file is used).
//! Numbers then count up by one per packet. A restart therefore begins far above anything the
//! previous run could have reached unless that run captured more than one packet per nanosecond
//! of its lifetime, and `(agent, seq)` identifies a packet for deduplication.

use std::time::{SystemTime, UNIX_EPOCH};

/// Hands out sequence numbers for one agent run.
#[derive(Debug)]
pub struct SequenceGenerator {
    boot: u64,
    next: u64,
}

impl SequenceGenerator {
    /// Starts a run at the current wall-clock time, or just after `floor` if that is later
    /// (`floor` is the last sequence number a previous run is known to have used).
    pub fn start(floor: Option<u64>) -> Self {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX / 2))
            .unwrap_or(0);
        let boot = match floor {
            Some(last) => now.max(last.saturating_add(1)),
            None => now,
        };
        SequenceGenerator { boot, next: boot }
    }

    /// A generator with a fixed boot id (tests, `netpipe decode` reproducibility).
    pub fn with_boot(boot: u64) -> Self {
        SequenceGenerator { boot, next: boot }
    }

    /// First sequence number of this run.
    pub fn boot(&self) -> u64 {
        self.boot
    }

    /// The next sequence number.
    pub fn next_seq(&mut self) -> u64 {
        let seq = self.next;
        self.next = self.next.wrapping_add(1);
        seq
    }

    /// The last sequence number handed out, if any (for persisting a floor).
    pub fn last(&self) -> Option<u64> {
        (self.next != self.boot).then(|| self.next.wrapping_sub(1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_restart_never_reuses_numbers() {
        let mut first = SequenceGenerator::start(None);
        let used: Vec<u64> = (0..1000).map(|_| first.next_seq()).collect();
        let mut second = SequenceGenerator::start(first.last());
        assert!(second.next_seq() > *used.last().unwrap());
    }

    #[test]
    fn a_floor_in_the_future_wins_over_the_clock() {
        let floor = u64::MAX / 2;
        let mut generator = SequenceGenerator::start(Some(floor));
        assert_eq!(generator.boot(), floor + 1);
        assert_eq!(generator.next_seq(), floor + 1);
        assert_eq!(generator.next_seq(), floor + 2);
        assert_eq!(generator.last(), Some(floor + 2));
    }
}

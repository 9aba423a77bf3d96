//! Which `(agent, seq)` a dataset already holds, in bounded memory, and the gaps per agent run.
//!
//! Per agent the window keeps a sorted list of disjoint ranges of seen sequence numbers plus a
//! floor: every number at or below the floor counts as seen. In-order delivery only extends the
//! last range, so one range per agent run is the normal case. Each gap (a missing number run)
//! splits a range; when an agent has more than `max_ranges` ranges, the oldest range is folded
//! into the floor, i.e. its preceding gap is given up and a late arrival into it is dropped as
//! `below_window`. Memory is therefore at most `max_agents * max_ranges` ranges (16 bytes each)
//! plus `MAX_BOOTS` run counters per agent, whatever the stream length.
//!
//! Guarantee: a redelivered packet is recognised as long as its agent has had fewer than
//! `max_ranges` newer gaps since, and its agent was not evicted (more than `max_agents` agents,
//! the least recently seen goes first). Both are counted, so a lost guarantee is visible.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

/// Agent runs (boots) remembered per agent for the gap counters.
pub const MAX_BOOTS: usize = 8;

/// Limits of the dedup state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DedupLimits {
    /// Seen-ranges kept per agent (each extra gap costs one).
    pub max_ranges: usize,
    /// Agents tracked; beyond this the least recently seen agent is forgotten.
    pub max_agents: usize,
}

impl Default for DedupLimits {
    fn default() -> Self {
        DedupLimits {
            max_ranges: 1024,
            max_agents: 4096,
        }
    }
}

/// What the window says about one packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seen {
    /// Not seen before: it is now recorded.
    New,
    /// The exact `(agent, seq)` is already in the dataset.
    Duplicate,
    /// Below the agent's floor: seen or given up; dropped either way.
    BelowWindow,
}

/// Counters of one agent run: `missing` = numbers between the boot and the highest seen that
/// never arrived (in this writer's lifetime state).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct BootCounters {
    pub boot: u64,
    pub highest: u64,
    pub rows: u64,
}

impl BootCounters {
    pub fn missing(&self) -> u64 {
        (self.highest.saturating_sub(self.boot) + 1).saturating_sub(self.rows)
    }
}

/// Serialized form of one agent's window (kept in the manifest, so a restart recovers it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentWindowState {
    pub agent: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub floor: Option<u64>,
    /// Seen ranges, inclusive, ascending.
    pub ranges: Vec<(u64, u64)>,
    pub boots: Vec<BootCounters>,
}

#[derive(Debug, Default)]
struct AgentWindow {
    floor: Option<u64>,
    ranges: VecDeque<(u64, u64)>,
    boots: VecDeque<BootCounters>,
    last_touch: u64,
}

impl AgentWindow {
    fn check_and_insert(&mut self, seq: u64, max_ranges: usize) -> Seen {
        if self.floor.is_some_and(|floor| seq <= floor) {
            return Seen::BelowWindow;
        }
        match self.ranges.back_mut() {
            None => self.ranges.push_back((seq, seq)),
            Some(last) if last.1.checked_add(1) == Some(seq) => last.1 = seq,
            Some(last) if seq > last.1 => self.ranges.push_back((seq, seq)),
            Some(last) if seq >= last.0 => return Seen::Duplicate,
            Some(_) => {
                if !self.insert_before_last(seq) {
                    return Seen::Duplicate;
                }
            }
        }
        while self.ranges.len() > max_ranges.max(1) {
            if let Some((_, end)) = self.ranges.pop_front() {
                self.floor = Some(self.floor.map_or(end, |f| f.max(end)));
            }
        }
        Seen::New
    }

    /// Slow path for an out-of-order number; false when it was already seen.
    fn insert_before_last(&mut self, seq: u64) -> bool {
        let i = self.ranges.partition_point(|r| r.0 <= seq);
        if i > 0 && self.ranges[i - 1].1 >= seq {
            return false;
        }
        let joins_left = i > 0 && self.ranges[i - 1].1 + 1 == seq;
        let joins_right = i < self.ranges.len() && seq + 1 == self.ranges[i].0;
        match (joins_left, joins_right) {
            (true, true) => {
                let right_end = self.ranges[i].1;
                self.ranges[i - 1].1 = right_end;
                self.ranges.remove(i);
            }
            (true, false) => self.ranges[i - 1].1 = seq,
            (false, true) => self.ranges[i].0 = seq,
            (false, false) => self.ranges.insert(i, (seq, seq)),
        }
        true
    }

    fn count_row(&mut self, boot: u64, seq: u64) {
        let entry = match self.boots.iter_mut().position(|b| b.boot == boot) {
            Some(i) => &mut self.boots[i],
            None => {
                if self.boots.len() >= MAX_BOOTS {
                    self.boots.pop_front();
                }
                self.boots.push_back(BootCounters {
                    boot,
                    highest: seq,
                    rows: 0,
                });
                let last = self.boots.len() - 1;
                &mut self.boots[last]
            }
        };
        entry.rows += 1;
        entry.highest = entry.highest.max(seq);
    }
}

/// Dedup windows and gap counters of all agents.
#[derive(Debug, Default)]
pub struct DedupState {
    limits: DedupLimits,
    agents: HashMap<Arc<str>, AgentWindow>,
    touch: u64,
    agents_evicted: u64,
}

impl DedupState {
    pub fn new(limits: DedupLimits) -> Self {
        DedupState {
            limits,
            ..Default::default()
        }
    }

    /// Records `(agent, seq)` unless already seen; counts the row under its boot when new.
    pub fn check_and_insert(&mut self, agent: &str, boot: u64, seq: u64) -> Seen {
        self.touch += 1;
        let touch = self.touch;
        if !self.agents.contains_key(agent) {
            self.evict_if_full();
            self.agents.insert(Arc::from(agent), AgentWindow::default());
        }
        let Some(window) = self.agents.get_mut(agent) else {
            return Seen::New;
        };
        window.last_touch = touch;
        let seen = window.check_and_insert(seq, self.limits.max_ranges);
        if seen == Seen::New {
            window.count_row(boot, seq);
        }
        seen
    }

    fn evict_if_full(&mut self) {
        if self.agents.len() < self.limits.max_agents.max(1) {
            return;
        }
        let oldest = self
            .agents
            .iter()
            .min_by_key(|(_, w)| w.last_touch)
            .map(|(name, _)| name.clone());
        if let Some(name) = oldest {
            self.agents.remove(&name);
            self.agents_evicted += 1;
        }
    }

    /// Agents forgotten because more than `max_agents` were seen.
    pub fn agents_evicted(&self) -> u64 {
        self.agents_evicted
    }

    pub fn agent_count(&self) -> usize {
        self.agents.len()
    }

    /// Gap counters of one agent run, if remembered.
    pub fn boot_counters(&self, agent: &str, boot: u64) -> Option<BootCounters> {
        self.agents
            .get(agent)?
            .boots
            .iter()
            .find(|b| b.boot == boot)
            .copied()
    }

    /// Missing numbers summed over every remembered agent run.
    pub fn missing_total(&self) -> u64 {
        self.agents
            .values()
            .flat_map(|w| w.boots.iter())
            .map(BootCounters::missing)
            .sum()
    }

    /// The state in serializable form, agents sorted by name (stable manifests).
    pub fn snapshot(&self) -> Vec<AgentWindowState> {
        let mut out: Vec<AgentWindowState> = self
            .agents
            .iter()
            .map(|(agent, w)| AgentWindowState {
                agent: agent.to_string(),
                floor: w.floor,
                ranges: w.ranges.iter().copied().collect(),
                boots: w.boots.iter().copied().collect(),
            })
            .collect();
        out.sort_by(|a, b| a.agent.cmp(&b.agent));
        out
    }

    /// Rebuilds the state from a manifest's snapshot (limits re-applied).
    pub fn restore(limits: DedupLimits, saved: &[AgentWindowState]) -> Self {
        let mut state = DedupState::new(limits);
        for saved_agent in saved {
            let mut window = AgentWindow {
                floor: saved_agent.floor,
                ranges: saved_agent.ranges.iter().copied().collect(),
                boots: saved_agent.boots.iter().copied().collect(),
                last_touch: 0,
            };
            while window.ranges.len() > limits.max_ranges.max(1) {
                if let Some((_, end)) = window.ranges.pop_front() {
                    window.floor = Some(window.floor.map_or(end, |f| f.max(end)));
                }
            }
            while window.boots.len() > MAX_BOOTS {
                window.boots.pop_front();
            }
            state.evict_if_full();
            state
                .agents
                .insert(Arc::from(saved_agent.agent.as_str()), window);
        }
        state
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(max_ranges: usize, max_agents: usize) -> DedupLimits {
        DedupLimits {
            max_ranges,
            max_agents,
        }
    }

    #[test]
    fn in_order_numbers_are_new_and_repeats_are_duplicates() {
        let mut state = DedupState::new(DedupLimits::default());
        for seq in 100..200 {
            assert_eq!(state.check_and_insert("a", 100, seq), Seen::New);
        }
        assert_eq!(state.check_and_insert("a", 100, 150), Seen::Duplicate);
        assert_eq!(state.check_and_insert("a", 100, 199), Seen::Duplicate);
        assert_eq!(state.check_and_insert("b", 100, 150), Seen::New);
        assert_eq!(state.snapshot()[0].ranges, vec![(100, 199)]);
    }

    #[test]
    fn gaps_are_counted_and_filled_out_of_order() {
        let mut state = DedupState::new(DedupLimits::default());
        for seq in [10, 11, 15, 20, 12, 14, 13] {
            assert_eq!(state.check_and_insert("a", 10, seq), Seen::New, "{seq}");
        }
        let counters = state.boot_counters("a", 10).unwrap();
        assert_eq!(counters.highest, 20);
        assert_eq!(counters.rows, 7);
        // 16..=19 never arrived.
        assert_eq!(counters.missing(), 4);
        assert_eq!(state.snapshot()[0].ranges, vec![(10, 15), (20, 20)]);
        assert_eq!(state.check_and_insert("a", 10, 13), Seen::Duplicate);
    }

    #[test]
    fn too_many_gaps_fold_the_oldest_into_the_floor() {
        let mut state = DedupState::new(limits(3, 10));
        for seq in [1, 3, 5, 7, 9] {
            assert_eq!(state.check_and_insert("a", 1, seq), Seen::New);
        }
        let snap = state.snapshot();
        assert_eq!(snap[0].ranges, vec![(5, 5), (7, 7), (9, 9)]);
        assert_eq!(snap[0].floor, Some(3));
        assert_eq!(state.check_and_insert("a", 1, 2), Seen::BelowWindow);
        assert_eq!(state.check_and_insert("a", 1, 6), Seen::New);
    }

    #[test]
    fn the_least_recently_seen_agent_is_evicted_and_counted() {
        let mut state = DedupState::new(limits(8, 2));
        state.check_and_insert("a", 1, 1);
        state.check_and_insert("b", 1, 1);
        state.check_and_insert("a", 1, 2);
        state.check_and_insert("c", 1, 1);
        assert_eq!(state.agents_evicted(), 1);
        assert_eq!(state.agent_count(), 2);
        assert_eq!(state.check_and_insert("a", 1, 2), Seen::Duplicate);
    }

    #[test]
    fn snapshot_and_restore_keep_what_was_seen() {
        let mut state = DedupState::new(DedupLimits::default());
        for seq in [5, 6, 9, 7] {
            state.check_and_insert("x", 5, seq);
        }
        let restored = DedupState::restore(DedupLimits::default(), &state.snapshot());
        let mut restored = restored;
        for seq in [5, 6, 7, 9] {
            assert_eq!(restored.check_and_insert("x", 5, seq), Seen::Duplicate);
        }
        assert_eq!(restored.check_and_insert("x", 5, 8), Seen::New);
        assert_eq!(restored.boot_counters("x", 5).unwrap().missing(), 0);
    }
}

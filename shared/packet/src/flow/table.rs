//! The bounded flow table: flows in least-recently-seen order, expired by the timeouts (packet
//! time, or a wall-clock tick in live capture), by TCP termination when asked, at the end of
//! the capture, or evicted when the table is full. Every flow leaves as a [`FlowRecord`].

use rustc_hash::FxHashMap;

use super::key::FlowKey;
use super::packet::{FlowPacket, SkipReason};
use super::record::FlowRecord;
use super::state::Flow;
use super::{ExpirationReason, FlowConfig};
use crate::frame::Frame;

const NIL: u32 = u32::MAX;

struct Slot {
    key: FlowKey,
    flow: Flow,
    prev: u32,
    next: u32,
}

/// Counters of what the table did; `packets_in_flows + skipped` is every frame pushed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FlowCounters {
    pub packets_in_flows: u64,
    pub skipped_not_ip: u64,
    pub skipped_fragment: u64,
    pub skipped_too_short: u64,
    pub flows_emitted: u64,
    pub evicted: u64,
}

impl FlowCounters {
    pub fn skipped(&self, reason: SkipReason) -> u64 {
        match reason {
            SkipReason::NotIp => self.skipped_not_ip,
            SkipReason::Fragment => self.skipped_fragment,
            SkipReason::TooShort => self.skipped_too_short,
        }
    }
}

/// Bidirectional flows of one capture. Pure: time comes from packets and [`FlowTable::tick`].
pub struct FlowTable {
    config: FlowConfig,
    index: FxHashMap<FlowKey, u32>,
    slots: Vec<Slot>,
    free: Vec<u32>,
    /// Least recently seen flow (expires first) and most recently seen one.
    head: u32,
    tail: u32,
    /// Meter time in ns: the latest packet or tick time seen (time never goes backwards).
    now_ns: i64,
    next_id: u64,
    counters: FlowCounters,
}

impl FlowTable {
    /// An empty table; flow ids count up from `first_id` in the order flows are emitted.
    pub fn new(config: FlowConfig, first_id: u64) -> FlowTable {
        FlowTable {
            config,
            index: FxHashMap::default(),
            slots: Vec::new(),
            free: Vec::new(),
            head: NIL,
            tail: NIL,
            now_ns: i64::MIN,
            next_id: first_id,
            counters: FlowCounters::default(),
        }
    }

    pub fn config(&self) -> &FlowConfig {
        &self.config
    }
    pub fn counters(&self) -> FlowCounters {
        self.counters
    }
    /// Flows currently open.
    pub fn len(&self) -> usize {
        self.index.len()
    }
    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    /// Adds a decoded frame; flows that end because of it go to `out`.
    pub fn push_frame(&mut self, frame: &Frame, out: &mut Vec<FlowRecord>) {
        match FlowPacket::from_frame(frame) {
            Ok(packet) => self.push(&packet, out),
            Err(reason) => self.count_skip(reason),
        }
    }

    /// Counts a frame that makes no flow packet (when [`FlowPacket::from_frame`] ran elsewhere).
    pub fn count_skip(&mut self, reason: SkipReason) {
        match reason {
            SkipReason::NotIp => self.counters.skipped_not_ip += 1,
            SkipReason::Fragment => self.counters.skipped_fragment += 1,
            SkipReason::TooShort => self.counters.skipped_too_short += 1,
        }
    }

    /// Adds one packet; flows that end because of it go to `out`.
    pub fn push(&mut self, packet: &FlowPacket, out: &mut Vec<FlowRecord>) {
        // Like NFStream, a packet older than the meter time counts at the meter time.
        let now = self.now_ns.max(packet.ts_ns);
        self.now_ns = now;
        self.counters.packets_in_flows += 1;
        let now_ms = now.div_euclid(1_000_000);
        let key = FlowKey::of(packet);
        if let Some(&idx) = self.index.get(&key) {
            let reason = {
                let flow = &self.slots[idx as usize].flow;
                expiry(&self.config, flow, now_ms)
            };
            match reason {
                None => {
                    self.touch(idx);
                    let flow = &mut self.slots[idx as usize].flow;
                    flow.add(packet, now);
                    if self.config.tcp_end && flow.tcp_ended {
                        self.emit(idx, ExpirationReason::TcpEnd, out);
                    }
                    self.expire_idle(now_ms, out);
                    return;
                }
                Some(reason) => self.emit(idx, reason, out),
            }
        }
        self.expire_idle(now_ms, out);
        if self.index.len() >= self.config.max_flows.max(1) && self.head != NIL {
            self.counters.evicted += 1;
            self.emit(self.head, ExpirationReason::Evicted, out);
        }
        let mut flow = Flow::new(0, packet, self.config.splt);
        flow.add(packet, now);
        let ended = self.config.tcp_end && flow.tcp_ended;
        let idx = self.insert(key, flow);
        if ended {
            self.emit(idx, ExpirationReason::TcpEnd, out);
        }
    }

    /// Advances the meter clock without a packet (live capture's wall-clock tick): flows idle
    /// for the idle timeout by then are emitted.
    pub fn tick(&mut self, now_ns: i64, out: &mut Vec<FlowRecord>) {
        self.now_ns = self.now_ns.max(now_ns);
        self.expire_idle(self.now_ns.div_euclid(1_000_000), out);
    }

    /// End of capture: every open flow is emitted, least recently seen first.
    pub fn finish(&mut self, out: &mut Vec<FlowRecord>) {
        while self.head != NIL {
            self.emit(self.head, ExpirationReason::EndOfCapture, out);
        }
    }

    /// End of capture in steps: emits at most `max` open flows (least recently seen first), so
    /// a caller can write them out before taking more; the table is empty when this returns 0.
    pub fn finish_some(&mut self, out: &mut Vec<FlowRecord>, max: usize) -> usize {
        let mut emitted = 0;
        while self.head != NIL && emitted < max {
            self.emit(self.head, ExpirationReason::EndOfCapture, out);
            emitted += 1;
        }
        emitted
    }

    fn expire_idle(&mut self, now_ms: i64, out: &mut Vec<FlowRecord>) {
        while self.head != NIL {
            let last = self.slots[self.head as usize]
                .flow
                .bidirectional
                .last_seen_ms;
            if now_ms.saturating_sub(last) < self.config.idle_timeout_ms {
                break;
            }
            self.emit(self.head, ExpirationReason::Idle, out);
        }
    }

    fn insert(&mut self, key: FlowKey, flow: Flow) -> u32 {
        let slot = Slot {
            key,
            flow,
            prev: NIL,
            next: NIL,
        };
        let idx = match self.free.pop() {
            Some(idx) => {
                self.slots[idx as usize] = slot;
                idx
            }
            None => {
                self.slots.push(slot);
                (self.slots.len() - 1) as u32
            }
        };
        self.index.insert(key, idx);
        self.link_tail(idx);
        idx
    }

    fn emit(&mut self, idx: u32, reason: ExpirationReason, out: &mut Vec<FlowRecord>) {
        self.unlink(idx);
        let slot = &mut self.slots[idx as usize];
        self.index.remove(&slot.key);
        let placeholder = Flow::new(0, &PLACEHOLDER, 0);
        let mut flow = std::mem::replace(&mut slot.flow, placeholder);
        flow.close_activity();
        // Ids follow emission order (as NFStream's do), so a dataset sees consecutive ids.
        flow.id = self.next_id;
        self.next_id += 1;
        self.free.push(idx);
        self.counters.flows_emitted += 1;
        out.push(FlowRecord::new(flow, reason, self.config.agent.clone()));
    }

    fn touch(&mut self, idx: u32) {
        if self.tail != idx {
            self.unlink(idx);
            self.link_tail(idx);
        }
    }

    fn link_tail(&mut self, idx: u32) {
        let old_tail = self.tail;
        {
            let slot = &mut self.slots[idx as usize];
            slot.prev = old_tail;
            slot.next = NIL;
        }
        if old_tail == NIL {
            self.head = idx;
        } else {
            self.slots[old_tail as usize].next = idx;
        }
        self.tail = idx;
    }

    fn unlink(&mut self, idx: u32) {
        let (prev, next) = {
            let slot = &self.slots[idx as usize];
            (slot.prev, slot.next)
        };
        if prev == NIL {
            self.head = next;
        } else {
            self.slots[prev as usize].next = next;
        }
        if next == NIL {
            self.tail = prev;
        } else {
            self.slots[next as usize].prev = prev;
        }
        let slot = &mut self.slots[idx as usize];
        slot.prev = NIL;
        slot.next = NIL;
    }
}

/// Why a flow ends before `now_ms` joins it: idle first, then active (NFStream's order).
fn expiry(config: &FlowConfig, flow: &Flow, now_ms: i64) -> Option<ExpirationReason> {
    if now_ms - flow.bidirectional.last_seen_ms >= config.idle_timeout_ms {
        Some(ExpirationReason::Idle)
    } else if now_ms - flow.bidirectional.first_seen_ms >= config.active_timeout_ms {
        Some(ExpirationReason::Active)
    } else {
        None
    }
}

/// A packet that starts an empty flow (freed slots, the column list).
pub(crate) fn placeholder() -> &'static FlowPacket {
    &PLACEHOLDER
}

/// Fills freed slots (never read: a freed slot is only reused through `insert`).
static PLACEHOLDER: FlowPacket = FlowPacket {
    ts_ns: 0,
    size: 0,
    ip_version: 4,
    src_ip: std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED),
    dst_ip: std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED),
    src_port: 0,
    dst_port: 0,
    protocol: 0,
    vlan_id: 0,
    src_mac: crate::frame::MacAddr([0; 6]),
    dst_mac: crate::frame::MacAddr([0; 6]),
    tcp_flags: 0,
    tcp_window: None,
    transport_header_len: 0,
    payload_len: 0,
};

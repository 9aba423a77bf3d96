//! One flow being accumulated: NFStream's counters and statistics, the early-flow arrays and
//! the CICFlowMeter-style counters (with the published corrections).

use std::net::IpAddr;

use super::packet::{FlowPacket, tcp_flag};
use super::stats::Running;
use crate::frame::MacAddr;

/// CICFlowMeter's thresholds: a gap longer than this ends an active period (5 s) ...
pub const ACTIVITY_TIMEOUT_US: i64 = 5_000_000;
/// ... and a gap longer than this starts a new subflow or ends a bulk (1 s).
pub const SUBFLOW_GAP_US: i64 = 1_000_000;
/// Packets in a row, one way, with payload and gaps under 1 s, that make a bulk.
const BULK_MIN_PACKETS: u64 = 4;

/// The TCP flags NFStream counts, in its column order.
pub const FLAG_NAMES: [&str; 8] = [
    "_syn", "_cwr", "_ece", "_urg", "_ack", "_psh", "_rst", "_fin",
];
const FLAG_BITS: [u16; 8] = [
    tcp_flag::SYN,
    tcp_flag::CWR,
    tcp_flag::ECE,
    tcp_flag::URG,
    tcp_flag::ACK,
    tcp_flag::PSH,
    tcp_flag::RST,
    tcp_flag::FIN,
];

/// CICFlowMeter's bulk state machine for one direction (float division at the end).
#[derive(Debug, Clone, Copy, Default)]
pub struct Bulk {
    start_helper_us: Option<i64>,
    count_helper: u64,
    size_helper: u64,
    pub last_us: i64,
    pub bulks: u64,
    pub packets: u64,
    pub bytes: u64,
    pub duration_us: i64,
}

impl Bulk {
    fn update(&mut self, ts_us: i64, payload: u32, other_last_us: i64) {
        if self
            .start_helper_us
            .is_some_and(|start| other_last_us > start)
        {
            self.start_helper_us = None;
        }
        if payload == 0 {
            return;
        }
        let size = u64::from(payload);
        match self.start_helper_us {
            Some(_) if ts_us - self.last_us <= SUBFLOW_GAP_US => {
                self.count_helper += 1;
                self.size_helper += size;
                if self.count_helper == BULK_MIN_PACKETS {
                    self.bulks += 1;
                    self.packets += self.count_helper;
                    self.bytes += self.size_helper;
                    self.duration_us += ts_us - self.start_helper_us.unwrap_or(ts_us);
                } else if self.count_helper > BULK_MIN_PACKETS {
                    self.packets += 1;
                    self.bytes += size;
                    self.duration_us += ts_us - self.last_us;
                }
            }
            _ => {
                self.start_helper_us = Some(ts_us);
                self.count_helper = 1;
                self.size_helper = size;
            }
        }
        self.last_us = ts_us;
    }
}

/// Counters of one direction (or of both, for `bidirectional_*`).
#[derive(Debug, Clone, Default)]
pub struct Side {
    pub first_seen_ms: i64,
    pub last_seen_ms: i64,
    pub packets: u64,
    pub bytes: u64,
    pub ps: Running,
    pub piat_ms: Running,
    pub flags: [u32; 8],
    // CICFlowMeter-style, microsecond clock
    pub first_us: i64,
    pub last_us: i64,
    pub iat_us: Running,
    pub header_bytes: u64,
    pub init_window: Option<u16>,
    pub act_data_packets: u64,
    pub min_header_len: Option<u32>,
    pub payload: Running,
    pub bulk: Bulk,
}

impl Side {
    fn add(&mut self, packet: &FlowPacket, ts_ms: i64, ts_us: i64) {
        let size = f64::from(packet.size);
        if self.packets == 0 {
            self.first_seen_ms = ts_ms;
            self.first_us = ts_us;
        } else {
            self.piat_ms.push((ts_ms - self.last_seen_ms) as f64);
            self.iat_us.push((ts_us - self.last_us) as f64);
        }
        self.packets += 1;
        self.last_seen_ms = ts_ms;
        self.last_us = ts_us;
        self.bytes += u64::from(packet.size);
        self.ps.push(size);
        for (count, bit) in self.flags.iter_mut().zip(FLAG_BITS) {
            *count += u32::from(packet.tcp_flags & bit != 0);
        }
        self.header_bytes += u64::from(packet.transport_header_len);
        if self.init_window.is_none() {
            self.init_window = packet.tcp_window;
        }
        if packet.payload_len >= 1 {
            self.act_data_packets += 1;
        }
        self.min_header_len = Some(
            self.min_header_len
                .map_or(packet.transport_header_len, |m| {
                    m.min(packet.transport_header_len)
                }),
        );
        self.payload.push(f64::from(packet.payload_len));
    }

    pub fn duration_ms(&self) -> i64 {
        self.last_seen_ms - self.first_seen_ms
    }

    /// Packets with the named TCP flag (`"syn"`, `"psh"`, ...).
    pub fn flag(&self, name: &str) -> u64 {
        FLAG_NAMES
            .iter()
            .position(|n| n.strip_prefix('_') == Some(name))
            .map_or(0, |i| u64::from(self.flags[i]))
    }
}

/// One entry of the early-flow arrays: direction (0 src->dst, 1 dst->src), size, inter-arrival.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Splt {
    pub direction: i8,
    /// NFStream keeps these sizes in 32 bits too.
    pub ps: i32,
    pub piat_ms: i64,
}

/// A flow under construction.
#[derive(Debug, Clone)]
pub struct Flow {
    pub id: u64,
    pub src_ip: IpAddr,
    pub dst_ip: IpAddr,
    pub src_port: u16,
    pub dst_port: u16,
    pub protocol: u8,
    pub ip_version: u8,
    pub vlan_id: u16,
    pub src_mac: MacAddr,
    pub dst_mac: MacAddr,
    pub bidirectional: Side,
    pub src2dst: Side,
    pub dst2src: Side,
    pub splt: Vec<Splt>,
    splt_len: usize,
    pub active_us: Running,
    pub idle_us: Running,
    active_start_us: i64,
    active_end_us: i64,
    pub subflows: u64,
    fin_src: bool,
    fin_dst: bool,
    /// TCP termination seen (RST, or FIN both ways and then the last ACK).
    pub tcp_ended: bool,
}

impl Flow {
    /// A flow started by `packet`, whose sender becomes `src`.
    pub fn new(id: u64, packet: &FlowPacket, splt_len: usize) -> Flow {
        Flow {
            id,
            src_ip: packet.src_ip,
            dst_ip: packet.dst_ip,
            src_port: packet.src_port,
            dst_port: packet.dst_port,
            protocol: packet.protocol,
            ip_version: packet.ip_version,
            vlan_id: packet.vlan_id,
            src_mac: packet.src_mac,
            dst_mac: packet.dst_mac,
            bidirectional: Side::default(),
            src2dst: Side::default(),
            dst2src: Side::default(),
            splt: Vec::with_capacity(splt_len),
            splt_len,
            active_us: Running::default(),
            idle_us: Running::default(),
            active_start_us: 0,
            active_end_us: 0,
            subflows: 0,
            fin_src: false,
            fin_dst: false,
            tcp_ended: false,
        }
    }

    /// NFStream's direction rule: src->dst when both ports and both addresses match the first
    /// packet's, otherwise dst->src.
    pub fn is_src2dst(&self, packet: &FlowPacket) -> bool {
        packet.src_port == self.src_port
            && packet.dst_port == self.dst_port
            && packet.src_ip == self.src_ip
            && packet.dst_ip == self.dst_ip
    }

    /// Adds a packet at the (monotonic) meter time `ts_ns`.
    pub fn add(&mut self, packet: &FlowPacket, ts_ns: i64) {
        let ts_ms = ts_ns.div_euclid(1_000_000);
        let ts_us = ts_ns.div_euclid(1_000);
        let forward = self.is_src2dst(packet);
        let first = self.bidirectional.packets == 0;
        if first {
            self.active_start_us = ts_us;
            self.active_end_us = ts_us;
            self.subflows = 1;
        } else {
            let gap = ts_us - self.active_end_us;
            if gap > ACTIVITY_TIMEOUT_US {
                let active = self.active_end_us - self.active_start_us;
                if active > 0 {
                    self.active_us.push(active as f64);
                }
                self.idle_us.push(gap as f64);
                self.active_start_us = ts_us;
            }
            if gap > SUBFLOW_GAP_US {
                self.subflows += 1;
            }
            self.active_end_us = ts_us;
        }
        if self.splt.len() < self.splt_len {
            let piat = if first {
                0
            } else {
                ts_ms - self.bidirectional.last_seen_ms
            };
            self.splt.push(Splt {
                direction: if forward { 0 } else { 1 },
                ps: i32::try_from(packet.size).unwrap_or(i32::MAX),
                piat_ms: piat,
            });
        }
        self.bidirectional.add(packet, ts_ms, ts_us);
        if forward {
            let other = self.dst2src.bulk.last_us;
            self.src2dst.bulk.update(ts_us, packet.payload_len, other);
            self.src2dst.add(packet, ts_ms, ts_us);
        } else {
            let other = self.src2dst.bulk.last_us;
            self.dst2src.bulk.update(ts_us, packet.payload_len, other);
            self.dst2src.add(packet, ts_ms, ts_us);
        }
        self.track_tcp_end(packet, forward);
    }

    fn track_tcp_end(&mut self, packet: &FlowPacket, forward: bool) {
        if self.protocol != 6 {
            return;
        }
        let flags = packet.tcp_flags;
        if flags & tcp_flag::RST != 0 {
            self.tcp_ended = true;
            return;
        }
        let both_fins_before = self.fin_src && self.fin_dst;
        if flags & tcp_flag::FIN != 0 {
            if forward {
                self.fin_src = true;
            } else {
                self.fin_dst = true;
            }
        } else if both_fins_before && flags & tcp_flag::ACK != 0 {
            self.tcp_ended = true;
        }
    }

    /// Closes the last active period (CICFlowMeter's `endActiveIdleTime`).
    pub fn close_activity(&mut self) {
        let active = self.active_end_us - self.active_start_us;
        if active > 0 {
            self.active_us.push(active as f64);
        }
        self.active_start_us = self.active_end_us;
    }

    /// Length of the early-flow arrays (`--splt`).
    pub fn splt_len(&self) -> usize {
        self.splt_len
    }

    /// Heap bytes beyond the struct (the early-flow array).
    pub fn heap_bytes(&self) -> usize {
        self.splt.capacity() * std::mem::size_of::<Splt>()
    }
}

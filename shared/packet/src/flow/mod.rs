//! Bidirectional flows: decoded [`Frame`](crate::frame::Frame)s folded into flow records with
//! NFStream's columns (same names, units and semantics) and a CICFlowMeter-style set.
//! Pure: no I/O, no clock, no logging, no tokio. Time comes from packet timestamps and, in live
//! capture, from [`FlowTable::tick`]. docs/flows.md documents every column.
//!
//! * Which packets: every frame with a decoded IPv4/IPv6 header, except non-first fragments and
//!   captures under 28 bytes (both ignored by NFStream too); each skip is counted by reason.
//! * Key: (VLAN id, IP version, protocol, the two (address, port) ends in either order). Ports
//!   are the TCP/UDP ports, 0 for every other protocol (ICMP included), as in NFStream.
//! * Direction: the first packet's sender is `src`; a packet is src->dst when its addresses
//!   and ports equal the first packet's, dst->src otherwise.
//! * Bytes (`*_bytes`, `*_ps`): the packet's length on the wire at the link layer, NFStream's
//!   default `accounting_mode=0`.
//! * Time: milliseconds (`floor(µs / 1000)`), never going backwards: a packet older than the
//!   latest one counts at the latest time, as NFStream does.

mod key;
mod packet;
mod record;
mod state;
mod stats;
mod table;

pub use key::FlowKey;
pub use packet::{FlowPacket, MIN_CAPTURED_LEN, SkipReason};
pub use record::{Cell, FlowRecord, column_names};
pub use state::{Flow, Side, Splt};
pub use stats::Running;
pub use table::{FlowCounters, FlowTable};

use std::sync::Arc;

/// Flow settings; the defaults are NFStream's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlowConfig {
    /// A flow with no packet for this long ends (`idle`).
    pub idle_timeout_ms: i64,
    /// A flow this old ends at its next packet (`active`).
    pub active_timeout_ms: i64,
    /// Length of the early-flow arrays `splt_*` (0: empty arrays).
    pub splt: usize,
    /// Table size bound; when full, the least recently seen flow is emitted as `evicted`.
    pub max_flows: usize,
    /// End TCP flows at RST, or at the last ACK after FIN both ways (`tcp_end`).
    pub tcp_end: bool,
    /// Agent id written into every record.
    pub agent: Arc<str>,
}

impl Default for FlowConfig {
    fn default() -> Self {
        FlowConfig {
            idle_timeout_ms: 120_000,
            active_timeout_ms: 1_800_000,
            splt: 10,
            max_flows: 1_000_000,
            tcp_end: false,
            agent: Arc::from("flows"),
        }
    }
}

/// Why a flow record was emitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ExpirationReason {
    Idle,
    Active,
    TcpEnd,
    EndOfCapture,
    Evicted,
}

impl ExpirationReason {
    pub const ALL: [ExpirationReason; 5] = [
        ExpirationReason::Idle,
        ExpirationReason::Active,
        ExpirationReason::TcpEnd,
        ExpirationReason::EndOfCapture,
        ExpirationReason::Evicted,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ExpirationReason::Idle => "idle",
            ExpirationReason::Active => "active",
            ExpirationReason::TcpEnd => "tcp_end",
            ExpirationReason::EndOfCapture => "end_of_capture",
            ExpirationReason::Evicted => "evicted",
        }
    }

    /// NFStream's `expiration_id`: 0 idle (and the end of the capture), 1 active, -1 custom
    /// (here: TCP termination). An evicted flow is reported as idle there, like NFStream's cache
    /// flushes.
    pub fn nfstream_id(self) -> i64 {
        match self {
            ExpirationReason::Active => 1,
            ExpirationReason::TcpEnd => -1,
            _ => 0,
        }
    }
}

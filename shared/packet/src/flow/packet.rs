//! What the flow engine needs from one decoded [`Frame`], and why a frame makes no flow packet.

use std::net::IpAddr;

use crate::frame::{Frame, MacAddr};

/// NFStream ignores captures shorter than this (a minimal IPv4 header plus a UDP header).
pub const MIN_CAPTURED_LEN: u32 = 28;

/// TCP flag bits as in [`crate::frame::Tcp::flags`].
pub(crate) mod tcp_flag {
    pub const FIN: u16 = 0x01;
    pub const SYN: u16 = 0x02;
    pub const RST: u16 = 0x04;
    pub const PSH: u16 = 0x08;
    pub const ACK: u16 = 0x10;
    pub const URG: u16 = 0x20;
    pub const ECE: u16 = 0x40;
    pub const CWR: u16 = 0x80;
}

/// Why a frame is not part of any flow. Each is counted, never dropped silently.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SkipReason {
    /// No IPv4/IPv6 header was decoded (ARP, unsupported EtherType, broken link header).
    NotIp,
    /// A non-first IP fragment: no transport header, NFStream ignores it too.
    Fragment,
    /// Fewer than [`MIN_CAPTURED_LEN`] bytes captured (NFStream's lower bound).
    TooShort,
}

impl SkipReason {
    pub const ALL: [SkipReason; 3] = [
        SkipReason::NotIp,
        SkipReason::Fragment,
        SkipReason::TooShort,
    ];

    /// Stable snake_case name for summaries and metric labels.
    pub fn as_str(self) -> &'static str {
        match self {
            SkipReason::NotIp => "not_ip",
            SkipReason::Fragment => "fragment",
            SkipReason::TooShort => "too_short",
        }
    }
}

/// The fields of one packet that flows use.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FlowPacket {
    /// Capture time in ns since the Unix epoch.
    pub ts_ns: i64,
    /// Packet size counted in `*_bytes` and `*_ps`: the length on the wire at the link layer
    /// (NFStream's default `accounting_mode=0`).
    pub size: u32,
    pub ip_version: u8,
    pub src_ip: IpAddr,
    pub dst_ip: IpAddr,
    /// TCP/UDP ports; 0 for every other protocol (ICMP included), as in NFStream.
    pub src_port: u16,
    pub dst_port: u16,
    /// IP protocol (IPv6: the upper-layer protocol after the extension headers).
    pub protocol: u8,
    /// Innermost VLAN id, 0 when untagged.
    pub vlan_id: u16,
    /// Ethernet addresses; zero for link types without them (raw IP, SLL, null).
    pub src_mac: MacAddr,
    pub dst_mac: MacAddr,
    /// TCP flags (0 when not TCP).
    pub tcp_flags: u16,
    /// TCP window field, when the packet is TCP.
    pub tcp_window: Option<u16>,
    /// Transport header length in bytes (TCP data offset, 8 for UDP/ICMP, 0 otherwise).
    pub transport_header_len: u32,
    /// Application payload bytes present in the capture.
    pub payload_len: u32,
}

impl FlowPacket {
    /// The flow view of a decoded frame, or why it has none.
    pub fn from_frame(frame: &Frame) -> Result<FlowPacket, SkipReason> {
        let (ip_version, src_ip, dst_ip, protocol) = if let Some(ip) = &frame.ipv4 {
            if ip.frag != 0 {
                return Err(SkipReason::Fragment);
            }
            (4, IpAddr::V4(ip.src), IpAddr::V4(ip.dst), ip.proto)
        } else if let Some(ip) = &frame.ipv6 {
            if ip.frag.is_some_and(|f| f.offset != 0) {
                return Err(SkipReason::Fragment);
            }
            (6, IpAddr::V6(ip.src), IpAddr::V6(ip.dst), ip.upper)
        } else {
            return Err(SkipReason::NotIp);
        };
        if frame.cap_len < MIN_CAPTURED_LEN {
            return Err(SkipReason::TooShort);
        }
        let (src_port, dst_port, tcp_flags, tcp_window, transport_header_len) =
            if let Some(tcp) = &frame.tcp {
                (
                    tcp.sport,
                    tcp.dport,
                    tcp.flags,
                    Some(tcp.window),
                    u32::from(tcp.dataofs) * 4,
                )
            } else if let Some(udp) = &frame.udp {
                (udp.sport, udp.dport, 0, None, 8)
            } else if frame.icmp.is_some() || frame.icmpv6.is_some() {
                (0, 0, 0, None, 8)
            } else {
                (0, 0, 0, None, 0)
            };
        let (src_mac, dst_mac) = frame.eth.map(|eth| (eth.src, eth.dst)).unwrap_or_default();
        Ok(FlowPacket {
            ts_ns: frame.ts_ns,
            size: frame.wire_len,
            ip_version,
            src_ip,
            dst_ip,
            src_port,
            dst_port,
            protocol,
            vlan_id: frame.vlan.last().map_or(0, |tag| tag.id),
            src_mac,
            dst_mac,
            tcp_flags,
            tcp_window,
            transport_header_len,
            payload_len: frame.payload.as_ref().map_or(0, |p| p.len),
        })
    }

    /// Capture time in whole milliseconds (NFStream's clock: floor of the µs timestamp / 1000).
    pub fn ts_ms(&self) -> i64 {
        self.ts_ns.div_euclid(1_000_000)
    }
}

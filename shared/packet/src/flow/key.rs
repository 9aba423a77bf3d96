//! The direction-free flow key.

use std::net::IpAddr;

use super::packet::FlowPacket;

/// One end of a flow: address (IPv4 mapped into 16 bytes) and port.
type Endpoint = ([u8; 16], u16);

/// (VLAN id, IP version, protocol, the two endpoints in a fixed order): both directions of a
/// conversation give the same key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FlowKey {
    vlan_id: u16,
    ip_version: u8,
    protocol: u8,
    low: Endpoint,
    high: Endpoint,
}

fn octets(ip: IpAddr) -> [u8; 16] {
    match ip {
        IpAddr::V4(v4) => v4.to_ipv6_mapped().octets(),
        IpAddr::V6(v6) => v6.octets(),
    }
}

impl FlowKey {
    pub fn of(packet: &FlowPacket) -> FlowKey {
        let a = (octets(packet.src_ip), packet.src_port);
        let b = (octets(packet.dst_ip), packet.dst_port);
        let (low, high) = if a <= b { (a, b) } else { (b, a) };
        FlowKey {
            vlan_id: packet.vlan_id,
            ip_version: packet.ip_version,
            protocol: packet.protocol,
            low,
            high,
        }
    }
}

//! Link layers (Ethernet, Linux SLL/SLL2, BSD null/loop, raw IP), VLAN tags, MPLS label stacks
//! and the 802.2 LLC header of 802.3 frames.

use etherparse::Ethernet2HeaderSlice;

use super::bytes::{head, hex, tail, u8_at, u16_at, u32_at};
use super::{Ctx, arp, ip, llc};
use crate::frame::{DecodeIssue, Ethernet, LinuxSll, MAX_8023_LENGTH, MacAddr, MplsLabel, VlanTag};
use crate::link::LinkType;

pub(crate) const ETHERTYPE_IPV4: u16 = 0x0800;
pub(crate) const ETHERTYPE_ARP: u16 = 0x0806;
pub(crate) const ETHERTYPE_RARP: u16 = 0x8035;
pub(crate) const ETHERTYPE_IPV6: u16 = 0x86dd;
/// MPLS unicast and multicast.
const ETHERTYPE_MPLS: [u16; 2] = [0x8847, 0x8848];
/// Reserved labels that say which IP follows the bottom of the stack (RFC 3032).
const MPLS_IPV4_EXPLICIT_NULL: u32 = 0;
const MPLS_IPV6_EXPLICIT_NULL: u32 = 2;
/// 802.1Q, 802.1ad (QinQ) and the legacy pre-standard QinQ TPID.
const VLAN_TPIDS: [u16; 3] = [0x8100, 0x88a8, 0x9100];

const SLL_LEN: usize = 16;
const SLL2_LEN: usize = 20;
/// Both SLL versions reserve 8 bytes for the link-layer address.
const SLL_ADDR_MAX: usize = 8;

/// Decodes the link header named by `link`, then everything inside it.
pub(crate) fn decode_link(ctx: &mut Ctx, link: LinkType, data: &[u8]) {
    match link.0 {
        1 => ethernet(ctx, data),
        113 => sll(ctx, data),
        276 => sll2(ctx, data),
        0 => null(ctx, data, false),
        108 => null(ctx, data, true),
        12 | 14 | 101 => ip::by_version(ctx, data),
        228 => ip::ipv4(ctx, data),
        229 => ip::ipv6(ctx, data),
        _ => ctx.issue(DecodeIssue::UnsupportedEtherType),
    }
}

fn ethernet(ctx: &mut Ctx, data: &[u8]) {
    let Ok(header) = Ethernet2HeaderSlice::from_slice(data) else {
        ctx.issue(DecodeIssue::TruncatedLink);
        return;
    };
    let ether_type = header.ether_type().0;
    ctx.frame.eth = Some(Ethernet {
        src: MacAddr(header.source()),
        dst: MacAddr(header.destination()),
        ether_type,
    });
    ether_payload(ctx, ether_type, tail(data, header.slice().len()));
}

/// Linux cooked capture v1: pkttype, hatype, halen, 8-byte address, protocol.
fn sll(ctx: &mut Ctx, data: &[u8]) {
    let (Some(pkttype), Some(hatype), Some(halen), Some(protocol)) = (
        u16_at(data, 0),
        u16_at(data, 2),
        u16_at(data, 4),
        u16_at(data, 14),
    ) else {
        ctx.issue(DecodeIssue::TruncatedLink);
        return;
    };
    let addr = sll_addr(data, 6, usize::from(halen));
    ctx.frame.sll = Some(LinuxSll {
        version: 1,
        pkttype,
        hatype,
        addr,
        protocol,
        ifindex: None,
    });
    ether_payload(ctx, protocol, tail(data, SLL_LEN));
}

/// Linux cooked capture v2: protocol, reserved, ifindex, hatype, pkttype, halen, address.
fn sll2(ctx: &mut Ctx, data: &[u8]) {
    let (Some(protocol), Some(ifindex), Some(hatype), Some(pkttype), Some(halen)) = (
        u16_at(data, 0),
        u32_at(data, 4),
        u16_at(data, 8),
        u8_at(data, 10),
        u8_at(data, 11),
    ) else {
        ctx.issue(DecodeIssue::TruncatedLink);
        return;
    };
    if data.len() < SLL2_LEN {
        ctx.issue(DecodeIssue::TruncatedLink);
        return;
    }
    let addr = sll_addr(data, 12, usize::from(halen));
    ctx.frame.sll = Some(LinuxSll {
        version: 2,
        pkttype: u16::from(pkttype),
        hatype,
        addr,
        protocol,
        ifindex: Some(ifindex),
    });
    ether_payload(ctx, protocol, tail(data, SLL2_LEN));
}

fn sll_addr(data: &[u8], at: usize, halen: usize) -> String {
    hex(head(tail(data, at), halen.min(SLL_ADDR_MAX)))
}

/// BSD loopback: a 4-byte address family, host byte order for NULL (0), network order for
/// LOOP (108). For NULL the capturing host's order is unknown, so (as libpcap and Wireshark
/// do) a value with its upper 16 bits set is taken as byte-swapped.
fn null(ctx: &mut Ctx, data: &[u8], network_order: bool) {
    let Some(raw) = u32_at(data, 0) else {
        ctx.issue(DecodeIssue::TruncatedLink);
        return;
    };
    let family = if network_order || raw & 0xffff_0000 == 0 {
        raw
    } else {
        raw.swap_bytes()
    };
    let rest = tail(data, 4);
    match family {
        2 => ip::ipv4(ctx, rest),
        // AF_INET6 is 24 (NetBSD/OpenBSD), 28 (FreeBSD), 30 (macOS).
        24 | 28 | 30 => ip::ipv6(ctx, rest),
        _ => ctx.issue(DecodeIssue::UnsupportedEtherType),
    }
}

/// Everything after an EtherType: VLAN tags (any number, outermost first), then ARP, IP, an
/// MPLS label stack, or (Ethernet only: a length, not a type) an 802.2 LLC header.
pub(crate) fn ether_payload(ctx: &mut Ctx, mut ether_type: u16, mut rest: &[u8]) {
    loop {
        match ether_type {
            // Only on Ethernet: the SLL protocol field has its own small values (4 = 802.2).
            len if len <= MAX_8023_LENGTH && ctx.frame.eth.is_some() => {
                return llc::decode(ctx, len, rest);
            }
            t if VLAN_TPIDS.contains(&t) => {
                let (Some(tci), Some(next)) = (u16_at(rest, 0), u16_at(rest, 2)) else {
                    ctx.issue(DecodeIssue::TruncatedVlan);
                    return;
                };
                ctx.frame.vlan.push(VlanTag {
                    tpid: t,
                    id: tci & 0x0fff,
                    pcp: (tci >> 13) as u8,
                    dei: tci & 0x1000 != 0,
                    ether_type: next,
                });
                ether_type = next;
                rest = tail(rest, 4);
            }
            ETHERTYPE_IPV4 => return ip::ipv4(ctx, rest),
            ETHERTYPE_IPV6 => return ip::ipv6(ctx, rest),
            ETHERTYPE_ARP | ETHERTYPE_RARP => return arp::decode(ctx, rest),
            t if ETHERTYPE_MPLS.contains(&t) => return mpls(ctx, rest),
            _ => {
                ctx.issue(DecodeIssue::UnsupportedEtherType);
                return;
            }
        }
    }
}

/// An MPLS label stack, outermost entry first, then what follows the bottom of the stack.
///
/// MPLS does not say what it carries. IPv4 or IPv6 is taken from an explicit-null label or
/// else from the version nibble (4 or 6), as Wireshark does; anything else (pseudowires, with
/// or without a control word) is left undecoded, because an Ethernet pseudowire without a
/// control word cannot be told apart from IP reliably (see docs/decoding.md).
fn mpls(ctx: &mut Ctx, mut rest: &[u8]) {
    let bottom_label = loop {
        let Some(entry) = u32_at(rest, 0) else {
            ctx.issue(DecodeIssue::TruncatedLink);
            return;
        };
        let label = MplsLabel {
            label: entry >> 12,
            tc: ((entry >> 9) & 0x7) as u8,
            bottom: entry & 0x100 != 0,
            ttl: (entry & 0xff) as u8,
        };
        ctx.frame.mpls.push(label);
        rest = tail(rest, 4);
        if label.bottom {
            break label.label;
        }
    };
    // The explicit-null labels decide first, then the nibble.
    match (bottom_label, rest.first().map(|b| b >> 4)) {
        (MPLS_IPV4_EXPLICIT_NULL, _) => ip::ipv4(ctx, rest),
        (MPLS_IPV6_EXPLICIT_NULL, _) => ip::ipv6(ctx, rest),
        (_, Some(4)) => ip::ipv4(ctx, rest),
        (_, Some(6)) => ip::ipv6(ctx, rest),
        (_, None) => ctx.issue(DecodeIssue::TruncatedIp),
        _ => ctx.issue(DecodeIssue::UnsupportedEtherType),
    }
}

//! TCP, UDP, ICMP and ICMPv6 headers, and the hand-off to DNS (ports 53, 5353 and 5355).

use super::bytes::{array_at, head, tail, u8_at, u16_at, u32_at};
use super::payload::set_payload;
use super::{Ctx, dns, tcp_options};
use crate::frame::{DecodeIssue, Icmp, Icmpv6, Tcp, TcpOptions, Udp};

const ICMP: u8 = 1;
const TCP: u8 = 6;
const UDP: u8 = 17;
const ICMPV6: u8 = 58;
const NO_NEXT_HEADER: u8 = 59;

const TCP_MIN_LEN: usize = 20;
const UDP_LEN: usize = 8;
/// ICMP and ICMPv6 messages start with 8 bytes (type, code, checksum, 4 type-specific bytes).
const ICMP_HEADER_LEN: usize = 8;
/// DNS, mDNS and LLMNR (RFC 4795: DNS's message format on port 5355), as Wireshark decodes them.
const DNS_PORTS: [u16; 3] = [53, 5353, 5355];

/// Decodes the transport header of a first (or only) fragment.
/// `declared` is the IP payload length the IP header claims (capture may hold less);
/// `more_fragments` says the datagram continues in later fragments.
pub(crate) fn decode(
    ctx: &mut Ctx,
    proto: u8,
    ipv6: bool,
    bytes: &[u8],
    declared: Option<usize>,
    more_fragments: bool,
) {
    match proto {
        TCP => tcp(ctx, bytes, more_fragments),
        UDP => udp(ctx, bytes, declared, more_fragments),
        ICMP if !ipv6 => icmp(ctx, bytes),
        ICMPV6 if ipv6 => icmpv6(ctx, bytes),
        NO_NEXT_HEADER if ipv6 => set_payload(ctx, bytes),
        _ => {
            ctx.issue(DecodeIssue::UnsupportedIpProto);
            set_payload(ctx, bytes);
        }
    }
}

fn tcp(ctx: &mut Ctx, bytes: &[u8], more_fragments: bool) {
    let (
        Some(sport),
        Some(dport),
        Some(seq),
        Some(ack),
        Some(offset_byte),
        Some(flag_byte),
        Some(window),
        Some(chksum),
        Some(urgptr),
    ) = (
        u16_at(bytes, 0),
        u16_at(bytes, 2),
        u32_at(bytes, 4),
        u32_at(bytes, 8),
        u8_at(bytes, 12),
        u8_at(bytes, 13),
        u16_at(bytes, 14),
        u16_at(bytes, 16),
        u16_at(bytes, 18),
    )
    else {
        ctx.issue(DecodeIssue::TruncatedTransport);
        set_payload(ctx, bytes);
        return;
    };
    let dataofs = offset_byte >> 4;
    let header_len = usize::from(dataofs) * 4;
    let mut tcp = Tcp {
        sport,
        dport,
        seq,
        ack,
        dataofs,
        flags: (u16::from(offset_byte & 1) << 8) | u16::from(flag_byte),
        window,
        chksum,
        urgptr,
        opts: TcpOptions::default(),
    };
    if header_len < TCP_MIN_LEN {
        // The fixed fields are real; the header length is not, so no options and no payload.
        ctx.issue(DecodeIssue::MalformedTransport);
        ctx.frame.tcp = Some(tcp);
        set_payload(ctx, tail(bytes, TCP_MIN_LEN));
        return;
    }
    let truncated = header_len > bytes.len();
    if truncated {
        ctx.issue(DecodeIssue::TruncatedTransport);
    }
    let option_bytes = bytes.get(TCP_MIN_LEN..header_len.min(bytes.len()));
    let outcome = tcp_options::parse(option_bytes.unwrap_or_default(), &mut tcp.opts);
    // An option cut by the end of a truncated capture is already reported as truncation.
    let overrun_by_capture = truncated && outcome == tcp_options::Outcome::Overrun;
    if outcome != tcp_options::Outcome::Ok && !overrun_by_capture {
        ctx.issue(DecodeIssue::MalformedTcpOption);
    }
    ctx.frame.tcp = Some(tcp);
    let payload = tail(bytes, header_len);
    set_payload(ctx, payload);
    if is_dns(sport, dport) && !payload.is_empty() {
        // DNS over TCP: a 2-byte length prefix, then the message.
        let message = match u16_at(payload, 0) {
            Some(len) => head(tail(payload, 2), usize::from(len)),
            None => &[][..],
        };
        dns::decode(ctx, message, more_fragments);
    }
}

fn udp(ctx: &mut Ctx, bytes: &[u8], declared: Option<usize>, more_fragments: bool) {
    let (Some(sport), Some(dport), Some(len), Some(chksum)) = (
        u16_at(bytes, 0),
        u16_at(bytes, 2),
        u16_at(bytes, 4),
        u16_at(bytes, 6),
    ) else {
        ctx.issue(DecodeIssue::TruncatedTransport);
        set_payload(ctx, bytes);
        return;
    };
    ctx.frame.udp = Some(Udp {
        sport,
        dport,
        len,
        chksum,
    });
    let udp_len = usize::from(len);
    // A first fragment holds only part of the datagram, so its UDP length may be larger.
    let too_long = !more_fragments && declared.is_some_and(|d| udp_len > d);
    // Length 0 is legal for IPv6 jumbograms only; treat it as "the IP length" and move on.
    if (udp_len < UDP_LEN && udp_len != 0) || too_long {
        ctx.issue(DecodeIssue::MalformedTransport);
    }
    let payload = tail(bytes, UDP_LEN);
    set_payload(ctx, payload);
    if is_dns(sport, dport) && !payload.is_empty() {
        let message = if udp_len >= UDP_LEN {
            head(payload, udp_len - UDP_LEN)
        } else {
            payload
        };
        dns::decode(ctx, message, more_fragments);
    }
}

fn is_dns(sport: u16, dport: u16) -> bool {
    DNS_PORTS.contains(&sport) || DNS_PORTS.contains(&dport)
}

/// ICMP types whose bytes 4..8 are identifier and sequence number: echo reply/request,
/// timestamp request/reply, information request/reply, address-mask request/reply.
fn icmp_has_id(icmp_type: u8) -> bool {
    matches!(icmp_type, 0 | 8 | 13..=18)
}
const ICMP_REDIRECT: u8 = 5;
const ICMP_PARAMETER_PROBLEM: u8 = 12;

fn icmp(ctx: &mut Ctx, bytes: &[u8]) {
    let (Some(icmp_type), Some(code), Some(chksum)) =
        (u8_at(bytes, 0), u8_at(bytes, 1), u16_at(bytes, 2))
    else {
        ctx.issue(DecodeIssue::TruncatedTransport);
        set_payload(ctx, bytes);
        return;
    };
    let mut icmp = Icmp {
        icmp_type,
        code,
        chksum,
        id: None,
        seq: None,
        gw: None,
        ptr: None,
        unused: None,
    };
    if icmp_has_id(icmp_type) {
        icmp.id = u16_at(bytes, 4);
        icmp.seq = u16_at(bytes, 6);
    } else if icmp_type == ICMP_REDIRECT {
        icmp.gw = array_at::<4>(bytes, 4).map(std::net::Ipv4Addr::from);
    } else if icmp_type == ICMP_PARAMETER_PROBLEM {
        icmp.ptr = u8_at(bytes, 4);
    } else {
        icmp.unused = u32_at(bytes, 4);
    }
    if bytes.len() < ICMP_HEADER_LEN {
        ctx.issue(DecodeIssue::TruncatedTransport);
    }
    ctx.frame.icmp = Some(icmp);
    set_payload(ctx, tail(bytes, ICMP_HEADER_LEN));
}

const ICMPV6_ECHO_REQUEST: u8 = 128;
const ICMPV6_ECHO_REPLY: u8 = 129;

fn icmpv6(ctx: &mut Ctx, bytes: &[u8]) {
    let (Some(icmp_type), Some(code), Some(chksum)) =
        (u8_at(bytes, 0), u8_at(bytes, 1), u16_at(bytes, 2))
    else {
        ctx.issue(DecodeIssue::TruncatedTransport);
        set_payload(ctx, bytes);
        return;
    };
    let echo = matches!(icmp_type, ICMPV6_ECHO_REQUEST | ICMPV6_ECHO_REPLY);
    let (id, seq) = if echo {
        (u16_at(bytes, 4), u16_at(bytes, 6))
    } else {
        (None, None)
    };
    if bytes.len() < ICMP_HEADER_LEN {
        ctx.issue(DecodeIssue::TruncatedTransport);
    }
    ctx.frame.icmpv6 = Some(Icmpv6 {
        icmp_type,
        code,
        chksum,
        id,
        seq,
    });
    set_payload(ctx, tail(bytes, ICMP_HEADER_LEN));
}

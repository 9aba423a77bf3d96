//! IPv4 and IPv6 (with the whole extension-header chain).
//!
//! Length handling follows etherparse's lax slicing: the datagram ends at the length the
//! header declares, or at the end of the capture when that is shorter (snaplen cut). Bytes
//! after the declared end are link padding, not payload.

use etherparse::err::{ipv4, ipv6};
use etherparse::{Ipv4HeaderSlice, Ipv6HeaderSlice};

use super::bytes::{hex, tail, u8_at, u16_at, u32_at};
use super::payload::{set_padding, set_payload};
use super::{Ctx, transport};
use crate::frame::{DecodeIssue, Ipv4, Ipv6, Ipv6Fragment};

const IPV6_HEADER_LEN: usize = 40;
const HOP_BY_HOP: u8 = 0;
const ROUTING: u8 = 43;
const FRAGMENT: u8 = 44;
const AUTH: u8 = 51;
const DEST_OPTS: u8 = 60;
/// Mobility, HIP, Shim6 and the two experimental numbers use the generic extension layout.
const MOBILITY: u8 = 135;
const HIP: u8 = 139;
const SHIM6: u8 = 140;
const EXPERIMENT1: u8 = 253;
const EXPERIMENT2: u8 = 254;

/// Raw IP link types: the version nibble says which IP it is.
pub(crate) fn by_version(ctx: &mut Ctx, bytes: &[u8]) {
    match bytes.first().map(|b| b >> 4) {
        Some(4) => ipv4(ctx, bytes),
        Some(6) => ipv6(ctx, bytes),
        Some(_) => ctx.issue(DecodeIssue::MalformedIp),
        None => ctx.issue(DecodeIssue::TruncatedIp),
    }
}

/// Where the datagram ends inside `available` bytes, given the declared length.
fn datagram_end(ctx: &mut Ctx, declared: usize, header_len: usize, available: usize) -> usize {
    if declared < header_len {
        ctx.issue(DecodeIssue::MalformedIp);
        available
    } else if declared > available {
        // A snaplen cut is normal; a complete capture shorter than the header says is a lie.
        if ctx.whole_packet {
            ctx.issue(DecodeIssue::MalformedIp);
        }
        available
    } else {
        declared
    }
}

/// The version nibble must match the layer below (link type, EtherType, address family).
fn version_matches(ctx: &mut Ctx, bytes: &[u8], version: u8) -> bool {
    match bytes.first() {
        Some(first) if first >> 4 == version => true,
        Some(_) => {
            ctx.issue(DecodeIssue::MalformedIp);
            false
        }
        None => {
            ctx.issue(DecodeIssue::TruncatedIp);
            false
        }
    }
}

pub(crate) fn ipv4(ctx: &mut Ctx, bytes: &[u8]) {
    if !version_matches(ctx, bytes, 4) {
        return;
    }
    let header = match Ipv4HeaderSlice::from_slice(bytes) {
        Ok(header) => header,
        Err(ipv4::HeaderSliceError::Len(_)) => return ctx.issue(DecodeIssue::TruncatedIp),
        Err(ipv4::HeaderSliceError::Content(_)) => return ctx.issue(DecodeIssue::MalformedIp),
    };
    let raw = header.slice();
    let header_len = raw.len();
    let total_len = header.total_len();
    let end = datagram_end(ctx, usize::from(total_len), header_len, bytes.len());
    let flags_frag = u16_at(raw, 6).unwrap_or_default();
    let frag = flags_frag & 0x1fff;
    let more_fragments = flags_frag & 0x2000 != 0;
    let proto = header.protocol().0;
    let options = header.options();
    ctx.frame.ipv4 = Some(Ipv4 {
        ihl: header.ihl(),
        tos: u8_at(raw, 1).unwrap_or_default(),
        len: total_len,
        id: header.identification(),
        flags: (flags_frag >> 13) as u8,
        frag,
        ttl: header.ttl(),
        proto,
        chksum: header.header_checksum(),
        src: header.source_addr(),
        dst: header.destination_addr(),
        options: (!options.is_empty()).then(|| hex(options)),
    });
    let datagram = bytes.get(header_len..end).unwrap_or_default();
    set_padding(ctx, tail(bytes, end));
    if frag != 0 {
        ctx.issue(DecodeIssue::Fragment);
        set_payload(ctx, datagram);
        return;
    }
    let declared = usize::from(total_len).checked_sub(header_len);
    transport::decode(ctx, proto, false, datagram, declared, more_fragments);
}

pub(crate) fn ipv6(ctx: &mut Ctx, bytes: &[u8]) {
    if !version_matches(ctx, bytes, 6) {
        return;
    }
    let header = match Ipv6HeaderSlice::from_slice(bytes) {
        Ok(header) => header,
        Err(ipv6::HeaderSliceError::Len(_)) => return ctx.issue(DecodeIssue::TruncatedIp),
        Err(ipv6::HeaderSliceError::Content(_)) => return ctx.issue(DecodeIssue::MalformedIp),
    };
    let plen = header.payload_length();
    let nh = header.next_header().0;
    // Payload length 0 with a hop-by-hop header is a jumbogram: the capture gives the length.
    let end = if plen == 0 && nh == HOP_BY_HOP {
        bytes.len()
    } else {
        datagram_end(
            ctx,
            IPV6_HEADER_LEN + usize::from(plen),
            IPV6_HEADER_LEN,
            bytes.len(),
        )
    };
    let body = bytes.get(IPV6_HEADER_LEN..end).unwrap_or_default();
    let chain = walk_extensions(nh, body);
    let raw = header.slice();
    let first_word = u32_at(raw, 0).unwrap_or_default();
    ctx.frame.ipv6 = Some(Ipv6 {
        tc: ((first_word >> 20) & 0xff) as u8,
        fl: first_word & 0x000f_ffff,
        plen,
        nh,
        hlim: header.hop_limit(),
        src: header.source_addr(),
        dst: header.destination_addr(),
        ext: chain.ext,
        upper: chain.upper,
        frag: chain.frag,
    });
    set_padding(ctx, tail(bytes, end));
    let upper_bytes = tail(body, chain.upper_offset);
    if chain.malformed {
        ctx.issue(DecodeIssue::MalformedIpv6Ext);
        set_payload(ctx, upper_bytes);
        return;
    }
    if chain.later_fragment {
        ctx.issue(DecodeIssue::Fragment);
        set_payload(ctx, upper_bytes);
        return;
    }
    let declared = usize::from(plen).checked_sub(chain.upper_offset);
    let more_fragments = chain.frag.is_some_and(|f| f.more);
    transport::decode(
        ctx,
        chain.upper,
        true,
        upper_bytes,
        declared,
        more_fragments,
    );
}

/// The extension headers of one IPv6 packet.
struct Chain {
    ext: Vec<u8>,
    upper: u8,
    /// Offset of the upper-layer header inside the IPv6 payload.
    upper_offset: usize,
    /// The first fragment header.
    frag: Option<Ipv6Fragment>,
    /// A fragment header with a non-zero offset: no upper-layer header here.
    later_fragment: bool,
    /// An extension header is cut short or runs past the payload; `upper` is its number.
    malformed: bool,
}

/// Walks every extension header to the upper layer. Each header is at least 8 bytes long,
/// so the walk ends after at most `body.len() / 8` steps.
fn walk_extensions(first: u8, body: &[u8]) -> Chain {
    let mut chain = Chain {
        ext: Vec::new(),
        upper: first,
        upper_offset: 0,
        frag: None,
        later_fragment: false,
        malformed: false,
    };
    let mut next = first;
    let mut offset = 0usize;
    loop {
        let (Some(nh), Some(len_field)) = (u8_at(body, offset), u8_at(body, offset + 1)) else {
            if is_extension(next) {
                chain.malformed = true;
            }
            break;
        };
        let size = match next {
            HOP_BY_HOP | ROUTING | DEST_OPTS | MOBILITY | HIP | SHIM6 | EXPERIMENT1
            | EXPERIMENT2 => (usize::from(len_field) + 1) * 8,
            FRAGMENT => 8,
            AUTH => (usize::from(len_field) + 2) * 4,
            _ => break,
        };
        if offset + size > body.len() {
            chain.malformed = true;
            break;
        }
        if next == FRAGMENT {
            let field = u16_at(body, offset + 2).unwrap_or_default();
            let fragment = Ipv6Fragment {
                offset: field >> 3,
                more: field & 1 != 0,
                id: u32_at(body, offset + 4).unwrap_or_default(),
            };
            chain.later_fragment |= fragment.offset != 0;
            chain.frag.get_or_insert(fragment);
        }
        chain.ext.push(next);
        next = nh;
        offset += size;
    }
    chain.upper = next;
    chain.upper_offset = offset;
    chain
}

fn is_extension(proto: u8) -> bool {
    matches!(
        proto,
        HOP_BY_HOP
            | ROUTING
            | FRAGMENT
            | AUTH
            | DEST_OPTS
            | MOBILITY
            | HIP
            | SHIM6
            | EXPERIMENT1
            | EXPERIMENT2
    )
}

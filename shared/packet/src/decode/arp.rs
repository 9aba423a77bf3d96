//! ARP / RARP for any hardware and protocol address sizes.

use std::fmt::Write;

use super::bytes::{hex, tail, u8_at, u16_at};
use super::payload::set_padding;
use super::{Ctx, link};
use crate::frame::{Arp, DecodeIssue};

const FIXED_LEN: usize = 8;
const HW_ETHERNET: u16 = 1;

pub(crate) fn decode(ctx: &mut Ctx, bytes: &[u8]) {
    let (Some(hwtype), Some(ptype), Some(hwlen), Some(plen), Some(op)) = (
        u16_at(bytes, 0),
        u16_at(bytes, 2),
        u8_at(bytes, 4),
        u8_at(bytes, 5),
        u16_at(bytes, 6),
    ) else {
        ctx.issue(DecodeIssue::MalformedArp);
        return;
    };
    let (hw, p) = (usize::from(hwlen), usize::from(plen));
    let total = FIXED_LEN + 2 * hw + 2 * p;
    let Some(body) = bytes.get(FIXED_LEN..total) else {
        ctx.issue(DecodeIssue::MalformedArp);
        return;
    };
    let Some((hwsrc, rest)) = body.split_at_checked(hw) else {
        return;
    };
    let Some((psrc, rest)) = rest.split_at_checked(p) else {
        return;
    };
    let Some((hwdst, pdst)) = rest.split_at_checked(hw) else {
        return;
    };
    // Text only for the one pair everybody reads (Ethernet MAC / IPv4); hex otherwise.
    let as_text = hwtype == HW_ETHERNET && hwlen == 6 && ptype == link::ETHERTYPE_IPV4 && plen == 4;
    let hw_str = |bytes: &[u8]| if as_text { mac_text(bytes) } else { hex(bytes) };
    let p_str = |bytes: &[u8]| {
        if as_text {
            ipv4_text(bytes)
        } else {
            hex(bytes)
        }
    };
    ctx.frame.arp = Some(Arp {
        hwtype,
        ptype,
        hwlen,
        plen,
        op,
        hwsrc: hw_str(hwsrc),
        psrc: p_str(psrc),
        hwdst: hw_str(hwdst),
        pdst: p_str(pdst),
    });
    set_padding(ctx, tail(bytes, total));
}

fn mac_text(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(17);
    for (i, byte) in bytes.iter().enumerate() {
        if i > 0 {
            out.push(':');
        }
        let _ = write!(out, "{byte:02x}");
    }
    out
}

fn ipv4_text(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(15);
    for (i, byte) in bytes.iter().enumerate() {
        if i > 0 {
            out.push('.');
        }
        let _ = write!(out, "{byte}");
    }
    out
}

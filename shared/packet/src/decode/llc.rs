//! IEEE 802.3 frames: the 802.2 LLC header (DSAP, SSAP, control) and the SNAP extension.
//!
//! An Ethernet length/type value up to 1500 is the length of the LLC data, not an EtherType.
//! SNAP with organization code 0 carries an EtherType, which is decoded like any other.

use super::bytes::{head, tail, u8_at, u16_at};
use super::link::ether_payload;
use super::payload::{set_padding, set_payload};
use super::{Ctx, link};
use crate::frame::{DecodeIssue, Llc, MAX_8023_LENGTH};

/// DSAP and SSAP of a SNAP header.
const SAP_SNAP: u8 = 0xaa;
/// U-format control fields are one byte (low bits 11); I and S formats are two.
const U_FORMAT: u8 = 0x03;
const SNAP_LEN: usize = 5;

/// Decodes the LLC data of an 802.3 frame whose length field says `length`.
pub(crate) fn decode(ctx: &mut Ctx, length: u16, rest: &[u8]) {
    let length = usize::from(length);
    if length > rest.len() {
        // Cut by the snaplen, or a length that lies: either way the LLC data is incomplete.
        ctx.issue(DecodeIssue::TruncatedLink);
    }
    let data = head(rest, length);
    set_padding(ctx, tail(rest, length));
    let (Some(dsap), Some(ssap), Some(first)) = (u8_at(data, 0), u8_at(data, 1), u8_at(data, 2))
    else {
        ctx.issue(DecodeIssue::TruncatedLink);
        return;
    };
    let (control, mut header_len) = if first & U_FORMAT == U_FORMAT {
        (u16::from(first), 3)
    } else {
        // Wireshark shows the two-byte form little-endian (first byte low).
        let Some(second) = u8_at(data, 3) else {
            ctx.issue(DecodeIssue::TruncatedLink);
            return;
        };
        (u16::from_le_bytes([first, second]), 4)
    };
    let mut llc = Llc {
        dsap,
        ssap,
        control,
        oui: None,
        pid: None,
    };
    let snap = dsap == SAP_SNAP && ssap == SAP_SNAP && header_len == 3;
    if snap {
        let (Some(oui_hi), Some(oui_lo), Some(pid)) =
            (u8_at(data, 3), u16_at(data, 4), u16_at(data, 6))
        else {
            ctx.frame.llc = Some(llc);
            ctx.issue(DecodeIssue::TruncatedLink);
            return;
        };
        llc.oui = Some((u32::from(oui_hi) << 16) | u32::from(oui_lo));
        llc.pid = Some(pid);
        header_len += SNAP_LEN;
    }
    ctx.frame.llc = Some(llc);
    let body = tail(data, header_len);
    match (llc.oui, llc.pid) {
        // RFC 1042 encapsulation: the PID is an EtherType.
        (Some(0), Some(pid)) if is_decoded_ether_type(pid) => ether_payload(ctx, pid, body),
        _ => set_payload(ctx, body),
    }
}

/// EtherTypes the link decoder follows (not lengths, so no 802.3 loop).
fn is_decoded_ether_type(pid: u16) -> bool {
    pid > MAX_8023_LENGTH
        && matches!(
            pid,
            link::ETHERTYPE_IPV4
                | link::ETHERTYPE_IPV6
                | link::ETHERTYPE_ARP
                | link::ETHERTYPE_RARP
        )
}

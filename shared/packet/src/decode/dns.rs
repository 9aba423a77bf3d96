//! DNS message header and first question (UDP or TCP, ports 53, 5353 (mDNS) and 5355 (LLMNR)).

use std::fmt::Write;

use super::Ctx;
use super::bytes::{u8_at, u16_at};
use crate::frame::{DecodeIssue, Dns};

const HEADER_LEN: usize = 12;
/// RFC 1035: a name is at most 255 octets on the wire (length bytes included).
const MAX_NAME_WIRE_LEN: usize = 255;
/// Compression pointers must point backwards; this bounds the walk a second time.
const MAX_POINTERS: usize = 128;

/// Decodes one DNS message. `partial` is true for the first fragment of a fragmented
/// datagram: a message cut there is expected, not malformed.
pub(crate) fn decode(ctx: &mut Ctx, msg: &[u8], partial: bool) {
    let (Some(id), Some(flags), Some(qdcount), Some(ancount), Some(nscount), Some(arcount)) = (
        u16_at(msg, 0),
        u16_at(msg, 2),
        u16_at(msg, 4),
        u16_at(msg, 6),
        u16_at(msg, 8),
        u16_at(msg, 10),
    ) else {
        if !partial {
            ctx.issue(DecodeIssue::MalformedDns);
        }
        return;
    };
    let mut dns = Dns {
        id,
        qr: flags & 0x8000 != 0,
        opcode: ((flags >> 11) & 0xf) as u8,
        aa: flags & 0x0400 != 0,
        tc: flags & 0x0200 != 0,
        rd: flags & 0x0100 != 0,
        ra: flags & 0x0080 != 0,
        z: flags & 0x0040 != 0,
        ad: flags & 0x0020 != 0,
        cd: flags & 0x0010 != 0,
        rcode: (flags & 0xf) as u8,
        qdcount,
        ancount,
        nscount,
        arcount,
        qname: None,
        qtype: None,
        qclass: None,
    };
    let mut malformed = false;
    if qdcount > 0 {
        match read_name(msg, HEADER_LEN) {
            Some((name, after)) => {
                dns.qname = Some(name);
                dns.qtype = u16_at(msg, after);
                dns.qclass = u16_at(msg, after + 2);
                malformed = dns.qclass.is_none();
            }
            None => malformed = true,
        }
    }
    if malformed && !partial {
        ctx.issue(DecodeIssue::MalformedDns);
    }
    ctx.frame.dns = Some(dns);
}

/// Reads a possibly compressed name at `start`. Returns the dotted text (`.` for the root)
/// and the offset right after the name at its original position.
fn read_name(msg: &[u8], start: usize) -> Option<(String, usize)> {
    let mut name = String::new();
    let mut at = start;
    let mut after: Option<usize> = None;
    let mut wire_len = 0usize;
    let mut pointers = 0usize;
    loop {
        let len = u8_at(msg, at)?;
        match len & 0xc0 {
            0x00 if len == 0 => {
                after.get_or_insert(at + 1);
                break;
            }
            0x00 => {
                let label_len = usize::from(len);
                wire_len += label_len + 1;
                if wire_len + 1 > MAX_NAME_WIRE_LEN {
                    return None;
                }
                let label = msg.get(at + 1..at + 1 + label_len)?;
                if !name.is_empty() {
                    name.push('.');
                }
                push_label(&mut name, label);
                at += 1 + label_len;
            }
            0xc0 => {
                let target = usize::from(u16_at(msg, at)? & 0x3fff);
                after.get_or_insert(at + 2);
                pointers += 1;
                // Only backwards pointers: a forward or self pointer could loop.
                if target >= at || pointers > MAX_POINTERS {
                    return None;
                }
                at = target;
            }
            // 0x40 (extended label types) and 0x80 are obsolete / reserved.
            _ => return None,
        }
    }
    if name.is_empty() {
        name.push('.');
    }
    Some((name, after.unwrap_or(at + 1)))
}

/// Appends one label, escaping `.`, `\` and every byte outside printable ASCII as in DNS
/// master files (`\.`, `\\`, `\DDD` decimal).
fn push_label(name: &mut String, label: &[u8]) {
    for &byte in label {
        match byte {
            b'.' | b'\\' => {
                name.push('\\');
                name.push(char::from(byte));
            }
            0x21..=0x7e => name.push(char::from(byte)),
            _ => {
                let _ = write!(name, "\\{byte:03}");
            }
        }
    }
}

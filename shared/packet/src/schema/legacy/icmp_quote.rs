//! The datagram quoted by an ICMP error, as kamene dissected it for the original.
//!
//! kamene put `IPerror` after the ICMP header of types 3, 4, 5, 11 and 12, then `TCPerror`,
//! `UDPerror` or `ICMPerror` by the quoted protocol, then `Raw`, and `Padding` for bytes past the
//! quoted IP or UDP length. The processor dropped the `*error` keys but kept `raw` and `padding`,
//! so the quoted payload lands in `raw_load` / `raw_hex_field_load`. The rules below were checked
//! against kamene 0.32 (see docs/schemas.md):
//! * a fixed-size field cut in the middle makes kamene fail that layer, and the rest of the
//!   quote becomes one `Raw`; bytes ending exactly between two fields just end the layer;
//! * `IPerror` keeps `len - 4 * ihl` bytes as its payload and the rest as `Padding`, `UDPerror`
//!   `len - 8` (Python slice rules: a negative count drops that many bytes from the end);
//! * a quoted UDP datagram to or from port 53 is DNS: the conversion stops there, as for DNS.

use serde_json::Value;

use super::message::Layer;

/// What kamene made of the quote.
#[derive(Debug, Default)]
pub(super) struct Walked {
    /// The `*error` layers, by key (dropped by the original processor).
    pub layers: Vec<(&'static str, Value)>,
    /// Bytes of the `Raw` layer (empty: none).
    pub raw: Vec<u8>,
    /// Bytes of the `Padding` layer (empty: none).
    pub padding: Vec<u8>,
    /// A DNS layer follows: the original's conversion ended there.
    pub dns: bool,
}

/// One fixed-size field: name and size in bytes.
type Field = (&'static str, usize);

const IP_FIELDS: [Field; 10] = [
    ("version", 1), // version and ihl share the byte; `ihl` is filled in below
    ("tos", 1),
    ("len", 2),
    ("id", 2),
    ("flags", 2), // flags and frag share two bytes
    ("ttl", 1),
    ("proto", 1),
    ("chksum", 2),
    ("src", 4),
    ("dst", 4),
];
const UDP_FIELDS: [Field; 4] = [("sport", 2), ("dport", 2), ("len", 2), ("chksum", 2)];
const TCP_FIELDS: [Field; 8] = [
    ("sport", 2),
    ("dport", 2),
    ("seq", 4),
    ("ack", 4),
    ("dataofs", 2), // dataofs, reserved and flags share two bytes
    ("window", 2),
    ("chksum", 2),
    ("urgptr", 2),
];

/// Walks the bytes after the 8-byte ICMP header of an error message.
pub(super) fn walk(quote: &[u8]) -> Walked {
    let mut out = Walked::default();
    if quote.is_empty() {
        return out;
    }
    let Some(ip_end) = fixed_fields(quote, &IP_FIELDS) else {
        out.raw = quote.to_vec();
        return out;
    };
    out.layers.push(("iperror", ip_layer(quote, ip_end)));
    if ip_end < 20 {
        return out; // the quote ended between two fields
    }
    let ihl = usize::from(quote[0] & 0x0f);
    let options = (ihl * 4).saturating_sub(20);
    let body = tail(quote, 20 + options);
    let ip_len = i64::from(u16::from_be_bytes([quote[2], quote[3]]));
    let (payload, padding) = py_split(body, ip_len - 4 * ihl as i64);
    out.padding = padding.to_vec();
    let frag = u16::from_be_bytes([quote[6], quote[7]]) & 0x1fff;
    match (frag, quote[9]) {
        (0, 17) => udp(payload, &mut out),
        (0, 6) => tcp(payload, &mut out),
        (0, 1) => icmp(payload, &mut out),
        _ => out.raw = payload.to_vec(),
    }
    out
}

fn udp(bytes: &[u8], out: &mut Walked) {
    if bytes.is_empty() {
        return;
    }
    let Some(end) = fixed_fields(bytes, &UDP_FIELDS) else {
        out.raw = bytes.to_vec();
        return;
    };
    let word = |at: usize| {
        bytes
            .get(at..at + 2)
            .map(|b| u16::from_be_bytes([b[0], b[1]]))
    };
    let mut l = Layer::new("chksum");
    for (i, (name, _)) in UDP_FIELDS.iter().enumerate() {
        if let Some(v) = (i * 2 + 2 <= end).then(|| word(i * 2)).flatten() {
            l.field(name, v);
        }
    }
    out.layers.push(("udperror", l.into_value()));
    if end < 8 {
        return;
    }
    let (sport, dport, len) = (word(0), word(2), word(4).unwrap_or_default());
    let (payload, padding) = py_split(tail(bytes, 8), i64::from(len) - 8);
    if !padding.is_empty() {
        out.padding = padding.to_vec();
    }
    if (sport == Some(53) || dport == Some(53)) && payload.len() >= DNS_HEADER_LEN {
        out.dns = true;
        return;
    }
    out.raw = payload.to_vec();
}

const DNS_HEADER_LEN: usize = 12;

fn tcp(bytes: &[u8], out: &mut Walked) {
    if bytes.is_empty() {
        return;
    }
    let Some(end) = fixed_fields(bytes, &TCP_FIELDS) else {
        out.raw = bytes.to_vec();
        return;
    };
    let mut l = Layer::new("options");
    let mut at = 0;
    for (name, size) in TCP_FIELDS {
        if at + size > end {
            break;
        }
        let v = bytes.get(at..at + size).map_or(0, |b| {
            b.iter().fold(0u64, |acc, x| (acc << 8) | u64::from(*x))
        });
        // The shared dataofs/reserved/flags bytes: dataofs is the top nibble.
        let v = if name == "dataofs" { v >> 12 } else { v };
        l.field(name, v);
        at += size;
    }
    out.layers.push(("tcperror", l.into_value()));
    if end < 20 {
        return;
    }
    let dataofs = usize::from(bytes[12] >> 4);
    out.raw = tail(bytes, 20 + (dataofs * 4).saturating_sub(20)).to_vec();
}

fn icmp(bytes: &[u8], out: &mut Walked) {
    if bytes.is_empty() {
        return;
    }
    let t = bytes[0];
    // Bytes after type/code/checksum, by type (kamene's conditional fields).
    let rest_fields: &[usize] = match t {
        0 | 8 | 15 | 16 => &[2, 2],
        13 | 14 => &[2, 2, 4, 4, 4],
        17 | 18 => &[2, 2, 4],
        12 => &[1, 3],
        _ => &[4],
    };
    let mut boundaries = vec![1, 2, 4];
    for size in rest_fields {
        let last = boundaries.last().copied().unwrap_or_default();
        boundaries.push(last + size);
    }
    let header = boundaries.last().copied().unwrap_or_default();
    let end = header.min(bytes.len());
    if !boundaries.contains(&end) {
        out.raw = bytes.to_vec();
        return;
    }
    let mut l = Layer::new("unused");
    l.field("type", t);
    if let Some(code) = bytes.get(1) {
        l.field("code", *code);
    }
    out.layers.push(("icmperror", l.into_value()));
    out.raw = tail(bytes, header).to_vec();
}

/// How far kamene dissects `fields` over `bytes`: the end offset (all fields, or a boundary
/// between two fields), or None when the bytes end inside a field (kamene then fails the layer).
fn fixed_fields(bytes: &[u8], fields: &[Field]) -> Option<usize> {
    let mut at = 0;
    for (_, size) in fields {
        if at >= bytes.len() {
            return Some(at);
        }
        if at + size > bytes.len() {
            return None;
        }
        at += size;
    }
    Some(at)
}

/// The IPerror dict for the fields present (for original consumers; the processor drops it).
fn ip_layer(q: &[u8], end: usize) -> Value {
    let mut l = Layer::new("options");
    let byte = |at: usize| q.get(at).copied().unwrap_or_default();
    let word = |at: usize| u16::from_be_bytes([byte(at), byte(at + 1)]);
    let addr =
        |at: usize| std::net::Ipv4Addr::new(byte(at), byte(at + 1), byte(at + 2), byte(at + 3));
    // Each field is stored when the quote reaches its end (kamene stopped between fields).
    if end >= 1 {
        l.field("version", byte(0) >> 4);
        l.field("ihl", byte(0) & 0x0f);
    }
    if end >= 2 {
        l.field("tos", byte(1));
    }
    if end >= 4 {
        l.field("len", word(2));
    }
    if end >= 6 {
        l.field("id", word(4));
    }
    if end >= 8 {
        l.field("flags", byte(6) >> 5);
        l.field("frag", word(6) & 0x1fff);
    }
    if end >= 9 {
        l.field("ttl", byte(8));
    }
    if end >= 10 {
        l.field("proto", byte(9));
    }
    if end >= 12 {
        l.field("chksum", word(10));
    }
    if end >= 16 {
        l.field("src", addr(12).to_string());
    }
    if end >= 20 {
        l.field("dst", addr(16).to_string());
    }
    l.into_value()
}

/// Python's `s[:n], s[n:]` (a negative `n` counts from the end).
fn py_split(s: &[u8], n: i64) -> (&[u8], &[u8]) {
    let len = s.len() as i64;
    let cut = if n >= 0 { n.min(len) } else { (len + n).max(0) };
    let cut = usize::try_from(cut).unwrap_or_default();
    s.split_at(cut)
}

fn tail(bytes: &[u8], at: usize) -> &[u8] {
    bytes.get(at..).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_slices() {
        assert_eq!(py_split(b"abcdef", 2), (&b"ab"[..], &b"cdef"[..]));
        assert_eq!(py_split(b"abcdef", 9), (&b"abcdef"[..], &b""[..]));
        assert_eq!(py_split(b"abcdef", -2), (&b"abcd"[..], &b"ef"[..]));
        assert_eq!(py_split(b"abcdef", -9), (&b""[..], &b"abcdef"[..]));
    }

    #[test]
    fn any_quote_walks_without_panic_and_loses_no_byte_silently() {
        // Quoted IPv4 with options (ihl 6) + TCP (dataofs 6) + 3 payload bytes, every prefix,
        // and the same bytes under every protocol number and a range of length fields.
        let mut q = vec![
            0x46, 0, 0, 51, 0, 1, 0, 0, 64, 6, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2,
        ];
        q.extend_from_slice(&[1, 1, 1, 0]);
        q.extend_from_slice(&[0, 80, 0x1f, 0x90, 0, 0, 0, 1, 0, 0, 0, 0, 0x60, 0x18, 0, 1]);
        q.extend_from_slice(&[0, 0, 0, 0, 2, 4, 5, 0xb4, b'a', b'b', b'c']);
        for n in 0..=q.len() {
            let w = walk(&q[..n]);
            assert!(w.raw.len() + w.padding.len() <= n);
        }
        for proto in 0..=255u8 {
            for len in [0u16, 1, 20, 24, 30, 43, 51, 60, 65535] {
                let mut v = q.clone();
                v[9] = proto;
                v[2..4].copy_from_slice(&len.to_be_bytes());
                let w = walk(&v);
                assert!(w.raw.len() + w.padding.len() <= v.len());
            }
        }
        // The full quote: the TCP payload is Raw, nothing is padding.
        let w = walk(&q);
        assert_eq!(w.raw, b"abc");
        assert!(w.padding.is_empty());
        let keys: Vec<_> = w.layers.iter().map(|(k, _)| *k).collect();
        assert_eq!(keys, ["iperror", "tcperror"]);
    }
}

//! Frames to JSON, byte for byte as `serde_json::to_vec(&[Frame])`: fields in declaration
//! order, the same `skip_serializing_if` rules, the same string escapes.

use std::io::Write;
use std::net::{Ipv4Addr, Ipv6Addr};

use crate::ascii_out::{Decimal, put_prefix};
use crate::frame::{
    Arp, DecodeIssue, Dns, Ethernet, Frame, Icmp, Icmpv6, Ipv4, Ipv6, Ipv6Fragment, LinuxSll,
    MacAddr, Payload, Tcp, TcpOptions, Udp, VlanTag,
};
use crate::schema::csv_cell::write_ipv4;

/// Appends the JSON array of `frames` to `out`.
pub fn write_frames(frames: &[Frame], out: &mut Vec<u8>) {
    frames.write_json(out);
}

trait WriteJson {
    fn write_json(&self, out: &mut Vec<u8>);
}

/// Room for `,"key":` with the longest key of the Frame types (and then some).
const KEY_PREFIX_BYTES: usize = 24;

/// Writes one JSON object, field by field.
struct Object<'a> {
    out: &'a mut Vec<u8>,
    empty: bool,
}

impl<'a> Object<'a> {
    fn new(out: &'a mut Vec<u8>) -> Self {
        Object { out, empty: true }
    }

    /// Inlined, so the key is a constant and the prefix is built with a few stores.
    #[inline(always)]
    fn field<T: WriteJson + ?Sized>(&mut self, key: &str, value: &T) -> &mut Self {
        let separator = if self.empty { b'{' } else { b',' };
        self.empty = false;
        // `{"key":` or `,"key":` in one copy: keys are short ASCII names without escapes.
        let len = key.len() + 4;
        if len <= KEY_PREFIX_BYTES {
            let mut prefix = [0u8; KEY_PREFIX_BYTES];
            prefix[0] = separator;
            prefix[1] = b'"';
            prefix[2..len - 2].copy_from_slice(key.as_bytes());
            prefix[len - 2..len].copy_from_slice(b"\":");
            put_prefix(self.out, &prefix, len);
        } else {
            self.out.extend_from_slice(&[separator, b'"']);
            self.out.extend_from_slice(key.as_bytes());
            self.out.extend_from_slice(b"\":");
        }
        value.write_json(self.out);
        self
    }

    /// `skip_serializing_if = "Option::is_none"`
    #[inline(always)]
    fn some<T: WriteJson>(&mut self, key: &str, value: &Option<T>) -> &mut Self {
        if let Some(value) = value {
            self.field(key, value);
        }
        self
    }

    /// `skip_serializing_if = "Vec::is_empty"`
    #[inline(always)]
    fn items<T: WriteJson>(&mut self, key: &str, values: &[T]) -> &mut Self {
        if !values.is_empty() {
            self.field(key, values);
        }
        self
    }

    /// `skip_serializing_if = "std::ops::Not::not"`
    #[inline(always)]
    fn set(&mut self, key: &str, flag: bool) -> &mut Self {
        if flag {
            self.field(key, &flag);
        }
        self
    }

    fn end(&mut self) {
        if self.empty {
            self.out.push(b'{');
        }
        self.out.push(b'}');
    }
}

macro_rules! write_integers {
    ($($t:ty),*) => {$(
        impl WriteJson for $t {
            fn write_json(&self, out: &mut Vec<u8>) {
                self.put_decimal(out);
            }
        }
    )*};
}
write_integers!(u8, u16, u32, u64, i64);

impl WriteJson for bool {
    fn write_json(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(if *self { b"true" } else { b"false" });
    }
}

impl WriteJson for str {
    /// serde_json's escapes: `"` and `\`, and control characters as `\b \t \n \f \r` or `\u00XX`.
    fn write_json(&self, out: &mut Vec<u8>) {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        out.push(b'"');
        let bytes = self.as_bytes();
        let mut start = 0;
        for (i, &byte) in bytes.iter().enumerate() {
            let escape: &[u8] = match byte {
                b'"' => b"\\\"",
                b'\\' => b"\\\\",
                0x08 => b"\\b",
                0x09 => b"\\t",
                0x0a => b"\\n",
                0x0c => b"\\f",
                0x0d => b"\\r",
                0x00..=0x1f => &[
                    b'\\',
                    b'u',
                    b'0',
                    b'0',
                    HEX[(byte >> 4) as usize],
                    HEX[(byte & 0xf) as usize],
                ],
                _ => continue,
            };
            out.extend_from_slice(&bytes[start..i]);
            out.extend_from_slice(escape);
            start = i + 1;
        }
        out.extend_from_slice(&bytes[start..]);
        out.push(b'"');
    }
}

impl WriteJson for String {
    fn write_json(&self, out: &mut Vec<u8>) {
        self.as_str().write_json(out);
    }
}

impl WriteJson for MacAddr {
    fn write_json(&self, out: &mut Vec<u8>) {
        let mut quoted = [b'"'; 19];
        let mut text = [0u8; 17];
        self.write_to(&mut text);
        quoted[1..18].copy_from_slice(&text);
        out.extend_from_slice(&quoted);
    }
}

impl WriteJson for Ipv4Addr {
    fn write_json(&self, out: &mut Vec<u8>) {
        out.push(b'"');
        write_ipv4(out, *self);
        out.push(b'"');
    }
}

impl WriteJson for Ipv6Addr {
    fn write_json(&self, out: &mut Vec<u8>) {
        // Display is what serde writes (RFC 5952 text); writing into a Vec cannot fail.
        let _ = write!(out, "\"{self}\"");
    }
}

impl WriteJson for DecodeIssue {
    fn write_json(&self, out: &mut Vec<u8>) {
        self.as_str().write_json(out);
    }
}

impl WriteJson for (u32, u32) {
    fn write_json(&self, out: &mut Vec<u8>) {
        out.push(b'[');
        self.0.write_json(out);
        out.push(b',');
        self.1.write_json(out);
        out.push(b']');
    }
}

impl<T: WriteJson> WriteJson for [T] {
    fn write_json(&self, out: &mut Vec<u8>) {
        out.push(b'[');
        for (i, item) in self.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            item.write_json(out);
        }
        out.push(b']');
    }
}

impl<T: WriteJson> WriteJson for Vec<T> {
    fn write_json(&self, out: &mut Vec<u8>) {
        self.as_slice().write_json(out);
    }
}

impl WriteJson for Frame {
    fn write_json(&self, out: &mut Vec<u8>) {
        Object::new(out)
            .field("v", &self.v)
            .field("agent", &*self.agent)
            .field("boot", &self.boot)
            .field("seq", &self.seq)
            .field("ts_ns", &self.ts_ns)
            .field("wire_len", &self.wire_len)
            .field("cap_len", &self.cap_len)
            .field("link", &self.link)
            .some("eth", &self.eth)
            .some("sll", &self.sll)
            .items("vlan", &self.vlan)
            .some("arp", &self.arp)
            .some("ipv4", &self.ipv4)
            .some("ipv6", &self.ipv6)
            .some("icmp", &self.icmp)
            .some("icmpv6", &self.icmpv6)
            .some("tcp", &self.tcp)
            .some("udp", &self.udp)
            .some("dns", &self.dns)
            .some("payload", &self.payload)
            .some("padding", &self.padding)
            .items("errors", &self.errors)
            .end();
    }
}

impl WriteJson for Ethernet {
    fn write_json(&self, out: &mut Vec<u8>) {
        Object::new(out)
            .field("src", &self.src)
            .field("dst", &self.dst)
            .field("type", &self.ether_type)
            .end();
    }
}

impl WriteJson for LinuxSll {
    fn write_json(&self, out: &mut Vec<u8>) {
        Object::new(out)
            .field("version", &self.version)
            .field("pkttype", &self.pkttype)
            .field("hatype", &self.hatype)
            .field("addr", &self.addr)
            .field("protocol", &self.protocol)
            .some("ifindex", &self.ifindex)
            .end();
    }
}

impl WriteJson for VlanTag {
    fn write_json(&self, out: &mut Vec<u8>) {
        Object::new(out)
            .field("tpid", &self.tpid)
            .field("id", &self.id)
            .field("pcp", &self.pcp)
            .field("dei", &self.dei)
            .field("type", &self.ether_type)
            .end();
    }
}

impl WriteJson for Arp {
    fn write_json(&self, out: &mut Vec<u8>) {
        Object::new(out)
            .field("hwtype", &self.hwtype)
            .field("ptype", &self.ptype)
            .field("hwlen", &self.hwlen)
            .field("plen", &self.plen)
            .field("op", &self.op)
            .field("hwsrc", &self.hwsrc)
            .field("psrc", &self.psrc)
            .field("hwdst", &self.hwdst)
            .field("pdst", &self.pdst)
            .end();
    }
}

impl WriteJson for Ipv4 {
    fn write_json(&self, out: &mut Vec<u8>) {
        Object::new(out)
            .field("ihl", &self.ihl)
            .field("tos", &self.tos)
            .field("len", &self.len)
            .field("id", &self.id)
            .field("flags", &self.flags)
            .field("frag", &self.frag)
            .field("ttl", &self.ttl)
            .field("proto", &self.proto)
            .field("chksum", &self.chksum)
            .field("src", &self.src)
            .field("dst", &self.dst)
            .some("options", &self.options)
            .end();
    }
}

impl WriteJson for Ipv6 {
    fn write_json(&self, out: &mut Vec<u8>) {
        Object::new(out)
            .field("tc", &self.tc)
            .field("fl", &self.fl)
            .field("plen", &self.plen)
            .field("nh", &self.nh)
            .field("hlim", &self.hlim)
            .field("src", &self.src)
            .field("dst", &self.dst)
            .items("ext", &self.ext)
            .field("upper", &self.upper)
            .some("frag", &self.frag)
            .end();
    }
}

impl WriteJson for Ipv6Fragment {
    fn write_json(&self, out: &mut Vec<u8>) {
        Object::new(out)
            .field("offset", &self.offset)
            .field("more", &self.more)
            .field("id", &self.id)
            .end();
    }
}

impl WriteJson for Icmp {
    fn write_json(&self, out: &mut Vec<u8>) {
        Object::new(out)
            .field("type", &self.icmp_type)
            .field("code", &self.code)
            .field("chksum", &self.chksum)
            .some("id", &self.id)
            .some("seq", &self.seq)
            .some("gw", &self.gw)
            .end();
    }
}

impl WriteJson for Icmpv6 {
    fn write_json(&self, out: &mut Vec<u8>) {
        Object::new(out)
            .field("type", &self.icmp_type)
            .field("code", &self.code)
            .field("chksum", &self.chksum)
            .some("id", &self.id)
            .some("seq", &self.seq)
            .end();
    }
}

impl WriteJson for Tcp {
    fn write_json(&self, out: &mut Vec<u8>) {
        let mut object = Object::new(out);
        object
            .field("sport", &self.sport)
            .field("dport", &self.dport)
            .field("seq", &self.seq)
            .field("ack", &self.ack)
            .field("dataofs", &self.dataofs)
            .field("flags", &self.flags)
            .field("window", &self.window)
            .field("chksum", &self.chksum)
            .field("urgptr", &self.urgptr);
        if !self.opts.is_empty() {
            object.field("opts", &self.opts);
        }
        object.end();
    }
}

impl WriteJson for TcpOptions {
    fn write_json(&self, out: &mut Vec<u8>) {
        Object::new(out)
            .items("kinds", &self.kinds)
            .some("mss", &self.mss)
            .some("wscale", &self.wscale)
            .set("sackok", self.sackok)
            .items("sack", &self.sack)
            .some("ts_val", &self.ts_val)
            .some("ts_ecr", &self.ts_ecr)
            .end();
    }
}

impl WriteJson for Udp {
    fn write_json(&self, out: &mut Vec<u8>) {
        Object::new(out)
            .field("sport", &self.sport)
            .field("dport", &self.dport)
            .field("len", &self.len)
            .field("chksum", &self.chksum)
            .end();
    }
}

impl WriteJson for Dns {
    fn write_json(&self, out: &mut Vec<u8>) {
        Object::new(out)
            .field("id", &self.id)
            .field("qr", &self.qr)
            .field("opcode", &self.opcode)
            .field("aa", &self.aa)
            .field("tc", &self.tc)
            .field("rd", &self.rd)
            .field("ra", &self.ra)
            .field("z", &self.z)
            .field("ad", &self.ad)
            .field("cd", &self.cd)
            .field("rcode", &self.rcode)
            .field("qdcount", &self.qdcount)
            .field("ancount", &self.ancount)
            .field("nscount", &self.nscount)
            .field("arcount", &self.arcount)
            .some("qname", &self.qname)
            .some("qtype", &self.qtype)
            .some("qclass", &self.qclass)
            .end();
    }
}

impl WriteJson for Payload {
    fn write_json(&self, out: &mut Vec<u8>) {
        Object::new(out)
            .field("len", &self.len)
            .some("hex", &self.hex)
            .set("capped", self.capped)
            .end();
    }
}

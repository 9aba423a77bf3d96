//! Frames to JSON, byte for byte as `serde_json::to_vec(&[Frame])`: fields in declaration
//! order, the same `skip_serializing_if` rules, the same string escapes.

use std::io::Write;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

use crate::ascii_out::{Decimal, put_prefix};
use crate::frame::{
    Arp, DecodeIssue, Dns, Ethernet, Frame, Icmp, Icmpv6, Ipv4, Ipv6, Ipv6Fragment, LinuxSll, Llc,
    MacAddr, MplsLabel, Payload, Tcp, TcpOptions, Udp, VlanTag,
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

    /// `skip_serializing_if = "Vec::is_empty"` (or `TcpOptions::is_empty`)
    #[inline(always)]
    fn unless_empty<T: WriteJson + Empty>(&mut self, key: &str, value: &T) -> &mut Self {
        if !value.is_empty() {
            self.field(key, value);
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

/// Values serde skips when empty.
trait Empty {
    fn is_empty(&self) -> bool;
}

impl<T> Empty for Vec<T> {
    fn is_empty(&self) -> bool {
        Vec::is_empty(self)
    }
}

impl Empty for TcpOptions {
    fn is_empty(&self) -> bool {
        TcpOptions::is_empty(self)
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

impl WriteJson for Arc<str> {
    fn write_json(&self, out: &mut Vec<u8>) {
        (**self).write_json(out);
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

/// One field by its kind in `frame_structs!` (serde's skip rule).
macro_rules! write_field {
    ($object:ident, field, $key:literal, $value:expr) => {
        $object.field($key, &$value)
    };
    ($object:ident, some, $key:literal, $value:expr) => {
        $object.some($key, &$value)
    };
    ($object:ident, unless_empty, $key:literal, $value:expr) => {
        $object.unless_empty($key, &$value)
    };
    ($object:ident, set, $key:literal, $value:expr) => {
        $object.set($key, $value)
    };
}

/// Implements [`WriteJson`] for a struct of `frame_structs!`: its fields in declaration order,
/// each written or skipped as serde would.
macro_rules! write_struct {
    ($name:ident { $($field:ident: $kind:ident $key:literal),* $(,)? }) => {
        impl WriteJson for $name {
            fn write_json(&self, out: &mut Vec<u8>) {
                let mut object = Object::new(out);
                $(write_field!(object, $kind, $key, self.$field);)*
                object.end();
            }
        }
    };
}

frame_structs!(write_struct);

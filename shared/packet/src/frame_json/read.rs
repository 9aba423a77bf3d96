//! The fast path for reading a frame batch. Every function returns `None` as soon as the input
//! leaves the shape serde_json writes (see the module docs); the caller then falls back to
//! serde_json, so `None` never loses a message and never decides one is poison.

use std::net::{Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

use crate::frame::{
    Arp, DecodeIssue, Dns, Ethernet, Frame, Icmp, Icmpv6, Ipv4, Ipv6, Ipv6Fragment, LinuxSll, Llc,
    MacAddr, MplsLabel, Payload, Tcp, TcpOptions, Udp, VlanTag,
};

/// Frames reserved up front at most (capture-agent batches hold 256 by default).
const MAX_RESERVED_FRAMES: usize = 1024;

/// Reads a JSON array of frames, or `None` when the body needs the full parser.
pub fn read_frames(body: &[u8]) -> Option<Vec<Frame>> {
    let mut cursor = Cursor {
        bytes: body,
        at: 0,
        agent: None,
    };
    // About one frame per 500 bytes without payload: one allocation, no moves while growing;
    // capped, so a large body of garbage does not reserve memory before it is read.
    let mut frames = Vec::with_capacity((body.len() / 400 + 1).min(MAX_RESERVED_FRAMES));
    cursor.array(|c| {
        frames.push(Frame::read_json(c)?);
        Some(())
    })?;
    cursor.skip_whitespace();
    (cursor.at == body.len()).then_some(frames)
}

struct Cursor<'a> {
    bytes: &'a [u8],
    at: usize,
    /// The last agent id read: frames of one batch share one allocation.
    agent: Option<Arc<str>>,
}

impl<'a> Cursor<'a> {
    fn skip_whitespace(&mut self) {
        while let Some(b' ' | b'\n' | b'\r' | b'\t') = self.bytes.get(self.at) {
            self.at += 1;
        }
    }

    /// The next byte that is not whitespace, consumed.
    fn next(&mut self) -> Option<u8> {
        self.skip_whitespace();
        let byte = *self.bytes.get(self.at)?;
        self.at += 1;
        Some(byte)
    }

    fn expect(&mut self, byte: u8) -> Option<()> {
        (self.next()? == byte).then_some(())
    }

    /// `byte` at the cursor, without whitespace before it (the in-order path).
    #[inline(always)]
    fn expect_here(&mut self, byte: u8) -> Option<()> {
        (*self.bytes.get(self.at)? == byte).then(|| self.at += 1)
    }

    /// Consumes `,"key":` (`"key":` for the first field) when it is next. `key` is the constant
    /// `"key":`, so this inlines to a fixed-size compare.
    #[inline(always)]
    fn key_here(&mut self, first: bool, key: &[u8]) -> bool {
        let comma = usize::from(!first);
        let found = (first || self.bytes.get(self.at) == Some(&b','))
            && self
                .bytes
                .get(self.at + comma..)
                .is_some_and(|rest| rest.starts_with(key));
        if found {
            self.at += comma + key.len();
        }
        found
    }

    /// The raw bytes of a string without escapes or control characters.
    fn plain_string(&mut self) -> Option<&'a [u8]> {
        self.expect(b'"')?;
        let start = self.at;
        loop {
            match *self.bytes.get(self.at)? {
                b'"' => break,
                b'\\' | 0x00..=0x1f => return None,
                _ => self.at += 1,
            }
        }
        let raw = &self.bytes[start..self.at];
        self.at += 1;
        Some(raw)
    }

    fn str(&mut self) -> Option<&'a str> {
        std::str::from_utf8(self.plain_string()?).ok()
    }

    /// The agent id, sharing the previous frame's allocation when it is the same agent.
    fn agent(&mut self) -> Option<Arc<str>> {
        let raw = self.plain_string()?;
        match &self.agent {
            Some(last) if last.as_bytes() == raw => Some(last.clone()),
            _ => {
                let agent: Arc<str> = Arc::from(std::str::from_utf8(raw).ok()?);
                self.agent = Some(agent.clone());
                Some(agent)
            }
        }
    }

    /// `[ item, ... ]`, calling `item` for each element.
    fn array(&mut self, mut item: impl FnMut(&mut Self) -> Option<()>) -> Option<()> {
        self.expect(b'[')?;
        self.skip_whitespace();
        if self.bytes.get(self.at) == Some(&b']') {
            self.at += 1;
            return Some(());
        }
        loop {
            item(self)?;
            match self.next()? {
                b',' => continue,
                b']' => return Some(()),
                _ => return None,
            }
        }
    }

    /// `{ "key": value, ... }`, calling `field` with each key; it reads the value.
    fn object(&mut self, mut field: impl FnMut(&mut Self, &[u8]) -> Option<()>) -> Option<()> {
        self.expect(b'{')?;
        self.skip_whitespace();
        if self.bytes.get(self.at) == Some(&b'}') {
            self.at += 1;
            return Some(());
        }
        loop {
            let key = self.plain_string()?;
            self.expect(b':')?;
            field(self, key)?;
            match self.next()? {
                b',' => continue,
                b'}' => return Some(()),
                _ => return None,
            }
        }
    }

    /// Reads a value into an empty slot; a repeated key is left to serde_json (which rejects it).
    fn fill<T: ReadJson>(&mut self, slot: &mut Option<T>) -> Option<()> {
        if slot.is_some() {
            return None;
        }
        *slot = Some(T::read_json(self)?);
        Some(())
    }

    /// Digits of a JSON integer without sign, fraction or exponent, as serde_json reads them
    /// (no leading zeros).
    fn unsigned(&mut self) -> Option<u64> {
        self.skip_whitespace();
        let start = self.at;
        let mut value = 0u64;
        while let Some(digit) = self.bytes.get(self.at).map(|b| b.wrapping_sub(b'0')) {
            if digit > 9 {
                break;
            }
            value = value.wrapping_mul(10).wrapping_add(u64::from(digit));
            self.at += 1;
        }
        let text = &self.bytes[start..self.at];
        // Up to 19 digits cannot overflow a u64; only a 20-digit number needs the checks.
        if text.len() > 19 {
            value = text.iter().try_fold(0u64, |value, digit| {
                value.checked_mul(10)?.checked_add(u64::from(digit - b'0'))
            })?;
        }
        let leading_zero = text.len() > 1 && text[0] == b'0';
        let fraction = matches!(self.bytes.get(self.at), Some(b'.' | b'e' | b'E'));
        (!text.is_empty() && !leading_zero && !fraction).then_some(value)
    }
}

trait ReadJson: Sized {
    fn read_json(cursor: &mut Cursor<'_>) -> Option<Self>;
}

macro_rules! read_unsigned {
    ($($t:ty),*) => {$(
        impl ReadJson for $t {
            fn read_json(cursor: &mut Cursor<'_>) -> Option<Self> {
                <$t>::try_from(cursor.unsigned()?).ok()
            }
        }
    )*};
}
read_unsigned!(u8, u16, u32, u64);

impl ReadJson for i64 {
    fn read_json(cursor: &mut Cursor<'_>) -> Option<Self> {
        cursor.skip_whitespace();
        if cursor.bytes.get(cursor.at) == Some(&b'-') {
            cursor.at += 1;
            // serde_json reads `-0` as a float, which an integer field rejects.
            let magnitude = cursor.unsigned().filter(|m| *m > 0)?;
            0i64.checked_sub_unsigned(magnitude)
        } else {
            i64::try_from(cursor.unsigned()?).ok()
        }
    }
}

impl ReadJson for bool {
    fn read_json(cursor: &mut Cursor<'_>) -> Option<Self> {
        cursor.skip_whitespace();
        let rest = cursor.bytes.get(cursor.at..)?;
        if rest.starts_with(b"true") {
            cursor.at += 4;
            Some(true)
        } else if rest.starts_with(b"false") {
            cursor.at += 5;
            Some(false)
        } else {
            None
        }
    }
}

impl ReadJson for String {
    fn read_json(cursor: &mut Cursor<'_>) -> Option<Self> {
        cursor.str().map(str::to_owned)
    }
}

impl ReadJson for Arc<str> {
    /// Shares the previous frame's allocation when it is the same agent.
    fn read_json(cursor: &mut Cursor<'_>) -> Option<Self> {
        cursor.agent()
    }
}

impl ReadJson for MacAddr {
    /// Only the canonical `aa:bb:cc:dd:ee:ff`; other spellings go to the full parser.
    fn read_json(cursor: &mut Cursor<'_>) -> Option<Self> {
        let text = cursor.plain_string()?;
        if text.len() != 17 {
            return None;
        }
        let mut mac = [0u8; 6];
        for (i, byte) in mac.iter_mut().enumerate() {
            if i < 5 && text[i * 3 + 2] != b':' {
                return None;
            }
            *byte = hex_digit(text[i * 3])? << 4 | hex_digit(text[i * 3 + 1])?;
        }
        Some(MacAddr(mac))
    }
}

fn hex_digit(byte: u8) -> Option<u8> {
    match byte {
        b'0'..=b'9' => Some(byte - b'0'),
        b'a'..=b'f' => Some(byte - b'a' + 10),
        b'A'..=b'F' => Some(byte - b'A' + 10),
        _ => None,
    }
}

impl ReadJson for Ipv4Addr {
    fn read_json(cursor: &mut Cursor<'_>) -> Option<Self> {
        cursor.str()?.parse().ok()
    }
}

impl ReadJson for Ipv6Addr {
    fn read_json(cursor: &mut Cursor<'_>) -> Option<Self> {
        cursor.str()?.parse().ok()
    }
}

impl ReadJson for DecodeIssue {
    fn read_json(cursor: &mut Cursor<'_>) -> Option<Self> {
        let name = cursor.plain_string()?;
        DecodeIssue::ALL
            .into_iter()
            .find(|issue| issue.as_str().as_bytes() == name)
    }
}

impl ReadJson for (u32, u32) {
    fn read_json(cursor: &mut Cursor<'_>) -> Option<Self> {
        cursor.expect(b'[')?;
        let left = u32::read_json(cursor)?;
        cursor.expect(b',')?;
        let right = u32::read_json(cursor)?;
        cursor.expect(b']')?;
        Some((left, right))
    }
}

impl<T: ReadJson> ReadJson for Vec<T> {
    fn read_json(cursor: &mut Cursor<'_>) -> Option<Self> {
        let mut items = Vec::new();
        cursor.array(|c| {
            items.push(T::read_json(c)?);
            Some(())
        })?;
        Some(items)
    }
}

/// A struct field's value from its slot, by its kind in `frame_structs!`: `field`s must have
/// been read, `some` ones are `Option`s, the skippable others fall back to `Default` (serde's
/// `#[serde(default)]`).
macro_rules! field_value {
    (field, $slot:ident) => {
        $slot?
    };
    (some, $slot:ident) => {
        $slot
    };
    (unless_empty, $slot:ident) => {
        $slot.unwrap_or_default()
    };
    (set, $slot:ident) => {
        $slot.unwrap_or_default()
    };
}

/// Implements [`ReadJson`] for a struct of `frame_structs!` (fields in declaration order, the
/// order serde_json writes them in). First the object is read in that order, each key checked with
/// one compare against its expected spelling; if the input is in any other shape (another
/// order, whitespace, a repeated or unknown key) it is read again key by key in any order, into
/// one `Option` slot per field; what that path does not read goes to serde_json.
macro_rules! read_struct {
    ($name:ident { $($field:ident: $kind:ident $key:literal),* $(,)? }) => {
        impl ReadJson for $name {
            fn read_json(cursor: &mut Cursor<'_>) -> Option<Self> {
                let start = cursor.at;
                if let Some(value) = Self::read_in_order(cursor) {
                    return Some(value);
                }
                cursor.at = start;
                Self::read_any_order(cursor)
            }
        }

        impl $name {
            // `first` is set by every field, also the last, whose value is not read again.
            #[allow(unused_assignments)]
            fn read_in_order(cursor: &mut Cursor<'_>) -> Option<Self> {
                cursor.expect_here(b'{')?;
                let mut first = true;
                $(
                    let mut $field = None;
                    if cursor.key_here(first, concat!("\"", $key, "\":").as_bytes()) {
                        $field = Some(ReadJson::read_json(cursor)?);
                        first = false;
                    }
                )*
                cursor.expect_here(b'}')?;
                Some($name { $($field: field_value!($kind, $field),)* })
            }

            fn read_any_order(cursor: &mut Cursor<'_>) -> Option<Self> {
                $(let mut $field = None;)*
                cursor.object(|c, key| match key {
                    $(k if k == $key.as_bytes() => c.fill(&mut $field),)*
                    _ => None,
                })?;
                Some($name { $($field: field_value!($kind, $field),)* })
            }
        }
    };
}

frame_structs!(read_struct);

#[cfg(test)]
mod tests {
    use super::*;

    fn unsigned(text: &str) -> Option<u64> {
        let mut cursor = Cursor {
            bytes: text.as_bytes(),
            at: 0,
            agent: None,
        };
        cursor.unsigned()
    }

    #[test]
    fn integers_of_every_length_stop_at_non_digits() {
        let digits = "98765432109876543210";
        for len in 1..=20 {
            let text = &digits[..len];
            assert_eq!(unsigned(text), text.parse().ok(), "{text}");
            for tail in [",", "}", "]", "/", ":", " ", "a"] {
                assert_eq!(
                    unsigned(&format!("{text}{tail}")),
                    text.parse().ok(),
                    "{text}{tail}"
                );
            }
        }
        assert_eq!(unsigned("18446744073709551615"), Some(u64::MAX));
        assert_eq!(unsigned("18446744073709551616"), None);
        assert_eq!(unsigned("123456789012345678901"), None);
        assert_eq!(unsigned("00000000"), None);
        assert_eq!(unsigned("1234567/"), Some(1_234_567));
        assert_eq!(unsigned("12345678.5"), None);
    }
}

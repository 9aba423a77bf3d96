//! The fast path for reading a frame batch. Every function returns `None` as soon as the input
//! leaves the shape serde_json writes (see the module docs); the caller then falls back to
//! serde_json, so `None` never loses a message and never decides one is poison.

use std::net::{Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

use crate::frame::{
    Arp, DecodeIssue, Dns, Ethernet, Frame, Icmp, Icmpv6, Ipv4, Ipv6, Ipv6Fragment, LinuxSll,
    MacAddr, Payload, Tcp, TcpOptions, Udp, VlanTag,
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
        frames.push(read_frame(c)?);
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
        let text = self.str()?;
        match &self.agent {
            Some(last) if **last == *text => Some(last.clone()),
            _ => {
                let agent: Arc<str> = Arc::from(text);
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
        let rest = self.bytes.get(self.at..)?;
        let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
        let text = &rest[..digits];
        // Up to 19 digits cannot overflow a u64; only a 20-digit number needs the checks.
        let value = if digits <= 19 {
            text.iter()
                .fold(0u64, |value, digit| value * 10 + u64::from(digit - b'0'))
        } else {
            text.iter().try_fold(0u64, |value, digit| {
                value.checked_mul(10)?.checked_add(u64::from(digit - b'0'))
            })?
        };
        self.at += digits;
        let leading_zero = digits > 1 && text[0] == b'0';
        let fraction = matches!(self.bytes.get(self.at), Some(b'.' | b'e' | b'E'));
        (digits > 0 && !leading_zero && !fraction).then_some(value)
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
    (byte as char)
        .to_digit(16)
        .and_then(|d| u8::try_from(d).ok())
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

/// Implements [`ReadJson`] for a struct: one `Option` slot per field, the object read into
/// them, then the struct built. `required` fields must be present, `defaulted` ones fall back to
/// `Default` (serde's `#[serde(default)]`), `optional` ones are `Option` fields. Any other key
/// gives up.
macro_rules! read_struct {
    ($name:ident {
        $(required: [$($req:ident = $req_key:literal),* $(,)?],)?
        $(defaulted: [$($def:ident = $def_key:literal),* $(,)?],)?
        $(optional: [$($opt:ident = $opt_key:literal),* $(,)?],)?
    }) => {
        impl ReadJson for $name {
            fn read_json(cursor: &mut Cursor<'_>) -> Option<Self> {
                $($(let mut $req = None;)*)?
                $($(let mut $def = None;)*)?
                $($(let mut $opt = None;)*)?
                cursor.object(|c, key| match key {
                    $($($req_key => c.fill(&mut $req),)*)?
                    $($($def_key => c.fill(&mut $def),)*)?
                    $($($opt_key => c.fill(&mut $opt),)*)?
                    _ => None,
                })?;
                Some($name {
                    $($($req: $req?,)*)?
                    $($($def: $def.unwrap_or_default(),)*)?
                    $($($opt,)*)?
                })
            }
        }
    };
}

fn read_frame(cursor: &mut Cursor<'_>) -> Option<Frame> {
    let (mut v, mut agent, mut boot, mut seq, mut ts_ns) = (None, None, None, None, None);
    let (mut wire_len, mut cap_len, mut link) = (None, None, None);
    let (mut eth, mut sll, mut vlan, mut arp, mut ipv4, mut ipv6) =
        (None, None, None, None, None, None);
    let (mut icmp, mut icmpv6, mut tcp, mut udp, mut dns) = (None, None, None, None, None);
    let (mut payload, mut padding, mut errors) = (None, None, None);
    cursor.object(|c, key| match key {
        b"v" => c.fill(&mut v),
        b"agent" => {
            if agent.is_some() {
                return None;
            }
            agent = Some(c.agent()?);
            Some(())
        }
        b"boot" => c.fill(&mut boot),
        b"seq" => c.fill(&mut seq),
        b"ts_ns" => c.fill(&mut ts_ns),
        b"wire_len" => c.fill(&mut wire_len),
        b"cap_len" => c.fill(&mut cap_len),
        b"link" => c.fill(&mut link),
        b"eth" => c.fill(&mut eth),
        b"sll" => c.fill(&mut sll),
        b"vlan" => c.fill(&mut vlan),
        b"arp" => c.fill(&mut arp),
        b"ipv4" => c.fill(&mut ipv4),
        b"ipv6" => c.fill(&mut ipv6),
        b"icmp" => c.fill(&mut icmp),
        b"icmpv6" => c.fill(&mut icmpv6),
        b"tcp" => c.fill(&mut tcp),
        b"udp" => c.fill(&mut udp),
        b"dns" => c.fill(&mut dns),
        b"payload" => c.fill(&mut payload),
        b"padding" => c.fill(&mut padding),
        b"errors" => c.fill(&mut errors),
        _ => None,
    })?;
    Some(Frame {
        v: v?,
        agent: agent?,
        boot: boot?,
        seq: seq?,
        ts_ns: ts_ns?,
        wire_len: wire_len?,
        cap_len: cap_len?,
        link: link?,
        eth,
        sll,
        vlan: vlan.unwrap_or_default(),
        arp,
        ipv4,
        ipv6,
        icmp,
        icmpv6,
        tcp,
        udp,
        dns,
        payload,
        padding,
        errors: errors.unwrap_or_default(),
    })
}

read_struct!(Ethernet {
    required: [src = b"src", dst = b"dst", ether_type = b"type"],
});

read_struct!(LinuxSll {
    required: [
        version = b"version",
        pkttype = b"pkttype",
        hatype = b"hatype",
        addr = b"addr",
        protocol = b"protocol"
    ],
    optional: [ifindex = b"ifindex"],
});

read_struct!(VlanTag {
    required: [
        tpid = b"tpid",
        id = b"id",
        pcp = b"pcp",
        dei = b"dei",
        ether_type = b"type"
    ],
});

read_struct!(Arp {
    required: [
        hwtype = b"hwtype",
        ptype = b"ptype",
        hwlen = b"hwlen",
        plen = b"plen",
        op = b"op",
        hwsrc = b"hwsrc",
        psrc = b"psrc",
        hwdst = b"hwdst",
        pdst = b"pdst"
    ],
});

read_struct!(Ipv4 {
    required: [
        ihl = b"ihl",
        tos = b"tos",
        len = b"len",
        id = b"id",
        flags = b"flags",
        frag = b"frag",
        ttl = b"ttl",
        proto = b"proto",
        chksum = b"chksum",
        src = b"src",
        dst = b"dst"
    ],
    optional: [options = b"options"],
});

read_struct!(Ipv6 {
    required: [
        tc = b"tc",
        fl = b"fl",
        plen = b"plen",
        nh = b"nh",
        hlim = b"hlim",
        src = b"src",
        dst = b"dst",
        upper = b"upper"
    ],
    defaulted: [ext = b"ext"],
    optional: [frag = b"frag"],
});

read_struct!(Ipv6Fragment {
    required: [offset = b"offset", more = b"more", id = b"id"],
});

read_struct!(Icmp {
    required: [icmp_type = b"type", code = b"code", chksum = b"chksum"],
    optional: [id = b"id", seq = b"seq", gw = b"gw"],
});

read_struct!(Icmpv6 {
    required: [icmp_type = b"type", code = b"code", chksum = b"chksum"],
    optional: [id = b"id", seq = b"seq"],
});

read_struct!(Tcp {
    required: [
        sport = b"sport",
        dport = b"dport",
        seq = b"seq",
        ack = b"ack",
        dataofs = b"dataofs",
        flags = b"flags",
        window = b"window",
        chksum = b"chksum",
        urgptr = b"urgptr"
    ],
    defaulted: [opts = b"opts"],
});

read_struct!(TcpOptions {
    defaulted: [kinds = b"kinds", sackok = b"sackok", sack = b"sack"],
    optional: [
        mss = b"mss",
        wscale = b"wscale",
        ts_val = b"ts_val",
        ts_ecr = b"ts_ecr"
    ],
});

read_struct!(Udp {
    required: [
        sport = b"sport",
        dport = b"dport",
        len = b"len",
        chksum = b"chksum"
    ],
});

read_struct!(Dns {
    required: [
        id = b"id",
        qr = b"qr",
        opcode = b"opcode",
        aa = b"aa",
        tc = b"tc",
        rd = b"rd",
        ra = b"ra",
        z = b"z",
        ad = b"ad",
        cd = b"cd",
        rcode = b"rcode",
        qdcount = b"qdcount",
        ancount = b"ancount",
        nscount = b"nscount",
        arcount = b"arcount"
    ],
    optional: [qname = b"qname", qtype = b"qtype", qclass = b"qclass"],
});

read_struct!(Payload {
    required: [len = b"len"],
    defaulted: [capped = b"capped"],
    optional: [hex = b"hex"],
});

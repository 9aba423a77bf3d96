//! The Frame: the versioned JSON document that carries one decoded packet on the broker.
//!
//! This is the wire contract between capture-agent and processor. `docs/frame.schema.json`
//! documents it and a test checks every corpus frame against that schema, so the two cannot drift.
//! Absent layers are omitted from the JSON (never `null`), so a frame stays small.

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Version of the Frame document. Bump it on any change that an older reader would misread.
/// New optional keys do not: readers skip keys they do not know (serde's default, and the fast
/// reader in `frame_json` falls back to serde), so `mpls` and `llc` (issue 18) kept version 1.
pub const FRAME_VERSION: u32 = 1;

/// One captured packet, decoded as far as it could be.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Frame {
    /// Frame schema version ([`FRAME_VERSION`]).
    pub v: u32,
    /// Agent id: `SOURCE_HOST` or the host name of the capturing agent.
    pub agent: Arc<str>,
    /// First sequence number of this agent run (agent start time in ns since the Unix epoch).
    /// Sequence numbers are consecutive within one boot, so gaps are measurable per boot.
    pub boot: u64,
    /// Per-agent sequence number; never repeats for one agent, even across restarts.
    pub seq: u64,
    /// Capture timestamp, nanoseconds since the Unix epoch (UTC).
    pub ts_ns: i64,
    /// Length of the packet on the wire.
    pub wire_len: u32,
    /// Number of bytes captured (may be less than `wire_len` with a small snaplen).
    pub cap_len: u32,
    /// libpcap link-layer type number (1 Ethernet, 113 Linux SLL, 276 SLL2, 101 raw IP, 0 BSD null).
    pub link: u16,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eth: Option<Ethernet>,
    /// Linux cooked capture header (SLL or SLL2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sll: Option<LinuxSll>,
    /// 802.1Q / 802.1ad tags, outermost first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub vlan: Vec<VlanTag>,
    /// MPLS label stack entries, outermost first (EtherType 0x8847 / 0x8848).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mpls: Vec<MplsLabel>,
    /// IEEE 802.2 LLC header of an 802.3 frame (its length/type field is a length <= 1500).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub llc: Option<Llc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arp: Option<Arp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ipv4: Option<Ipv4>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ipv6: Option<Ipv6>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub icmp: Option<Icmp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub icmpv6: Option<Icmpv6>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tcp: Option<Tcp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub udp: Option<Udp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dns: Option<Dns>,
    /// Application payload after the transport header (or after the IP header when there is no
    /// decoded transport), bounded by the IP length so link-layer padding is not counted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payload: Option<Payload>,
    /// Bytes after the network-layer datagram inside the link frame (Ethernet padding / trailer).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub padding: Option<Payload>,
    /// What could not be decoded, one entry per problem (the frame keeps what was decoded).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<DecodeIssue>,
}

impl Frame {
    /// An empty frame for one packet; the decoder fills in the layers.
    pub fn new(
        agent: Arc<str>,
        boot: u64,
        seq: u64,
        ts_ns: i64,
        wire_len: u32,
        cap_len: u32,
        link: u16,
    ) -> Self {
        Frame {
            v: FRAME_VERSION,
            agent,
            boot,
            seq,
            ts_ns,
            wire_len,
            cap_len,
            link,
            eth: None,
            sll: None,
            vlan: Vec::new(),
            mpls: Vec::new(),
            llc: None,
            arp: None,
            ipv4: None,
            ipv6: None,
            icmp: None,
            icmpv6: None,
            tcp: None,
            udp: None,
            dns: None,
            payload: None,
            padding: None,
            errors: Vec::new(),
        }
    }

    /// The innermost EtherType: after all VLAN tags, or the SLL protocol for cooked captures.
    /// None for an 802.3 frame, whose field is a length ([`Frame::llc`]), not a type.
    pub fn inner_ether_type(&self) -> Option<u16> {
        let value = if let Some(tag) = self.vlan.last() {
            tag.ether_type
        } else if let Some(eth) = &self.eth {
            eth.ether_type
        } else {
            return self.sll.as_ref().map(|s| s.protocol);
        };
        (value > MAX_8023_LENGTH).then_some(value)
    }

    /// The 802.3 length field, when the frame's (innermost) length/type field is a length.
    pub fn ieee8023_len(&self) -> Option<u16> {
        let value = match self.vlan.last() {
            Some(tag) => tag.ether_type,
            None => self.eth.as_ref()?.ether_type,
        };
        (value <= MAX_8023_LENGTH).then_some(value)
    }

    /// True when the packet is an IPv4 or IPv6 fragment (first or later).
    pub fn is_fragment(&self) -> bool {
        if let Some(ip) = &self.ipv4 {
            return ip.flags & IPV4_FLAG_MF != 0 || ip.frag != 0;
        }
        self.ipv6.as_ref().is_some_and(|ip| ip.frag.is_some())
    }
}

/// An Ethernet length/type field up to this value is an IEEE 802.3 length, not an EtherType.
pub const MAX_8023_LENGTH: u16 = 1500;

/// Ethernet II header (or the MAC addresses and length of an IEEE 802.3 frame).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ethernet {
    pub src: MacAddr,
    pub dst: MacAddr,
    /// The length/type field right after the MAC addresses: an EtherType (0x8100 for a tagged
    /// frame), or for 802.3 frames (value <= 1500) the length, with [`Frame::llc`] set.
    #[serde(rename = "type")]
    pub ether_type: u16,
}

/// Linux cooked capture header (v1 or v2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinuxSll {
    /// 1 for SLL, 2 for SLL2.
    pub version: u8,
    /// Packet type (0 to us, 1 broadcast, 2 multicast, 3 other host, 4 outgoing).
    pub pkttype: u16,
    /// ARPHRD_ type of the device.
    pub hatype: u16,
    /// Link-layer source address (hex, as long as the header says).
    pub addr: String,
    /// Protocol (an EtherType for Ethernet-like devices).
    pub protocol: u16,
    /// Interface index (SLL2 only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ifindex: Option<u32>,
}

/// One 802.1Q (TPID 0x8100) or 802.1ad (0x88a8) tag.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct VlanTag {
    pub tpid: u16,
    pub id: u16,
    pub pcp: u8,
    pub dei: bool,
    /// EtherType that follows this tag.
    #[serde(rename = "type")]
    pub ether_type: u16,
}

/// One MPLS label stack entry (RFC 3032).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct MplsLabel {
    /// 20-bit label.
    pub label: u32,
    /// Traffic class (the former EXP bits).
    pub tc: u8,
    /// Bottom-of-stack bit: the last entry of the stack.
    pub bottom: bool,
    pub ttl: u8,
}

/// IEEE 802.2 LLC header, with the SNAP extension when DSAP and SSAP are 0xaa.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Llc {
    pub dsap: u8,
    pub ssap: u8,
    /// Control field: one byte for U frames, two for I and S frames.
    pub control: u16,
    /// SNAP organization code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oui: Option<u32>,
    /// SNAP protocol id (an EtherType when `oui` is 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<u16>,
}

/// ARP for any hardware/protocol pair; addresses are text when the pair is Ethernet/IPv4,
/// otherwise hex.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Arp {
    pub hwtype: u16,
    pub ptype: u16,
    pub hwlen: u8,
    pub plen: u8,
    pub op: u16,
    pub hwsrc: String,
    pub psrc: String,
    pub hwdst: String,
    pub pdst: String,
}

/// IPv4 "More fragments" bit in [`Ipv4::flags`] (scapy numbering: MF=1, DF=2, evil=4).
pub const IPV4_FLAG_MF: u8 = 1;
/// IPv4 "Don't fragment" bit in [`Ipv4::flags`].
pub const IPV4_FLAG_DF: u8 = 2;

/// IPv4 header.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ipv4 {
    /// Header length in 32-bit words.
    pub ihl: u8,
    /// The whole TOS byte (DSCP << 2 | ECN).
    pub tos: u8,
    /// Total length from the header.
    pub len: u16,
    pub id: u16,
    /// The three flag bits as an integer, scapy numbering (evil=4, DF=2, MF=1).
    pub flags: u8,
    /// Fragment offset in 8-byte units.
    pub frag: u16,
    pub ttl: u8,
    pub proto: u8,
    pub chksum: u16,
    pub src: Ipv4Addr,
    pub dst: Ipv4Addr,
    /// Raw header options, hex (absent when the header has none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub options: Option<String>,
}

/// IPv6 header plus the extension-header chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ipv6 {
    pub tc: u8,
    pub fl: u32,
    pub plen: u16,
    /// Next-header value of the fixed header.
    pub nh: u8,
    pub hlim: u8,
    pub src: Ipv6Addr,
    pub dst: Ipv6Addr,
    /// Extension headers in order, by protocol number (0 hop-by-hop, 43 routing, 44 fragment, ...).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ext: Vec<u8>,
    /// Upper-layer protocol after the extension headers.
    pub upper: u8,
    /// Fragment header, when one is present.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub frag: Option<Ipv6Fragment>,
}

/// IPv6 fragment header fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ipv6Fragment {
    /// Offset in 8-byte units.
    pub offset: u16,
    pub more: bool,
    pub id: u32,
}

/// ICMPv4 header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Icmp {
    #[serde(rename = "type")]
    pub icmp_type: u8,
    pub code: u8,
    pub chksum: u16,
    /// Identifier (echo, timestamp, information and address-mask messages).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seq: Option<u16>,
    /// Gateway address of a redirect (type 5).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gw: Option<Ipv4Addr>,
    /// Pointer of a parameter problem (type 12).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ptr: Option<u8>,
    /// Bytes 4..8 as one number for the other types (unreachable, time exceeded, ...): zero,
    /// or e.g. the next-hop MTU (type 3 code 4) and the RFC 4884 length.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unused: Option<u32>,
}

/// ICMPv6 header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Icmpv6 {
    #[serde(rename = "type")]
    pub icmp_type: u8,
    pub code: u8,
    pub chksum: u16,
    /// Echo request/reply identifier.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seq: Option<u16>,
}

/// TCP header with its options.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tcp {
    pub sport: u16,
    pub dport: u16,
    pub seq: u32,
    pub ack: u32,
    /// Header length in 32-bit words.
    pub dataofs: u8,
    /// Flags as an integer: FIN=1 SYN=2 RST=4 PSH=8 ACK=16 URG=32 ECE=64 CWR=128 NS=256.
    pub flags: u16,
    pub window: u16,
    pub chksum: u16,
    pub urgptr: u16,
    #[serde(default, skip_serializing_if = "TcpOptions::is_empty")]
    pub opts: TcpOptions,
}

/// Decoded TCP options. `kinds` keeps every option kind in wire order (NOP=1 and EOL=0 included),
/// so unknown kinds and option order (an OS fingerprint) are not lost.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TcpOptions {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub kinds: Vec<u8>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mss: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wscale: Option<u8>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub sackok: bool,
    /// SACK blocks as (left edge, right edge).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sack: Vec<(u32, u32)>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ts_val: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ts_ecr: Option<u32>,
}

impl TcpOptions {
    pub fn is_empty(&self) -> bool {
        self.kinds.is_empty()
    }
}

/// UDP header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Udp {
    pub sport: u16,
    pub dport: u16,
    pub len: u16,
    pub chksum: u16,
}

/// DNS message header, first question and section counts (UDP or TCP, ports 53, 5353 (mDNS)
/// and 5355 (LLMNR, which has DNS's wire format)).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dns {
    pub id: u16,
    pub qr: bool,
    pub opcode: u8,
    pub aa: bool,
    pub tc: bool,
    pub rd: bool,
    pub ra: bool,
    pub z: bool,
    pub ad: bool,
    pub cd: bool,
    pub rcode: u8,
    pub qdcount: u16,
    pub ancount: u16,
    pub nscount: u16,
    pub arcount: u16,
    /// First question name, dotted, without the trailing dot (`.` for the root).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub qname: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub qtype: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub qclass: Option<u16>,
}

/// Payload bytes: the captured length and, when payload capture is on, a lowercase hex copy of
/// at most the configured number of bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Payload {
    /// Number of payload bytes present in the capture.
    pub len: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hex: Option<String>,
    /// True when `hex` holds fewer bytes than `len` (capped by the byte limit).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub capped: bool,
}

/// Why part of a packet could not be decoded. Serialized as a snake_case string.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DecodeIssue {
    /// The capture holds fewer bytes than the link header needs.
    TruncatedLink,
    /// A VLAN tag is cut short.
    TruncatedVlan,
    /// The ARP packet is cut short or its lengths are inconsistent.
    MalformedArp,
    /// The IPv4/IPv6 header is cut short.
    TruncatedIp,
    /// The IP header is invalid (bad version, IHL < 5, total length < header length, ...).
    MalformedIp,
    /// An IPv6 extension header is cut short or malformed.
    MalformedIpv6Ext,
    /// The transport header is cut short.
    TruncatedTransport,
    /// The transport header is invalid (e.g. TCP data offset < 5).
    MalformedTransport,
    /// A TCP option is cut short or has an invalid length.
    MalformedTcpOption,
    /// The DNS message is cut short or malformed.
    MalformedDns,
    /// The EtherType / link protocol is one we do not decode (the frame keeps the link layer).
    UnsupportedEtherType,
    /// The IP protocol is one we do not decode (the frame keeps the IP layer).
    UnsupportedIpProto,
    /// The IP payload is a non-first fragment: no transport header to decode. Not a problem:
    /// reported as a fragment count.
    Fragment,
}

impl DecodeIssue {
    /// Every variant, for counters that report each reason.
    pub const ALL: [DecodeIssue; 13] = [
        DecodeIssue::TruncatedLink,
        DecodeIssue::TruncatedVlan,
        DecodeIssue::MalformedArp,
        DecodeIssue::TruncatedIp,
        DecodeIssue::MalformedIp,
        DecodeIssue::MalformedIpv6Ext,
        DecodeIssue::TruncatedTransport,
        DecodeIssue::MalformedTransport,
        DecodeIssue::MalformedTcpOption,
        DecodeIssue::MalformedDns,
        DecodeIssue::UnsupportedEtherType,
        DecodeIssue::UnsupportedIpProto,
        DecodeIssue::Fragment,
    ];

    /// Stable snake_case name, as in JSON and metric labels.
    pub fn as_str(self) -> &'static str {
        match self {
            DecodeIssue::TruncatedLink => "truncated_link",
            DecodeIssue::TruncatedVlan => "truncated_vlan",
            DecodeIssue::MalformedArp => "malformed_arp",
            DecodeIssue::TruncatedIp => "truncated_ip",
            DecodeIssue::MalformedIp => "malformed_ip",
            DecodeIssue::MalformedIpv6Ext => "malformed_ipv6_ext",
            DecodeIssue::TruncatedTransport => "truncated_transport",
            DecodeIssue::MalformedTransport => "malformed_transport",
            DecodeIssue::MalformedTcpOption => "malformed_tcp_option",
            DecodeIssue::MalformedDns => "malformed_dns",
            DecodeIssue::UnsupportedEtherType => "unsupported_ether_type",
            DecodeIssue::UnsupportedIpProto => "unsupported_ip_proto",
            DecodeIssue::Fragment => "fragment",
        }
    }

    /// True for problems in the packet itself, as opposed to "not decoded by design"
    /// (unsupported protocols and non-first fragments).
    pub fn is_error(self) -> bool {
        !matches!(
            self,
            DecodeIssue::UnsupportedEtherType
                | DecodeIssue::UnsupportedIpProto
                | DecodeIssue::Fragment
        )
    }
}

impl fmt::Display for DecodeIssue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A 48-bit MAC address, written `aa:bb:cc:dd:ee:ff`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct MacAddr(pub [u8; 6]);

impl fmt::Display for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut buf = [0u8; 17];
        f.write_str(self.write_to(&mut buf))
    }
}

impl MacAddr {
    /// Formats into a caller buffer without allocating (hot path of the CSV writer).
    pub fn write_to<'a>(&self, buf: &'a mut [u8; 17]) -> &'a str {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        for (i, byte) in self.0.iter().enumerate() {
            buf[i * 3] = HEX[(byte >> 4) as usize];
            buf[i * 3 + 1] = HEX[(byte & 0xf) as usize];
            if i < 5 {
                buf[i * 3 + 2] = b':';
            }
        }
        // Only ASCII hex digits and colons were written.
        std::str::from_utf8(&buf[..]).unwrap_or_default()
    }
}

impl std::str::FromStr for MacAddr {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut out = [0u8; 6];
        let mut parts = s.split(':');
        for byte in out.iter_mut() {
            let part = parts
                .next()
                .ok_or_else(|| format!("MAC address too short: {s:?}"))?;
            *byte = u8::from_str_radix(part, 16).map_err(|_| format!("bad MAC address {s:?}"))?;
        }
        if parts.next().is_some() {
            return Err(format!("MAC address too long: {s:?}"));
        }
        Ok(MacAddr(out))
    }
}

impl Serialize for MacAddr {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut buf = [0u8; 17];
        serializer.serialize_str(self.write_to(&mut buf))
    }
}

impl<'de> Deserialize<'de> for MacAddr {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s: std::borrow::Cow<'de, str> = Deserialize::deserialize(deserializer)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mac_round_trips_through_text() {
        let mac = MacAddr([0x00, 0x1b, 0x21, 0xaa, 0xff, 0x09]);
        assert_eq!(mac.to_string(), "00:1b:21:aa:ff:09");
        assert_eq!("00:1b:21:aa:ff:09".parse::<MacAddr>(), Ok(mac));
        assert!("00:1b:21".parse::<MacAddr>().is_err());
        assert!("00:1b:21:aa:ff:09:11".parse::<MacAddr>().is_err());
    }

    #[test]
    fn absent_layers_are_omitted_and_frames_round_trip() {
        let mut frame = Frame::new(Arc::from("a1"), 7, 8, 1_500_000_000_123_456_789, 60, 60, 1);
        frame.udp = Some(Udp {
            sport: 53,
            dport: 4000,
            len: 20,
            chksum: 0,
        });
        frame.errors.push(DecodeIssue::MalformedDns);
        let json = serde_json::to_string(&frame).unwrap();
        assert!(!json.contains("null"), "{json}");
        assert!(json.contains(r#""errors":["malformed_dns"]"#), "{json}");
        let back: Frame = serde_json::from_str(&json).unwrap();
        assert_eq!(back, frame);
    }

    #[test]
    fn issue_names_match_serde() {
        for issue in DecodeIssue::ALL {
            assert_eq!(
                serde_json::to_string(&issue).unwrap(),
                format!("\"{}\"", issue.as_str())
            );
        }
    }
}

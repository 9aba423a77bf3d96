//! Frame -> the original capture tools' message body (original.md §2.3-2.4).
//!
//! `convert_pkt_to_json` walked kamene's layers and, per layer, stored the dissected fields in
//! protocol order with these rules, reproduced here:
//! * fields named `proto, flags, ack, id, window, dataofs, frag, reserved, ttl, chksum` never appear
//!   under their own name: when non-zero they overwrite the previous ordinary field (the "last
//!   key"), when zero they are skipped. So `ip.len` ends up holding the last non-zero of
//!   len/id/flags/frag/ttl/proto/chksum, `tcp.seq` the last non-zero of
//!   seq/ack/dataofs/reserved/flags/window/chksum, `udp.len` the checksum (or the length),
//!   `icmp.code` the echo id or the checksum;
//! * kamene stopped dissecting a layer when its bytes ran out and stored `None` for conditional
//!   fields that do not apply while bytes remain (ICMP `ts_ori`, `gw`, ... of an echo with data);
//! * TCP options become `fields_options` {EOL, NOP, MSS, WScale, SAckOK, SAck, Timestamp} (TSval
//!   only, SAckOK as "", NOP/EOL as null), non-zero `urgptr` becomes `fields_urgptr`;
//! * a DNS layer (UDP/TCP port 53), and an LLMNR layer (UDP port 5355), keeps kamene's class
//!   defaults (`default_*`) because converting its question list raised, which also ended the
//!   walk (no raw/padding after it);
//! * the datagram quoted by an ICMP error was IPerror / UDPerror, TCPerror or ICMPerror / Raw /
//!   Padding (`icmp_quote`): the processor dropped the `*error` keys, so the quoted payload is Raw;
//! * 802.3 frames were Dot3 / LLC (/ SNAP), and EtherTypes kamene had no layer for (MPLS,
//!   802.1ad) ended the walk in one Raw layer whose bytes the Frame does not keep;
//! * Raw/Padding payloads: lowercase hex under `load` when the bytes are valid UTF-8, else under
//!   `hex_field_load`.
//!
//! Layers we cannot rebuild from a Frame (IPv6 extension headers, ICMPv6 other than echo, the
//! options AltChkSum/Mood/Experiment) are left out; the original processor dropped them anyway.
//! docs/schemas.md lists every approximation and the few antinex-v1 cells they change.

use serde_json::{Map, Value, json};

use super::icmp_quote;
use crate::frame::{Frame, Icmp, Icmpv6, Ipv4, Ipv6, Llc, MAX_8023_LENGTH, Payload, Tcp, Udp};

/// kamene field names that `convert_pkt_to_json` wrote to the previous key instead of their own.
const SHADOWED: [&str; 10] = [
    "proto", "flags", "ack", "id", "window", "dataofs", "frag", "reserved", "ttl", "chksum",
];

/// True when the original could publish this frame (its capture tools dropped packets without an
/// Ethernet layer). [`message_from_frame`] still converts the rest of such frames.
pub fn is_publishable(frame: &Frame) -> bool {
    frame.eth.is_some()
}

/// The original message body for `frame`: `{"data": {...layers...}, "created", "source"}`.
/// `created` is the original's `%Y-%m-%d %H:%M:%S` local time text, `source` its SOURCE_HOST.
pub fn message_from_frame(frame: &Frame, created: &str, source: &str) -> Value {
    json!({
        "data": Value::Object(data_layers(frame)),
        "created": created,
        "source": source,
    })
}

/// One layer's dict, built with the original's fields-pass rules.
pub(super) struct Layer {
    map: Map<String, Value>,
    last_key: String,
}

impl Layer {
    /// A layer whose class's last field is `last_field` (the fields pass starts with the last key
    /// of the defaults pass, `default_<last field>`).
    pub(super) fn new(last_field: &str) -> Self {
        Layer {
            map: Map::new(),
            last_key: format!("default_{last_field}"),
        }
    }

    pub(super) fn field(&mut self, name: &str, value: impl Into<Value>) {
        let value = value.into();
        if SHADOWED.contains(&name) {
            if truthy(&value) {
                self.map.insert(self.last_key.clone(), value);
            }
            return;
        }
        self.map.insert(name.to_owned(), value);
        name.clone_into(&mut self.last_key);
    }

    /// A key the original wrote outside the normal rule (`fields_options`, `fields_urgptr`, ...).
    fn special(&mut self, key: &str, value: Value) {
        self.map.insert(key.to_owned(), value);
    }

    pub(super) fn into_value(self) -> Value {
        Value::Object(self.map)
    }
}

/// Python truthiness of a JSON value.
fn truthy(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
    }
}

/// The `data` object of the original message for `frame`.
pub fn data_layers(frame: &Frame) -> Map<String, Value> {
    let mut data = Map::new();
    // Payload after the last decoded header: which part of it kamene showed as Raw.
    let mut raw_from: Option<u32> = Some(0);
    if let Some(eth) = &frame.eth {
        if eth.ether_type <= MAX_8023_LENGTH {
            // kamene dissects an 802.3 length field as Dot3 (then LLC), which the processor
            // dropped; Dot3 cuts the frame at its length, so the rest is Padding.
            let mut l = Layer::new("len");
            l.field("dst", eth.dst.to_string());
            l.field("src", eth.src.to_string());
            l.field("len", eth.ether_type);
            data.insert("dot3".into(), l.into_value());
        } else {
            let mut l = Layer::new("type");
            l.field("dst", eth.dst.to_string());
            l.field("src", eth.src.to_string());
            l.field("type", eth.ether_type);
            data.insert("ether".into(), l.into_value());
            if unknown_to_kamene(eth.ether_type) {
                return data;
            }
        }
    }
    for tag in &frame.vlan {
        // Dot1Q: prio, id (the DEI bit, shadowed into prio), vlan, type. Repeated tags share the
        // key, so the innermost wins, as in the original's dict.
        let mut l = Layer::new("type");
        l.field("prio", tag.pcp);
        l.field("id", u8::from(tag.dei));
        l.field("vlan", tag.id);
        l.field("type", tag.ether_type);
        data.insert("dot1q".into(), l.into_value());
        if unknown_to_kamene(tag.ether_type) {
            return data;
        }
    }
    if let Some(llc) = &frame.llc {
        raw_from = llc_layers(llc, &mut data);
    }
    if let Some(arp) = &frame.arp {
        let mut l = Layer::new("pdst");
        l.field("hwtype", arp.hwtype);
        l.field("ptype", arp.ptype);
        l.field("hwlen", arp.hwlen);
        l.field("plen", arp.plen);
        l.field("op", arp.op);
        l.field("hwsrc", arp.hwsrc.as_str());
        l.field("psrc", arp.psrc.as_str());
        l.field("hwdst", arp.hwdst.as_str());
        l.field("pdst", arp.pdst.as_str());
        data.insert("arp".into(), l.into_value());
    }
    if let Some(ip) = &frame.ipv4 {
        data.insert("ip".into(), ipv4_layer(ip));
    } else if let Some(ip) = &frame.ipv6 {
        data.insert("ipv6".into(), ipv6_layer(ip));
    }
    let mut quote = None;
    if let Some(tcp) = &frame.tcp {
        data.insert("tcp".into(), tcp_layer(tcp));
        if dns_on_port_53(frame, tcp.sport, tcp.dport) {
            data.insert("dns".into(), dns_defaults(true));
            return data;
        }
    } else if let Some(udp) = &frame.udp {
        data.insert("udp".into(), udp_layer(udp));
        if dns_on_port_53(frame, udp.sport, udp.dport) {
            data.insert("dns".into(), dns_defaults(false));
            return data;
        }
        if let Some((key, layer)) = llmnr_layer(frame, udp) {
            data.insert(key.into(), layer);
            return data;
        }
    } else if let Some(icmp) = &frame.icmp {
        let (layer, from) = icmp_layer(icmp, frame.payload.as_ref());
        data.insert("icmp".into(), layer);
        raw_from = from;
        if is_icmp_error(icmp.icmp_type) {
            // kamene: IPerror / UDPerror|TCPerror|ICMPerror / Raw / Padding over the quote.
            let bytes = frame.payload.as_ref().and_then(payload_all_bytes);
            let walked = icmp_quote::walk(bytes.as_deref().unwrap_or_default());
            for (key, layer) in walked.layers {
                data.insert(key.into(), layer);
            }
            if walked.dns {
                data.insert("dns".into(), dns_defaults(false));
                return data;
            }
            quote = Some((walked.raw, walked.padding));
        }
    } else if let Some(icmp6) = &frame.icmpv6 {
        if let Some((key, layer)) = icmpv6_echo_layer(icmp6, frame.payload.as_ref()) {
            data.insert(key.into(), layer);
        }
        // Echo data is part of the echo layer; other ICMPv6 bodies are not rebuilt.
        raw_from = None;
    }
    if let (Some(from), Some(payload)) = (raw_from, &frame.payload)
        && let Some(hex) = payload_hex_from(payload, from)
    {
        data.insert("raw".into(), load_layer(hex));
    }
    if let Some((raw, padding)) = quote {
        for (key, bytes) in [("raw", raw), ("padding", padding)] {
            if !bytes.is_empty() {
                data.insert(key.into(), load_layer(&hex_of(&bytes)));
            }
        }
    }
    // The link padding comes last in kamene's layer list, so it wins the shared key.
    if let Some(hex) = frame.padding.as_ref().and_then(|p| payload_hex_from(p, 0)) {
        data.insert("padding".into(), load_layer(hex));
    }
    data
}

fn ipv4_layer(ip: &Ipv4) -> Value {
    let mut l = Layer::new("options");
    l.field("version", 4);
    l.field("ihl", ip.ihl);
    l.field("tos", ip.tos);
    l.field("len", ip.len);
    l.field("id", ip.id);
    l.field("flags", ip.flags);
    l.field("frag", ip.frag);
    l.field("ttl", ip.ttl);
    l.field("proto", ip.proto);
    l.field("chksum", ip.chksum);
    l.field("src", ip.src.to_string());
    l.field("dst", ip.dst.to_string());
    if let Some(opts) = ip.options.as_deref().filter(|o| !o.is_empty()) {
        // The original stored str() of kamene's option objects; we keep the raw hex.
        l.special("fields_options", Value::from(opts));
    }
    l.into_value()
}

fn ipv6_layer(ip: &Ipv6) -> Value {
    let mut l = Layer::new("dst");
    l.field("version", 6);
    l.field("tc", ip.tc);
    l.field("fl", ip.fl);
    l.field("plen", ip.plen);
    l.field("nh", ip.nh);
    l.field("hlim", ip.hlim);
    l.field("src", ip.src.to_string());
    l.field("dst", ip.dst.to_string());
    l.into_value()
}

fn tcp_layer(tcp: &Tcp) -> Value {
    let mut l = Layer::new("options");
    l.field("sport", tcp.sport);
    l.field("dport", tcp.dport);
    l.field("seq", tcp.seq);
    l.field("ack", tcp.ack);
    l.field("dataofs", tcp.dataofs);
    l.field("reserved", 0);
    l.field("flags", tcp.flags);
    l.field("window", tcp.window);
    l.field("chksum", tcp.chksum);
    if tcp.urgptr != 0 {
        l.special("fields_urgptr", Value::from(tcp.urgptr));
    }
    let o = &tcp.opts;
    if !o.kinds.is_empty() {
        // Known names only, in this fixed insertion order; repeated options collapse.
        let mut opts = Map::new();
        if o.kinds.contains(&0) {
            opts.insert("EOL".into(), Value::Null);
        }
        if o.kinds.contains(&1) {
            opts.insert("NOP".into(), Value::Null);
        }
        if let Some(mss) = o.mss {
            opts.insert("MSS".into(), mss.into());
        }
        if let Some(ws) = o.wscale {
            opts.insert("WScale".into(), ws.into());
        }
        if o.sackok {
            opts.insert("SAckOK".into(), "".into());
        }
        if !o.sack.is_empty() {
            let edges: Vec<Value> = o
                .sack
                .iter()
                .flat_map(|(l, r)| [Value::from(*l), Value::from(*r)])
                .collect();
            opts.insert("SAck".into(), Value::Array(edges));
        }
        if let Some(ts) = o.ts_val {
            opts.insert("Timestamp".into(), ts.into());
        }
        l.special("fields_options", Value::Object(opts));
    }
    l.into_value()
}

fn udp_layer(udp: &Udp) -> Value {
    let mut l = Layer::new("chksum");
    l.field("sport", udp.sport);
    l.field("dport", udp.dport);
    l.field("len", udp.len);
    l.field("chksum", udp.chksum);
    l.into_value()
}

/// kamene bound DNS to UDP/TCP port 53 only (not 5353), and only when there was a payload.
fn dns_on_port_53(frame: &Frame, sport: u16, dport: u16) -> bool {
    frame.dns.is_some() && (sport == 53 || dport == 53)
}

/// EtherTypes the netpipe decoder follows but kamene had no layer for (802.1ad and the old QinQ
/// TPID, MPLS): kamene showed everything after them as one Raw layer. The Frame does not keep
/// those header bytes, so the message ends there and the original's `raw_hex_field_load` of such
/// frames stays empty (docs/schemas.md).
fn unknown_to_kamene(ether_type: u16) -> bool {
    matches!(ether_type, 0x88a8 | 0x9100 | 0x8847 | 0x8848)
}

/// ICMP types whose body quotes the offending datagram (kamene's IPerror payload).
fn is_icmp_error(icmp_type: u8) -> bool {
    matches!(icmp_type, 3 | 4 | 5 | 11 | 12)
}

/// kamene's LLMNR layer (UDP port 5355, either direction): like DNS, converting its question
/// raised, so the layer keeps its class defaults and the walk ends there (no Raw, no Padding).
/// kamene's dispatcher picks LLMNRResponse when bit 0x80 of payload byte 4 is set; that byte is
/// the high byte of QDCOUNT (not the QR flag), so in practice it is almost always a query.
fn llmnr_layer(frame: &Frame, udp: &Udp) -> Option<(&'static str, Value)> {
    let dns = frame.dns.as_ref()?;
    if udp.sport != LLMNR_PORT && udp.dport != LLMNR_PORT {
        return None;
    }
    let key = if dns.qdcount & 0x8000 != 0 {
        "llmnrresponse"
    } else {
        "llmnrquery"
    };
    Some((
        key,
        json!({
            "default_id": 0, "default_qr": 0, "default_opcode": 0, "default_c": 0,
            "default_tc": 0, "default_z": 0, "default_rcode": 0, "default_qdcount": null,
            "default_ancount": null, "default_nscount": null, "default_arcount": null,
            "default_qd": null, "default_an": null, "default_ns": null, "default_ar": null,
        }),
    ))
}

const LLMNR_PORT: u16 = 5355;

/// kamene's LLC (and SNAP) layers of an 802.3 or tagged-length frame, which the processor
/// dropped. Returns the payload offset from which kamene showed Raw: after the SNAP header for
/// protocols it has no layer for, after the 35-byte BPDU for STP, none for its other layers.
fn llc_layers(llc: &Llc, data: &mut Map<String, Value>) -> Option<u32> {
    let mut l = Layer::new("ctrl");
    l.field("dsap", llc.dsap);
    l.field("ssap", llc.ssap);
    l.field("ctrl", llc.control);
    data.insert("llc".into(), l.into_value());
    if let (Some(oui), Some(pid)) = (llc.oui, llc.pid) {
        let mut l = Layer::new("code");
        l.field("OUI", oui);
        l.field("code", pid);
        data.insert("snap".into(), l.into_value());
        // kamene binds SNAP codes 0x8100 (Dot1Q), 1 (Ether), 0x888e (EAPOL), 267 (STP); IPv4 and
        // ARP are decoded into the frame and handled by the usual path.
        return match pid {
            0x8100 | 1 | 0x888e | 267 => None,
            _ => Some(0),
        };
    }
    if (llc.dsap, llc.ssap, llc.control) == (0x42, 0x42, 3) {
        return Some(STP_BPDU_LEN);
    }
    Some(0)
}

/// kamene's STP layer: protocol id to forward delay.
const STP_BPDU_LEN: u32 = 35;

/// kamene's DNS class defaults, which is all the original ever recorded for DNS.
fn dns_defaults(over_tcp: bool) -> Value {
    let _ = over_tcp; // `length` is a ConditionalField: its default is None either way.
    json!({
        "default_length": null, "default_id": 0, "default_qr": 0, "default_opcode": 0,
        "default_aa": 0, "default_tc": 0, "default_rd": 0, "default_ra": 0, "default_z": 0,
        "default_ad": 0, "default_cd": 0, "default_rcode": 0, "default_qdcount": null,
        "default_ancount": null, "default_nscount": null, "default_arcount": null,
        "default_qd": null, "default_an": null, "default_ns": null, "default_ar": null,
    })
}

/// The ICMP layer and the payload offset from which kamene showed a Raw layer (None when the
/// rest is an IP-in-ICMP error quote, which the original dropped).
///
/// The Frame's ICMP payload is what follows the 8-byte header; kamene's conditional fields are
/// walked over header bytes 4..8 plus that payload, `None` for fields that do not apply while
/// bytes remain.
fn icmp_layer(icmp: &Icmp, payload: Option<&Payload>) -> (Value, Option<u32>) {
    let t = icmp.icmp_type;
    let mut layer = Layer::new("unused");
    layer.field("type", t);
    layer.field("code", icmp.code);
    layer.field("chksum", icmp.chksum);
    let mut w = IcmpWalk {
        layer,
        rest: 4 + payload.map_or(0, |p| p.len),
        pos: -4,
    };
    let echo_like = matches!(t, 0 | 8 | 13..=18);
    let ts_fields = matches!(t, 13 | 14);
    let word = |pos: i64| -> Option<u32> {
        let bytes = payload_bytes(payload?, usize::try_from(pos).ok()?, 4)?;
        Some(u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]))
    };
    let id = icmp.id.unwrap_or(0);
    let seq = icmp.seq.unwrap_or(0);
    let gw = icmp.gw;
    let ptr = icmp.ptr.unwrap_or(0);
    let unused = icmp.unused.unwrap_or(0);
    let _ = w.step("id", echo_like, 2, |_| id.into())
        && w.step("seq", echo_like, 2, |_| seq.into())
        && w.step("ts_ori", ts_fields, 4, |p| opt(word(p)))
        && w.step("ts_rx", ts_fields, 4, |p| opt(word(p)))
        && w.step("ts_tx", ts_fields, 4, |p| opt(word(p)))
        && w.step("gw", t == 5, 4, |_| opt(gw.map(|g| g.to_string())))
        && w.step("ptr", t == 12, 1, |_| ptr.into())
        && w.step("reserved", t == 12, 3, |_| 0.into())
        && w.step("addr_mask", matches!(t, 17 | 18), 4, |p| {
            opt(word(p).map(|m| std::net::Ipv4Addr::from(m).to_string()))
        })
        && w.step("unused", !matches!(t, 0 | 5 | 8 | 12..=18), 4, |_| {
            unused.into()
        });
    let raw_from = if is_icmp_error(t) {
        None // kamene: the quote is IPerror and what follows (icmp_quote)
    } else {
        u32::try_from(w.pos.max(0)).ok()
    };
    (w.layer.into_value(), raw_from)
}

/// kamene's dissection of ICMP's conditional fields over the remaining bytes.
struct IcmpWalk {
    layer: Layer,
    /// Bytes not yet dissected (header bytes 4..8 plus the payload).
    rest: u32,
    /// Payload offset of the next byte (negative while inside header bytes 4..8).
    pos: i64,
}

impl IcmpWalk {
    /// One field: stored (and its bytes consumed) when it applies, `None` when it does not;
    /// nothing at all once the bytes ran out (returns false to stop).
    fn step(
        &mut self,
        name: &str,
        applies: bool,
        size: u32,
        value: impl FnOnce(i64) -> Value,
    ) -> bool {
        if self.rest == 0 {
            return false;
        }
        if applies {
            self.layer.field(name, value(self.pos));
            self.rest = self.rest.saturating_sub(size);
            self.pos += i64::from(size);
        } else {
            self.layer.field(name, Value::Null);
        }
        true
    }
}

fn opt<T: Into<Value>>(v: Option<T>) -> Value {
    v.map_or(Value::Null, Into::into)
}

/// kamene's ICMPv6EchoRequest / ICMPv6EchoReply (type, code, cksum, id, seq, data); `id` is
/// shadowed into `cksum`. Other ICMPv6 messages are not rebuilt.
fn icmpv6_echo_layer(icmp: &Icmpv6, payload: Option<&Payload>) -> Option<(&'static str, Value)> {
    let key = match icmp.icmp_type {
        128 => "icmpv6echorequest",
        129 => "icmpv6echoreply",
        _ => return None,
    };
    let mut l = Layer::new("data");
    l.field("type", icmp.icmp_type);
    l.field("code", icmp.code);
    l.field("cksum", icmp.chksum);
    l.field("id", icmp.id.unwrap_or(0));
    l.field("seq", icmp.seq.unwrap_or(0));
    if let Some(hex) = payload.and_then(|p| payload_hex_from(p, 0)) {
        l.field("hex_field_data", hex);
    }
    Some((key, l.into_value()))
}

/// `{"load": hex}` when the bytes are valid UTF-8, else `{"hex_field_load": hex}`.
fn load_layer(hex: &str) -> Value {
    let key = if hex_is_utf8(hex) {
        "load"
    } else {
        "hex_field_load"
    };
    let mut m = Map::new();
    m.insert(key.into(), Value::from(hex));
    Value::Object(m)
}

/// The payload's hex from byte `from` on, when it was captured and is non-empty.
fn payload_hex_from(p: &Payload, from: u32) -> Option<&str> {
    let hex = p.hex.as_deref()?;
    let start = usize::try_from(from).ok()?.checked_mul(2)?;
    let rest = hex.get(start..)?;
    (!rest.is_empty()).then_some(rest)
}

/// Every captured payload byte.
fn payload_all_bytes(p: &Payload) -> Option<Vec<u8>> {
    decode_hex(p.hex.as_deref()?)
}

fn hex_of(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut out, b| {
            let _ = write!(out, "{b:02x}");
            out
        })
}

/// `n` payload bytes at `offset`, when captured.
fn payload_bytes(p: &Payload, offset: usize, n: usize) -> Option<Vec<u8>> {
    let hex = p.hex.as_deref()?;
    let part = hex.get(offset.checked_mul(2)?..(offset + n).checked_mul(2)?)?;
    decode_hex(part)
}

fn decode_hex(hex: &str) -> Option<Vec<u8>> {
    if !hex.len().is_multiple_of(2) {
        return None;
    }
    hex.as_bytes()
        .chunks_exact(2)
        .map(|pair| {
            let hi = (pair[0] as char).to_digit(16)?;
            let lo = (pair[1] as char).to_digit(16)?;
            Some((hi * 16 + lo) as u8)
        })
        .collect()
}

/// Python's `bytes.decode("utf-8")` succeeds (invalid hex counts as not UTF-8).
fn hex_is_utf8(hex: &str) -> bool {
    decode_hex(hex).is_some_and(|b| std::str::from_utf8(&b).is_ok())
}

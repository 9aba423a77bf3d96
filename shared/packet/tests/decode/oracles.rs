//! Field-by-field comparison with Wireshark: every `*.tshark.csv` oracle next to the corpus
//! (made by `make-oracles.sh`: one row per frame, no reassembly) and in `tests/oracles/` (made
//! by `scripts/make-extra-oracles.sh`: more captures, plus the LLC and MPLS columns) against our
//! decoder's frame for the same packet. Both directions count: a value tshark has and we lack,
//! and a value we have where tshark's cell is empty. There is no exception list.
//!
//! tshark lists a field once per occurrence; the only repeated headers in these captures are
//! VLAN tags, MPLS entries and the datagram an ICMP error quotes. The frame does not carry that
//! quote as layers (docs/decoding.md), so the test decodes the quoted bytes with the same
//! decoder, as a raw IP packet, and compares outer values followed by quoted ones. A DNS
//! message with several questions is compared on the first: the frame holds the first question.

use crate::decode_support;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use netpipe_packet::decode::{DecodeOptions, FULL_PAYLOAD};
use netpipe_packet::frame::{Frame, MAX_8023_LENGTH};

/// Our value of one oracle column, as text in the oracle's notation (None = we have no value).
fn ours(frame: &Frame, field: &str) -> Option<String> {
    let ip4 = frame.ipv4.as_ref();
    let ip6 = frame.ipv6.as_ref();
    let tcp = frame.tcp.as_ref();
    let udp = frame.udp.as_ref();
    let dns = frame.dns.as_ref();
    let s = |v: Option<String>| v;
    match field {
        // tshark's eth.type is the outermost field, and only when it is a type, not a length.
        "eth.type" => s(frame
            .eth
            .filter(|e| e.ether_type > MAX_8023_LENGTH)
            .map(|e| format!("0x{:04x}", e.ether_type))),
        "eth.len" => frame
            .eth
            .filter(|e| e.ether_type <= MAX_8023_LENGTH)
            .map(|e| e.ether_type.to_string()),
        "llc.dsap" => frame.llc.map(|l| l.dsap.to_string()),
        "llc.ssap" => frame.llc.map(|l| l.ssap.to_string()),
        "llc.control" => frame.llc.map(|l| l.control.to_string()),
        "llc.oui" => frame.llc.and_then(|l| l.oui).map(|v| v.to_string()),
        // tshark names the PID llc.pid for OUI 0 only (Cisco's is llc.cisco_pid, and so on).
        "llc.pid" => frame
            .llc
            .filter(|l| l.oui == Some(0))
            .and_then(|l| l.pid)
            .map(|v| v.to_string()),
        "mpls.label" => list(frame.mpls.iter().map(|m| m.label.to_string())),
        "mpls.exp" => list(frame.mpls.iter().map(|m| m.tc.to_string())),
        "mpls.bottom" => list(frame.mpls.iter().map(|m| u8::from(m.bottom).to_string())),
        "mpls.ttl" => list(frame.mpls.iter().map(|m| m.ttl.to_string())),
        "ip.version" => {
            if ip4.is_some() {
                Some("4".into())
            } else if ip6.is_some() {
                Some("6".into())
            } else {
                None
            }
        }
        "ip.hdr_len" => ip4.map(|i| (u32::from(i.ihl) * 4).to_string()),
        "ip.len" => ip4.map(|i| i.len.to_string()),
        "ip.ttl" => ip4.map(|i| i.ttl.to_string()),
        "ip.proto" => ip4.map(|i| i.proto.to_string()),
        "ip.src" => ip4.map(|i| i.src.to_string()),
        "ip.dst" => ip4.map(|i| i.dst.to_string()),
        "ipv6.plen" => ip6.map(|i| i.plen.to_string()),
        "ipv6.nxt" => ip6.map(|i| i.nh.to_string()),
        "ipv6.hlim" => ip6.map(|i| i.hlim.to_string()),
        "tcp.srcport" => tcp.map(|t| t.sport.to_string()),
        "tcp.dstport" => tcp.map(|t| t.dport.to_string()),
        "tcp.seq_raw" => tcp.map(|t| t.seq.to_string()),
        "tcp.ack_raw" => tcp.map(|t| t.ack.to_string()),
        "tcp.flags" => tcp.map(|t| format!("0x{:04x}", t.flags)),
        "tcp.window_size_value" => tcp.map(|t| t.window.to_string()),
        "tcp.options.mss_val" => tcp.and_then(|t| t.opts.mss).map(|v| v.to_string()),
        "tcp.options.wscale.shift" => tcp.and_then(|t| t.opts.wscale).map(|v| v.to_string()),
        "udp.srcport" => udp.map(|u| u.sport.to_string()),
        "udp.dstport" => udp.map(|u| u.dport.to_string()),
        "udp.length" => udp.map(|u| u.len.to_string()),
        "icmp.type" => frame.icmp.map(|i| i.icmp_type.to_string()),
        "icmp.code" => frame.icmp.map(|i| i.code.to_string()),
        "arp.opcode" => frame.arp.as_ref().map(|a| a.op.to_string()),
        "dns.id" => dns.map(|d| format!("0x{:04x}", d.id)),
        "dns.qry.name" => dns.and_then(|d| d.qname.clone()),
        "dns.count.queries" => dns.map(|d| d.qdcount.to_string()),
        "dns.count.answers" => dns.map(|d| d.ancount.to_string()),
        "vlan.id" => list(frame.vlan.iter().map(|v| v.id.to_string())),
        // A tag followed by a length has vlan.len instead of vlan.etype.
        "vlan.etype" => list(
            frame
                .vlan
                .iter()
                .filter(|v| v.ether_type > MAX_8023_LENGTH)
                .map(|v| format!("0x{:04x}", v.ether_type)),
        ),
        "sll.etype" => frame.sll.as_ref().map(|s| format!("0x{:04x}", s.protocol)),
        _ => None,
    }
}

fn list(items: impl Iterator<Item = String>) -> Option<String> {
    let joined = items.collect::<Vec<_>>().join(",");
    (!joined.is_empty()).then_some(joined)
}

/// Numbers compare by value (tshark writes some in hex, some in decimal).
fn same(a: &str, b: &str) -> bool {
    fn number(s: &str) -> Option<u64> {
        match s.strip_prefix("0x") {
            Some(hex) => u64::from_str_radix(hex, 16).ok(),
            None => s.parse().ok(),
        }
    }
    match (number(a), number(b)) {
        (Some(x), Some(y)) => x == y,
        _ => a == b,
    }
}

/// Lists compare item by item.
fn same_list(a: &str, b: &str) -> bool {
    let (a, b): (Vec<&str>, Vec<&str>) = (a.split(',').collect(), b.split(',').collect());
    a.len() == b.len() && a.iter().zip(&b).all(|(x, y)| same(x, y))
}

/// The datagram an ICMP (v4 or v6) error quotes, decoded as a raw IP packet.
fn quoted(frame: &Frame) -> Option<Frame> {
    let error = frame
        .icmp
        .is_some_and(|i| matches!(i.icmp_type, 3 | 4 | 5 | 11 | 12))
        || frame.icmpv6.is_some_and(|i| i.icmp_type < 128);
    if !error {
        return None;
    }
    let hex = frame.payload.as_ref()?.hex.as_deref()?;
    let bytes: Vec<u8> = (0..hex.len() / 2)
        .map(|i| u8::from_str_radix(&hex[i * 2..i * 2 + 2], 16).unwrap())
        .collect();
    // A quote is cut on purpose: decode it as a snaplen-cut packet, not as a lying one.
    Some(decode_support::decode_cut(101, &bytes, &options()))
}

/// Our values for one field: the packet's own, then the quoted datagram's.
fn ours_with_quote(frame: &Frame, quote: Option<&Frame>, field: &str) -> Option<String> {
    let mut values: Vec<String> = ours(frame, field).into_iter().collect();
    if let Some(inner) = quote {
        values.extend(ours(inner, field));
    }
    (!values.is_empty()).then(|| values.join(","))
}

fn options() -> DecodeOptions {
    DecodeOptions {
        payload_bytes: FULL_PAYLOAD,
    }
}

fn compare_file(
    pcap: &Path,
    csv_path: &Path,
    problems: &mut Vec<String>,
    fields: &mut usize,
) -> usize {
    let name = pcap.file_name().map(|n| n.to_string_lossy().into_owned());
    let name = name.unwrap_or_default();
    let (frames, err) = decode_support::decode_file(pcap, &options());
    assert!(err.is_none(), "{name}: {err:?}");
    let mut reader = csv::Reader::from_path(csv_path).expect("oracle csv");
    let headers: Vec<String> = reader
        .headers()
        .expect("header row")
        .iter()
        .map(str::to_owned)
        .collect();
    let mut rows = 0;
    for record in reader.records() {
        let record = record.expect("oracle row");
        let cells: HashMap<&str, &str> = headers
            .iter()
            .map(String::as_str)
            .zip(record.iter())
            .collect();
        let number: usize = cells["frame.number"].parse().expect("frame number");
        let Some(frame) = frames.get(number - 1) else {
            problems.push(format!("{name} #{number}: we decoded no such frame"));
            continue;
        };
        let quote = quoted(frame);
        rows += 1;
        for field in &headers[1..] {
            let mut theirs = cells[field.as_str()];
            if field == "dns.qry.name" {
                // The frame holds the first question (its documented contract); tshark lists all.
                theirs = theirs.split(',').next().unwrap_or_default();
            }
            match (
                ours_with_quote(frame, quote.as_ref(), field),
                theirs.is_empty(),
            ) {
                (None, true) => {}
                (Some(mine), false) if same_list(&mine, theirs) => *fields += 1,
                (Some(mine), _) => problems.push(format!(
                    "{name} #{number} {field}: tshark {theirs:?}, we {mine:?}"
                )),
                (None, false) => problems.push(format!(
                    "{name} #{number} {field}: tshark {theirs:?}, we have none (errors {:?})",
                    frame.errors
                )),
            }
        }
    }
    assert_eq!(rows, frames.len(), "{name}: oracle rows vs decoded frames");
    rows
}

/// The capture an oracle describes: next to it, or (for `tests/oracles/`) in the corpus.
fn pcap_of(csv_path: &Path, corpus: &Path) -> PathBuf {
    let file = csv_path
        .file_name()
        .and_then(|n| n.to_str())
        .and_then(|n| n.strip_suffix(".tshark.csv"))
        .unwrap_or_default();
    let beside = csv_path.with_file_name(file);
    if beside.exists() {
        return beside;
    }
    [corpus.join(file), corpus.join("malformed").join(file)]
        .into_iter()
        .find(|p| p.exists())
        .unwrap_or(beside)
}

fn oracles_in(dir: &Path) -> Vec<PathBuf> {
    let mut found: Vec<_> = std::fs::read_dir(dir)
        .expect("oracle dir")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.to_string_lossy().ends_with(".tshark.csv"))
        .collect();
    found.sort();
    found
}

#[test]
fn every_oracle_field_matches_tshark() {
    let Some(dir) = decode_support::pcaps_dir("every_oracle_field_matches_tshark") else {
        return;
    };
    let corpus = oracles_in(&dir);
    assert!(corpus.len() >= 8, "expected the 8 corpus oracle files");
    let ours = oracles_in(&Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/oracles"));
    assert!(
        ours.iter().any(|p| p.to_string_lossy().contains("mpls")),
        "the MPLS capture has an oracle"
    );
    let mut problems = Vec::new();
    let (mut rows, mut fields) = (0, 0);
    for csv_path in corpus.iter().chain(&ours) {
        let pcap = pcap_of(csv_path, &dir);
        rows += compare_file(&pcap, csv_path, &mut problems, &mut fields);
    }
    assert!(rows > 600, "compared only {rows} rows");
    assert!(fields > 8000, "only {fields} equal fields");
    println!("{rows} packets, {fields} equal fields");
    assert!(
        problems.is_empty(),
        "{} differences from tshark, first ones:\n{}",
        problems.len(),
        problems
            .iter()
            .take(60)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
}

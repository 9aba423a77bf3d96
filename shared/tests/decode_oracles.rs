//! Field-by-field comparison with Wireshark: every `*.tshark.csv` oracle next to the corpus
//! (made by `make-oracles.sh`: one row per frame, no reassembly) against our decoder's frame
//! for the same packet. Deliberate differences are skipped in `expected_gap` with the reason,
//! and listed in docs/decoding.md ("Deliberate differences").

mod decode_support;

use std::collections::HashMap;
use std::path::Path;

use shared::decode::DecodeOptions;
use shared::frame::Frame;

/// Our value of one oracle column, as text in the oracle's notation (None = we have no value).
fn ours(frame: &Frame, field: &str) -> Option<String> {
    let ip4 = frame.ipv4.as_ref();
    let ip6 = frame.ipv6.as_ref();
    let tcp = frame.tcp.as_ref();
    let udp = frame.udp.as_ref();
    let dns = frame.dns.as_ref();
    let s = |v: Option<String>| v;
    match field {
        "eth.type" => s(frame.eth.map(|e| format!("0x{:04x}", e.ether_type))),
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
        "vlan.etype" => list(frame.vlan.iter().map(|v| format!("0x{:04x}", v.ether_type))),
        "sll.etype" => frame.sll.as_ref().map(|s| format!("0x{:04x}", s.protocol)),
        _ => None,
    }
}

fn list(items: impl Iterator<Item = String>) -> Option<String> {
    let joined = items.collect::<Vec<_>>().join(",");
    (!joined.is_empty()).then_some(joined)
}

/// Columns whose cell is a per-tag list we compare whole; every other column is compared on
/// its first value (later values belong to headers quoted inside an ICMP error).
const WHOLE_LIST: [&str; 2] = ["vlan.id", "vlan.etype"];

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

/// ICMP types that quote the offending datagram (unreachable, source quench, redirect, time
/// exceeded, parameter problem).
fn is_icmp_error(frame: &Frame) -> bool {
    frame
        .icmp
        .is_some_and(|i| matches!(i.icmp_type, 3 | 4 | 5 | 11 | 12))
        || frame.icmpv6.is_some_and(|i| i.icmp_type < 128)
}

/// Cases where tshark shows a value and we deliberately have none.
fn expected_gap(frame: &Frame, field: &str) -> bool {
    // Deliberate: headers quoted inside an ICMP error are not the packet's own layers, so
    // tshark's transport/DNS values there come from the quoted datagram and we have none.
    if is_icmp_error(frame)
        && (field.starts_with("tcp.")
            || field.starts_with("udp.")
            || field.starts_with("dns.")
            || (field.starts_with("ip.") && frame.ipv6.is_some()))
    {
        return true;
    }
    // Deliberate: tshark also reads LLMNR (port 5355) as DNS; the frame contract decodes DNS on
    // ports 53 and 5353 only.
    let llmnr = frame
        .udp
        .is_some_and(|u| u.sport == 5355 || u.dport == 5355);
    if llmnr && field.starts_with("dns.") {
        return true;
    }
    false
}

fn compare_file(csv_path: &Path, problems: &mut Vec<String>) -> usize {
    let pcap = csv_path.with_file_name(
        csv_path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_suffix(".tshark.csv"))
            .unwrap_or_default(),
    );
    let name = pcap.file_name().map(|n| n.to_string_lossy().into_owned());
    let name = name.unwrap_or_default();
    let options = DecodeOptions { payload_bytes: 0 };
    let (frames, err) = decode_support::decode_file(&pcap, &options);
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
        rows += 1;
        for field in &headers[1..] {
            let theirs = cells[field.as_str()];
            if theirs.is_empty() {
                continue;
            }
            let theirs = if WHOLE_LIST.contains(&field.as_str()) {
                theirs
            } else {
                theirs.split(',').next().unwrap_or_default()
            };
            match ours(frame, field) {
                Some(mine) if same(&mine, theirs) => {}
                Some(mine) => problems.push(format!(
                    "{name} #{number} {field}: tshark {theirs:?}, we {mine:?}"
                )),
                None if expected_gap(frame, field) => {}
                None => problems.push(format!(
                    "{name} #{number} {field}: tshark {theirs:?}, we have none (errors {:?})",
                    frame.errors
                )),
            }
        }
    }
    assert_eq!(rows, frames.len(), "{name}: oracle rows vs decoded frames");
    rows
}

#[test]
fn every_oracle_field_matches_tshark() {
    let Some(dir) = decode_support::pcaps_dir("every_oracle_field_matches_tshark") else {
        return;
    };
    let mut oracles: Vec<_> = std::fs::read_dir(&dir)
        .expect("pcaps dir")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.to_string_lossy().ends_with(".tshark.csv"))
        .collect();
    oracles.sort();
    assert!(oracles.len() >= 8, "expected the 8 oracle files");
    let mut problems = Vec::new();
    let mut rows = 0;
    for csv_path in &oracles {
        rows += compare_file(csv_path, &mut problems);
    }
    assert!(rows > 600, "compared only {rows} rows");
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

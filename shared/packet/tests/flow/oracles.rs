//! Flow records against NFStream 6.6.0: every `*.nfstream*.csv` oracle next to the corpus (made
//! by `make-flow-oracles.sh`; its header gives the settings) compared flow by flow and column
//! by column, floats to 1e-6 relative. The aim, met today, is no difference at all; any
//! deliberate one must be listed in docs/flows.md and skipped here by name.
//!
//! zeek-mixed-vlan-mpls.pcap has no oracle yet: it would stay pending until MPLS decoding
//! (issue 17 item 4, another branch) is merged.

use crate::flow_support;

use std::collections::BTreeMap;
use std::path::Path;

use flow_support::flows_of_file;
use netpipe_packet::flow::{FlowConfig, FlowRecord};

type Row = BTreeMap<String, String>;

/// Sort key of the oracle files: (first seen, src ip, src port, dst ip, dst port, protocol).
fn sort_key(row: &Row) -> (i64, String, u64, String, u64, u64) {
    let num = |c: &str| row.get(c).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    (
        row.get("bidirectional_first_seen_ms")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0),
        row.get("src_ip").cloned().unwrap_or_default(),
        num("src_port"),
        row.get("dst_ip").cloned().unwrap_or_default(),
        num("dst_port"),
        num("protocol"),
    )
}

fn ours_as_rows(records: &[FlowRecord]) -> Vec<Row> {
    let mut csv = Vec::new();
    csv.extend_from_slice(netpipe_packet::flow::column_names().join(",").as_bytes());
    csv.push(b'\n');
    for r in records {
        r.write_csv(&mut csv);
    }
    read_rows(csv.as_slice())
}

fn read_rows(input: impl std::io::Read) -> Vec<Row> {
    let mut reader = csv::Reader::from_reader(input);
    let header = reader.headers().unwrap().clone();
    let mut rows: Vec<Row> = reader
        .records()
        .map(|r| {
            let r = r.unwrap();
            header
                .iter()
                .zip(r.iter())
                .map(|(h, v)| (h.to_owned(), v.to_owned()))
                .collect()
        })
        .collect();
    rows.sort_by_key(sort_key);
    rows
}

/// Equal as text, as numbers within 1e-6 relative, or as JSON arrays.
fn same(ours: &str, theirs: &str) -> bool {
    if ours == theirs {
        return true;
    }
    if let (Ok(a), Ok(b)) = (ours.parse::<f64>(), theirs.parse::<f64>()) {
        return (a - b).abs() <= 1e-6 * a.abs().max(b.abs()).max(1e-12);
    }
    match (
        serde_json::from_str::<serde_json::Value>(ours),
        serde_json::from_str::<serde_json::Value>(theirs),
    ) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

/// Timeouts from an oracle name: `NAME.nfstream-idle5-active30.csv` or the defaults.
fn config_for(oracle: &str) -> FlowConfig {
    let mut config = FlowConfig::default();
    if let Some(rest) = oracle.split(".nfstream-idle").nth(1) {
        let mut parts = rest.trim_end_matches(".csv").split("-active");
        let idle: i64 = parts.next().unwrap().parse().unwrap();
        let active: i64 = parts.next().unwrap().parse().unwrap();
        config.idle_timeout_ms = idle * 1000;
        config.active_timeout_ms = active * 1000;
    }
    config
}

fn compare(oracle: &Path) -> Vec<String> {
    let name = oracle.file_name().unwrap().to_string_lossy().into_owned();
    let capture = oracle.with_file_name(name.split(".nfstream").next().unwrap());
    let (records, _) = flows_of_file(&capture, config_for(&name));
    let ours = ours_as_rows(&records);
    let theirs = read_rows(std::fs::File::open(oracle).unwrap());
    let mut problems = Vec::new();
    if ours.len() != theirs.len() {
        problems.push(format!(
            "{name}: {} flows, NFStream has {}",
            ours.len(),
            theirs.len()
        ));
        return problems;
    }
    for (i, (o, t)) in ours.iter().zip(&theirs).enumerate() {
        for (column, value) in t {
            match o.get(column) {
                None => problems.push(format!("{name}: column {column} missing")),
                Some(mine) if !same(mine, value) => problems.push(format!(
                    "{name} flow {i} {:?}: {column} = {mine}, NFStream {value}",
                    sort_key(t)
                )),
                Some(_) => {}
            }
        }
    }
    problems
}

#[test]
fn every_nfstream_oracle_matches_column_by_column() {
    let Some(data) = netpipe_testkit::paths::shared_data_or_skip("flow oracles") else {
        return;
    };
    let mut oracles: Vec<_> = std::fs::read_dir(data.join("pcaps"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let name = p.file_name().unwrap().to_string_lossy();
            name.contains(".nfstream") && name.ends_with(".csv")
        })
        .collect();
    oracles.sort();
    assert!(
        oracles.len() >= 15,
        "expected the 15 oracles, found {}",
        oracles.len()
    );
    let mut problems = Vec::new();
    for oracle in &oracles {
        problems.extend(compare(oracle));
    }
    assert!(
        problems.is_empty(),
        "{} differences, first ones:\n{}",
        problems.len(),
        problems
            .iter()
            .take(30)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
}

#[test]
fn the_short_timeout_oracle_really_cuts_flows() {
    // Guards the comparison itself: the two large-100k oracles must differ, so the timeouts
    // taken from the file name are applied.
    let Some(data) = netpipe_testkit::paths::shared_data_or_skip("flow oracles") else {
        return;
    };
    let capture = data.join("pcaps/large-100k.pcap");
    let (default, _) = flows_of_file(&capture, FlowConfig::default());
    let (short, _) = flows_of_file(&capture, config_for("x.nfstream-idle5-active30.csv"));
    assert!(short.len() > default.len());
    assert_eq!(
        default
            .iter()
            .map(|r| r.flow.bidirectional.packets)
            .sum::<u64>(),
        short
            .iter()
            .map(|r| r.flow.bidirectional.packets)
            .sum::<u64>()
    );
}

#[test]
fn every_corpus_capture_puts_each_ip_packet_in_one_flow() {
    // Also the hostile inputs: malformed packets and broken files must not panic, and every
    // frame is either in a flow or counted as skipped.
    use netpipe_packet::decode::{DecodeOptions, FrameMeta, decode};
    use netpipe_packet::flow::FlowTable;
    use netpipe_runtime::capture::CaptureFile;
    let Some(data) = netpipe_testkit::paths::shared_data_or_skip("flow corpus") else {
        return;
    };
    let meta = FrameMeta {
        agent: std::sync::Arc::from("t"),
        boot: 0,
        seq: 0,
    };
    let mut files = 0;
    for dir in ["pcaps", "pcaps/malformed", "pcaps/bad-files"] {
        for entry in std::fs::read_dir(data.join(dir)).unwrap() {
            let path = entry.unwrap().path();
            let Ok(mut file) = CaptureFile::open(&path) else {
                continue;
            };
            files += 1;
            let mut table = FlowTable::new(FlowConfig::default(), 0);
            let mut out = Vec::new();
            let (mut frames, mut ip_frames) = (0u64, 0u64);
            while let Ok(Some(packet)) = file.next_packet() {
                let frame = decode(&packet, &meta, &DecodeOptions { payload_bytes: 0 });
                frames += 1;
                ip_frames += u64::from(frame.ipv4.is_some() || frame.ipv6.is_some());
                table.push_frame(&frame, &mut out);
            }
            table.finish(&mut out);
            let c = table.counters();
            let in_flows: u64 = out.iter().map(|r| r.flow.bidirectional.packets).sum();
            let name = path.display();
            assert_eq!(in_flows, c.packets_in_flows, "{name}");
            assert_eq!(
                ip_frames,
                in_flows + c.skipped_fragment + c.skipped_too_short,
                "{name}"
            );
            assert_eq!(frames, ip_frames + c.skipped_not_ip, "{name}");
        }
    }
    assert!(files > 60, "{files} captures read");
}

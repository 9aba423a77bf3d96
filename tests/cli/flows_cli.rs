//! `netpipe flows` as a user runs it: one record per flow on stdout, a summary on stderr,
//! clear failures on bad input.

use std::process::{Command, Output};

fn netpipe() -> Command {
    Command::new(env!("CARGO_BIN_EXE_netpipe"))
}

fn sample_pcap(dir: &std::path::Path) -> std::path::PathBuf {
    let path = dir.join("sample.pcap");
    let status = netpipe()
        .args(["fixture", "--out"])
        .arg(&path)
        .status()
        .unwrap();
    assert!(status.success());
    path
}

fn flows(args: &[&str], pcap: &std::path::Path) -> Output {
    netpipe()
        .arg("flows")
        .args(args)
        .arg("-r")
        .arg(pcap)
        .output()
        .unwrap()
}

fn csv_rows(out: &Output) -> (csv::StringRecord, Vec<csv::StringRecord>) {
    let mut reader = csv::Reader::from_reader(out.stdout.as_slice());
    let header = reader.headers().unwrap().clone();
    (header, reader.records().map(|r| r.unwrap()).collect())
}

#[test]
fn csv_has_one_row_per_flow_under_the_nfstream_header() {
    let dir = tempfile::tempdir().unwrap();
    let pcap = sample_pcap(dir.path());
    let out = flows(&[], &pcap);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let (header, rows) = csv_rows(&out);
    assert_eq!(
        header.iter().collect::<Vec<_>>(),
        netpipe_packet::flow::column_names()
    );
    assert_eq!(rows.len(), 5);
    let col = |name: &str| header.iter().position(|h| h == name).unwrap();
    let packets: u64 = rows
        .iter()
        .map(|r| r[col("bidirectional_packets")].parse::<u64>().unwrap())
        .sum();
    assert_eq!(packets, 13);
    assert!(
        rows.iter()
            .all(|r| &r[col("expiration_reason")] == "end_of_capture")
    );
    assert!(rows.iter().all(|r| r[col("splt_ps")].starts_with('[')));
    assert!(
        stderr.contains("15 packets, 13 in 5 flows (end_of_capture=5)")
            && stderr.contains("not in flows: not_ip=2"),
        "{stderr}"
    );
}

#[test]
fn jsonl_has_one_object_per_flow() {
    let dir = tempfile::tempdir().unwrap();
    let pcap = sample_pcap(dir.path());
    let out = flows(
        &["--format", "jsonl", "--splt", "3", "--agent", "edge-1"],
        &pcap,
    );
    assert!(out.status.success());
    let lines: Vec<serde_json::Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 5);
    for flow in &lines {
        assert_eq!(flow["agent"], "edge-1");
        assert_eq!(flow["splt_direction"].as_array().unwrap().len(), 3);
    }
    let ids: std::collections::BTreeSet<u64> =
        lines.iter().map(|f| f["id"].as_u64().unwrap()).collect();
    assert_eq!(ids.len(), 5, "flow ids are unique");
}

#[test]
fn filter_timeouts_and_table_bound_apply() {
    let dir = tempfile::tempdir().unwrap();
    let pcap = sample_pcap(dir.path());
    let out = flows(&["--filter", "icmp"], &pcap);
    assert!(out.status.success());
    let (header, rows) = csv_rows(&out);
    let proto = header.iter().position(|h| h == "protocol").unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(&rows[0][proto], "1");
    assert!(String::from_utf8_lossy(&out.stderr).contains("13 filtered out"));

    let out = flows(&["--max-flows", "1"], &pcap);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success());
    assert!(stderr.contains("evicted=4"), "{stderr}");
    assert_eq!(csv_rows(&out).1.len(), 5);
}

#[test]
fn bad_arguments_and_files_fail_with_one_clear_line() {
    let dir = tempfile::tempdir().unwrap();
    let pcap = sample_pcap(dir.path());
    for bad in [
        vec!["--idle-timeout", "0"],
        vec!["--active-timeout", "-5"],
        vec!["--max-flows", "0"],
        vec!["--splt", "100000"],
        vec!["--format", "parquet"],
    ] {
        let out = flows(&bad, &pcap);
        assert!(!out.status.success(), "{bad:?} accepted");
    }
    let out = flows(&[], &dir.path().join("missing.pcap"));
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(stderr.contains("missing.pcap"), "{stderr}");

    let out = flows(&["--filter", "tcp port"], &pcap);
    assert!(!out.status.success(), "a broken BPF filter is refused");
}

#[test]
fn a_file_cut_mid_record_keeps_every_flow_before_the_cut_and_fails() {
    let dir = tempfile::tempdir().unwrap();
    let pcap = sample_pcap(dir.path());
    let bytes = std::fs::read(&pcap).unwrap();
    let cut = dir.path().join("cut.pcap");
    std::fs::write(&cut, &bytes[..bytes.len() - 10]).unwrap();
    let out = flows(&[], &cut);
    assert!(!out.status.success(), "a cut file is not a clean exit");
    let (header, rows) = csv_rows(&out);
    let col = header
        .iter()
        .position(|h| h == "bidirectional_packets")
        .unwrap();
    let packets: u64 = rows.iter().map(|r| r[col].parse::<u64>().unwrap()).sum();
    assert_eq!(packets, 12, "all packets before the cut are in flows");
}

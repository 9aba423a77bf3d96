//! `netpipe decode` as a user runs it: rows on stdout, a summary on stderr, clear failures.

use std::process::Command;

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

#[test]
fn csv_has_one_row_per_packet_under_the_schema_header() {
    let dir = tempfile::tempdir().unwrap();
    let pcap = sample_pcap(dir.path());
    let out = netpipe()
        .args(["decode", "--payload-bytes", "0", "-r"])
        .arg(&pcap)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut reader = csv::Reader::from_reader(out.stdout.as_slice());
    let header = reader.headers().unwrap().clone();
    let expected_header = shared::schema::by_name("netpipe").unwrap().column_names();
    assert_eq!(header.iter().collect::<Vec<_>>(), expected_header);
    let rows: Vec<csv::StringRecord> = reader.records().map(|r| r.unwrap()).collect();
    assert_eq!(rows.len(), shared::fixtures::sample_packets().len());
    let col = |name: &str| header.iter().position(|h| h == name).unwrap();
    // First packet: the client's SYN with options.
    assert_eq!(&rows[0][col("tcp_dport")], "8080");
    assert_eq!(&rows[0][col("tcp_flags")], "2");
    assert_eq!(&rows[0][col("tcp_opt_mss")], "1460");
    assert_eq!(&rows[0][col("tcp_opt_wscale")], "7");
    assert_eq!(&rows[0][col("seq")], "1");
    assert_eq!(&rows[0][col("ts")], "2025-11-29T08:00:00.001234567Z");
    // Payload capture off: no hex anywhere, lengths still there.
    assert!(rows.iter().all(|r| r[col("payload_hex")].is_empty()));
    assert!(rows.iter().any(|r| &r[col("dns_qname")] == "example.test"));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("15 packets"), "{stderr}");
}

#[test]
fn jsonl_frames_parse_back_as_frames() {
    let dir = tempfile::tempdir().unwrap();
    let pcap = sample_pcap(dir.path());
    let out = netpipe()
        .args(["decode", "--format", "jsonl", "-r"])
        .arg(&pcap)
        .output()
        .unwrap();
    assert!(out.status.success());
    let frames: Vec<shared::Frame> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(frames.len(), 15);
    assert!(frames.windows(2).all(|w| w[1].seq == w[0].seq + 1));
    assert!(frames.iter().any(|f| f.arp.is_some()));
    assert!(frames.iter().any(|f| f.ipv6.is_some()));
    assert!(frames.iter().any(|f| !f.vlan.is_empty()));
}

#[test]
fn a_bpf_filter_selects_packets() {
    let dir = tempfile::tempdir().unwrap();
    let pcap = sample_pcap(dir.path());
    let out = netpipe()
        .args(["decode", "-f", "udp port 53", "-r"])
        .arg(&pcap)
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 1 + 2);
    let bad = netpipe()
        .args(["decode", "-f", "tcp and and", "-r"])
        .arg(&pcap)
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("invalid BPF filter"));
}

#[test]
fn unreadable_files_fail_with_one_clear_line() {
    let dir = tempfile::tempdir().unwrap();
    let garbage = dir.path().join("garbage.pcap");
    std::fs::write(&garbage, b"this is not a capture").unwrap();
    for (path, reason) in [
        (garbage.clone(), "not a pcap or pcapng file"),
        (dir.path().join("missing.pcap"), "No such file"),
    ] {
        let out = netpipe()
            .args(["decode", "-r"])
            .arg(&path)
            .output()
            .unwrap();
        assert!(!out.status.success());
        assert!(out.stdout.is_empty());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
        assert!(
            stderr.contains(reason) && stderr.contains(path.to_str().unwrap()),
            "{stderr}"
        );
    }
    let unknown_schema = netpipe()
        .args(["decode", "--schema", "nope", "-r"])
        .arg(&garbage)
        .output()
        .unwrap();
    assert!(!unknown_schema.status.success());
    assert!(String::from_utf8_lossy(&unknown_schema.stderr).contains("unknown schema"));
}

#[test]
fn every_corpus_file_decodes_or_fails_cleanly() {
    let Some(data) =
        shared::paths::shared_data_or_skip("every_corpus_file_decodes_or_fails_cleanly")
    else {
        return;
    };
    for sub in ["pcaps", "pcaps/malformed", "pcaps/bad-files"] {
        for entry in std::fs::read_dir(data.join(sub)).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().to_string();
            if !(name.ends_with(".pcap") || name.ends_with(".pcapng")) || name.starts_with("large-")
            {
                continue;
            }
            let out = netpipe()
                .args(["decode", "-r"])
                .arg(&path)
                .output()
                .unwrap();
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(!stderr.contains("panicked"), "{name}: {stderr}");
            assert!(out.status.code().is_some(), "{name}: killed by a signal");
            if sub.ends_with("bad-files") {
                assert!(!out.status.success(), "{name} should fail");
                assert!(stderr.contains(&name), "{name}: {stderr}");
            } else {
                assert!(out.status.success(), "{name}: {stderr}");
            }
        }
    }
}

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
    let expected_header = netpipe_packet::schema::by_name("netpipe")
        .unwrap()
        .column_names();
    assert_eq!(header.iter().collect::<Vec<_>>(), expected_header);
    let rows: Vec<csv::StringRecord> = reader.records().map(|r| r.unwrap()).collect();
    assert_eq!(
        rows.len(),
        netpipe_runtime::capture::sample::sample_packets().len()
    );
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
    let frames: Vec<netpipe_packet::Frame> = String::from_utf8(out.stdout)
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
        netpipe_testkit::paths::shared_data_or_skip("every_corpus_file_decodes_or_fails_cleanly")
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

/// Ethernet / IPv4 (id 7, the given flags+offset word) / `body`, checksums left 0 (not checked).
fn ipv4_packet(flags_frag: u16, proto: u8, body: &[u8]) -> Vec<u8> {
    let mut out = vec![2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x08, 0x00];
    let total = u16::try_from(20 + body.len()).unwrap();
    out.extend_from_slice(&[0x45, 0]);
    out.extend_from_slice(&total.to_be_bytes());
    out.extend_from_slice(&[0, 7]);
    out.extend_from_slice(&flags_frag.to_be_bytes());
    out.extend_from_slice(&[64, proto, 0, 0, 192, 0, 2, 10, 192, 0, 2, 20]);
    out.extend_from_slice(body);
    out
}

fn udp_body(payload: &[u8]) -> Vec<u8> {
    let len = u16::try_from(8 + payload.len()).unwrap();
    let mut out = vec![0x9c, 0x40, 0x27, 0x0f];
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(&[0, 0]);
    out.extend_from_slice(payload);
    out
}

fn write_packets(dir: &std::path::Path, packets: Vec<Vec<u8>>) -> std::path::PathBuf {
    let path = dir.join("made.pcap");
    let packets: Vec<_> = packets
        .into_iter()
        .enumerate()
        .map(
            |(i, data)| netpipe_runtime::capture::sample::FixturePacket {
                ts_ns: 1_000_000_000 * (i as i64 + 1),
                data,
            },
        )
        .collect();
    netpipe_runtime::capture::sample::write_pcap(
        &path,
        netpipe_runtime::capture::LinkType::ETHERNET,
        &packets,
    )
    .unwrap();
    path
}

fn decode_cells(args: &[&str], pcap: &std::path::Path, column: &str) -> (Vec<String>, String) {
    let out = netpipe().args(args).arg("-r").arg(pcap).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{stderr}");
    let mut reader = csv::Reader::from_reader(out.stdout.as_slice());
    let at = reader
        .headers()
        .unwrap()
        .iter()
        .position(|h| h == column)
        .unwrap();
    let cells = reader
        .records()
        .map(|r| r.unwrap()[at].to_owned())
        .collect();
    (cells, stderr)
}

#[test]
fn antinex_v1_keeps_the_whole_payload_unless_told_otherwise() {
    let dir = tempfile::tempdir().unwrap();
    let payload = "x".repeat(200);
    let pcap = write_packets(
        dir.path(),
        vec![ipv4_packet(0, 17, &udp_body(payload.as_bytes()))],
    );
    let full: String = payload.bytes().map(|b| format!("{b:02x}")).collect();
    // antinex-v1: the original kept every payload byte in raw_load.
    let (cells, _) = decode_cells(&["decode", "--schema", "antinex-v1"], &pcap, "raw_load");
    assert_eq!(cells, std::slice::from_ref(&full));
    // An explicit policy wins, for antinex-v1 too.
    let (cells, _) = decode_cells(
        &["decode", "--schema", "antinex-v1", "--payload-bytes", "4"],
        &pcap,
        "raw_load",
    );
    assert_eq!(cells, ["78787878"]);
    // netpipe keeps its 64-byte default.
    let (cells, _) = decode_cells(&["decode"], &pcap, "payload_hex");
    assert_eq!(cells, [full[..128].to_owned()]);
}

#[test]
fn fragments_are_counted_as_fragments_not_problems() {
    let dir = tempfile::tempdir().unwrap();
    let first = ipv4_packet(0x2000, 17, &udp_body(&[1; 16])); // MF, offset 0
    let second = ipv4_packet(3, 17, &[2; 8]); // offset 24 bytes, last
    let broken = ipv4_packet(0, 6, &[0; 4]); // TCP header cut short: a real problem
    let pcap = write_packets(dir.path(), vec![first, second, broken]);
    let (_, stderr) = decode_cells(&["decode"], &pcap, "ip_is_fragment");
    assert!(stderr.contains("3 packets, 2 IP fragments"), "{stderr}");
    assert!(
        stderr.contains("decode problems: truncated_transport=1"),
        "{stderr}"
    );
    assert!(!stderr.contains("fragment="), "{stderr}");
    // A clean capture with fragments only has no problems.
    let pcap = write_packets(
        dir.path(),
        vec![
            ipv4_packet(0x2000, 17, &udp_body(&[1; 16])),
            ipv4_packet(3, 17, &[2; 8]),
        ],
    );
    let (_, stderr) = decode_cells(&["decode"], &pcap, "ip_is_fragment");
    assert!(
        stderr.contains("2 IP fragments (not reassembled); no decode problems"),
        "{stderr}"
    );
}

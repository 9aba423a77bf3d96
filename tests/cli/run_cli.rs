//! `netpipe run`: the embedded pipeline writes one durable row per packet, cell for cell what
//! `netpipe decode` prints for the same file (apart from the agent id and sequence numbers).

use std::path::{Path, PathBuf};
use std::process::Command;

fn netpipe() -> Command {
    Command::new(env!("CARGO_BIN_EXE_netpipe"))
}

fn csv_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "csv"))
        .collect();
    files.sort();
    files
}

/// Rows without the columns that depend on who captured (agent, seq, boot).
fn comparable_rows(csv_text: &[u8]) -> Vec<Vec<String>> {
    let mut reader = csv::Reader::from_reader(csv_text);
    let header = reader.headers().unwrap().clone();
    let skip: Vec<usize> = ["agent", "seq", "boot"]
        .iter()
        .filter_map(|name| header.iter().position(|h| h == *name))
        .collect();
    reader
        .records()
        .map(|r| {
            r.unwrap()
                .iter()
                .enumerate()
                .filter(|(i, _)| !skip.contains(i))
                .map(|(_, cell)| cell.to_string())
                .collect()
        })
        .collect()
}

fn run_and_compare(pcap: &Path, save_after: &str) {
    let out = tempfile::tempdir().unwrap();
    let status = netpipe()
        .args([
            "run",
            "--payload-bytes",
            "16",
            "--save-after-num",
            save_after,
            "--read",
        ])
        .arg(pcap)
        .arg("--out")
        .arg(out.path())
        .env_remove("DS_DIR")
        .output()
        .unwrap();
    assert!(
        status.status.success(),
        "{}",
        String::from_utf8_lossy(&status.stderr)
    );
    let files = csv_files(out.path());
    assert_eq!(files.len(), 1, "{files:?}");
    let written = std::fs::read(&files[0]).unwrap();
    let manifest = files[0].with_extension("csv.manifest.json");
    assert!(
        manifest.exists(),
        "no manifest beside {}",
        files[0].display()
    );

    let decoded = netpipe()
        .args(["decode", "--payload-bytes", "16", "-r"])
        .arg(pcap)
        .output()
        .unwrap();
    assert!(decoded.status.success());
    let expected = comparable_rows(&decoded.stdout);
    let got = comparable_rows(&written);
    assert_eq!(got.len(), expected.len(), "{}: rows", pcap.display());
    for (i, (g, e)) in got.iter().zip(&expected).enumerate() {
        assert_eq!(g, e, "{}: row {i}", pcap.display());
    }
}

#[test]
fn the_sample_capture_becomes_a_dataset() {
    let dir = tempfile::tempdir().unwrap();
    let pcap = dir.path().join("sample.pcap");
    assert!(
        netpipe()
            .args(["fixture", "--out"])
            .arg(&pcap)
            .status()
            .unwrap()
            .success()
    );
    run_and_compare(&pcap, "4");
}

#[test]
fn corpus_captures_become_datasets() {
    let Some(data) = netpipe_testkit::paths::shared_data_or_skip("corpus_captures_become_datasets")
    else {
        return;
    };
    for name in [
        "tcpdump-ssh.pcap",
        "pcpp-DnsPackets.pcap",
        "zeek-linux_dlt_sll2.pcap",
        "pcpp-ipv6_options.pcap",
    ] {
        run_and_compare(&data.join("pcaps").join(name), "100");
    }
}

#[test]
fn run_without_input_is_a_clear_error() {
    let out = netpipe()
        .args(["run", "--out", "/tmp/netpipe-run-no-input"])
        .env_remove("CAP_DEVICE")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("needs --read FILE or --interface IF"));
}

/// Live capture on loopback until SIGINT: every datagram the test sends to 127.0.0.1 is in the
/// dataset exactly once, and the final snapshot is written on the signal.
#[cfg_attr(
    not(feature = "system-tests"),
    ignore = "needs root (live capture on lo): run with --features system-tests (scripts/test.sh does)"
)]
#[test]
fn live_capture_on_loopback_until_ctrl_c() {
    if !nix_is_root() {
        netpipe_testkit::skip(
            "live_capture_on_loopback_until_ctrl_c",
            "needs root (CAP_NET_RAW)",
        );
        return;
    }
    let out = tempfile::tempdir().unwrap();
    let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = socket.local_addr().unwrap().port();
    let mut child = netpipe()
        .args([
            "run",
            "--interface",
            "lo",
            "--save-after-num",
            "1000",
            "--filter",
        ])
        .arg(format!("udp and dst port {port}"))
        .arg("--out")
        .arg(out.path())
        .spawn()
        .unwrap();
    // Give the capture time to open (the dataset file may appear only at the first commit).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(3);
    while csv_files(out.path()).is_empty() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    std::thread::sleep(std::time::Duration::from_millis(500));
    let sent = 50;
    for i in 0..sent {
        socket
            .send_to(format!("datagram {i}").as_bytes(), ("127.0.0.1", port))
            .unwrap();
    }
    std::thread::sleep(std::time::Duration::from_millis(500));
    let pid = child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-INT", &pid])
            .status()
            .unwrap()
            .success()
    );
    let status = child.wait().unwrap();
    assert!(status.success(), "{status:?}");
    let files = csv_files(out.path());
    assert_eq!(files.len(), 1);
    let mut reader = csv::Reader::from_path(&files[0]).unwrap();
    let header = reader.headers().unwrap().clone();
    let dport = header.iter().position(|h| h == "udp_dport").unwrap();
    let rows: Vec<csv::StringRecord> = reader.records().map(|r| r.unwrap()).collect();
    assert_eq!(
        rows.len(),
        sent,
        "each datagram once (loopback is seen twice unless inbound-only)"
    );
    assert!(rows.iter().all(|r| r[dport] == *port.to_string()));
}

fn nix_is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

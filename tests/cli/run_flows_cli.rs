//! `netpipe run --flows`: a durable flow dataset beside the packet dataset, record for record
//! what `netpipe flows` prints for the same file, with a manifest that counts its rows.

use std::path::{Path, PathBuf};
use std::process::Command;

fn netpipe() -> Command {
    Command::new(env!("CARGO_BIN_EXE_netpipe"))
}

fn files(dir: &Path, suffix: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(suffix))
        .collect();
    files.sort();
    files
}

/// Rows keyed by their text without the agent column, sorted.
fn rows_without_agent(csv_text: &[u8]) -> Vec<String> {
    let mut reader = csv::Reader::from_reader(csv_text);
    let header = reader.headers().unwrap().clone();
    let agent = header.iter().position(|h| h == "agent").unwrap();
    let mut rows: Vec<String> = reader
        .records()
        .map(|r| {
            r.unwrap()
                .iter()
                .enumerate()
                .filter(|(i, _)| *i != agent)
                .map(|(_, c)| c.to_string())
                .collect::<Vec<_>>()
                .join("|")
        })
        .collect();
    rows.sort();
    rows
}

#[test]
fn run_with_flows_writes_the_flow_dataset_netpipe_flows_prints() {
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
    let out = dir.path().join("datasets");
    let run = netpipe()
        .args([
            "run",
            "--flows",
            "--save-after-num",
            "2",
            "--agent-id",
            "edge-7",
            "--read",
        ])
        .arg(&pcap)
        .arg("--out")
        .arg(&out)
        .env_remove("DS_DIR")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "{stderr}");
    assert!(
        stderr.contains("5 flows (13 packets in flows, 2 outside, 0 dropped)"),
        "{stderr}"
    );

    let flow_files = files(&out, ".csv")
        .into_iter()
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("netdata-flows-")
        })
        .collect::<Vec<_>>();
    assert_eq!(flow_files.len(), 1, "{:?}", files(&out, ""));
    let packet_files = files(&out, ".csv").len() - 1;
    assert!(packet_files >= 1, "the packet dataset is still written");
    let written = std::fs::read(&flow_files[0]).unwrap();

    let printed = netpipe().args(["flows", "-r"]).arg(&pcap).output().unwrap();
    assert!(printed.status.success());
    assert_eq!(
        rows_without_agent(&written),
        rows_without_agent(&printed.stdout)
    );
    let mut reader = csv::Reader::from_reader(written.as_slice());
    let agent = reader
        .headers()
        .unwrap()
        .iter()
        .position(|h| h == "agent")
        .unwrap();
    assert!(reader.records().all(|r| &r.unwrap()[agent] == "edge-7"));

    let manifest_path = files(&out, ".manifest.json")
        .into_iter()
        .find(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("netdata-flows-")
        })
        .expect("a manifest for the flow file");
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(manifest_path).unwrap()).unwrap();
    assert_eq!(manifest["rows"], 5);
    assert_eq!(manifest["closed"], true);
    assert_eq!(manifest["schema"]["name"], "netpipe-flows");
}

/// Live `run --flows` on loopback: a UDP conversation that goes quiet is written to the flow
/// dataset by its idle timeout, before Ctrl-C; what is still open is written at the signal.
#[cfg_attr(
    not(feature = "system-tests"),
    ignore = "needs root (live capture on lo): run with --features system-tests (scripts/test.sh does)"
)]
#[test]
fn live_run_with_flows_writes_idle_flows_before_the_signal() {
    let is_root = Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false);
    if !is_root {
        netpipe_testkit::skip("live run --flows", "needs root (CAP_NET_RAW)");
        return;
    }
    let out = tempfile::tempdir().unwrap();
    let a = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let b = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = b.local_addr().unwrap().port();
    let mut child = netpipe()
        .args([
            "run",
            "--flows",
            "--flow-idle-timeout",
            "1",
            "--save-after-num",
            "1",
        ])
        .args(["--interface", "lo", "--filter"])
        .arg(format!("udp and port {port}"))
        .arg("--out")
        .arg(out.path())
        .env_remove("DS_DIR")
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(1500));
    for _ in 0..4 {
        a.send_to(b"ping", ("127.0.0.1", port)).unwrap();
    }
    let mut buf = [0u8; 8];
    let (_, from) = b.recv_from(&mut buf).unwrap();
    b.send_to(b"pong", from).unwrap();
    // Quiet for more than the idle timeout: the flow must be committed without a signal.
    let flow_file = || {
        files(out.path(), ".csv")
            .into_iter()
            .find(|p| p.file_name().unwrap().to_string_lossy().contains("-flows-"))
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    let mut rows = 0;
    while std::time::Instant::now() < deadline && rows == 0 {
        std::thread::sleep(std::time::Duration::from_millis(100));
        if let Some(path) = flow_file() {
            rows = std::fs::read_to_string(path)
                .unwrap()
                .lines()
                .count()
                .saturating_sub(1);
        }
    }
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
    assert_eq!(rows, 1, "the idle flow was written while the run went on");
    let mut reader = csv::Reader::from_path(flow_file().unwrap()).unwrap();
    let header = reader.headers().unwrap().clone();
    let col = |n: &str| header.iter().position(|h| h == n).unwrap();
    let records: Vec<csv::StringRecord> = reader.records().map(|r| r.unwrap()).collect();
    assert_eq!(records.len(), 1);
    assert_eq!(&records[0][col("expiration_reason")], "idle");
    assert_eq!(&records[0][col("src2dst_packets")], "4");
    assert_eq!(&records[0][col("dst2src_packets")], "1");
    assert_eq!(&records[0][col("dst_port")], port.to_string().as_str());
}

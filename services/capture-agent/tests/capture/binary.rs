//! The binary: bad configuration ends with one clear line and a non-zero exit; SIGTERM
//! publishes what is buffered and exits 0.

use std::process::{Command, Output, Stdio};
use std::time::Duration;

use crate::support::*;

const BIN: &str = env!("CARGO_BIN_EXE_capture-agent");

fn run_agent(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .args(["--ops-addr", "127.0.0.1:0"])
        .env_remove("RUST_LOG")
        .output()
        .unwrap()
}

/// Exit status is failure and stderr is exactly one line containing `needle`.
fn assert_one_line_error(output: &Output, needle: &str) {
    assert!(!output.status.success(), "exit status {:?}", output.status);
    let stderr = String::from_utf8_lossy(&output.stderr);
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "stderr: {stderr}");
    assert!(lines[0].starts_with("capture-agent: "), "{}", lines[0]);
    assert!(lines[0].contains(needle), "{:?} lacks {needle:?}", lines[0]);
}

#[cfg_attr(
    not(feature = "system-tests"),
    ignore = "needs root (opens a capture interface): run with --features system-tests (scripts/test.sh does)"
)]
#[test]
fn unknown_interface() {
    let output = run_agent(&["-i", "nosuchif0", "--broker-url", "memory://bin"]);
    assert_one_line_error(&output, "interface nosuchif0: no such device");
}

#[cfg_attr(
    not(feature = "system-tests"),
    ignore = "needs root (opens a capture interface): run with --features system-tests (scripts/test.sh does)"
)]
#[test]
fn invalid_bpf_filter() {
    let output = run_agent(&[
        "-i",
        "lo",
        "--filter",
        "tcp and and",
        "--broker-url",
        "memory://bin",
    ]);
    assert_one_line_error(&output, "invalid BPF filter");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("f.pcap");
    write_pcap(&path, &make_packets(2, 0, 1));
    let output = run_agent(&[
        "--read",
        path.to_str().unwrap(),
        "--filter",
        "port 99999999",
        "--broker-url",
        "memory://bin",
    ]);
    assert_one_line_error(&output, "invalid BPF filter");
}

#[test]
fn malformed_broker_urls() {
    let output = run_agent(&["--broker-url", "localhost:6379"]);
    assert_one_line_error(&output, "missing scheme://");
    let output = run_agent(&["--broker-url", "mqtt://broker"]);
    assert_one_line_error(&output, "unsupported scheme");
    let output = run_agent(&["--broker-url", "redis://127.0.0.1:notaport"]);
    assert_one_line_error(&output, "invalid port");
}

#[test]
fn missing_capture_file() {
    let output = run_agent(&[
        "--read",
        "/nonexistent/x.pcap",
        "--broker-url",
        "memory://bin",
    ]);
    assert_one_line_error(&output, "/nonexistent/x.pcap");
}

#[test]
fn without_cap_net_raw_opening_an_interface_names_the_capability() {
    if Command::new("setpriv").arg("--help").output().is_err() {
        netpipe_testkit::skip(
            "without_cap_net_raw",
            "setpriv (util-linux) is not installed",
        );
        return;
    }
    let output = Command::new("setpriv")
        .args(["--inh-caps=-all", "--bounding-set=-net_raw,-net_admin", BIN])
        .args([
            "-i",
            "lo",
            "--broker-url",
            "memory://bin",
            "--ops-addr",
            "127.0.0.1:0",
        ])
        .output()
        .unwrap();
    assert_one_line_error(&output, "CAP_NET_RAW");
}

#[cfg_attr(
    not(feature = "system-tests"),
    ignore = "needs Redis at 127.0.0.1:6379: run with --features system-tests (scripts/test.sh does)"
)]
#[tokio::test]
async fn sigterm_publishes_what_is_buffered_and_exits_0() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("slow.pcap");
    // 2000 packets over 20 s of recorded time: SIGTERM lands mid-replay.
    write_pcap(&path, &make_packets(2000, 1_700_000_000_000_000, 10_000));
    let stream = unique("sigterm");
    let ops_port = free_port();
    let mut consumer = consumer(REDIS_URL, &stream).await;
    let child = Command::new(BIN)
        .args([
            "--read",
            path.to_str().unwrap(),
            "--speed",
            "1",
            "--exit-at-eof",
        ])
        .args(["--broker-url", REDIS_URL, "--stream", &stream])
        // A long batch delay: frames sit in the batcher when SIGTERM arrives.
        .args(["--batch-size", "100000", "--batch-delay-ms", "60000"])
        .args(["--ops-addr", &format!("127.0.0.1:{ops_port}")])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let ops = format!("127.0.0.1:{ops_port}").parse().unwrap();
    let ready = wait_until(Duration::from_secs(10), || async {
        match reqwest::get(format!("http://{ops}/ready")).await {
            Ok(r) => r.status().as_u16() == 200,
            Err(_) => false,
        }
    })
    .await;
    assert!(ready, "agent never became ready");
    tokio::time::sleep(Duration::from_millis(700)).await;
    let (_, metrics) = ops_get(ops, "/metrics").await;
    assert!(
        metrics.contains("capture_agent_frames_published_total 0"),
        "nothing published before SIGTERM"
    );
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = tokio::task::spawn_blocking(move || child.wait_with_output().unwrap())
        .await
        .unwrap();
    assert!(
        exit.status.success(),
        "exit {:?}: {}",
        exit.status,
        String::from_utf8_lossy(&exit.stderr)
    );

    let mut frames = receive_frames(&mut consumer, usize::MAX, Duration::from_secs(2)).await;
    frames.sort_by_key(|f| f.seq);
    assert!(
        !frames.is_empty(),
        "buffered frames were published on SIGTERM"
    );
    assert!(frames.len() < 2000, "SIGTERM stopped the replay early");
    let boot = frames[0].boot;
    for (i, frame) in frames.iter().enumerate() {
        assert_eq!(
            frame.seq,
            boot + i as u64,
            "no gap: nothing captured was lost"
        );
    }
}

#[test]
fn resume_without_a_file_is_a_clear_error() {
    let output = run_agent(&["--resume", "state.json", "--broker-url", "memory://bin"]);
    assert_one_line_error(&output, "--resume needs --read");
}

#[test]
fn a_resume_state_of_another_replay_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let pcap = dir.path().join("a.pcap");
    write_pcap(&pcap, &make_packets(10, 1_700_000_000_000_000, 10));
    let state = dir.path().join("state.json");
    std::fs::write(&state, b"{\"not\": \"a state\"}").unwrap();
    let output = run_agent(&[
        "--read",
        pcap.to_str().unwrap(),
        "--resume",
        state.to_str().unwrap(),
        "--broker-url",
        "memory://bin",
    ]);
    assert_one_line_error(&output, "not a resume state file");
}

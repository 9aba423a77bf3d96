//! A replay against a broker it cannot use ends, with one line and a non-zero exit (issue 16):
//! wrong credentials at once, an unreachable broker after --broker-wait-secs, and frames
//! still buffered at SIGTERM are counted as lost with exit code 3, never exit 0.

use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

fn sample(dir: &std::path::Path) -> std::path::PathBuf {
    let pcap = dir.join("sample.pcap");
    netpipe_runtime::capture::sample::write_sample_pcap(&pcap).unwrap();
    pcap
}

fn agent(pcap: &std::path::Path, broker: &str) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_capture-agent"));
    command
        .arg("--read")
        .arg(pcap)
        .args([
            "--exit-at-eof",
            "--ops-addr",
            "127.0.0.1:0",
            "--broker-url",
            broker,
        ])
        .args([
            "--stream",
            &format!("start-failures-{}", std::process::id()),
        ])
        .env_remove("RUST_LOG")
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    command
}

/// Waits at most `limit`, sending SIGTERM after `term_after` if given.
fn bounded(mut command: Command, term_after: Option<Duration>, limit: Duration) -> Output {
    let mut child = command.spawn().unwrap();
    let start = Instant::now();
    let mut termed = false;
    while child.try_wait().unwrap().is_none() {
        if let Some(after) = term_after
            && !termed
            && start.elapsed() >= after
        {
            let _ = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status();
            termed = true;
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            panic!("still running after {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

#[cfg_attr(
    not(feature = "system-tests"),
    ignore = "needs RabbitMQ at 127.0.0.1:5672: run with --features system-tests (scripts/test.sh does)"
)]
#[test]
fn wrong_amqp_credentials_fail_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let pcap = sample(dir.path());
    let started = Instant::now();
    let out = bounded(
        agent(&pcap, "amqp://guest:certainly-wrong@127.0.0.1:5672/%2f"),
        None,
        Duration::from_secs(20),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("ACCESS_REFUSED"), "{stderr}");
    assert!(!stderr.contains("certainly-wrong"), "{stderr}");
}

#[cfg_attr(
    not(feature = "system-tests"),
    ignore = "needs Redis at 127.0.0.1:6379: run with --features system-tests (scripts/test.sh does)"
)]
#[test]
fn wrong_redis_password_fails_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let pcap = sample(dir.path());
    let out = bounded(
        agent(&pcap, "redis://:certainly-wrong@127.0.0.1:6379"),
        None,
        Duration::from_secs(20),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(!stderr.contains("certainly-wrong"), "{stderr}");
}

#[test]
fn an_unreachable_broker_ends_a_replay_after_the_wait() {
    let dir = tempfile::tempdir().unwrap();
    let pcap = sample(dir.path());
    let mut command = agent(&pcap, "redis://127.0.0.1:1");
    command.args(["--broker-wait-secs", "2", "--shutdown-grace-secs", "1"]);
    let started = Instant::now();
    let out = bounded(command, None, Duration::from_secs(30));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    assert!(stderr.contains("unreachable for 2 s"), "{stderr}");
    assert!(
        stderr.contains("15 captured frames were not published"),
        "{stderr}"
    );
}

#[test]
fn frames_lost_at_sigterm_are_not_exit_0() {
    let dir = tempfile::tempdir().unwrap();
    let pcap = sample(dir.path());
    let mut command = agent(&pcap, "redis://127.0.0.1:1");
    command.args(["--broker-wait-secs", "0", "--shutdown-grace-secs", "0"]);
    let out = bounded(
        command,
        Some(Duration::from_millis(1500)),
        Duration::from_secs(30),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("15 captured packets lost"), "{stderr}");
}

#[test]
fn flows_on_a_broker_without_a_flow_stream_fail_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let pcap = sample(dir.path());
    for broker in ["memory://flows-here", "kombu+redis://127.0.0.1:6379/15"] {
        let mut command = agent(&pcap, broker);
        command.arg("--flows");
        let out = bounded(command, None, Duration::from_secs(20));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{stderr}");
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(stderr.contains("--flows needs"), "{stderr}");
    }
}

/// A deprecated env name (CAP_FLOWS, now FLOWS) still works, and says so once: here it turns
/// --flows on, which a memory:// broker refuses at start-up.
#[test]
fn a_deprecated_env_name_works_and_is_logged_once() {
    let dir = tempfile::tempdir().unwrap();
    let pcap = sample(dir.path());
    let mut command = agent(&pcap, "memory://deprecated-env");
    command
        .env_remove("FLOWS")
        .env("CAP_FLOWS", "1")
        .stdout(Stdio::piped());
    let output = bounded(command, None, Duration::from_secs(30));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(
        stderr.contains("--flows needs"),
        "CAP_FLOWS was read: {stderr}"
    );
    let warning = "environment variable CAP_FLOWS is deprecated: rename it to FLOWS";
    assert_eq!(stdout.matches(warning).count(), 1, "{stdout}");
}

//! ANTINEX_URL handling from the outside (issue 16): a password in the URL is never printed, a
//! URL without scheme is refused at start with one line, a refused connection says so, and
//! `--version` prints the program's version (the request field is `--body-version`).

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn publisher() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_publisher"));
    command
        .env_remove("ANTINEX_URL")
        .env_remove("ROWS_BROKER_URL")
        .env_remove("RUST_LOG")
        .args(["--ops-addr", "off"]);
    command
}

/// Runs for `run_for`, then SIGTERM; returns (status, stdout + stderr).
fn run_then_stop(mut command: Command, run_for: Duration) -> (std::process::ExitStatus, String) {
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while start.elapsed() < run_for && child.try_wait().unwrap().is_none() {
        std::thread::sleep(Duration::from_millis(50));
    }
    if child.try_wait().unwrap().is_none() {
        unsafe_kill_term(child.id());
    }
    let out = child.wait_with_output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status, text)
}

fn unsafe_kill_term(pid: u32) {
    let _ = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status();
}

#[test]
fn a_password_in_antinex_url_is_never_printed_and_the_cause_is() {
    let secret = "pw-In-The-Url-77";
    // Port 1 on loopback: nothing listens, the connection is refused.
    let mut command = publisher();
    command
        .arg("--rows-url")
        .arg(format!("memory://url-test-{}", std::process::id()))
        .arg("--url")
        .arg(format!("http://root:{secret}@127.0.0.1:1"));
    let (_, text) = run_then_stop(command, Duration::from_secs(2));
    assert!(!text.contains(secret), "{text}");
    assert!(text.contains("root:***@127.0.0.1:1"), "{text}");
    assert!(
        text.contains("Connection refused"),
        "the cause is missing: {text}"
    );
}

#[test]
fn a_url_without_scheme_is_refused_at_start() {
    for url in ["localhost:8010", "ftp://h/x", "http://"] {
        let mut command = publisher();
        command
            .args(["--rows-url", "memory://never"])
            .arg("--url")
            .arg(url);
        let started = Instant::now();
        let (status, _) = run_then_stop(command, Duration::from_secs(10));
        assert!(started.elapsed() < Duration::from_secs(5), "{url}: slow");
        assert_eq!(status.code(), Some(1), "{url}");
        let out = publisher()
            .args(["--rows-url", "memory://never", "--url", url])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(stderr.lines().count(), 1, "{url}: {stderr}");
        assert!(stderr.contains("ANTINEX_URL"), "{url}: {stderr}");
    }
}

#[test]
fn version_works() {
    // (antinex-standin's --version is checked in its own crate.)
    let exe = env!("CARGO_BIN_EXE_publisher");
    let out = Command::new(exe).arg("--version").output().unwrap();
    assert!(out.status.success(), "{exe}");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains(env!("CARGO_PKG_VERSION")), "{exe}: {text}");
    let parsed =
        <publisher::Config as clap::Parser>::try_parse_from(["publisher", "--body-version", "3"])
            .unwrap();
    assert_eq!(parsed.version, Some(3));
}

/// Wrong credentials are not transient: after --login-give-up-secs of refused logins the
/// publisher exits 1 with one line; it never prints the password.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_logins_end_the_run_after_the_give_up_time() {
    let server =
        antinex_standin::Standin::start(antinex_standin::StandinConfig::default(), "127.0.0.1:0")
            .await
            .unwrap();
    let url = server.url();
    let out = tokio::task::spawn_blocking(move || {
        let mut command = publisher();
        command
            .arg("--rows-url")
            .arg(format!("memory://refused-{}", std::process::id()))
            .args(["--url", &url, "--login-give-up-secs", "1"])
            .env("ANTINEX_USER", "root")
            .env("ANTINEX_PASSWORD", "pw-Wrong-On-Purpose-9");
        let started = Instant::now();
        let (status, text) = run_then_stop(command, Duration::from_secs(15));
        (status, text, started.elapsed())
    })
    .await
    .unwrap();
    let (status, text, elapsed) = out;
    assert_eq!(status.code(), Some(1), "{text}");
    assert!(elapsed < Duration::from_secs(10), "{elapsed:?}");
    assert!(text.contains("refused with HTTP 400 for 1 s"), "{text}");
    assert!(!text.contains("pw-Wrong-On-Purpose-9"), "{text}");
    server.stop().await;
}

//! The long-running mode: `--watch-secs` rebuilds when the inputs change, `--ops-addr` serves
//! /health, /ready and /metrics meanwhile, and shutdown (the token, or SIGTERM for the binary)
//! ends it cleanly. Processor files are read up to their manifest's committed length.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use crate::support::{config, netpipe_csv, read_csv, s};
use dataset_builder::synth::SynthSpec;
use dataset_builder::{BuildError, RunOutcome, build_once, run};
use tokio_util::sync::CancellationToken;

const HEADER: &str = "ts,agent,seq,ip_src,ip_proto,tcp_dport\n";

fn row(seq: u32) -> String {
    format!(
        "2026-01-01T00:00:00Z,a,{seq},10.0.0.{},6,{}\n",
        seq % 250,
        1000 + seq
    )
}

fn rows(range: std::ops::Range<u32>) -> String {
    range.map(row).collect()
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Moves a file's modification time a minute back, as a file finished long ago (watch mode
/// waits until a file without a manifest has been left alone for one interval).
fn age(path: &Path) {
    let file = std::fs::File::options().write(true).open(path).unwrap();
    file.set_modified(SystemTime::now() - Duration::from_secs(60))
        .unwrap();
}

/// A processor-style file: CSV data plus a manifest committing its first `committed` bytes.
fn processor_file(path: &Path, data: &str, committed: usize) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, data).unwrap();
    let manifest = serde_json::json!({
        "format": "netpipe-dataset-manifest",
        "manifest_version": 1,
        "schema": {"name": "netpipe", "version": 1, "columns": []},
        "bytes": committed,
        "closed": false,
    });
    let mut manifest_path = path.as_os_str().to_owned();
    manifest_path.push(".manifest.json");
    std::fs::write(PathBuf::from(manifest_path), manifest.to_string()).unwrap();
}

async fn get(port: u16, path: &str) -> (u16, String) {
    match reqwest::get(format!("http://127.0.0.1:{port}{path}")).await {
        Ok(response) => {
            let status = response.status().as_u16();
            (status, response.text().await.unwrap_or_default())
        }
        Err(_) => (0, String::new()),
    }
}

/// Polls `check` every 100 ms until it holds; panics with `what` after `timeout`.
async fn wait_for<F, Fut>(what: &str, timeout: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + timeout;
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The value of one sample line (`name{labels} value`) of a /metrics body.
fn sample(metrics: &str, series: &str) -> Option<f64> {
    metrics
        .lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

fn data_rows(csv: &Path) -> usize {
    read_csv(csv).len().saturating_sub(1)
}

#[cfg_attr(
    not(feature = "system-tests"),
    ignore = "needs promtool installed: run with --features system-tests (scripts/test.sh does)"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_file_triggers_a_rebuild_and_shutdown_ends_the_watch() {
    let tmp = tempfile::tempdir().unwrap();
    let ds = tmp.path().join("datasets");
    let out = tmp.path().join("training");
    let first = ds.join("a/recorded.csv");
    let stats = netpipe_csv(
        &first,
        &SynthSpec {
            rows: 300,
            ..SynthSpec::default()
        },
    );
    age(&first);
    let port = free_port();
    let cfg = config(&[
        "--ds-dir",
        &s(&ds),
        "--output-dir",
        &s(&out),
        "--watch-secs",
        "1",
        "--ops-addr",
        &format!("127.0.0.1:{port}"),
    ]);
    let shutdown = CancellationToken::new();
    let service = tokio::spawn(run(cfg, shutdown.clone()));

    wait_for("the first build", Duration::from_secs(30), || async {
        get(port, "/ready").await.0 == 200
    })
    .await;
    let fulldata = out.join("fulldata_attack_scans.csv");
    assert_eq!(data_rows(&fulldata), stats.rows as usize);
    assert_eq!(get(port, "/health").await.0, 200);
    let (_, metrics) = get(port, "/metrics").await;
    assert_eq!(
        sample(
            &metrics,
            "dataset_builder_builds_total{outcome=\"success\"}"
        ),
        Some(1.0)
    );
    assert_eq!(
        sample(&metrics, "dataset_builder_rows_read"),
        Some(stats.rows as f64)
    );
    assert!(netpipe_testkit::promtool_check("watch", &metrics).unwrap_or_else(|e| panic!("{e}")));

    // A processor file appears: 5 committed rows, and a sixth row being appended (past the
    // manifest's `bytes`, without its newline yet) that must not be read.
    let committed = format!("{HEADER}{}", rows(0..5));
    let growing = format!("{committed}2026-01-01T00:00:00Z,a,5,10.0");
    processor_file(&ds.join("b/netdata.csv"), &growing, committed.len());
    let expected = stats.rows as usize + 5;
    wait_for("the rebuild", Duration::from_secs(30), || async {
        let (_, metrics) = get(port, "/metrics").await;
        sample(
            &metrics,
            "dataset_builder_builds_total{outcome=\"success\"}",
        ) == Some(2.0)
    })
    .await;
    assert_eq!(data_rows(&fulldata), expected);
    assert_eq!(get(port, "/ready").await.0, 200);

    // Nothing changed: no further build.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let (_, metrics) = get(port, "/metrics").await;
    assert_eq!(
        sample(
            &metrics,
            "dataset_builder_builds_total{outcome=\"success\"}"
        ),
        Some(2.0)
    );

    shutdown.cancel();
    let outcome = tokio::time::timeout(Duration::from_secs(30), service)
        .await
        .expect("the watch ends after shutdown")
        .unwrap()
        .unwrap();
    assert!(
        matches!(
            outcome,
            RunOutcome::Stopped {
                builds: 2,
                failed: 0
            }
        ),
        "{outcome:?}"
    );
    // The ops server is gone too.
    assert_eq!(get(port, "/health").await.0, 0);
    // No temporary output was left behind.
    let leftovers: Vec<_> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".tmp-"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_makes_ready_fail_with_the_reason_until_fixed() {
    let tmp = tempfile::tempdir().unwrap();
    let ds = tmp.path().join("datasets");
    let out = tmp.path().join("training");
    let file = ds.join("a/bad.csv");
    std::fs::create_dir_all(file.parent().unwrap()).unwrap();
    std::fs::write(
        &file,
        format!("{HEADER}{}2026-01-01T00:00:00Z,a,9\n", rows(0..3)),
    )
    .unwrap();
    age(&file);
    let port = free_port();
    let cfg = config(&[
        "--ds-dir",
        &s(&ds),
        "--output-dir",
        &s(&out),
        "--watch-secs",
        "1",
        "--ops-addr",
        &format!("127.0.0.1:{port}"),
    ]);
    let shutdown = CancellationToken::new();
    let service = tokio::spawn(run(cfg, shutdown.clone()));

    wait_for("the failed build", Duration::from_secs(30), || async {
        let (_, metrics) = get(port, "/metrics").await;
        sample(
            &metrics,
            "dataset_builder_build_errors_total{kind=\"bad_rows\"}",
        ) == Some(1.0)
    })
    .await;
    let (status, body) = get(port, "/ready").await;
    assert_eq!(status, 503, "{body}");
    let report: serde_json::Value = serde_json::from_str(&body).unwrap();
    let reasons = report["reasons"].as_array().unwrap();
    assert_eq!(reasons.len(), 1, "{body}");
    let reason = reasons[0].as_str().unwrap();
    assert!(
        reason.starts_with("last build: bad input: 1 ragged row(s)"),
        "{reason}"
    );
    assert!(reason.contains("bad.csv:5"), "{reason}");
    assert_eq!(
        get(port, "/health").await.0,
        200,
        "a bad input is no reason to restart"
    );
    assert!(!out.join("fulldata_attack_scans.csv").exists());

    // The file is fixed: the next build succeeds.
    std::fs::write(&file, format!("{HEADER}{}", rows(0..4))).unwrap();
    wait_for("the good build", Duration::from_secs(30), || async {
        get(port, "/ready").await.0 == 200
    })
    .await;
    assert_eq!(data_rows(&out.join("fulldata_attack_scans.csv")), 4);
    let (_, metrics) = get(port, "/metrics").await;
    assert_eq!(
        sample(
            &metrics,
            "dataset_builder_builds_total{outcome=\"failure\"}"
        ),
        Some(1.0)
    );
    assert_eq!(sample(&metrics, "dataset_builder_success"), Some(1.0));

    shutdown.cancel();
    let outcome = tokio::time::timeout(Duration::from_secs(30), service)
        .await
        .expect("the watch ends after shutdown")
        .unwrap()
        .unwrap();
    assert!(
        matches!(
            outcome,
            RunOutcome::Stopped {
                builds: 2,
                failed: 1
            }
        ),
        "{outcome:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_inputs_yet_is_not_ready_and_an_unreadable_directory_says_so() {
    let tmp = tempfile::tempdir().unwrap();
    let ds = tmp.path().join("not-yet");
    let port = free_port();
    let cfg = config(&[
        "--ds-dir",
        &s(&ds),
        "--output-dir",
        &s(&tmp.path().join("out")),
        "--watch-secs",
        "1",
        "--ops-addr",
        &format!("127.0.0.1:{port}"),
    ]);
    let shutdown = CancellationToken::new();
    let service = tokio::spawn(run(cfg, shutdown.clone()));
    wait_for("the ops server", Duration::from_secs(30), || async {
        get(port, "/health").await.0 == 200
    })
    .await;
    wait_for("the inputs reason", Duration::from_secs(30), || async {
        let (status, body) = get(port, "/ready").await;
        status == 503 && body.contains("inputs: cannot read")
    })
    .await;
    std::fs::create_dir_all(&ds).unwrap();
    wait_for("no input files", Duration::from_secs(30), || async {
        let (status, body) = get(port, "/ready").await;
        status == 503
            && !body.contains("inputs:")
            && body.contains("last build: no build yet: no input files")
    })
    .await;
    shutdown.cancel();
    let outcome = tokio::time::timeout(Duration::from_secs(30), service)
        .await
        .expect("the watch ends after shutdown")
        .unwrap()
        .unwrap();
    assert!(
        matches!(
            outcome,
            RunOutcome::Stopped {
                builds: 0,
                failed: 0
            }
        ),
        "{outcome:?}"
    );
}

#[tokio::test]
async fn a_bad_ops_address_or_label_rule_is_a_configuration_error() {
    let tmp = tempfile::tempdir().unwrap();
    // OPS_ADDR is parsed with the flags (one line from clap, exit 2); a name that does not
    // resolve fails at start-up.
    let refused = <dataset_builder::Config as clap::Parser>::try_parse_from([
        "dataset-builder",
        "--ops-addr",
        "not-an-address",
    ]);
    assert!(refused.is_err());
    let cfg = config(&[
        "--ds-dir",
        &s(tmp.path()),
        "--watch-secs",
        "1",
        "--ops-addr",
        "no-such-host.invalid:9104",
    ]);
    let err = run(cfg, CancellationToken::new()).await.unwrap_err();
    assert!(matches!(err, BuildError::Ops(_)), "{err}");
    let cfg = config(&[
        "--ds-dir",
        &s(tmp.path()),
        "--watch-secs",
        "1",
        "--label-rule",
        "x:attack",
    ]);
    let err = run(cfg, CancellationToken::new()).await.unwrap_err();
    assert_eq!(
        err.exit_code(),
        dataset_builder::error::EXIT_CONFIG,
        "{err}"
    );
}

#[test]
fn only_the_committed_part_of_a_processor_file_is_read() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("in/a/netdata.csv");
    let committed = format!("{HEADER}{}", rows(0..3));
    // Two more complete rows past the commit point: never acknowledged, cut at the
    // processor's next start; not part of the dataset.
    processor_file(
        &file,
        &format!("{committed}{}", rows(3..5)),
        committed.len(),
    );
    let out = tmp.path().join("out");
    let cfg = config(&[
        "--ds-dir",
        &s(&tmp.path().join("in")),
        "--output-dir",
        &s(&out),
    ]);
    let summary = build_once(&cfg).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(summary.stats.rows_read, 3);
    assert_eq!(data_rows(&out.join("fulldata_attack_scans.csv")), 3);

    // A manifest committing more than the file holds is bad input.
    processor_file(&file, &committed, committed.len() + 10);
    let err = build_once(&cfg).unwrap_err();
    assert!(err.to_string().contains("its manifest commits"), "{err}");
}

#[test]
fn the_binary_exits_0_on_sigterm_in_watch_mode() {
    let tmp = tempfile::tempdir().unwrap();
    let ds = tmp.path().join("datasets");
    let file = ds.join("a/x.csv");
    std::fs::create_dir_all(file.parent().unwrap()).unwrap();
    std::fs::write(&file, format!("{HEADER}{}", rows(0..2))).unwrap();
    age(&file);
    let port = free_port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_dataset-builder"))
        .env("DS_DIR", &ds)
        .env("OUTPUT_DIR", tmp.path().join("out"))
        .env("WATCH_SECS", "1")
        .env("OPS_ADDR", format!("127.0.0.1:{port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let fulldata = tmp.path().join("out/fulldata_attack_scans.csv");
    let deadline = Instant::now() + Duration::from_secs(30);
    while !fulldata.exists() {
        if Instant::now() > deadline || child.try_wait().unwrap().is_some() {
            let _ = child.kill();
            let output = child.wait_with_output().unwrap();
            panic!("no build: {}", String::from_utf8_lossy(&output.stderr));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("dataset-builder did not exit after SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let output = child.wait_with_output().unwrap();
    assert!(
        status.success(),
        "{status}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

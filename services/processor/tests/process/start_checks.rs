//! Start-up checks and bounded failures (issue 16): a mistyped broker URL fails before any
//! dataset file exists, an unusable dataset directory ends the run after --give-up-secs, and
//! a huge poison message is not copied whole into the dead-letter stream.

use std::time::{Duration, Instant};

use crate::support::unique;
use netpipe_runtime::broker::{BrokerConfig, Publisher, memory_dead_letters};
use processor::Config;
use tokio_util::sync::CancellationToken;

fn entries(dir: &std::path::Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .map(|e| {
            e.filter_map(Result::ok)
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_broker_url_fails_before_any_file_is_written() {
    for url in ["localhost:6379", "mqtt://h:1", "redis://", "memory://"] {
        let dir = tempfile::tempdir().unwrap();
        let ds = dir.path().join("ds");
        let error = processor::run(Config::new(url, &ds), CancellationToken::new())
            .await
            .expect_err(url);
        let line = netpipe_runtime::error_line(&error);
        assert!(line.contains("broker URL"), "{url}: {line}");
        assert!(entries(&ds).is_empty(), "{url}: {:?}", entries(&ds));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unusable_dataset_directory_is_given_up_after_give_up_secs() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a-file");
    std::fs::write(&file, "x").unwrap();
    let mut config = Config::new(&format!("memory://{}", unique("give-up")), file.join("ds"));
    config.give_up_secs = 1;
    let started = Instant::now();
    let result = tokio::time::timeout(
        Duration::from_secs(20),
        processor::run(config, CancellationToken::new()),
    )
    .await
    .expect("gave up in time");
    let error = result.expect_err("the directory is unusable");
    assert!(started.elapsed() < Duration::from_secs(10));
    assert!(
        netpipe_runtime::error_line(&error).contains("a-file"),
        "{error}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_huge_poison_message_is_cut_in_the_dead_letter_stream() {
    let dir = tempfile::tempdir().unwrap();
    let name = unique("huge-poison");
    let mut broker = BrokerConfig::parse(format!("memory://{name}")).unwrap();
    broker.memory_capacity = 16;
    let publisher = Publisher::connect(&broker).await.unwrap();
    publisher.publish(vec![b'x'; 17 << 20]).await.unwrap();
    let mut config = Config::new(&format!("memory://{name}"), dir.path());
    config.max_message_bytes = 1 << 20;
    let stop = CancellationToken::new();
    let run = tokio::spawn(processor::run(config, stop.clone()));
    let deadline = Instant::now() + Duration::from_secs(20);
    while memory_dead_letters(&name).is_empty() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stop.cancel();
    let summary = run.await.unwrap().unwrap();
    assert_eq!(summary.dead_letters, 1);
    let letters = memory_dead_letters(&name);
    assert_eq!(letters.len(), 1);
    assert_eq!(letters[0].1, "oversized");
    assert_eq!(letters[0].0.len(), processor::DEAD_LETTER_MAX_BODY);
}

/// Logs written to a file (not a terminal) carry no ANSI colour codes, and the end-of-run
/// error is one line.
#[test]
fn logs_to_a_file_have_no_colour_codes() {
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_processor"))
        .args([
            "--broker-url",
            "localhost:6379",
            "--ops-addr",
            "127.0.0.1:0",
            "--ds-dir",
        ])
        .arg(dir.path().join("ds"))
        .env_remove("RUST_LOG")
        .env_remove("LOG_JSON")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stdout.contains("INFO"), "no log line to check: {stdout}");
    assert!(
        !stdout.contains('\u{1b}') && !stderr.contains('\u{1b}'),
        "{stdout:?}"
    );
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(entries(&dir.path().join("ds")).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flows_on_a_broker_without_a_flow_stream_fail_before_any_file_is_written() {
    for url in ["memory://flows-here", "kombu+redis://127.0.0.1:6379/15"] {
        let dir = tempfile::tempdir().unwrap();
        let ds = dir.path().join("ds");
        let mut config = Config::new(url, &ds);
        config.flows = true;
        let error = processor::run(config, CancellationToken::new())
            .await
            .expect_err(url);
        let line = netpipe_runtime::error_line(&error);
        assert!(line.contains("--flows needs"), "{url}: {line}");
        assert!(entries(&ds).is_empty(), "{url}: {:?}", entries(&ds));
    }
}

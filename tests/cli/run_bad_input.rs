//! `netpipe run` on bad input (issue 16): one line naming the thing and the cause, a non-zero
//! exit within seconds, and no stray dataset files; a bare `--output-csv` name works.

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

fn netpipe() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_netpipe"));
    for var in ["DS_DIR", "OUTPUT_CSV", "CAP_DEVICE", "NETWORK_FILTER"] {
        command.env_remove(var);
    }
    command
}

/// Runs with a deadline: a hang is a failure, not a stuck test.
fn run_bounded(mut command: Command, limit: Duration) -> Output {
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    loop {
        if child.try_wait().unwrap().is_some() {
            return child.wait_with_output().unwrap();
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!(
                "still running after {limit:?}; stderr: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn files_under(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

fn sample(dir: &Path) -> std::path::PathBuf {
    let pcap = dir.join("sample.pcap");
    netpipe_runtime::capture::sample::write_sample_pcap(&pcap).unwrap();
    pcap
}

/// Each bad input fails alone, fast, with one line that names it; nothing is written.
#[test]
fn bad_input_fails_fast_with_one_line_and_no_files() {
    let dir = tempfile::tempdir().unwrap();
    let pcap = sample(dir.path());
    let text = dir.path().join("notes.txt");
    std::fs::write(&text, "not a capture\n").unwrap();
    let empty = dir.path().join("empty.pcap");
    std::fs::write(&empty, b"").unwrap();
    let truncated = dir.path().join("cut.pcap");
    std::fs::write(&truncated, &std::fs::read(&pcap).unwrap()[..12]).unwrap();
    let a_file = dir.path().join("a-file");
    std::fs::write(&a_file, "x").unwrap();
    let out = dir.path().join("out");

    let cases: Vec<(&str, Vec<String>, String)> = vec![
        (
            "missing file",
            vec![
                "--read".into(),
                dir.path().join("missing.pcap").display().to_string(),
            ],
            "missing.pcap".into(),
        ),
        (
            "a directory",
            vec!["--read".into(), dir.path().display().to_string()],
            "directory".into(),
        ),
        (
            "a text file",
            vec!["--read".into(), text.display().to_string()],
            "notes.txt".into(),
        ),
        (
            "a zero-byte file",
            vec!["--read".into(), empty.display().to_string()],
            "empty.pcap".into(),
        ),
        (
            "a cut header",
            vec!["--read".into(), truncated.display().to_string()],
            "cut.pcap".into(),
        ),
        (
            "a bad filter",
            vec![
                "--read".into(),
                pcap.display().to_string(),
                "--filter".into(),
                "tcp port".into(),
            ],
            "tcp port".into(),
        ),
        (
            "an unknown schema",
            vec![
                "--read".into(),
                pcap.display().to_string(),
                "--schema".into(),
                "netpipe,bogus".into(),
            ],
            "bogus".into(),
        ),
        (
            "an unwritable --out",
            vec![
                "--read".into(),
                pcap.display().to_string(),
                "--out".into(),
                a_file.join("sub").display().to_string(),
            ],
            "a-file/sub".into(),
        ),
    ];
    for (what, args, named) in cases {
        let mut command = netpipe();
        command.arg("run").args(&args);
        if !args.iter().any(|a| a == "--out") {
            command.arg("--out").arg(&out);
        }
        let started = Instant::now();
        let output = run_bounded(command, Duration::from_secs(20));
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{what}: exit 0; {stderr}");
        assert_eq!(output.status.code(), Some(1), "{what}: {stderr}");
        assert!(started.elapsed() < Duration::from_secs(10), "{what}: slow");
        assert_eq!(stderr.lines().count(), 1, "{what}: not one line: {stderr}");
        assert!(
            stderr.contains(&named),
            "{what}: does not name {named}: {stderr}"
        );
        assert!(!stderr.contains("panicked"), "{what}: {stderr}");
        // A cause is never printed twice (`... (os error 2): ... (os error 2)`).
        let parts: Vec<&str> = stderr.trim().split(": ").collect();
        for (i, part) in parts.iter().enumerate() {
            assert!(
                !parts[i + 1..].contains(part) || part.len() < 8,
                "{what}: repeated cause: {stderr}"
            );
        }
        // Not even the output directory is created.
        assert!(!out.exists(), "{what}: created {}", out.display());
    }

    // A bad --ops-addr is refused while the flags are parsed: clap's usage error (exit 2),
    // whose first line names the value, and nothing is created.
    let output = run_bounded(
        {
            let mut command = netpipe();
            command
                .arg("run")
                .args([
                    "--read",
                    &pcap.display().to_string(),
                    "--ops-addr",
                    "nonsense",
                ])
                .arg("--out")
                .arg(&out);
            command
        },
        Duration::from_secs(20),
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "a bad --ops-addr: {stderr}");
    let first = stderr.lines().next().unwrap_or_default();
    assert!(
        first.contains("nonsense") && first.contains("--ops-addr"),
        "a bad --ops-addr: {stderr}"
    );
    assert!(!stderr.contains("panicked"), "a bad --ops-addr: {stderr}");
    assert!(!out.exists(), "a bad --ops-addr: created {}", out.display());
}

/// A bare file name for `--output-csv` means the current directory: one CSV and its manifest,
/// no `new-2.csv`, `new-3.csv`, ... retry trail.
#[test]
fn a_bare_output_csv_name_is_written_in_the_current_directory() {
    let dir = tempfile::tempdir().unwrap();
    let pcap = sample(dir.path());
    let work = dir.path().join("work");
    std::fs::create_dir(&work).unwrap();
    let mut command = netpipe();
    command
        .current_dir(&work)
        .args(["run", "--output-csv", "new.csv", "--read"])
        .arg(&pcap);
    let output = run_bounded(command, Duration::from_secs(30));
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let mut names = files_under(&work);
    names.retain(|n| n != "datasets");
    assert_eq!(names, ["new.csv", "new.csv.manifest.json"]);
    let rows = csv::Reader::from_path(work.join("new.csv"))
        .unwrap()
        .records()
        .count();
    assert_eq!(rows, 15);
}

/// The end-of-run summary is a sentence, not a `Summary { .. }` dump.
#[test]
fn the_summary_is_a_sentence() {
    let dir = tempfile::tempdir().unwrap();
    let pcap = sample(dir.path());
    let mut command = netpipe();
    command
        .args(["run", "--read"])
        .arg(&pcap)
        .arg("--out")
        .arg(dir.path().join("out"));
    let output = run_bounded(command, Duration::from_secs(30));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(
        stderr.contains("15 packets captured, 15 published; 15 netpipe rows"),
        "{stderr}"
    );
    assert!(!stderr.contains("Summary {"), "{stderr}");
}

/// A live `netpipe run` prints a progress line every --stats-interval-secs.
#[cfg_attr(
    not(feature = "system-tests"),
    ignore = "needs root (live capture on lo): run with --features system-tests (scripts/test.sh does)"
)]
#[test]
fn a_live_run_prints_periodic_stats() {
    let is_root = Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false);
    if !is_root {
        netpipe_testkit::skip(
            "a_live_run_prints_periodic_stats",
            "needs root (CAP_NET_RAW)",
        );
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let child = netpipe()
        .args([
            "run",
            "--interface",
            "lo",
            "--filter",
            "udp and port 9",
            "--stats-interval-secs",
            "1",
            "--out",
        ])
        .arg(dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(2600));
    let _ = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let progress = stderr
        .lines()
        .filter(|l| l.contains("packets captured (") && l.contains("/s)"))
        .count();
    assert!(progress >= 2, "{stderr}");
}

/// A full `--out` (a tiny tmpfs, root only): exit 1 within seconds with one line naming the
/// cause, and no empty CSV left per retry.
#[cfg_attr(
    not(feature = "system-tests"),
    ignore = "needs root (mounts a tmpfs): run with --features system-tests (scripts/test.sh does)"
)]
#[test]
fn a_full_out_directory_fails_fast_and_leaves_no_files() {
    let dir = tempfile::tempdir().unwrap();
    let pcap = sample(dir.path());
    let disk = dir.path().join("disk");
    std::fs::create_dir(&disk).unwrap();
    let mounted = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=64k", "tmpfs"])
        .arg(&disk)
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !mounted {
        netpipe_testkit::skip("a_full_out_directory", "cannot mount a tmpfs (needs root)");
        return;
    }
    let out = disk.join("ds");
    std::fs::create_dir(&out).unwrap();
    let _ = std::fs::write(disk.join("filler"), vec![0u8; 128 * 1024]);
    let mut command = netpipe();
    command
        .arg("run")
        .arg("--read")
        .arg(&pcap)
        .arg("--out")
        .arg(&out);
    let output = run_bounded(command, Duration::from_secs(30));
    let left = files_under(&out);
    let _ = Command::new("umount").arg("-l").arg(&disk).status();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("No space left"), "{stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "not one line: {stderr}");
    assert!(left.is_empty(), "files left behind: {left:?}");
}

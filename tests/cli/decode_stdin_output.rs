//! `netpipe decode -r -` reads the capture from standard input, and `-o FILE` writes the rows
//! to a file (issue 16): the same rows as `-r FILE` to stdout.

use std::io::Write;
use std::process::{Command, Stdio};

fn netpipe() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_netpipe"));
    command.env_remove("NETPIPE_READ");
    command
}

#[test]
fn stdin_and_output_file_give_the_same_rows_as_a_file_to_stdout() {
    let dir = tempfile::tempdir().unwrap();
    let pcap = dir.path().join("sample.pcap");
    netpipe_runtime::capture::sample::write_sample_pcap(&pcap).unwrap();
    let expected = netpipe()
        .args(["decode", "-r"])
        .arg(&pcap)
        .output()
        .unwrap();
    assert!(expected.status.success());
    assert_eq!(expected.stdout.iter().filter(|b| **b == b'\n').count(), 16);

    let mut child = netpipe()
        .args(["decode", "-r", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let bytes = std::fs::read(&pcap).unwrap();
    let mut stdin = child.stdin.take().unwrap();
    // Small writes: a pipe delivers the capture in pieces.
    for chunk in bytes.chunks(7) {
        stdin.write_all(chunk).unwrap();
    }
    drop(stdin);
    let piped = child.wait_with_output().unwrap();
    assert!(
        piped.status.success(),
        "{}",
        String::from_utf8_lossy(&piped.stderr)
    );
    assert_eq!(piped.stdout, expected.stdout);

    let out = dir.path().join("rows.csv");
    let written = netpipe()
        .args(["decode", "-r"])
        .arg(&pcap)
        .arg("-o")
        .arg(&out)
        .output()
        .unwrap();
    assert!(written.status.success());
    assert!(written.stdout.is_empty());
    assert_eq!(std::fs::read(&out).unwrap(), expected.stdout);
}

#[test]
fn bad_stdin_and_unwritable_output_are_one_line_errors_without_files() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = netpipe()
        .args(["decode", "-r", "-"])
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(b"hello\n").unwrap();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("stdin: not a pcap or pcapng file"),
        "{stderr}"
    );

    // The output file is not created when the capture cannot be opened.
    let target = dir.path().join("never.csv");
    let out = netpipe()
        .args(["decode", "-r"])
        .arg(dir.path().join("missing.pcap"))
        .arg("-o")
        .arg(&target)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(!target.exists());

    let pcap = dir.path().join("sample.pcap");
    netpipe_runtime::capture::sample::write_sample_pcap(&pcap).unwrap();
    let out = netpipe()
        .args(["decode", "-r"])
        .arg(&pcap)
        .arg("-o")
        .arg(dir.path().join("no-such-dir").join("x.csv"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("cannot create") && stderr.contains("No such file"),
        "{stderr}"
    );
}

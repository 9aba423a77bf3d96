//! The binary's command line: what compose and the benchmarks rely on.

use std::process::Command;

#[test]
fn version_and_help() {
    let exe = env!("CARGO_BIN_EXE_antinex-standin");
    let out = Command::new(exe).arg("--version").output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains(env!("CARGO_PKG_VERSION")), "{text}");
    let out = Command::new(exe).arg("--help").output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    // The default password is never printed, not even in --help.
    assert!(
        text.contains("--listen") && !text.contains("123321"),
        "{text}"
    );
}

#[test]
fn a_bad_listen_address_is_one_line_and_a_failure() {
    let exe = env!("CARGO_BIN_EXE_antinex-standin");
    let out = Command::new(exe)
        .args(["--listen", "not-an-address"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(text.contains("not-an-address"), "{text}");
}

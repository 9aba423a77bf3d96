//! Test support: validate a `/metrics` body with `promtool check metrics`.

use std::io::Write;
use std::process::{Command, Stdio};

/// Runs `promtool check metrics` on `text`. `Ok(true)`: valid; `Ok(false)`: promtool is not
/// installed and we are neither in CI nor built with `--features system-tests` (a skip notice
/// is printed); `Err`: promtool's complaints, or promtool missing where it must be installed
/// (Debian package `prometheus`).
pub fn promtool_check(test: &str, text: &str) -> Result<bool, String> {
    let child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(child) => child,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if crate::must_not_skip() {
                return Err("promtool is not installed (Debian package prometheus)".into());
            }
            eprintln!("{test}: promtool check skipped, promtool is not installed");
            return Ok(false);
        }
        Err(e) => return Err(format!("cannot run promtool: {e}")),
    };
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(text.as_bytes())
            .map_err(|e| format!("writing to promtool: {e}"))?;
    }
    let output = child
        .wait_with_output()
        .map_err(|e| format!("waiting for promtool: {e}"))?;
    if output.status.success() {
        Ok(true)
    } else {
        Err(format!(
            "promtool check metrics failed:\n{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ))
    }
}

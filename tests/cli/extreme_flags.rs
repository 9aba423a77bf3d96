//! Every numeric flag of every binary, fed extreme values (0, -1, 2^32, u64::MAX, an overflowing
//! float, a word): each run must exit non-zero with a message, or work; never panic, never die
//! of a signal, never hang (each run is bounded: a service that works is stopped with SIGTERM
//! and must then exit in time). Issue 16.

use std::any::TypeId;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use clap::CommandFactory;

const VALUES: [&str; 6] = [
    "0",
    "-1",
    "4294967296",
    "18446744073709551615",
    "1e999",
    "abc",
];
/// A run still going after this is taken as working, and stopped.
const RUN_FOR: Duration = Duration::from_millis(1200);
/// After SIGTERM, this long to exit.
const STOP_WITHIN: Duration = Duration::from_secs(20);

fn binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().and_then(Path::parent).unwrap();
    let path = dir.join(name);
    assert!(
        path.is_file(),
        "{} is missing: cargo build --workspace --bins",
        path.display()
    );
    path
}

/// Long names of the flags whose value is a number (by their clap value parser's type).
fn numeric_flags(command: &clap::Command) -> Vec<String> {
    let numeric = [
        TypeId::of::<u8>(),
        TypeId::of::<u16>(),
        TypeId::of::<u32>(),
        TypeId::of::<u64>(),
        TypeId::of::<usize>(),
        TypeId::of::<i32>(),
        TypeId::of::<i64>(),
        TypeId::of::<f64>(),
        TypeId::of::<Duration>(),
    ];
    command
        .get_arguments()
        .filter(|arg| {
            numeric
                .iter()
                .any(|t| arg.get_value_parser().type_id() == *t)
        })
        .filter_map(|arg| arg.get_long().map(str::to_string))
        .collect()
}

fn subcommand(name: &str) -> clap::Command {
    netpipe::cli::Cli::command()
        .find_subcommand(name)
        .cloned()
        .unwrap()
}

struct Case {
    exe: PathBuf,
    base: Vec<String>,
    flag: String,
    value: &'static str,
}

/// What went wrong with one run, if anything.
fn check(case: &Case, scratch: &Path) -> Option<String> {
    use std::os::unix::process::ExitStatusExt;
    let mut command = Command::new(&case.exe);
    command
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .current_dir(scratch)
        .args(&case.base)
        .arg(format!("--{}={}", case.flag, case.value))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command.spawn().unwrap();
    let started = Instant::now();
    let mut stopped_at = None;
    loop {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        match stopped_at {
            None if started.elapsed() >= RUN_FOR => {
                let _ = Command::new("kill")
                    .args(["-TERM", &child.id().to_string()])
                    .status();
                stopped_at = Some(Instant::now());
            }
            Some(at) if at.elapsed() > STOP_WITHIN => {
                let _ = child.kill();
                let _ = child.wait();
                return Some(format!("did not stop within {STOP_WITHIN:?} of SIGTERM"));
            }
            _ => {}
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if text.contains("panicked") {
        return Some(format!("panicked: {}", last_lines(&text)));
    }
    if let Some(signal) = out.status.signal() {
        return Some(format!("killed by signal {signal}: {}", last_lines(&text)));
    }
    if stopped_at.is_none() && !out.status.success() && out.stderr.is_empty() {
        return Some(format!("exit {:?} without a message", out.status.code()));
    }
    None
}

fn last_lines(text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(3)..].join(" | ")
}

#[test]
fn no_numeric_flag_value_panics_or_hangs() {
    let dir = tempfile::tempdir().unwrap();
    let pcap = dir.path().join("sample.pcap");
    netpipe_runtime::capture::sample::write_sample_pcap(&pcap).unwrap();
    let inputs = dir.path().join("inputs");
    std::fs::create_dir_all(&inputs).unwrap();
    std::fs::write(inputs.join("a.csv"), "ip_ttl,tcp_dport\n64,80\n128,22\n").unwrap();
    let pcap = pcap.display().to_string();
    let id = std::process::id();

    let owned = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<String>>();
    let mut plans: Vec<(PathBuf, Vec<String>, Vec<String>)> = vec![
        (
            binary("capture-agent"),
            owned(&[
                "--read",
                &pcap,
                "--exit-at-eof",
                "--ops-addr",
                "127.0.0.1:0",
                "--broker-url",
                &format!("memory://extreme-{id}"),
            ]),
            numeric_flags(&capture_agent::Config::command()),
        ),
        (
            binary("processor"),
            owned(&[
                "--broker-url",
                &format!("memory://extreme-{id}"),
                "--ds-dir",
                "ds",
                "--ops-addr",
                "127.0.0.1:0",
            ]),
            numeric_flags(&processor::Config::command()),
        ),
        (
            binary("publisher"),
            owned(&[
                "--rows-url",
                &format!("memory://extreme-{id}"),
                "--url",
                "http://127.0.0.1:1",
                "--ops-addr",
                "off",
            ]),
            numeric_flags(&publisher::Config::command()),
        ),
        (
            binary("dataset-builder"),
            owned(&[
                "--ds-dir",
                &inputs.display().to_string(),
                "--output-dir",
                "out",
                "--created",
                "0",
            ]),
            numeric_flags(&dataset_builder::Config::command()),
        ),
        (
            binary("antinex-standin"),
            owned(&["--listen", "127.0.0.1:0"]),
            // A binary without a library Config: its numeric flags, by hand.
            owned(&[
                "token-lifetime-secs",
                "prediction-delay-ms",
                "fail-first",
                "report-every-secs",
            ]),
        ),
        (
            binary("netpipe"),
            owned(&["decode", "-r", &pcap]),
            numeric_flags(&subcommand("decode")),
        ),
        (
            binary("netpipe"),
            owned(&["run", "--read", &pcap, "--out", "ds"]),
            numeric_flags(&subcommand("run")),
        ),
    ];
    // The introspection must find the flags (a refactor that hides them would empty the test).
    for (exe, _, flags) in &plans {
        assert!(
            !flags.is_empty(),
            "no numeric flag found for {}",
            exe.display()
        );
    }
    assert!(plans[0].2.contains(&"batch-size".to_string()));
    assert!(
        plans[2].2.contains(&"rows-block-ms".to_string())
            || plans[2].2.iter().any(|f| f.contains("block"))
    );

    let mut cases = Vec::new();
    for (exe, base, flags) in plans.drain(..) {
        for flag in flags {
            for value in VALUES {
                cases.push(Case {
                    exe: exe.clone(),
                    base: base.clone(),
                    flag: flag.clone(),
                    value,
                });
            }
        }
    }
    let total = cases.len();
    let cases = Mutex::new(cases);
    let failures = Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for worker in 0..6 {
            let scratch = dir.path().join(format!("w{worker}"));
            std::fs::create_dir_all(&scratch).unwrap();
            let (cases, failures) = (&cases, &failures);
            scope.spawn(move || {
                loop {
                    let Some(case) = cases.lock().unwrap().pop() else {
                        break;
                    };
                    if let Some(problem) = check(&case, &scratch) {
                        failures.lock().unwrap().push(format!(
                            "{} --{}={}: {problem}",
                            case.exe.file_name().unwrap().to_string_lossy(),
                            case.flag,
                            case.value
                        ));
                    }
                }
            });
        }
    });
    let failures = failures.into_inner().unwrap();
    assert!(
        failures.is_empty(),
        "{} of {total} runs failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

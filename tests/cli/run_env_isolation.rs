//! `netpipe run` builds its agent's and processor's configurations from its own flags only
//! (issue 14): every environment variable of every service (from their clap definitions, old
//! names included), exported with a value that would change the run, leaves its output as it
//! is without them. `netpipe run`'s own variables (DS_DIR, SAVE_AFTER_NUM, ...) are its flags
//! and are left out. A deprecated name of `netpipe run` itself works and says so once.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::{Command, Output};

use clap::CommandFactory;
use clap::builder::ArgAction;

fn netpipe() -> Command {
    Command::new(env!("CARGO_BIN_EXE_netpipe"))
}

fn run_command() -> clap::Command {
    netpipe::cli::Cli::command()
        .find_subcommand("run")
        .cloned()
        .expect("netpipe run")
}

/// Variables `netpipe run` reads for its own flags.
fn run_own_variables() -> BTreeSet<String> {
    run_command()
        .get_arguments()
        .filter_map(|arg| arg.get_env())
        .map(|env| env.to_string_lossy().into_owned())
        .collect()
}

/// A value unlike the flag's default: the other boolean, another choice, another number, or
/// a string no default has.
fn changed_value(arg: &clap::Arg) -> String {
    let default: Vec<String> = arg
        .get_default_values()
        .iter()
        .map(|v| v.to_string_lossy().into_owned())
        .collect();
    let default = default.join(",");
    if matches!(arg.get_action(), ArgAction::SetTrue) {
        return "1".into();
    }
    if let Ok(on) = netpipe_runtime::service::parse_bool(&default)
        && !default.is_empty()
    {
        return if on { "0" } else { "1" }.into();
    }
    let choices: Vec<String> = arg
        .get_possible_values()
        .iter()
        .map(|v| v.get_name().to_string())
        .filter(|v| *v != default)
        .collect();
    if let Some(choice) = choices.last() {
        return choice.clone();
    }
    if default.is_empty() || default.parse::<f64>().is_ok() {
        return if default == "3" { "4" } else { "3" }.into();
    }
    format!("leak-{}", arg.get_id())
}

/// Every service variable but `netpipe run`'s own, with a value that would change the run.
fn service_variables() -> BTreeMap<String, String> {
    let own = run_own_variables();
    let commands = [
        capture_agent::Config::command(),
        processor::Config::command(),
        publisher::Config::command(),
        dataset_builder::Config::command(),
    ];
    let mut vars = BTreeMap::new();
    for command in &commands {
        for arg in command.get_arguments() {
            let Some(env) = arg.get_env() else { continue };
            let env = env.to_string_lossy().into_owned();
            if !own.contains(&env) {
                vars.insert(env, changed_value(arg));
            }
        }
    }
    let aliases = [
        capture_agent::config::ENV_ALIASES,
        processor::config::ENV_ALIASES,
        publisher::config::ENV_ALIASES,
        dataset_builder::config::ENV_ALIASES,
    ];
    for alias in aliases.iter().flat_map(|list| list.iter()) {
        if let Some(value) = vars.get(alias.new).cloned() {
            vars.insert(alias.old.to_string(), value);
        }
    }
    vars
}

/// `netpipe run` on `pcap` into `out`, with `own` (its variables) removed and `vars` set.
fn run(pcap: &Path, out: &Path, vars: &BTreeMap<String, String>) -> Output {
    let mut command = netpipe();
    command
        .args(["run", "--read"])
        .arg(pcap)
        .arg("--out")
        .arg(out)
        .arg("--output-csv")
        .arg(out.join("run.csv"))
        .args(["--agent-id", "isolation", "--save-after-num", "2"]);
    for name in run_own_variables().iter().chain(service_variables().keys()) {
        command.env_remove(name);
    }
    command.envs(vars);
    let output = command.output().unwrap();
    assert!(output.status.success(), "{output:?}");
    output
}

/// Each file of `dir` by name: CSV text as is, manifests without their clock readings.
fn outputs(dir: &Path) -> BTreeMap<String, String> {
    let mut files = BTreeMap::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let text = std::fs::read_to_string(&path).unwrap();
        let text = if name.ends_with(".json") {
            let mut json: serde_json::Value = serde_json::from_str(&text).unwrap();
            without_clock(&mut json);
            serde_json::to_string_pretty(&json).unwrap()
        } else {
            text
        };
        files.insert(name, text);
    }
    files
}

/// Removes what differs between two identical runs: wall-clock times, and the sequence
/// numbers (they start from the run's boot time).
fn without_clock(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::Object(map) => {
            let clock = ["created", "updated", "boot", "highest", "ranges"];
            map.retain(|key, _| !clock.contains(&key.as_str()) && !key.ends_with("_seq"));
            map.values_mut().for_each(without_clock);
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(without_clock),
        _ => {}
    }
}

/// CSV rows without the sequence numbers and boot id (both from the run's start time).
fn without_boot(csv_text: &str) -> String {
    let mut reader = csv::Reader::from_reader(csv_text.as_bytes());
    let header = reader.headers().unwrap().clone();
    let skip: Vec<usize> = ["seq", "boot"]
        .iter()
        .filter_map(|name| header.iter().position(|h| h == *name))
        .collect();
    let keep = |row: &csv::StringRecord| -> String {
        row.iter()
            .enumerate()
            .filter(|(i, _)| !skip.contains(i))
            .map(|(_, cell)| cell)
            .collect::<Vec<_>>()
            .join(",")
    };
    let mut lines = vec![keep(&header)];
    lines.extend(reader.records().map(|r| keep(&r.unwrap())));
    lines.join("\n")
}

#[test]
fn service_variables_in_the_shell_do_not_change_netpipe_run() {
    let dir = tempfile::tempdir().unwrap();
    let pcap = dir.path().join("sample.pcap");
    netpipe_runtime::capture::sample::write_sample_pcap(&pcap).unwrap();
    let vars = service_variables();
    // Every service's flags, not a hand-picked few.
    for name in [
        "PROCESSOR_ROWS_STREAM",
        "ROWS_STREAM",
        "STOP_AFTER_NUM",
        "CAP_BATCH_SIZE",
    ] {
        assert!(vars.contains_key(name), "{name} not exported: {vars:?}");
    }
    assert!(vars.len() > 100, "{} variables", vars.len());

    let (clean, exported) = (dir.path().join("clean"), dir.path().join("exported"));
    run(&pcap, &clean, &BTreeMap::new());
    let output = run(&pcap, &exported, &vars);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        !stderr.contains("deprecated"),
        "no run variable set: {stderr}"
    );

    let (clean, exported) = (outputs(&clean), outputs(&exported));
    assert_eq!(
        clean.keys().collect::<Vec<_>>(),
        exported.keys().collect::<Vec<_>>()
    );
    assert!(clean.len() >= 2, "a dataset and its manifest: {clean:?}");
    for (name, text) in &clean {
        let (a, b) = if name.ends_with(".csv") {
            (without_boot(text), without_boot(&exported[name]))
        } else {
            (text.clone(), exported[name].clone())
        };
        let first = a.lines().zip(b.lines()).find(|(x, y)| x != y);
        assert!(
            a == b,
            "{name} differs with the service variables exported; first difference: {first:?}"
        );
    }
}

#[test]
fn a_deprecated_run_variable_works_and_is_reported_once() {
    let dir = tempfile::tempdir().unwrap();
    let pcap = dir.path().join("sample.pcap");
    netpipe_runtime::capture::sample::write_sample_pcap(&pcap).unwrap();
    let out = dir.path().join("out");
    let output = netpipe()
        .args(["run", "--read"])
        .arg(&pcap)
        .arg("--out")
        .arg(&out)
        .env_remove("FLOWS")
        .env_remove("DS_DIR")
        .env("RUN_FLOWS", "1")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    let flows = std::fs::read_dir(&out)
        .unwrap()
        .filter_map(|e| e.ok())
        .any(|e| e.file_name().to_string_lossy().contains("-flows-"));
    assert!(flows, "RUN_FLOWS=1 wrote a flow dataset");
    let warning = "environment variable RUN_FLOWS is deprecated: rename it to FLOWS";
    assert_eq!(stderr.matches(warning).count(), 1, "{stderr}");
}

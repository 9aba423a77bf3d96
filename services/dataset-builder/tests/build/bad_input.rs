//! Bad input is a clear error with file and line, counted, and never a silent wrong dataset.

use std::path::Path;
use std::process::Command;

use crate::support::{config, read_json, read_rows, s};
use dataset_builder::error::{EXIT_BAD_INPUT, EXIT_CONFIG};
use dataset_builder::{BuildError, build_once};

const HEADER: &str = "ts,agent,seq,ip_src,ip_proto,tcp_dport,payload_hex\n";

fn good_row(seq: u32) -> String {
    format!(
        "2026-01-01T00:00:0{}Z,a,{seq},10.0.0.{seq},6,{},00ff\n",
        seq % 10,
        1000 + seq
    )
}

/// A file whose data line 3 (file line 4) is ragged and line 6 (file line 7) has `http` as a port.
fn write_bad_file(path: &Path) {
    let mut text = String::from(HEADER);
    text += &good_row(1);
    text += &good_row(2);
    text += "2026-01-01T00:00:03Z,a,3,10.0.0.3,6\n";
    text += &good_row(4);
    text += &good_row(5);
    text += "2026-01-01T00:00:06Z,a,6,10.0.0.6,6,http,00\n";
    text += &good_row(7);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

#[test]
fn bad_rows_are_refused_with_file_and_line() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("in/a/bad.csv");
    write_bad_file(&input);
    let out = tmp.path().join("out");
    let prom = tmp.path().join("metrics/builder.prom");
    std::fs::create_dir_all(prom.parent().unwrap()).unwrap();
    let cfg = config(&[
        "--ds-dir",
        &s(&tmp.path().join("in")),
        "--output-dir",
        &s(&out),
        "--prom-file",
        &s(&prom),
    ]);
    let err = build_once(&cfg).unwrap_err();
    let text = err.to_string();
    assert_eq!(err.exit_code(), EXIT_BAD_INPUT);
    match &err {
        BuildError::BadRows {
            ragged_rows,
            bad_cells,
            ..
        } => {
            assert_eq!(*ragged_rows, 1);
            assert_eq!(*bad_cells, 1);
        }
        other => panic!("{other}"),
    }
    let name = s(&input);
    assert!(
        text.contains(&format!("{name}:4: 5 fields, the header has 7")),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "{name}:7: column `tcp_dport`: `http` is not a number"
        )),
        "{text}"
    );
    // Nothing half-made is left behind, and the failure is in the metrics.
    assert!(!out.join("fulldata_attack_scans.csv").exists());
    assert!(!out.join("cleaned_attack_scans.csv").exists());
    let leftovers: Vec<_> = std::fs::read_dir(&out)
        .map(|d| d.map(|e| e.unwrap().file_name()).collect())
        .unwrap_or_default();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    let prom_text = std::fs::read_to_string(&prom).unwrap();
    assert!(
        prom_text.contains("dataset_builder_success 0\n"),
        "{prom_text}"
    );
    assert!(prom_text.contains("dataset_builder_error{kind=\"bad_rows\"} 1\n"));
    assert!(prom_text.contains("dataset_builder_bad_input{kind=\"ragged_row\"} 1\n"));
    assert!(prom_text.contains("dataset_builder_bad_input{kind=\"non_numeric_cell\"} 1\n"));
}

#[test]
fn allow_bad_rows_skips_and_counts_them() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("in/a/bad.csv");
    write_bad_file(&input);
    let out = tmp.path().join("out");
    let cfg = config(&[
        "--ds-dir",
        &s(&tmp.path().join("in")),
        "--output-dir",
        &s(&out),
        "--allow-bad-rows",
        // 2 of 7 rows: far above the default limit of 1%.
        "--max-bad-rows-percent",
        "50",
    ]);
    let summary = build_once(&cfg).unwrap();
    assert_eq!(summary.stats.rows_read, 7);
    assert_eq!(summary.stats.bad_rows_skipped, 2);
    assert_eq!(summary.stats.rows_fulldata, 5);
    let full = read_rows(&out.join("fulldata_attack_scans.csv"));
    let seqs: Vec<&str> = full.iter().map(|r| r["seq"].as_str()).collect();
    assert_eq!(seqs, ["1", "2", "4", "5", "7"]);
    let meta = read_json(&out.join("cleaned_metadata.json"));
    assert_eq!(meta["rows"]["bad_rows_skipped"], 2);
    assert_eq!(meta["rows"]["per_file"][&s(&input)]["bad_rows_skipped"], 2);
    let examples = meta["bad_row_examples"].as_array().unwrap();
    assert_eq!(examples.len(), 2);
    assert!(examples[0].as_str().unwrap().contains("bad.csv:4:"));
    assert!(examples[1].as_str().unwrap().contains("bad.csv:7:"));
}

#[test]
fn a_text_column_is_dropped_with_its_reason_not_an_error() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("in/a/x.csv");
    std::fs::create_dir_all(input.parent().unwrap()).unwrap();
    std::fs::write(&input, "tcp_dport,tcp_flags_text\n80,SA\n443,S\n").unwrap();
    let out = tmp.path().join("out");
    let cfg = config(&[
        "--ds-dir",
        &s(&tmp.path().join("in")),
        "--output-dir",
        &s(&out),
    ]);
    build_once(&cfg).unwrap();
    let meta = read_json(&out.join("cleaned_metadata.json"));
    assert_eq!(meta["columns_dropped"][0]["column"], "tcp_flags_text");
    assert_eq!(meta["columns_dropped"][0]["reason"], "text");
    assert_eq!(
        meta["headers"],
        serde_json::json!(["tcp_dport", "label_value"])
    );
}

#[test]
fn an_empty_glob_is_an_error() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = config(&[
        "--glob",
        &format!("{}/*/*.csv", tmp.path().display()),
        "--output-dir",
        &s(&tmp.path().join("out")),
    ]);
    let err = build_once(&cfg).unwrap_err();
    assert!(matches!(err, BuildError::NoInputs(_)), "{err}");
    assert!(err.to_string().contains("matches no file"), "{err}");
    assert_eq!(err.exit_code(), EXIT_BAD_INPUT);
}

#[test]
fn unreadable_and_malformed_files_name_the_file() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let missing = tmp.path().join("nope.csv");
    let err = build_once(&config(&[&s(&missing), "--output-dir", &s(&out)])).unwrap_err();
    assert!(matches!(err, BuildError::ReadInput { .. }), "{err}");
    assert!(err.to_string().contains(&s(&missing)), "{err}");

    let empty = tmp.path().join("empty.csv");
    std::fs::write(&empty, "").unwrap();
    let err = build_once(&config(&[&s(&empty), "--output-dir", &s(&out)])).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("{}:1: empty file: no header line", s(&empty))
    );

    let twice = tmp.path().join("twice.csv");
    std::fs::write(&twice, "a,b,a\n1,2,3\n").unwrap();
    let err = build_once(&config(&[&s(&twice), "--output-dir", &s(&out)])).unwrap_err();
    assert!(
        err.to_string().contains(":1: column `a` appears twice"),
        "{err}"
    );
    assert_eq!(err.exit_code(), EXIT_BAD_INPUT);
}

#[test]
fn invalid_rules_are_configuration_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("x.csv");
    std::fs::write(&input, "tcp_dport\n80\n").unwrap();
    let rules = tmp.path().join("rules.json");
    std::fs::write(
        &rules,
        r#"{"rules":[{"label_value":1,"label_name":"a","src":["10.0.0.0/40"]}]}"#,
    )
    .unwrap();
    let out = s(&tmp.path().join("out"));
    let err = build_once(&config(&[
        &s(&input),
        "--output-dir",
        &out,
        "--label-rules-file",
        &s(&rules),
    ]))
    .unwrap_err();
    assert_eq!(err.exit_code(), EXIT_CONFIG);
    assert!(err.to_string().contains("prefix length"), "{err}");
    let err = build_once(&config(&[
        &s(&input),
        "--output-dir",
        &out,
        "--label-rule",
        "1:a:colour=red",
    ]))
    .unwrap_err();
    assert_eq!(err.exit_code(), EXIT_CONFIG);
    let err = build_once(&config(&[
        &s(&input),
        "--output-dir",
        &out,
        "--missing-value",
        "n/a",
    ]))
    .unwrap_err();
    assert_eq!(err.exit_code(), EXIT_CONFIG);
}

#[test]
fn the_binary_exits_non_zero_with_a_message() {
    let tmp = tempfile::tempdir().unwrap();
    let bin = env!("CARGO_BIN_EXE_dataset-builder");
    let output = Command::new(bin)
        .env("DS_GLOB_PATH", format!("{}/*/*.csv", tmp.path().display()))
        .env("OUTPUT_DIR", tmp.path().join("out"))
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(i32::from(EXIT_BAD_INPUT)));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("error: no input files"), "{stderr}");

    let input = tmp.path().join("d/a.csv");
    std::fs::create_dir_all(input.parent().unwrap()).unwrap();
    std::fs::write(&input, "tcp_dport,ip_src\n80,10.0.0.1\n").unwrap();
    let output = Command::new(bin)
        .env("DS_DIR", tmp.path())
        .env("OUTPUT_DIR", tmp.path().join("out"))
        .env("LABEL_RULES", "1:attack:src=10.0.0.0/8")
        .output()
        .unwrap();
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.starts_with("dataset-builder ok: 1 rows from 1 file(s)"),
        "{stdout}"
    );
    assert!(
        stdout.contains("[attack=1]") || stdout.contains("attack=1"),
        "{stdout}"
    );
}

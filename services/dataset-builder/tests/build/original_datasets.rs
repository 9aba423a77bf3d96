//! The builder on the original project's four recorded CSVs (../shared/data/original-datasets).

use std::collections::BTreeMap;
use std::path::Path;

use crate::support::{config, dir_files, original_datasets, read_csv, read_json, read_rows, s};
use dataset_builder::build_once;

const RULES: &str = r#"{
  "default": {"label_value": 0, "label_name": "loopback"},
  "rules": [
    {"name": "from the VM's NIC", "label_value": 1, "label_name": "nic_out", "src": ["10.0.2.0/24"]},
    {"name": "to the VM's NIC, django only", "label_value": 2, "label_name": "nic_in",
     "dst": ["10.0.2.15"], "dir": ["django"]},
    {"name": "SYN to the app", "label_value": 3, "label_name": "app_syn",
     "protocol": ["tcp"], "dst_port": [8080], "equals": {"tcp_fields_options.MSS": ["65495.0"]}}
  ]
}"#;

/// The same rules, written independently of the builder, on one row of one file.
fn expected_label(row: &BTreeMap<String, String>, dir: &str) -> &'static str {
    let get = |k: &str| row.get(k).map(String::as_str).unwrap_or("");
    if get("ip_src").starts_with("10.0.2.") {
        "nic_out"
    } else if get("ip_dst") == "10.0.2.15" && dir == "django" {
        "nic_in"
    } else if get("tcp_dport") == "8080" && get("tcp_fields_options.MSS") == "65495.0" {
        "app_syn"
    } else {
        "loopback"
    }
}

fn input_files(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    for sub in ["django", "flask-restplus", "react-redux"] {
        for e in std::fs::read_dir(dir.join(sub)).unwrap() {
            let p = e.unwrap().path();
            if p.extension().is_some_and(|x| x == "csv") {
                files.push(p);
            }
        }
    }
    files.sort();
    files
}

#[test]
fn label_rules_are_applied_as_written_and_counts_match_the_files() {
    let Some(data) = original_datasets("label_rules_are_applied_as_written") else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let rules = tmp.path().join("rules.json");
    std::fs::write(&rules, RULES).unwrap();
    let out = tmp.path().join("out");
    let cfg = config(&[
        "--ds-dir",
        &s(&data),
        "--output-dir",
        &s(&out),
        "--label-rules-file",
        &s(&rules),
    ]);
    let summary = build_once(&cfg).unwrap();
    assert_eq!(summary.stats.rows_read, 14_700);

    let full = read_rows(&out.join("fulldata_attack_scans.csv"));
    let meta = read_json(&out.join("fulldata_metadata.json"));
    let files = input_files(&data);
    assert_eq!(files.len(), 4);

    // Row counts: per file as counted here, and in total; fulldata keeps every row.
    let mut expected_per_label: BTreeMap<&str, u64> = BTreeMap::new();
    let mut offset = 0;
    for file in &files {
        let rows = read_rows(file);
        let name = s(file);
        let per_file = &meta["rows"]["per_file"][&name];
        assert_eq!(per_file["input"], rows.len() as u64, "{name}");
        assert_eq!(per_file["fulldata"], rows.len() as u64, "{name}");
        assert_eq!(per_file["cleaned"], rows.len() as u64, "{name}");
        let dir = file
            .parent()
            .unwrap()
            .file_name()
            .unwrap()
            .to_str()
            .unwrap();
        for (i, row) in rows.iter().enumerate() {
            let out_row = &full[offset + i];
            assert_eq!(out_row["src_file"], name);
            assert_eq!(out_row["idx"], row["idx"]);
            let want = expected_label(row, dir);
            assert_eq!(out_row["label_name"], want, "{name} idx {}", row["idx"]);
            *expected_per_label.entry(want).or_default() += 1;
            // Every input cell is copied verbatim under its own column name.
            for (k, v) in row {
                assert_eq!(&out_row[k], v, "{name} idx {} column {k}", row["idx"]);
            }
        }
        offset += rows.len();
    }
    assert_eq!(full.len(), offset);
    assert_eq!(meta["rows"]["input"], 14_700);
    for entry in meta["rows"]["per_label"].as_array().unwrap() {
        let name = entry["label_name"].as_str().unwrap();
        let want = expected_per_label.get(name).copied().unwrap_or(0);
        assert_eq!(entry["fulldata"], want, "label {name}");
        assert_eq!(entry["cleaned"], want, "label {name}");
    }
    // Some rows of every rule, so the comparison above means something.
    for label in ["loopback", "nic_out", "nic_in", "app_syn"] {
        assert!(
            expected_per_label.get(label).copied().unwrap_or(0) > 0,
            "{label}"
        );
    }

    // Specific rows of django 23-06-05 (README §12 of the original's spec).
    let django = s(&data.join("django/netdata-2018-01-28-23-06-05.csv"));
    let find = |idx: &str| {
        full.iter()
            .find(|r| r["src_file"] == django && r["idx"] == idx)
            .unwrap()
    };
    assert_eq!(find("0")["label_name"], "loopback");
    assert_eq!(find("0")["label_value"], "0");
    assert_eq!(find("24")["label_name"], "app_syn");
    assert_eq!(find("24")["label_value"], "3");
    assert_eq!(find("586")["ip_src"], "10.0.2.15");
    assert_eq!(find("586")["label_name"], "nic_out");
    assert_eq!(find("587")["label_name"], "nic_in");
    assert_eq!(
        find("587")["pad_load"],
        "0000",
        "hex stays text, not a number"
    );

    // Cleaned set: numbers only, identifiers and payloads dropped, label_value last.
    let cleaned = read_csv(&out.join("cleaned_attack_scans.csv"));
    let header = &cleaned[0];
    assert_eq!(header.last().unwrap(), "label_value");
    for dropped in [
        "src_file",
        "idx",
        "eth_src",
        "ip_dst",
        "raw_load",
        "pad_load",
        "tcp_id",
        "label_name",
    ] {
        assert!(
            !header.iter().any(|h| h == dropped),
            "{dropped} must not be a feature"
        );
    }
    for kept in ["eth_type", "ip_len", "tcp_dport", "tcp_fields_options.MSS"] {
        assert!(header.iter().any(|h| h == kept), "{kept} must be a feature");
    }
    assert_eq!(cleaned.len() - 1, 14_700);
    for row in &cleaned[1..] {
        for cell in row {
            assert!(cell.parse::<f64>().is_ok(), "`{cell}` in the cleaned set");
        }
    }
    let clean_meta = read_json(&out.join("cleaned_metadata.json"));
    let features: Vec<&str> = clean_meta["features_to_process"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(
        features,
        header[..header.len() - 1]
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>()
    );
    assert!(!features.contains(&"label_value"));
    assert_eq!(clean_meta["feature_to_predict"], "label_value");
    assert_eq!(clean_meta["output_type"], "clean");
    assert_eq!(meta["output_type"], "fulldata");
    assert_eq!(
        meta["label_rules"]["labels"],
        serde_json::json!(["loopback", "nic_out", "nic_in", "app_syn"])
    );
    assert_eq!(
        meta["input_schemas"][&django]["schema"],
        "antinex-v1/original"
    );
    assert_eq!(
        meta["sha256"]["inputs"][&django],
        "7a33ce6c6190423c9838787241d8566bf36ceb82d74294483d0ac26724301eae"
    );
    let reasons: BTreeMap<String, String> = meta["columns_dropped"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["column"].as_str().unwrap().to_string(),
                d["reason"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(reasons["tcp_id"], "always_empty");
    assert_eq!(reasons["eth_src"], "address");
    assert_eq!(reasons["raw_hex_field_load"], "payload");
    assert_eq!(reasons["idx"], "identifier");
}

#[test]
fn same_inputs_and_seed_give_byte_identical_outputs() {
    let Some(data) = original_datasets("same_inputs_and_seed_give_byte_identical_outputs") else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let build = |out: &Path, seed: &str| {
        let cfg = config(&[
            "--ds-dir",
            &s(&data),
            "--output-dir",
            &s(out),
            "--random-labels",
            "--seed",
            seed,
            "--dedup",
            "--test-ratio",
            "0.25",
        ]);
        build_once(&cfg).unwrap();
        dir_files(out)
    };
    let first = build(&tmp.path().join("a"), "42");
    let second = build(&tmp.path().join("b"), "42");
    assert_eq!(first.len(), 6, "{:?}", first.keys().collect::<Vec<_>>());
    for (name, bytes) in &first {
        assert!(second[name] == *bytes, "{name} differs between two runs");
    }
    let other_seed = build(&tmp.path().join("c"), "43");
    assert!(other_seed["fulldata_attack_scans.csv"] != first["fulldata_attack_scans.csv"]);
}

#[test]
fn random_labels_are_reproducible_per_seed_and_about_15_percent_attack() {
    let Some(data) = original_datasets("random_labels_are_reproducible") else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let labels_for = |dir: &str, seed: &str| {
        let out = tmp.path().join(dir);
        let cfg = config(&[
            "--ds-dir",
            &s(&data),
            "--output-dir",
            &s(&out),
            "--random-labels",
            "--seed",
            seed,
        ]);
        build_once(&cfg).unwrap();
        let labels: Vec<(String, String)> = read_rows(&out.join("fulldata_attack_scans.csv"))
            .into_iter()
            .map(|r| (r["label_value"].clone(), r["label_name"].clone()))
            .collect();
        (labels, read_json(&out.join("fulldata_metadata.json")))
    };
    let (a, meta) = labels_for("a", "7");
    let (b, _) = labels_for("b", "7");
    let (c, _) = labels_for("c", "8");
    assert_eq!(a, b);
    assert_ne!(a, c);
    for (value, name) in &a {
        match value.as_str() {
            "1" => assert_eq!(name, "attack"),
            "0" => assert_eq!(name, "not_attack"),
            other => panic!("label value {other}"),
        }
    }
    let attack = a.iter().filter(|(v, _)| v == "1").count() as f64 / a.len() as f64;
    // randint(0,100) > 85 is 15/101 = 14.85%; 14700 rows give a standard deviation of 0.3%.
    assert!((0.135..0.162).contains(&attack), "attack share {attack}");
    assert_eq!(meta["label_rules"]["set_if_above"], 85);
    assert_eq!(meta["label_rules"]["seed"], 7);
    assert_eq!(meta["label_rules"]["method"], "random");

    let no_seed = config(&["--ds-dir", &s(&data), "--random-labels"]);
    let err = build_once(&no_seed).unwrap_err();
    assert_eq!(
        err.exit_code(),
        dataset_builder::error::EXIT_CONFIG,
        "{err}"
    );
}

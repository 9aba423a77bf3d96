//! From capture to training set: `netpipe run` writes a dataset, the dataset-builder labels it.
//! The builder reads exactly what the processor writes (netpipe schema, manifest beside it).

use std::process::Command;

use clap::Parser;

#[test]
fn a_recorded_dataset_becomes_a_labelled_training_set() {
    let dir = tempfile::tempdir().unwrap();
    let pcap = dir.path().join("sample.pcap");
    let recorded = dir.path().join("recorded").join("web");
    let netpipe = env!("CARGO_BIN_EXE_netpipe");
    assert!(
        Command::new(netpipe)
            .args(["fixture", "--out"])
            .arg(&pcap)
            .status()
            .unwrap()
            .success()
    );
    let run = Command::new(netpipe)
        .args(["run", "--schema", "netpipe,antinex-v1", "--read"])
        .arg(&pcap)
        .arg("--out")
        .arg(&recorded)
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );

    let out = dir.path().join("training");
    let glob = format!("{}/*/*.csv", dir.path().join("recorded").display());
    let config = dataset_builder::Config::try_parse_from([
        "dataset-builder",
        "--glob",
        &glob,
        "--output-dir",
        out.to_str().unwrap(),
        "--label-rule",
        "1:web:port=8080",
        "--created",
        "2026-11-29 00:00:00",
    ])
    .unwrap_or_else(|e| panic!("{e}"));
    let summary = dataset_builder::build_once(&config).unwrap_or_else(|e| panic!("{e}"));

    let packets = shared::fixtures::sample_packets().len();
    let mut reader = csv::Reader::from_path(&summary.fulldata).unwrap();
    let header = reader.headers().unwrap().clone();
    let col = |name: &str| {
        header
            .iter()
            .position(|h| h == name)
            .unwrap_or_else(|| panic!("no {name}"))
    };
    let rows: Vec<csv::StringRecord> = reader.records().map(|r| r.unwrap()).collect();
    // Both schema files are inputs: every packet appears once per file.
    assert_eq!(rows.len(), 2 * packets);
    let web = rows
        .iter()
        .filter(|r| &r[col("label_name")] == "web")
        .count();
    // The sample holds 7 TCP packets on port 8080; each appears in both files.
    assert_eq!(web, 2 * 7, "rows labelled by the port rule");
    assert!(rows.iter().all(|r| !r[col("src_file")].is_empty()));

    let cleaned = csv::Reader::from_path(&summary.cleaned)
        .unwrap()
        .into_records()
        .count();
    assert_eq!(
        cleaned,
        2 * packets,
        "mixed protocols keep every row in the cleaned set"
    );
    let metadata: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("fulldata_metadata.json")).unwrap())
            .unwrap();
    assert_eq!(metadata["pipeline_files"].as_array().unwrap().len(), 2);
}

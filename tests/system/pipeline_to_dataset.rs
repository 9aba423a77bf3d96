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

    let packets = netpipe_runtime::capture::sample::sample_packets().len();
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

/// A capture whose TCP packets carry either several options (`tcp_opt_kinds` = `2 4 8 1 3`) or
/// a single one (`2`): a column mixing numbers and lists, as any real capture has.
fn mixed_options_pcap(path: &std::path::Path) {
    use etherparse::{PacketBuilder, TcpOptionElement};
    let many = [
        TcpOptionElement::MaximumSegmentSize(1460),
        TcpOptionElement::SelectiveAcknowledgementPermitted,
        TcpOptionElement::Timestamp(1, 0),
        TcpOptionElement::Noop,
        TcpOptionElement::WindowScale(7),
    ];
    let one = [TcpOptionElement::MaximumSegmentSize(1460)];
    let mut packets = Vec::new();
    for i in 0..40u16 {
        let options: &[TcpOptionElement] = if i % 2 == 0 { &many } else { &one };
        let builder = PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2])
            .ipv4([192, 0, 2, 10], [192, 0, 2, 20], 64)
            .tcp(40_000 + i, 8080, 1000, 64_240)
            .syn()
            .options(options)
            .unwrap();
        let mut data = Vec::new();
        builder.write(&mut data, b"").unwrap();
        packets.push(netpipe_runtime::capture::sample::FixturePacket {
            ts_ns: 1_764_403_200_000_000_000 + i64::from(i) * 1_000_000,
            data,
        });
    }
    netpipe_runtime::capture::sample::write_pcap(
        path,
        netpipe_runtime::capture::LinkType::ETHERNET,
        &packets,
    )
    .unwrap();
}

fn record(dir: &std::path::Path, pcap: &std::path::Path) -> std::path::PathBuf {
    let datasets = dir.join("datasets");
    let run = Command::new(env!("CARGO_BIN_EXE_netpipe"))
        .args(["run", "--read"])
        .arg(pcap)
        .arg("--out")
        .arg(&datasets)
        .env_remove("DS_DIR")
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    datasets
}

fn builder(
    datasets: &std::path::Path,
    out: &std::path::Path,
    extra: &[&str],
) -> dataset_builder::Config {
    let mut args = vec![
        "dataset-builder".to_string(),
        "--ds-dir".into(),
        datasets.display().to_string(),
        "--output-dir".into(),
        out.display().to_string(),
        "--created".into(),
        "2026-11-29 00:00:00".into(),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    dataset_builder::Config::try_parse_from(args).unwrap_or_else(|e| panic!("{e}"))
}

/// Issue 16: netpipe's own dataset, read from the default place (`{DS_DIR}/*.csv`, no
/// subdirectory), builds without a single "bad row": the manifest's schema says which columns
/// are lists, addresses and hex.
#[test]
fn netpipe_list_columns_are_text_by_the_manifest_never_bad_rows() {
    let dir = tempfile::tempdir().unwrap();
    let pcap = dir.path().join("mixed.pcap");
    mixed_options_pcap(&pcap);
    let datasets = record(dir.path(), &pcap);

    let out = dir.path().join("drop");
    let summary = dataset_builder::build_once(&builder(&datasets, &out, &[]))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(summary.stats.rows_read, 40);
    assert_eq!(summary.stats.rows_cleaned, 40);
    assert_eq!(summary.stats.bad_rows_skipped, 0);
    let header = csv::Reader::from_path(&summary.cleaned)
        .unwrap()
        .headers()
        .unwrap()
        .clone();
    assert!(!header.iter().any(|h| h == "tcp_opt_kinds"), "{header:?}");
    assert!(header.iter().any(|h| h == "tcp_opt_mss"), "{header:?}");

    let out = dir.path().join("keep");
    let summary =
        dataset_builder::build_once(&builder(&datasets, &out, &["--text-columns", "keep"]))
            .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(summary.stats.rows_cleaned, 40);
    let mut reader = csv::Reader::from_path(&summary.cleaned).unwrap();
    let header = reader.headers().unwrap().clone();
    let kinds = header.iter().position(|h| h == "tcp_opt_kinds").unwrap();
    let cells: Vec<String> = reader
        .records()
        .map(|r| r.unwrap()[kinds].to_string())
        .collect();
    assert!(cells.contains(&"2 4 8 1 3".to_string()), "{cells:?}");
    assert!(cells.contains(&"2".to_string()), "{cells:?}");
}

/// The processor, `netpipe run` and the dataset-builder look in one place by default.
#[test]
fn the_default_dataset_directories_meet() {
    use clap::Parser as _;
    let processor = processor::Config::try_parse_from(["processor"]).unwrap();
    let builder = dataset_builder::Config::try_parse_from(["dataset-builder"]).unwrap();
    #[derive(clap::Parser)]
    struct Run {
        #[command(flatten)]
        run: netpipe::run_cmd::RunArgs,
    }
    let run = Run::try_parse_from(["run"]).unwrap().run;
    if std::env::var_os("DS_DIR").is_none() {
        assert_eq!(processor.ds_dir, std::path::PathBuf::from("./datasets"));
    }
    assert_eq!(processor.ds_dir, builder.ds_dir);
    assert_eq!(run.out, builder.ds_dir);
    assert_eq!(
        builder.glob_pattern(),
        format!("{}/**/*.csv", builder.ds_dir.display())
    );
}

/// Inputs without a data row are an error, not "ok".
#[test]
fn no_data_rows_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let datasets = dir.path().join("datasets");
    std::fs::create_dir_all(&datasets).unwrap();
    std::fs::write(datasets.join("empty.csv"), "ip_ttl,tcp_sport\n").unwrap();
    let err = dataset_builder::build_once(&builder(&datasets, &dir.path().join("o"), &[]))
        .expect_err("0 rows must fail");
    assert_eq!(err.exit_code(), 4);
    assert!(err.to_string().contains("no data rows"), "{err}");
}

/// `--allow-bad-rows` skips bad rows only up to `--max-bad-rows-percent` (default 1%).
#[test]
fn skipped_bad_rows_are_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let datasets = dir.path().join("datasets");
    std::fs::create_dir_all(&datasets).unwrap();
    let mut text = String::from("ip_ttl,tcp_sport\n");
    for i in 0..100 {
        // 5 of 100 rows are bad.
        if i % 20 == 0 {
            text.push_str("oops,1\n");
        } else {
            text.push_str(&format!("64,{i}\n"));
        }
    }
    std::fs::write(datasets.join("some.csv"), text).unwrap();
    let err = dataset_builder::build_once(&builder(
        &datasets,
        &dir.path().join("a"),
        &["--allow-bad-rows"],
    ))
    .expect_err("5% bad rows is above the default 1%");
    assert_eq!(err.exit_code(), 4);
    assert!(err.to_string().contains("5 of 100 rows (5.00%)"), "{err}");
    assert!(
        !dir.path()
            .join("a")
            .join("cleaned_attack_scans.csv")
            .exists()
    );

    let summary = dataset_builder::build_once(&builder(
        &datasets,
        &dir.path().join("b"),
        &["--allow-bad-rows", "--max-bad-rows-percent", "10"],
    ))
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(summary.stats.bad_rows_skipped, 5);
    assert!(
        summary
            .to_string()
            .contains("5 bad rows skipped (5.00% of the rows read)"),
        "{summary}"
    );
}

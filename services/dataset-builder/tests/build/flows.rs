//! Flow datasets (schema netpipe-flows, as `netpipe run --flows` writes them): typed from the
//! manifest, labelled by rules on flow columns and by time windows (overlap), never mixed
//! with packet datasets, and bad flow files refused with one clear line.

use std::path::{Path, PathBuf};

use crate::support::{
    config, flow_dataset, netpipe_csv, read_csv, read_json, read_rows, s, two_hour_fixture,
};
use dataset_builder::build_once;
use dataset_builder::synth::SynthSpec;

/// A directory with the flow dataset of the two-hour fixture; (data dir, flow CSV, flows,
/// hour boundary in ms).
fn fixture_flows(tmp: &Path) -> (PathBuf, PathBuf, u64, i64) {
    let pcap = tmp.join("fixture.pcap");
    let boundary = two_hour_fixture(&pcap);
    let data = tmp.join("data");
    let (csv, flows) = flow_dataset(&pcap, &data, "netdata", "agent-7");
    assert!(flows >= 8, "the fixture holds several flows, got {flows}");
    (data, csv, flows, boundary)
}

fn rfc3339_ms(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

fn num(row: &std::collections::BTreeMap<String, String>, col: &str) -> i64 {
    row[col].parse().unwrap()
}

#[test]
fn flows_are_labelled_by_rule_and_time_window_without_bad_rows() {
    let tmp = tempfile::tempdir().unwrap();
    let (data, csv, flows, boundary) = fixture_flows(tmp.path());
    let out = tmp.path().join("out");
    let window = format!("1:late:ts_from={}", rfc3339_ms(boundary));
    let cfg = config(&[
        "--ds-dir",
        &s(&data),
        "--output-dir",
        &s(&out),
        "--kind",
        "flows",
        "--label-rule",
        "2:web:dst_port=8080;protocol=tcp",
        "--label-rule",
        &window,
        "--test-ratio",
        "0.5",
        "--seed",
        "3",
    ]);
    // No --allow-bad-rows: the flow schema's text columns are typed, not bad cells.
    let summary = build_once(&cfg).unwrap();
    assert_eq!(summary.stats.rows_read, flows);
    assert_eq!(summary.stats.rows_cleaned, flows);
    assert_eq!(summary.stats.bad_rows_skipped, 0);
    assert_eq!(summary.stats.bad_cells, 0);

    // Expected labels, computed from the flow CSV itself.
    let input = read_rows(&csv);
    let expected = |r: &std::collections::BTreeMap<String, String>| {
        if r["dst_port"] == "8080" && r["protocol"] == "6" {
            "web"
        } else if num(r, "bidirectional_last_seen_ms") >= boundary {
            "late"
        } else {
            "not_attack"
        }
    };
    let full = read_rows(&out.join("fulldata_attack_scans.csv"));
    assert_eq!(full.len(), input.len());
    for (got, want) in full.iter().zip(&input) {
        assert_eq!(got["id"], want["id"]);
        assert_eq!(got["label_name"], expected(want), "flow {}", want["id"]);
        // Text cells pass through unchanged into the full data.
        assert_eq!(got["splt_ps"], want["splt_ps"]);
        assert_eq!(got["src_ip"], want["src_ip"]);
    }
    let count = |name: &str| input.iter().filter(|r| expected(r) == name).count();
    assert!(count("web") >= 2, "both hours hold the TCP session to 8080");
    assert!(count("late") >= 2, "the second hour holds other flows");
    assert!(count("not_attack") >= 2, "the first hour holds other flows");

    let cleaned = read_csv(&out.join("cleaned_attack_scans.csv"));
    let header = &cleaned[0];
    for gone in [
        "id",
        "src_ip",
        "dst_mac",
        "src_oui",
        "splt_ps",
        "splt_direction",
        "expiration_reason",
        "agent",
        "bidirectional_first_seen_ms",
        "src2dst_last_seen_ms",
    ] {
        assert!(!header.iter().any(|h| h == gone), "{gone} is not a feature");
    }
    for kept in [
        "src_port",
        "dst_port",
        "protocol",
        "expiration_id",
        "bidirectional_packets",
        "bidirectional_duration_ms",
        "src2dst_mean_ps",
        "bidirectional_syn_packets",
    ] {
        assert!(header.iter().any(|h| h == kept), "{kept} is a feature");
    }

    let meta = read_json(&out.join("cleaned_metadata.json"));
    assert_eq!(meta["dataset_kind"], "flows");
    let schema = &meta["input_schemas"][&s(&csv)];
    assert_eq!(schema["schema"], "netpipe-flows");
    assert_eq!(schema["source"], "manifest");
    assert_eq!(schema["version"], "1");
    assert_eq!(meta["rows"]["input"], flows);
    assert_eq!(meta["label_rules"]["labels"][2], "web");
    let dropped: Vec<(String, String)> = meta["columns_dropped"]
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
    assert!(dropped.contains(&("splt_ps".into(), "schema_text".into())));
    assert!(dropped.contains(&("expiration_reason".into(), "schema_text".into())));
    assert!(dropped.contains(&("bidirectional_first_seen_ms".into(), "identifier".into())));
    assert_eq!(
        meta["rows"]["train"].as_u64().unwrap() + meta["rows"]["test"].as_u64().unwrap(),
        flows
    );
    let full_meta = read_json(&out.join("fulldata_metadata.json"));
    assert_eq!(full_meta["output_type"], "fulldata");
    assert_eq!(full_meta["dataset_kind"], "flows");
}

#[test]
fn text_columns_keep_leaves_the_early_flow_arrays_in_the_cleaned_set() {
    let tmp = tempfile::tempdir().unwrap();
    let (data, csv, flows, _) = fixture_flows(tmp.path());
    let out = tmp.path().join("out");
    let cfg = config(&[
        "--ds-dir",
        &s(&data),
        "--output-dir",
        &s(&out),
        "--kind",
        "flows",
        "--text-columns",
        "keep",
        "--test-ratio",
        "0.3",
        "--seed",
        "1",
    ]);
    build_once(&cfg).unwrap();
    // The arrays hold commas: quoted in the cleaned set and in the split files alike.
    let input = read_rows(&csv);
    let cleaned = read_rows(&out.join("cleaned_attack_scans.csv"));
    assert_eq!(cleaned.len() as u64, flows);
    for (got, want) in cleaned.iter().zip(&input) {
        assert_eq!(got["splt_ps"], want["splt_ps"]);
        assert!(got["splt_ps"].starts_with('['));
        assert_eq!(got["expiration_reason"], want["expiration_reason"]);
    }
    let train = read_rows(&out.join("train_attack_scans.csv"));
    let test = read_rows(&out.join("test_attack_scans.csv"));
    assert_eq!((train.len() + test.len()) as u64, flows);
    assert!(
        train
            .iter()
            .chain(&test)
            .all(|r| r["splt_piat_ms"].starts_with('['))
    );
}

#[test]
fn a_mixed_directory_builds_one_kind_at_a_time() {
    let tmp = tempfile::tempdir().unwrap();
    let (data, flow_csv, flows, _) = fixture_flows(tmp.path());
    let packet_csv = data.join("netdata-2026-12-07-10-00-00.csv");
    let packets = netpipe_csv(
        &packet_csv,
        &SynthSpec {
            rows: 300,
            ..SynthSpec::default()
        },
    );
    assert_eq!(packets.rows, 300);
    let build = |kind: Option<&str>, out: &str| {
        let out = tmp.path().join(out);
        let mut args = vec![
            "--ds-dir".to_string(),
            s(&data),
            "--output-dir".to_string(),
            s(&out),
            "--prom-file".to_string(),
            s(&out.join("run.prom")),
        ];
        if let Some(kind) = kind {
            args.extend(["--kind".to_string(), kind.to_string()]);
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let summary = build_once(&config(&args)).unwrap();
        let prom = std::fs::read_to_string(out.join("run.prom")).unwrap();
        assert!(
            prom.contains("\ndataset_builder_input_files_other_kind 1\n"),
            "{prom}"
        );
        (summary, read_json(&out.join("cleaned_metadata.json")))
    };

    // Default: packets only; the flow file is skipped, named in the metadata.
    let (summary, meta) = build(None, "packets");
    assert_eq!(summary.stats.rows_read, 300);
    assert_eq!(summary.stats.input_files, 1);
    assert_eq!(summary.stats.inputs_other_kind, 1);
    assert_eq!(meta["dataset_kind"], "packets");
    assert_eq!(meta["inputs_skipped_other_kind"][0], s(&flow_csv));
    assert_eq!(meta["pipeline_files"].as_array().unwrap().len(), 1);

    let (summary, meta) = build(Some("flows"), "flows");
    assert_eq!(summary.stats.rows_read, flows);
    assert_eq!(summary.stats.inputs_other_kind, 1);
    assert_eq!(meta["inputs_skipped_other_kind"][0], s(&packet_csv));
    assert_eq!(meta["pipeline_files"][0], s(&flow_csv));

    // A listed file of the other kind is a mistake, not something to skip.
    let out = tmp.path().join("listed");
    let err = build_once(&config(&[&s(&flow_csv), "--output-dir", &s(&out)])).unwrap_err();
    let text = err.to_string();
    assert!(text.contains("a flows dataset"), "{text}");
    assert!(text.contains("build it with --kind flows"), "{text}");
    assert!(!out.join("cleaned_attack_scans.csv").exists());

    // Only the other kind present: no inputs, one clear line.
    std::fs::remove_file(&packet_csv).unwrap();
    let out = tmp.path().join("none");
    let err = build_once(&config(&["--ds-dir", &s(&data), "--output-dir", &s(&out)]))
        .unwrap_err()
        .to_string();
    assert!(err.contains("none of them a packets dataset"), "{err}");
}

fn flows_build(data: &Path, out: &Path, extra: &[&str]) -> Result<u64, String> {
    let mut args = vec![
        "--ds-dir",
        data.to_str().unwrap(),
        "--output-dir",
        out.to_str().unwrap(),
        "--kind",
        "flows",
    ];
    args.extend_from_slice(extra);
    build_once(&config(&args))
        .map(|s| s.stats.rows_cleaned)
        .map_err(|e| e.to_string())
}

fn manifest_of(csv: &Path) -> PathBuf {
    let mut name = csv.as_os_str().to_owned();
    name.push(".manifest.json");
    let long = PathBuf::from(name);
    if long.exists() {
        return long;
    }
    csv.with_extension("manifest.json")
}

#[test]
fn a_truncated_flow_file_is_refused_or_counted() {
    let tmp = tempfile::tempdir().unwrap();
    let (data, csv, flows, _) = fixture_flows(tmp.path());
    let bytes = std::fs::read(&csv).unwrap();
    let manifest = manifest_of(&csv);
    assert!(manifest.exists(), "{}", manifest.display());
    // Cut inside the last row: the manifest commits more bytes than the file holds.
    let cut = bytes.len() - 40;
    std::fs::write(&csv, &bytes[..cut]).unwrap();
    let err = flows_build(&data, &tmp.path().join("o1"), &[]).unwrap_err();
    assert!(err.contains("its manifest commits"), "{err}");

    // Without the manifest the header names the schema; the cut row is a ragged row.
    std::fs::remove_file(&manifest).unwrap();
    let err = flows_build(&data, &tmp.path().join("o2"), &[]).unwrap_err();
    assert!(err.contains("fields, the header has"), "{err}");
    let rows = flows_build(
        &data,
        &tmp.path().join("o3"),
        &["--allow-bad-rows", "--max-bad-rows-percent", "50"],
    )
    .unwrap();
    assert_eq!(rows, flows - 1);
    let meta = read_json(&tmp.path().join("o3/cleaned_metadata.json"));
    assert_eq!(meta["rows"]["bad_rows_skipped"], 1);
    assert_eq!(meta["input_schemas"][&s(&csv)]["source"], "header");
    assert_eq!(meta["input_schemas"][&s(&csv)]["schema"], "netpipe-flows");
}

/// Sets the manifest's committed `bytes` to the file's length (a file rewritten in place).
fn rewrite_committed_bytes(csv: &Path) {
    let manifest = manifest_of(csv);
    let mut value = read_json(&manifest);
    value["bytes"] = std::fs::metadata(csv).unwrap().len().into();
    std::fs::write(&manifest, serde_json::to_vec(&value).unwrap()).unwrap();
}

#[test]
fn a_flow_file_with_a_wrong_header_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let (data, csv, _, _) = fixture_flows(tmp.path());
    let text = std::fs::read_to_string(&csv).unwrap();
    // Renamed column (same length), manifest kept: not the header the manifest names.
    let renamed = text.replacen("src2dst_packets", "src2dst_packetz", 1);
    std::fs::write(&csv, &renamed).unwrap();
    let err = flows_build(&data, &tmp.path().join("o1"), &[]).unwrap_err();
    assert!(err.contains("is not the netpipe-flows v1 header"), "{err}");
    // A packet build beside it skips it, broken or not.
    netpipe_csv(
        &data.join("netdata-1.csv"),
        &SynthSpec {
            rows: 10,
            ..SynthSpec::default()
        },
    );
    let packets = build_once(&config(&[
        "--ds-dir",
        &s(&data),
        "--output-dir",
        &s(&tmp.path().join("p")),
    ]))
    .unwrap();
    assert_eq!(packets.stats.rows_read, 10);
    std::fs::remove_file(data.join("netdata-1.csv")).unwrap();
    assert!(
        err.contains("`src2dst_packetz`, expected `src2dst_packets`"),
        "{err}"
    );

    // A packet header under a flow manifest.
    std::fs::write(&csv, "ts,agent,seq,ip_src\n1,a,1,10.0.0.1\n").unwrap();
    rewrite_committed_bytes(&csv);
    let err = flows_build(&data, &tmp.path().join("o2"), &[]).unwrap_err();
    assert!(err.contains("is not the netpipe-flows v1 header"), "{err}");

    // No manifest: a flow header without a column the builder reads.
    std::fs::remove_file(manifest_of(&csv)).unwrap();
    let dropped = text.replacen(",bidirectional_last_seen_ms", ",bidirectional_last_seen", 1);
    std::fs::write(&csv, dropped).unwrap();
    let err = flows_build(&data, &tmp.path().join("o3"), &[]).unwrap_err();
    assert!(
        err.contains("without the column `bidirectional_last_seen_ms`"),
        "{err}"
    );

    // A non-number in a numeric flow column is a bad cell, as in packet rows.
    // (No manifest from here on: the header names the schema.)
    let bad = {
        let mut lines: Vec<String> = text.lines().map(String::from).collect();
        let header: Vec<&str> = lines[0].split(',').collect();
        let at = header
            .iter()
            .position(|h| *h == "bidirectional_bytes")
            .unwrap();
        let mut cells: Vec<String> = lines[1].split(',').map(String::from).collect();
        // Early cells hold no quoted arrays, so splitting on commas is exact up to here.
        cells[at] = "lots".into();
        lines[1] = cells.join(",");
        lines.join("\n") + "\n"
    };
    std::fs::write(&csv, bad).unwrap();
    let err = flows_build(&data, &tmp.path().join("o4"), &[]).unwrap_err();
    assert!(
        err.contains("column `bidirectional_bytes`: `lots` is not a number"),
        "{err}"
    );
}

#[test]
fn flows_of_a_real_capture_build_cleanly() {
    let Some(shared_data) = netpipe_testkit::paths::shared_data_or_skip("flows_of_a_real_capture")
    else {
        return;
    };
    let pcap = shared_data.join("pcaps/pcpp-example.pcap");
    assert!(pcap.is_file(), "{} is missing", pcap.display());
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let (csv, flows) = flow_dataset(&pcap, &data, "real", "agent-r");
    assert!(flows > 100, "{flows} flows");
    let input = read_rows(&csv);
    let first_seen: Vec<i64> = input
        .iter()
        .map(|r| num(r, "bidirectional_first_seen_ms"))
        .collect();
    let mut sorted = first_seen.clone();
    sorted.sort_unstable();
    let middle = sorted[sorted.len() / 2];
    let out = tmp.path().join("out");
    let window = format!("2:second_half:ts_from={}", rfc3339_ms(middle));
    let cfg = config(&[
        "--ds-dir",
        &s(&data),
        "--output-dir",
        &s(&out),
        "--kind",
        "flows",
        "--label-rule",
        "1:udp:protocol=udp",
        "--label-rule",
        &window,
    ]);
    let summary = build_once(&cfg).unwrap();
    assert_eq!(summary.stats.rows_cleaned, flows);
    assert_eq!(summary.stats.bad_cells, 0);
    let full = read_rows(&out.join("fulldata_attack_scans.csv"));
    let udp = input.iter().filter(|r| r["protocol"] == "17").count();
    let late = input
        .iter()
        .filter(|r| r["protocol"] != "17" && num(r, "bidirectional_last_seen_ms") >= middle)
        .count();
    let got = |name: &str| full.iter().filter(|r| r["label_name"] == name).count();
    assert_eq!(got("udp"), udp);
    assert_eq!(got("second_half"), late);
    assert_eq!(got("not_attack"), input.len() - udp - late);
}

#[test]
fn an_nfstream_csv_is_a_flow_dataset_by_its_header() {
    let Some(shared_data) =
        netpipe_testkit::paths::shared_data_or_skip("an_nfstream_csv_is_a_flow_dataset")
    else {
        return;
    };
    let oracle = shared_data.join("pcaps/pcpp-example.pcap.nfstream.csv");
    assert!(oracle.is_file(), "{} is missing", oracle.display());
    let rows = read_csv(&oracle).len() as u64 - 1;
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let summary = build_once(&config(&[
        &s(&oracle),
        "--output-dir",
        &s(&out),
        "--kind",
        "flows",
        "--label-rule",
        "1:udp:protocol=udp",
    ]))
    .unwrap();
    assert_eq!(summary.stats.rows_cleaned, rows);
    assert_eq!(summary.stats.bad_cells, 0);
    let meta = read_json(&out.join("cleaned_metadata.json"));
    let schema = &meta["input_schemas"][&s(&oracle)];
    assert_eq!(schema["schema"], "netpipe-flows");
    assert_eq!(schema["source"], "header");
    let udp = read_rows(&oracle)
        .iter()
        .filter(|r| r["protocol"] == "17")
        .count() as u64;
    assert_eq!(meta["rows"]["per_label"][1]["fulldata"], udp);
}

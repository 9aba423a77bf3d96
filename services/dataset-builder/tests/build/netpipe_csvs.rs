//! The builder on netpipe-style CSVs generated here (mixed protocols, several files).

use std::collections::BTreeMap;

use crate::support::{config, netpipe_csv, original_datasets, read_csv, read_json, read_rows, s};
use dataset_builder::build_once;
use dataset_builder::synth::SynthSpec;

#[test]
fn mixed_protocols_give_a_full_cleaned_set() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let stats = netpipe_csv(
        &data.join("agent-1/netdata-1.csv"),
        &SynthSpec {
            rows: 2000,
            ..SynthSpec::default()
        },
    );
    let out = tmp.path().join("out");
    let cfg = config(&[
        "--ds-dir",
        &s(&data),
        "--output-dir",
        &s(&out),
        "--label-rule",
        "1:attack:src=10.66.0.0/16",
    ]);
    let summary = build_once(&cfg).unwrap();
    assert_eq!(summary.stats.rows_cleaned, 2000);

    let cleaned = read_rows(&out.join("cleaned_attack_scans.csv"));
    assert_eq!(cleaned.len(), 2000);
    let count = |col: &str, v: &str| cleaned.iter().filter(|r| r[col] == v).count();
    assert!(count("ip_proto", "6") > 0, "tcp rows");
    assert!(count("ip_proto", "17") > 0, "udp rows");
    assert!(count("ip_proto", "1") > 0, "icmp rows");
    assert!(count("eth_type", "2054") > 0, "arp rows");
    assert!(count("ipv6_nh", "6") > 0, "ipv6 rows");
    // Missing cells are filled with -1, not dropped.
    assert_eq!(count("arp_op", "-1") + count("arp_op", "1"), 2000);
    let header = &read_csv(&out.join("cleaned_attack_scans.csv"))[0];
    for gone in [
        "ts",
        "agent",
        "seq",
        "boot",
        "eth_src",
        "ip_src",
        "ipv6_dst",
        "arp_psrc",
        "payload_hex",
        "dns_qname",
        "sll_pkttype",
    ] {
        assert!(!header.iter().any(|h| h == gone), "{gone} is not a feature");
    }
    for kept in [
        "wire_len",
        "tcp_flags",
        "udp_dport",
        "icmp_type",
        "arp_op",
        "payload_len",
        "dns_id",
    ] {
        assert!(header.iter().any(|h| h == kept), "{kept} is a feature");
    }
    let attack = cleaned.iter().filter(|r| r["label_value"] == "1").count() as u64;
    assert_eq!(attack, stats.attacker_rows);
    let meta = read_json(&out.join("cleaned_metadata.json"));
    let schema = &meta["input_schemas"][&s(&data.join("agent-1/netdata-1.csv"))];
    assert_eq!(schema["schema"], "netpipe");
    assert_eq!(schema["source"], "header");
}

#[test]
fn split_is_stratified_exact_and_reproducible() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    for (i, rows) in [(1, 1500u64), (2, 1001)] {
        netpipe_csv(
            &data.join(format!("agent-{i}/netdata.csv")),
            &SynthSpec {
                rows,
                seed: i,
                ..SynthSpec::default()
            },
        );
    }
    let build = |dir: &str, seed: &str| {
        let out = tmp.path().join(dir);
        let cfg = config(&[
            "--ds-dir",
            &s(&data),
            "--output-dir",
            &s(&out),
            "--label-rule",
            "1:attack:src=10.66.0.0/16;protocol=tcp",
            "--label-rule",
            "2:icmp:protocol=icmp",
            "--test-ratio",
            "0.3",
            "--seed",
            seed,
        ]);
        build_once(&cfg).unwrap();
        out
    };
    let out = build("a", "5");
    let cleaned = read_csv(&out.join("cleaned_attack_scans.csv"));
    let train = read_csv(&out.join("train_attack_scans.csv"));
    let test = read_csv(&out.join("test_attack_scans.csv"));
    assert_eq!(train[0], cleaned[0]);
    assert_eq!(test[0], cleaned[0]);
    // Train + test is exactly the cleaned set (as a multiset of rows).
    let mut parts: Vec<Vec<String>> = train[1..].iter().chain(&test[1..]).cloned().collect();
    let mut whole: Vec<Vec<String>> = cleaned[1..].to_vec();
    parts.sort();
    whole.sort();
    assert_eq!(parts, whole);
    // Per label, test holds round(n * 0.3) rows.
    let per_label = |rows: &[Vec<String>]| {
        let mut m: BTreeMap<String, u64> = BTreeMap::new();
        for r in rows {
            *m.entry(r.last().unwrap().clone()).or_default() += 1;
        }
        m
    };
    let all = per_label(&cleaned[1..]);
    let in_test = per_label(&test[1..]);
    assert_eq!(all.len(), 3, "{all:?}");
    for (label, n) in &all {
        let want = (*n as f64 * 0.3).round() as u64;
        assert_eq!(
            in_test.get(label).copied().unwrap_or(0),
            want,
            "label {label} of {n}"
        );
    }
    let meta = read_json(&out.join("cleaned_metadata.json"));
    assert_eq!(meta["split"]["per_label"]["1"]["test"], in_test["1"]);
    assert_eq!(meta["rows"]["test"], (test.len() - 1) as u64);
    // Same seed, same split; another seed, another split.
    let again = build("b", "5");
    let other = build("c", "6");
    let bytes = |dir: &std::path::Path| std::fs::read(dir.join("test_attack_scans.csv")).unwrap();
    assert_eq!(bytes(&out), bytes(&again));
    assert_ne!(bytes(&out), bytes(&other));
}

#[test]
fn consecutive_duplicates_are_removed_and_counted() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let stats = netpipe_csv(
        &data.join("a/x.csv"),
        &SynthSpec {
            rows: 1200,
            duplicate_every: 4,
            ..SynthSpec::default()
        },
    );
    assert!(stats.duplicates > 200);
    // Without --dedup, count consecutive equal cleaned rows (features + label) independently.
    let plain = tmp.path().join("plain");
    build_once(&config(&[
        "--ds-dir",
        &s(&data),
        "--output-dir",
        &s(&plain),
    ]))
    .unwrap();
    let cleaned = read_csv(&plain.join("cleaned_attack_scans.csv"));
    let expected = cleaned[1..].windows(2).filter(|w| w[0] == w[1]).count() as u64;
    // The generator's copies differ only in seq and ts, which are not features; a few other
    // rows (ARP, whose addresses are not features) repeat by chance.
    assert!(
        expected >= stats.duplicates,
        "{expected} < {}",
        stats.duplicates
    );

    let out = tmp.path().join("out");
    let cfg = config(&["--ds-dir", &s(&data), "--output-dir", &s(&out), "--dedup"]);
    let summary = build_once(&cfg).unwrap();
    assert_eq!(summary.stats.duplicates_removed, expected);
    assert_eq!(summary.stats.rows_fulldata, 1200 - expected);
    assert_eq!(summary.stats.rows_cleaned, 1200 - expected);
    let deduped = read_csv(&out.join("cleaned_attack_scans.csv"));
    assert!(deduped[1..].windows(2).all(|w| w[0] != w[1]));
    let meta = read_json(&out.join("fulldata_metadata.json"));
    assert_eq!(meta["rows"]["duplicates_removed"], expected);
    assert_eq!(meta["post_proc_rules"]["dedup"], true);
}

#[test]
fn different_schemas_are_aligned_by_column_name() {
    let Some(original) = original_datasets("different_schemas_are_aligned_by_column_name") else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let netpipe = tmp.path().join("n/netdata.csv");
    netpipe_csv(
        &netpipe,
        &SynthSpec {
            rows: 300,
            ..SynthSpec::default()
        },
    );
    std::fs::write(
        tmp.path().join("n/netdata.csv.manifest.json"),
        r#"{"schema": "netpipe", "schema_version": 2, "rows": 300}"#,
    )
    .unwrap();
    let flask = original.join("flask-restplus/netdata-2018-01-29-11-30-02.csv");
    let out = tmp.path().join("out");
    let cfg = config(&[
        &s(&flask),
        &s(&netpipe),
        &s(&tmp.path().join("n/netdata.csv.manifest.json")),
        "--output-dir",
        &s(&out),
    ]);
    build_once(&cfg).unwrap();
    let full = read_rows(&out.join("fulldata_attack_scans.csv"));
    assert_eq!(full.len(), 2900);
    let header = &read_csv(&out.join("fulldata_attack_scans.csv"))[0];
    // Sorted path order: the temp dir sorts before /work or after it; either way, the union is
    // src_file, the first file's columns, the new columns of the second, the labels.
    let first = if netpipe < flask { &netpipe } else { &flask };
    let first_cols = &read_csv(first)[0];
    assert_eq!(&header[1..=first_cols.len()], &first_cols[..]);
    assert_eq!(header[header.len() - 2..], ["label_value", "label_name"]);
    let n_tcp_dport = full
        .iter()
        .filter(|r| r["src_file"] == s(&flask))
        .filter(|r| r["tcp_dport"] == "8080" || r["tcp_sport"] == "8080")
        .count();
    assert_eq!(
        n_tcp_dport, 2600,
        "flask rows keep their ports under their names"
    );
    let flask_rows = full.iter().filter(|r| r["src_file"] == s(&flask));
    for r in flask_rows {
        assert_eq!(r["ts"], "", "flask has no ts column");
    }
    let meta = read_json(&out.join("fulldata_metadata.json"));
    assert_eq!(
        meta["pipeline_files"].as_array().unwrap().len(),
        2,
        "the manifest is not an input"
    );
    let schema = &meta["input_schemas"][&s(&netpipe)];
    assert_eq!(schema["schema"], "netpipe");
    assert_eq!(schema["version"], "2");
    assert_eq!(schema["source"], "manifest");
    assert_eq!(
        meta["input_schemas"][&s(&flask)]["schema"],
        "antinex-v1/original"
    );
    // Cleaned set has features of both schemas, filled where a file lacks them.
    let cleaned = read_rows(&out.join("cleaned_attack_scans.csv"));
    assert_eq!(cleaned.len(), 2900);
    assert!(
        cleaned
            .iter()
            .any(|r| r["tcp_fields_options.MSS"] == "65495.0")
    );
    assert!(
        cleaned
            .iter()
            .any(|r| r["tcp_fields_options.MSS"] == "-1" && r["ip_proto"] != "-1")
    );
}

#[test]
fn time_window_rules_use_ts() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("d");
    // Rows are 1.000003 ms apart from 2026-01-01T00:00:00Z.
    netpipe_csv(
        &data.join("x/a.csv"),
        &SynthSpec {
            rows: 100,
            ..SynthSpec::default()
        },
    );
    let out = tmp.path().join("out");
    let cfg = config(&[
        "--ds-dir",
        &s(&data),
        "--output-dir",
        &s(&out),
        "--label-rule",
        "1:window:ts_from=2026-01-01T00:00:00.010Z;ts_until=2026-01-01T00:00:00.020Z",
    ]);
    build_once(&cfg).unwrap();
    let full = read_rows(&out.join("fulldata_attack_scans.csv"));
    let in_window: Vec<&str> = full
        .iter()
        .filter(|r| r["label_value"] == "1")
        .map(|r| r["seq"].as_str())
        .collect();
    // seq 10 is at 10.00003 ms (inside), seq 19 at 19.00006 ms, seq 20 at 20.00006 ms (outside).
    assert_eq!(
        in_window,
        ["10", "11", "12", "13", "14", "15", "16", "17", "18", "19"]
    );
}

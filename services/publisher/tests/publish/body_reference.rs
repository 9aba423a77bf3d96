//! Our body for the recorded 10-packet snapshot against the body the Python stack produced
//! for it (../shared/data/antinex/derived/network-pipeline-publish-body.json): same fields and
//! values, except the documented fixes (real zeros kept, missing as a number, real idx).

use std::collections::BTreeSet;

use clap::Parser;
use publisher::body::BodyBuilder;
use serde_json::Value;

#[test]
fn body_for_the_recorded_snapshot_matches_the_python_stack_except_the_fixes() {
    let Some(data) = netpipe_testkit::paths::shared_data_or_skip("body_for_the_recorded_snapshot")
    else {
        return;
    };
    let dir = data.join("antinex");
    // The env the derived body was made with.
    let env = std::fs::read_to_string(dir.join("requests/example-prediction.env")).unwrap();
    let mut args = vec!["publisher".to_string()];
    for line in env.lines() {
        let Some((key, value)) = line.trim_start_matches("export ").split_once('=') else {
            continue;
        };
        let flag = match key {
            "ANTINEX_FEATURES_TO_PROCESS" => "--features-to-process",
            "ANTINEX_NUM_SPLITS" => "--num-splits",
            "ANTINEX_METRICS" => "--metrics",
            "ANTINEX_HISTORIES" => "--histories",
            "ANTINEX_INCLUDE_FAILED_CONVERSIONS" => "--include-failed-conversions",
            _ => continue,
        };
        args.push(format!("{flag}={value}"));
    }
    let config = publisher::Config::parse_from(args);
    let template: Value = serde_json::from_slice(
        &std::fs::read(dir.join("requests/predict-rows-scaler-full-django.json")).unwrap(),
    )
    .unwrap();
    let builder = BodyBuilder::new(&config, template).unwrap();

    let mut reader =
        csv::Reader::from_path(dir.join("pipeline/netdata-2018-01-28-23-06-05.csv")).unwrap();
    let columns: Vec<String> = reader
        .headers()
        .unwrap()
        .iter()
        .map(str::to_string)
        .collect();
    let records: Vec<Vec<String>> = reader
        .records()
        .map(|r| r.unwrap().iter().map(str::to_string).collect())
        .collect();
    let map = builder.column_map(&columns);
    let mut rows = Vec::new();
    for (i, cells) in records.iter().enumerate() {
        if i > 0 {
            rows.push(b',');
        }
        builder.write_row(&map, cells, &mut rows);
    }
    let ours: Value = serde_json::from_slice(&builder.body(&rows)).unwrap();
    let theirs: Value = serde_json::from_slice(
        &std::fs::read(dir.join("derived/network-pipeline-publish-body.json")).unwrap(),
    )
    .unwrap();

    let keys = |v: &Value| {
        v.as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect::<BTreeSet<_>>()
    };
    assert_eq!(keys(&ours), keys(&theirs), "same top-level fields");
    for key in keys(&theirs) {
        if key != "predict_rows" {
            assert_eq!(ours[&key], theirs[&key], "field {key}");
        }
    }
    let (ours, theirs) = (
        ours["predict_rows"].as_array().unwrap(),
        theirs["predict_rows"].as_array().unwrap(),
    );
    assert_eq!(ours.len(), 10);
    assert_eq!(ours.len(), theirs.len());
    let cell = |row: usize, column: &str| -> Option<&str> {
        let c = columns.iter().position(|c| c == column)?;
        records[row].get(c).map(String::as_str)
    };
    let mut zeros_kept = 0;
    for (r, (o, t)) in ours.iter().zip(theirs).enumerate() {
        assert_eq!(keys(o), keys(t), "row {r}: same columns");
        for (name, t_value) in t.as_object().unwrap() {
            let o_value = &o[name];
            assert!(
                o_value.is_number(),
                "row {r} {name}: numbers only, got {o_value}"
            );
            if name == "idx" {
                assert_eq!(
                    o_value.as_f64(),
                    cell(r, "idx").and_then(|c| c.parse().ok()),
                    "real idx"
                );
            } else if t_value == "-1.0" {
                assert_eq!(o_value, -1.0, "row {r} {name}: missing is the number");
            } else if cell(r, name) == Some("0") {
                assert_eq!(
                    (t_value.as_f64(), o_value.as_f64()),
                    (Some(-1.0), Some(0.0)),
                    "row {r} {name}"
                );
                zeros_kept += 1;
            } else {
                assert_eq!(o_value, t_value, "row {r} {name}");
            }
        }
    }
    assert!(
        zeros_kept >= 10,
        "ip_tos = 0 in every row is kept: {zeros_kept}"
    );
}

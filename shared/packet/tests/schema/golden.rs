//! Golden test of the original flatten: each recorded JSON archive, flattened message by message
//! with `legacy::antinex_cells_from_message`, equals its paired CSV cell for cell.
//!
//! Columns are matched by name; numbers compare as numbers (pandas wrote `65495.0` in columns
//! with missing values); empty equals empty. antinex-v1 columns the CSV lacks must be empty.

use std::collections::HashMap;
use std::path::Path;

use netpipe_packet::schema::RowContext;
use netpipe_packet::schema::antinex::ANTINEX_V1_NAMES;
use netpipe_packet::schema::legacy::antinex_cells_from_message;
use netpipe_testkit::paths::shared_data_or_skip;

fn same_cell(ours: &str, recorded: &str) -> bool {
    if ours == recorded {
        return true;
    }
    match (ours.parse::<f64>(), recorded.parse::<f64>()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

fn check_pair(archive: &Path, csv_path: &Path) {
    let text = std::fs::read_to_string(archive).unwrap();
    let archive_json: serde_json::Value = serde_json::from_str(&text).unwrap();
    let packets = archive_json["packets"].as_array().unwrap();

    let mut reader = csv::Reader::from_path(csv_path).unwrap();
    let header: Vec<String> = reader
        .headers()
        .unwrap()
        .iter()
        .map(str::to_owned)
        .collect();
    let ours_index: HashMap<&str, usize> = ANTINEX_V1_NAMES
        .iter()
        .enumerate()
        .map(|(i, n)| (*n, i))
        .collect();
    for name in &header {
        assert!(
            ours_index.contains_key(name.as_str()),
            "{}: recorded column {name} is not in antinex-v1",
            csv_path.display()
        );
    }
    let missing_in_csv: Vec<usize> = ANTINEX_V1_NAMES
        .iter()
        .enumerate()
        .filter(|(_, n)| !header.iter().any(|h| h == *n))
        .map(|(i, _)| i)
        .collect();

    let mut rows = 0usize;
    let mut non_empty_cells = 0usize;
    for (i, record) in reader.records().enumerate() {
        let record = record.unwrap();
        let msg = packets.get(i).unwrap_or_else(|| {
            panic!("{}: CSV has more rows than the archive", csv_path.display())
        });
        let cells = antinex_cells_from_message(msg, &RowContext { idx: i as u64 }).unwrap();
        for (name, recorded) in header.iter().zip(record.iter()) {
            let ours = &cells[ours_index[name.as_str()]];
            assert!(
                same_cell(ours, recorded),
                "{} row {i} column {name}: ours {ours:?}, recorded {recorded:?}",
                csv_path.display()
            );
            if !recorded.is_empty() {
                non_empty_cells += 1;
            }
        }
        for &j in &missing_in_csv {
            assert!(
                cells[j].is_empty(),
                "{} row {i}: column {} is not in the CSV but ours is {:?}",
                csv_path.display(),
                ANTINEX_V1_NAMES[j],
                cells[j]
            );
        }
        rows += 1;
    }
    assert_eq!(rows, packets.len(), "{}: row count", csv_path.display());
    assert!(
        non_empty_cells > rows * 10,
        "suspiciously empty: {non_empty_cells} cells"
    );
}

#[test]
fn django_archive_flattens_to_its_csv() {
    let Some(data) = shared_data_or_skip("django_archive_flattens_to_its_csv") else {
        return;
    };
    let dir = data.join("original-datasets/django");
    check_pair(
        &dir.join("packets-netdata-2018-01-28-23-06-05.json"),
        &dir.join("netdata-2018-01-28-23-06-05.csv"),
    );
}

#[test]
fn flask_archive_flattens_to_its_csv() {
    let Some(data) = shared_data_or_skip("flask_archive_flattens_to_its_csv") else {
        return;
    };
    let dir = data.join("original-datasets/flask-restplus");
    check_pair(
        &dir.join("packets-netdata-2018-01-29-11-30-02.json"),
        &dir.join("netdata-2018-01-29-11-30-02.csv"),
    );
}

#[test]
fn every_recorded_header_is_within_antinex_v1() {
    let Some(data) = shared_data_or_skip("every_recorded_header_is_within_antinex_v1") else {
        return;
    };
    for csv_path in [
        "django/netdata-2018-01-28-23-06-05.csv",
        "django/netdata-2018-01-28-23-12-13.csv",
        "flask-restplus/netdata-2018-01-29-11-30-02.csv",
        "react-redux/netdata-2018-01-29-13-36-35.csv",
    ] {
        let mut reader =
            csv::Reader::from_path(data.join("original-datasets").join(csv_path)).unwrap();
        let header: Vec<String> = reader
            .headers()
            .unwrap()
            .iter()
            .map(str::to_owned)
            .collect();
        assert_eq!(header[0], "idx");
        // Our order is theirs: the recorded header is a subsequence of antinex-v1.
        let mut ours = ANTINEX_V1_NAMES.iter();
        for name in &header {
            assert!(
                ours.any(|n| n == name),
                "{csv_path}: column {name} missing or out of order"
            );
        }
    }
}

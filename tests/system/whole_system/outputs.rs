//! Reading what the services wrote: the processor's CSVs and manifests, the publisher's
//! predictions, the stand-in's jobs, the dataset-builder's outputs.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use reqwest::blocking::Client;

use super::http::{get_json, post_json};

/// One dataset file of the processor and what its manifest says.
#[derive(Debug)]
pub struct DatasetFile {
    pub csv: PathBuf,
    pub schema: String,
    pub committed_rows: u64,
}

/// The processor's files in `dir`, from the manifests beside them.
pub fn dataset_files(dir: &Path) -> Vec<DatasetFile> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<DatasetFile> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter_map(|path| {
            let name = path.file_name()?.to_str()?;
            let csv = path.with_file_name(name.strip_suffix(".manifest.json")?);
            let manifest: serde_json::Value =
                serde_json::from_slice(&std::fs::read(&path).ok()?).ok()?;
            Some(DatasetFile {
                csv,
                schema: manifest["schema"]["name"].as_str()?.to_string(),
                committed_rows: manifest["rows"].as_u64()?,
            })
        })
        .collect();
    files.sort_by(|a, b| a.csv.cmp(&b.csv));
    files
}

/// Committed rows per schema.
pub fn committed_rows(dir: &Path) -> BTreeMap<String, u64> {
    let mut rows = BTreeMap::new();
    for file in dataset_files(dir) {
        *rows.entry(file.schema).or_default() += file.committed_rows;
    }
    rows
}

/// A CSV's header and data rows.
pub fn read_csv(path: &Path) -> (Vec<String>, Vec<Vec<String>>) {
    let mut reader =
        csv::Reader::from_path(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let header = reader
        .headers()
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .iter()
        .map(String::from)
        .collect();
    let rows = reader
        .records()
        .map(|r| {
            r.unwrap_or_else(|e| panic!("{}: {e}", path.display()))
                .iter()
                .map(String::from)
                .collect()
        })
        .collect();
    (header, rows)
}

/// The values of `column` in every row.
pub fn column(header: &[String], rows: &[Vec<String>], column: &str) -> Vec<String> {
    let at = header
        .iter()
        .position(|h| h == column)
        .unwrap_or_else(|| panic!("no column {column} in {header:?}"));
    rows.iter().map(|r| r[at].clone()).collect()
}

/// Data lines of a file (header excluded); 0 if it does not exist yet.
pub fn data_lines(path: &Path) -> usize {
    std::fs::read_to_string(path)
        .map(|text| text.lines().count().saturating_sub(1))
        .unwrap_or(0)
}

/// What the stand-in holds: one entry per job, the `idx` of each row it was sent.
pub fn standin_jobs(client: &Client, base: &str) -> Vec<Vec<Option<f64>>> {
    let login = post_json(
        client,
        &format!("{base}/api-token-auth/"),
        &serde_json::json!({"username": "root", "password": "123321"}),
    );
    let token = login["token"].as_str().expect("a token").to_string();
    let auth = format!("JWT {token}");
    let mut jobs = Vec::new();
    for id in 1.. {
        let job = get_json(client, &format!("{base}/ml/{id}/"), &auth);
        if job.as_object().is_none_or(|o| o.is_empty()) {
            break;
        }
        let rows = job["predict_manifest"]["predict_rows"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        jobs.push(rows.iter().map(|r| r["idx"].as_f64()).collect());
    }
    jobs
}

/// `final rows_accepted=N jobs=J duplicates=D` from the stand-in's last log line.
pub fn standin_final_counts(log: &str) -> Option<BTreeMap<String, u64>> {
    let line = log.lines().rev().find(|l| l.starts_with("final "))?;
    line.trim_start_matches("final ")
        .split_whitespace()
        .map(|pair| {
            let (key, value) = pair.split_once('=')?;
            Some((key.to_string(), value.parse().ok()?))
        })
        .collect()
}

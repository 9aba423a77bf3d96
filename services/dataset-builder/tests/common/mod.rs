//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use clap::Parser;
use dataset_builder::Config;
use dataset_builder::synth::{SynthSpec, SynthStats, write_csv};

/// A Config from command-line style arguments.
pub fn config(args: &[&str]) -> Config {
    let mut all = vec!["dataset-builder"];
    all.extend_from_slice(args);
    Config::try_parse_from(all).expect("valid test arguments")
}

/// The four recorded CSVs of the original project, or None (skip) when absent.
pub fn original_datasets(test: &str) -> Option<PathBuf> {
    let dir = shared::paths::shared_data_or_skip(test)?.join("original-datasets");
    assert!(dir.is_dir(), "{} is missing", dir.display());
    Some(dir)
}

/// Writes a netpipe-like CSV at `path`.
pub fn netpipe_csv(path: &Path, spec: &SynthSpec) -> SynthStats {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).unwrap();
    }
    let file = std::fs::File::create(path).unwrap();
    write_csv(std::io::BufWriter::new(file), spec).unwrap()
}

/// All records of a CSV file (header first) as strings.
pub fn read_csv(path: &Path) -> Vec<Vec<String>> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .from_path(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    reader
        .byte_records()
        .map(|r| {
            r.unwrap()
                .iter()
                .map(|c| String::from_utf8_lossy(c).into_owned())
                .collect()
        })
        .collect()
}

/// Rows of a CSV as maps column -> value.
pub fn read_rows(path: &Path) -> Vec<BTreeMap<String, String>> {
    let all = read_csv(path);
    let (header, rows) = all.split_first().expect("a header");
    rows.iter()
        .map(|r| header.iter().cloned().zip(r.iter().cloned()).collect())
        .collect()
}

pub fn read_json(path: &Path) -> serde_json::Value {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_slice(&bytes).unwrap()
}

/// Every regular file of a directory: name -> bytes.
pub fn dir_files(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| e.file_type().unwrap().is_file())
        .map(|e| {
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path()).unwrap(),
            )
        })
        .collect()
}

pub fn s(path: &Path) -> String {
    path.display().to_string()
}

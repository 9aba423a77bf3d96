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
    let dir = netpipe_testkit::paths::shared_data_or_skip(test)?.join("original-datasets");
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

/// Flow records of a capture written as `netpipe run --flows` writes them (src/run_flows.rs:
/// the same flow table, `DatasetWriter`, schema `netpipe-flows` v1 and row id), into
/// `{dir}/{ds_name}-flows-*.csv` with its manifest. Returns the CSV and the number of flows.
pub fn flow_dataset(pcap: &Path, dir: &Path, ds_name: &str, agent: &str) -> (PathBuf, u64) {
    use netpipe_packet::decode::{DecodeOptions, FrameMeta, decode};
    use netpipe_packet::flow::{FlowConfig, FlowTable};
    use netpipe_runtime::capture::CaptureFile;
    use netpipe_runtime::dataset::{DatasetConfig, DatasetWriter, RowId, SchemaInfo};
    use std::sync::Arc;

    let names = netpipe_packet::flow::column_names();
    let columns: Vec<&str> = names.iter().map(String::as_str).collect();
    let schema = SchemaInfo::from_columns("netpipe-flows", 1, &columns);
    let dataset = DatasetConfig::new(dir, format!("{ds_name}-flows"));
    let (mut writer, _) = DatasetWriter::open(dataset, schema).unwrap();
    let config = FlowConfig {
        agent: Arc::from(agent),
        ..FlowConfig::default()
    };
    let mut table = FlowTable::new(config, 0);
    let meta = FrameMeta {
        agent: Arc::from(agent),
        boot: 0,
        seq: 0,
    };
    let options = DecodeOptions { payload_bytes: 0 };
    let mut file = CaptureFile::open(pcap).unwrap();
    let (mut out, mut line, mut flows) = (Vec::new(), Vec::new(), 0u64);
    let mut write = |records: &mut Vec<netpipe_packet::flow::FlowRecord>,
                     writer: &mut DatasetWriter| {
        for record in records.drain(..) {
            line.clear();
            record.write_csv(&mut line);
            let ts_ns = record.flow.bidirectional.first_seen_ms * 1_000_000;
            writer.append_line(
                RowId {
                    agent,
                    boot: 0,
                    seq: record.flow.id,
                    ts_ns,
                },
                &line,
            );
            flows += 1;
        }
    };
    while let Some(packet) = file.next_packet().unwrap() {
        table.push_frame(&decode(&packet, &meta, &options), &mut out);
        write(&mut out, &mut writer);
    }
    while table.finish_some(&mut out, 4096) > 0 {
        write(&mut out, &mut writer);
    }
    let path = writer.path().to_path_buf();
    writer.close().unwrap();
    (path, flows)
}

/// The fixture capture (netpipe_runtime::capture::sample), twice: the second copy one hour later, so its
/// flows are new flows in another time window. Returns the path and the hour boundary (ms).
pub fn two_hour_fixture(path: &Path) -> i64 {
    let first = netpipe_runtime::capture::sample::sample_packets();
    let hour_ns = 3_600_000_000_000_i64;
    let mut all = first.clone();
    for mut p in first.clone() {
        p.ts_ns += hour_ns;
        all.push(p);
    }
    netpipe_runtime::capture::sample::write_pcap(
        path,
        netpipe_runtime::capture::LinkType::ETHERNET,
        &all,
    )
    .unwrap();
    let start_ms = first.first().map(|p| p.ts_ns / 1_000_000).unwrap();
    start_ms + 3_600_000 - 60_000
}

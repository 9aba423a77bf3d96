//! The run's counters in Prometheus text format: written to a `.prom` file for node
//! exporter's textfile collector (temp + rename), and pushed to a Pushgateway.

use std::io::Write as _;
use std::path::Path;
use std::time::Duration;

use prometheus::{GaugeVec, Opts, Registry, TextEncoder};

/// Counters of one run (also filled, as far as the run got, when it fails).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RunStats {
    pub input_files: u64,
    /// Inputs the glob matched that hold the other dataset kind (packets vs flows), skipped.
    pub inputs_other_kind: u64,
    pub input_bytes: u64,
    pub rows_read: u64,
    pub rows_fulldata: u64,
    pub rows_cleaned: u64,
    pub rows_train: u64,
    pub rows_test: u64,
    pub duplicates_removed: u64,
    pub ragged_rows: u64,
    pub bad_cells: u64,
    pub bad_rows_skipped: u64,
    pub incomplete_rows_dropped: u64,
    pub feature_columns: u64,
    pub dropped_columns: u64,
    /// (label_value, label_name, rows in the full data, rows in the cleaned set).
    pub labels: Vec<(i64, String, u64, u64)>,
    pub elapsed_secs: f64,
    pub success: bool,
    pub error_kind: Option<&'static str>,
}

const PREFIX: &str = "dataset_builder";

/// The text exposition of `stats`; `now_unix` is the time of the report. Every metric is a
/// gauge in a registry of its own (one run's report), encoded by prometheus's `TextEncoder`.
pub fn render(stats: &RunStats, now_unix: f64) -> String {
    let report = Report::default();
    report.set(
        "success",
        "1 if the last run wrote its datasets, else 0.",
        u64::from(stats.success) as f64,
    );
    if let Some(kind) = stats.error_kind {
        report.set_labelled("error", "Why the last run failed.", &[("kind", kind)], 1.0);
    }
    report.set(
        "last_run_timestamp_seconds",
        "When the last run ended (Unix time).",
        now_unix.floor(),
    );
    report.set(
        "duration_seconds",
        "Wall time of the last run.",
        (stats.elapsed_secs * 1000.0).round() / 1000.0,
    );
    report.count("input_files", "Input CSV files read.", stats.input_files);
    report.count(
        "input_files_other_kind",
        "Input CSV files skipped because they hold the other dataset kind (see --kind).",
        stats.inputs_other_kind,
    );
    report.count("input_bytes", "Bytes of input read.", stats.input_bytes);
    report.count("rows_read", "Data rows in the inputs.", stats.rows_read);
    for (output, rows) in [
        ("fulldata", stats.rows_fulldata),
        ("cleaned", stats.rows_cleaned),
        ("train", stats.rows_train),
        ("test", stats.rows_test),
    ] {
        report.set_labelled(
            "rows_written",
            "Rows written per output file.",
            &[("output", output)],
            rows as f64,
        );
    }
    for (value, name, full, clean) in &stats.labels {
        let value = value.to_string();
        for (output, rows) in [("fulldata", full), ("cleaned", clean)] {
            report.set_labelled(
                "rows_by_label",
                "Rows per label and output.",
                &[
                    ("label_value", &value),
                    ("label_name", name),
                    ("output", output),
                ],
                *rows as f64,
            );
        }
    }
    report.count(
        "duplicates_removed",
        "Consecutive duplicate rows removed.",
        stats.duplicates_removed,
    );
    let bad_input = "Bad input found: ragged rows, non-numeric cells in numeric columns.";
    report.set_labelled(
        "bad_input",
        bad_input,
        &[("kind", "ragged_row")],
        stats.ragged_rows as f64,
    );
    report.set_labelled(
        "bad_input",
        bad_input,
        &[("kind", "non_numeric_cell")],
        stats.bad_cells as f64,
    );
    report.count(
        "bad_rows_skipped",
        "Bad rows left out (--allow-bad-rows).",
        stats.bad_rows_skipped,
    );
    report.count(
        "incomplete_rows_dropped",
        "Rows left out of the cleaned set for a missing cell (--drop-incomplete-rows).",
        stats.incomplete_rows_dropped,
    );
    report.count(
        "feature_columns",
        "Feature columns of the cleaned set.",
        stats.feature_columns,
    );
    report.count(
        "dropped_columns",
        "Input columns left out of the cleaned set.",
        stats.dropped_columns,
    );
    report.text()
}

/// A registry of `dataset_builder_*` gauges, each registered on first use.
#[derive(Default)]
struct Report {
    registry: Registry,
    gauges: std::cell::RefCell<std::collections::HashMap<&'static str, GaugeVec>>,
}

impl Report {
    fn count(&self, name: &'static str, help: &str, value: u64) {
        self.set_labelled(name, help, &[], value as f64);
    }

    fn set(&self, name: &'static str, help: &str, value: f64) {
        self.set_labelled(name, help, &[], value);
    }

    /// The names and help texts are constants of this file, so registration cannot fail
    /// on input; should it fail anyway, the sample is left out rather than panicking.
    fn set_labelled(&self, name: &'static str, help: &str, labels: &[(&str, &str)], value: f64) {
        let mut gauges = self.gauges.borrow_mut();
        let gauge = match gauges.get(name) {
            Some(gauge) => gauge.clone(),
            None => {
                let names: Vec<&str> = labels.iter().map(|(label, _)| *label).collect();
                let Ok(gauge) = GaugeVec::new(Opts::new(name, help).namespace(PREFIX), &names)
                else {
                    return;
                };
                if self.registry.register(Box::new(gauge.clone())).is_err() {
                    return;
                }
                gauges.insert(name, gauge.clone());
                gauge
            }
        };
        let values: Vec<&str> = labels.iter().map(|(_, value)| *value).collect();
        if let Ok(sample) = gauge.get_metric_with_label_values(&values) {
            sample.set(value);
        }
    }

    fn text(&self) -> String {
        TextEncoder::new()
            .encode_to_string(&self.registry.gather())
            .unwrap_or_default()
    }
}

/// Writes the text to `path` through a temporary file and a rename, so the textfile
/// collector never reads half a file.
pub fn write_prom_file(path: &Path, text: &str) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "dataset_builder.prom".into());
    let temp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    let result = (|| {
        let mut file = std::fs::File::create(&temp)?;
        file.write_all(text.as_bytes())?;
        file.sync_all()?;
        std::fs::rename(&temp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    result
}

/// PUTs the text to `{url}/metrics/job/{job}` (replacing the job's previous group).
pub fn push(url: &str, job: &str, text: &str) -> Result<(), String> {
    let endpoint = format!("{}/metrics/job/{}", url.trim_end_matches('/'), job);
    let client = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .map_err(|e| e.to_string())?;
    let response = client
        .put(&endpoint)
        .header("Content-Type", "text/plain; version=0.0.4")
        .body(text.to_string())
        .send()
        .map_err(|e| e.without_url().to_string())?;
    let status = response.status();
    if status.is_success() {
        Ok(())
    } else {
        Err(format!("the Pushgateway answered {status}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_format() {
        let stats = RunStats {
            success: true,
            rows_read: 10,
            labels: vec![(1, "at\"tack".into(), 3, 2)],
            ..RunStats::default()
        };
        let text = render(&stats, 1000.5);
        assert!(text.contains("# TYPE dataset_builder_success gauge\ndataset_builder_success 1\n"));
        assert!(text.contains("dataset_builder_rows_read 10\n"));
        assert!(text.contains(
            "dataset_builder_rows_by_label{label_name=\"at\\\"tack\",label_value=\"1\",output=\"cleaned\"} 2\n"
        ));
        assert!(text.contains("dataset_builder_last_run_timestamp_seconds 1000\n"));
        assert!(!text.contains("dataset_builder_error"));
        assert!(text.contains("dataset_builder_bad_input{kind=\"ragged_row\"} 0\n"));
        let failed = RunStats {
            error_kind: Some("input"),
            ..RunStats::default()
        };
        assert!(render(&failed, 0.0).contains("dataset_builder_error{kind=\"input\"} 1\n"));
    }
}

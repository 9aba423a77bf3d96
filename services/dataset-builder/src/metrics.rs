//! The run's counters in Prometheus text format: written to a `.prom` file for node
//! exporter's textfile collector (temp + rename), and pushed to a Pushgateway.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::Path;
use std::time::Duration;

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

/// The text exposition of `stats`; `now_unix` is the time of the report.
pub fn render(stats: &RunStats, now_unix: f64) -> String {
    let mut out = String::new();
    let mut gauge = |name: &str, help: &str, samples: &[(String, f64)]| {
        let _ = writeln!(out, "# HELP {PREFIX}_{name} {help}");
        let _ = writeln!(out, "# TYPE {PREFIX}_{name} gauge");
        for (labels, value) in samples {
            let _ = writeln!(out, "{PREFIX}_{name}{labels} {value}");
        }
    };
    let one = |v: u64| vec![(String::new(), v as f64)];
    gauge(
        "success",
        "1 if the last run wrote its datasets, else 0.",
        &one(u64::from(stats.success)),
    );
    if let Some(kind) = stats.error_kind {
        gauge(
            "error",
            "Why the last run failed.",
            &[(format!("{{kind=\"{kind}\"}}"), 1.0)],
        );
    }
    gauge(
        "last_run_timestamp_seconds",
        "When the last run ended (Unix time).",
        &[(String::new(), now_unix.floor())],
    );
    gauge(
        "duration_seconds",
        "Wall time of the last run.",
        &[(
            String::new(),
            (stats.elapsed_secs * 1000.0).round() / 1000.0,
        )],
    );
    gauge(
        "input_files",
        "Input CSV files read.",
        &one(stats.input_files),
    );
    gauge(
        "input_files_other_kind",
        "Input CSV files skipped because they hold the other dataset kind (see --kind).",
        &one(stats.inputs_other_kind),
    );
    gauge(
        "input_bytes",
        "Bytes of input read.",
        &one(stats.input_bytes),
    );
    gauge(
        "rows_read",
        "Data rows in the inputs.",
        &one(stats.rows_read),
    );
    let outputs = [
        ("fulldata", stats.rows_fulldata),
        ("cleaned", stats.rows_cleaned),
        ("train", stats.rows_train),
        ("test", stats.rows_test),
    ];
    let samples: Vec<(String, f64)> = outputs
        .iter()
        .map(|(o, n)| (format!("{{output=\"{o}\"}}"), *n as f64))
        .collect();
    gauge("rows_written", "Rows written per output file.", &samples);
    let samples: Vec<(String, f64)> = stats
        .labels
        .iter()
        .flat_map(|(value, name, full, clean)| {
            let name = escape(name);
            [
                (
                    format!(
                        "{{label_value=\"{value}\",label_name=\"{name}\",output=\"fulldata\"}}"
                    ),
                    *full as f64,
                ),
                (
                    format!("{{label_value=\"{value}\",label_name=\"{name}\",output=\"cleaned\"}}"),
                    *clean as f64,
                ),
            ]
        })
        .collect();
    gauge("rows_by_label", "Rows per label and output.", &samples);
    gauge(
        "duplicates_removed",
        "Consecutive duplicate rows removed.",
        &one(stats.duplicates_removed),
    );
    gauge(
        "bad_input",
        "Bad input found: ragged rows, non-numeric cells in numeric columns.",
        &[
            (
                "{kind=\"ragged_row\"}".to_string(),
                stats.ragged_rows as f64,
            ),
            (
                "{kind=\"non_numeric_cell\"}".to_string(),
                stats.bad_cells as f64,
            ),
        ],
    );
    gauge(
        "bad_rows_skipped",
        "Bad rows left out (--allow-bad-rows).",
        &one(stats.bad_rows_skipped),
    );
    gauge(
        "incomplete_rows_dropped",
        "Rows left out of the cleaned set for a missing cell (--drop-incomplete-rows).",
        &one(stats.incomplete_rows_dropped),
    );
    gauge(
        "feature_columns",
        "Feature columns of the cleaned set.",
        &one(stats.feature_columns),
    );
    gauge(
        "dropped_columns",
        "Input columns left out of the cleaned set.",
        &one(stats.dropped_columns),
    );
    out
}

fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
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
            "dataset_builder_rows_by_label{label_value=\"1\",label_name=\"at\\\"tack\",output=\"cleaned\"} 2\n"
        ));
        assert!(text.contains("dataset_builder_last_run_timestamp_seconds 1000\n"));
        assert!(!text.contains("dataset_builder_error"));
    }
}

//! The service's `/metrics` (registry of `netpipe_runtime::ops`, prefix `dataset_builder`): builds and
//! their errors as counters, and the last successful build's figures as gauges with the same
//! names as in the `.prom` file (`rows_read`, `rows_written{output}`, ...).

use netpipe_runtime::ops::{Metrics, MetricsError};
use prometheus::{Histogram, IntCounterVec, IntGauge, IntGaugeVec};

use crate::error::BuildError;
use crate::metrics::RunStats;

/// Outputs of `rows_written{output}` (every series exists from the start).
const OUTPUTS: [&str; 4] = ["fulldata", "cleaned", "train", "test"];

#[derive(Debug, Clone)]
pub struct BuilderMetrics {
    pub ops: Metrics,
    /// Builds finished, by `outcome` (`success`, `failure`).
    pub builds: IntCounterVec,
    /// Failed builds by error `kind` (BuildError::kind).
    pub build_errors: IntCounterVec,
    /// 1 if the last build succeeded, else 0.
    pub success: IntGauge,
    pub last_build_timestamp: IntGauge,
    pub last_success_timestamp: IntGauge,
    pub build_seconds: Histogram,
    pub input_files: IntGauge,
    pub input_files_other_kind: IntGauge,
    pub input_bytes: IntGauge,
    pub rows_read: IntGauge,
    pub rows_written: IntGaugeVec,
}

impl BuilderMetrics {
    pub fn new(version: &str) -> Result<Self, MetricsError> {
        let ops = Metrics::new("dataset_builder", "dataset-builder", version)?;
        let rows_written = ops.gauge_vec(
            "rows_written",
            "Rows the last successful build wrote, per output file",
            &["output"],
        )?;
        for output in OUTPUTS {
            rows_written.with_label_values(&[output]);
        }
        Ok(BuilderMetrics {
            builds: ops.counter_vec(
                "builds_total",
                "Builds finished, by outcome",
                "outcome",
                &["success", "failure"],
            )?,
            build_errors: ops.counter_vec(
                "build_errors_total",
                "Failed builds, by error kind",
                "kind",
                &BuildError::KINDS,
            )?,
            success: ops.gauge("success", "1 if the last build wrote its datasets, else 0")?,
            last_build_timestamp: ops.gauge(
                "last_build_timestamp_seconds",
                "When the last build ended, successful or not (Unix time)",
            )?,
            last_success_timestamp: ops.gauge(
                "last_success_timestamp_seconds",
                "When the last successful build ended (Unix time)",
            )?,
            build_seconds: ops.histogram(
                "build_duration_seconds",
                "Wall time of a build",
                vec![
                    0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 300.0, 1800.0,
                ],
            )?,
            input_files: ops.gauge(
                "input_files",
                "Input CSV files of the last successful build",
            )?,
            input_files_other_kind: ops.gauge(
                "input_files_other_kind",
                "Input CSV files the last successful build skipped as the other dataset kind \
                 (packets vs flows, see --kind)",
            )?,
            input_bytes: ops.gauge("input_bytes", "Input bytes of the last successful build")?,
            rows_read: ops.gauge("rows_read", "Data rows the last successful build read")?,
            rows_written,
            ops,
        })
    }

    /// Records a finished build: its outcome, and the figures of a successful one.
    pub fn record(&self, result: Result<&RunStats, &BuildError>, seconds: f64, now_unix: i64) {
        self.build_seconds.observe(seconds);
        self.last_build_timestamp.set(now_unix);
        match result {
            Ok(stats) => {
                self.builds.with_label_values(&["success"]).inc();
                self.success.set(1);
                self.last_success_timestamp.set(now_unix);
                self.input_files.set(gauge_value(stats.input_files));
                self.input_files_other_kind
                    .set(gauge_value(stats.inputs_other_kind));
                self.input_bytes.set(gauge_value(stats.input_bytes));
                self.rows_read.set(gauge_value(stats.rows_read));
                let written = [
                    stats.rows_fulldata,
                    stats.rows_cleaned,
                    stats.rows_train,
                    stats.rows_test,
                ];
                for (output, rows) in OUTPUTS.iter().zip(written) {
                    self.rows_written
                        .with_label_values(&[*output])
                        .set(gauge_value(rows));
                }
            }
            Err(error) => {
                self.builds.with_label_values(&["failure"]).inc();
                self.build_errors.with_label_values(&[error.kind()]).inc();
                self.success.set(0);
            }
        }
    }
}

fn gauge_value(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

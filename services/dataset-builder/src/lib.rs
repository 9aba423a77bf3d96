//! dataset-builder: reproducible, labelled training datasets from recorded CSVs (netpipe's
//! and the original network-pipeline's), streaming in constant memory.
//!
//! A build: pass 1 ([`scan`]) reads every input to learn the columns and find bad rows; pass 2
//! ([`write`]) writes the full data and the cleaned set; pass 3 ([`split`], optional) splits the
//! cleaned set into train and test. Outputs appear only if the whole build succeeds; the
//! metadata, a `.prom` file and a Pushgateway push describe it.
//!
//! [`run`] is the service's entry point: one build (the one-shot job), or with `--watch-secs` a
//! rebuild whenever the inputs change, until shutdown; `/health`, `/ready` and `/metrics` with
//! `--ops-addr`. See docs/dataset-builder.md.

pub mod cidr;
pub mod columns;
pub mod config;
pub mod error;
pub mod hashio;
pub mod inputs;
pub mod kind;
pub mod metadata;
pub mod metrics;
pub mod ops_metrics;
pub mod output;
pub mod progress;
pub mod random;
pub mod rules;
pub mod scan;
pub mod schema_types;
pub mod service;
pub mod split;
pub mod synth;
pub mod watch;
pub mod write;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use tokio_util::sync::CancellationToken;

pub use config::Config;
pub use error::BuildError;
pub use metrics::RunStats;
pub use service::{RunOutcome, run};

use columns::is_numeric;
use metadata::{
    Builder, Common, DroppedColumn, FileRows, Hashes, LabelRows, PostProcRules, Rows, SplitMeta,
};
use output::Staging;
use rules::Labeler;

/// What a successful run produced.
#[derive(Debug, Clone)]
pub struct Summary {
    pub stats: RunStats,
    pub fulldata: PathBuf,
    pub cleaned: PathBuf,
    pub split: Option<(PathBuf, PathBuf)>,
    /// Set when the Pushgateway push or the .prom file failed (the datasets are fine).
    pub metrics_error: Option<String>,
}

impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = &self.stats;
        let labels: Vec<String> = s
            .labels
            .iter()
            .map(|(_, name, _, clean)| format!("{name}={clean}"))
            .collect();
        let mb = s.input_bytes as f64 / 1e6;
        write!(
            f,
            "dataset-builder ok: {} rows from {} file(s) ({mb:.1} MB) -> fulldata {} rows, cleaned {} rows x {} features [{}]",
            s.rows_read,
            s.input_files,
            s.rows_fulldata,
            s.rows_cleaned,
            s.feature_columns,
            labels.join(" "),
        )?;
        if self.split.is_some() {
            write!(f, ", train {} / test {}", s.rows_train, s.rows_test)?;
        }
        write!(
            f,
            ", {} duplicates removed, {} bad rows skipped ({:.2}% of the rows read), {:.2} s ({:.0} MB/s)",
            s.duplicates_removed,
            s.bad_rows_skipped,
            100.0 * s.bad_rows_skipped as f64 / s.rows_read.max(1) as f64,
            s.elapsed_secs,
            mb / s.elapsed_secs.max(1e-9)
        )
    }
}

/// Runs one build (blocking). Always writes the `.prom` file / pushes metrics when configured,
/// also when the build fails.
pub fn build_once(config: &Config) -> Result<Summary, BuildError> {
    build_until(config, &CancellationToken::new())
}

/// [`build_once`], stopped with [`BuildError::Cancelled`] (nothing written) soon after
/// `cancel` is cancelled.
pub fn build_until(config: &Config, cancel: &CancellationToken) -> Result<Summary, BuildError> {
    let started = Instant::now();
    let mut stats = RunStats::default();
    let result = build(config, &mut stats, cancel);
    stats.elapsed_secs = started.elapsed().as_secs_f64();
    stats.success = result.is_ok();
    stats.error_kind = result.as_ref().err().map(BuildError::kind);
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64());
    let text = metrics::render(&stats, now);
    let mut metrics_error = None;
    if let Some(path) = &config.prom_file
        && let Err(e) = metrics::write_prom_file(path, &text)
    {
        tracing::error!(path = %path.display(), error = %e, "cannot write the .prom file");
        metrics_error = Some(format!("{}: {e}", path.display()));
    }
    if let Some(url) = &config.pushgateway_url {
        match metrics::push(url, &config.pushgateway_job, &text) {
            Ok(()) => tracing::info!("pushed the run's metrics to the Pushgateway"),
            Err(e) => {
                tracing::error!(error = %e, "cannot push metrics to the Pushgateway");
                metrics_error = Some(format!("pushgateway: {e}"));
            }
        }
    }
    result.map(|mut summary| {
        summary.stats = stats;
        summary.metrics_error = metrics_error;
        summary
    })
}

/// Checks what can be checked before reading any input: flags, label rules, output paths.
pub fn check_config(config: &Config) -> Result<(), BuildError> {
    validate(config)?;
    Labeler::from_config(config)?;
    check_distinct(&output_paths(config))
}

/// Every file a build writes.
fn output_paths(config: &Config) -> Vec<PathBuf> {
    let mut outputs = vec![config.fulldata_path(), config.cleaned_path()];
    if config.test_ratio.is_some() {
        outputs.push(config.train_path());
        outputs.push(config.test_path());
    }
    outputs.push(config.fulldata_metadata_path());
    outputs.push(config.cleaned_metadata_path());
    outputs
}

/// Files never read as inputs: this build's outputs, and a previous build's train/test files
/// even when not splitting now.
pub fn excluded_inputs(config: &Config) -> Vec<PathBuf> {
    let mut not_inputs = output_paths(config);
    if config.test_ratio.is_none() {
        not_inputs.extend([config.train_path(), config.test_path()]);
    }
    not_inputs
}

fn build(
    config: &Config,
    stats: &mut RunStats,
    cancel: &CancellationToken,
) -> Result<Summary, BuildError> {
    validate(config)?;
    let labeler = Labeler::from_config(config)?;
    let split_ratio = config.test_ratio;
    check_distinct(&output_paths(config))?;
    let found = inputs::discover(config, &excluded_inputs(config))?;
    let found_count = found.len();
    let selection = kind::select(found, config.kind, !config.inputs.is_empty())?;
    stats.inputs_other_kind = selection.skipped_other_kind.len() as u64;
    let skipped_other_kind = selection.skipped_other_kind;
    let inputs = selection.files;
    if inputs.is_empty() {
        return Err(BuildError::NoInputs(format!(
            "{found_count} file(s) found, none of them a {} dataset (see --kind)",
            config.kind.as_str()
        )));
    }
    let created = created(config, &inputs)?;
    stats.input_files = inputs.len() as u64;
    tracing::info!(files = inputs.len(), "pass 1/2: scanning inputs");
    let scan = scan::scan(
        inputs,
        &config.drop_columns,
        config.max_error_reports,
        config.progress_secs,
        cancel,
    )?;
    stats.input_bytes = scan.bytes;
    stats.rows_read = scan.rows;
    stats.ragged_rows = scan.ragged_rows;

    if scan.rows == 0 {
        return Err(BuildError::NoInputs(format!(
            "{} file(s) read, but they hold no data rows",
            scan.files.len()
        )));
    }
    let classes = scan.classify(&config.drop_columns, config.text_columns);
    let features: Vec<usize> = classes
        .iter()
        .enumerate()
        .filter(|(_, c)| c.is_none())
        .map(|(i, _)| i)
        .collect();
    let mut bad_cells = 0;
    let mut findings = scan.ragged_examples.clone();
    for u in &features {
        if let Some(s) = scan.stats.get(*u) {
            bad_cells += s.text;
            findings.extend(s.text_examples.iter().cloned());
        }
    }
    findings.sort();
    findings.truncate(config.max_error_reports);
    let findings: Vec<String> = findings.into_iter().map(|f| f.message).collect();
    stats.bad_cells = bad_cells;
    stats.feature_columns = features.len() as u64;
    stats.dropped_columns = (classes.len() - features.len()) as u64;
    if scan.ragged_rows + bad_cells > 0 {
        for f in &findings {
            tracing::warn!("bad input: {f}");
        }
        if !config.allow_bad_rows {
            return Err(BuildError::BadRows {
                ragged_rows: scan.ragged_rows,
                bad_cells,
                examples: findings,
            });
        }
    }
    if features.is_empty() {
        tracing::warn!("no input column holds numbers: the cleaned set has only label_value");
    }
    for name in &scan.reserved_seen {
        tracing::warn!(column = %name, "an input column has a reserved name; the builder's own replaces it");
    }

    let mut staging = Staging::default();
    tracing::info!(features = features.len(), "pass 2/2: writing datasets");
    let plan = write::Plan {
        config,
        scan: &scan,
        labeler: &labeler,
        features: &features,
        check_numeric: bad_cells > 0,
        cancel,
    };
    let written = write::write(&plan, &mut staging)?;
    let sum = |f: fn(&write::FileCounts) -> u64| written.per_file.iter().map(f).sum::<u64>();
    stats.rows_fulldata = sum(|c| c.fulldata);
    stats.rows_cleaned = sum(|c| c.cleaned);
    stats.duplicates_removed = sum(|c| c.duplicates_removed);
    stats.bad_rows_skipped = sum(|c| c.bad_rows_skipped);
    stats.incomplete_rows_dropped = sum(|c| c.incomplete_rows_dropped);
    // --allow-bad-rows skips rows; past a small share the dataset is not the input any more.
    if stats.bad_rows_skipped > 0 {
        let percent = 100.0 * stats.bad_rows_skipped as f64 / stats.rows_read.max(1) as f64;
        if percent > config.max_bad_rows_percent {
            return Err(BuildError::TooManyBadRows {
                skipped: stats.bad_rows_skipped,
                rows: stats.rows_read,
                percent,
                limit: config.max_bad_rows_percent,
            });
        }
    }
    let labels = labeler.labels();
    stats.labels = labels
        .iter()
        .enumerate()
        .map(|(i, l)| {
            let full = written.label_fulldata.get(i).copied().unwrap_or(0);
            let clean = written.label_cleaned.get(i).copied().unwrap_or(0);
            (l.label_value, l.label_name.clone(), full, clean)
        })
        .collect();

    let label_values: Vec<i64> = labels.iter().map(|l| l.label_value).collect();
    if cancel.is_cancelled() {
        return Err(BuildError::Cancelled);
    }
    let split = match split_ratio {
        Some(ratio) => {
            let seed = config.seed.unwrap_or(0);
            tracing::info!(ratio, seed, "pass 3: train/test split");
            let outcome = split::split(
                &written.cleaned.temp,
                &label_values,
                &written.label_cleaned,
                ratio,
                seed,
                &config.train_path(),
                &config.test_path(),
                &mut staging,
            )?;
            stats.rows_train = outcome.per_label.iter().map(|s| s.train).sum();
            stats.rows_test = outcome.per_label.iter().map(|s| s.test).sum();
            Some((outcome, ratio, seed))
        }
        None => None,
    };

    // Metadata.
    let fulldata_dir = parent(&config.fulldata_metadata_path());
    let name_in = |dir: &Path, p: &Path| relative_name(dir, p);
    let mut output_hashes = BTreeMap::new();
    let mut csv_outputs = vec![&written.fulldata, &written.cleaned];
    if let Some((o, _, _)) = &split {
        csv_outputs.push(&o.train);
        csv_outputs.push(&o.test);
    }
    for w in csv_outputs {
        output_hashes.insert(name_in(&fulldata_dir, &w.path), w.sha256.clone());
    }
    let dropped: Vec<DroppedColumn> = scan
        .columns
        .iter()
        .zip(&classes)
        .filter_map(|(c, reason)| {
            reason.map(|r| DroppedColumn {
                column: c.clone(),
                reason: r,
                detail: r.describe(),
            })
        })
        .collect();
    let feature_names: Vec<String> = features
        .iter()
        .filter_map(|u| scan.columns.get(*u).cloned())
        .collect();
    let mut ignore_features = vec!["label_name".to_string()];
    ignore_features.extend(dropped.iter().map(|d| d.column.clone()));
    let split_of = |i: usize| split.as_ref().and_then(|(o, _, _)| o.per_label.get(i));
    let rows = Rows {
        input: stats.rows_read,
        fulldata: stats.rows_fulldata,
        cleaned: stats.rows_cleaned,
        train: split.as_ref().map(|_| stats.rows_train),
        test: split.as_ref().map(|_| stats.rows_test),
        duplicates_removed: stats.duplicates_removed,
        bad_rows_skipped: stats.bad_rows_skipped,
        incomplete_rows_dropped: stats.incomplete_rows_dropped,
        per_label: stats
            .labels
            .iter()
            .enumerate()
            .map(|(i, (value, name, full, clean))| LabelRows {
                label_value: *value,
                label_name: name.clone(),
                fulldata: *full,
                cleaned: *clean,
                train: split_of(i).map(|s| s.train),
                test: split_of(i).map(|s| s.test),
            })
            .collect(),
        per_file: scan
            .files
            .iter()
            .zip(&written.per_file)
            .map(|(f, c)| {
                (
                    f.input.name.clone(),
                    FileRows {
                        input: c.input,
                        fulldata: c.fulldata,
                        cleaned: c.cleaned,
                        duplicates_removed: c.duplicates_removed,
                        bad_rows_skipped: c.bad_rows_skipped,
                        incomplete_rows_dropped: c.incomplete_rows_dropped,
                    },
                )
            })
            .collect(),
    };
    let mut bad_row_examples = written.bad_row_examples.clone();
    bad_row_examples.sort();
    let common = Common {
        builder: Builder {
            name: "netpipe dataset-builder",
            version: env!("CARGO_PKG_VERSION"),
        },
        created,
        dataset_kind: config.kind,
        inputs_skipped_other_kind: skipped_other_kind,
        pipeline_files: scan.files.iter().map(|f| f.input.name.clone()).collect(),
        post_proc_rules: PostProcRules {
            drop_columns: dropped.iter().map(|d| d.column.clone()).collect(),
            predict_feature: "label_value",
            missing_value: config.missing_value.clone(),
            drop_incomplete_rows: config.drop_incomplete_rows,
            dedup: config.dedup,
        },
        label_rules: labeler.meta().clone(),
        features_to_process: feature_names.clone(),
        feature_to_predict: "label_value",
        ignore_features,
        columns_dropped: dropped,
        rows,
        input_schemas: scan
            .files
            .iter()
            .map(|f| (f.input.name.clone(), f.schema.clone()))
            .collect(),
        sha256: Hashes {
            inputs: scan
                .files
                .iter()
                .map(|f| (f.input.name.clone(), f.sha256.clone()))
                .collect(),
            outputs: output_hashes,
        },
        seed: config.seed,
        split: split.as_ref().map(|(o, ratio, seed)| SplitMeta {
            seed: *seed,
            test_ratio: *ratio,
            method: "per-label selection sampling (exact count round(n * test_ratio)), seeded SplitMix64",
            train_file: name_in(&fulldata_dir, &o.train.path),
            test_file: name_in(&fulldata_dir, &o.test.path),
            per_label: label_values
                .iter()
                .zip(&o.per_label)
                .map(|(v, s)| (*v, s.clone()))
                .collect(),
        }),
        bad_row_examples: bad_row_examples.into_iter().map(|f| f.message).collect(),
    };
    let mut full_headers = vec!["src_file".to_string()];
    full_headers.extend(scan.columns.iter().cloned());
    full_headers.extend(["label_value".to_string(), "label_name".to_string()]);
    let mut clean_headers = feature_names;
    clean_headers.push("label_value".to_string());
    staging.write_all(
        &config.fulldata_metadata_path(),
        &metadata::render("fulldata", &full_headers, &common),
    )?;
    staging.write_all(
        &config.cleaned_metadata_path(),
        &metadata::render("clean", &clean_headers, &common),
    )?;
    if cancel.is_cancelled() {
        return Err(BuildError::Cancelled);
    }
    staging.commit()?;
    Ok(Summary {
        stats: stats.clone(),
        fulldata: config.fulldata_path(),
        cleaned: config.cleaned_path(),
        split: split.map(|_| (config.train_path(), config.test_path())),
        metrics_error: None,
    })
}

fn validate(config: &Config) -> Result<(), BuildError> {
    if !is_numeric(config.missing_value.as_bytes()) {
        return Err(BuildError::Config(format!(
            "--missing-value `{}` is not a number",
            config.missing_value
        )));
    }
    if !(0.0..=100.0).contains(&config.max_bad_rows_percent) {
        return Err(BuildError::Config(format!(
            "--max-bad-rows-percent {} is not between 0 and 100",
            config.max_bad_rows_percent
        )));
    }
    if let Some(r) = config.test_ratio
        && !(0.0..=1.0).contains(&r)
    {
        return Err(BuildError::Config(format!(
            "--test-ratio {r} is not between 0 and 1"
        )));
    }
    Ok(())
}

fn check_distinct(paths: &[PathBuf]) -> Result<(), BuildError> {
    for (i, a) in paths.iter().enumerate() {
        if paths.iter().skip(i + 1).any(|b| b == a) {
            return Err(BuildError::Config(format!(
                "{} is used for two outputs",
                a.display()
            )));
        }
    }
    Ok(())
}

fn parent(path: &Path) -> PathBuf {
    path.parent().map(Path::to_path_buf).unwrap_or_default()
}

/// An output's name as recorded in metadata: relative to the metadata's directory when it
/// is inside it, so moving a dataset directory keeps its metadata valid.
fn relative_name(dir: &Path, path: &Path) -> String {
    path.strip_prefix(dir).unwrap_or(path).display().to_string()
}

/// `created` of the metadata: --created, else SOURCE_DATE_EPOCH, else the newest input's
/// modification time; so rebuilding unchanged inputs gives byte-identical outputs.
fn created(config: &Config, inputs: &[inputs::InputFile]) -> Result<String, BuildError> {
    let secs = if let Some(text) = &config.created {
        parse_created(text).ok_or_else(|| {
            BuildError::Config(format!(
                "--created `{text}`: expected RFC 3339, `YYYY-mm-dd HH:MM:SS` or Unix seconds"
            ))
        })?
    } else if let Some(epoch) = config.source_date_epoch {
        epoch
    } else {
        inputs
            .iter()
            .filter_map(|f| f.modified)
            .filter_map(|t| t.duration_since(UNIX_EPOCH).ok())
            .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
            .max()
            .unwrap_or(0)
    };
    let time = chrono::DateTime::from_timestamp(secs, 0)
        .ok_or_else(|| BuildError::Config(format!("created time {secs} is out of range")))?;
    Ok(time.format("%Y-%m-%d %H:%M:%S").to_string())
}

fn parse_created(text: &str) -> Option<i64> {
    let text = text.trim();
    if let Ok(secs) = text.parse::<i64>() {
        return Some(secs);
    }
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(text) {
        return Some(t.timestamp());
    }
    chrono::NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S")
        .ok()
        .map(|t| t.and_utc().timestamp())
}

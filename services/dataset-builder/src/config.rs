//! Command line and environment (the original's variable names keep working).

use std::path::{Path, PathBuf};
use std::time::Duration;

use netpipe_runtime::service::env::{self, Alias, Deprecations};
use netpipe_runtime::service::{CommonArgs, parse_bool};

/// Names this service read before the one naming scheme: none were renamed (its names are
/// the original's, or new); the list is here so every service reads its env the same way.
pub const ENV_ALIASES: &[Alias] = &[];

/// Fixed file names of the metadata files, beside their CSV (as the original).
pub const FULLDATA_METADATA_NAME: &str = "fulldata_metadata.json";
pub const CLEANED_METADATA_NAME: &str = "cleaned_metadata.json";

/// Build labelled training datasets (full data, cleaned numeric set, optional train/test split)
/// from recorded CSV files, streaming in constant memory.
#[derive(Debug, Clone, clap::Parser)]
#[command(name = "dataset-builder", version)]
pub struct Config {
    /// Ops server (off unless set: a one-shot job needs none), log format, trace export.
    #[command(flatten)]
    pub common: CommonArgs,

    /// Input CSV files. When given, DS_GLOB_PATH is not used.
    #[arg(value_name = "CSV")]
    pub inputs: Vec<PathBuf>,

    /// Which datasets to build from: `packets` (one row per packet) or `flows` (one row per
    /// flow, schema netpipe-flows). Inputs of the other kind matched by the glob are skipped;
    /// a listed one is an error. The kind is the manifest's schema, else the header's.
    #[arg(long, env = "DS_KIND", value_enum, default_value = "packets")]
    pub kind: crate::schema_types::DatasetKind,

    /// Dataset directory, used by the default glob.
    #[arg(long, env = "DS_DIR", default_value = "./datasets")]
    pub ds_dir: PathBuf,

    /// Shell pattern selecting the input CSVs [default: {DS_DIR}/**/*.csv: the files in DS_DIR,
    /// as netpipe writes them, and in its subdirectories, as the original's tools did].
    #[arg(long = "glob", env = "DS_GLOB_PATH")]
    pub glob: Option<String>,

    /// Directory of the default output files.
    #[arg(long, env = "OUTPUT_DIR", default_value = "/tmp")]
    pub output_dir: PathBuf,

    /// Full data CSV [default: {OUTPUT_DIR}/fulldata_attack_scans.csv].
    #[arg(long, env = "FULLDATA_FILE")]
    pub fulldata_file: Option<PathBuf>,

    /// Cleaned (numeric) CSV [default: {OUTPUT_DIR}/cleaned_attack_scans.csv].
    #[arg(long, env = "CLEANED_FILE")]
    pub cleaned_file: Option<PathBuf>,

    /// JSON file of label rules (see docs/dataset-builder.md).
    #[arg(long, env = "LABEL_RULES_FILE")]
    pub label_rules_file: Option<PathBuf>,

    /// A label rule `VALUE:NAME[:KEY=V1,V2;KEY=V]`, e.g. `1:attack:src=10.0.0.0/8;dst_port=22`.
    /// Repeatable; evaluated before the rules file; first match wins.
    #[arg(long = "label-rule", env = "LABEL_RULES", value_delimiter = '|')]
    pub label_rules: Vec<String>,

    /// Label value of rows no rule matches [default: the rules file's, else 0].
    #[arg(long, env = "DEFAULT_LABEL_VALUE", allow_negative_numbers = true)]
    pub default_label_value: Option<i64>,

    /// Label name of rows no rule matches [default: the rules file's, else not_attack].
    #[arg(long, env = "DEFAULT_LABEL_NAME")]
    pub default_label_name: Option<String>,

    /// The original's random labels: randint(0,100) > 85 => 1 attack, else 0 not_attack.
    /// Needs --seed; cannot be combined with label rules.
    #[arg(long, env = "RANDOM_LABELS", value_parser = parse_bool)]
    pub random_labels: bool,

    /// Seed of the random labels and of the train/test split.
    #[arg(long, env = "DS_SEED")]
    pub seed: Option<u64>,

    /// Remove consecutive duplicate rows (same feature cells and label as the row before,
    /// within one file) from every output.
    #[arg(long, env = "DEDUP", value_parser = parse_bool)]
    pub dedup: bool,

    /// Value written in the cleaned set for a missing cell.
    #[arg(
        long,
        env = "MISSING_VALUE",
        default_value = "-1",
        allow_hyphen_values = true
    )]
    pub missing_value: String,

    /// Leave rows with any missing feature cell out of the cleaned set instead of filling them.
    #[arg(long, env = "DROP_INCOMPLETE_ROWS", value_parser = parse_bool)]
    pub drop_incomplete_rows: bool,

    /// Extra columns to leave out of the cleaned set (comma separated or repeated).
    #[arg(long = "drop-column", env = "DROP_COLUMNS", value_delimiter = ',')]
    pub drop_columns: Vec<String>,

    /// Write train/test files from the cleaned set, with this share of each label in test.
    #[arg(long, env = "TEST_RATIO")]
    pub test_ratio: Option<f64>,

    /// Train split CSV [default: {OUTPUT_DIR}/train_attack_scans.csv].
    #[arg(long, env = "TRAIN_FILE")]
    pub train_file: Option<PathBuf>,

    /// Test split CSV [default: {OUTPUT_DIR}/test_attack_scans.csv].
    #[arg(long, env = "TEST_FILE")]
    pub test_file: Option<PathBuf>,

    /// Skip (and count) ragged rows and rows with a non-numeric cell in a numeric column,
    /// instead of failing.
    #[arg(long, env = "ALLOW_BAD_ROWS", value_parser = parse_bool)]
    pub allow_bad_rows: bool,

    /// Fail when --allow-bad-rows skipped more than this share of the rows read, in percent.
    #[arg(long, env = "MAX_BAD_ROWS_PERCENT", default_value_t = 1.0)]
    pub max_bad_rows_percent: f64,

    /// Columns the input's schema (from its manifest) declares as text: lists
    /// (`tcp_opt_kinds`), addresses, hex, names. `drop` leaves them out of the cleaned set,
    /// `keep` keeps them there as text; never counted as bad rows.
    #[arg(long, env = "TEXT_COLUMNS", value_enum, default_value = "drop")]
    pub text_columns: crate::schema_types::TextColumns,

    /// `created` in the metadata: RFC 3339, `YYYY-mm-dd HH:MM:SS` (UTC) or Unix seconds
    /// [default: SOURCE_DATE_EPOCH, else the newest input file's modification time].
    #[arg(long, env = "DS_CREATED")]
    pub created: Option<String>,

    /// Reproducible-builds convention for `created` (Unix seconds).
    #[arg(long, env = "SOURCE_DATE_EPOCH", hide = true)]
    pub source_date_epoch: Option<i64>,

    /// Write the run's counters here in Prometheus text format (node exporter textfile).
    #[arg(long, env = "PROM_FILE")]
    pub prom_file: Option<PathBuf>,

    /// Push the run's counters to this Pushgateway (`{url}/metrics/job/{job}`).
    #[arg(long, env = "PUSHGATEWAY_URL")]
    pub pushgateway_url: Option<String>,

    /// Job name for the Pushgateway.
    #[arg(long, env = "PUSHGATEWAY_JOB", default_value = "dataset_builder")]
    pub pushgateway_job: String,

    /// Seconds between progress lines on stderr.
    #[arg(long, env = "PROGRESS_SECS", default_value_t = 10,
        value_parser = clap::value_parser!(u64).range(0..=netpipe_runtime::flags::MAX_SECS))]
    pub progress_secs: u64,

    /// How many bad rows are listed with file:line (all are counted).
    #[arg(long, env = "MAX_ERROR_REPORTS", default_value_t = 20)]
    pub max_error_reports: usize,

    /// Keep running and rebuild the outputs whenever the input files change, looking every
    /// this many seconds (0 = build once and exit).
    #[arg(long, env = "WATCH_SECS", default_value_t = 0,
        value_parser = clap::value_parser!(u64).range(0..=netpipe_runtime::flags::MAX_SECS))]
    pub watch_secs: u64,
}

impl Config {
    /// From the command line and the environment.
    pub fn from_env_and_args() -> (Self, Deprecations) {
        env::parse(ENV_ALIASES)
    }

    /// How often watch mode looks at the inputs; `None` = one-shot.
    pub fn watch_interval(&self) -> Option<Duration> {
        (self.watch_secs > 0).then(|| Duration::from_secs(self.watch_secs))
    }

    /// The input pattern when no paths are listed.
    pub fn glob_pattern(&self) -> String {
        self.glob
            .clone()
            .unwrap_or_else(|| format!("{}/**/*.csv", self.ds_dir.display()))
    }

    pub fn fulldata_path(&self) -> PathBuf {
        self.fulldata_file
            .clone()
            .unwrap_or_else(|| self.output_dir.join("fulldata_attack_scans.csv"))
    }

    pub fn cleaned_path(&self) -> PathBuf {
        self.cleaned_file
            .clone()
            .unwrap_or_else(|| self.output_dir.join("cleaned_attack_scans.csv"))
    }

    pub fn fulldata_metadata_path(&self) -> PathBuf {
        sibling(&self.fulldata_path(), FULLDATA_METADATA_NAME)
    }

    pub fn cleaned_metadata_path(&self) -> PathBuf {
        sibling(&self.cleaned_path(), CLEANED_METADATA_NAME)
    }

    pub fn train_path(&self) -> PathBuf {
        self.train_file
            .clone()
            .unwrap_or_else(|| self.output_dir.join("train_attack_scans.csv"))
    }

    pub fn test_path(&self) -> PathBuf {
        self.test_file
            .clone()
            .unwrap_or_else(|| self.output_dir.join("test_attack_scans.csv"))
    }
}

fn sibling(path: &Path, name: &str) -> PathBuf {
    match path.parent() {
        Some(dir) => dir.join(name),
        None => PathBuf::from(name),
    }
}

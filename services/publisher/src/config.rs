//! Every setting, from flags or the environment. The `ANTINEX_*` names and defaults are the
//! original antinex-client's (`consts.py`), so an existing env file keeps working.

use netpipe_runtime::flags::{MAX_MS, MAX_SECS, usize_in};
use std::path::PathBuf;
use std::time::Duration;

use netpipe_runtime::service::env::{self, Alias, Deprecations};
// The one boolean parser: the original only accepted `"1"`; the example env's `false` meant
// off there and here.
use netpipe_runtime::service::{CommonArgs, OpsAddr, parse_bool};

use crate::secret::{SecretString, parse_secret};

/// Where /health, /ready and /metrics listen unless OPS_ADDR says otherwise.
pub const DEFAULT_OPS_ADDR: &str = "0.0.0.0:9103";

/// Names this service read before the one naming scheme (docs/operations.md); they still
/// work, with one deprecation warning each.
pub const ENV_ALIASES: &[Alias] = &[Alias {
    old: "PUBLISHER_OPS_ADDR",
    new: "OPS_ADDR",
}];

/// A comma list as the original reads it, with surrounding spaces and empty items removed.
pub fn split_list(value: &Option<String>) -> Vec<String> {
    value
        .as_deref()
        .unwrap_or("")
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

fn parse_millis(value: &str) -> Result<Duration, String> {
    let ms = value
        .trim()
        .parse::<u64>()
        .map_err(|e| format!("milliseconds: {e}"))?;
    if ms > MAX_MS {
        return Err(format!("milliseconds: at most {MAX_MS} (a year), got {ms}"));
    }
    Ok(Duration::from_millis(ms))
}

/// A broker read blocks this long without seeing a shutdown: a minute at most.
fn parse_block_millis(value: &str) -> Result<Duration, String> {
    let block = parse_millis(value)?;
    if block > Duration::from_secs(60) {
        return Err(format!("milliseconds: at most 60000, got {value}"));
    }
    Ok(block)
}

fn parse_secs(value: &str) -> Result<Duration, String> {
    value
        .trim()
        .parse::<f64>()
        .ok()
        .filter(|s| s.is_finite() && (0.0..=MAX_SECS as f64).contains(s))
        .map(Duration::from_secs_f64)
        .ok_or_else(|| {
            format!("seconds: expected a number from 0 to {MAX_SECS} (a year), got {value:?}")
        })
}

/// When to poll for predictions after a batch was accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum PollPredictions {
    /// Poll when the server returned a job id and a result id (the default).
    Auto,
    /// Never poll.
    Off,
}

#[derive(Debug, Clone, clap::Parser)]
#[command(
    name = "publisher",
    version,
    about = "Streams rows to the AntiNex REST API (JWT) and writes predictions back",
    mut_arg("ops_addr", |arg| arg.default_value(DEFAULT_OPS_ADDR))
)]
pub struct Config {
    #[command(flatten)]
    pub common: CommonArgs,

    // ---- input: the rows stream --------------------------------------------------------
    /// Broker holding the rows stream (redis://, amqp://, memory://NAME).
    #[arg(
        long,
        env = "ROWS_BROKER_URL",
        default_value = "redis://127.0.0.1:6379/0"
    )]
    pub rows_url: String,
    /// Rows stream / queue name.
    #[arg(long, env = "ROWS_STREAM", default_value = "netpipe.rows")]
    pub rows_stream: String,
    /// Consumer group on the rows stream.
    #[arg(long, env = "ROWS_GROUP", default_value = "netpipe-publisher")]
    pub rows_group: String,
    /// This consumer's name in the group (default: host-pid).
    #[arg(long, env = "ROWS_CONSUMER")]
    pub rows_consumer: Option<String>,
    /// Where rows the API refused (4xx) go, with the response.
    #[arg(long, env = "ROWS_DEAD_LETTER", default_value = "netpipe.rows.dead")]
    pub rows_dead_letter: String,
    /// How long one broker read waits for new messages (ms); also bounds ack latency.
    #[arg(long, env = "ROWS_BLOCK_MS", default_value = "200", value_parser = parse_block_millis)]
    pub rows_block: Duration,
    /// Messages read from the broker at once.
    #[arg(long, env = "ROWS_PREFETCH", default_value_t = 64)]
    pub rows_prefetch: u16,

    // ---- batching ------------------------------------------------------------------------
    /// Rows per POST /ml/ at most.
    #[arg(long, env = "PUBLISH_BATCH_ROWS", default_value_t = 500, value_parser = usize_in(1, 100_000))]
    pub batch_rows: usize,
    /// A batch is sent at the latest this long after its first row arrived (ms).
    #[arg(long, env = "PUBLISH_BATCH_DELAY_MS", default_value = "1000", value_parser = parse_millis)]
    pub batch_delay: Duration,
    /// POST /ml/ requests in flight at once.
    #[arg(long, env = "PUBLISH_MAX_IN_FLIGHT", default_value_t = 4, value_parser = usize_in(1, 1024))]
    pub max_in_flight: usize,

    // ---- HTTP behaviour ------------------------------------------------------------------
    /// Whole-request timeout (s), for every request.
    #[arg(long, env = "ANTINEX_REQUEST_TIMEOUT_SECS", default_value = "30", value_parser = parse_secs)]
    pub request_timeout: Duration,
    /// TCP/TLS connect timeout (s).
    #[arg(long, env = "ANTINEX_CONNECT_TIMEOUT_SECS", default_value = "5", value_parser = parse_secs)]
    pub connect_timeout: Duration,
    /// First retry delay (ms); doubles per attempt, with jitter.
    #[arg(long, env = "ANTINEX_RETRY_INITIAL_MS", default_value = "200", value_parser = parse_millis)]
    pub retry_initial: Duration,
    /// Longest retry delay (ms).
    #[arg(long, env = "ANTINEX_RETRY_MAX_MS", default_value = "30000", value_parser = parse_millis)]
    pub retry_max: Duration,
    /// /ready turns 503 (with the last failure as its reason) after this many POST /ml/
    /// attempts in a row failed (5xx, 401 with a fresh token, timeouts, refused connections);
    /// the next accepted batch makes it 200 again. 0 = never.
    #[arg(long, env = "ANTINEX_UNREADY_AFTER_FAILURES", default_value_t = 5)]
    pub unready_after_failures: u32,
    /// Exit 1 once every login for this many seconds was refused: wrong ANTINEX_USER or
    /// ANTINEX_PASSWORD are not transient (0 = keep retrying, not ready meanwhile).
    #[arg(long, env = "ANTINEX_LOGIN_GIVE_UP_SECS", default_value_t = 30,
        value_parser = clap::value_parser!(u64).range(0..=MAX_SECS))]
    pub login_give_up_secs: u64,
    /// Log in again this long before the token's `exp` (s); capped at a fifth of its lifetime.
    #[arg(long, env = "ANTINEX_TOKEN_RENEW_BEFORE_SECS", default_value = "30", value_parser = parse_secs)]
    pub token_renew_before: Duration,

    // ---- predictions -----------------------------------------------------------------------
    /// Poll /mlresults/{id}/ for predictions: auto (when the server returns job and result ids) or off
    #[arg(
        long,
        env = "ANTINEX_POLL_PREDICTIONS",
        value_enum,
        default_value = "auto"
    )]
    pub poll_predictions: PollPredictions,
    /// First delay before polling /mlresults/{id}/ (ms); doubles up to the max.
    #[arg(long, env = "ANTINEX_POLL_INITIAL_MS", default_value = "500", value_parser = parse_millis)]
    pub poll_initial: Duration,
    /// Longest wait between two polls of one result (ms); polls back off up to this
    #[arg(long, env = "ANTINEX_POLL_MAX_MS", default_value = "5000", value_parser = parse_millis)]
    pub poll_max: Duration,
    /// Give up on one job's predictions after this long (s); counted.
    #[arg(long, env = "ANTINEX_POLL_TIMEOUT_SECS", default_value = "600", value_parser = parse_secs)]
    pub poll_timeout: Duration,
    /// Jobs polled at once; further jobs wait (bounded by the batches in flight).
    #[arg(long, env = "ANTINEX_MAX_POLLS", default_value_t = 16, value_parser = usize_in(0, 4096))]
    pub max_polls: usize,
    /// Append predictions (agent, seq, model, ...) to this CSV, fsynced per job.
    #[arg(long, env = "PREDICTIONS_CSV")]
    pub predictions_csv: Option<PathBuf>,
    /// Also publish predictions to this broker (one JSON message per job).
    #[arg(long, env = "PREDICTIONS_BROKER_URL")]
    pub predictions_url: Option<String>,
    /// Stream / queue the predictions are also published to (with --predictions-url)
    #[arg(
        long,
        env = "PREDICTIONS_STREAM",
        default_value = "netpipe.predictions"
    )]
    pub predictions_stream: String,

    // ---- the original's ANTINEX_* variables ------------------------------------------------
    /// Master switch; when off the publisher consumes nothing and exits at once.
    #[arg(long, env = "ANTINEX_PUBLISH_ENABLED", default_value = "1", value_parser = parse_bool, action = clap::ArgAction::Set)]
    pub publish_enabled: bool,
    /// REST base URL, without a trailing slash.
    #[arg(long, env = "ANTINEX_URL", default_value = "http://localhost:8010")]
    pub url: String,
    /// AntiNex user name for POST /api-token-auth/
    #[arg(long, env = "ANTINEX_USER", default_value = "root")]
    pub user: String,
    /// AntiNex password (never logged; the original's default)
    #[arg(
        long,
        env = "ANTINEX_PASSWORD",
        default_value = "123321",
        hide_env_values = true,
        hide_default_value = true,
        value_parser = parse_secret
    )]
    pub password: SecretString,
    /// Stored only, as in the original (never sent).
    #[arg(long, env = "ANTINEX_EMAIL", default_value = "notreal@test.com")]
    pub email: String,
    /// CA bundle file or directory of PEM files for the server certificate.
    #[arg(long, env = "ANTINEX_CA_FILE")]
    pub ca_file: Option<PathBuf>,
    /// Client certificate (with ANTINEX_KEY_FILE); alone it is used as the CA bundle, as the original did.
    #[arg(long, env = "ANTINEX_CERT_FILE")]
    pub cert_file: Option<PathBuf>,
    /// Client private key for --cert-file
    #[arg(long, env = "ANTINEX_KEY_FILE")]
    pub key_file: Option<PathBuf>,
    /// JSON template for POST /ml/ bodies; built-in Full-Django template when unset.
    #[arg(long, env = "ANTINEX_PUBLISH_REQUEST_FILE")]
    pub request_file: Option<PathBuf>,
    /// Model name in the request (`label` of the ML job)
    #[arg(
        long,
        env = "ANTINEX_USE_MODEL_NAME",
        default_value = "Full-Django-AntiNex-Simple-Scaler-DNN"
    )]
    pub model_name: String,
    /// Comma list; the template's `features_to_process` when unset.
    #[arg(long, env = "ANTINEX_FEATURES_TO_PROCESS")]
    pub features_to_process: Option<String>,
    /// Comma list of features the server should ignore (request field `ignore_features`)
    #[arg(long, env = "ANTINEX_IGNORE_FEATURES")]
    pub ignore_features: Option<String>,
    /// Comma list of columns to sort by (request field `sort_values`)
    #[arg(long, env = "ANTINEX_SORT_VALUES")]
    pub sort_values: Option<String>,
    /// Request field `ml_type`
    #[arg(long, env = "ANTINEX_ML_TYPE", default_value = "classification")]
    pub ml_type: String,
    /// The label column the model predicts; never sent as a feature
    #[arg(long, env = "ANTINEX_PREDICT_FEATURE", default_value = "label_value")]
    pub predict_feature: String,
    /// Request field `seed`
    #[arg(long, env = "ANTINEX_SEED", default_value_t = 42)]
    pub seed: i64,
    /// Request field `test_size`
    #[arg(long, env = "ANTINEX_TEST_SIZE", default_value_t = 0.2)]
    pub test_size: f64,
    /// Request field `batch_size` (training batch size on the server, not rows per request)
    #[arg(long, env = "ANTINEX_BATCH_SIZE", default_value_t = 32)]
    pub batch_size: i64,
    /// Request field `epochs`
    #[arg(long, env = "ANTINEX_EPOCHS", default_value_t = 15)]
    pub epochs: i64,
    /// Request field `num_splits`
    #[arg(long, env = "ANTINEX_NUM_SPLITS", default_value_t = 3)]
    pub num_splits: i64,
    /// Request field `loss`
    #[arg(long, env = "ANTINEX_LOSS", default_value = "binary_crossentropy")]
    pub loss: String,
    /// Request field `optimizer`
    #[arg(long, env = "ANTINEX_OPTIMIZER", default_value = "adam")]
    pub optimizer: String,
    /// Comma list; the template's value is kept when unset.
    #[arg(long, env = "ANTINEX_METRICS")]
    pub metrics: Option<String>,
    /// Comma list; the template's value is kept when unset.
    #[arg(long, env = "ANTINEX_HISTORIES")]
    pub histories: Option<String>,
    /// Body `version` (the original accepted it but never applied it); the template's when unset.
    /// (`--version` prints the program's version.)
    #[arg(long = "body-version", id = "body_version", env = "ANTINEX_VERSION")]
    pub version: Option<i64>,
    /// Request field `convert_data` (1/0)
    #[arg(long, env = "ANTINEX_CONVERT_DATA", default_value = "1", value_parser = parse_bool, action = clap::ArgAction::Set)]
    pub convert_data: bool,
    /// Request field `convert_data_type`
    #[arg(long, env = "ANTINEX_CONVERT_DATA_TYPE", default_value = "float")]
    pub convert_data_type: String,
    /// Request field `include_failed_conversions` (1/0)
    #[arg(long, env = "ANTINEX_INCLUDE_FAILED_CONVERSIONS", default_value = "0", value_parser = parse_bool, action = clap::ArgAction::Set)]
    pub include_failed_conversions: bool,
    /// Sent, as a JSON number, for absent and unconvertible cells.
    #[arg(long, env = "ANTINEX_MISSING_VALUE", default_value = "-1.0")]
    pub missing_value: String,
    /// Add the predict feature to every row, set to the missing value.
    #[arg(long, env = "ANTINEX_CHECK_MISSING_PREDICT", default_value = "1", value_parser = parse_bool, action = clap::ArgAction::Set)]
    pub check_missing_predict: bool,
    /// Request field `publish_to_core` (1/0): let the AntiNex Core worker run the job
    #[arg(long, env = "ANTINEX_PUBLISH_TO_CORE", default_value = "1", value_parser = parse_bool, action = clap::ArgAction::Set)]
    pub publish_to_core: bool,
    /// Log level when RUST_LOG is unset: `0` logs warnings and errors only.
    #[arg(long, env = "ANTINEX_CLIENT_VERBOSE", default_value = "1", value_parser = parse_bool, action = clap::ArgAction::Set)]
    pub client_verbose: bool,
    /// Debug logs of the publisher when RUST_LOG is unset (never the password or the token).
    #[arg(long, env = "ANTINEX_CLIENT_DEBUG", default_value = "0", value_parser = parse_bool, action = clap::ArgAction::Set)]
    pub client_debug: bool,
}

impl Config {
    /// Defaults (plus any ANTINEX_* in the environment) with a memory/stand-in pair and no ops
    /// endpoint: for tests and benches.
    pub fn for_tests(rows_url: &str, antinex_url: &str) -> Self {
        let mut config = <Config as clap::Parser>::parse_from(["publisher"]);
        config.rows_url = rows_url.to_string();
        config.url = antinex_url.to_string();
        config.common.ops_addr = OpsAddr::Off;
        config
    }

    /// From the command line and the environment (old names honoured, see [`ENV_ALIASES`]).
    pub fn from_env_and_args() -> (Self, Deprecations) {
        env::parse(ENV_ALIASES)
    }

    /// The log filter used when RUST_LOG is unset, from the original's verbosity switches.
    pub fn default_log_filter(&self) -> &'static str {
        if self.client_debug {
            "info,publisher=debug"
        } else if self.client_verbose {
            "info"
        } else {
            "warn"
        }
    }

    /// How long refused logins are retried (`None` = forever).
    pub fn login_give_up(&self) -> Option<Duration> {
        (self.login_give_up_secs > 0).then(|| Duration::from_secs(self.login_give_up_secs))
    }

    /// The base URL without trailing slashes (a slash would give `//ml/`, a 404 on the real server).
    pub fn base_url(&self) -> String {
        self.url.trim_end_matches('/').to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[test]
    fn flags_and_lists_parse_like_the_original() {
        assert_eq!(parse_bool("1"), Ok(true));
        assert_eq!(parse_bool("false"), Ok(false));
        assert!(parse_bool("maybe").is_err());
        assert_eq!(
            split_list(&Some("a, b,,c".into())),
            vec!["a".to_string(), "b".into(), "c".into()]
        );
        assert!(split_list(&None).is_empty());
    }

    #[test]
    fn password_is_hidden_in_debug() {
        let config = Config::parse_from(["publisher", "--password", "s3cr3t-pw"]);
        assert!(!format!("{config:?}").contains("s3cr3t-pw"));
        assert_eq!(config.num_splits, 3);
        assert_eq!(config.base_url(), "http://localhost:8010");
        assert!(
            config.publish_enabled && config.convert_data && !config.include_failed_conversions
        );
    }

    #[test]
    fn boolean_settings_take_values_like_the_env_files() {
        let config = Config::parse_from([
            "publisher",
            "--publish-enabled=0",
            "--include-failed-conversions",
            "false",
            "--publish-to-core=true",
            "--url=http://h:1//",
        ]);
        assert!(!config.publish_enabled);
        assert!(!config.include_failed_conversions);
        assert!(config.publish_to_core);
        assert_eq!(config.base_url(), "http://h:1");
    }

    #[test]
    fn verbosity_switches_choose_the_default_log_filter() {
        let filter = |args: &[&str]| {
            let mut argv = vec!["publisher"];
            argv.extend_from_slice(args);
            Config::parse_from(argv).default_log_filter()
        };
        assert_eq!(filter(&[]), "info");
        assert_eq!(filter(&["--client-verbose=0"]), "warn");
        assert_eq!(filter(&["--client-debug=1"]), "info,publisher=debug");
        assert_eq!(
            filter(&["--client-verbose=0", "--client-debug=true"]),
            "info,publisher=debug"
        );
    }
}

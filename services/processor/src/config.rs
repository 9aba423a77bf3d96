//! Command line and environment. Every flag has an environment variable; the original's names
//! (FORWARD_BROKER_URL, FORWARD_QUEUE, SAVE_AFTER_NUM, STOP_AFTER_NUM, DS_DIR, DS_NAME,
//! OUTPUT_CSV) keep working.

use std::path::PathBuf;
use std::time::Duration;

use netpipe_runtime::broker::{BrokerConfig, BrokerError, BrokerUrl};
use netpipe_runtime::dataset::{DatasetConfig, RotatePolicy};
use netpipe_runtime::service::env::{self, Alias, Deprecations};
use netpipe_runtime::service::{CommonArgs, OpsAddr, parse_bool};

/// Where /health, /ready and /metrics listen unless OPS_ADDR says otherwise.
pub const DEFAULT_OPS_ADDR: &str = "127.0.0.1:9102";

/// Names this service read before the one naming scheme (docs/operations.md); they still
/// work, with one deprecation warning each.
pub const ENV_ALIASES: &[Alias] = &[
    Alias {
        old: "PROCESSOR_SCHEMA",
        new: "NETPIPE_SCHEMA",
    },
    Alias {
        old: "PROCESSOR_ROWS_STREAM",
        new: "ROWS_STREAM",
    },
    Alias {
        old: "PROCESSOR_ROWS_BROKER_URL",
        new: "ROWS_BROKER_URL",
    },
    Alias {
        old: "PROCESSOR_FLOWS",
        new: "FLOWS",
    },
    Alias {
        old: "PROCESSOR_FLOW_STREAM",
        new: "FLOW_STREAM",
    },
];

/// processor: frames from a broker -> durable, deduplicated CSV datasets (+ optional rows stream).
#[derive(Debug, Clone, clap::Parser)]
#[command(name = "processor", version, about,
    mut_arg("ops_addr", |arg| arg.default_value(DEFAULT_OPS_ADDR)))]
pub struct Config {
    #[command(flatten)]
    pub common: CommonArgs,

    /// Broker URL: redis:// (Redis Streams), amqp:// (RabbitMQ), kombu+redis:// (the original's
    /// message format), memory://NAME (in-process).
    #[arg(
        long,
        env = "FORWARD_BROKER_URL",
        default_value = "redis://127.0.0.1:6379"
    )]
    pub broker_url: String,

    /// Redis stream / AMQP queue / kombu list to consume.
    #[arg(long, env = "FORWARD_QUEUE", default_value = "NEW_PACKETS")]
    pub stream: String,

    /// AMQP exchange the queue is bound to.
    #[arg(long, env = "FORWARD_EXCHANGE", default_value = "NEW_PACKETS")]
    pub exchange: String,

    /// AMQP routing key of the binding.
    #[arg(long, env = "FORWARD_ROUTING_KEY", default_value = "NEW_PACKETS")]
    pub routing_key: String,

    /// Consumer group (Redis Streams); processors in one group share the stream.
    #[arg(long, env = "PROCESSOR_GROUP", default_value = "netpipe-processor")]
    pub group: String,

    /// Consumer name inside the group (default: host-pid). Keep it stable across restarts so a
    /// restarted processor takes its own pending messages back at once.
    #[arg(long, env = "PROCESSOR_CONSUMER")]
    pub consumer: Option<String>,

    /// Dead-letter stream/queue/list for poison messages.
    #[arg(
        long,
        env = "PROCESSOR_DEAD_LETTER",
        default_value = "NEW_PACKETS.dead"
    )]
    pub dead_letter: String,

    /// Commit (append + fsync + manifest) and acknowledge every this many packets. Values below
    /// 1 are treated as 1 (the original treated negatives as 1 and divided by zero on 0).
    #[arg(
        long,
        env = "SAVE_AFTER_NUM",
        default_value_t = 100,
        allow_negative_numbers = true
    )]
    pub save_after_num: i64,

    /// Commit at least this often while packets are buffered, in milliseconds.
    #[arg(long, env = "PROCESSOR_COMMIT_INTERVAL_MS", default_value_t = 1000)]
    pub commit_interval_ms: u64,

    /// Stop after this many packets: commit, acknowledge, exit 0. -1 = never.
    #[arg(long, env = "STOP_AFTER_NUM", default_value_t = -1, allow_negative_numbers = true)]
    pub stop_after_num: i64,

    /// Output directory.
    #[arg(long, env = "DS_DIR", default_value = "./datasets")]
    pub ds_dir: PathBuf,

    /// Dataset name: files are {DS_DIR}/{DS_NAME}-{YYYY-MM-DD-HH-MM-SS}[-{instance}].csv.
    #[arg(long, env = "DS_NAME", default_value = "netdata")]
    pub ds_name: String,

    /// Fixed path of the first file (later files get -2, -3, ...).
    #[arg(long, env = "OUTPUT_CSV")]
    pub output_csv: Option<PathBuf>,

    /// Column schema; repeat (or comma-separate) to write several, each into its own files.
    #[arg(
        long = "schema",
        env = "NETPIPE_SCHEMA",
        value_delimiter = ',',
        default_value = "netpipe"
    )]
    pub schemas: Vec<String>,

    /// Start a new file after this many rows (checked at each commit).
    #[arg(long, env = "ROTATE_ROWS")]
    pub rotate_rows: Option<u64>,

    /// Start a new file after this many bytes (checked at each commit).
    #[arg(long, env = "ROTATE_BYTES")]
    pub rotate_bytes: Option<u64>,

    /// Start a new file after this many seconds (checked at each commit).
    #[arg(long, env = "ROTATE_SECS")]
    pub rotate_secs: Option<u64>,

    /// Instance id added to file names, for several processors writing into one directory.
    #[arg(long, env = "PROCESSOR_INSTANCE_ID")]
    pub instance_id: Option<String>,

    /// Forward each committed row (first --schema) as a RowBatch to this stream/queue.
    #[arg(long, env = "ROWS_STREAM")]
    pub rows_stream: Option<String>,

    /// Broker for --rows-stream (default: --broker-url; a kombu+redis:// source forwards to
    /// Redis Streams on the same server).
    #[arg(long, env = "ROWS_BROKER_URL")]
    pub rows_broker_url: Option<String>,

    /// Messages larger than this are dead-lettered as `oversized`.
    #[arg(long, env = "PROCESSOR_MAX_MESSAGE_BYTES", default_value_t = 16 << 20)]
    pub max_message_bytes: usize,

    /// Messages the broker may hand out ahead of acknowledgements (AMQP prefetch window);
    /// each read takes at most 8 of them.
    #[arg(long, env = "PROCESSOR_PREFETCH", default_value_t = 64)]
    pub prefetch: u16,

    /// Pending messages idle this long are taken from a dead consumer, in milliseconds.
    #[arg(long, env = "PROCESSOR_CLAIM_IDLE_MS", default_value_t = 30_000)]
    pub claim_idle_ms: u64,

    /// Give up (exit non-zero) once the dataset directory has been unusable, or commits have
    /// failed, for this many seconds in a row (0 = keep retrying, not ready meanwhile).
    #[arg(long, env = "PROCESSOR_GIVE_UP_SECS", default_value_t = 0)]
    pub give_up_secs: u64,

    /// Also consume the capture-agents' flow records (their --flows) and write a flow dataset,
    /// {DS_NAME}-flows-*.csv, with the same guarantees as packet rows (docs/flows.md).
    #[arg(long, env = "FLOWS", value_parser = parse_bool, default_value_t = false)]
    pub flows: bool,

    /// Stream/queue of the flow records (default: FORWARD_QUEUE + `-flows`, as the agent).
    #[arg(long, env = "FLOW_STREAM")]
    pub flow_stream: Option<String>,
}

impl Config {
    /// From the command line and the environment (old names honoured, see [`ENV_ALIASES`]).
    pub fn from_env_and_args() -> (Self, Deprecations) {
        env::parse(ENV_ALIASES)
    }

    /// The defaults, with no environment variable read: the start of an embedded processor.
    pub fn defaults() -> Self {
        env::defaults()
    }

    /// Defaults (no environment read) with the given broker URL and output directory and no
    /// ops server (tests, embedding).
    pub fn new(broker_url: &str, ds_dir: impl Into<PathBuf>) -> Self {
        let mut config = Config::defaults();
        config.broker_url = broker_url.to_string();
        config.ds_dir = ds_dir.into();
        config.common.ops_addr = OpsAddr::Off;
        config
    }

    /// SAVE_AFTER_NUM with values below 1 raised to 1.
    pub fn save_after(&self) -> u64 {
        u64::try_from(self.save_after_num).unwrap_or(0).max(1)
    }

    /// STOP_AFTER_NUM as a limit (`None` = never).
    pub fn stop_after(&self) -> Option<u64> {
        u64::try_from(self.stop_after_num).ok()
    }

    /// How long failures of the disk are retried (`None` = forever).
    pub fn give_up_after(&self) -> Option<Duration> {
        (self.give_up_secs > 0).then(|| Duration::from_secs(self.give_up_secs))
    }

    pub fn commit_interval(&self) -> Duration {
        Duration::from_millis(self.commit_interval_ms.max(1))
    }

    pub fn broker(&self) -> Result<BrokerConfig, BrokerError> {
        let mut broker = BrokerConfig::parse(&self.broker_url)?;
        broker.stream = self.stream.clone();
        broker.exchange = self.exchange.clone();
        broker.routing_key = self.routing_key.clone();
        broker.group = self.group.clone();
        if let Some(consumer) = &self.consumer {
            broker.consumer = consumer.clone();
        }
        broker.dead_letter = self.dead_letter.clone();
        broker.prefetch = self.prefetch.max(1);
        broker.claim_idle = Duration::from_millis(self.claim_idle_ms);
        Ok(broker)
    }

    /// Broker settings of the flow stream/queue (same group, consumer and dead-letter stream).
    pub fn flow_broker(&self) -> Result<BrokerConfig, BrokerError> {
        Ok(netpipe_runtime::broker::flow_batch::flow_broker(
            self.broker()?,
            self.flow_stream.as_deref(),
        ))
    }

    /// Dataset settings of the flow dataset: `{DS_NAME}-flows`, never OUTPUT_CSV.
    pub fn flow_dataset(&self) -> DatasetConfig {
        let mut dataset = DatasetConfig::new(&self.ds_dir, format!("{}-flows", self.ds_name));
        dataset.instance = self.instance_id.clone();
        dataset
    }

    /// Broker settings of the rows stream, if one is configured.
    /// Without ROWS_BROKER_URL the rows go to the packet broker (a `kombu+redis://` one's
    /// Redis Streams: row batches are not the original's messages).
    pub fn rows_broker(&self) -> Result<Option<BrokerConfig>, BrokerError> {
        let Some(stream) = self.rows_stream.as_ref() else {
            return Ok(None);
        };
        let url = match &self.rows_broker_url {
            Some(url) => BrokerUrl::parse(url)?,
            None => BrokerUrl::parse(&self.broker_url)?.without_kombu(),
        };
        let mut broker = BrokerConfig::new(url);
        broker.stream = stream.clone();
        broker.exchange = stream.clone();
        broker.routing_key = stream.clone();
        Ok(Some(broker))
    }

    /// Dataset settings of one schema. With several schemas each gets `-{schema}` after the
    /// dataset name (and before the extension of OUTPUT_CSV), so their files never collide.
    pub fn dataset(&self, schema: &str) -> DatasetConfig {
        let several = self.schemas.len() > 1;
        let name = if several {
            format!("{}-{schema}", self.ds_name)
        } else {
            self.ds_name.clone()
        };
        let mut dataset = DatasetConfig::new(&self.ds_dir, name);
        dataset.instance = self.instance_id.clone();
        dataset.output_csv = self.output_csv.as_ref().map(|path| {
            if !several {
                return path.clone();
            }
            let stem = path
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            let file = match path.extension() {
                Some(ext) => format!("{stem}-{schema}.{}", ext.to_string_lossy()),
                None => format!("{stem}-{schema}"),
            };
            path.with_file_name(file)
        });
        dataset.rotate = RotatePolicy {
            rows: self.rotate_rows.filter(|&n| n > 0),
            bytes: self.rotate_bytes.filter(|&n| n > 0),
            age: self.rotate_secs.filter(|&n| n > 0).map(Duration::from_secs),
        };
        dataset
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn original_env_semantics() {
        let mut config = Config::new("memory://x", "/tmp");
        assert_eq!(config.save_after(), 100);
        assert_eq!(config.stop_after(), None);
        config.save_after_num = 0;
        assert_eq!(config.save_after(), 1);
        config.save_after_num = -5;
        assert_eq!(config.save_after(), 1);
        config.stop_after_num = 10;
        assert_eq!(config.stop_after(), Some(10));
        assert_eq!(config.ds_name, "netdata");
        assert_eq!(config.schemas, vec!["netpipe"]);
    }

    #[test]
    fn several_schemas_get_separate_names() {
        let mut config = Config::new("memory://x", "/d");
        config.schemas = vec!["netpipe".into(), "antinex-v1".into()];
        config.output_csv = Some(PathBuf::from("/o/out.csv"));
        let d = config.dataset("antinex-v1");
        assert_eq!(d.name, "netdata-antinex-v1");
        assert_eq!(d.output_csv, Some(PathBuf::from("/o/out-antinex-v1.csv")));
    }
}

//! Command line and environment. Every flag has an environment variable; the original's names
//! (CAP_DEVICE, NETWORK_FILTER, SOURCE_HOST, FORWARD_*) keep working.

use std::path::PathBuf;
use std::time::Duration;

use clap::ValueEnum;
use netpipe_runtime::broker::{BrokerConfig, BrokerError};
use netpipe_runtime::flags::{MAX_MS, MAX_SECS, usize_in};
use netpipe_runtime::service::env::{self, Alias, Deprecations};
use netpipe_runtime::service::{CommonArgs, OpsAddr, parse_bool};

/// Where /health, /ready and /metrics listen unless OPS_ADDR says otherwise.
pub const DEFAULT_OPS_ADDR: &str = "0.0.0.0:9101";

/// Names this service read before the one naming scheme (docs/operations.md); they still
/// work, with one deprecation warning each.
pub const ENV_ALIASES: &[Alias] = &[
    Alias {
        old: "CAP_FLOWS",
        new: "FLOWS",
    },
    Alias {
        old: "CAP_FLOW_STREAM",
        new: "FLOW_STREAM",
    },
];

/// Largest --batch-size: one message of a million frames is already hundreds of MB.
const MAX_BATCH_SIZE: u64 = 1_000_000;
const MAX_IN_FLIGHT: u64 = 1024;
const MAX_BUFFER_FRAMES: u64 = 100_000_000;

/// The original capture tools' default filters (original.md §2.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Profile {
    Arp,
    Icmp,
    Ssh,
    Tcp,
    Telnet,
    Udp,
    /// No filter: everything.
    All,
}

impl Profile {
    /// The BPF filter of the original tool (empty = capture everything).
    pub fn filter(self) -> &'static str {
        match self {
            Profile::Arp => "arp",
            Profile::Icmp => "icmp",
            Profile::Ssh => "tcp and ( port 22 )",
            Profile::Tcp => "tcp and ( port 80 or port 443 or port 8010 or port 8443 )",
            Profile::Telnet => "tcp and ( port 23 )",
            Profile::Udp => "udp",
            Profile::All => "",
        }
    }
}

/// What to do with a new packet when the bounded buffer is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Overflow {
    /// Drop the new packet and count it (never stall libpcap). Default for live capture.
    Drop,
    /// Wait for room (back-pressure). Default for file replay.
    Wait,
}

/// capture-agent: packets (live interface or pcap/pcapng file) -> decoded frames -> broker.
#[derive(Debug, Clone, clap::Parser)]
#[command(name = "capture-agent", version, about,
    mut_arg("ops_addr", |arg| arg.default_value(DEFAULT_OPS_ADDR)))]
pub struct Config {
    #[command(flatten)]
    pub common: CommonArgs,

    /// Interface to capture on (ignored with --read).
    #[arg(long, short = 'i', env = "CAP_DEVICE", default_value = "lo")]
    pub interface: String,

    /// BPF filter; replaces the --profile filter when set.
    #[arg(long, env = "NETWORK_FILTER")]
    pub filter: Option<String>,

    /// One of the original tools' default filters.
    #[arg(long, env = "CAP_PROFILE", value_enum, default_value = "all")]
    pub profile: Profile,

    /// Bytes kept per packet.
    #[arg(long, env = "CAP_SNAPLEN", default_value_t = 65535,
        value_parser = clap::value_parser!(i32).range(1..=262_144))]
    pub snaplen: i32,

    /// Promiscuous mode (needs CAP_NET_ADMIN).
    #[arg(
        long,
        env = "CAP_PROMISC", value_parser = parse_bool,
        default_value_t = false,
        overrides_with = "no_promisc"
    )]
    pub promisc: bool,

    /// Turn promiscuous mode off (the default).
    #[arg(long = "no-promisc", overrides_with = "promisc")]
    pub no_promisc: bool,

    /// Kernel capture buffer in bytes (0 = libpcap's default).
    #[arg(long, env = "CAP_BUFFER_SIZE", default_value_t = 16 << 20,
        value_parser = clap::value_parser!(i32).range(0..))]
    pub buffer_size: i32,

    /// Replay a pcap/pcapng file instead of capturing live.
    #[arg(long, short = 'r', env = "CAP_READ")]
    pub read: Option<PathBuf>,

    /// Replay at the recorded pace times this factor (default: as fast as possible).
    #[arg(long, env = "CAP_SPEED")]
    pub speed: Option<f64>,

    /// With --read: replay the file this many times (0 = until SIGTERM), like tcpreplay
    /// --loop. Sequence numbers go on counting, so every replayed packet is a new row.
    #[arg(long = "loop", env = "CAP_LOOP", default_value_t = 1)]
    pub loops: u64,

    /// Stop after this many packets (like tcpdump -c). A replay then ends as at the end of
    /// the file; a live capture publishes what it has and exits.
    #[arg(long, env = "CAP_COUNT")]
    pub count: Option<u64>,

    /// With --read: keep the replay's progress in this file; a replay killed and restarted
    /// with the same file, --loop and agent continues after the last packet the broker
    /// confirmed, with the same sequence numbers, so each packet is recorded once.
    #[arg(long, env = "CAP_RESUME")]
    pub resume: Option<PathBuf>,

    /// With --read: exit once the file is published (otherwise keep serving /metrics until
    /// SIGTERM).
    #[arg(long, env = "CAP_EXIT_AT_EOF", value_parser = parse_bool, default_value_t = false)]
    pub exit_at_eof: bool,

    /// Broker URL: redis:// (Redis Streams), amqp:// (RabbitMQ), kombu+redis:// (the
    /// original's message format), memory://NAME (in-process).
    #[arg(
        long,
        env = "FORWARD_BROKER_URL",
        default_value = "redis://127.0.0.1:6379"
    )]
    pub broker_url: String,

    /// Redis stream / AMQP queue / kombu list.
    #[arg(long, env = "FORWARD_QUEUE", default_value = "NEW_PACKETS")]
    pub stream: String,

    /// AMQP exchange.
    #[arg(long, env = "FORWARD_EXCHANGE", default_value = "NEW_PACKETS")]
    pub exchange: String,

    /// AMQP routing key.
    #[arg(long, env = "FORWARD_ROUTING_KEY", default_value = "NEW_PACKETS")]
    pub routing_key: String,

    /// Opt-in approximate cap on the Redis stream length in messages (0 = no cap, the default).
    /// A cap deletes entries no processor has read yet; each one is counted
    /// (capture_agent_stream_trimmed_unread_total). Without it the processor trims what it has
    /// acknowledged and --max-backlog bounds the stream.
    #[arg(long, env = "FORWARD_MAX_LEN", default_value_t = 0)]
    pub max_len: usize,

    /// Most messages the broker may hold unacknowledged (Redis Streams XLEN; 0 = no bound). At
    /// the bound a replay (--overflow wait) waits, a live capture drops batches and counts them
    /// (dropped{reason="broker_backlog"}). A message is one batch (up to --batch-size frames).
    #[arg(long, env = "FORWARD_MAX_BACKLOG", default_value_t = 10_000)]
    pub max_backlog: u64,

    /// Frames per published message.
    #[arg(long, env = "CAP_BATCH_SIZE", default_value_t = 256,
        value_parser = usize_in(1, MAX_BATCH_SIZE))]
    pub batch_size: usize,

    /// How long a partial batch waits for more frames.
    #[arg(long, env = "CAP_BATCH_DELAY_MS", default_value_t = 20,
        value_parser = clap::value_parser!(u64).range(0..=MAX_MS))]
    pub batch_delay_ms: u64,

    /// Batches encoded and published concurrently (each one a message, or one per packet for
    /// kombu); more overlaps JSON encoding with broker round trips.
    #[arg(long, env = "CAP_MAX_IN_FLIGHT", default_value_t = 4,
        value_parser = usize_in(1, MAX_IN_FLIGHT))]
    pub max_in_flight: usize,

    /// Frames the bounded buffer between capture and broker holds (with --overflow wait, at
    /// most two batches per --max-in-flight: waiting needs no more).
    #[arg(long, env = "CAP_BUFFER_FRAMES", default_value_t = 100_000,
        value_parser = usize_in(1, MAX_BUFFER_FRAMES))]
    pub buffer_frames: usize,

    /// What to do when the buffer is full (default: drop for live, wait for --read).
    #[arg(long, env = "CAP_OVERFLOW", value_enum)]
    pub overflow: Option<Overflow>,

    /// Agent id in every frame (default: the host name).
    #[arg(long, env = "SOURCE_HOST")]
    pub agent_id: Option<String>,

    /// Payload bytes copied into each frame (0 = none). Default: 64, or the whole payload for a
    /// kombu+redis:// broker (the original's messages carry it all).
    #[arg(long, env = "CAP_PAYLOAD_BYTES", value_parser = usize_in(0, netpipe_packet::decode::MAX_PAYLOAD_BYTES as u64))]
    pub payload_bytes: Option<usize>,

    /// Seconds between the in-band loss reports sent on the stream (captured and dropped
    /// packets by reason, for the processor's manifest); one more goes at the end of a run.
    /// 0 = none. Not sent to kombu+redis:// (the original's consumers would not know them).
    #[arg(long, env = "CAP_STATS_MESSAGE_SECS", default_value_t = 5)]
    pub stats_message_secs: u64,

    /// Seconds between summary log lines.
    #[arg(long, env = "STATS_INTERVAL_SECS", default_value_t = 30,
        value_parser = clap::value_parser!(u64).range(1..=MAX_SECS))]
    pub stats_interval_secs: u64,

    /// On shutdown, how long to keep retrying the broker for what is still buffered.
    #[arg(long, env = "SHUTDOWN_GRACE_SECS", default_value_t = 10,
        value_parser = clap::value_parser!(u64).range(0..=MAX_SECS))]
    pub shutdown_grace_secs: u64,

    /// With --read: give up (exit non-zero) once the broker has been unreachable this many
    /// seconds in a row (0 = keep retrying until SIGTERM). Live capture always keeps retrying.
    #[arg(long, env = "BROKER_WAIT_SECS", default_value_t = 60,
        value_parser = clap::value_parser!(u64).range(0..=MAX_SECS))]
    pub broker_wait_secs: u64,

    /// Longest wait between reconnection attempts (the backoff doubles up to this).
    #[arg(long, env = "RECONNECT_MAX_MS", default_value_t = 2000,
        value_parser = clap::value_parser!(u64).range(1..=MAX_MS))]
    pub reconnect_max_ms: u64,

    /// Also meter bidirectional flows at the edge and publish the finished flow records on
    /// their own stream/queue (--flow-stream; docs/flows.md).
    #[arg(long, env = "FLOWS", value_parser = parse_bool, default_value_t = false)]
    pub flows: bool,

    /// Flow idle timeout in seconds (with --flows).
    #[arg(long, env = "FLOW_IDLE_TIMEOUT", default_value_t = 120, value_parser = clap::value_parser!(u32).range(1..))]
    pub flow_idle_timeout: u32,

    /// Flow active timeout in seconds (with --flows).
    #[arg(long, env = "FLOW_ACTIVE_TIMEOUT", default_value_t = 1800, value_parser = clap::value_parser!(u32).range(1..))]
    pub flow_active_timeout: u32,

    /// Number of first packets in the splt_* arrays (with --flows; padded with -1).
    #[arg(long, env = "FLOW_SPLT", default_value_t = 10, value_parser = clap::value_parser!(u16).range(0..=1000))]
    pub flow_splt: u16,

    /// Flow table bound (with --flows); when full, the least recently seen flow is emitted as
    /// `evicted`.
    #[arg(long, env = "FLOW_MAX_FLOWS", default_value_t = 1_000_000, value_parser = clap::value_parser!(u64).range(1..=100_000_000))]
    pub flow_max_flows: u64,

    /// End TCP flows at RST, or at the last ACK after FIN both ways (`tcp_end`; with --flows;
    /// off like NFStream). Same flag and variable as `netpipe flows`.
    #[arg(long, env = "FLOW_TCP_END", value_parser = parse_bool, default_value_t = false)]
    pub flow_tcp_end: bool,

    /// Stream/queue of the flow records (default: the frame stream's name + `-flows`).
    #[arg(long, env = "FLOW_STREAM")]
    pub flow_stream: Option<String>,
}

impl Config {
    /// From the command line and the environment (old names honoured, see [`ENV_ALIASES`]).
    pub fn from_env_and_args() -> (Self, Deprecations) {
        env::parse(ENV_ALIASES)
    }

    /// The defaults, with no environment variable read: the start of an embedded agent.
    pub fn defaults() -> Self {
        env::defaults()
    }

    /// The configured filter before the broker exclusion: --filter, else the profile's.
    pub fn base_filter(&self) -> String {
        match &self.filter {
            Some(filter) if !filter.trim().is_empty() => filter.trim().to_string(),
            _ => self.profile.filter().to_string(),
        }
    }

    /// The payload policy (issue 18): an explicit setting, else the whole payload for the
    /// original's kombu format, else 64 bytes.
    pub fn payload_bytes(&self) -> usize {
        let original_format = self.broker_url.to_ascii_lowercase().starts_with("kombu+");
        netpipe_packet::decode::payload_bytes_for(self.payload_bytes, original_format)
    }

    pub fn overflow(&self) -> Overflow {
        self.overflow.unwrap_or(if self.read.is_some() {
            Overflow::Wait
        } else {
            Overflow::Drop
        })
    }

    /// Frames the buffer holds. With `Overflow::Wait` (the default for --read) the capture
    /// blocks when the buffer is full, so frames queued beyond what the publisher can take next
    /// gain nothing and cost memory (a replay filled 100,000 frames, ~70 MB, ahead of it).
    pub fn buffer_capacity(&self) -> usize {
        let capacity = match self.overflow() {
            Overflow::Wait => self
                .buffer_frames
                .min(2 * self.max_in_flight.max(1) * self.batch_size.max(1)),
            Overflow::Drop => self.buffer_frames,
        };
        capacity.max(1)
    }

    pub fn promiscuous(&self) -> bool {
        self.promisc && !self.no_promisc
    }

    pub fn agent_id(&self) -> String {
        match &self.agent_id {
            Some(id) if !id.trim().is_empty() => id.trim().to_string(),
            _ => host_name(),
        }
    }

    pub fn broker(&self) -> Result<BrokerConfig, BrokerError> {
        let mut broker = BrokerConfig::parse(&self.broker_url)?;
        broker.stream = self.stream.clone();
        broker.exchange = self.exchange.clone();
        broker.routing_key = self.routing_key.clone();
        broker.max_len = (self.max_len > 0).then_some(self.max_len);
        Ok(broker)
    }

    /// Flow meter settings (with --flows).
    pub fn flow_config(&self) -> netpipe_packet::flow::FlowConfig {
        netpipe_packet::flow::FlowConfig {
            idle_timeout_ms: i64::from(self.flow_idle_timeout) * 1000,
            active_timeout_ms: i64::from(self.flow_active_timeout) * 1000,
            splt: usize::from(self.flow_splt),
            max_flows: usize::try_from(self.flow_max_flows).unwrap_or(usize::MAX),
            tcp_end: self.flow_tcp_end,
            agent: std::sync::Arc::from(self.agent_id().as_str()),
        }
    }

    /// Broker settings of the flow stream/queue.
    pub fn flow_broker(&self) -> Result<BrokerConfig, BrokerError> {
        Ok(netpipe_runtime::broker::flow_batch::flow_broker(
            self.broker()?,
            self.flow_stream.as_deref(),
        ))
    }

    /// The backlog bound, if any.
    pub fn max_backlog(&self) -> Option<u64> {
        (self.max_backlog > 0).then_some(self.max_backlog)
    }

    pub fn batch_delay(&self) -> Duration {
        Duration::from_millis(self.batch_delay_ms)
    }

    /// A configuration for tests: replay `file` into `broker_url`, ops on an ephemeral port.
    pub fn for_replay(file: impl Into<PathBuf>, broker_url: &str, stream: &str) -> Self {
        let mut config = Config::defaults();
        config.read = Some(file.into());
        config.exit_at_eof = true;
        config.broker_url = broker_url.to_string();
        config.stream = stream.to_string();
        config.common.ops_addr = OpsAddr::ephemeral();
        config
    }
}

/// The kernel's host name, or "localdev" (the original's SOURCE_HOST default).
pub fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok().filter(|s| !s.is_empty()))
        .unwrap_or_else(|| "localdev".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[test]
    fn profiles_give_the_original_filters_and_filter_wins() {
        let config = Config::parse_from(["capture-agent", "--profile", "tcp"]);
        assert_eq!(
            config.base_filter(),
            "tcp and ( port 80 or port 443 or port 8010 or port 8443 )"
        );
        let config = Config::parse_from(["capture-agent", "--profile", "ssh", "--filter", "udp"]);
        assert_eq!(config.base_filter(), "udp");
        assert_eq!(Config::parse_from(["capture-agent"]).base_filter(), "");
    }

    #[test]
    fn payload_policy_keeps_everything_for_the_original_format_only() {
        let parse = |args: &[&str]| Config::parse_from([&["capture-agent"], args].concat());
        assert_eq!(parse(&[]).payload_bytes(), 64);
        let kombu = ["--broker-url", "kombu+redis://127.0.0.1:6379/15"];
        assert_eq!(
            parse(&kombu).payload_bytes(),
            netpipe_packet::decode::FULL_PAYLOAD
        );
        assert_eq!(
            parse(&[&kombu[..], &["--payload-bytes", "0"]].concat()).payload_bytes(),
            0
        );
    }

    #[test]
    fn flow_tcp_end_reaches_the_flow_engine_and_is_off_by_default() {
        let parse = |args: &[&str]| Config::parse_from([&["capture-agent"], args].concat());
        assert!(!parse(&["--flows"]).flow_config().tcp_end);
        assert!(parse(&["--flows", "--flow-tcp-end"]).flow_config().tcp_end);
    }

    #[test]
    fn overflow_defaults_follow_the_source() {
        assert_eq!(
            Config::parse_from(["capture-agent"]).overflow(),
            Overflow::Drop
        );
        assert_eq!(
            Config::parse_from(["capture-agent", "--read", "x.pcap"]).overflow(),
            Overflow::Wait
        );
        let config = Config::parse_from(["capture-agent", "--promisc", "--no-promisc"]);
        assert_eq!(config.buffer_capacity(), 100_000);
        let replay = Config::parse_from(["capture-agent", "--read", "x.pcap"]);
        assert_eq!(replay.buffer_capacity(), 2 * 4 * 256);
        let small = Config::parse_from(["capture-agent", "--read", "x", "--buffer-frames", "10"]);
        assert_eq!(small.buffer_capacity(), 10);
        assert!(!config.promiscuous());
    }
}

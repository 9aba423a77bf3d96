//! `netpipe run`: the embedded pipeline. The capture-agent and processor libraries run in one
//! process, joined by the `memory://` broker (a bounded in-process channel): the same code as the
//! distributed mode, no broker needed.
//!
//! Shutdown: with `--read` the agent stops after the last packet; on Ctrl-C / SIGTERM it stops
//! capturing and publishes what it buffered. Either way the channel is then closed, the processor
//! drains it, writes a final snapshot and exits. A second signal stops the processor at once
//! (it still commits what it holds).
//!
//! The embedded services' configurations are built as structs from `netpipe run`'s own flags
//! on top of their env-free defaults: a service variable exported in the shell
//! (PROCESSOR_ROWS_STREAM, CAP_BATCH_SIZE, ...) cannot change the embedded pipeline.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use netpipe_runtime::service::env::Alias;
use netpipe_runtime::service::{OpsAddr, parse_bool};
use tokio_util::sync::CancellationToken;

/// Names `netpipe run` read before the one naming scheme (docs/operations.md); they still
/// work, with one deprecation warning each.
pub const ENV_ALIASES: &[Alias] = &[Alias {
    old: "RUN_FLOWS",
    new: "FLOWS",
}];

#[derive(Debug, Clone, Args)]
pub struct RunArgs {
    /// Capture file to replay (pcap or pcapng); the run ends after its last packet.
    #[arg(long, short = 'r', conflicts_with = "interface")]
    pub read: Option<PathBuf>,
    /// Interface to capture on live, until Ctrl-C (needs CAP_NET_RAW).
    #[arg(long, short = 'i', env = "CAP_DEVICE")]
    pub interface: Option<String>,
    /// BPF filter.
    #[arg(long, short = 'f', env = "NETWORK_FILTER")]
    pub filter: Option<String>,
    /// Directory for the dataset files.
    #[arg(long, env = "DS_DIR", default_value = "./datasets")]
    pub out: PathBuf,
    /// Dataset name: files are `{DS_DIR}/{DS_NAME}-{YYYY-MM-DD-HH-MM-SS}.csv`.
    #[arg(long, env = "DS_NAME", default_value = "netdata")]
    pub ds_name: String,
    /// Full path of the CSV file instead of the generated name.
    #[arg(long, env = "OUTPUT_CSV")]
    pub output_csv: Option<PathBuf>,
    /// Append + fsync a snapshot every N packets.
    #[arg(
        long,
        env = "SAVE_AFTER_NUM",
        default_value_t = 100,
        allow_negative_numbers = true
    )]
    pub save_after_num: i64,
    /// Column schema(s): netpipe, antinex-v1 (comma-separated for both, each into its own file).
    #[arg(long, env = "NETPIPE_SCHEMA", default_value = "netpipe")]
    pub schema: String,
    /// Payload bytes kept per packet as hex (0 = payload capture off). Default: 64, or the
    /// whole payload when the schemas include antinex-v1 (the original kept it all).
    #[arg(long, env = "CAP_PAYLOAD_BYTES",
        value_parser = netpipe_runtime::flags::usize_in(0, netpipe_packet::decode::MAX_PAYLOAD_BYTES as u64))]
    pub payload_bytes: Option<usize>,
    /// Agent id written into rows (default: the host name).
    #[arg(long, env = "SOURCE_HOST")]
    pub agent_id: Option<String>,
    /// Address for /health, /ready and /metrics of the processor stage: host:port, or `off`
    /// (or empty) for none.
    #[arg(long, env = "OPS_ADDR", default_value = "off")]
    pub ops_addr: OpsAddr,
    /// Seconds between progress lines on stderr during a live capture.
    #[arg(long, env = "STATS_INTERVAL_SECS", default_value_t = 10,
        value_parser = clap::value_parser!(u64).range(1..=netpipe_runtime::flags::MAX_SECS))]
    pub stats_interval_secs: u64,
    /// Also write a flow dataset ({DS_NAME}-flows-*.csv, docs/flows.md) beside the packet one.
    #[arg(long, env = "FLOWS", value_parser = parse_bool, default_value_t = false)]
    pub flows: bool,
    /// Flow idle timeout in seconds (with --flows).
    #[arg(long, env = "FLOW_IDLE_TIMEOUT", default_value_t = 120, value_parser = clap::value_parser!(u32).range(1..))]
    pub flow_idle_timeout: u32,
    /// Flow active timeout in seconds (with --flows).
    #[arg(long, env = "FLOW_ACTIVE_TIMEOUT", default_value_t = 1800, value_parser = clap::value_parser!(u32).range(1..))]
    pub flow_active_timeout: u32,
}

pub fn run(args: &RunArgs) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(run_async(args, CancellationToken::new()))
}

/// How long the embedded processor retries an unusable `--out` (read-only, full) before the
/// run fails: long enough for a passing hiccup, short enough that a user is not left waiting.
const GIVE_UP_SECS: u64 = 5;

/// The pipeline; `shutdown` (also cancelled by the first SIGINT/SIGTERM) stops the capture.
///
/// Start-up order makes bad input fail fast with nothing written: both configurations are
/// checked, then the capture is opened (missing file, bad filter, no permission), then the
/// output directory is created and probed, and only then does the processor create files.
pub async fn run_async(args: &RunArgs, shutdown: CancellationToken) -> anyhow::Result<ExitCode> {
    if args.read.is_none() && args.interface.is_none() {
        anyhow::bail!("netpipe run needs --read FILE or --interface IF");
    }
    if args.stats_interval_secs == 0 {
        anyhow::bail!("--stats-interval-secs must be at least 1");
    }
    let channel = format!("netpipe-run-{}", std::process::id());
    let url = format!("memory://{channel}");

    let processor_config = processor_config(args, &url);
    let agent_config = agent_config(args, &url);
    // What the processor would refuse, refused before anything (even --out) is created.
    for name in args
        .schema
        .split(',')
        .map(str::trim)
        .filter(|n| !n.is_empty())
    {
        if netpipe_packet::schema::by_name(name).is_none() {
            anyhow::bail!("unknown --schema {name:?} (known: netpipe, antinex-v1)");
        }
    }

    let agent = match capture_agent::start(agent_config, shutdown.clone()).await {
        Ok(agent) => agent,
        Err(error) => {
            netpipe_runtime::broker::forget_memory(&channel);
            return Err(error.into());
        }
    };
    let out_dir = processor_config.dataset("netpipe").output_dir();
    if let Err(error) = prepare_output_dir(&out_dir) {
        shutdown.cancel();
        let _ = agent.wait().await;
        netpipe_runtime::broker::forget_memory(&channel);
        return Err(error);
    }

    let flows = if args.flows {
        match crate::run_flows::start(flows_source(args), shutdown.clone()) {
            Ok(flows) => Some(flows),
            Err(error) => {
                shutdown.cancel();
                let _ = agent.wait().await;
                netpipe_runtime::broker::forget_memory(&channel);
                return Err(error);
            }
        }
    } else {
        None
    };

    // Signals: the first stops capture (the agent); a second one also stops the processor.
    let processor_stop = CancellationToken::new();
    let signals = tokio::spawn(watch_signals(shutdown.clone(), processor_stop.clone()));
    let stats = (args.interface.is_some()).then(|| {
        tokio::spawn(print_stats(
            agent.metrics.clone(),
            // Capped: an interval past the end of time would overflow the clock.
            Duration::from_secs(args.stats_interval_secs.min(86_400)),
        ))
    });

    let mut processor = tokio::spawn(processor::run(processor_config, processor_stop.clone()));
    let agent_wait = agent.wait();
    tokio::pin!(agent_wait);
    // Whichever side fails first stops the other: a processor that cannot write must not
    // leave the capture running (and the user waiting) with nowhere to put the rows.
    let (agent_result, processor_result) = tokio::select! {
        agent_result = &mut agent_wait => {
            if agent_result.is_err() {
                processor_stop.cancel();
            }
            // Everything captured is published: close the channel so the processor drains it.
            netpipe_runtime::broker::forget_memory(&channel);
            (agent_result, (&mut processor).await)
        }
        processor_result = &mut processor => {
            shutdown.cancel();
            netpipe_runtime::broker::forget_memory(&channel);
            // The processor is gone: nothing will read the channel, so do not wait for room.
            let agent_result = tokio::time::timeout(Duration::from_secs(GIVE_UP_SECS), agent_wait).await;
            let agent_result = agent_result.unwrap_or_else(|_| {
                Err(capture_agent::AgentError::Thread("capture did not stop".into()))
            });
            (agent_result, processor_result)
        }
    };
    signals.abort();
    if let Some(stats) = stats {
        stats.abort();
    }
    let processor_result = processor_result.context("the processor task failed")?;
    if agent_result.is_err() || processor_result.is_err() {
        // A live flow capture ends with the run, whichever side failed.
        shutdown.cancel();
    }
    let flows_summary = match flows {
        Some(handle) => Some(
            tokio::task::spawn_blocking(move || handle.join())
                .await
                .context("the flow task failed")?
                .map_err(|_| anyhow::anyhow!("the flow thread panicked"))?
                .context("flows")?,
        ),
        None => None,
    };

    // The processor's error explains an agent that stopped because of it: report it first.
    let processor_summary = processor_result?;
    let agent_summary = agent_result?;
    eprintln!("{}", summary_line(&agent_summary, &processor_summary));
    if let Some(f) = &flows_summary {
        eprintln!(
            "netpipe run: {} flows ({} packets in flows, {} outside, {} dropped) in {}",
            f.flows,
            f.packets_in_flows,
            f.skipped,
            f.dropped,
            f.file.display()
        );
    }
    let lost = agent_summary.dropped_total();
    if lost > 0 {
        let reasons: Vec<String> = agent_summary
            .dropped
            .iter()
            .filter(|(_, n)| **n > 0)
            .map(|(r, n)| format!("{r}={n}"))
            .collect();
        eprintln!(
            "netpipe run: {lost} packets lost before processing: {}",
            reasons.join(" ")
        );
        return Ok(ExitCode::from(EXIT_LOST));
    }
    Ok(ExitCode::SUCCESS)
}

/// Exit code of a run that finished but lost packets on the way (counted, never silent).
pub const EXIT_LOST: u8 = 3;

/// Creates `--out` and proves a file can be created in it, so a read-only or missing parent
/// fails at once with the path and the cause.
fn prepare_output_dir(dir: &std::path::Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir)
        .with_context(|| format!("cannot create output directory {}", dir.display()))?;
    let probe = dir.join(format!(".netpipe-write-probe-{}", std::process::id()));
    std::fs::File::create(&probe)
        .with_context(|| format!("cannot write in output directory {}", dir.display()))?;
    let _ = std::fs::remove_file(&probe);
    Ok(())
}

fn summary_line(agent: &capture_agent::Summary, processor: &processor::Summary) -> String {
    let rows: Vec<String> = processor
        .rows_written
        .iter()
        .map(|(schema, n)| format!("{n} {schema} rows"))
        .collect();
    let files: Vec<String> = processor
        .files
        .iter()
        .map(|f| f.display().to_string())
        .collect();
    format!(
        "netpipe run: {} packets captured, {} published; {}; {} duplicates dropped, {} dead-lettered; files: {}",
        agent.packets_captured,
        agent.frames_published,
        rows.join(", "),
        processor.duplicates,
        processor.dead_letters,
        files.join(" "),
    )
}

/// One line every `interval` during a live capture, so a long run shows it is alive.
async fn print_stats(
    metrics: std::sync::Arc<capture_agent::metrics::AgentMetrics>,
    interval: Duration,
) {
    let mut tick = tokio::time::interval(interval);
    tick.tick().await;
    let mut last = 0u64;
    loop {
        tick.tick().await;
        let captured = metrics.packets_captured.get();
        let published = metrics.frames_published.get();
        let dropped: u64 = capture_agent::metrics::drop_reason::ALL
            .iter()
            .map(|r| metrics.dropped(r))
            .sum();
        let rate = (captured - last.min(captured)) as f64 / interval.as_secs_f64();
        eprintln!(
            "netpipe run: {captured} packets captured ({rate:.0}/s), {published} published, {dropped} dropped"
        );
        last = captured;
    }
}

async fn watch_signals(first: CancellationToken, second: CancellationToken) {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        return;
    };
    for token in [first, second] {
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
        token.cancel();
    }
}

fn flows_source(args: &RunArgs) -> crate::run_flows::FlowsSource {
    let agent = args
        .agent_id
        .clone()
        .unwrap_or_else(capture_agent::config::host_name);
    crate::run_flows::FlowsSource {
        read: args.read.clone(),
        interface: args.interface.clone(),
        filter: args.filter.clone(),
        dir: args.out.clone(),
        ds_name: args.ds_name.clone(),
        commit_every: u64::try_from(args.save_after_num).unwrap_or(1).max(1),
        config: netpipe_packet::flow::FlowConfig {
            idle_timeout_ms: i64::from(args.flow_idle_timeout) * 1000,
            active_timeout_ms: i64::from(args.flow_active_timeout) * 1000,
            agent: std::sync::Arc::from(agent.as_str()),
            ..netpipe_packet::flow::FlowConfig::default()
        },
        agent,
    }
}

/// The embedded processor: its env-free defaults, the memory:// channel, and `netpipe run`'s
/// own flags.
fn processor_config(args: &RunArgs, url: &str) -> processor::Config {
    let mut config = processor::Config::new(url, &args.out);
    config.ds_name = args.ds_name.clone();
    config.save_after_num = args.save_after_num;
    config.schemas = args
        .schema
        .split(',')
        .map(|name| name.trim().to_string())
        .filter(|name| !name.is_empty())
        .collect();
    config.common.ops_addr = args.ops_addr.clone();
    config.give_up_secs = GIVE_UP_SECS;
    config.output_csv = args.output_csv.clone();
    config
}

/// The payload policy of `netpipe run`: the whole payload for antinex-v1 rows (issue 18).
fn run_payload_bytes(args: &RunArgs) -> usize {
    let antinex = args.schema.split(',').any(|s| s.trim() == "antinex-v1");
    netpipe_packet::decode::payload_bytes_for(args.payload_bytes, antinex)
}

/// The embedded agent: its env-free defaults, the memory:// channel, no ops server of its own
/// (the processor stage has `--ops-addr`), and `netpipe run`'s own flags.
fn agent_config(args: &RunArgs, url: &str) -> capture_agent::Config {
    let mut config = capture_agent::Config::defaults();
    config.broker_url = url.to_string();
    config.common.ops_addr = OpsAddr::Off;
    config.payload_bytes = Some(run_payload_bytes(args));
    // One batch at a time: the dataset keeps capture order (concurrent publishes may
    // reorder batches, and an in-process channel gains nothing from them).
    config.max_in_flight = 1;
    match (&args.read, &args.interface) {
        (Some(file), _) => {
            config.read = Some(file.clone());
            config.exit_at_eof = true;
        }
        (None, Some(interface)) => config.interface = interface.clone(),
        (None, None) => {}
    }
    config.filter = args.filter.clone();
    config.agent_id = args.agent_id.clone();
    config
}

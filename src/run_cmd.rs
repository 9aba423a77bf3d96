//! `netpipe run`: the embedded pipeline. The capture-agent and processor libraries run in one
//! process, joined by the `memory://` broker (a bounded in-process channel): the same code as the
//! distributed mode, no broker needed.
//!
//! Shutdown: with `--read` the agent stops after the last packet; on Ctrl-C / SIGTERM it stops
//! capturing and publishes what it buffered. Either way the channel is then closed, the processor
//! drains it, writes a final snapshot and exits. A second signal stops the processor at once
//! (it still commits what it holds).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;
use tokio_util::sync::CancellationToken;

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
    #[arg(long, env = "CAP_PAYLOAD_BYTES")]
    pub payload_bytes: Option<usize>,
    /// Agent id written into rows (default: the host name).
    #[arg(long, env = "SOURCE_HOST")]
    pub agent_id: Option<String>,
    /// Address for /health, /ready and /metrics of the processor stage (empty = none).
    #[arg(long, env = "OPS_ADDR", default_value = "")]
    pub ops_addr: String,
    /// Also write a flow dataset ({DS_NAME}-flows-*.csv, docs/flows.md) beside the packet one.
    #[arg(long, env = "RUN_FLOWS", value_parser = clap::builder::BoolishValueParser::new(), default_value_t = false)]
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

/// The pipeline; `shutdown` (also cancelled by the first SIGINT/SIGTERM) stops the capture.
pub async fn run_async(args: &RunArgs, shutdown: CancellationToken) -> anyhow::Result<ExitCode> {
    if args.read.is_none() && args.interface.is_none() {
        anyhow::bail!("netpipe run needs --read FILE or --interface IF");
    }
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;
    let channel = format!("netpipe-run-{}", std::process::id());
    let url = format!("memory://{channel}");

    let processor_config = processor_config(args, &url)?;
    let agent_config = agent_config(args, &url)?;

    // Signals: the first stops capture (the agent); a second one also stops the processor.
    let processor_stop = CancellationToken::new();
    let signals = tokio::spawn(watch_signals(shutdown.clone(), processor_stop.clone()));

    let flows = if args.flows {
        Some(crate::run_flows::start(
            flows_source(args),
            shutdown.clone(),
        )?)
    } else {
        None
    };
    let processor = tokio::spawn(processor::run(processor_config, processor_stop.clone()));
    let agent_result = capture_agent::run(agent_config, shutdown.clone()).await;
    // The agent has published everything it captured: close the channel so the processor drains
    // it and finishes.
    shared::broker::forget_memory(&channel);
    let processor_result = processor.await.context("the processor task failed")?;
    signals.abort();

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
    let agent_summary = agent_result.context("capture")?;
    let processor_summary = processor_result.context("processing")?;
    let rows: Vec<String> = processor_summary
        .rows_written
        .iter()
        .map(|(schema, n)| format!("{n} {schema} rows"))
        .collect();
    let files: Vec<String> = processor_summary
        .files
        .iter()
        .map(|f| f.display().to_string())
        .collect();
    eprintln!(
        "netpipe run: {} packets captured, {} published; {}; {} duplicates dropped, {} dead-lettered; files: {}",
        agent_summary.packets_captured,
        agent_summary.frames_published,
        rows.join(", "),
        processor_summary.duplicates,
        processor_summary.dead_letters,
        files.join(" "),
    );
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
    let lost: u64 = agent_summary.dropped.values().sum();
    if lost > 0 {
        let reasons: Vec<String> = agent_summary
            .dropped
            .iter()
            .filter(|(_, n)| **n > 0)
            .map(|(r, n)| format!("{r}={n}"))
            .collect();
        eprintln!(
            "netpipe run: packets lost before processing: {}",
            reasons.join(" ")
        );
    }
    Ok(ExitCode::SUCCESS)
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
        config: shared::flow::FlowConfig {
            idle_timeout_ms: i64::from(args.flow_idle_timeout) * 1000,
            active_timeout_ms: i64::from(args.flow_active_timeout) * 1000,
            agent: std::sync::Arc::from(agent.as_str()),
            ..shared::flow::FlowConfig::default()
        },
        agent,
    }
}

fn processor_config(args: &RunArgs, url: &str) -> anyhow::Result<processor::Config> {
    let mut argv: Vec<String> = vec![
        "processor".into(),
        "--broker-url".into(),
        url.into(),
        "--ds-dir".into(),
        args.out.display().to_string(),
        "--ds-name".into(),
        args.ds_name.clone(),
        "--save-after-num".into(),
        args.save_after_num.to_string(),
        "--schema".into(),
        args.schema.clone(),
        "--ops-addr".into(),
        args.ops_addr.clone(),
    ];
    if let Some(csv) = &args.output_csv {
        argv.extend(["--output-csv".into(), csv.display().to_string()]);
    }
    use clap::Parser;
    processor::Config::try_parse_from(argv).map_err(|e| anyhow::anyhow!("{e}"))
}

/// The payload policy of `netpipe run` (issue 18): the whole payload for antinex-v1 rows.
fn run_payload_bytes(args: &RunArgs) -> usize {
    let antinex = args.schema.split(',').any(|s| s.trim() == "antinex-v1");
    shared::decode::payload_bytes_for(args.payload_bytes, antinex)
}

fn agent_config(args: &RunArgs, url: &str) -> anyhow::Result<capture_agent::Config> {
    let mut argv: Vec<String> = vec![
        "capture-agent".into(),
        "--broker-url".into(),
        url.into(),
        "--ops-addr".into(),
        "127.0.0.1:0".into(),
        "--payload-bytes".into(),
        run_payload_bytes(args).to_string(),
        // One batch at a time: the dataset keeps capture order (concurrent publishes may
        // reorder batches, and an in-process channel gains nothing from them).
        "--max-in-flight".into(),
        "1".into(),
    ];
    match (&args.read, &args.interface) {
        (Some(file), _) => {
            argv.extend([
                "--read".into(),
                file.display().to_string(),
                "--exit-at-eof".into(),
            ]);
        }
        (None, Some(interface)) => argv.extend(["--interface".into(), interface.clone()]),
        (None, None) => {}
    }
    if let Some(filter) = &args.filter {
        argv.extend(["--filter".into(), filter.clone()]);
    }
    if let Some(agent) = &args.agent_id {
        argv.extend(["--agent-id".into(), agent.clone()]);
    }
    use clap::Parser;
    capture_agent::Config::try_parse_from(argv).map_err(|e| anyhow::anyhow!("{e}"))
}

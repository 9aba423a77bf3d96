//! `netpipe flows`: a capture file to bidirectional flow records (CSV or JSON lines) on
//! stdout, NFStream's columns first (docs/flows.md). Skipped packets and flow endings are
//! counted and summarised on stderr, like `netpipe decode`.

use std::collections::HashMap;
use std::io::{self, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::{Args, ValueEnum};
use netpipe_packet::decode::{DecodeOptions, FrameMeta, decode};
use netpipe_packet::flow::{ExpirationReason, FlowConfig, FlowRecord, FlowTable, SkipReason};
use netpipe_runtime::capture::{CaptureFile, FileFilter};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FlowFormat {
    /// One CSV row per flow; the `splt_*` arrays are JSON arrays in one cell.
    Csv,
    /// One JSON object per flow and line.
    Jsonl,
}

#[derive(Debug, Clone, Args)]
pub struct FlowsArgs {
    /// Capture file (pcap or pcapng; the format is detected from its content).
    #[arg(long, short = 'r', env = "NETPIPE_READ")]
    pub read: PathBuf,
    #[arg(long, value_enum, env = "FLOW_FORMAT", default_value = "csv")]
    pub format: FlowFormat,
    /// Seconds without a packet after which a flow ends (`idle`).
    #[arg(long, env = "FLOW_IDLE_TIMEOUT", default_value_t = 120, value_parser = clap::value_parser!(u32).range(1..))]
    pub idle_timeout: u32,
    /// Seconds after its first packet at which a flow ends at its next packet (`active`).
    #[arg(long, env = "FLOW_ACTIVE_TIMEOUT", default_value_t = 1800, value_parser = clap::value_parser!(u32).range(1..))]
    pub active_timeout: u32,
    /// Number of first packets in the splt_* arrays (padded with -1); 0 leaves them empty.
    #[arg(long, env = "FLOW_SPLT", default_value_t = 10, value_parser = clap::value_parser!(u16).range(0..=1000))]
    pub splt: u16,
    /// BPF filter applied to the file's packets (libpcap syntax).
    #[arg(long, short = 'f', env = "NETWORK_FILTER")]
    pub filter: Option<String>,
    /// Flow table bound; when full, the least recently seen flow is emitted as `evicted`.
    #[arg(long, env = "FLOW_MAX_FLOWS", default_value_t = 1_000_000, value_parser = clap::value_parser!(u64).range(1..=100_000_000))]
    pub max_flows: u64,
    /// End TCP flows at RST, or at the last ACK after FIN both ways (`tcp_end`; off like NFStream).
    #[arg(long, env = "FLOW_TCP_END", value_parser = netpipe_runtime::service::parse_bool, default_value_t = false)]
    pub flow_tcp_end: bool,
    /// Agent id written into every record.
    #[arg(long, env = "SOURCE_HOST", default_value = "flows")]
    pub agent: String,
}

impl FlowsArgs {
    pub fn flow_config(&self) -> FlowConfig {
        FlowConfig {
            idle_timeout_ms: i64::from(self.idle_timeout) * 1000,
            active_timeout_ms: i64::from(self.active_timeout) * 1000,
            splt: usize::from(self.splt),
            max_flows: usize::try_from(self.max_flows).unwrap_or(usize::MAX),
            tcp_end: self.flow_tcp_end,
            agent: Arc::from(self.agent.as_str()),
        }
    }
}

pub fn run(args: &FlowsArgs) -> anyhow::Result<ExitCode> {
    let mut file = CaptureFile::open(&args.read)?;
    // Flows need no payload copy: only its length, which the decoder always records.
    let options = DecodeOptions { payload_bytes: 0 };
    let mut meta = FrameMeta {
        agent: Arc::from(args.agent.as_str()),
        boot: 0,
        seq: 0,
    };
    let mut filters = FileFilter::new(args.filter.as_deref());
    let mut table = FlowTable::new(args.flow_config(), 0);
    let mut reasons: HashMap<ExpirationReason, u64> = HashMap::new();
    let mut packets = 0u64;
    let mut filtered_out = 0u64;

    let stdout = io::stdout();
    let mut out = stdout.lock();
    let mut buf: Vec<u8> = Vec::with_capacity(1 << 20);
    if args.format == FlowFormat::Csv {
        buf.extend_from_slice(netpipe_packet::flow::column_names().join(",").as_bytes());
        buf.push(b'\n');
    }
    let mut ended: Vec<FlowRecord> = Vec::new();
    let mut read_error = None;
    loop {
        let packet = match file.next_packet() {
            Ok(Some(packet)) => packet,
            Ok(None) => break,
            Err(e) => {
                read_error = Some(e);
                break;
            }
        };
        if !filters.keeps(&packet)? {
            filtered_out += 1;
            continue;
        }
        let frame = decode(&packet, &meta, &options);
        meta.seq += 1;
        packets += 1;
        table.push_frame(&frame, &mut ended);
        if !ended.is_empty() {
            write_records(args.format, &mut ended, &mut reasons, &mut buf)?;
            if buf.len() >= 1 << 19 {
                if !write_or_stop(&mut out, &buf)? {
                    return Ok(ExitCode::SUCCESS);
                }
                buf.clear();
            }
        }
    }
    // A read error still flushes the flows seen so far: nothing read is lost.
    // In steps, so a table of a million open flows is never copied out at once.
    while table.finish_some(&mut ended, 4096) > 0 {
        write_records(args.format, &mut ended, &mut reasons, &mut buf)?;
        if !write_or_stop(&mut out, &buf)? {
            return Ok(ExitCode::SUCCESS);
        }
        buf.clear();
    }
    if !write_or_stop(&mut out, &buf)? {
        return Ok(ExitCode::SUCCESS);
    }
    drop(out);
    print_summary(args, &file, &table, packets, filtered_out, &reasons);
    match read_error {
        Some(e) => {
            eprintln!("netpipe: {e}");
            Ok(ExitCode::FAILURE)
        }
        None => Ok(ExitCode::SUCCESS),
    }
}

fn write_records(
    format: FlowFormat,
    records: &mut Vec<FlowRecord>,
    reasons: &mut HashMap<ExpirationReason, u64>,
    buf: &mut Vec<u8>,
) -> anyhow::Result<()> {
    for record in records.drain(..) {
        *reasons.entry(record.reason).or_default() += 1;
        match format {
            FlowFormat::Csv => record.write_csv(buf),
            FlowFormat::Jsonl => {
                serde_json::to_writer(&mut *buf, &record.to_json()).context("encoding a flow")?;
                buf.push(b'\n');
            }
        }
    }
    Ok(())
}

/// Writes a chunk; `false` when the reader went away (e.g. `| head`), which ends the command quietly.
fn write_or_stop(out: &mut impl Write, chunk: &[u8]) -> anyhow::Result<bool> {
    match out.write_all(chunk).and_then(|()| out.flush()) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(false),
        Err(e) => Err(e).context("writing to stdout"),
    }
}

fn print_summary(
    args: &FlowsArgs,
    file: &CaptureFile,
    table: &FlowTable,
    packets: u64,
    filtered_out: u64,
    reasons: &HashMap<ExpirationReason, u64>,
) {
    let counters = table.counters();
    let mut line = format!(
        "netpipe flows: {}: {packets} packets, {} in {} flows",
        args.read.display(),
        counters.packets_in_flows,
        counters.flows_emitted
    );
    let ended: Vec<String> = ExpirationReason::ALL
        .iter()
        .filter_map(|r| reasons.get(r).map(|n| format!("{}={n}", r.as_str())))
        .collect();
    if !ended.is_empty() {
        line.push_str(&format!(" ({})", ended.join(" ")));
    }
    if filtered_out > 0 {
        line.push_str(&format!(", {filtered_out} filtered out"));
    }
    if file.skipped_unsupported() > 0 {
        line.push_str(&format!(
            ", {} skipped (unsupported link type)",
            file.skipped_unsupported()
        ));
    }
    let skipped: Vec<String> = SkipReason::ALL
        .iter()
        .filter(|r| counters.skipped(**r) > 0)
        .map(|r| format!("{}={}", r.as_str(), counters.skipped(*r)))
        .collect();
    if skipped.is_empty() {
        line.push_str("; no packet outside flows");
    } else {
        line.push_str(&format!("; not in flows: {}", skipped.join(" ")));
    }
    eprintln!("{line}");
}

//! `netpipe decode`: a capture file to rows (CSV) or frames (JSON lines) on stdout.
//! Decode problems are counted per reason and summarised on stderr at the end; IP fragments are
//! counted apart (a fragment is normal traffic, not a problem).

use std::collections::HashMap;
use std::io::{self, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::{Args, ValueEnum};
use netpipe_packet::decode::{DecodeOptions, FrameMeta, decode, payload_bytes_for};
use netpipe_packet::frame::DecodeIssue;
use netpipe_packet::schema::antinex::ANTINEX_V1;
use netpipe_packet::schema::{self, RowContext};
use netpipe_runtime::capture::{CaptureFile, FileFilter};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    /// One CSV row per packet under the chosen column schema.
    Csv,
    /// One Frame JSON document per line (the broker wire format).
    Jsonl,
}

#[derive(Debug, Clone, Args)]
pub struct DecodeArgs {
    /// Capture file (pcap or pcapng; the format is detected from its content); `-` reads
    /// standard input (`tcpdump -w - | netpipe decode -r -`).
    #[arg(long, short = 'r', env = "NETPIPE_READ")]
    pub read: PathBuf,
    /// Write the rows (or frames) to this file instead of standard output (`-` = stdout).
    /// It is created only once the capture has been opened.
    #[arg(long, short = 'o')]
    pub output: Option<PathBuf>,
    /// Column schema for CSV output.
    #[arg(long, env = "NETPIPE_SCHEMA", default_value = "netpipe")]
    pub schema: String,
    #[arg(long, value_enum, default_value = "csv")]
    pub format: OutputFormat,
    /// Payload bytes kept as hex per packet; 0 turns payload capture off. Default: 64, or the
    /// whole payload with `--schema antinex-v1` (the original kept it all).
    #[arg(long, env = "PAYLOAD_BYTES",
        value_parser = netpipe_runtime::flags::usize_in(0, netpipe_packet::decode::MAX_PAYLOAD_BYTES as u64))]
    pub payload_bytes: Option<usize>,
    /// BPF filter applied to the file's packets (libpcap syntax).
    #[arg(long, short = 'f', env = "NETWORK_FILTER")]
    pub filter: Option<String>,
    /// Agent id written into frames and rows.
    #[arg(long, env = "SOURCE_HOST", default_value = "decode")]
    pub agent: String,
    /// Sequence number of the first packet (later packets count up by one, like frame.number).
    #[arg(long, default_value_t = 1)]
    pub first_seq: u64,
}

/// Counters printed on stderr at the end.
#[derive(Debug, Default)]
struct Summary {
    packets: u64,
    filtered_out: u64,
    /// IPv4/IPv6 fragments, first ones included (normal traffic, so not under problems).
    fragments: u64,
    issues: HashMap<DecodeIssue, u64>,
}

pub fn run(args: &DecodeArgs) -> anyhow::Result<ExitCode> {
    let column_schema = match args.format {
        OutputFormat::Csv => Some(schema::by_name(&args.schema).with_context(|| {
            format!(
                "unknown schema {:?} (known: netpipe, antinex-v1, netpipe-v1)",
                args.schema
            )
        })?),
        OutputFormat::Jsonl => None,
    };
    let mut file = if args.read.as_os_str() == "-" {
        CaptureFile::from_reader("stdin", io::stdin())?
    } else {
        CaptureFile::open(&args.read)?
    };
    let original_compatible = column_schema.is_some_and(|s| s.name == ANTINEX_V1.name);
    let options = DecodeOptions {
        payload_bytes: payload_bytes_for(args.payload_bytes, original_compatible),
    };
    let mut meta = FrameMeta {
        agent: Arc::from(args.agent.as_str()),
        boot: args.first_seq,
        seq: args.first_seq,
    };
    let mut filters = FileFilter::new(args.filter.as_deref());
    let mut summary = Summary::default();

    let mut out: Box<dyn Write> = match &args.output {
        Some(path) if path.as_os_str() != "-" => Box::new(
            std::fs::File::create(path)
                .with_context(|| format!("cannot create {}", path.display()))?,
        ),
        _ => Box::new(io::stdout().lock()),
    };
    let mut buf: Vec<u8> = Vec::with_capacity(1 << 20);
    if let Some(column_schema) = column_schema {
        column_schema.write_header(&mut buf);
    }
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
            summary.filtered_out += 1;
            continue;
        }
        let frame = decode(&packet, &meta, &options);
        // Wraps rather than overflows: --first-seq may be any u64.
        meta.seq = meta.seq.wrapping_add(1);
        if frame.is_fragment() {
            summary.fragments += 1;
        }
        for issue in frame.errors.iter().filter(|i| **i != DecodeIssue::Fragment) {
            *summary.issues.entry(*issue).or_default() += 1;
        }
        match column_schema {
            Some(column_schema) => column_schema.write_row(
                &frame,
                &RowContext {
                    idx: summary.packets,
                },
                &mut buf,
            ),
            None => {
                serde_json::to_writer(&mut buf, &frame).context("encoding a frame")?;
                buf.push(b'\n');
            }
        }
        summary.packets += 1;
        if buf.len() >= 1 << 19 {
            if !write_or_stop(&mut out, &buf)? {
                return Ok(ExitCode::SUCCESS);
            }
            buf.clear();
        }
    }
    if !write_or_stop(&mut out, &buf)? {
        return Ok(ExitCode::SUCCESS);
    }
    drop(out);
    print_summary(args, &file, &summary);
    match read_error {
        Some(e) => {
            eprintln!("netpipe: {e}");
            Ok(ExitCode::FAILURE)
        }
        None => Ok(ExitCode::SUCCESS),
    }
}

/// Writes a chunk; `false` when the reader went away (e.g. `| head`), which ends the command quietly.
fn write_or_stop(out: &mut impl Write, chunk: &[u8]) -> anyhow::Result<bool> {
    match out.write_all(chunk).and_then(|()| out.flush()) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(false),
        Err(e) => Err(e).context("writing the output"),
    }
}

fn print_summary(args: &DecodeArgs, file: &CaptureFile, summary: &Summary) {
    let mut line = format!(
        "netpipe decode: {}: {} packets",
        args.read.display(),
        summary.packets
    );
    if summary.filtered_out > 0 {
        line.push_str(&format!(", {} filtered out", summary.filtered_out));
    }
    if file.skipped_unsupported() > 0 {
        line.push_str(&format!(
            ", {} skipped (unsupported link type)",
            file.skipped_unsupported()
        ));
    }
    if summary.fragments > 0 {
        line.push_str(&format!(
            ", {} IP fragments (not reassembled)",
            summary.fragments
        ));
    }
    let mut issues: Vec<_> = summary.issues.iter().collect();
    issues.sort();
    if issues.is_empty() {
        line.push_str("; no decode problems");
    } else {
        let list: Vec<String> = issues
            .iter()
            .map(|(issue, n)| format!("{issue}={n}"))
            .collect();
        line.push_str(&format!("; decode problems: {}", list.join(" ")));
    }
    eprintln!("{line}");
}

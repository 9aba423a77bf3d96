//! Command-line surface of the `netpipe` binary.

use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};
use netpipe_runtime::service::env::{Deprecations, apply_aliases};

use crate::decode_cmd::{self, DecodeArgs};
use crate::flows_cmd::{self, FlowsArgs};
use crate::health_check_cmd::{self, HealthCheckArgs};
use crate::run_cmd::{self, RunArgs};

#[derive(Debug, Parser)]
#[command(
    name = "netpipe",
    version,
    about = "Network traffic to ML datasets and live AntiNex predictions"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Decode a capture file and print one row (csv) or frame (jsonl) per packet, like `tshark -T fields`.
    Decode(DecodeArgs),
    /// Read a capture file and print one bidirectional flow record per flow (NFStream's columns
    /// and a CICFlowMeter-style set), CSV or JSON lines.
    Flows(FlowsArgs),
    /// The embedded pipeline: capture (file or interface) -> decode -> CSV snapshots in --out,
    /// no broker needed.
    Run(RunArgs),
    /// Write the project's sample capture (TCP with options and HTTP, DNS, ICMP, ARP, IPv6, VLAN).
    Fixture(FixtureArgs),
    /// GET a service's ops URL (default: /health on OPS_ADDR, or the deprecated PUBLISHER_OPS_ADDR); exit 0 only
    /// on 2xx. The container image's HEALTHCHECK.
    HealthCheck(HealthCheckArgs),
    /// Print the README's configuration or metrics reference (generated from the code).
    #[command(hide = true)]
    Reference(ReferenceArgs),
}

#[derive(Debug, clap::Args)]
pub struct ReferenceArgs {
    /// `config` or `metrics`.
    #[arg(value_parser = ["config", "metrics"])]
    pub what: String,
}

#[derive(Debug, clap::Args)]
pub struct FixtureArgs {
    /// Where to write the pcap file.
    #[arg(long)]
    pub out: std::path::PathBuf,
}

impl Cli {
    /// From the command line and the environment, with `netpipe run`'s old env names
    /// honoured; exits with clap's message on bad input.
    pub fn parse_with_aliases() -> (Cli, Deprecations) {
        let mut deprecations = Deprecations::default();
        let command = Cli::command().mut_subcommand("run", |run| {
            let (run, found) =
                apply_aliases(run, run_cmd::ENV_ALIASES, |name| std::env::var_os(name));
            deprecations = found;
            run
        });
        let matches = command.get_matches();
        match Cli::from_arg_matches(&matches) {
            Ok(cli) => (cli, deprecations),
            Err(error) => error.exit(),
        }
    }
}

/// Runs a parsed command; the exit code reflects problems the command reported.
pub fn dispatch(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Decode(args) => decode_cmd::run(&args),
        Command::Flows(args) => flows_cmd::run(&args),
        Command::Run(args) => run_cmd::run(&args),
        Command::HealthCheck(args) => health_check_cmd::run(&args),
        Command::Reference(args) => {
            match args.what.as_str() {
                "config" => print!("{}", crate::reference::configuration()),
                _ => print!("{}", crate::reference::metrics()),
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Fixture(args) => {
            let packets = netpipe_runtime::capture::sample::write_sample_pcap(&args.out)
                .map_err(|e| anyhow::anyhow!("{}: {e}", args.out.display()))?;
            eprintln!(
                "netpipe fixture: wrote {packets} packets to {}",
                args.out.display()
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}

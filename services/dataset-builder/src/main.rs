//! dataset-builder: one-shot job; exit code 0 on success (see docs/dataset-builder.md).

use std::process::ExitCode;

use clap::Parser;
use dataset_builder::{Config, run};
use tracing_subscriber::EnvFilter;

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .init();
    let config = Config::parse();
    match run(&config) {
        Ok(summary) => {
            println!("{summary}");
            if let Some(e) = &summary.metrics_error {
                eprintln!("dataset-builder: warning: metrics not delivered: {e}");
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("dataset-builder: error: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}

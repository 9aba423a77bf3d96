//! dataset-builder: a one-shot job (exit code 0 on success), or with --watch-secs a service that
//! rebuilds when its inputs change until SIGTERM (see docs/dataset-builder.md).

use std::process::ExitCode;

use clap::Parser;
use dataset_builder::{Config, RunOutcome, run};
use netpipe_runtime::ops::shutdown_token_on_signals;
use tracing_subscriber::EnvFilter;

// One thread runs the ops server and the watch loop; builds run on the blocking pool.
#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .init();
    let config = Config::parse();
    let shutdown = shutdown_token_on_signals();
    match run(config, shutdown).await {
        Ok(RunOutcome::Built(summary)) => {
            println!("{summary}");
            if let Some(e) = &summary.metrics_error {
                eprintln!("dataset-builder: warning: metrics not delivered: {e}");
            }
            ExitCode::SUCCESS
        }
        Ok(RunOutcome::Stopped { .. }) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!(
                "dataset-builder: error: {}",
                netpipe_runtime::error_line(&e)
            );
            ExitCode::from(e.exit_code())
        }
    }
}

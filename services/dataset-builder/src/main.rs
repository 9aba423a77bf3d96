//! dataset-builder: a one-shot job (exit code 0 on success), or with --watch-secs a service that
//! rebuilds when its inputs change until SIGTERM (see docs/dataset-builder.md).

use std::process::ExitCode;

use dataset_builder::{Config, RunOutcome, run};
use netpipe_runtime::ops::{init_telemetry, shutdown_token_on_signals};

// One thread runs the ops server and the watch loop; builds run on the blocking pool.
#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let (config, deprecations) = Config::from_env_and_args();
    // Logs on stderr: stdout is the build's summary.
    let telemetry = match init_telemetry(&config.common.telemetry("dataset-builder").on_stderr()) {
        Ok(guard) => guard,
        Err(e) => {
            eprintln!("dataset-builder: error: {e}");
            return ExitCode::from(2);
        }
    };
    deprecations.log();
    let shutdown = shutdown_token_on_signals();
    let result = run(config, shutdown).await;
    telemetry.shutdown().await;
    match result {
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

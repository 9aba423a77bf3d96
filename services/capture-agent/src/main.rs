//! capture-agent binary: parse flags, set up telemetry, run until SIGTERM/SIGINT.

use netpipe_runtime::ops::{
    init_telemetry, log_resource_usage, shutdown_token_on_signals, tune_allocator,
};

#[tokio::main]
async fn main() {
    tune_allocator();
    let (config, deprecations) = capture_agent::Config::from_env_and_args();
    let telemetry = match init_telemetry(&config.common.telemetry("capture-agent")) {
        Ok(guard) => guard,
        Err(e) => {
            eprintln!("capture-agent: {e}");
            std::process::exit(2);
        }
    };
    deprecations.log();
    let shutdown = shutdown_token_on_signals();
    let result = capture_agent::run(config, shutdown).await;
    telemetry.shutdown().await;
    log_resource_usage();
    match result {
        Ok(summary) => {
            tracing::info!(%summary, "capture-agent stopped");
            // Frames lost on the way (buffer full, broker refused, shutdown before the broker
            // took them) are data lost: never exit 0 after that.
            if summary.lost_after_capture() > 0 {
                eprintln!(
                    "capture-agent: {} captured packets lost: {summary}",
                    summary.lost_after_capture()
                );
                std::process::exit(3);
            }
            if summary.flows_lost() > 0 {
                eprintln!(
                    "capture-agent: {} flow records lost: {summary}",
                    summary.flows_lost()
                );
                std::process::exit(3);
            }
        }
        Err(e) => {
            eprintln!("capture-agent: {}", netpipe_runtime::error_line(&e));
            std::process::exit(1);
        }
    }
}

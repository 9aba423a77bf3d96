//! processor binary: parse flags, set up telemetry, run until SIGTERM/SIGINT or STOP_AFTER_NUM.

use clap::Parser;
use netpipe_runtime::ops::{
    TelemetryConfig, init_telemetry, log_resource_usage, shutdown_token_on_signals, tune_allocator,
};

#[tokio::main]
async fn main() {
    tune_allocator();
    let config = processor::Config::parse();
    let telemetry = match init_telemetry(&TelemetryConfig::from_env("processor", config.log_json)) {
        Ok(guard) => guard,
        Err(e) => {
            eprintln!("processor: {e}");
            std::process::exit(2);
        }
    };
    let shutdown = shutdown_token_on_signals();
    let result = processor::run(config, shutdown).await;
    telemetry.shutdown().await;
    log_resource_usage();
    match result {
        Ok(summary) => tracing::info!(%summary, "processor stopped"),
        Err(e) => {
            eprintln!("{}", netpipe_runtime::error_line(&e));
            std::process::exit(1);
        }
    }
}

//! processor binary: parse flags, set up telemetry, run until SIGTERM/SIGINT or STOP_AFTER_NUM.

use netpipe_runtime::ops::{
    init_telemetry, log_resource_usage, shutdown_token_on_signals, tune_allocator,
};

#[tokio::main]
async fn main() {
    tune_allocator();
    let (config, deprecations) = processor::Config::from_env_and_args();
    let telemetry = match init_telemetry(&config.common.telemetry("processor")) {
        Ok(guard) => guard,
        Err(e) => {
            eprintln!("processor: {e}");
            std::process::exit(2);
        }
    };
    deprecations.log();
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

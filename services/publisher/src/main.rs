//! publisher binary: parse flags, set up telemetry, run until SIGTERM/SIGINT (or the end of a
//! memory:// rows stream).

use netpipe_runtime::ops::{init_telemetry, log_resource_usage, shutdown_token_on_signals};

#[tokio::main]
async fn main() {
    let (config, deprecations) = publisher::Config::from_env_and_args();
    let telemetry = config
        .common
        .telemetry("publisher")
        .with_default_filter(config.default_log_filter());
    let telemetry = match init_telemetry(&telemetry) {
        Ok(guard) => guard,
        Err(e) => {
            eprintln!("publisher: {e}");
            std::process::exit(2);
        }
    };
    deprecations.log();
    let shutdown = shutdown_token_on_signals();
    let result = publisher::run(config, shutdown).await;
    telemetry.shutdown().await;
    log_resource_usage();
    match result {
        Ok(summary) => tracing::info!(rows_sent = summary.rows_sent, "publisher stopped"),
        Err(e) => {
            eprintln!("publisher: {}", netpipe_runtime::error_line(&e));
            std::process::exit(1);
        }
    }
}

//! The flags every service flattens into its `Config`.

use clap::ArgAction;

use super::flag::parse_bool;
use super::ops_addr::OpsAddr;
use crate::ops::TelemetryConfig;

/// Ops endpoint, log format and trace export: the same names and meaning in every service.
/// A service sets its own ops default with `#[command(mut_arg("ops_addr", ...))]`.
#[derive(Debug, Clone, clap::Args)]
pub struct CommonArgs {
    /// Address of /health, /ready and /metrics: host:port (a host name is resolved once), or
    /// `off` (or empty) for no ops server.
    #[arg(long, env = "OPS_ADDR", default_value = "off")]
    pub ops_addr: OpsAddr,

    /// Log as JSON lines (`--log-json`, `--log-json=false`, LOG_JSON=1).
    #[arg(long, env = "LOG_JSON", value_parser = parse_bool, num_args = 0..=1,
        require_equals = true, default_missing_value = "true", default_value = "false",
        action = ArgAction::Set)]
    pub log_json: bool,

    /// OTLP/HTTP collector (base URL, e.g. http://127.0.0.1:4318): export trace spans there.
    /// Empty = no export.
    #[arg(long, env = "OTEL_EXPORTER_OTLP_ENDPOINT")]
    pub otlp_endpoint: Option<String>,
}

impl CommonArgs {
    /// No ops server, text logs, no export: for embedding a service and for tests.
    pub fn quiet() -> Self {
        CommonArgs {
            ops_addr: OpsAddr::Off,
            log_json: false,
            otlp_endpoint: None,
        }
    }

    /// The telemetry set-up these flags ask for.
    pub fn telemetry(&self, service: &str) -> TelemetryConfig {
        TelemetryConfig::new(service, self.log_json, self.otlp_endpoint.clone())
    }
}

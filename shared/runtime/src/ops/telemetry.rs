//! Logging and tracing set-up: `RUST_LOG` filter (default `info`, or the service's choice), text or JSON logs, and span
//! export over OTLP/HTTP when `OTEL_EXPORTER_OTLP_ENDPOINT` is set.
//!
//! The exporter uses the blocking reqwest client with the SDK's default batch processor, which
//! runs on its own thread (an async client there panics with "no reactor running"). Shutting the
//! provider down flushes synchronously, so [`TelemetryGuard::shutdown`] runs it on a blocking
//! thread.

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::WithExportConfig as _;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_subscriber::filter::{EnvFilter, filter_fn};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{Layer, fmt};

/// How to set up telemetry for one service.
#[derive(Debug, Clone)]
pub struct TelemetryConfig {
    /// Service name (OpenTelemetry `service.name` fallback; `OTEL_SERVICE_NAME` wins).
    pub service: String,
    /// One JSON object per log line instead of human-readable text.
    pub json: bool,
    /// OTLP/HTTP endpoint, usually from `OTEL_EXPORTER_OTLP_ENDPOINT`; `None` = no export.
    pub otlp_endpoint: Option<String>,
    /// The log filter when `RUST_LOG` is unset or empty (`info` unless the service says so).
    pub default_filter: String,
    /// Log lines to stderr instead of stdout (a job whose stdout is its result).
    pub stderr: bool,
}

impl TelemetryConfig {
    /// `json` and the OTLP endpoint as the service's flags give them (`CommonArgs`); an empty
    /// endpoint means no export.
    pub fn new(service: &str, json: bool, otlp_endpoint: Option<String>) -> Self {
        TelemetryConfig {
            service: service.to_string(),
            json,
            otlp_endpoint: otlp_endpoint.filter(|v| !v.trim().is_empty()),
            default_filter: "info".into(),
            stderr: false,
        }
    }

    /// `json` from the caller's flag or `LOG_JSON`; endpoint from the environment.
    pub fn from_env(service: &str, json_flag: bool) -> Self {
        let json_env = std::env::var("LOG_JSON")
            .ok()
            .and_then(|v| crate::service::parse_bool(&v).ok())
            .unwrap_or(false);
        Self::new(
            service,
            json_flag || json_env,
            std::env::var("OTEL_EXPORTER_OTLP_ENDPOINT").ok(),
        )
    }

    /// Log to stderr (stdout stays for the program's result).
    pub fn on_stderr(mut self) -> Self {
        self.stderr = true;
        self
    }

    /// Another filter for when `RUST_LOG` is unset (a service's own verbosity switches).
    pub fn with_default_filter(mut self, filter: impl Into<String>) -> Self {
        self.default_filter = filter.into();
        self
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    #[error("invalid RUST_LOG: {0}")]
    Filter(String),
    #[error("cannot build the OTLP exporter for {endpoint}: {reason}")]
    Exporter { endpoint: String, reason: String },
    #[error("a global tracing subscriber is already installed")]
    AlreadyInstalled,
}

/// Keeps the trace exporter alive; call [`TelemetryGuard::shutdown`] before exiting to flush.
#[derive(Debug)]
pub struct TelemetryGuard {
    provider: Option<SdkTracerProvider>,
}

impl TelemetryGuard {
    /// Flushes and stops the exporter on a blocking thread. Errors are logged, not returned:
    /// a failed final export must not change the exit code.
    pub async fn shutdown(mut self) {
        let Some(provider) = self.provider.take() else {
            return;
        };
        let result = tokio::task::spawn_blocking(move || provider.shutdown()).await;
        match result {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "trace exporter shutdown failed"),
            Err(e) => tracing::warn!(error = %e, "trace exporter shutdown task failed"),
        }
    }

    pub fn exporting(&self) -> bool {
        self.provider.is_some()
    }
}

/// Installs the global subscriber. Call once, early in `main`.
pub fn init_telemetry(config: &TelemetryConfig) -> Result<TelemetryGuard, TelemetryError> {
    let filter = match std::env::var("RUST_LOG") {
        Ok(value) if !value.trim().is_empty() => {
            EnvFilter::try_new(&value).map_err(|e| TelemetryError::Filter(e.to_string()))?
        }
        _ => EnvFilter::try_new(&config.default_filter)
            .map_err(|e| TelemetryError::Filter(e.to_string()))?,
    };
    let fmt_layer = match (config.json, config.stderr) {
        (true, false) => fmt::layer()
            .json()
            .with_current_span(true)
            .with_target(true)
            .boxed(),
        (true, true) => fmt::layer()
            .json()
            .with_current_span(true)
            .with_target(true)
            .with_writer(std::io::stderr)
            .boxed(),
        // Colour codes only for a terminal: a log redirected to a file stays plain text.
        (false, false) => fmt::layer()
            .with_target(true)
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout()))
            .boxed(),
        (false, true) => fmt::layer()
            .with_target(true)
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .with_writer(std::io::stderr)
            .boxed(),
    };

    let mut provider = None;
    let otel_layer = match &config.otlp_endpoint {
        Some(endpoint) => {
            // The endpoint may come from --otlp-endpoint: set it, with the traces path the SDK
            // would add to OTEL_EXPORTER_OTLP_ENDPOINT.
            let traces = format!("{}/v1/traces", endpoint.trim_end_matches('/'));
            let exporter = opentelemetry_otlp::SpanExporter::builder()
                .with_http()
                .with_endpoint(traces)
                .build()
                .map_err(|e| TelemetryError::Exporter {
                    endpoint: endpoint.clone(),
                    reason: e.to_string(),
                })?;
            let sdk = SdkTracerProvider::builder()
                .with_batch_exporter(exporter)
                .with_resource(
                    Resource::builder()
                        .with_service_name(config.service.clone())
                        .build(),
                )
                .build();
            let tracer = sdk.tracer(config.service.clone());
            provider = Some(sdk);
            // Exporter plumbing must not be exported as spans (feedback loop).
            let not_plumbing = filter_fn(|meta| {
                let target = meta.target();
                !["h2", "hyper", "reqwest", "tower", "opentelemetry"]
                    .iter()
                    .any(|prefix| target.starts_with(prefix))
            });
            Some(
                tracing_opentelemetry::layer()
                    .with_tracer(tracer)
                    .with_filter(not_plumbing),
            )
        }
        None => None,
    };

    tracing_subscriber::registry()
        .with(filter)
        .with(fmt_layer)
        .with(otel_layer)
        .try_init()
        .map_err(|_| TelemetryError::AlreadyInstalled)?;
    if let Some(endpoint) = &config.otlp_endpoint {
        tracing::info!(%endpoint, "exporting traces over OTLP/HTTP");
    }
    Ok(TelemetryGuard { provider })
}

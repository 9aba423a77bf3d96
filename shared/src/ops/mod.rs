//! Health, readiness and Prometheus metrics over HTTP; tracing and OpenTelemetry set-up.

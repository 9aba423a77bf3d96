//! Operations surface shared by every service: health, readiness and Prometheus metrics over
//! HTTP on their own port, tracing / OpenTelemetry set-up, counted-and-throttled events, and
//! signal handling.
//!
//! A service builds one [`OpsState`] (heartbeat + readiness + metrics registry), hands clones to
//! its tasks, and calls [`serve`] once:
//!
//! | route | answer |
//! |---|---|
//! | `GET /health` | 200 while the heartbeat is fresh (the main loop is alive), else 503 |
//! | `GET /ready` | 200 when every readiness condition holds, else 503 `{"ready":false,"reasons":[..]}` |
//! | `GET /metrics` | Prometheus text of the service's own registry |

mod allocator;
mod events;
mod health;
mod metrics;
mod readiness;
mod server;
mod shutdown;
mod telemetry;
mod usage;

pub use allocator::tune_allocator;
pub use events::{CountedEvent, Throttle};
pub use health::Heartbeat;
pub use metrics::{Metrics, MetricsError};
pub use readiness::{Readiness, ReadinessReport};
pub use server::{OpsError, OpsServer, OpsState, serve, serve_at};
pub use shutdown::shutdown_token_on_signals;
pub use telemetry::{TelemetryConfig, TelemetryError, TelemetryGuard, init_telemetry};
pub use usage::{ResourceUsage, log_resource_usage, resource_usage};

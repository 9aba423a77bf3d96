//! What can stop the publisher. Per-batch HTTP failures are not errors here: they are retried,
//! dead-lettered or left unacknowledged, and counted.

use netpipe_runtime::broker::BrokerError;

#[derive(Debug, thiserror::Error)]
pub enum PublisherError {
    #[error("invalid configuration: {0}")]
    Config(String),
    #[error("cannot read the request template {path}: {reason}")]
    Template { path: String, reason: String },
    #[error("TLS set-up failed: {0}")]
    Tls(String),
    #[error("broker: {0}")]
    Broker(#[from] BrokerError),
    #[error("predictions file {path}: {reason}")]
    Predictions { path: String, reason: String },
    /// OPS_ADDR is not an address, or cannot be listened on.
    #[error("ops endpoint OPS_ADDR={addr}: {reason}")]
    Ops { addr: String, reason: String },
    /// Every login for --login-give-up-secs was refused: wrong credentials, not a hiccup.
    #[error("{0}")]
    LoginRefused(String),
    #[error("metrics registry: {0}")]
    Metrics(#[from] netpipe_runtime::ops::MetricsError),
    #[error("internal task failed: {0}")]
    Task(String),
}

//! publisher: streams rows from the rows stream to the AntiNex REST API (`POST /ml/`, JWT),
//! in batches, at least once, acknowledging rows only once the API accepted them, and writes
//! the predictions back beside each row's identity. See docs/publisher.md.
//!
//! The stand-in AntiNex server for tests and benchmarks is its own crate, `antinex-standin`.

pub mod api;
pub mod auth;
pub mod batch;
pub mod body;
pub mod config;
pub mod error;
pub mod metrics;
pub mod pipeline;
pub mod predictions;
pub mod probes;
pub mod secret;
pub mod service;
pub mod template;

pub use config::{Config, PollPredictions};
pub use error::PublisherError;
pub use secret::{ExposeSecret, SecretString};
pub use service::{run, run_with_metrics};

/// What a run did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    pub messages_received: u64,
    pub rows_received: u64,
    /// Rows the API accepted (201).
    pub rows_sent: u64,
    pub batches_accepted: u64,
    pub messages_acked: u64,
    pub messages_dead_lettered: u64,
    pub rows_dead_lettered: u64,
    /// Rows read but not accepted or refused before shutdown: left unacknowledged.
    pub rows_abandoned: u64,
    pub logins: u64,
    pub token_renewals: u64,
    pub unauthorized: u64,
    pub retries: u64,
    pub predictions_written: u64,
}

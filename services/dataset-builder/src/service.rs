//! The service around the builds: [`run`] builds once (the one-shot job) or, with
//! `--watch-secs`, keeps rebuilding whenever the inputs change (see [`crate::watch`]); with
//! `--ops-addr` it serves `/health`, `/ready` and `/metrics` meanwhile.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use netpipe_runtime::ops::{Heartbeat, OpsState, Readiness, serve_at};
use tokio_util::sync::CancellationToken;

use crate::error::BuildError;
use crate::ops_metrics::BuilderMetrics;
use crate::{Config, Summary, build_until, inputs};

/// Readiness: the input directory (DS_DIR, or the glob's directory, or the listed files) can
/// be read.
pub const READY_INPUTS: &str = "inputs";
/// Readiness: the last build succeeded (the reason is its error otherwise).
pub const READY_LAST_BUILD: &str = "last build";
/// `/health` fails when the main loop has not beaten for this long (it beats every second,
/// also while a build runs).
const HEARTBEAT_MAX_AGE: Duration = Duration::from_secs(30);
pub(crate) const BEAT_EVERY: Duration = Duration::from_secs(1);

/// What [`run`] did.
#[derive(Debug, Clone)]
pub enum RunOutcome {
    /// One-shot mode: the build's summary.
    Built(Box<Summary>),
    /// Watch mode, stopped by shutdown: builds attempted and how many of them failed.
    Stopped { builds: u64, failed: u64 },
}

/// Runs the dataset-builder until its work is done (one-shot) or `shutdown` (watch mode).
/// A one-shot build stopped by `shutdown` returns [`BuildError::Cancelled`] and writes nothing.
pub async fn run(config: Config, shutdown: CancellationToken) -> Result<RunOutcome, BuildError> {
    let ops = BuilderOps::new()?;
    // The ops server outlives the builds: it stops after the last one, not at the signal.
    let ops_shutdown = CancellationToken::new();
    let server = serve_at(&config.common.ops_addr, ops.state(), ops_shutdown.clone())
        .await
        .map_err(|e| BuildError::Ops(e.to_string()))?;
    let config = Arc::new(config);
    let result = match config.watch_interval() {
        None => {
            ops.check_inputs(&config);
            ops.build(config.clone(), shutdown.child_token())
                .await
                .map(|summary| RunOutcome::Built(Box::new(summary)))
        }
        Some(every) => crate::watch::watch(config, every, &ops, &shutdown).await,
    };
    ops_shutdown.cancel();
    if let Some(server) = server {
        let _ = server.task.await;
    }
    result
}

/// Heartbeat, readiness and metrics of one run.
#[derive(Debug, Clone)]
pub struct BuilderOps {
    pub heartbeat: Heartbeat,
    pub readiness: Readiness,
    pub metrics: BuilderMetrics,
}

impl BuilderOps {
    pub fn new() -> Result<Self, BuildError> {
        let metrics = BuilderMetrics::new(env!("CARGO_PKG_VERSION"))
            .map_err(|e| BuildError::Ops(e.to_string()))?;
        let readiness = Readiness::new();
        readiness.declare(&[READY_INPUTS, READY_LAST_BUILD]);
        Ok(BuilderOps {
            heartbeat: Heartbeat::new(HEARTBEAT_MAX_AGE),
            readiness,
            metrics,
        })
    }

    pub fn state(&self) -> OpsState {
        OpsState::new(
            self.heartbeat.clone(),
            self.readiness.clone(),
            self.metrics.ops.clone(),
        )
    }

    /// Sets the "inputs" condition; true when the inputs can be read.
    pub fn check_inputs(&self, config: &Config) -> bool {
        match inputs::check_readable(config) {
            Ok(()) => {
                self.readiness.set_met(READY_INPUTS);
                true
            }
            Err(reason) => {
                self.readiness.set_not_met(READY_INPUTS, reason);
                false
            }
        }
    }

    /// One build on a blocking thread, beating the heartbeat meanwhile; records the outcome in
    /// the metrics and the "last build" condition. A cancelled build records nothing.
    pub async fn build(
        &self,
        config: Arc<Config>,
        cancel: CancellationToken,
    ) -> Result<Summary, BuildError> {
        let started = Instant::now();
        let mut task = tokio::task::spawn_blocking(move || build_until(&config, &cancel));
        let mut beat = tokio::time::interval(BEAT_EVERY);
        let joined = loop {
            tokio::select! {
                _ = beat.tick() => self.heartbeat.beat(),
                joined = &mut task => break joined,
            }
        };
        self.heartbeat.beat();
        let result = joined.unwrap_or_else(|e| Err(BuildError::Internal(e.to_string())));
        let seconds = started.elapsed().as_secs_f64();
        // Logging is the caller's: the one-shot job prints to stdout/stderr, watch mode logs.
        match &result {
            Err(BuildError::Cancelled) => {}
            Ok(summary) => {
                self.metrics.record(Ok(&summary.stats), seconds, unix_now());
                self.readiness.set_met(READY_LAST_BUILD);
            }
            Err(error) => {
                self.metrics.record(Err(error), seconds, unix_now());
                self.readiness
                    .set_not_met(READY_LAST_BUILD, error.to_string());
            }
        }
        result
    }
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

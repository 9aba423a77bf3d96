//! publisher: streams rows from the rows stream to the AntiNex REST API (`POST /ml/`, JWT),
//! in batches, at least once, acknowledging rows only once the API accepted them, and writes
//! the predictions back beside each row's identity. See docs/publisher.md.
//!
//! [`standin`] is a stand-in AntiNex server for tests and benchmarks (not the real API).

pub mod api;
pub mod auth;
pub mod backoff;
pub mod batch;
pub mod body;
pub mod config;
pub mod error;
pub mod metrics;
pub mod ops;
pub mod pipeline;
pub mod predictions;
pub mod secret;
pub mod standin;
pub mod template;

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use shared::broker::{BrokerConfig, Consumer, default_consumer_name};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

pub use config::{Config, PollPredictions};
pub use error::PublisherError;
pub use secret::Secret;

use crate::api::Api;
use crate::auth::Auth;
use crate::backoff::Backoff;
use crate::body::BodyBuilder;
use crate::metrics::Metrics;
use crate::pipeline::{Context, Intake};
use crate::predictions::{PollSettings, Sinks};

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

/// Runs until the rows stream closes (memory://) or `shutdown` is cancelled.
pub async fn run(config: Config, shutdown: CancellationToken) -> Result<Summary, PublisherError> {
    run_with_metrics(config, shutdown, Metrics::new()).await
}

/// [`run`] with a caller-held metrics registry (tests read it).
pub async fn run_with_metrics(
    config: Config,
    shutdown: CancellationToken,
    metrics: Metrics,
) -> Result<Summary, PublisherError> {
    if !config.publish_enabled {
        tracing::info!("ANTINEX_PUBLISH_ENABLED is off: nothing to do");
        return Ok(Summary::default());
    }
    if config.batch_rows == 0 || config.max_in_flight == 0 {
        return Err(PublisherError::Config(
            "PUBLISH_BATCH_ROWS and PUBLISH_MAX_IN_FLIGHT must be at least 1".into(),
        ));
    }
    let builder = BodyBuilder::from_config(&config)?;
    let api = Api::new(&config)?;
    let auth = Arc::new(Auth::new(
        api.clone(),
        metrics.clone(),
        config.token_renew_before,
        Backoff::new(config.retry_initial, config.retry_max),
    ));

    let mut broker = BrokerConfig::new(config.rows_url.clone());
    broker.stream = config.rows_stream.clone();
    broker.exchange = config.rows_stream.clone();
    broker.routing_key = config.rows_stream.clone();
    broker.group = config.rows_group.clone();
    broker.consumer = config
        .rows_consumer
        .clone()
        .unwrap_or_else(default_consumer_name);
    broker.dead_letter = config.rows_dead_letter.clone();
    broker.prefetch = config.rows_prefetch.max(1);
    broker.block = config.rows_block;
    let consumer = Consumer::connect(&broker).await?;
    let broker_ok = Arc::new(AtomicBool::new(true));

    // Stops the ops server and the pollers once the run is over, whatever ended it.
    let finished = shutdown.child_token();
    let ops = if config.ops_addr.trim().eq_ignore_ascii_case("off") {
        None
    } else {
        let state = ops::OpsState {
            metrics: metrics.clone(),
            auth: auth.clone(),
            broker_ok: broker_ok.clone(),
        };
        let (addr, handle) = ops::serve(&config.ops_addr, state, finished.clone()).await?;
        tracing::info!(%addr, "ops endpoints listening");
        Some(handle)
    };

    let (polls, pollers) = match config.poll_predictions {
        PollPredictions::Off => (None, None),
        PollPredictions::Auto => {
            let sinks = Sinks::open(
                config.predictions_csv.clone(),
                config
                    .predictions_url
                    .clone()
                    .map(|url| (url, config.predictions_stream.clone())),
            )
            .await?;
            let (tx, rx) = mpsc::channel(config.max_polls.max(1) * 4 + config.max_in_flight);
            let settings = PollSettings {
                initial: config.poll_initial,
                max: config.poll_max,
                timeout: config.poll_timeout,
                max_polls: config.max_polls,
                model: config.model_name.clone(),
                predict_feature: config.predict_feature.clone(),
            };
            let handle = tokio::spawn(predictions::run_pollers(
                rx,
                api.clone(),
                auth.clone(),
                settings,
                sinks,
                metrics.clone(),
                shutdown.clone(),
            ));
            (Some(tx), Some(handle))
        }
    };

    let context = Context {
        builder,
        api,
        auth,
        metrics: metrics.clone(),
        batch_rows: config.batch_rows,
        batch_delay: config.batch_delay,
        max_in_flight: config.max_in_flight,
        retry_initial: config.retry_initial,
        retry_max: config.retry_max,
        polls,
        shutdown: shutdown.clone(),
    };
    let (to_batcher, from_intake) = mpsc::channel(2);
    let (events_tx, events_rx) = mpsc::unbounded_channel();
    let batcher = tokio::spawn(pipeline::run_batcher(from_intake, context, events_tx));
    let intake = Intake {
        consumer,
        prefetch: usize::from(broker.prefetch),
        metrics: metrics.clone(),
        broker_ok,
        retry_initial: config.retry_initial,
        retry_max: config.retry_max,
    };
    let counts = intake.run(to_batcher, events_rx, shutdown.clone()).await;
    let task = |e: tokio::task::JoinError| PublisherError::Task(e.to_string());
    batcher.await.map_err(task)?;
    if let Some(pollers) = pollers {
        pollers.await.map_err(task)?;
    }
    finished.cancel();
    if let Some(ops) = ops {
        let _ = ops.await;
    }

    let summary = Summary {
        messages_received: counts.messages_received,
        rows_received: metrics.rows_received.get(),
        rows_sent: metrics.rows_sent.get(),
        batches_accepted: metrics.batches.with_label_values(&["201"]).get(),
        messages_acked: metrics.messages_acked.get(),
        messages_dead_lettered: metrics.dead_letters.get(),
        rows_dead_lettered: metrics.rows_dead_lettered.get(),
        rows_abandoned: counts.rows_abandoned,
        logins: metrics.logins.with_label_values(&["ok"]).get(),
        token_renewals: metrics.token_renewals.get(),
        unauthorized: metrics.unauthorized.get(),
        retries: metrics.retries.get(),
        predictions_written: metrics.predictions_written.get(),
    };
    tracing::info!(?summary, "publisher finished");
    Ok(summary)
}

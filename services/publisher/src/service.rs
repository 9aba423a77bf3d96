//! The publisher's `run`: check the configuration, serve ops, log in, then intake -> batcher
//! -> senders -> pollers until the rows stream ends or shutdown.

use std::sync::Arc;

use netpipe_runtime::broker::{BrokerConfig, Consumer, default_consumer_name};
use netpipe_runtime::ops::{Heartbeat, OpsServer, OpsState, Readiness};
use netpipe_runtime::service::{Backoff, RetryOutcome, connect_with_retry};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::api::{self, Api};
use crate::auth::Auth;
use crate::body::BodyBuilder;
use crate::metrics::PublisherMetrics;
use crate::pipeline::{self, Context, Intake};
use crate::predictions::{self, PollSettings, Sinks};
use crate::probes::{Liveness, READY_BROKER, READY_LOGIN, heartbeat_max_age};
use crate::{Config, PollPredictions, PublisherError, Summary};

/// Runs until the rows stream closes (memory://) or `shutdown` is cancelled.
pub async fn run(config: Config, shutdown: CancellationToken) -> Result<Summary, PublisherError> {
    run_with_metrics(config, shutdown, PublisherMetrics::new()?).await
}

/// [`run`] with a caller-held metrics registry (tests and the bench read it).
pub async fn run_with_metrics(
    config: Config,
    shutdown: CancellationToken,
    metrics: PublisherMetrics,
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
    // URLs are checked before anything starts: a typo is a configuration error, not a retry.
    netpipe_runtime::broker::check_url(&config.rows_url)?;
    api::check_base_url(&config.url)?;
    let builder = BodyBuilder::from_config(&config)?;
    let api = Api::new(&config)?;
    let readiness = Readiness::new();
    readiness.declare(&[READY_LOGIN, READY_BROKER]);
    let heartbeat = Heartbeat::new(heartbeat_max_age(config.rows_block));
    // Stopped by SIGTERM, or by logins refused for --login-give-up-secs.
    let shutdown = shutdown.child_token();
    let auth = Arc::new(
        Auth::new(
            api.clone(),
            metrics.clone(),
            readiness.clone(),
            config.token_renew_before,
            Backoff::new(config.retry_initial, config.retry_max),
        )
        .give_up_on_refused_logins(config.login_give_up(), shutdown.clone()),
    );

    // Stops the ops server and the background tasks once the run is over, whatever ended it.
    let finished = shutdown.child_token();
    let state = OpsState::new(heartbeat.clone(), readiness.clone(), metrics.ops.clone());
    let ops = netpipe_runtime::ops::serve_at(&config.common.ops_addr, state, finished.clone())
        .await
        .map_err(|error| PublisherError::Ops {
            addr: config.common.ops_addr.to_string(),
            reason: error.to_string(),
        })?;
    // Log in at start: bad credentials show in /ready (and the log) before any row arrives.
    let first_login = {
        let (auth, finished) = (auth.clone(), finished.clone());
        tokio::spawn(async move {
            tokio::select! {
                _ = auth.token(&finished) => {}
                _ = finished.cancelled() => {}
            }
        })
    };

    let result = deliver(
        &config,
        shutdown,
        Parts {
            builder,
            api,
            auth: auth.clone(),
            metrics: metrics.clone(),
            readiness,
            heartbeat,
        },
    )
    .await;

    finished.cancel();
    let _ = first_login.await;
    if let Some(OpsServer { task, .. }) = ops {
        let _ = task.await;
    }
    if let Some(reason) = auth.gave_up() {
        return Err(PublisherError::LoginRefused(reason));
    }
    let counts = result?;
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
    tracing::info!(
        rows_received = summary.rows_received,
        rows_sent = summary.rows_sent,
        batches_accepted = summary.batches_accepted,
        rows_dead_lettered = summary.rows_dead_lettered,
        rows_abandoned = summary.rows_abandoned,
        predictions_written = summary.predictions_written,
        "publisher finished"
    );
    Ok(summary)
}

/// What [`deliver`] runs with.
struct Parts {
    builder: BodyBuilder,
    api: Api,
    auth: Arc<Auth>,
    metrics: PublisherMetrics,
    readiness: Readiness,
    heartbeat: Heartbeat,
}

/// Connects to the rows stream and runs intake, batcher, senders and pollers to the end.
async fn deliver(
    config: &Config,
    shutdown: CancellationToken,
    parts: Parts,
) -> Result<pipeline::IntakeCounts, PublisherError> {
    let Parts {
        builder,
        api,
        auth,
        metrics,
        readiness,
        heartbeat,
    } = parts;
    let mut broker = BrokerConfig::parse(&config.rows_url)?;
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
    let Some(consumer) = connect(config, &broker, &readiness, &heartbeat, &shutdown).await? else {
        return Ok(pipeline::IntakeCounts::default());
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

    let liveness = Liveness::new(heartbeat);
    let context = Context {
        builder,
        api,
        auth,
        metrics: metrics.clone(),
        liveness: liveness.clone(),
        batch_rows: config.batch_rows,
        batch_delay: config.batch_delay,
        max_in_flight: config.max_in_flight,
        retry_initial: config.retry_initial,
        retry_max: config.retry_max,
        polls,
        shutdown: shutdown.clone(),
        delivery: pipeline::DeliveryHealth::new(readiness.clone(), config.unready_after_failures),
    };
    let (to_batcher, from_intake) = mpsc::channel(2);
    let (events_tx, events_rx) = mpsc::unbounded_channel();
    let batcher = tokio::spawn(pipeline::run_batcher(from_intake, context, events_tx));
    let intake = Intake {
        consumer,
        prefetch: usize::from(broker.prefetch),
        metrics,
        readiness,
        liveness,
        retry_initial: config.retry_initial,
        retry_max: config.retry_max,
    };
    let counts = intake.run(to_batcher, events_rx, shutdown).await;
    let task = |e: tokio::task::JoinError| PublisherError::Task(e.to_string());
    batcher.await.map_err(task)?;
    if let Some(pollers) = pollers {
        pollers.await.map_err(task)?;
    }
    Ok(counts)
}

/// Connects to the rows stream, retrying with backoff (not ready meanwhile) while the broker is
/// unreachable. `None` when shutdown came first.
async fn connect(
    config: &Config,
    broker: &BrokerConfig,
    readiness: &Readiness,
    heartbeat: &Heartbeat,
    shutdown: &CancellationToken,
) -> Result<Option<Consumer>, PublisherError> {
    let mut backoff = Backoff::new(config.retry_initial, config.retry_max);
    let outcome = connect_with_retry(
        &mut backoff,
        shutdown,
        Some(heartbeat),
        || Consumer::connect(broker),
        |error| error.is_retryable(),
        |error, delay| {
            readiness.set_not_met(READY_BROKER, error.to_string());
            tracing::warn!(%error, retry_in_ms = delay.as_millis() as u64, "rows broker unreachable; retrying");
        },
    )
    .await;
    match outcome {
        RetryOutcome::Connected(consumer) => {
            readiness.set_met(READY_BROKER);
            tracing::info!(
                broker = %broker.redacted_url(),
                stream = %broker.stream,
                group = %broker.group,
                "consuming the rows stream"
            );
            Ok(Some(consumer))
        }
        RetryOutcome::Failed(error) => Err(error.into()),
        RetryOutcome::Shutdown => Ok(None),
    }
}

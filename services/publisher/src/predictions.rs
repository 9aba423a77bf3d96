//! After a batch was accepted: poll `GET /mlresults/{id}/` until the result is finished
//! (bounded, with backoff), then write each prediction beside its row identity and the model
//! name: appended to a CSV and fsynced per job, and/or published as one message per job.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use netpipe_runtime::broker::{BrokerConfig, Publisher};
use serde::Serialize;
use serde_json::Value;
use tokio::io::AsyncWriteExt;
use tokio::sync::{Semaphore, mpsc};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::api::Api;
use crate::auth::Auth;
use crate::batch::RowIdentity;
use crate::error::PublisherError;
use crate::metrics::PublisherMetrics;
use netpipe_runtime::service::{Backoff, sleep_or_shutdown};

/// One accepted job whose predictions are wanted.
#[derive(Debug)]
pub struct PollJob {
    pub job_id: i64,
    pub result_id: i64,
    pub rows: Vec<RowIdentity>,
}

/// One prediction beside its row.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PredictionRecord {
    pub agent: String,
    pub seq: u64,
    pub model: String,
    pub job_id: i64,
    pub result_id: i64,
    /// The predicted value of the predict feature, as the server sent it (`1`, `0`, `0.73`).
    pub prediction: String,
    pub label_name: String,
}

pub const CSV_HEADER: &str = "agent,seq,model,job_id,result_id,prediction,label_name\n";

#[derive(Debug, Clone)]
pub struct PollSettings {
    pub initial: Duration,
    pub max: Duration,
    pub timeout: Duration,
    pub max_polls: usize,
    pub model: String,
    pub predict_feature: String,
}

/// Where predictions go.
pub struct Sinks {
    csv: Option<(PathBuf, tokio::fs::File)>,
    stream: Option<Publisher>,
}

impl Sinks {
    pub async fn open(
        csv: Option<PathBuf>,
        stream: Option<(String, String)>,
    ) -> Result<Self, PublisherError> {
        let csv = match csv {
            Some(path) => {
                let err = |e: std::io::Error| PublisherError::Predictions {
                    path: path.display().to_string(),
                    reason: e.to_string(),
                };
                let mut file = tokio::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&path)
                    .await
                    .map_err(err)?;
                if file.metadata().await.map_err(err)?.len() == 0 {
                    file.write_all(CSV_HEADER.as_bytes()).await.map_err(err)?;
                    file.sync_data().await.map_err(err)?;
                }
                Some((path, file))
            }
            None => None,
        };
        let stream = match stream {
            Some((url, name)) => {
                let mut config = BrokerConfig::parse(&url)?;
                config.stream = name.clone();
                config.exchange = name.clone();
                config.routing_key = name;
                Some(Publisher::connect(&config).await?)
            }
            None => None,
        };
        Ok(Sinks { csv, stream })
    }

    async fn write(&mut self, records: &[PredictionRecord]) -> Result<(), String> {
        if let Some((path, file)) = &mut self.csv {
            let mut writer = csv::WriterBuilder::new()
                .has_headers(false)
                .from_writer(Vec::new());
            for record in records {
                writer.serialize(record).map_err(|e| e.to_string())?;
            }
            let bytes = writer.into_inner().map_err(|e| e.to_string())?;
            file.write_all(&bytes)
                .await
                .map_err(|e| format!("{}: {e}", path.display()))?;
            file.sync_data()
                .await
                .map_err(|e| format!("{}: {e}", path.display()))?;
        }
        if let Some(stream) = &self.stream {
            let body = serde_json::to_vec(records).unwrap_or_default();
            stream.publish(body).await.map_err(|e| e.to_string())?;
        }
        Ok(())
    }
}

/// Runs until `jobs` closes and every poll has ended (or shutdown).
pub async fn run_pollers(
    mut jobs: mpsc::Receiver<PollJob>,
    api: Api,
    auth: Arc<Auth>,
    settings: PollSettings,
    mut sinks: Sinks,
    metrics: PublisherMetrics,
    shutdown: CancellationToken,
) {
    let limit = Arc::new(Semaphore::new(settings.max_polls.max(1)));
    // Unbounded but holds at most one message per running poll (max_polls).
    let (found_tx, mut found_rx) = mpsc::unbounded_channel::<Vec<PredictionRecord>>();
    let settings = Arc::new(settings);
    let mut polls = JoinSet::new();
    let mut jobs_open = true;
    loop {
        tokio::select! {
            job = jobs.recv(), if jobs_open => match job {
                Some(job) => {
                    let Ok(permit) = limit.clone().acquire_owned().await else { break };
                    let (api, auth, settings, metrics, shutdown, found) = (
                        api.clone(), auth.clone(), settings.clone(), metrics.clone(),
                        shutdown.clone(), found_tx.clone(),
                    );
                    polls.spawn(async move {
                        let _permit = permit;
                        if let Some(records) = poll_job(&api, &auth, &settings, &metrics, &shutdown, job).await {
                            let _ = found.send(records);
                        }
                    });
                }
                None => jobs_open = false,
            },
            records = found_rx.recv() => {
                if let Some(records) = records {
                    match sinks.write(&records).await {
                        Ok(()) => metrics.predictions_written.inc_by(records.len() as u64),
                        Err(error) => {
                            metrics.predictions_skipped.with_label_values(&["write"]).inc();
                            tracing::error!(%error, "cannot write predictions");
                        }
                    }
                }
            },
            Some(_) = polls.join_next(), if !polls.is_empty() => {},
            else => {}
        }
        if !jobs_open && polls.is_empty() {
            break;
        }
    }
    drop(found_tx);
    while let Some(records) = found_rx.recv().await {
        if sinks.write(&records).await.is_ok() {
            metrics.predictions_written.inc_by(records.len() as u64);
        }
    }
}

async fn poll_job(
    api: &Api,
    auth: &Auth,
    settings: &PollSettings,
    metrics: &PublisherMetrics,
    shutdown: &CancellationToken,
    job: PollJob,
) -> Option<Vec<PredictionRecord>> {
    let started = Instant::now();
    let mut backoff = Backoff::new(settings.initial, settings.max);
    let skip = |reason: &str| {
        metrics
            .predictions_skipped
            .with_label_values(&[reason])
            .inc();
        None
    };
    loop {
        if started.elapsed() >= settings.timeout {
            tracing::warn!(
                job_id = job.job_id,
                result_id = job.result_id,
                "gave up waiting for predictions"
            );
            return skip("timeout");
        }
        if !sleep_or_shutdown(backoff.next_delay(), shutdown).await {
            return skip("shutdown");
        }
        let token = auth.token(shutdown).await?;
        let reply = match api.get_result(&token.value, job.result_id).await {
            Ok(reply) => reply,
            Err(e) => {
                metrics
                    .prediction_polls
                    .with_label_values(&[e.label()])
                    .inc();
                continue;
            }
        };
        metrics
            .prediction_polls
            .with_label_values(&[&reply.status.to_string()])
            .inc();
        match reply.status {
            200 => {}
            401 => {
                auth.reject(&token);
                continue;
            }
            404 | 400 => return skip("not_found"),
            _ => continue,
        }
        let Ok(result) = serde_json::from_slice::<Value>(&reply.body) else {
            continue;
        };
        if result.get("status").and_then(Value::as_str) != Some("finished") {
            continue;
        }
        return Some(records_from_result(&result, &job, settings));
    }
}

/// Matches each prediction to its row by `_row_idx` (the position in `predict_rows`),
/// falling back to its position in the list.
pub fn records_from_result(
    result: &Value,
    job: &PollJob,
    settings: &PollSettings,
) -> Vec<PredictionRecord> {
    let predictions = result
        .pointer("/predictions_json/predictions")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    let mut records = Vec::with_capacity(predictions.len());
    for (position, prediction) in predictions.iter().enumerate() {
        let index = prediction
            .get("_row_idx")
            .and_then(Value::as_u64)
            .and_then(|i| usize::try_from(i).ok())
            .unwrap_or(position);
        let Some(row) = job.rows.get(index) else {
            continue;
        };
        let value = match prediction.get(&settings.predict_feature) {
            Some(Value::String(s)) => s.clone(),
            Some(v) => v.to_string(),
            None => String::new(),
        };
        records.push(PredictionRecord {
            agent: row.agent.clone(),
            seq: row.seq,
            model: settings.model.clone(),
            job_id: job.job_id,
            result_id: job.result_id,
            prediction: value,
            label_name: prediction
                .get("label_name")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string(),
        });
    }
    records
}

//! Watch mode (`--watch-secs N`): every N seconds list the inputs; when the list differs from
//! the last build's (a file appeared or went away, a file's length changed; for a processor
//! file, its committed length), build again. A file without a processor manifest is used only
//! once it has not been modified for one interval, so a file still being copied in is not read
//! half-way; a processor file is read up to its manifest's committed length at once.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio_util::sync::CancellationToken;

use crate::error::BuildError;
use crate::inputs::{self, InputFile};
use crate::service::{BEAT_EVERY, BuilderOps, READY_INPUTS, READY_LAST_BUILD, RunOutcome};
use crate::{Config, check_config, excluded_inputs};

/// What identifies the inputs of a build: path, bytes to read, and for files without a
/// manifest their modification time.
#[derive(Debug, Clone, PartialEq, Eq)]
struct InputKey {
    path: PathBuf,
    size: u64,
    modified: Option<SystemTime>,
}

fn keys(files: &[InputFile]) -> Vec<InputKey> {
    files
        .iter()
        .map(|f| InputKey {
            path: f.path.clone(),
            size: f.size,
            // A processor file's modification time also moves for rows not yet committed.
            modified: if f.committed_prefix { None } else { f.modified },
        })
        .collect()
}

/// The first file without a manifest that was modified within the last `settle`.
fn unsettled(files: &[InputFile], settle: Duration) -> Option<&InputFile> {
    let now = SystemTime::now();
    files.iter().find(|f| {
        !f.committed_prefix
            && f.modified
                .is_some_and(|m| now.duration_since(m).unwrap_or_default() < settle)
    })
}

/// Rebuilds on every change of the inputs until `shutdown`. Configuration errors (flags,
/// label rules, output paths) end it at once; a failed build only makes `/ready` fail until a
/// later build succeeds. A failed build is retried when the inputs change.
pub async fn watch(
    config: Arc<Config>,
    every: Duration,
    ops: &BuilderOps,
    shutdown: &CancellationToken,
) -> Result<RunOutcome, BuildError> {
    check_config(&config)?;
    let excluded = excluded_inputs(&config);
    let mut last_built: Option<Vec<InputKey>> = None;
    let mut reported: Option<String> = None;
    let (mut builds, mut failed) = (0u64, 0u64);
    ops.readiness.set_not_met(READY_LAST_BUILD, "no build yet");
    tracing::info!(
        every_secs = every.as_secs(),
        inputs = %describe_inputs(&config),
        "watching the inputs; rebuilding when they change"
    );
    loop {
        ops.heartbeat.beat();
        if ops.check_inputs(&config) {
            match inputs::discover(&config, &excluded) {
                Ok(files) => {
                    reported = None;
                    let key = keys(&files);
                    if last_built.as_ref() != Some(&key) {
                        if let Some(busy) = unsettled(&files, every) {
                            tracing::debug!(file = %busy.name, "waiting until the file stops changing");
                        } else {
                            builds += 1;
                            tracing::info!(files = files.len(), "inputs changed; building");
                            match ops.build(config.clone(), shutdown.child_token()).await {
                                Ok(summary) => tracing::info!("{summary}"),
                                Err(BuildError::Cancelled) => {
                                    tracing::info!("build stopped by shutdown; nothing written");
                                    break;
                                }
                                Err(error) => {
                                    failed += 1;
                                    tracing::error!(%error, kind = error.kind(), "build failed; retrying when the inputs change");
                                }
                            }
                            last_built = Some(key);
                        }
                    }
                }
                Err(BuildError::NoInputs(why)) => {
                    if last_built.is_none() {
                        ops.readiness.set_not_met(
                            READY_LAST_BUILD,
                            format!("no build yet: no input files ({why})"),
                        );
                    }
                    report_once(&mut reported, format!("no input files: {why}"));
                }
                Err(error) => {
                    ops.readiness.set_not_met(READY_INPUTS, error.to_string());
                    report_once(&mut reported, error.to_string());
                }
            }
        }
        if !pause(every, ops, shutdown).await {
            break;
        }
    }
    tracing::info!(builds, failed, "watch stopped");
    Ok(RunOutcome::Stopped { builds, failed })
}

/// Logs a problem when it is new (not at every look).
fn report_once(reported: &mut Option<String>, problem: String) {
    if reported.as_ref() != Some(&problem) {
        tracing::warn!(problem = %problem, "cannot build yet");
        *reported = Some(problem);
    }
}

fn describe_inputs(config: &Config) -> String {
    if config.inputs.is_empty() {
        config.glob_pattern()
    } else {
        format!("{} listed file(s)", config.inputs.len())
    }
}

/// Waits `every`, beating the heartbeat; false when shutdown came first.
async fn pause(every: Duration, ops: &BuilderOps, shutdown: &CancellationToken) -> bool {
    let deadline = tokio::time::Instant::now() + every;
    loop {
        let next = (tokio::time::Instant::now() + BEAT_EVERY).min(deadline);
        tokio::select! {
            () = shutdown.cancelled() => return false,
            () = tokio::time::sleep_until(next) => {}
        }
        ops.heartbeat.beat();
        if tokio::time::Instant::now() >= deadline {
            return true;
        }
    }
}

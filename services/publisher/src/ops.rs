//! /health, /ready and /metrics. (To move onto shared::ops once that lands.)

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use tokio_util::sync::CancellationToken;

use crate::auth::Auth;
use crate::error::PublisherError;
use crate::metrics::Metrics;

#[derive(Clone)]
pub struct OpsState {
    pub metrics: Metrics,
    pub auth: Arc<Auth>,
    pub broker_ok: Arc<AtomicBool>,
}

/// Ready when the last login worked (or none was needed yet) and the broker answers.
pub fn is_ready(state: &OpsState) -> bool {
    state.auth.is_healthy() && state.broker_ok.load(Ordering::Relaxed)
}

pub fn router(state: OpsState) -> Router {
    Router::new()
        .route("/health", get(|| async { "ok\n" }))
        .route(
            "/ready",
            get(|State(state): State<OpsState>| async move {
                if is_ready(&state) {
                    (StatusCode::OK, "ready\n")
                } else if !state.auth.is_healthy() {
                    (
                        StatusCode::SERVICE_UNAVAILABLE,
                        "not ready: AntiNex login failing\n",
                    )
                } else {
                    (
                        StatusCode::SERVICE_UNAVAILABLE,
                        "not ready: rows broker unreachable\n",
                    )
                }
            }),
        )
        .route(
            "/metrics",
            get(|State(state): State<OpsState>| async move {
                (
                    [("content-type", "text/plain; version=0.0.4")],
                    state.metrics.render(),
                )
            }),
        )
        .with_state(state)
}

/// Binds now (so a bad address is a start-up error) and serves until shutdown.
pub async fn serve(
    addr: &str,
    state: OpsState,
    shutdown: CancellationToken,
) -> Result<(SocketAddr, tokio::task::JoinHandle<()>), PublisherError> {
    let err = |reason: String| PublisherError::Ops {
        addr: addr.to_string(),
        reason,
    };
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| err(e.to_string()))?;
    let local = listener.local_addr().map_err(|e| err(e.to_string()))?;
    let handle = tokio::spawn(async move {
        let served = axum::serve(listener, router(state))
            .with_graceful_shutdown(async move { shutdown.cancelled().await })
            .await;
        if let Err(error) = served {
            tracing::error!(%error, "ops endpoint stopped");
        }
    });
    Ok((local, handle))
}

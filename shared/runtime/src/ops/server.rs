//! The ops HTTP server: `/health`, `/ready`, `/metrics` on their own port.

use std::net::SocketAddr;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::{Heartbeat, Metrics, Readiness};

/// What the ops endpoints report on. Clone it into every task that updates it.
#[derive(Debug, Clone)]
pub struct OpsState {
    pub heartbeat: Heartbeat,
    pub readiness: Readiness,
    pub metrics: Metrics,
}

impl OpsState {
    pub fn new(heartbeat: Heartbeat, readiness: Readiness, metrics: Metrics) -> Self {
        OpsState {
            heartbeat,
            readiness,
            metrics,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum OpsError {
    #[error("ops server cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error(transparent)]
    Address(#[from] crate::service::OpsAddrError),
}

/// A running ops server.
#[derive(Debug)]
pub struct OpsServer {
    /// The address actually bound (useful with port 0).
    pub local_addr: SocketAddr,
    /// Finishes after `shutdown` is cancelled and open requests are answered.
    pub task: JoinHandle<()>,
}

/// [`serve`] at a service's `OPS_ADDR`: `None` when it is `off`.
pub async fn serve_at(
    addr: &crate::service::OpsAddr,
    state: OpsState,
    shutdown: CancellationToken,
) -> Result<Option<OpsServer>, OpsError> {
    match addr.resolve().await? {
        Some(addr) => serve(addr, state, shutdown).await.map(Some),
        None => Ok(None),
    }
}

/// Binds `addr` (fails right away if it cannot) and serves the ops routes until `shutdown`.
pub async fn serve(
    addr: SocketAddr,
    state: OpsState,
    shutdown: CancellationToken,
) -> Result<OpsServer, OpsError> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| OpsError::Bind { addr, source })?;
    let local_addr = listener
        .local_addr()
        .map_err(|source| OpsError::Bind { addr, source })?;
    let app = router(state);
    let task = tokio::spawn(async move {
        let served = axum::serve(listener, app)
            .with_graceful_shutdown(shutdown.cancelled_owned())
            .await;
        if let Err(e) = served {
            tracing::warn!(error = %e, "ops server stopped with an error");
        }
    });
    tracing::info!(%local_addr, "ops server listening (/health, /ready, /metrics)");
    Ok(OpsServer { local_addr, task })
}

/// The ops routes, for embedding in another server.
pub fn router(state: OpsState) -> Router {
    Router::new()
        .route("/health", get(health))
        .route("/ready", get(ready))
        .route("/metrics", get(metrics))
        .with_state(state)
}

async fn health(State(state): State<OpsState>) -> Response {
    let age = state.heartbeat.age();
    if state.heartbeat.is_alive() {
        (StatusCode::OK, "ok\n").into_response()
    } else {
        let body = format!(
            "main loop stalled: last heartbeat {} ms ago (limit {} ms)\n",
            age.as_millis(),
            state.heartbeat.max_age().as_millis()
        );
        (StatusCode::SERVICE_UNAVAILABLE, body).into_response()
    }
}

async fn ready(State(state): State<OpsState>) -> Response {
    let report = state.readiness.report();
    let status = if report.ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, axum::Json(report)).into_response()
}

async fn metrics(State(state): State<OpsState>) -> Response {
    let body = state.metrics.render();
    (
        StatusCode::OK,
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        body,
    )
        .into_response()
}

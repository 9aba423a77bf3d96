//! A STAND-IN for the AntiNex REST API (not the real server), built from the contract in
//! docs/publisher.md: JWT login, the exact 400/401/415/500 bodies, trailing-slash rules, jobs
//! and results with predictions after a delay, plus switchable failures for tests.
//! `Standin::start` runs it in-process (publisher tests, `netpipe` tests); `antinex-standin` is
//! the binary (compose, benchmarks).

pub mod jwt;
pub mod records;
mod routes;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

pub use records::Job;

#[derive(Debug, Clone)]
pub struct User {
    pub id: i64,
    pub username: String,
    pub password: String,
    pub email: String,
    pub active: bool,
}

#[derive(Debug, Clone)]
pub struct StandinConfig {
    /// HS256 key (`DJANGO_SECRET_KEY`).
    pub secret: String,
    /// `exp = now + this` (300 s on the real server).
    pub token_lifetime: Duration,
    /// A job's result is `finished`, with predictions, this long after creation.
    pub prediction_delay: Duration,
    pub users: Vec<User>,
    /// Keep posted rows (for assertions and full predictions); off for long benchmarks.
    pub keep_rows: bool,
    /// Echo rows in `predict_manifest.predict_rows` as the real server does.
    pub echo_rows: bool,
}

impl Default for StandinConfig {
    fn default() -> Self {
        StandinConfig {
            secret: "supersecret".into(),
            token_lifetime: Duration::from_secs(300),
            prediction_delay: Duration::from_millis(500),
            users: vec![User {
                id: 1,
                username: "root".into(),
                password: "123321".into(),
                email: "root@email.com".into(),
                active: true,
            }],
            keep_rows: true,
            echo_rows: true,
        }
    }
}

/// Failures to inject, switchable at any time.
#[derive(Debug, Default)]
pub struct Faults {
    /// The next N `POST /ml/` answer 500 `{"job":null,"results":null}`.
    pub fail_next: AtomicU32,
    /// The next N `POST /ml/` wait `slow_ms` before being handled.
    pub slow_next: AtomicU32,
    pub slow_ms: AtomicU64,
    /// The next N `POST /ml/` answer 400 (a refused body).
    pub refuse_next: AtomicU32,
    /// Every `POST /ml/` answers 400 while set.
    pub refuse_all: AtomicBool,
}

/// Takes one from a countdown; true if it was positive.
pub(crate) fn take(counter: &AtomicU32) -> bool {
    counter
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok()
}

/// What the stand-in saw, for assertions.
#[derive(Debug, Default)]
pub struct Counters {
    pub logins_ok: AtomicU64,
    pub logins_refused: AtomicU64,
    /// 401 answers on protected routes.
    pub unauthorized: AtomicU64,
    pub ml_posts: AtomicU64,
    pub jobs_created: AtomicU64,
    /// Requests whose `Idempotency-Key` was already used: answered with the first job.
    pub duplicates: AtomicU64,
    pub rows_accepted: AtomicU64,
    pub result_gets: AtomicU64,
}

#[derive(Debug, Default)]
pub struct Store {
    pub jobs: Vec<Job>,
    pub by_key: HashMap<String, usize>,
}

#[derive(Debug)]
pub struct StandinState {
    pub config: StandinConfig,
    pub faults: Faults,
    pub counters: Counters,
    pub store: Mutex<Store>,
}

impl StandinState {
    pub fn new(config: StandinConfig) -> Self {
        StandinState {
            config,
            faults: Faults::default(),
            counters: Counters::default(),
            store: Mutex::new(Store::default()),
        }
    }

    pub fn store(&self) -> std::sync::MutexGuard<'_, Store> {
        self.store.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Every accepted job (a snapshot).
    pub fn jobs(&self) -> Vec<Job> {
        self.store().jobs.clone()
    }

    pub fn count(&self, counter: &AtomicU64) -> u64 {
        counter.load(Ordering::SeqCst)
    }
}

/// A running stand-in.
pub struct Standin {
    pub addr: SocketAddr,
    pub state: Arc<StandinState>,
    shutdown: CancellationToken,
    handle: tokio::task::JoinHandle<()>,
}

impl Standin {
    /// Listens on `addr` (`127.0.0.1:0` picks a free port).
    pub async fn start(config: StandinConfig, addr: &str) -> std::io::Result<Self> {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let state = Arc::new(StandinState::new(config));
        let shutdown = CancellationToken::new();
        let stop = shutdown.clone();
        let app = routes::router(state.clone());
        let handle = tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async move { stop.cancelled().await })
                .await;
        });
        Ok(Standin {
            addr,
            state,
            shutdown,
            handle,
        })
    }

    /// `http://127.0.0.1:PORT` (no trailing slash, like ANTINEX_URL).
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub async fn stop(self) {
        self.shutdown.cancel();
        let _ = self.handle.await;
    }
}

pub use routes::router;

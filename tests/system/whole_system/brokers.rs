//! The real brokers on this machine, per-test names on them, and their removal afterwards.

use lapin::options::{ExchangeDeleteOptions, QueueDeleteOptions};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Redis,
    RabbitMq,
}

impl Backend {
    pub fn url(self) -> &'static str {
        match self {
            Backend::Redis => "redis://127.0.0.1:6379",
            Backend::RabbitMq => "amqp://guest:guest@127.0.0.1:5672/%2f",
        }
    }

    pub fn tag(self) -> &'static str {
        match self {
            Backend::Redis => "redis",
            Backend::RabbitMq => "amqp",
        }
    }
}

/// Stream / queue / exchange names of one test run, unique to this process and backend.
#[derive(Debug, Clone)]
pub struct Names {
    pub frames: String,
    pub frames_dead: String,
    pub rows: String,
    pub rows_dead: String,
}

impl Names {
    pub fn new(backend: Backend) -> Self {
        let base = format!("whole-system.{}.{}", backend.tag(), std::process::id());
        Names {
            frames: format!("{base}.frames"),
            frames_dead: format!("{base}.frames.dead"),
            rows: format!("{base}.rows"),
            rows_dead: format!("{base}.rows.dead"),
        }
    }

    fn queues(&self) -> [&str; 4] {
        [&self.frames, &self.frames_dead, &self.rows, &self.rows_dead]
    }
}

/// Deletes the run's streams (Redis) or queues and exchanges (RabbitMQ) when dropped, also when
/// the test failed. The exchanges have the names of their queues.
pub struct Cleanup {
    pub backend: Backend,
    pub names: Names,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        else {
            return;
        };
        let names = self.names.clone();
        let backend = self.backend;
        runtime.block_on(async move {
            let cleaned = tokio::time::timeout(std::time::Duration::from_secs(10), async {
                match backend {
                    Backend::Redis => delete_streams(&names).await,
                    Backend::RabbitMq => delete_queues(&names).await,
                }
            })
            .await;
            if !matches!(cleaned, Ok(Ok(()))) {
                eprintln!("whole_system: could not remove the test's broker objects: {cleaned:?}");
            }
        });
    }
}

async fn delete_streams(names: &Names) -> Result<(), String> {
    let client = redis::Client::open(Backend::Redis.url()).map_err(|e| e.to_string())?;
    let mut conn = client
        .get_multiplexed_async_connection()
        .await
        .map_err(|e| e.to_string())?;
    redis::cmd("DEL")
        .arg(&names.queues())
        .query_async::<()>(&mut conn)
        .await
        .map_err(|e| e.to_string())
}

async fn delete_queues(names: &Names) -> Result<(), String> {
    let connection = lapin::Connection::connect(
        Backend::RabbitMq.url(),
        lapin::ConnectionProperties::default(),
    )
    .await
    .map_err(|e| e.to_string())?;
    // A failed delete (not found) closes its channel: one channel per delete.
    for queue in names.queues() {
        if let Ok(channel) = connection.create_channel().await {
            let _ = channel
                .queue_delete(queue.into(), QueueDeleteOptions::default())
                .await;
        }
        if let Ok(channel) = connection.create_channel().await {
            let _ = channel
                .exchange_delete(queue.into(), ExchangeDeleteOptions::default())
                .await;
        }
    }
    let _ = connection.close(200, "done".into()).await;
    Ok(())
}

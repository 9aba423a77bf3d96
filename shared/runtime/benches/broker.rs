//! Publish throughput into the real local brokers (not a test): frame batches of realistic
//! frames, with 1..N publishes in flight. Prints a Markdown table for docs/brokers.md.
//!
//! `cargo bench -p netpipe-runtime --bench broker` (env: BENCH_FRAMES per message, default 500;
//! BENCH_MESSAGES per run, default 400; BENCH_REDIS_URL; BENCH_AMQP_URL).

use std::sync::Arc;
use std::time::{Duration, Instant};

use netpipe_packet::Frame;
use netpipe_runtime::broker::codec::encode_frames;
use netpipe_runtime::broker::{BrokerConfig, Publisher};

const FRAME_TEMPLATE: &str = r#"{"v":1,"agent":"agent-01","boot":1795940000000000000,"seq":0,
"ts_ns":1795940000123456789,"wire_len":126,"cap_len":126,"link":1,
"eth":{"src":"02:42:ac:11:00:02","dst":"02:42:ac:11:00:03","type":2048},
"ipv4":{"ihl":5,"tos":0,"len":112,"id":54321,"flags":2,"frag":0,"ttl":64,"proto":6,"chksum":4660,
"src":"172.17.0.2","dst":"172.17.0.3"},
"tcp":{"sport":44312,"dport":8080,"seq":123456789,"ack":987654321,"dataofs":8,"flags":24,
"window":502,"chksum":22136,"urgptr":0},
"payload":{"len":18,"hex":"474554202f20485454502f312e310d0a0d0a"}}"#;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn frames(count: usize) -> Vec<Frame> {
    let template: Frame = serde_json::from_str(FRAME_TEMPLATE).expect("template is a valid frame");
    (0..count as u64)
        .map(|seq| {
            let mut frame = template.clone();
            frame.seq = 1_000_000 + seq;
            frame.ts_ns += seq as i64 * 1_000;
            frame
        })
        .collect()
}

struct Row {
    backend: &'static str,
    in_flight: usize,
    messages: usize,
    elapsed: Duration,
}

async fn run(
    backend: &'static str,
    config: &BrokerConfig,
    body: &Arc<Vec<u8>>,
    messages: usize,
    in_flight: usize,
) -> Result<Row, String> {
    let publisher = Publisher::connect(config)
        .await
        .map_err(|e| e.to_string())?;
    let started = Instant::now();
    let tasks: Vec<_> = (0..in_flight)
        .map(|task| {
            let publisher = publisher.clone();
            let body = body.clone();
            let share = messages / in_flight + usize::from(task < messages % in_flight);
            tokio::spawn(async move {
                for _ in 0..share {
                    publisher.publish(body.to_vec()).await?;
                }
                Ok::<(), netpipe_runtime::broker::BrokerError>(())
            })
        })
        .collect();
    for task in tasks {
        task.await
            .map_err(|e| e.to_string())?
            .map_err(|e| e.to_string())?;
    }
    let elapsed = started.elapsed();
    let stats = publisher.stats();
    assert_eq!(stats.published as usize, messages);
    Ok(Row {
        backend,
        in_flight,
        messages,
        elapsed,
    })
}

async fn clean_redis(url: &str, keys: &[&str]) {
    use deadpool_redis::redis;
    if let Ok(client) = redis::Client::open(url)
        && let Ok(mut conn) = client.get_multiplexed_async_connection().await
    {
        let _: Result<(), _> = redis::cmd("DEL").arg(keys).query_async(&mut conn).await;
    }
}

async fn clean_amqp(url: &str, queues: &[&str], exchange: &str) {
    use lapin::options::{ExchangeDeleteOptions, QueueDeleteOptions};
    let Ok(connection) = lapin::Connection::connect(url, Default::default()).await else {
        return;
    };
    for queue in queues {
        if let Ok(channel) = connection.create_channel().await {
            let _ = channel
                .queue_delete((*queue).into(), QueueDeleteOptions::default())
                .await;
        }
    }
    if let Ok(channel) = connection.create_channel().await {
        let _ = channel
            .exchange_delete(exchange.into(), ExchangeDeleteOptions::default())
            .await;
    }
    let _ = connection.close(200, "OK".into()).await;
}

#[tokio::main]
async fn main() {
    let frames_per_message = env_usize("BENCH_FRAMES", 500);
    let messages = env_usize("BENCH_MESSAGES", 400);
    let redis_url =
        std::env::var("BENCH_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379/0".into());
    let amqp_url = std::env::var("BENCH_AMQP_URL")
        .unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".into());

    let batch = frames(frames_per_message);
    let one = serde_json::to_vec(&batch[0]).unwrap_or_default().len();
    let started = Instant::now();
    let rounds = 20;
    let mut body = Vec::new();
    for _ in 0..rounds {
        body = encode_frames(&batch);
    }
    let encode = started.elapsed() / rounds;
    println!(
        "frame JSON {one} bytes; message {} bytes ({frames_per_message} frames); \
         encode_frames {:.2} ms/message = {:.0} frames/s on one core",
        body.len(),
        encode.as_secs_f64() * 1e3,
        frames_per_message as f64 / encode.as_secs_f64()
    );
    let body = Arc::new(body);

    let pid = std::process::id();
    let mut rows = Vec::new();
    for in_flight in [1, 4, 8] {
        let mut config = BrokerConfig::parse(redis_url.clone()).unwrap();
        config.stream = format!("netpipe-bench-{pid}-{in_flight}");
        config.dead_letter = format!("{}.dead", config.stream);
        config.max_len = Some(1000);
        clean_redis(&redis_url, &[&config.stream]).await;
        match run("redis streams", &config, &body, messages, in_flight).await {
            Ok(row) => rows.push(row),
            Err(e) => eprintln!("redis streams skipped: {e}"),
        }
        clean_redis(&redis_url, &[&config.stream]).await;

        let mut config = BrokerConfig::parse(amqp_url.clone()).unwrap();
        config.stream = format!("netpipe-bench-{pid}-{in_flight}");
        config.exchange = format!("{}.x", config.stream);
        config.dead_letter = format!("{}.dead", config.stream);
        match run("rabbitmq (quorum)", &config, &body, messages, in_flight).await {
            Ok(row) => rows.push(row),
            Err(e) => eprintln!("rabbitmq skipped: {e}"),
        }
        clean_amqp(
            &amqp_url,
            &[&config.stream, &config.dead_letter],
            &config.exchange,
        )
        .await;
    }

    println!();
    println!("| backend | in flight | messages | frames/message | MB/s | messages/s | frames/s |");
    println!("|---|---|---|---|---|---|---|");
    for row in rows {
        let seconds = row.elapsed.as_secs_f64();
        let bytes = (row.messages * body.len()) as f64;
        println!(
            "| {} | {} | {} | {} | {:.0} | {:.0} | {:.0} |",
            row.backend,
            row.in_flight,
            row.messages,
            frames_per_message,
            bytes / seconds / 1e6,
            row.messages as f64 / seconds,
            (row.messages * frames_per_message) as f64 / seconds
        );
    }
}

//! No silent loss on the Redis Streams path (issue 15), each test against its own private
//! redis-server: a full-speed replay into a running processor, a processor started after a big
//! replay, a live-style capture over its backlog bound, and an opt-in stream cap. Every packet
//! the agent captured is a row or a counted loss; with the defaults none is lost, and the stream
//! holds only the real backlog (the processor trims what it acknowledged).

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use capture_agent::Overflow;
use tokio_util::sync::CancellationToken;

/// A redis-server of this test alone, killed when dropped: no persistence, or AOF with
/// `appendfsync always`.
struct PrivateRedis {
    child: Child,
    url: String,
    port: u16,
    aof: bool,
    dir: tempfile::TempDir,
}

impl PrivateRedis {
    fn start() -> PrivateRedis {
        Self::start_with(false)
    }

    fn start_with(aof: bool) -> PrivateRedis {
        let dir = tempfile::tempdir().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Self::spawn(port, aof, dir.path());
        PrivateRedis {
            child,
            url: format!("redis://127.0.0.1:{port}"),
            port,
            aof,
            dir,
        }
    }

    fn spawn(port: u16, aof: bool, dir: &Path) -> Child {
        let mut command = Command::new("redis-server");
        command
            .args(["--bind", "127.0.0.1", "--port", &port.to_string()])
            .args(["--save", ""])
            .arg("--dir")
            .arg(dir);
        if aof {
            command.args(["--appendonly", "yes", "--appendfsync", "always"]);
        } else {
            command.args(["--appendonly", "no"]);
        }
        let child = command
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server (scripts/ensure-deps.sh installs it)");
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "private redis-server did not start"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        child
    }

    /// SIGKILL, then a new server on the same port and directory (it loads the AOF, if any).
    fn kill_9_and_restart(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
        self.child = Self::spawn(self.port, self.aof, self.dir.path());
    }

    async fn conn(&self) -> redis::aio::MultiplexedConnection {
        redis::Client::open(self.url.as_str())
            .unwrap()
            .get_multiplexed_async_connection()
            .await
            .unwrap()
    }

    async fn xlen(&self, stream: &str) -> u64 {
        redis::cmd("XLEN")
            .arg(stream)
            .query_async(&mut self.conn().await)
            .await
            .unwrap()
    }

    /// (pending, entries not yet delivered) of the processor's group, through the broker
    /// layer's lag (Redis's own `lag` may stay high after an AOF reload).
    async fn group_state(&self, stream: &str) -> (i64, i64) {
        let pending = self.pending(stream).await;
        let mut config = netpipe_runtime::broker::BrokerConfig::parse(self.url.clone()).unwrap();
        config.stream = stream.to_string();
        config.consumer = "lag-probe".into();
        let lag = match netpipe_runtime::broker::Consumer::connect(&config).await {
            Ok(mut consumer) => consumer.lag().await.ok().flatten().map_or(-1, |l| l as i64),
            Err(_) => -1,
        };
        (pending, lag)
    }

    async fn pending(&self, stream: &str) -> i64 {
        let Ok(reply) = redis::cmd("XINFO")
            .arg("GROUPS")
            .arg(stream)
            .query_async::<redis::Value>(&mut self.conn().await)
            .await
        else {
            return -1;
        };
        let groups = match reply {
            redis::Value::Array(groups) => groups,
            other => panic!("XINFO GROUPS: {other:?}"),
        };
        let group = groups.into_iter().next().expect("one group");
        let redis::Value::Array(fields) = group else {
            panic!("group: {group:?}");
        };
        let int = |name: &str| {
            fields
                .chunks(2)
                .find(|kv| matches!(&kv[0], redis::Value::BulkString(k) if k == name.as_bytes()))
                .and_then(|kv| match kv.get(1) {
                    Some(redis::Value::Int(n)) => Some(*n),
                    _ => None,
                })
                .unwrap_or(-1)
        };
        int("pending")
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The fixture generator's sample capture, written into `dir`; returns its path and size.
fn sample_pcap(dir: &Path) -> (PathBuf, u64) {
    let path = dir.join("sample.pcap");
    let packets = netpipe_runtime::capture::sample::write_sample_pcap(&path).unwrap();
    (path, packets as u64)
}

/// A replay of `pcap` `loops` times in small batches (many messages, so a stream cap or a
/// backlog bound is reached with a few hundred thousand packets).
fn agent_config(pcap: &Path, url: &str, stream: &str, loops: u64) -> capture_agent::Config {
    let mut config = capture_agent::Config::for_replay(pcap, url, stream);
    config.agent_id = Some("loss-agent".into());
    config.loops = loops;
    config.batch_size = 8;
    config.payload_bytes = Some(0);
    config.stats_interval_secs = 3600;
    config
}

fn processor_config(url: &str, stream: &str, ds: &Path) -> processor::Config {
    let mut config = processor::Config::new(url, ds);
    config.stream = stream.to_string();
    config.consumer = Some(format!("{stream}-c"));
    config.dead_letter = format!("{stream}.dead");
    config.save_after_num = 20_000;
    config.commit_interval_ms = 200;
    config
}

/// Rows of the netpipe CSVs in `dir`, and how many distinct `(agent, seq)` they hold.
fn rows_in(dir: &Path) -> (u64, u64) {
    let mut rows = 0;
    let mut seen = HashSet::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.extension().is_none_or(|e| e != "csv") {
            continue;
        }
        let mut reader = csv::Reader::from_path(&path).unwrap();
        let header = reader.headers().unwrap().clone();
        let agent = header.iter().position(|h| h == "agent").unwrap();
        let seq = header.iter().position(|h| h == "seq").unwrap();
        for record in reader.records() {
            let record = record.unwrap();
            rows += 1;
            seen.insert((record[agent].to_string(), record[seq].to_string()));
        }
    }
    (rows, seen.len() as u64)
}

async fn wait_drained(redis: &PrivateRedis, stream: &str, limit: Duration) {
    let started = Instant::now();
    loop {
        let state = redis.group_state(stream).await;
        if state == (0, 0) {
            return;
        }
        assert!(
            started.elapsed() < limit,
            "not drained in {limit:?}: (pending, lag) = {state:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits for the processor to drain the stream, stops it, and checks the books: every captured
/// packet is exactly one row (the agent counted no loss), and the manifests report none.
async fn settle(
    redis: &PrivateRedis,
    stream: &str,
    ds: &Path,
    agent: &capture_agent::Summary,
    processor: tokio::task::JoinHandle<Result<processor::Summary, processor::ProcessorError>>,
    stop: CancellationToken,
) -> processor::Summary {
    wait_drained(redis, stream, Duration::from_secs(120)).await;
    stop.cancel();
    let summary = processor.await.unwrap().unwrap();
    let (rows, distinct) = rows_in(ds);
    assert_eq!(agent.dropped_total(), 0, "{:?}", agent.dropped);
    assert_eq!(agent.frames_published, agent.packets_captured);
    assert_eq!(rows, distinct, "no row twice");
    assert_eq!(
        rows + agent.dropped_total(),
        agent.packets_captured,
        "rows + counted losses == packets"
    );
    for (_, manifest) in netpipe_runtime::dataset::Manifest::scan(ds).unwrap() {
        assert_eq!(manifest.loss.missing_seq, 0);
        assert!(manifest.loss.broker_lost_messages.is_empty());
    }
    // The agent's last in-band report reached the manifests: all captured, nothing lost.
    let report = agent_report(ds, "loss-agent").expect("an agent report in the manifests");
    assert_eq!(report.captured, agent.packets_captured);
    assert_eq!(report.dropped_total(), 0, "{report:?}");
    summary
}

/// The latest in-band loss report of `agent` over the manifests in `ds`.
fn agent_report(
    ds: &Path,
    agent: &str,
) -> Option<netpipe_runtime::broker::agent_stats::AgentStats> {
    netpipe_runtime::dataset::Manifest::scan(ds)
        .unwrap()
        .into_iter()
        .flat_map(|(_, m)| m.loss.agent_reports)
        .filter(|r| r.agent == agent)
        .max_by_key(|r| r.captured)
}

#[cfg_attr(
    not(feature = "system-tests"),
    ignore = "needs redis-server installed: run with --features system-tests (scripts/test.sh does)"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_speed_replay_into_a_running_processor_loses_nothing_and_the_stream_stays_small() {
    let redis = PrivateRedis::start();
    let dir = tempfile::tempdir().unwrap();
    let ds = dir.path().join("ds");
    let (pcap, per_loop) = sample_pcap(dir.path());
    let stream = "loss-running";
    let loops = 200_000 / per_loop;

    let stop = CancellationToken::new();
    let processor = tokio::spawn(processor::run(
        processor_config(&redis.url, stream, &ds),
        stop.clone(),
    ));
    let agent = capture_agent::run(
        agent_config(&pcap, &redis.url, stream, loops),
        CancellationToken::new(),
    )
    .await
    .unwrap();
    assert_eq!(agent.packets_captured, loops * per_loop);
    let messages = agent.batches_published;
    let summary = settle(&redis, stream, &ds, &agent, processor, stop).await;
    assert_eq!(summary.broker_lost_pending, 0);
    // The processor trimmed what it acknowledged: the stream holds the backlog, not history.
    let left = redis.xlen(stream).await;
    assert!(
        left < 1_000,
        "{left} of {messages} messages still in the stream after everything was acknowledged"
    );
}

#[cfg_attr(
    not(feature = "system-tests"),
    ignore = "needs redis-server installed: run with --features system-tests (scripts/test.sh does)"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn processor_started_after_a_big_replay_loses_nothing() {
    let redis = PrivateRedis::start();
    let dir = tempfile::tempdir().unwrap();
    let ds = dir.path().join("ds");
    let (pcap, per_loop) = sample_pcap(dir.path());
    let stream = "loss-late";
    // 240k packets in batches of 8: 30,000 messages, three times the default backlog bound
    // (10,000 messages), which the old default cap trimmed unread.
    let loops = 240_000 / per_loop;

    let agent = capture_agent::start(
        agent_config(&pcap, &redis.url, stream, loops),
        CancellationToken::new(),
    )
    .await
    .unwrap();
    // No processor yet: the replay fills the stream up to the bound and waits there.
    let metrics = agent.metrics.clone();
    // This Redis has no AOF: /ready stays 200 but says what a crash would lose.
    let started = Instant::now();
    while metrics.broker_durable.get() != 0 {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "durability never read"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let ready = reqwest::get(format!(
        "http://{}/ready",
        agent.ops_addr.expect("ops server")
    ))
    .await
    .unwrap();
    assert_eq!(ready.status(), 200);
    let body: serde_json::Value = ready.json().await.unwrap();
    let warning = body["warnings"][0].as_str().unwrap_or_default().to_string();
    assert!(
        warning.starts_with("broker durability: Redis has no AOF"),
        "{body}"
    );
    let started = Instant::now();
    while metrics.broker_backlog.get() < 10_000 {
        assert!(
            started.elapsed() < Duration::from_secs(90),
            "the replay never reached the backlog bound (backlog {}, published {})",
            metrics.broker_backlog.get(),
            metrics.batches_published.get()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let held = redis.xlen(stream).await;
    assert!(
        (10_000..10_100).contains(&held),
        "the stream holds the bound plus what was in flight: {held}"
    );
    assert!(metrics.frames_published.get() < loops * per_loop);

    let stop = CancellationToken::new();
    let processor = tokio::spawn(processor::run(
        processor_config(&redis.url, stream, &ds),
        stop.clone(),
    ));
    let agent = agent.wait().await.unwrap();
    assert_eq!(agent.packets_captured, loops * per_loop);
    settle(&redis, stream, &ds, &agent, processor, stop).await;
}

/// A live capture (`--overflow drop`) never waits: over the backlog bound it drops whole batches
/// and counts each packet of them (`dropped{reason="broker_backlog"}`), so published + dropped
/// == captured and the stream never grows past the bound (plus the batches in flight).
#[cfg_attr(
    not(feature = "system-tests"),
    ignore = "needs redis-server installed and root (live capture on lo): run with --features system-tests (scripts/test.sh does)"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_capture_over_the_backlog_bound_drops_and_counts() {
    let redis = PrivateRedis::start();
    let dir = tempfile::tempdir().unwrap();
    let (pcap, per_loop) = sample_pcap(dir.path());
    let stream = "loss-live";
    let mut config = agent_config(&pcap, &redis.url, stream, 20_000 / per_loop);
    config.overflow = Some(Overflow::Drop);
    config.max_backlog = 200;
    let agent = capture_agent::run(config, CancellationToken::new())
        .await
        .unwrap();
    let backlog = agent.dropped["broker_backlog"];
    assert!(backlog > 0, "{:?}", agent.dropped);
    assert_eq!(
        agent.frames_published + agent.dropped_total(),
        agent.packets_captured
    );
    let len = redis.xlen(stream).await;
    // + the batches in flight, + the in-band loss reports (which the bound does not stop).
    assert!((200..=200 + 8).contains(&len), "stream length {len}");

    // A processor started afterwards states the agent's loss in its manifest.
    let ds = dir.path().join("ds");
    let stop = CancellationToken::new();
    let processor = tokio::spawn(processor::run(
        processor_config(&redis.url, stream, &ds),
        stop.clone(),
    ));
    wait_drained(&redis, stream, Duration::from_secs(60)).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.cancel();
    processor.await.unwrap().unwrap();
    let report = agent_report(&ds, "loss-agent").expect("the agent's report");
    assert_eq!(report.captured, agent.packets_captured);
    assert_eq!(report.dropped.get("broker_backlog"), Some(&backlog));
    let (rows, _) = rows_in(&ds);
    assert_eq!(rows + report.dropped_total(), report.captured);
}

/// The old behaviour as an explicit opt-in: `--max-len` deletes unread entries, and each one is
/// counted (the agent's counter equals what the stream lost).
#[cfg_attr(
    not(feature = "system-tests"),
    ignore = "needs redis-server installed: run with --features system-tests (scripts/test.sh does)"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_opt_in_stream_cap_counts_every_entry_it_trims_unread() {
    let redis = PrivateRedis::start();
    let dir = tempfile::tempdir().unwrap();
    let (pcap, per_loop) = sample_pcap(dir.path());
    let stream = "loss-capped";
    let mut config = agent_config(&pcap, &redis.url, stream, 4_000 / per_loop);
    config.max_len = 100;
    config.max_in_flight = 1;
    // Only batches in the stream, so its length and the counter add up to what was published.
    config.stats_message_secs = 0;
    let started = capture_agent::start(config, CancellationToken::new())
        .await
        .unwrap();
    let metrics = started.metrics.clone();
    let agent = started.wait().await.unwrap();
    assert_eq!(agent.dropped_total(), 0);
    let len = redis.xlen(stream).await;
    let trimmed = metrics.stream_trimmed_unread.get();
    assert!(trimmed > 0);
    assert_eq!(
        trimmed + len,
        agent.batches_published,
        "every message is in the stream or counted as trimmed unread"
    );
}

/// Kills Redis (-9) mid-replay while the processor consumes, restarts it on the same port, and
/// returns (agent summary, rows written, missing_seq of the last manifest).
async fn replay_through_a_redis_crash(aof: bool) -> (capture_agent::Summary, u64, u64) {
    let mut redis = PrivateRedis::start_with(aof);
    let dir = tempfile::tempdir().unwrap();
    let ds = dir.path().join("ds");
    let (pcap, per_loop) = sample_pcap(dir.path());
    let stream = "loss-crash";
    let mut config = agent_config(&pcap, &redis.url, stream, 90_000 / per_loop);
    config.batch_size = 32;
    config.reconnect_max_ms = 200;
    let agent = capture_agent::start(config, CancellationToken::new())
        .await
        .unwrap();
    let stop = CancellationToken::new();
    let processor = tokio::spawn(processor::run(
        processor_config(&redis.url, stream, &ds),
        stop.clone(),
    ));
    let metrics = agent.metrics.clone();
    let started = Instant::now();
    while metrics.frames_published.get() < 30_000 {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "replay too slow"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    redis.kill_9_and_restart();
    let summary = agent.wait().await.unwrap();
    let started = Instant::now();
    // The processor reconnects (its group is recreated if the crash lost it) and drains.
    loop {
        let state = redis.group_state(stream).await;
        if state == (0, 0) {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "not drained: {state:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.cancel();
    processor.await.unwrap().unwrap();
    let (rows, distinct) = rows_in(&ds);
    assert_eq!(rows, distinct, "no row twice");
    let manifests = netpipe_runtime::dataset::Manifest::scan(&ds).unwrap();
    let latest = manifests
        .iter()
        .max_by_key(|(_, m)| m.file_index)
        .map(|(_, m)| m.loss.missing_seq)
        .unwrap_or(0);
    (summary, rows, latest)
}

/// With AOF `always` a Redis crash loses nothing it acknowledged: every packet is a row.
#[cfg_attr(
    not(feature = "system-tests"),
    ignore = "needs redis-server installed: run with --features system-tests (scripts/test.sh does)"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_kill_9_with_aof_always_loses_nothing() {
    let (agent, rows, missing) = replay_through_a_redis_crash(true).await;
    assert_eq!(agent.dropped_total(), 0, "{:?}", agent.dropped);
    assert_eq!(missing, 0);
    assert_eq!(rows, agent.packets_captured);
}

/// Without persistence a Redis crash loses what it held, and the loss is counted: the
/// manifest's missing_seq is exactly the packets that are not rows.
#[cfg_attr(
    not(feature = "system-tests"),
    ignore = "needs redis-server installed: run with --features system-tests (scripts/test.sh does)"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_kill_9_without_aof_loses_only_what_is_counted() {
    let (agent, rows, missing) = replay_through_a_redis_crash(false).await;
    eprintln!(
        "no AOF: {} packets, {rows} rows, {missing} counted missing",
        agent.packets_captured
    );
    assert_eq!(agent.dropped_total(), 0, "{:?}", agent.dropped);
    assert_eq!(
        rows + missing,
        agent.packets_captured,
        "loss == counted loss (rows {rows}, missing {missing})"
    );
}

//! The processor against the real Redis (127.0.0.1:6379): kill -9 and restart while a 100k-frame
//! stream is consumed, two processors in one group, an unusable DS_DIR, and the original's
//! messages as kombu envelopes (golden against the recorded CSVs).

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::{csv_files, frames, read_csv, unique};
use netpipe_runtime::broker::codec::encode_frames;
use netpipe_runtime::broker::kombu_envelope::encode_kombu_envelope;
use netpipe_runtime::broker::{BrokerConfig, Publisher};
use processor::Config;
use redis::AsyncCommands;
use tokio_util::sync::CancellationToken;

const REDIS: &str = "redis://127.0.0.1:6379";

async fn redis() -> redis::aio::MultiplexedConnection {
    redis::Client::open(REDIS)
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap()
}

async fn publish_frames(stream: &str, agent: &str, boot: u64, count: u64, per_message: usize) {
    let mut config = BrokerConfig::parse(REDIS).unwrap();
    config.stream = stream.to_string();
    config.max_len = None;
    let publisher = Publisher::connect(&config).await.unwrap();
    let all = frames(agent, boot, count);
    for chunk in all.chunks(per_message) {
        publisher.publish(encode_frames(chunk)).await.unwrap();
    }
}

/// (pending entries, entries not yet delivered) of a group.
async fn group_state(
    conn: &mut redis::aio::MultiplexedConnection,
    stream: &str,
    group: &str,
) -> (u64, u64) {
    let groups: redis::Value = redis::cmd("XINFO")
        .arg("GROUPS")
        .arg(stream)
        .query_async(conn)
        .await
        .unwrap_or(redis::Value::Nil);
    let mut pending = u64::MAX;
    let mut lag = u64::MAX;
    if let redis::Value::Array(items) = groups {
        for item in items {
            let fields: HashMap<String, redis::Value> = match item {
                redis::Value::Array(kv) => kv
                    .chunks(2)
                    .filter_map(|p| match (&p[0], p.get(1)) {
                        (redis::Value::BulkString(k), Some(v)) => {
                            Some((String::from_utf8_lossy(k).into_owned(), v.clone()))
                        }
                        (redis::Value::SimpleString(k), Some(v)) => Some((k.clone(), v.clone())),
                        _ => None,
                    })
                    .collect(),
                redis::Value::Map(kv) => kv
                    .into_iter()
                    .filter_map(|(k, v)| match k {
                        redis::Value::BulkString(k) => {
                            Some((String::from_utf8_lossy(&k).into_owned(), v))
                        }
                        redis::Value::SimpleString(k) => Some((k, v)),
                        _ => None,
                    })
                    .collect(),
                _ => continue,
            };
            let name = match fields.get("name") {
                Some(redis::Value::BulkString(b)) => String::from_utf8_lossy(b).into_owned(),
                Some(redis::Value::SimpleString(s)) => s.clone(),
                _ => continue,
            };
            if name != group {
                continue;
            }
            if let Some(redis::Value::Int(p)) = fields.get("pending") {
                pending = *p as u64;
            }
            if let Some(redis::Value::Int(l)) = fields.get("lag") {
                lag = *l as u64;
            }
        }
    }
    (pending, lag)
}

async fn wait_until_drained(stream: &str, group: &str, limit: Duration) {
    let mut conn = redis().await;
    let started = Instant::now();
    loop {
        if group_state(&mut conn, stream, group).await == (0, 0) {
            return;
        }
        assert!(
            started.elapsed() < limit,
            "stream {stream} not drained in {limit:?}: {:?}",
            group_state(&mut conn, stream, group).await
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn cleanup(keys: &[&str]) {
    let mut conn = redis().await;
    for key in keys {
        let _: Result<(), _> = conn.del(*key).await;
    }
}

/// Every (agent, seq) in the netpipe CSVs of `dir`, with how often it occurs.
fn seq_counts(dir: &Path) -> BTreeMap<(String, u64), u32> {
    let mut counts = BTreeMap::new();
    for file in csv_files(dir, "netdata") {
        let (header, rows) = read_csv(&file);
        assert_eq!(header[1], "agent");
        assert_eq!(header[2], "seq");
        for row in rows {
            *counts
                .entry((row[1].clone(), row[2].parse::<u64>().unwrap()))
                .or_insert(0) += 1;
        }
    }
    counts
}

/// A processor child that is killed when dropped, so a failing test leaves no process behind.
struct Running(Child);

impl std::ops::Deref for Running {
    type Target = Child;
    fn deref(&self) -> &Child {
        &self.0
    }
}

impl std::ops::DerefMut for Running {
    fn deref_mut(&mut self) -> &mut Child {
        &mut self.0
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// The flags every processor run here shares (group `{stream}-g`, dead letters
/// `{stream}-dead`), then `extra`.
fn processor_args(
    stream: &str,
    consumer: &str,
    ds: &str,
    ops: &str,
    extra: &[&str],
) -> Vec<String> {
    let group = format!("{stream}-g");
    let dead = format!("{stream}-dead");
    let shared = [
        "--broker-url",
        REDIS,
        "--stream",
        stream,
        "--group",
        &group,
        "--consumer",
        consumer,
        "--dead-letter",
        &dead,
        "--ds-dir",
        ds,
        "--ops-addr",
        ops,
    ];
    shared.iter().chain(extra).map(|a| a.to_string()).collect()
}

fn spawn_binary(args: &[String]) -> Running {
    Running(
        Command::new(env!("CARGO_BIN_EXE_processor"))
            .args(args)
            .env_remove("FORWARD_BROKER_URL")
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    )
}

fn sigterm(child: &Child) {
    let status = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status()
        .unwrap();
    assert!(status.success());
}

fn wait_exit(child: &mut Child, limit: Duration) -> std::process::ExitStatus {
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            panic!("processor did not exit within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[cfg_attr(
    not(feature = "system-tests"),
    ignore = "needs Redis at 127.0.0.1:6379: run with --features system-tests (scripts/test.sh does)"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_at_random_points_then_restart_writes_each_packet_once() {
    let dir = tempfile::tempdir().unwrap();
    let stream = unique("proc-crash");
    let group = format!("{stream}-g");
    let dead = format!("{stream}-dead");
    const TOTAL: u64 = 100_000;
    publish_frames(&stream, "crash-agent", 5_000, TOTAL, 250).await;
    let ds_dir = dir.path().to_str().unwrap().to_string();
    let args = processor_args(
        &stream,
        "c1",
        &ds_dir,
        "",
        &["--save-after-num", "2000", "--commit-interval-ms", "200"],
    );
    let mut conn = redis().await;
    for round in 0..4 {
        let mut child = spawn_binary(&args);
        // Kill once this run has made a random share (10-50%) of the remaining messages durable
        // (acknowledged), so every kill lands mid-stream whatever the machine's speed.
        // (group_state reports u64::MAX for what it cannot read yet: count that as everything.)
        let messages = TOTAL / 250;
        let remaining = |state: (u64, u64)| state.0.min(messages) + state.1.min(messages);
        let at_start = remaining(group_state(&mut conn, &stream, &group).await);
        let target = at_start - at_start * (10 + rand::random::<u64>() % 41) / 100;
        let give_up = Instant::now() + Duration::from_secs(30);
        while remaining(group_state(&mut conn, &stream, &group).await) > target
            && Instant::now() < give_up
        {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        // ...and a little later, at a random point inside the next batch.
        tokio::time::sleep(Duration::from_millis(rand::random::<u64>() % 50)).await;
        child.kill().unwrap(); // SIGKILL
        let status = child.wait().unwrap();
        assert!(!status.success(), "round {round} was killed");
    }
    // The last run gets an ops port, so the test knows when it is up (its signal handler is
    // installed) before sending SIGTERM: the killed runs may already have drained the stream.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let ops = format!("127.0.0.1:{port}");
    let mut last_args = args.clone();
    if let Some(i) = last_args.iter().position(|a| a == "--ops-addr") {
        last_args[i + 1] = ops.clone();
    }
    let mut child = spawn_binary(&last_args);
    let up_by = Instant::now() + Duration::from_secs(30);
    while reqwest::get(format!("http://{ops}/health")).await.is_err() {
        assert!(
            Instant::now() < up_by,
            "the last processor run never served /health"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    wait_until_drained(&stream, &group, Duration::from_secs(240)).await;
    sigterm(&child);
    let status = wait_exit(&mut child, Duration::from_secs(30));
    assert!(status.success(), "SIGTERM: flush, ack, exit 0");

    let counts = seq_counts(dir.path());
    let twice: Vec<_> = counts.iter().filter(|(_, n)| **n > 1).take(5).collect();
    assert!(twice.is_empty(), "written more than once: {twice:?}");
    assert_eq!(counts.len() as u64, TOTAL, "every packet present");
    assert_eq!(counts.keys().next().unwrap().1, 5_000);
    assert_eq!(counts.keys().last().unwrap().1, 5_000 + TOTAL - 1);
    // The manifests say the same, and the last one knows of no gap.
    let manifests = netpipe_runtime::dataset::Manifest::scan(dir.path()).unwrap();
    let rows: u64 = manifests.iter().map(|(_, m)| m.rows).sum();
    assert_eq!(rows, TOTAL);
    assert!(manifests.iter().all(|(_, m)| m.closed));
    let files_with_rows = manifests.iter().filter(|(_, m)| m.rows > 0).count();
    assert!(
        files_with_rows >= 2,
        "the killed runs had written rows before being killed ({files_with_rows} files)"
    );
    let latest = manifests.iter().max_by_key(|(_, m)| m.file_index).unwrap();
    assert_eq!(latest.1.loss.missing_seq, 0);
    cleanup(&[&stream, &dead]).await;
}

#[cfg_attr(
    not(feature = "system-tests"),
    ignore = "needs Redis at 127.0.0.1:6379: run with --features system-tests (scripts/test.sh does)"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processors_in_one_group_write_each_packet_once() {
    let dir = tempfile::tempdir().unwrap();
    let stream = unique("proc-two");
    let group = format!("{stream}-g");
    let dead = format!("{stream}-dead");
    publish_frames(&stream, "a1", 100, 6_000, 50).await;
    publish_frames(&stream, "a2", 7, 4_000, 50).await;
    let shutdown = CancellationToken::new();
    let mut tasks = Vec::new();
    for id in ["p1", "p2"] {
        let mut config = Config::new(REDIS, dir.path());
        config.stream = stream.clone();
        config.group = group.clone();
        config.consumer = Some(format!("{stream}-{id}"));
        config.dead_letter = dead.clone();
        config.instance_id = Some(id.to_string());
        config.save_after_num = 500;
        config.prefetch = 4;
        tasks.push(tokio::spawn(processor::run(config, shutdown.clone())));
    }
    wait_until_drained(&stream, &group, Duration::from_secs(120)).await;
    shutdown.cancel();
    let mut per_instance = Vec::new();
    for task in tasks {
        let summary = task.await.unwrap().unwrap();
        per_instance.push(summary.rows_written[0].1);
    }
    assert!(
        per_instance.iter().all(|&n| n > 0),
        "both consumed: {per_instance:?}"
    );
    assert_eq!(per_instance.iter().sum::<u64>(), 10_000);
    let counts = seq_counts(dir.path());
    assert_eq!(counts.len(), 10_000);
    assert!(counts.values().all(|&n| n == 1));
    assert_eq!(csv_files(dir.path(), "netdata").len(), 2, "one file each");
    assert!(
        csv_files(dir.path(), "netdata")
            .iter()
            .any(|p| p.to_str().unwrap().ends_with("-p1.csv"))
    );
    cleanup(&[&stream, &dead]).await;
}

/// STOP_AFTER_NUM ends a run in the middle of one receive (a read fetches up to eight
/// messages, four are decoded at a time): what was fetched but not written stays
/// unacknowledged, and the next run of the same consumer writes it, each packet once.
#[cfg_attr(
    not(feature = "system-tests"),
    ignore = "needs Redis at 127.0.0.1:6379: run with --features system-tests (scripts/test.sh does)"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_after_num_mid_receive_leaves_the_rest_for_the_next_run() {
    let dir = tempfile::tempdir().unwrap();
    let stream = unique("proc-stop");
    let group = format!("{stream}-g");
    let dead = format!("{stream}-dead");
    publish_frames(&stream, "s1", 3, 400, 10).await;
    let config = |stop_after: i64| {
        let mut config = Config::new(REDIS, dir.path());
        config.stream = stream.clone();
        config.group = group.clone();
        config.consumer = Some(format!("{stream}-c"));
        config.dead_letter = dead.clone();
        config.save_after_num = 50;
        config.prefetch = 64;
        config.stop_after_num = stop_after;
        config
    };
    let first = processor::run(config(100), CancellationToken::new())
        .await
        .unwrap();
    let written = first.rows_written[0].1;
    assert!((100..400).contains(&written), "first run wrote {written}");
    let mut conn = redis().await;
    let (pending, _) = group_state(&mut conn, &stream, &group).await;
    assert!(pending > 0, "the rest of the receive is still pending");

    let second = processor::run(config(400 - written as i64), CancellationToken::new())
        .await
        .unwrap();
    assert_eq!(second.rows_written[0].1, 400 - written);
    assert_eq!(group_state(&mut conn, &stream, &group).await, (0, 0));
    let counts = seq_counts(dir.path());
    assert_eq!(counts.len(), 400);
    assert!(counts.values().all(|&n| n == 1), "{counts:?}");
    cleanup(&[&stream, &dead]).await;
}

/// Pending entries whose data was deleted (an opt-in stream cap trimmed them) are a counted,
/// logged loss that the next run's manifest states, never a silent ack.
#[cfg_attr(
    not(feature = "system-tests"),
    ignore = "needs Redis at 127.0.0.1:6379: run with --features system-tests (scripts/test.sh does)"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pending_entries_found_trimmed_at_restart_are_counted_in_the_manifest() {
    let dir = tempfile::tempdir().unwrap();
    let stream = unique("proc-lostpend");
    let group = format!("{stream}-g");
    let dead = format!("{stream}-dead");
    publish_frames(&stream, "lp1", 3, 400, 10).await;
    let config = |stop_after: i64| {
        let mut config = Config::new(REDIS, dir.path());
        config.stream = stream.clone();
        config.group = group.clone();
        config.consumer = Some(format!("{stream}-c"));
        config.dead_letter = dead.clone();
        config.save_after_num = 50;
        config.prefetch = 64;
        config.stop_after_num = stop_after;
        config
    };
    let first = processor::run(config(100), CancellationToken::new())
        .await
        .unwrap();
    assert!(first.rows_written[0].1 >= 100);
    let mut conn = redis().await;
    let (pending, _) = group_state(&mut conn, &stream, &group).await;
    assert!(pending > 0, "the rest of the receive is still pending");
    // What a cap does to a slow consumer: every entry deleted, pending ones included.
    let _: i64 = redis::cmd("XTRIM")
        .arg(&stream)
        .arg("MAXLEN")
        .arg(0)
        .query_async(&mut conn)
        .await
        .unwrap();

    let stop = CancellationToken::new();
    let second = tokio::spawn(processor::run(config(-1), stop.clone()));
    let started = Instant::now();
    while group_state(&mut conn, &stream, &group).await.0 != 0 {
        assert!(started.elapsed() < Duration::from_secs(20), "never settled");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.cancel();
    let second = second.await.unwrap().unwrap();
    assert_eq!(second.broker_lost_pending, pending);
    assert_eq!(second.rows_written[0].1, 0, "nothing was left to write");
    let manifests = netpipe_runtime::dataset::Manifest::scan(dir.path()).unwrap();
    let lost: u64 = manifests
        .iter()
        .filter_map(|(_, m)| m.loss.broker_lost_messages.get("pending_trimmed"))
        .sum();
    assert_eq!(lost, pending, "the manifest states the loss");
    cleanup(&[&stream, &dead]).await;
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn http_status(url: &str) -> Option<(u16, String)> {
    let response = reqwest::get(url).await.ok()?;
    let status = response.status().as_u16();
    Some((status, response.text().await.unwrap_or_default()))
}

/// Polls `url` until it answers `want` with a body containing `needle` (readiness reasons
/// change as start-up proceeds, so the first 503 may not carry the one a test waits for).
async fn wait_status(url: &str, want: u16, needle: &str, limit: Duration) -> String {
    let started = Instant::now();
    loop {
        if let Some((status, body)) = http_status(url).await
            && status == want
            && body.contains(needle)
        {
            return body;
        }
        assert!(
            started.elapsed() < limit,
            "{url} never answered {want} with {needle:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn pending_count(stream: &str, group: &str) -> u64 {
    let mut conn = redis().await;
    let reply: redis::Value = redis::cmd("XPENDING")
        .arg(stream)
        .arg(group)
        .query_async(&mut conn)
        .await
        .unwrap();
    match reply {
        redis::Value::Array(items) => match items.first() {
            Some(redis::Value::Int(n)) => *n as u64,
            _ => 0,
        },
        _ => 0,
    }
}

#[cfg_attr(
    not(feature = "system-tests"),
    ignore = "needs Redis at 127.0.0.1:6379: run with --features system-tests (scripts/test.sh does)"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unwritable_ds_dir_is_not_ready_and_acknowledges_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let stream = unique("proc-unwritable");
    let group = format!("{stream}-g");
    let dead = format!("{stream}-dead");
    let port = free_port();
    let ops = format!("127.0.0.1:{port}");
    let ds_dir = dir.path().join("ds");
    let ds = ds_dir.to_str().unwrap().to_string();
    let args = processor_args(
        &stream,
        "c1",
        &ds,
        &ops,
        &["--save-after-num", "10", "--commit-interval-ms", "200"],
    );
    let mut child = spawn_binary(&args);
    let ready = format!("http://{ops}/ready");
    wait_status(&ready, 200, "", Duration::from_secs(30)).await;
    // The directory goes away under the running processor: the next commit cannot replace its
    // manifest, so nothing may be acknowledged.
    std::fs::remove_dir_all(&ds_dir).unwrap();
    publish_frames(&stream, "a", 1, 100, 10).await;
    wait_status(&ready, 503, "dataset", Duration::from_secs(30)).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut conn = redis().await;
    let (pending, undelivered) = group_state(&mut conn, &stream, &group).await;
    assert!(pending >= 1, "the failed batch is held unacknowledged");
    assert_eq!(pending + undelivered, 10, "nothing acknowledged");
    let metrics = http_status(&format!("http://{ops}/metrics"))
        .await
        .unwrap()
        .1;
    assert!(
        metrics.contains("processor_commit_failures_total"),
        "{metrics}"
    );
    // While commits fail, more arrives: the lag gauge follows the broker instead of freezing.
    publish_frames(&stream, "b", 1, 300, 10).await;
    let (_, waiting) = group_state(&mut conn, &stream, &group).await;
    assert!(waiting >= 30, "{waiting} messages waiting");
    let started = Instant::now();
    loop {
        let metrics = http_status(&format!("http://{ops}/metrics"))
            .await
            .unwrap()
            .1;
        let lag = metrics
            .lines()
            .find_map(|l| l.strip_prefix("processor_consumer_lag_messages "))
            .and_then(|v| v.trim().parse::<u64>().ok());
        let pending_gauge = metrics
            .lines()
            .find_map(|l| l.strip_prefix("processor_consumer_pending_messages "))
            .and_then(|v| v.trim().parse::<u64>().ok());
        let (held, waiting) = group_state(&mut conn, &stream, &group).await;
        if lag == Some(waiting) && pending_gauge == Some(held) {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "lag gauge {lag:?}, {waiting} waiting; pending gauge {pending_gauge:?}, {held} held"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // The stuck run holds what it read; the rest waits. Nothing changes from here on.
    let (pending, undelivered) = group_state(&mut conn, &stream, &group).await;
    sigterm(&child);
    let status = wait_exit(&mut child, Duration::from_secs(30));
    assert_eq!(
        status.code(),
        Some(1),
        "a failed final commit is an error exit"
    );
    let mut stderr = String::new();
    use std::io::Read;
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert!(stderr.contains("/ds/"), "names the path: {stderr}");
    assert_eq!(pending_count(&stream, &group).await, pending);

    // Unusable from the start (a path below a regular file): not ready, nothing consumed.
    let blocker = dir.path().join("file");
    std::fs::write(&blocker, "x").unwrap();
    let bad = blocker.join("sub");
    let bad = bad.to_str().unwrap().to_string();
    let port = free_port();
    let ops = format!("127.0.0.1:{port}");
    let args = processor_args(&stream, "c2", &bad, &ops, &[]);
    let mut child = spawn_binary(&args);
    wait_status(
        &format!("http://{ops}/ready"),
        503,
        "file/sub",
        Duration::from_secs(30),
    )
    .await;
    sigterm(&child);
    assert_eq!(
        wait_exit(&mut child, Duration::from_secs(30)).code(),
        Some(1)
    );
    assert_eq!(
        group_state(&mut conn, &stream, &group).await,
        (pending, undelivered),
        "nothing taken, nothing acknowledged"
    );
    cleanup(&[&stream, &dead]).await;
}

/// The value of an unlabelled (or fully labelled) sample line `name` in Prometheus text.
fn sample(metrics: &str, name: &str) -> Option<f64> {
    metrics
        .lines()
        .find(|line| line.split_whitespace().next() == Some(name))
        .and_then(|line| line.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
}

#[cfg_attr(
    not(feature = "system-tests"),
    ignore = "needs Redis at 127.0.0.1:6379 and promtool installed: run with --features system-tests (scripts/test.sh does)"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ops_endpoints_report_rows_snapshots_drops_dead_letters_and_lag() {
    let dir = tempfile::tempdir().unwrap();
    let stream = unique("proc-ops");
    let group = format!("{stream}-g");
    let dead = format!("{stream}-dead");
    // 300 packets in messages of 10, a redelivered copy of the first 20, one poison message.
    publish_frames(&stream, "a", 1, 300, 10).await;
    publish_frames(&stream, "a", 1, 20, 10).await;
    let mut conn = redis().await;
    let _: String = conn
        .xadd(&stream, "*", &[("body", "not json")])
        .await
        .unwrap();
    let port = free_port();
    let ops = format!("127.0.0.1:{port}");
    let ds = dir.path().to_str().unwrap().to_string();
    let args = processor_args(
        &stream,
        "c1",
        &ds,
        &ops,
        &["--save-after-num", "50", "--prefetch", "5"],
    );
    let mut child = spawn_binary(&args);
    wait_status(
        &format!("http://{ops}/ready"),
        200,
        "",
        Duration::from_secs(30),
    )
    .await;
    wait_until_drained(&stream, &group, Duration::from_secs(60)).await;
    assert_eq!(
        http_status(&format!("http://{ops}/health"))
            .await
            .unwrap()
            .0,
        200
    );

    // The lag gauge is refreshed every few seconds; once drained it must come down to 0.
    let url = format!("http://{ops}/metrics");
    let started = Instant::now();
    let metrics = loop {
        let (status, text) = http_status(&url).await.unwrap();
        assert_eq!(status, 200);
        if sample(&text, "processor_consumer_lag_messages") == Some(0.0)
            && sample(&text, "processor_messages_unacked") == Some(0.0)
        {
            break text;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "lag never reported as 0: {text}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    netpipe_testkit::promtool_check("processor_metrics", &metrics).unwrap();
    let value = |name: &str| sample(&metrics, name).unwrap_or_else(|| panic!("{name}: {metrics}"));
    assert_eq!(
        value("processor_rows_written_total{schema=\"netpipe\"}"),
        300.0
    );
    assert_eq!(value("processor_packets_received_total"), 320.0);
    assert_eq!(value("processor_messages_received_total"), 33.0);
    assert_eq!(
        value("processor_dedup_dropped_total{kind=\"duplicate\"}"),
        20.0
    );
    assert_eq!(
        value("processor_dead_letters_total{reason=\"not_json\"}"),
        1.0
    );
    assert!(value("processor_snapshots_total") >= 6.0);
    assert!(value("processor_fsync_seconds_count") >= 6.0);
    assert_eq!(value("processor_missing_seq"), 0.0);

    sigterm(&child);
    assert_eq!(
        wait_exit(&mut child, Duration::from_secs(30)).code(),
        Some(0)
    );
    assert_eq!(seq_counts(dir.path()).len(), 300);
    cleanup(&[&stream, &dead]).await;
}

fn same_cell(ours: &str, recorded: &str) -> bool {
    ours == recorded
        || matches!((ours.parse::<f64>(), recorded.parse::<f64>()), (Ok(a), Ok(b)) if a == b)
}

#[cfg_attr(
    not(feature = "system-tests"),
    ignore = "needs Redis at 127.0.0.1:6379: run with --features system-tests (scripts/test.sh does)"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn original_messages_on_a_kombu_list_give_the_recorded_csv() {
    let Some(data) = netpipe_testkit::paths::shared_data_or_skip("kombu golden") else {
        return;
    };
    for (archive, recorded) in [
        (
            "django/packets-netdata-2018-01-28-23-06-05.json",
            "django/netdata-2018-01-28-23-06-05.csv",
        ),
        (
            "flask-restplus/packets-netdata-2018-01-29-11-30-02.json",
            "flask-restplus/netdata-2018-01-29-11-30-02.csv",
        ),
    ] {
        let base = data.join("original-datasets");
        let text = std::fs::read_to_string(base.join(archive)).unwrap();
        let json: serde_json::Value = serde_json::from_str(&text).unwrap();
        let packets = json["packets"].as_array().unwrap();
        let queue = unique("proc-kombu");
        // db 15 as the original; one LPUSH per message, as kombu producers do.
        let mut conn15 = redis::Client::open(format!("{REDIS}/15"))
            .unwrap()
            .get_multiplexed_async_connection()
            .await
            .unwrap();
        for (i, packet) in packets.iter().enumerate() {
            // The archive adds id/received; the wire message had data, created, source only.
            let body = serde_json::json!({
                "data": packet["data"],
                "created": packet["created"],
                "source": packet["source"],
            });
            let element = encode_kombu_envelope(
                body.to_string().as_bytes(),
                &queue,
                &queue,
                &format!("tag-{i}"),
            );
            let _: () = conn15.lpush(&queue, element).await.unwrap();
        }
        let dir = tempfile::tempdir().unwrap();
        let mut config = Config::new("kombu+redis://127.0.0.1:6379", dir.path());
        config.stream = queue.clone();
        config.dead_letter = format!("{queue}.dead");
        config.schemas = vec!["antinex-v1".into()];
        config.save_after_num = 100;
        config.stop_after_num = packets.len() as i64;
        let summary = processor::run(config, CancellationToken::new())
            .await
            .unwrap();
        assert_eq!(summary.rows_written[0].1, packets.len() as u64);

        let (ours_header, ours_rows) = read_csv(&csv_files(dir.path(), "netdata")[0]);
        let (rec_header, rec_rows) = read_csv(&base.join(recorded));
        assert_eq!(ours_rows.len(), rec_rows.len(), "{recorded}");
        let index: HashMap<&str, usize> = ours_header
            .iter()
            .enumerate()
            .map(|(i, n)| (n.as_str(), i))
            .collect();
        let mut compared = 0usize;
        for (i, (ours, rec)) in ours_rows.iter().zip(&rec_rows).enumerate() {
            for (name, recorded_cell) in rec_header.iter().zip(rec) {
                let j = index[name.as_str()];
                assert!(
                    same_cell(&ours[j], recorded_cell),
                    "{recorded} row {i} {name}: ours {:?} recorded {recorded_cell:?}",
                    ours[j]
                );
                compared += 1;
            }
            for (j, name) in ours_header.iter().enumerate() {
                if !rec_header.contains(name) {
                    assert!(
                        ours[j].is_empty(),
                        "{recorded} row {i} {name}: {:?}",
                        ours[j]
                    );
                }
            }
        }
        assert!(compared > 10_000);
        let _: Result<(), _> = conn15.del(&queue).await;
    }
}

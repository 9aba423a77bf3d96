//! The whole system as separate processes, started as deploy/compose.yml starts them (same
//! variable names, values for 127.0.0.1, free ports, names unique to this run), against the real
//! Redis and RabbitMQ of this machine:
//!
//! ```text
//! capture-agent (replays a fixture pcap) ─┐
//! capture-agent (live on lo, UDP the test ├─> broker ─> processor ─> CSVs + manifests ─> dataset-builder (watch)
//!                sends to 127.0.0.1)     ─┘                 └─ rows ─> publisher ─> AntiNex stand-in
//!                                                                          └─> predictions CSV
//! Prometheus (deploy/prometheus/prometheus.yml, rewritten) scrapes the four services.
//! ```
//!
//! Checked: CSV rows = packets replayed + packets sent (per schema, by manifest and by reading
//! the files); every row reached the stand-in exactly once and has a prediction line; every
//! service answers /health and /ready with 200 and its /metrics passes `promtool check
//! metrics`; Prometheus sees `up == 1` for every job and non-zero packet counters; SIGTERM ends
//! every service with exit code 0.
//!
//! The binaries come from the same target directory (`cargo test --workspace --all-targets`
//! builds them; otherwise `cargo build --workspace --bins`).

#[path = "whole_system/brokers.rs"]
mod brokers;
#[path = "whole_system/http.rs"]
mod http;
#[path = "whole_system/outputs.rs"]
mod outputs;
#[path = "whole_system/prometheus.rs"]
mod prometheus;
#[path = "whole_system/services.rs"]
mod services;

use std::collections::{BTreeMap, BTreeSet};
use std::net::{TcpListener, UdpSocket};
use std::path::Path;
use std::time::Duration;

use brokers::{Backend, Cleanup, Names};
use http::{client, get, wait_until};
use outputs::*;
use reqwest::blocking::Client;
use services::Service;
use shared::capture::LinkType;
use shared::fixtures::{FixturePacket, sample_packets, write_pcap};

/// Copies of the fixture capture in the replayed pcap.
const REPLAY_COPIES: usize = 20;
/// UDP datagrams the test sends to 127.0.0.1 for the live capture.
const LIVE_DATAGRAMS: usize = 60;
/// Bound of every wait; generous for a loaded 2-core machine (a normal run takes seconds).
const PATIENCE: Duration = Duration::from_secs(120);
const STOP_WITHIN: Duration = Duration::from_secs(30);
const SCHEMAS: [&str; 2] = ["antinex-v1", "netpipe"];

#[test]
fn whole_system_on_redis_streams() {
    whole_system(Backend::Redis);
}

#[test]
fn whole_system_on_rabbitmq() {
    whole_system(Backend::RabbitMq);
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// The fixture capture `copies` times, each copy later than the one before.
fn write_replay_pcap(path: &Path, copies: usize) -> usize {
    let sample = sample_packets();
    let span = sample.last().map_or(0, |p| p.ts_ns) - sample.first().map_or(0, |p| p.ts_ns);
    let packets: Vec<FixturePacket> = (0..copies)
        .flat_map(|copy| {
            let shift = (span + 1_000_000) * copy as i64;
            sample.iter().map(move |p| FixturePacket {
                ts_ns: p.ts_ns + shift,
                data: p.data.clone(),
            })
        })
        .collect();
    write_pcap(path, LinkType::ETHERNET, &packets).expect("write the replay pcap");
    packets.len()
}

/// The running services; a failed check panics with the end of every log.
struct System {
    services: Vec<Service>,
    logs: std::path::PathBuf,
}

impl System {
    fn start(&mut self, name: &str, binary: &str, env: &[(&str, String)]) -> usize {
        self.services
            .push(Service::start(name, binary, env, &self.logs));
        self.services.len() - 1
    }

    fn report(&self) -> String {
        self.services
            .iter()
            .map(|s| format!("\n===== {} =====\n{}", s.name, s.log_tail(25)))
            .collect()
    }

    #[track_caller]
    fn check(&self, ok: bool, what: impl std::fmt::Display) {
        assert!(ok, "{what}{}", self.report());
    }
}

/// Each service's ops endpoint.
struct OpsPorts {
    agent_replay: u16,
    agent_live: u16,
    processor: u16,
    publisher: u16,
    builder: u16,
}

impl OpsPorts {
    fn all(&self) -> [(&'static str, u16); 5] {
        [
            ("capture-agent (replay)", self.agent_replay),
            ("capture-agent (live)", self.agent_live),
            ("processor", self.processor),
            ("publisher", self.publisher),
            ("dataset-builder", self.builder),
        ]
    }

    /// The Prometheus job of each service (one capture-agent target: the replaying one).
    fn jobs(&self) -> BTreeMap<&'static str, u16> {
        BTreeMap::from([
            ("capture-agent", self.agent_replay),
            ("processor", self.processor),
            ("publisher", self.publisher),
            ("dataset-builder", self.builder),
        ])
    }
}

fn whole_system(backend: Backend) {
    for binary in services::BINARIES {
        services::binary(binary);
    }
    let names = Names::new(backend);
    let _cleanup = Cleanup {
        backend,
        names: names.clone(),
    };
    let tmp = tempfile::tempdir().expect("temp dir");
    let logs = tmp.path().join("logs");
    let datasets = tmp.path().join("datasets");
    let training = datasets.join("training");
    std::fs::create_dir_all(&logs).unwrap();
    std::fs::create_dir_all(&datasets).unwrap();
    let pcap = tmp.path().join("replay.pcap");
    let replayed = write_replay_pcap(&pcap, REPLAY_COPIES);
    let predictions = tmp.path().join("predictions.csv");
    let http = client();
    let url = backend.url().to_string();
    let tag = format!("{}-{}", backend.tag(), std::process::id());
    let (replay_agent, live_agent) = (format!("ws-replay-{tag}"), format!("ws-live-{tag}"));

    // The datagrams' target: a socket the test holds, so the port is ours and nothing answers
    // with ICMP port-unreachable.
    let udp_target = UdpSocket::bind("127.0.0.1:0").expect("UDP socket");
    let udp_port = udp_target.local_addr().unwrap().port();
    let standin_port = free_port();
    let ops = OpsPorts {
        agent_replay: free_port(),
        agent_live: free_port(),
        processor: free_port(),
        publisher: free_port(),
        builder: free_port(),
    };
    let addr = |port: u16| format!("127.0.0.1:{port}");
    let forward = |queue: &str| {
        vec![
            ("FORWARD_BROKER_URL", url.clone()),
            ("FORWARD_QUEUE", queue.to_string()),
            ("FORWARD_EXCHANGE", queue.to_string()),
            ("FORWARD_ROUTING_KEY", queue.to_string()),
        ]
    };

    let mut system = System {
        services: Vec::new(),
        logs,
    };
    let standin = system.start(
        "antinex-standin",
        "antinex-standin",
        &[("STANDIN_LISTEN", addr(standin_port))],
    );
    let mut env = forward(&names.frames);
    env.extend([
        ("PROCESSOR_DEAD_LETTER", names.frames_dead.clone()),
        ("SAVE_AFTER_NUM", "100".to_string()),
        ("DS_DIR", datasets.display().to_string()),
        ("DS_NAME", "netdata".to_string()),
        ("PROCESSOR_SCHEMA", SCHEMAS.join(",")),
        ("PROCESSOR_ROWS_STREAM", names.rows.clone()),
        ("PROCESSOR_ROWS_BROKER_URL", url.clone()),
        ("OPS_ADDR", addr(ops.processor)),
    ]);
    system.start("processor", "processor", &env);
    system.start(
        "publisher",
        "publisher",
        &[
            ("ROWS_BROKER_URL", url.clone()),
            ("ROWS_STREAM", names.rows.clone()),
            ("ROWS_DEAD_LETTER", names.rows_dead.clone()),
            ("ANTINEX_URL", format!("http://{}", addr(standin_port))),
            ("ANTINEX_USER", "root".to_string()),
            ("ANTINEX_PASSWORD", "123321".to_string()),
            ("PREDICTIONS_CSV", predictions.display().to_string()),
            ("PUBLISHER_OPS_ADDR", addr(ops.publisher)),
        ],
    );
    system.start(
        "dataset-builder",
        "dataset-builder",
        &[
            ("DS_DIR", datasets.display().to_string()),
            ("DS_GLOB_PATH", format!("{}/*.csv", datasets.display())),
            ("OUTPUT_DIR", training.display().to_string()),
            ("WATCH_SECS", "1".to_string()),
            ("OPS_ADDR", addr(ops.builder)),
        ],
    );
    let mut env = forward(&names.frames);
    env.extend([
        ("CAP_DEVICE", "lo".to_string()),
        // Only the test's datagrams: never the brokers', the ops ports' or Prometheus' traffic.
        (
            "NETWORK_FILTER",
            format!("udp and dst host 127.0.0.1 and dst port {udp_port}"),
        ),
        ("SOURCE_HOST", live_agent.clone()),
        ("OPS_ADDR", addr(ops.agent_live)),
    ]);
    let live = system.start("capture-agent-live", "capture-agent", &env);

    // Live capture: once the agent is ready its filter is in place; then the datagrams.
    let live_ready = wait_until(PATIENCE, || {
        system.services[live].exited().is_some()
            || get(&http, &format!("http://{}/ready", addr(ops.agent_live)))
                .is_some_and(|(status, _)| status == 200)
    });
    let mut sent_live = LIVE_DATAGRAMS;
    if let Some(status) = system.services[live].exited() {
        let log = system.services[live].log();
        system.check(
            log.contains("CAP_NET_RAW") && !in_ci(),
            format!("the live capture-agent exited: {status}"),
        );
        eprintln!("whole_system: live capture skipped, capturing on lo needs CAP_NET_RAW");
        sent_live = 0;
    } else {
        system.check(live_ready, "the live capture-agent is not ready");
        let sender = UdpSocket::bind("127.0.0.1:0").unwrap();
        for i in 0..LIVE_DATAGRAMS {
            sender
                .send_to(
                    format!("whole system {i}").as_bytes(),
                    ("127.0.0.1", udp_port),
                )
                .unwrap();
            if i % 20 == 19 {
                std::thread::sleep(Duration::from_millis(10));
            }
        }
    }
    let mut env = forward(&names.frames);
    env.extend([
        ("CAP_READ", pcap.display().to_string()),
        ("SOURCE_HOST", replay_agent.clone()),
        ("OPS_ADDR", addr(ops.agent_replay)),
    ]);
    system.start("capture-agent-replay", "capture-agent", &env);

    // The processor commits one row per packet into each schema's file.
    let expected = (replayed + sent_live) as u64;
    let mut committed = BTreeMap::new();
    let all_committed = wait_until(PATIENCE, || {
        committed = committed_rows(&datasets);
        SCHEMAS
            .iter()
            .all(|s| committed.get(*s).copied().unwrap_or(0) >= expected)
    });
    system.check(
        all_committed,
        format!("committed rows {committed:?}, expected {expected} per schema"),
    );
    check_datasets(
        &system,
        &datasets,
        expected,
        &[
            (replay_agent.as_str(), replayed),
            (live_agent.as_str(), sent_live),
        ],
    );

    // Every row reaches the stand-in once and comes back as a prediction line.
    let predicted = wait_until(PATIENCE, || data_lines(&predictions) as u64 >= expected);
    system.check(
        predicted,
        format!(
            "{} prediction lines, expected {expected}",
            data_lines(&predictions)
        ),
    );
    check_predictions(&system, &datasets, &predictions, expected);
    check_standin(
        &system,
        &http,
        &format!("http://{}", addr(standin_port)),
        expected,
    );

    // The dataset-builder rebuilt from the complete files: both schemas' rows.
    let builder_metrics = format!("http://{}/metrics", addr(ops.builder));
    let built = wait_until(PATIENCE, || {
        get(&http, &builder_metrics).is_some_and(|(_, body)| {
            metric(&body, "dataset_builder_rows_read") == Some((2 * expected) as f64)
        })
    });
    system.check(built, "the dataset-builder did not build from every row");
    let (_, fulldata) = read_csv(&training.join("fulldata_attack_scans.csv"));
    system.check(
        fulldata.len() as u64 == 2 * expected,
        format!(
            "fulldata has {} rows, expected {}",
            fulldata.len(),
            2 * expected
        ),
    );

    check_ops(&system, &http, &ops);
    let prometheus_checked = check_prometheus(&system, &http, tmp.path(), &ops);

    // SIGTERM: every service exits 0 and its port closes.
    for index in 0..system.services.len() {
        if index == standin {
            continue;
        }
        let name = system.services[index].name.clone();
        let status = system.services[index].stop(libc::SIGTERM, STOP_WITHIN);
        system.check(
            status.is_some_and(|s| s.success()),
            format!("{name} after SIGTERM: {status:?}"),
        );
    }
    for (name, port) in ops.all() {
        let open = std::net::TcpStream::connect(("127.0.0.1", port)).is_ok();
        system.check(!open, format!("{name} still listens on {port}"));
    }
    // The stand-in (a test tool) stops on SIGINT and prints its counters.
    let status = system.services[standin].stop(libc::SIGINT, STOP_WITHIN);
    system.check(
        status.is_some_and(|s| s.success()),
        format!("the stand-in after SIGINT: {status:?}"),
    );
    let counts = standin_final_counts(&system.services[standin].log());
    system.check(
        counts
            .as_ref()
            .is_some_and(|c| c.get("rows_accepted") == Some(&expected)),
        format!("stand-in counters {counts:?}, expected rows_accepted={expected}"),
    );
    drop(udp_target);
    eprintln!(
        "whole_system ({}): {expected} packets ({replayed} replayed, {sent_live} live) -> \
         {expected} rows per schema -> stand-in -> {expected} predictions; dataset-builder {} rows; \
         Prometheus {}",
        backend.tag(),
        2 * expected,
        if prometheus_checked {
            "checked"
        } else {
            "skipped"
        },
    );
    if std::env::var_os("WHOLE_SYSTEM_KEEP").is_some() {
        eprintln!("whole_system: kept {}", tmp.keep().display());
    }
}

/// One sample of a /metrics body (`name{labels} value`).
fn metric(body: &str, series: &str) -> Option<f64> {
    body.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

/// Every schema's files hold exactly the committed rows, `expected` in all; the netpipe rows
/// come from the two agents in the numbers sent, each (agent, seq) once.
fn check_datasets(system: &System, dir: &Path, expected: u64, per_agent: &[(&str, usize)]) {
    let files = dataset_files(dir);
    for schema in SCHEMAS {
        let mut rows_read = 0u64;
        for file in files.iter().filter(|f| f.schema == schema) {
            let (_, rows) = read_csv(&file.csv);
            system.check(
                rows.len() as u64 == file.committed_rows,
                format!(
                    "{}: {} rows, its manifest commits {}",
                    file.csv.display(),
                    rows.len(),
                    file.committed_rows
                ),
            );
            rows_read += rows.len() as u64;
        }
        system.check(
            rows_read == expected,
            format!(
                "{schema}: {rows_read} CSV rows, expected {expected} (packets replayed + sent)"
            ),
        );
    }
    let mut identities = BTreeSet::new();
    let mut agents: BTreeMap<String, usize> = BTreeMap::new();
    for file in files.iter().filter(|f| f.schema == "netpipe") {
        let (header, rows) = read_csv(&file.csv);
        let seqs = column(&header, &rows, "seq");
        for (agent, seq) in column(&header, &rows, "agent").into_iter().zip(seqs) {
            *agents.entry(agent.clone()).or_default() += 1;
            identities.insert((agent, seq));
        }
    }
    system.check(
        identities.len() as u64 == expected,
        "each (agent, seq) once in the netpipe rows",
    );
    let wanted: BTreeMap<String, usize> = per_agent
        .iter()
        .filter(|(_, n)| *n > 0)
        .map(|(a, n)| (a.to_string(), *n))
        .collect();
    system.check(
        agents == wanted,
        format!("rows per agent {agents:?}, expected {wanted:?}"),
    );
}

/// One prediction line per row: the (agent, seq) of every netpipe row, each once.
fn check_predictions(system: &System, dir: &Path, predictions: &Path, expected: u64) {
    let (header, rows) = read_csv(predictions);
    system.check(
        rows.len() as u64 == expected,
        format!("{} prediction lines, expected {expected}", rows.len()),
    );
    let predicted: BTreeSet<(String, String)> = column(&header, &rows, "agent")
        .into_iter()
        .zip(column(&header, &rows, "seq"))
        .collect();
    let mut stored = BTreeSet::new();
    for file in dataset_files(dir).iter().filter(|f| f.schema == "netpipe") {
        let (header, rows) = read_csv(&file.csv);
        stored.extend(
            column(&header, &rows, "agent")
                .into_iter()
                .zip(column(&header, &rows, "seq")),
        );
    }
    system.check(
        predicted == stored,
        "the predictions name exactly the stored rows, each once",
    );
}

/// The stand-in holds every row once: `idx` 0..n-1 of the antinex-v1 file, none twice.
fn check_standin(system: &System, http: &Client, base: &str, expected: u64) {
    let jobs = standin_jobs(http, base);
    let mut idx: Vec<i64> = Vec::new();
    for row in jobs.iter().flatten() {
        system.check(row.is_some(), "a row without idx at the stand-in");
        idx.push(row.unwrap_or(-1.0) as i64);
    }
    idx.sort_unstable();
    let once: Vec<i64> = (0..expected as i64).collect();
    system.check(
        idx == once,
        format!(
            "the stand-in got {} rows in {} jobs; expected idx 0..{expected} once each",
            idx.len(),
            jobs.len()
        ),
    );
}

/// /health and /ready answer 200 (waiting for a service still finishing its start), and
/// /metrics passes promtool.
fn check_ops(system: &System, http: &Client, ops: &OpsPorts) {
    for (name, port) in ops.all() {
        let base = format!("http://127.0.0.1:{port}");
        let mut last = None;
        let ready = wait_until(PATIENCE, || {
            last = get(http, &format!("{base}/ready"));
            last.as_ref().is_some_and(|(status, _)| *status == 200)
        });
        system.check(ready, format!("{name} /ready: {last:?}"));
        let health = get(http, &format!("{base}/health"));
        system.check(
            health.as_ref().is_some_and(|(status, _)| *status == 200),
            format!("{name} /health: {health:?}"),
        );
        let metrics = get(http, &format!("{base}/metrics"));
        let Some((200, body)) = metrics else {
            system.check(false, format!("{name} /metrics: {metrics:?}"));
            return;
        };
        if let Err(e) = shared::ops::promtool_check(name, &body) {
            system.check(false, format!("{name} /metrics: {e}"));
        }
    }
}

/// A real Prometheus with the repository's scrape config sees every job up and packets counted.
/// False when skipped (prometheus not installed, outside CI).
fn check_prometheus(system: &System, http: &Client, dir: &Path, ops: &OpsPorts) -> bool {
    let Some(binary) = prometheus::find_binary() else {
        system.check(
            !in_ci(),
            "prometheus is not installed (Debian package prometheus; scripts/ensure-deps.sh test)",
        );
        eprintln!("whole_system: Prometheus part skipped, prometheus is not installed");
        return false;
    };
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/prometheus/prometheus.yml");
    let text = std::fs::read_to_string(&repo).unwrap_or_else(|e| panic!("{}: {e}", repo.display()));
    let config = prometheus::rewrite_config(&text, &ops.jobs())
        .unwrap_or_else(|e| panic!("{}: {e}", repo.display()));
    let dir = dir.join("prometheus");
    std::fs::create_dir_all(&dir).unwrap();
    let server = prometheus::Prometheus::start(&binary, &config, &dir, free_port(), http);
    let mut up = Vec::new();
    let counted = |query: &str| {
        let result = server.query(http, query);
        result.len() == 1 && result[0].1 > 0.0
    };
    let seen = wait_until(PATIENCE, || {
        up = server.query(http, "up");
        let jobs: BTreeMap<String, f64> = up
            .iter()
            .map(|(labels, v)| (labels.get("job").cloned().unwrap_or_default(), *v))
            .collect();
        prometheus::JOBS
            .iter()
            .all(|job| jobs.get(*job) == Some(&1.0))
            && counted("capture_agent_packets_captured_total")
            && counted("processor_packets_received_total")
            && counted("dataset_builder_rows_read")
    });
    system.check(
        seen,
        format!(
            "Prometheus: up {up:?}\n{}\nconfig:\n{config}",
            server.log_tail()
        ),
    );
    true
}

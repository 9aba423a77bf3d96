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

mod brokers;
mod checks;
mod http;
mod outputs;
mod prometheus;
mod services;

use std::collections::BTreeMap;
use std::net::{TcpListener, UdpSocket};
use std::path::Path;
use std::time::Duration;

use brokers::{Backend, Cleanup, Names};
use checks::*;
use http::{client, get, wait_until};
use netpipe_runtime::capture::LinkType;
use netpipe_runtime::capture::sample::{FixturePacket, sample_packets, write_pcap};
use outputs::*;
use services::System;

/// Copies of the fixture capture in the replayed pcap.
const REPLAY_COPIES: usize = 20;
/// UDP datagrams the test sends to 127.0.0.1 for the live capture.
const LIVE_DATAGRAMS: usize = 60;
const STOP_WITHIN: Duration = Duration::from_secs(30);

#[cfg_attr(
    not(feature = "system-tests"),
    ignore = "needs Redis, RabbitMQ, root (live capture on lo), promtool and Prometheus: run with --features system-tests (scripts/test.sh does)"
)]
#[test]
fn whole_system_on_redis_streams() {
    whole_system(Backend::Redis);
}

#[cfg_attr(
    not(feature = "system-tests"),
    ignore = "needs Redis, RabbitMQ, root (live capture on lo), promtool and Prometheus: run with --features system-tests (scripts/test.sh does)"
)]
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
        ("NETPIPE_SCHEMA", SCHEMAS.join(",")),
        ("ROWS_STREAM", names.rows.clone()),
        ("ROWS_BROKER_URL", url.clone()),
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
            ("OPS_ADDR", addr(ops.publisher)),
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

    let sent_live = send_live_traffic(&mut system, live, ops.agent_live, udp_port, &http);
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

    stop_everything(&mut system, standin, &ops, expected);
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

/// Once the live agent is ready (its filter is in place), sends the datagrams it must capture;
/// returns how many. Without CAP_NET_RAW (outside CI) the live part is skipped: 0.
fn send_live_traffic(
    system: &mut System,
    live: usize,
    ops_port: u16,
    udp_port: u16,
    http: &reqwest::blocking::Client,
) -> usize {
    let ready_url = format!("http://127.0.0.1:{ops_port}/ready");
    let ready = wait_until(PATIENCE, || {
        system.services[live].exited().is_some()
            || get(http, &ready_url).is_some_and(|(status, _)| status == 200)
    });
    if let Some(status) = system.services[live].exited() {
        let log = system.services[live].log();
        system.check(
            log.contains("CAP_NET_RAW") && !in_ci(),
            format!("the live capture-agent exited: {status}"),
        );
        eprintln!("whole_system: live capture skipped, capturing on lo needs CAP_NET_RAW");
        return 0;
    }
    system.check(ready, "the live capture-agent is not ready");
    let sender = UdpSocket::bind("127.0.0.1:0").expect("UDP socket");
    for i in 0..LIVE_DATAGRAMS {
        sender
            .send_to(
                format!("whole system {i}").as_bytes(),
                ("127.0.0.1", udp_port),
            )
            .expect("send a datagram to 127.0.0.1");
        if i % 20 == 19 {
            std::thread::sleep(Duration::from_millis(10));
        }
    }
    LIVE_DATAGRAMS
}

/// SIGTERM ends every service with exit code 0 and closes its port; the stand-in (stopped last,
/// also by SIGTERM as `docker stop` does) prints final counters showing every row accepted once.
fn stop_everything(system: &mut System, standin: usize, ops: &OpsPorts, expected: u64) {
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
    let status = system.services[standin].stop(libc::SIGTERM, STOP_WITHIN);
    system.check(
        status.is_some_and(|s| s.success()),
        format!("the stand-in after SIGTERM: {status:?}"),
    );
    let counts = standin_final_counts(&system.services[standin].log());
    system.check(
        counts
            .as_ref()
            .is_some_and(|c| c.get("rows_accepted") == Some(&expected)),
        format!("stand-in counters {counts:?}, expected rows_accepted={expected}"),
    );
}

//! The checks of the whole-system test, each on one part of what the services did.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Duration;

use reqwest::blocking::Client;

use super::http::{get, wait_until};
use super::outputs::*;
use super::prometheus;
use super::services::System;

/// Bound of every wait; generous for a loaded 2-core machine (a normal run takes seconds).
pub const PATIENCE: Duration = Duration::from_secs(120);
/// The processor's schemas: antinex-v1 first (its rows go to the publisher), then netpipe.
pub const SCHEMAS: [&str; 2] = ["antinex-v1", "netpipe"];

/// A missing part (prometheus, CAP_NET_RAW) fails the test: in CI and with the feature on.
pub fn in_ci() -> bool {
    netpipe_testkit::must_not_skip()
}

/// Each service's ops endpoint.
pub struct OpsPorts {
    pub agent_replay: u16,
    pub agent_live: u16,
    pub processor: u16,
    pub publisher: u16,
    pub builder: u16,
}

impl OpsPorts {
    pub fn all(&self) -> [(&'static str, u16); 5] {
        [
            ("capture-agent (replay)", self.agent_replay),
            ("capture-agent (live)", self.agent_live),
            ("processor", self.processor),
            ("publisher", self.publisher),
            ("dataset-builder", self.builder),
        ]
    }

    /// The Prometheus job of each service (one capture-agent target: the replaying one).
    pub fn jobs(&self) -> BTreeMap<&'static str, u16> {
        BTreeMap::from([
            ("capture-agent", self.agent_replay),
            ("processor", self.processor),
            ("publisher", self.publisher),
            ("dataset-builder", self.builder),
        ])
    }
}

/// One sample of a /metrics body (`name{labels} value`).
pub fn metric(body: &str, series: &str) -> Option<f64> {
    body.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

/// Every schema's files hold exactly the committed rows, `expected` in all; the netpipe rows
/// come from the two agents in the numbers sent, each (agent, seq) once.
pub fn check_datasets(system: &System, dir: &Path, expected: u64, per_agent: &[(&str, usize)]) {
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
pub fn check_predictions(system: &System, dir: &Path, predictions: &Path, expected: u64) {
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
pub fn check_standin(system: &System, http: &Client, base: &str, expected: u64) {
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
pub fn check_ops(system: &System, http: &Client, ops: &OpsPorts) {
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
        if let Err(e) = netpipe_testkit::promtool_check(name, &body) {
            system.check(false, format!("{name} /metrics: {e}"));
        }
    }
}

/// A real Prometheus with the repository's scrape config sees every job up and packets counted.
/// False when skipped (prometheus not installed, outside CI).
pub fn check_prometheus(system: &System, http: &Client, dir: &Path, ops: &OpsPorts) -> bool {
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
    let server = prometheus::Prometheus::start(&binary, &config, &dir, super::free_port(), http);
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

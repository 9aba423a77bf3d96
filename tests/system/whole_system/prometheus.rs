//! A real Prometheus server (Debian package `prometheus`) scraping the four services with the
//! repository's scrape configuration, deploy/prometheus/prometheus.yml, rewritten for the test:
//! each job's target becomes 127.0.0.1:<the port its process listens on>, and the global section
//! scrapes every second.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use reqwest::blocking::Client;

use super::http::{get, wait_until};

/// The scrape jobs deploy/prometheus/prometheus.yml must have, one static target each.
pub const JOBS: [&str; 4] = ["capture-agent", "processor", "publisher", "dataset-builder"];

/// Top-level sections left out of the test's copy: they point at files and servers outside it.
const DROPPED_SECTIONS: [&str; 6] = [
    "rule_files",
    "alerting",
    "remote_write",
    "remote_read",
    "storage",
    "tracing",
];

const TEST_GLOBAL: &str =
    "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n";

/// The `prometheus` executable on PATH, if installed.
pub fn find_binary() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join("prometheus"))
        .find(|candidate| candidate.is_file())
}

fn unquote(text: &str) -> &str {
    text.trim().trim_matches(|c| c == '\'' || c == '"')
}

/// The repository's configuration with the global section replaced, per-job intervals removed
/// and each job's target(s) pointed at `ports[job]`. Fails unless every job of [`JOBS`] is
/// there with exactly one target, and no other job is.
pub fn rewrite_config(repo: &str, ports: &BTreeMap<&str, u16>) -> Result<String, String> {
    let mut out = String::new();
    let mut section = String::new();
    let mut job: Option<String> = None;
    let mut in_target_list: Option<usize> = None;
    let mut targets: BTreeMap<String, usize> = BTreeMap::new();
    let mut target_of = |job: &Option<String>| -> Result<String, String> {
        let name = job.clone().ok_or("a target outside any job")?;
        let port = ports
            .get(name.as_str())
            .ok_or_else(|| format!("unexpected scrape job `{name}`"))?;
        *targets.entry(name).or_default() += 1;
        Ok(format!("'127.0.0.1:{port}'"))
    };
    for line in repo.lines() {
        let trimmed = line.trim();
        let indent = line.len() - line.trim_start().len();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        if indent == 0 {
            section = trimmed.split(':').next().unwrap_or_default().to_string();
            if section == "global" {
                out.push_str(TEST_GLOBAL);
            } else if !DROPPED_SECTIONS.contains(&section.as_str()) {
                out.push_str(line);
                out.push('\n');
            }
            continue;
        }
        if section != "scrape_configs" {
            continue;
        }
        let item = trimmed.trim_start_matches("- ").trim();
        if let Some(name) = item.strip_prefix("job_name:") {
            job = Some(unquote(name).to_string());
            in_target_list = None;
        }
        if let Some(list_indent) = in_target_list {
            if indent > list_indent && trimmed.starts_with("- ") {
                let target = target_of(&job)?;
                out.push_str(&format!("{}- {target}\n", " ".repeat(indent)));
                continue;
            }
            in_target_list = None;
        }
        if item.starts_with("scrape_interval:") || item.starts_with("scrape_timeout:") {
            continue;
        }
        if let Some((before, after)) = line.split_once("targets:") {
            let after = after.trim();
            if after.is_empty() {
                in_target_list = Some(indent);
                out.push_str(line);
                out.push('\n');
            } else {
                let count = after.trim_matches(['[', ']']).split(',').count();
                let list: Vec<String> = (0..count)
                    .map(|_| target_of(&job))
                    .collect::<Result<_, _>>()?;
                out.push_str(&format!("{before}targets: [{}]\n", list.join(", ")));
            }
            continue;
        }
        out.push_str(line);
        out.push('\n');
    }
    for job in JOBS {
        match targets.get(job) {
            Some(1) => {}
            Some(n) => return Err(format!("job `{job}` has {n} targets, expected one")),
            None => return Err(format!("no scrape job `{job}` with a static target")),
        }
    }
    Ok(out)
}

/// A Prometheus server on 127.0.0.1, killed on drop.
pub struct Prometheus {
    pub port: u16,
    child: Child,
    log: PathBuf,
}

impl Prometheus {
    /// Starts `binary` with `config` (written into `dir`, with the TSDB beside it) and waits until
    /// it is ready.
    pub fn start(binary: &Path, config: &str, dir: &Path, port: u16, client: &Client) -> Self {
        let config_path = dir.join("prometheus.yml");
        std::fs::write(&config_path, config).expect("write the Prometheus config");
        let log = dir.join("prometheus.log");
        let out = std::fs::File::create(&log).expect("log file");
        let err = out.try_clone().expect("log file");
        let child = Command::new(binary)
            .arg(format!("--config.file={}", config_path.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("tsdb").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .expect("start prometheus");
        let mut prometheus = Prometheus { port, child, log };
        let ready = wait_until(Duration::from_secs(60), || {
            if matches!(prometheus.child.try_wait(), Ok(Some(_))) {
                return true;
            }
            get(client, &format!("http://127.0.0.1:{port}/-/ready")).is_some_and(|(s, _)| s == 200)
        });
        let exited = prometheus.child.try_wait().ok().flatten();
        assert!(
            ready && exited.is_none(),
            "Prometheus did not start ({exited:?}):\n{}\nconfig:\n{config}",
            prometheus.log_tail()
        );
        prometheus
    }

    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }

    /// An instant query: each series' labels and value.
    pub fn query(&self, client: &Client, promql: &str) -> Vec<(BTreeMap<String, String>, f64)> {
        let url = format!(
            "http://127.0.0.1:{}/api/v1/query?query={}",
            self.port,
            percent_encode(promql)
        );
        let Some((200, body)) = get(client, &url) else {
            return Vec::new();
        };
        let value: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
        let results = value["data"]["result"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        results
            .iter()
            .map(|r| {
                let labels = r["metric"]
                    .as_object()
                    .map(|m| {
                        m.iter()
                            .map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_string()))
                            .collect()
                    })
                    .unwrap_or_default();
                let sample = r["value"][1].as_str().and_then(|v| v.parse().ok());
                (labels, sample.unwrap_or(f64::NAN))
            })
            .collect()
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn percent_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                char::from(b).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[test]
fn the_repository_config_is_rewritten_for_the_test() {
    let repo = "# comment\nglobal:\n  scrape_interval: 15s\n  scrape_timeout: 10s\nrule_files: [a.yml]\n\
        scrape_configs:\n  - job_name: capture-agent\n    scrape_interval: 5s\n    static_configs:\n      \
        - targets: ['host.docker.internal:9101']\n  - job_name: \"processor\"\n    static_configs:\n      \
        - targets:\n          - processor:9102\n  - job_name: publisher\n    static_configs:\n      \
        - targets: [\"publisher:9103\"]\n  - job_name: dataset-builder\n    metrics_path: /metrics\n    \
        static_configs:\n      - targets: ['dataset-builder:9104']\n";
    let ports = BTreeMap::from([
        ("capture-agent", 1),
        ("processor", 2),
        ("publisher", 3),
        ("dataset-builder", 4),
    ]);
    let config = rewrite_config(repo, &ports).unwrap();
    assert!(config.starts_with(TEST_GLOBAL), "{config}");
    for (port, job) in [(1, "capture-agent"), (2, "processor"), (3, "publisher")] {
        assert!(
            config.contains(&format!("'127.0.0.1:{port}'")),
            "{job}: {config}"
        );
    }
    assert!(config.contains("targets: ['127.0.0.1:4']"), "{config}");
    assert!(config.contains("metrics_path: /metrics"));
    assert!(
        !config.contains("rule_files") && !config.contains("5s") && !config.contains("docker"),
        "{config}"
    );
    let without_publisher = repo.replace("publisher", "other");
    assert!(rewrite_config(&without_publisher, &ports).is_err());
}

//! The deployment files (deploy/compose.yml and its env files, deploy/k8s*, the Prometheus scrape
//! configuration) only set environment variables that the service they configure actually reads,
//! keep credentials out of compose.yml, and agree on each service's ops port, so a renamed flag
//! or a moved port cannot silently stop working in production. (scripts/check-deploy.sh checks
//! the same files against the compose and Kubernetes schemas.)

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use clap::CommandFactory;

/// Variables read outside clap (tracing, OpenTelemetry).
const GENERIC: &[&str] = &[
    "RUST_LOG",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_SERVICE_NAME",
    "OTEL_RESOURCE_ATTRIBUTES",
];

/// The variables naming a service's ops listener.
const OPS_VARS: &[&str] = &["OPS_ADDR", "PUBLISHER_OPS_ADDR"];

fn env_names(command: clap::Command) -> BTreeSet<String> {
    let mut names: BTreeSet<String> = command
        .get_arguments()
        .filter_map(|arg| arg.get_env())
        .map(|env| env.to_string_lossy().into_owned())
        .collect();
    names.extend(GENERIC.iter().map(|s| s.to_string()));
    names
}

fn known() -> BTreeMap<&'static str, BTreeSet<String>> {
    BTreeMap::from([
        ("capture-agent", env_names(capture_agent::Config::command())),
        ("processor", env_names(processor::Config::command())),
        ("publisher", env_names(publisher::Config::command())),
        (
            "dataset-builder",
            env_names(dataset_builder::Config::command()),
        ),
        (
            "antinex-standin",
            BTreeSet::from([
                "STANDIN_LISTEN".to_string(),
                "DJANGO_SECRET_KEY".to_string(),
            ]),
        ),
    ])
}

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The default of a compose value: `x` for `${VAR:-x}`, else the value without quotes.
fn compose_default(value: &str) -> String {
    let value = value.trim().trim_matches('"').trim_matches('\'');
    match value.split_once(":-") {
        Some((_, rest)) if value.starts_with("${") => rest.trim_end_matches('}').to_string(),
        _ => value.to_string(),
    }
}

/// The port of `HOST:PORT`.
fn port_of(addr: &str) -> u16 {
    let port = addr.rsplit(':').next().unwrap_or_default();
    port.parse()
        .unwrap_or_else(|_| panic!("{addr:?} has no port"))
}

#[derive(Debug, Default)]
struct ComposeService {
    /// `KEY: value` lines under `environment:`.
    environment: Vec<(String, String)>,
    /// `env_file:` (its default path when it is `${VAR:-path}`).
    env_file: Option<String>,
}

/// The services of compose.yml, read by indentation (2: service, 4: its keys, 6: variables).
fn compose_services() -> BTreeMap<String, ComposeService> {
    let text = read(&root().join("deploy/compose.yml"));
    let (mut section, mut service, mut in_env) = (String::new(), String::new(), false);
    let mut services: BTreeMap<String, ComposeService> = BTreeMap::new();
    for line in text.lines() {
        let indent = line.len() - line.trim_start().len();
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        if indent == 0 {
            section = trimmed.trim_end_matches(':').to_string();
            continue;
        }
        if section != "services" {
            continue;
        }
        if indent == 2 {
            service = trimmed.trim_end_matches(':').to_string();
            services.entry(service.clone()).or_default();
            in_env = false;
        } else if indent == 4 {
            in_env = trimmed == "environment:";
            if let Some(value) = trimmed.strip_prefix("env_file:") {
                let path = compose_default(value);
                services.entry(service.clone()).or_default().env_file =
                    Some(path.trim_start_matches("./").to_string());
            }
        } else if indent == 6
            && in_env
            && let Some((key, value)) = trimmed.split_once(':')
        {
            services
                .entry(service.clone())
                .or_default()
                .environment
                .push((key.to_string(), value.to_string()));
        }
    }
    services
}

#[test]
fn compose_sets_only_variables_its_services_read() {
    let known = known();
    let services = compose_services();
    let mut checked = 0;
    for (service, config) in &services {
        let Some(names) = known.get(service.as_str()) else {
            continue;
        };
        for (key, _) in &config.environment {
            assert!(
                names.contains(key),
                "compose.yml: service {service} sets {key}, which it does not read"
            );
            checked += 1;
        }
    }
    assert!(
        checked > 15,
        "parsed too little of compose.yml: {services:?}"
    );
    for expected in ["capture-agent", "processor", "publisher", "dataset-builder"] {
        assert!(
            services.contains_key(expected),
            "compose.yml lost {expected}"
        );
    }
}

#[test]
fn compose_env_files_hold_only_variables_their_services_read() {
    let known = known();
    let mut users: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (service, config) in compose_services() {
        if let (Some(file), Some(names)) = (config.env_file, known.get(service.as_str())) {
            users.entry(file).or_default().extend(names.iter().cloned());
        }
    }
    assert!(
        !users.is_empty(),
        "no netpipe service of compose.yml has an env_file"
    );
    for (file, names) in users {
        let text = read(&root().join("deploy").join(&file));
        let mut keys = 0;
        // Commented-out `# KEY=value` lines document optional variables: they must be real too.
        for line in text.lines() {
            let line = line.trim().trim_start_matches('#').trim();
            let Some((key, _)) = line.split_once('=') else {
                continue;
            };
            if key.is_empty() || !key.chars().all(|c| c.is_ascii_uppercase() || c == '_') {
                continue;
            }
            assert!(
                names.contains(key),
                "deploy/{file}: {key} is read by no service using the file"
            );
            keys += 1;
        }
        assert!(
            keys >= 3,
            "deploy/{file}: parsed too little ({keys} variables)"
        );
    }
}

#[test]
fn compose_file_holds_no_credentials() {
    for (service, config) in compose_services() {
        for (key, value) in config.environment {
            let secret = ["PASSWORD", "SECRET", "TOKEN", "_PASS"]
                .iter()
                .any(|word| key.contains(word));
            assert!(
                !secret,
                "compose.yml: {service} sets {key} (credentials belong in an env file)"
            );
            assert!(
                !value.contains('@'),
                "compose.yml: {service} {key} looks like a URL with credentials"
            );
        }
    }
}

/// Every YAML file under `dir`, recursively.
fn yaml_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(yaml_files(&path));
        } else if path.extension().is_some_and(|e| e == "yaml" || e == "yml") {
            files.push(path);
        }
    }
    files.sort();
    files
}

/// The Kubernetes documents of deploy/k8s and deploy/k8s-monitoring: (file name, text).
fn kubernetes_documents() -> Vec<(String, String)> {
    let mut documents = Vec::new();
    for dir in ["deploy/k8s", "deploy/k8s-monitoring"] {
        for path in yaml_files(&root().join(dir)) {
            let file = path.strip_prefix(root()).unwrap().display().to_string();
            for document in read(&path).split("\n---") {
                documents.push((file.clone(), document.to_string()));
            }
        }
    }
    documents
}

fn kind_of(document: &str) -> Option<&str> {
    document
        .lines()
        .find_map(|line| line.strip_prefix("kind: "))
        .map(str::trim)
}

/// The service a workload runs: its `/usr/local/bin/NAME` command.
fn service_of(document: &str) -> Option<&str> {
    document
        .split("/usr/local/bin/")
        .nth(1)
        .and_then(|rest| rest.split(['"', ' ', ']']).next())
}

/// Container variables: `- name: KEY` (the value on the next line) or `- {name: KEY, value: V}`.
fn container_env(document: &str) -> Vec<(String, Option<String>)> {
    let lines: Vec<&str> = document.lines().collect();
    let mut vars = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let trimmed = line.trim().trim_start_matches("- ").trim_start_matches('{');
        let Some(rest) = trimmed.strip_prefix("name: ") else {
            continue;
        };
        let key = rest.split([',', '}', ' ']).next().unwrap_or_default();
        if key.is_empty() || !key.chars().all(|c| c.is_ascii_uppercase() || c == '_') {
            continue;
        }
        let value = match rest.split_once("value: ") {
            Some((_, v)) => Some(v.trim_end_matches('}').trim().to_string()),
            None => lines
                .get(i + 1)
                .and_then(|next| next.trim().strip_prefix("value: "))
                .map(|v| v.trim().to_string()),
        };
        vars.push((key.to_string(), value.map(|v| compose_default(&v))));
    }
    vars
}

/// Keys of the top-level `data:` / `stringData:` map of a ConfigMap or Secret.
fn data_keys(document: &str) -> Vec<String> {
    let mut in_data = false;
    let mut keys = Vec::new();
    for line in document.lines() {
        if line.starts_with("data:") || line.starts_with("stringData:") {
            in_data = true;
        } else if !line.starts_with(' ') {
            in_data = false;
        } else if in_data
            && !line.trim().starts_with('#')
            && let Some((key, _)) = line.trim().split_once(':')
        {
            keys.push(key.to_string());
        }
    }
    keys
}

#[test]
fn kubernetes_manifests_set_only_variables_their_services_read() {
    let known = known();
    let all: BTreeSet<&String> = known.values().flatten().collect();
    let (mut checked, mut workloads) = (0, 0);
    for (file, document) in kubernetes_documents() {
        if matches!(kind_of(&document), Some("ConfigMap" | "Secret")) {
            // Shared by several services (envFrom): each key must be read by at least one.
            for key in data_keys(&document) {
                assert!(all.contains(&key), "{file}: {key} is read by no service");
                checked += 1;
            }
            continue;
        }
        let Some(service) = service_of(&document) else {
            continue;
        };
        let names = known
            .get(service)
            .unwrap_or_else(|| panic!("{file}: unknown service {service}"));
        workloads += 1;
        for (key, _) in container_env(&document) {
            assert!(
                names.contains(&key),
                "{file}: {service} gets {key}, which it does not read"
            );
            checked += 1;
        }
    }
    assert!(
        checked > 20 && workloads >= 4,
        "parsed too little of deploy/k8s ({checked} variables, {workloads} workloads)"
    );
}

/// `job_name -> port` of each static target in deploy/prometheus/prometheus.yml.
fn prometheus_targets() -> BTreeMap<String, u16> {
    let text = read(&root().join("deploy/prometheus/prometheus.yml"));
    let (mut job, mut targets) = (None::<String>, BTreeMap::new());
    for line in text.lines() {
        let trimmed = line.trim().trim_start_matches("- ");
        if let Some(name) = trimmed.strip_prefix("job_name:") {
            job = Some(name.trim().to_string());
        } else if let Some(list) = trimmed.strip_prefix("targets:") {
            let target = list.trim().trim_matches(['[', ']', '\'', '"']);
            let name = job.take().expect("targets before a job_name");
            targets.insert(name, port_of(target));
        }
    }
    targets
}

#[test]
fn compose_kubernetes_and_prometheus_agree_on_ops_ports() {
    let mut compose_ports = BTreeMap::new();
    for (service, config) in compose_services() {
        for (key, value) in config.environment {
            if OPS_VARS.contains(&key.as_str()) {
                compose_ports.insert(service.clone(), port_of(&compose_default(&value)));
            }
        }
    }
    let scraped = prometheus_targets();
    for service in ["capture-agent", "processor", "publisher", "dataset-builder"] {
        let port = compose_ports
            .get(service)
            .unwrap_or_else(|| panic!("compose.yml: {service} has no ops address"));
        assert_eq!(
            scraped.get(service),
            Some(port),
            "prometheus.yml: job {service} must scrape its compose ops port {port}"
        );
    }
    let mut kubernetes = 0;
    for (file, document) in kubernetes_documents() {
        let Some(service) = service_of(&document) else {
            continue;
        };
        for (key, value) in container_env(&document) {
            if OPS_VARS.contains(&key.as_str()) {
                let value = value.unwrap_or_else(|| panic!("{file}: {key} has no value"));
                assert_eq!(
                    Some(&port_of(&value)),
                    compose_ports.get(service),
                    "{file}: {service} listens elsewhere than in compose.yml"
                );
                kubernetes += 1;
            }
        }
    }
    assert!(
        kubernetes >= 3,
        "found {kubernetes} ops addresses in deploy/k8s"
    );
}

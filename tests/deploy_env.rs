//! The deployment files (deploy/compose.yml, deploy/k8s/*.yaml) only set environment variables
//! that the service they configure actually reads, so a renamed flag cannot silently stop working
//! in production.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use clap::CommandFactory;

/// Variables read outside clap (tracing, OpenTelemetry).
const GENERIC: &[&str] = &[
    "RUST_LOG",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_SERVICE_NAME",
    "OTEL_RESOURCE_ATTRIBUTES",
];

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

/// `(service, variable)` pairs set in compose.yml: `KEY: value` lines under `environment:`.
fn compose_env() -> Vec<(String, String)> {
    let text = std::fs::read_to_string(root().join("deploy/compose.yml")).unwrap();
    let (mut service, mut in_env, mut pairs) = (String::new(), false, Vec::new());
    for line in text.lines() {
        let indent = line.len() - line.trim_start().len();
        let trimmed = line.trim();
        if indent == 2 && trimmed.ends_with(':') {
            service = trimmed.trim_end_matches(':').to_string();
            in_env = false;
        } else if indent == 4 {
            in_env = trimmed == "environment:";
        } else if indent == 6
            && in_env
            && let Some((key, _)) = trimmed.split_once(':')
        {
            pairs.push((service.clone(), key.to_string()));
        }
    }
    pairs
}

#[test]
fn compose_sets_only_variables_its_services_read() {
    let known = known();
    let pairs = compose_env();
    assert!(
        pairs.len() > 10,
        "parsed too little of compose.yml: {pairs:?}"
    );
    for (service, key) in pairs {
        let Some(names) = known.get(service.as_str()) else {
            continue;
        };
        assert!(
            names.contains(&key),
            "compose.yml: service {service} sets {key}, which it does not read"
        );
    }
}

#[test]
fn kubernetes_manifests_set_only_variables_their_services_read() {
    let known = known();
    let all: BTreeSet<&String> = known.values().flatten().collect();
    let dir = root().join("deploy/k8s");
    let mut checked = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        let file = path.file_name().unwrap().to_string_lossy().to_string();
        if file == "config.yaml" {
            // ConfigMap keys are shared by several services: each must be read by at least one.
            let mut in_data = false;
            for line in text.lines() {
                if line.starts_with("data:") {
                    in_data = true;
                } else if !line.starts_with(' ') {
                    in_data = false;
                } else if in_data && let Some((key, _)) = line.trim().split_once(':') {
                    assert!(
                        all.contains(&key.to_string()),
                        "{file}: {key} is read by no service"
                    );
                    checked += 1;
                }
            }
            continue;
        }
        let Some(service) = text
            .split("/usr/local/bin/")
            .nth(1)
            .and_then(|rest| rest.split('"').next())
        else {
            continue;
        };
        let names = known
            .get(service)
            .unwrap_or_else(|| panic!("{file}: unknown service {service}"));
        for line in text.lines() {
            let trimmed = line.trim().trim_start_matches("- ").trim_start_matches('{');
            if let Some(rest) = trimmed.strip_prefix("name: ") {
                let key = rest.split([',', '}', ' ']).next().unwrap_or_default();
                if key.chars().all(|c| c.is_ascii_uppercase() || c == '_') && !key.is_empty() {
                    assert!(
                        names.contains(key),
                        "{file}: {service} gets {key}, which it does not read"
                    );
                    checked += 1;
                }
            }
        }
    }
    assert!(
        checked > 10,
        "parsed too little of deploy/k8s ({checked} variables)"
    );
}

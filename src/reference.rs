//! The README's configuration and metrics reference, generated from the services' own clap
//! definitions and metric registries, so the documentation cannot drift from the code
//! (tests/docs/readme_reference.rs compares the README with this output).

use clap::CommandFactory;
use prometheus::proto::MetricType;

/// Every flag of every service: flag, environment variable, default, meaning.
pub fn configuration() -> String {
    let mut run = crate::cli::Cli::command();
    let run = run
        .find_subcommand_mut("run")
        .map(|c| c.clone())
        .unwrap_or_default();
    let services = [
        ("capture-agent", capture_agent::Config::command()),
        ("processor", processor::Config::command()),
        ("publisher", publisher::Config::command()),
        ("dataset-builder", dataset_builder::Config::command()),
        ("netpipe run", run),
    ];
    let mut out = String::new();
    for (name, command) in services {
        out.push_str(&format!(
            "\n<details><summary><b>{name}</b></summary>\n\n\
             | flag | environment | default | meaning |\n|---|---|---|---|\n"
        ));
        for arg in command.get_arguments() {
            let id = arg.get_id().as_str();
            if arg.is_hide_set() || id == "help" || id == "version" {
                continue;
            }
            let flag = match arg.get_long() {
                Some(long) => format!("`--{long}`"),
                None => format!("`{}`", id.to_uppercase()),
            };
            let env = arg
                .get_env()
                .map(|e| format!("`{}`", e.to_string_lossy()))
                .unwrap_or_default();
            let default = if arg.is_hide_default_value_set() {
                "(hidden)".to_string()
            } else {
                let values: Vec<String> = arg
                    .get_default_values()
                    .iter()
                    .map(|v| v.to_string_lossy().into_owned())
                    .collect();
                match values.join(",") {
                    v if v.is_empty() => String::new(),
                    v => format!("`{v}`"),
                }
            };
            let help = arg
                .get_long_help()
                .or(arg.get_help())
                .map(|h| h.to_string())
                .unwrap_or_default();
            out.push_str(&format!(
                "| {flag} | {env} | {} | {} |\n",
                cell(&default),
                cell(&help)
            ));
        }
        out.push_str("\n</details>\n");
    }
    out.push_str(&deprecated_names());
    out
}

/// The renamed variables: old name, new name, where. The old names still work, with one
/// deprecation warning each (docs/operations.md, "Environment names").
fn deprecated_names() -> String {
    let lists = [
        ("capture-agent", capture_agent::config::ENV_ALIASES),
        ("processor", processor::config::ENV_ALIASES),
        ("publisher", publisher::config::ENV_ALIASES),
        ("dataset-builder", dataset_builder::config::ENV_ALIASES),
        ("netpipe run", crate::run_cmd::ENV_ALIASES),
    ];
    let mut out = String::from(
        "\n<details><summary><b>deprecated environment names</b></summary>\n\n\
         | old name | new name | service |\n|---|---|---|\n",
    );
    for (service, aliases) in lists {
        for alias in aliases {
            out.push_str(&format!(
                "| `{}` | `{}` | {service} |\n",
                alias.old, alias.new
            ));
        }
    }
    out.push_str("\n</details>\n");
    out
}

/// Every metric family of every service's registry: name, type, help.
pub fn metrics() -> String {
    let version = env!("CARGO_PKG_VERSION");
    let registries = [
        (
            "capture-agent",
            capture_agent::metrics::AgentMetrics::new(version).map(|m| m.ops),
        ),
        (
            "processor",
            processor::metrics::ProcessorMetrics::new(version, &["netpipe".to_string()])
                .map(|m| m.ops),
        ),
        (
            "publisher",
            publisher::metrics::PublisherMetrics::new().map(|m| m.ops),
        ),
        (
            "dataset-builder",
            dataset_builder::ops_metrics::BuilderMetrics::new(version).map(|m| m.ops),
        ),
    ];
    let mut out = String::new();
    for (name, registry) in registries {
        out.push_str(&format!(
            "\n<details><summary><b>{name}</b></summary>\n\n\
             | metric | type | meaning |\n|---|---|---|\n"
        ));
        let families = match registry {
            Ok(metrics) => metrics.registry().gather(),
            Err(error) => {
                out.push_str(&format!("| (registry failed: {error}) | | |\n"));
                continue;
            }
        };
        for family in families {
            // The process collector's series are the same for every service (README says so).
            if family.name().contains("_process_") {
                continue;
            }
            let kind = match family.get_field_type() {
                MetricType::COUNTER => "counter",
                MetricType::GAUGE => "gauge",
                MetricType::HISTOGRAM => "histogram",
                MetricType::SUMMARY => "summary",
                MetricType::UNTYPED => "untyped",
            };
            let labels: Vec<String> = family
                .get_metric()
                .first()
                .map(|m| m.get_label().iter().map(|l| l.name().to_string()).collect())
                .unwrap_or_default();
            let name = if labels.is_empty() {
                family.name().to_string()
            } else {
                format!("{}{{{}}}", family.name(), labels.join(","))
            };
            out.push_str(&format!(
                "| `{name}` | {kind} | {} |\n",
                cell(family.help())
            ));
        }
        out.push_str("\n</details>\n");
    }
    out
}

/// One table cell: one line, pipes escaped.
fn cell(text: &str) -> String {
    text.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .replace('|', "\\|")
}

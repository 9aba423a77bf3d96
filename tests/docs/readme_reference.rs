//! The README's configuration and metrics tables equal what the code defines. After changing a
//! flag or a metric: `NETPIPE_UPDATE_README=1 cargo test -p netpipe --test docs readme_reference`.

use std::path::Path;

fn check_section(readme: &mut String, name: &str, generated: &str) -> Result<(), String> {
    let start = format!("<!-- {name}:start -->\n");
    let end = format!("<!-- {name}:end -->");
    let (Some(a), Some(b)) = (readme.find(&start), readme.find(&end)) else {
        return Err(format!("README.md lacks the markers {start:?} and {end:?}"));
    };
    let inner = a + start.len();
    if readme[inner..b] == *generated {
        return Ok(());
    }
    if std::env::var_os("NETPIPE_UPDATE_README").is_some() {
        readme.replace_range(inner..b, generated);
        return Ok(());
    }
    Err(format!(
        "README.md's {name} differs from the code; run \
         NETPIPE_UPDATE_README=1 cargo test -p netpipe --test docs readme_reference"
    ))
}

#[test]
fn readme_tables_equal_the_code() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md");
    let mut readme = std::fs::read_to_string(&path).unwrap();
    let config = netpipe::reference::configuration();
    let metrics = netpipe::reference::metrics();
    let results = [
        check_section(&mut readme, "config-reference", &config),
        check_section(&mut readme, "metrics-reference", &metrics),
    ];
    if std::env::var_os("NETPIPE_UPDATE_README").is_some() {
        std::fs::write(&path, &readme).unwrap();
    }
    for result in results {
        if let Err(message) = result {
            panic!("{message}");
        }
    }
}

#[test]
fn every_service_and_original_variable_is_in_the_reference() {
    let config = netpipe::reference::configuration();
    for name in [
        "capture-agent",
        "processor",
        "publisher",
        "dataset-builder",
        "netpipe run",
    ] {
        assert!(config.contains(&format!("<b>{name}</b>")), "{name}");
    }
    for env in [
        "CAP_DEVICE",
        "NETWORK_FILTER",
        "FORWARD_BROKER_URL",
        "FORWARD_QUEUE",
        "SAVE_AFTER_NUM",
        "STOP_AFTER_NUM",
        "DS_DIR",
        "DS_NAME",
        "OUTPUT_CSV",
        "ANTINEX_URL",
        "ANTINEX_USER",
        "ANTINEX_PASSWORD",
        "ANTINEX_FEATURES_TO_PROCESS",
        "DS_GLOB_PATH",
    ] {
        assert!(config.contains(&format!("`{env}`")), "{env} missing");
    }
    // Secrets show no default value.
    assert!(!config.contains("123321"), "a default password is printed");
    let metrics = netpipe::reference::metrics();
    for family in [
        "capture_agent_packets_captured_total",
        "processor_rows_written_total",
        "processor_consumer_lag_messages",
        "publisher_rows_sent_total",
        "dataset_builder_builds_total",
    ] {
        assert!(metrics.contains(family), "{family} missing");
    }
}

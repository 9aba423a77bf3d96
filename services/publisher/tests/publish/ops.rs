//! The ops surface (netpipe_runtime::ops): /metrics after a delivery over real Redis (127.0.0.1:6379),
//! /ready naming a refused login or an unreachable rows broker, /health while running, and a
//! clear start-up error for a bad OPS_ADDR.

use std::sync::atomic::Ordering;
use std::time::Duration;

use crate::support::*;
use antinex_standin::{Standin, StandinConfig, User};
use netpipe_runtime::broker::{BrokerConfig, Publisher};
use publisher::{Config, PublisherError};
use redis::AsyncCommands;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

const REDIS: &str = "redis://127.0.0.1:6379/0";

/// Stream, dead-letter stream and group names of one test.
struct Names {
    stream: String,
    dead: String,
    group: String,
}

impl Names {
    async fn new(test: &str) -> Names {
        let stream = format!("netpipe-test-publisher-ops-{test}-{}", std::process::id());
        let names = Names {
            dead: format!("{stream}.dead"),
            group: "publisher-ops-test".into(),
            stream,
        };
        names.clean().await;
        names
    }

    async fn clean(&self) {
        let mut redis = redis::Client::open(REDIS)
            .unwrap()
            .get_multiplexed_async_connection()
            .await
            .unwrap();
        let _: () = redis.del(&[&self.stream, &self.dead]).await.unwrap();
    }

    async fn producer(&self) -> Publisher {
        let mut config = BrokerConfig::parse(REDIS).unwrap();
        config.stream = self.stream.clone();
        config.group = self.group.clone();
        Publisher::connect(&config).await.unwrap()
    }

    /// A publisher config reading this test's stream, with the ops endpoints on `ops`.
    fn config(&self, antinex: &str, ops: &str) -> Config {
        let mut c = config(REDIS, antinex);
        c.rows_stream = self.stream.clone();
        c.rows_group = self.group.clone();
        c.rows_consumer = Some("publisher-ops".into());
        c.rows_dead_letter = self.dead.clone();
        c.batch_rows = 50;
        c.common.ops_addr = ops.parse().expect("ops address");
        c
    }
}

async fn get(ops: &str, path: &str) -> (u16, String) {
    let response = reqwest::get(format!("http://{ops}{path}")).await.unwrap();
    let status = response.status().as_u16();
    (status, response.text().await.unwrap())
}

/// `/ready`: status and the reasons list.
async fn ready(ops: &str) -> (u16, Vec<String>) {
    let (status, body) = get(ops, "/ready").await;
    let json: Value = serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body}"));
    assert_eq!(json["ready"], status == 200, "{body}");
    let reasons = json["reasons"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_str().unwrap().to_string())
        .collect();
    (status, reasons)
}

/// Polls `/ready` every 20 ms (up to 30 s) until `condition` holds for its answer. The run
/// starts in a task: until it listens, connections are refused.
async fn wait_ready(ops: &str, what: &str, condition: impl Fn(u16, &[String]) -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let mut last = None;
        if reqwest::get(format!("http://{ops}/ready")).await.is_ok() {
            let (status, reasons) = ready(ops).await;
            if condition(status, &reasons) {
                return;
            }
            last = Some((status, reasons));
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}: /ready {last:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The value of one series (`name` or `name{label="value"}`) in Prometheus text.
fn value(metrics: &str, series: &str) -> f64 {
    metrics
        .lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .unwrap_or_else(|| panic!("no series {series} in\n{metrics}"))
        .trim()
        .parse()
        .unwrap()
}

#[cfg_attr(
    not(feature = "system-tests"),
    ignore = "needs Redis at 127.0.0.1:6379 and promtool installed: run with --features system-tests (scripts/test.sh does)"
)]
#[tokio::test]
async fn metrics_after_a_delivery_pass_promtool_and_carry_every_required_family() {
    let names = Names::new("metrics").await;
    let rows = names.producer().await;
    for m in 0..3u64 {
        rows.publish(row_batch(m * 50, 50).encode()).await.unwrap();
    }
    // 1 s tokens: the rows sent after a pause need a renewed token.
    let server = standin(StandinConfig {
        token_lifetime: Duration::from_secs(1),
        ..StandinConfig::default()
    })
    .await;
    server.state.faults.refuse_next.store(1, Ordering::SeqCst);
    let ops = free_addr();
    let shutdown = CancellationToken::new();
    let run = tokio::spawn(publisher::run(
        names.config(&server.url(), &ops),
        shutdown.clone(),
    ));
    wait_for("100 rows accepted, 50 refused", || accepted(&server) >= 100).await;
    tokio::time::sleep(Duration::from_millis(1200)).await;
    rows.publish(row_batch(150, 50).encode()).await.unwrap();
    wait_for("150 rows accepted", || accepted(&server) >= 150).await;
    wait_ready(&ops, "ready", |status, _| status == 200).await;

    let (status, reasons) = ready(&ops).await;
    assert_eq!((status, reasons.len()), (200, 0));
    assert_eq!(get(&ops, "/health").await.0, 200);
    let mut metrics = String::new();
    // The gauges settle right after the last acknowledgement.
    wait_metrics(&ops, &mut metrics, |m| {
        value(m, "publisher_messages_acked_total") >= 3.0
            && value(m, "publisher_dead_letters_total") >= 1.0
            && value(m, "publisher_backlog_rows") == 0.0
    })
    .await;
    netpipe_testkit::promtool_check("publisher metrics", &metrics).unwrap();

    assert_eq!(value(&metrics, "publisher_rows_sent_total"), 150.0);
    assert_eq!(value(&metrics, "publisher_rows_received_total"), 200.0);
    assert!(value(&metrics, "publisher_batches_total{status=\"201\"}") >= 3.0);
    assert_eq!(
        value(&metrics, "publisher_batches_total{status=\"400\"}"),
        1.0
    );
    assert!(value(&metrics, "publisher_logins_total{outcome=\"ok\"}") >= 2.0);
    assert!(value(&metrics, "publisher_token_renewals_total") >= 1.0);
    assert!(value(&metrics, "publisher_request_seconds_count") >= 4.0);
    assert!(value(&metrics, "publisher_request_seconds_sum") > 0.0);
    assert_eq!(value(&metrics, "publisher_dead_letters_total"), 1.0);
    assert_eq!(value(&metrics, "publisher_rows_dead_lettered_total"), 50.0);
    assert_eq!(value(&metrics, "publisher_messages_acked_total"), 3.0);
    assert!(metrics.contains("# TYPE publisher_backlog_rows gauge"));
    assert!(metrics.contains("publisher_build_info{service=\"publisher\",version=\""));
    assert!(metrics.contains("publisher_process_resident_memory_bytes"));

    shutdown.cancel();
    let summary = with_timeout(run).await.unwrap().unwrap();
    assert_eq!(summary.rows_sent, 150);
    names.clean().await;
}

/// Reads /metrics until `condition` holds (up to 30 s), leaving the last text in `metrics`.
async fn wait_metrics(ops: &str, metrics: &mut String, condition: impl Fn(&str) -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        *metrics = get(ops, "/metrics").await.1;
        if condition(metrics) {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for the metrics:\n{metrics}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[cfg_attr(
    not(feature = "system-tests"),
    ignore = "needs Redis at 127.0.0.1:6379: run with --features system-tests (scripts/test.sh does)"
)]
#[tokio::test]
async fn ready_names_a_refused_login_until_a_good_one() {
    const PASSWORD: &str = "pw-ops-Right-7";
    let names = Names::new("login").await;
    let rows = names.producer().await;
    rows.publish(row_batch(0, 20).encode()).await.unwrap();
    // The server does not know the publisher's password yet.
    let server = standin(StandinConfig::default()).await;
    let ops = free_addr();
    let mut config = names.config(&server.url(), &ops);
    config.password = publisher::SecretString::from(PASSWORD);
    let shutdown = CancellationToken::new();
    let run = tokio::spawn(publisher::run(config, shutdown.clone()));

    wait_ready(&ops, "the refused login", |status, reasons| {
        status == 503
            && reasons
                .iter()
                .any(|r| r.starts_with("antinex login: refused"))
    })
    .await;
    let (_, body) = get(&ops, "/ready").await;
    assert!(body.contains("HTTP 400"), "{body}");
    assert!(!body.contains(PASSWORD), "{body}");
    assert_eq!(get(&ops, "/health").await.0, 200);
    let metrics = get(&ops, "/metrics").await.1;
    assert!(value(&metrics, "publisher_logins_total{outcome=\"refused\"}") >= 1.0);
    assert_eq!(value(&metrics, "publisher_rows_sent_total"), 0.0);

    // The account is fixed on the server (same address): the next login works, rows flow.
    let addr = server.addr.to_string();
    server.stop().await;
    let server = Standin::start(
        StandinConfig {
            users: vec![User {
                id: 1,
                username: "root".into(),
                password: PASSWORD.into(),
                email: "root@email.com".into(),
                active: true,
            }],
            ..StandinConfig::default()
        },
        &addr,
    )
    .await
    .unwrap();
    wait_ready(&ops, "ready after a good login", |status, _| status == 200).await;
    wait_for("20 rows accepted", || accepted(&server) >= 20).await;
    assert_eq!(get(&ops, "/health").await.0, 200);

    shutdown.cancel();
    let summary = with_timeout(run).await.unwrap().unwrap();
    assert_eq!(summary.rows_sent, 20);
    names.clean().await;
}

#[tokio::test]
async fn ready_names_an_unreachable_rows_broker() {
    let server = standin(StandinConfig::default()).await;
    let ops = free_addr();
    let closed = free_addr();
    let mut config = config(&format!("redis://{closed}/0"), &server.url());
    config.common.ops_addr = ops.parse().unwrap();
    let shutdown = CancellationToken::new();
    let run = tokio::spawn(publisher::run(config, shutdown.clone()));

    wait_ready(&ops, "only the broker unmet", |status, reasons| {
        status == 503 && reasons.len() == 1 && reasons[0].starts_with("rows broker: ")
    })
    .await;
    let (_, reasons) = ready(&ops).await;
    assert!(
        reasons[0].contains(&closed),
        "names the broker: {reasons:?}"
    );
    assert_eq!(get(&ops, "/health").await.0, 200, "retrying is alive");

    shutdown.cancel();
    let summary = with_timeout(run).await.unwrap().unwrap();
    assert_eq!((summary.messages_received, summary.rows_sent), (0, 0));
}

#[tokio::test]
async fn a_bad_ops_address_is_a_clear_start_up_error() {
    let server = standin(StandinConfig::default()).await;
    let url = stream("badops");
    let run = |ops: &str| {
        let mut c = config(&url, &server.url());
        c.common.ops_addr = ops.parse().expect("ops address");
        publisher::run(c, CancellationToken::new())
    };

    // Not host:port at all: refused when parsed (clap's one line, before run).
    assert!(
        "127.0.0.1:notaport"
            .parse::<netpipe_runtime::service::OpsAddr>()
            .is_err()
    );
    let error = with_timeout(run("no-such-host.invalid:9103"))
        .await
        .unwrap_err();
    assert!(matches!(error, PublisherError::Ops { .. }), "{error}");
    assert!(
        error
            .to_string()
            .contains("OPS_ADDR=no-such-host.invalid:9103"),
        "{error}"
    );

    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let busy_addr = busy.local_addr().unwrap().to_string();
    let error = with_timeout(run(&busy_addr)).await.unwrap_err();
    assert!(matches!(error, PublisherError::Ops { .. }), "{error}");
    assert!(error.to_string().contains("cannot listen"), "{error}");
}

/// `/ready` turns 503 once POST /ml/ has failed `--unready-after-failures` times in a row, with
/// the last failure as the reason, and 200 again after the next accepted batch.
#[cfg_attr(
    not(feature = "system-tests"),
    ignore = "needs Redis at 127.0.0.1:6379: run with --features system-tests (scripts/test.sh does)"
)]
#[tokio::test]
async fn ready_turns_503_after_consecutive_failed_deliveries_and_recovers() {
    let names = Names::new("unready").await;
    let rows = names.producer().await;
    let server = standin(StandinConfig::default()).await;
    server
        .state
        .faults
        .fail_next
        .store(1_000_000, Ordering::SeqCst);
    let ops = free_addr();
    let mut config = names.config(&server.url(), &ops);
    config.unready_after_failures = 3;
    config.retry_initial = Duration::from_millis(20);
    config.retry_max = Duration::from_millis(100);
    let shutdown = CancellationToken::new();
    let run = tokio::spawn(publisher::run(config, shutdown.clone()));
    rows.publish(row_batch(0, 50).encode()).await.unwrap();
    wait_ready(&ops, "503 after failed deliveries", |status, reasons| {
        status == 503
            && reasons
                .iter()
                .any(|r| r.starts_with("antinex delivery: ") && r.contains("HTTP 500"))
    })
    .await;
    server.state.faults.fail_next.store(0, Ordering::SeqCst);
    wait_ready(&ops, "200 after a delivery", |status, _| status == 200).await;
    assert!(accepted(&server) >= 50);
    shutdown.cancel();
    run.await.unwrap().unwrap();
    names.clean().await;
}

//! The ops server on a real socket: /health, /ready transitions, /metrics checked by promtool.

use std::net::SocketAddr;
use std::time::Duration;

use netpipe_runtime::ops::{Heartbeat, Metrics, OpsState, Readiness, serve};
use tokio_util::sync::CancellationToken;

fn state(prefix: &str, max_age: Duration) -> OpsState {
    let metrics = Metrics::new(prefix, "ops-test", "9.9.9").unwrap();
    OpsState::new(Heartbeat::new(max_age), Readiness::new(), metrics)
}

async fn get(addr: SocketAddr, path: &str) -> (u16, String) {
    let response = reqwest::get(format!("http://{addr}{path}")).await.unwrap();
    let status = response.status().as_u16();
    (status, response.text().await.unwrap())
}

#[tokio::test]
async fn health_follows_the_heartbeat() {
    let state = state("ops_health", Duration::from_millis(200));
    let shutdown = CancellationToken::new();
    let server = serve(
        "127.0.0.1:0".parse().unwrap(),
        state.clone(),
        shutdown.clone(),
    )
    .await
    .unwrap();
    assert_eq!(get(server.local_addr, "/health").await.0, 200);
    tokio::time::sleep(Duration::from_millis(400)).await;
    let (status, body) = get(server.local_addr, "/health").await;
    assert_eq!(status, 503);
    assert!(body.contains("stalled"), "{body}");
    state.heartbeat.beat();
    assert_eq!(get(server.local_addr, "/health").await.0, 200);
    shutdown.cancel();
    server.task.await.unwrap();
}

#[tokio::test]
async fn ready_goes_from_503_with_reasons_to_200() {
    let state = state("ops_ready", Duration::from_secs(10));
    state
        .readiness
        .declare(&["capture handle open", "broker reachable"]);
    let shutdown = CancellationToken::new();
    let server = serve(
        "127.0.0.1:0".parse().unwrap(),
        state.clone(),
        shutdown.clone(),
    )
    .await
    .unwrap();

    let (status, body) = get(server.local_addr, "/ready").await;
    assert_eq!(status, 503);
    let json: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(json["ready"], false);
    assert_eq!(json["reasons"].as_array().unwrap().len(), 2);

    state.readiness.set_met("capture handle open");
    state
        .readiness
        .set_not_met("broker reachable", "connection refused");
    let (status, body) = get(server.local_addr, "/ready").await;
    assert_eq!(status, 503);
    let json: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        json["reasons"],
        serde_json::json!(["broker reachable: connection refused"])
    );

    state.readiness.set_met("broker reachable");
    let (status, body) = get(server.local_addr, "/ready").await;
    assert_eq!(status, 200);
    let json: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(json, serde_json::json!({"ready": true, "reasons": []}));
    shutdown.cancel();
    server.task.await.unwrap();
}

#[cfg_attr(
    not(feature = "system-tests"),
    ignore = "needs promtool installed: run with --features system-tests (scripts/test.sh does)"
)]
#[tokio::test]
async fn metrics_are_valid_prometheus_text() {
    let state = state("ops_metrics", Duration::from_secs(10));
    let drops = state
        .metrics
        .counter_vec(
            "dropped_total",
            "Packets lost, by reason",
            "reason",
            &["buffer_full", "kernel"],
        )
        .unwrap();
    drops.with_label_values(&["kernel"]).inc_by(7);
    let shutdown = CancellationToken::new();
    let server = serve(
        "127.0.0.1:0".parse().unwrap(),
        state.clone(),
        shutdown.clone(),
    )
    .await
    .unwrap();
    let (status, body) = get(server.local_addr, "/metrics").await;
    assert_eq!(status, 200);
    assert!(
        body.contains("ops_metrics_build_info{service=\"ops-test\",version=\"9.9.9\"} 1"),
        "{body}"
    );
    assert!(body.contains("ops_metrics_dropped_total{reason=\"kernel\"} 7"));
    assert!(body.contains("ops_metrics_dropped_total{reason=\"buffer_full\"} 0"));
    assert!(body.contains("ops_metrics_process_resident_memory_bytes"));
    netpipe_testkit::promtool_check("metrics_are_valid_prometheus_text", &body).unwrap();
    shutdown.cancel();
    server.task.await.unwrap();
}

#[tokio::test]
async fn binding_a_busy_port_is_a_clear_error() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap();
    let err = serve(
        addr,
        state("ops_bind", Duration::from_secs(1)),
        CancellationToken::new(),
    )
    .await
    .unwrap_err();
    assert!(err.to_string().contains(&addr.to_string()), "{err}");
}

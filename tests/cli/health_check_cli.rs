//! `netpipe health-check` (the container image's HEALTHCHECK) against a real ops server: exit 0
//! for a 200, non-zero for a 503 and for a refused connection.

use std::net::SocketAddr;
use std::process::{Command, Output};
use std::time::Duration;

use netpipe_runtime::ops::{Heartbeat, Metrics, OpsServer, OpsState, Readiness, serve};
use tokio_util::sync::CancellationToken;

/// An ops server whose /health answers 200 and whose /ready answers 503 (broker unreachable).
fn start_ops_server(runtime: &tokio::runtime::Runtime, shutdown: &CancellationToken) -> SocketAddr {
    let readiness = Readiness::new();
    readiness.declare(&["broker reachable"]);
    let state = OpsState::new(
        Heartbeat::new(Duration::from_secs(600)),
        readiness,
        Metrics::new("health_check_cli", "health-check-cli", "0.0.0").unwrap(),
    );
    let server: OpsServer = runtime
        .block_on(serve(
            SocketAddr::from(([127, 0, 0, 1], 0)),
            state,
            shutdown.clone(),
        ))
        .unwrap();
    server.local_addr
}

fn health_check(args: &[&str], ops_addr: Option<&str>) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_netpipe"));
    command
        .arg("health-check")
        .args(args)
        .env_remove("HEALTHCHECK_URL")
        .env_remove("PUBLISHER_OPS_ADDR")
        .env_remove("OPS_ADDR");
    if let Some(addr) = ops_addr {
        command.env("OPS_ADDR", addr);
    }
    command.output().unwrap()
}

#[test]
fn exits_zero_only_when_the_endpoint_answers_2xx() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let shutdown = CancellationToken::new();
    let addr = start_ops_server(&runtime, &shutdown);

    let healthy = health_check(&[&format!("http://{addr}/health")], None);
    assert!(healthy.status.success(), "{healthy:?}");

    let not_ready = health_check(&[&format!("http://{addr}/ready")], None);
    assert_eq!(not_ready.status.code(), Some(1), "{not_ready:?}");
    assert!(
        String::from_utf8_lossy(&not_ready.stderr).contains("503"),
        "{not_ready:?}"
    );

    // Without a URL: /health on OPS_ADDR, a wildcard address probed on loopback.
    let from_env = health_check(&[], Some(&format!("0.0.0.0:{}", addr.port())));
    assert!(from_env.status.success(), "{from_env:?}");

    shutdown.cancel();
}

#[test]
fn a_refused_connection_or_no_address_is_a_failure() {
    // A port that was just free: nothing listens there any more.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let refused = health_check(&[&format!("http://127.0.0.1:{port}/health")], None);
    assert!(!refused.status.success(), "{refused:?}");
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("GET http://127.0.0.1"),
        "{refused:?}"
    );

    let unset = health_check(&[], None);
    assert!(!unset.status.success(), "{unset:?}");
    assert!(
        String::from_utf8_lossy(&unset.stderr).contains("OPS_ADDR"),
        "{unset:?}"
    );
}

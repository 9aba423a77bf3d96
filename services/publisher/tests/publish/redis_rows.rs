//! Rows from a real Redis Streams group (127.0.0.1:6379): acknowledged only once accepted,
//! refused rows on the dead-letter stream, unaccepted rows redelivered after a restart.

use std::sync::atomic::Ordering;
use std::time::Duration;

use crate::support::*;
use antinex_standin::StandinConfig;
use netpipe_runtime::broker::{BrokerConfig, Publisher};
use redis::AsyncCommands;

const URL: &str = "redis://127.0.0.1:6379/0";

async fn raw() -> redis::aio::MultiplexedConnection {
    redis::Client::open(URL)
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap()
}

async fn pending(stream: &str, group: &str) -> i64 {
    let reply: redis::Value = redis::cmd("XPENDING")
        .arg(stream)
        .arg(group)
        .query_async(&mut raw().await)
        .await
        .unwrap();
    match reply {
        redis::Value::Array(items) => match items.first() {
            Some(redis::Value::Int(n)) => *n,
            other => panic!("unexpected XPENDING reply {other:?}"),
        },
        other => panic!("unexpected XPENDING reply {other:?}"),
    }
}

#[cfg_attr(
    not(feature = "system-tests"),
    ignore = "needs Redis at 127.0.0.1:6379: run with --features system-tests (scripts/test.sh does)"
)]
#[tokio::test]
async fn redis_rows_are_acked_after_acceptance_dead_lettered_or_redelivered() {
    let pid = std::process::id();
    let stream = format!("netpipe-test-publisher-rows-{pid}");
    let dead = format!("{stream}.dead");
    let group = "publisher-test".to_string();
    let _: () = raw().await.del(&[&stream, &dead]).await.unwrap();

    let mut producer = BrokerConfig::parse(URL).unwrap();
    producer.stream = stream.clone();
    producer.group = group.clone();
    let rows = Publisher::connect(&producer).await.unwrap();
    for m in 0..6u64 {
        rows.publish(row_batch(m * 50, 50).encode()).await.unwrap();
    }

    let server = standin(StandinConfig::default()).await;
    server.state.faults.refuse_next.store(1, Ordering::SeqCst);
    let config = |antinex: &str| {
        let mut c = config(URL, antinex);
        c.rows_stream = stream.clone();
        c.rows_group = group.clone();
        c.rows_consumer = Some("publisher-1".into());
        c.rows_dead_letter = dead.clone();
        c.batch_rows = 50;
        c
    };

    // Phase 1: 5 messages accepted, 1 refused.
    let summary = run_until(config(&server.url()), "250 rows", || {
        accepted(&server) >= 250
    })
    .await;
    assert_eq!(summary.messages_acked, 5);
    assert_eq!(summary.messages_dead_lettered, 1);
    assert_eq!(
        pending(&stream, &group).await,
        0,
        "everything acked or dead-lettered"
    );
    let dead_len: i64 = raw().await.xlen(&dead).await.unwrap();
    assert_eq!(dead_len, 1);

    // Phase 2: the API is down: rows read but not accepted stay pending.
    for m in 6..10u64 {
        rows.publish(row_batch(m * 50, 50).encode()).await.unwrap();
    }
    let down = format!("http://{}", free_addr());
    let shutdown = tokio_util::sync::CancellationToken::new();
    let run = tokio::spawn(publisher::run(config(&down), shutdown.clone()));
    tokio::time::sleep(Duration::from_millis(1000)).await;
    shutdown.cancel();
    let summary = with_timeout(run).await.unwrap().unwrap();
    assert_eq!(summary.rows_sent, 0);
    assert_eq!(summary.rows_abandoned, 200);
    assert_eq!(
        pending(&stream, &group).await,
        4,
        "nothing acknowledged while the API is down"
    );

    // Phase 3: restart with the API up: the pending rows are delivered again, once.
    let summary = run_until(config(&server.url()), "450 rows", || {
        accepted(&server) >= 450
    })
    .await;
    assert_eq!(summary.rows_sent, 200);
    assert_eq!(pending(&stream, &group).await, 0);
    let mut seen = posted_idx(&server);
    seen.sort_unstable();
    seen.dedup();
    assert_eq!(seen.len(), 450, "no row twice");
    // The missing 50 are exactly the one refused message.
    let missing: Vec<u64> = (0..500)
        .filter(|i| seen.binary_search(i).is_err())
        .collect();
    assert_eq!(missing.len(), 50);
    assert_eq!(missing[0] % 50, 0);
    assert_eq!(missing[49], missing[0] + 49);
    let _: () = raw().await.del(&[&stream, &dead]).await.unwrap();
}

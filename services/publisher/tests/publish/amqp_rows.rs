//! Rows from a real RabbitMQ queue (127.0.0.1:5672): acknowledged only once accepted; a
//! refused batch goes to the dead-letter queue; nothing is left unacknowledged.

use std::sync::atomic::Ordering;

use crate::support::*;
use antinex_standin::StandinConfig;
use lapin::options::{ExchangeDeleteOptions, QueueDeleteOptions};
use lapin::{Connection, ConnectionProperties};
use netpipe_runtime::broker::{BrokerConfig, Publisher};

const URL: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";

async fn cleanup(names: &[&str]) {
    let connection = Connection::connect(URL, ConnectionProperties::default())
        .await
        .unwrap();
    for name in names {
        let channel = connection.create_channel().await.unwrap();
        let _ = channel
            .queue_delete((*name).into(), QueueDeleteOptions::default())
            .await;
        let channel = connection.create_channel().await.unwrap();
        let _ = channel
            .exchange_delete((*name).into(), ExchangeDeleteOptions::default())
            .await;
    }
    let _ = connection.close(200, "OK".into()).await;
}

#[cfg_attr(
    not(feature = "system-tests"),
    ignore = "needs RabbitMQ at 127.0.0.1:5672: run with --features system-tests (scripts/test.sh does)"
)]
#[tokio::test]
async fn amqp_rows_are_acked_after_acceptance_and_refusals_dead_lettered() {
    let pid = std::process::id();
    let queue = format!("netpipe-test-publisher-rows-{pid}");
    let dead = format!("{queue}.dead");
    cleanup(&[&queue, &dead]).await;

    let mut producer = BrokerConfig::parse(URL).unwrap();
    producer.stream = queue.clone();
    producer.exchange = queue.clone();
    producer.routing_key = queue.clone();
    producer.dead_letter = dead.clone();
    let rows = Publisher::connect(&producer).await.unwrap();
    for m in 0..4u64 {
        rows.publish(row_batch(m * 50, 50).encode()).await.unwrap();
    }

    let server = standin(StandinConfig::default()).await;
    server.state.faults.refuse_next.store(1, Ordering::SeqCst);
    let mut c = config(URL, &server.url());
    c.rows_stream = queue.clone();
    c.rows_dead_letter = dead.clone();
    c.batch_rows = 50;
    let summary = run_until(c, "150 rows", || accepted(&server) >= 150).await;
    assert_eq!(summary.messages_acked, 3);
    assert_eq!(summary.messages_dead_lettered, 1);
    assert_eq!(summary.rows_sent, 150);
    let mut seen = posted_idx(&server);
    seen.sort_unstable();
    seen.dedup();
    assert_eq!(seen.len(), 150, "no row twice");

    // Nothing left on the queue for the next consumer: all acknowledged or dead-lettered.
    let server2 = standin(StandinConfig::default()).await;
    let mut c = config(URL, &server2.url());
    c.rows_stream = queue.clone();
    c.rows_dead_letter = dead.clone();
    let shutdown = tokio_util::sync::CancellationToken::new();
    let run = tokio::spawn(publisher::run(c, shutdown.clone()));
    tokio::time::sleep(std::time::Duration::from_millis(800)).await;
    shutdown.cancel();
    let summary = with_timeout(run).await.unwrap().unwrap();
    assert_eq!(summary.messages_received, 0);
    drop(rows);
    cleanup(&[&queue, &dead]).await;
}

//! The processor against the real RabbitMQ (127.0.0.1:5672, guest/guest): frames become rows
//! once each, and a poison message goes to the dead-letter queue.

use std::time::Duration;

use crate::support::{csv_files, expected_rows, frames, read_csv, unique};
use lapin::options::{BasicGetOptions, ExchangeDeleteOptions, QueueDeleteOptions};
use lapin::{Connection, ConnectionProperties};
use netpipe_runtime::broker::codec::encode_frames;
use netpipe_runtime::broker::{BrokerConfig, Consumer, Publisher};
use processor::Config;
use tokio_util::sync::CancellationToken;

const URL: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";

async fn cleanup(queues: &[&str], exchange: &str) {
    let connection = Connection::connect(URL, ConnectionProperties::default())
        .await
        .unwrap();
    for queue in queues {
        let channel = connection.create_channel().await.unwrap();
        let _ = channel
            .queue_delete((*queue).into(), QueueDeleteOptions::default())
            .await;
    }
    let channel = connection.create_channel().await.unwrap();
    let _ = channel
        .exchange_delete(exchange.into(), ExchangeDeleteOptions::default())
        .await;
    let _ = connection.close(200, "OK".into()).await;
}

#[cfg_attr(
    not(feature = "system-tests"),
    ignore = "needs RabbitMQ at 127.0.0.1:5672: run with --features system-tests (scripts/test.sh does)"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frames_from_rabbitmq_become_rows_and_poison_is_dead_lettered() {
    let dir = tempfile::tempdir().unwrap();
    let queue = unique("proc-amqp");
    let exchange = format!("{queue}.x");
    let dead = format!("{queue}.dead");
    let mut broker = BrokerConfig::parse(URL).unwrap();
    broker.stream = queue.clone();
    broker.exchange = exchange.clone();
    broker.routing_key = "packets".into();
    broker.dead_letter = dead.clone();
    broker.block = Duration::from_millis(300);
    // Declares the queue and its binding before anything is published.
    let declare = Consumer::connect(&broker).await.unwrap();
    declare.close().await;
    let publisher = Publisher::connect(&broker).await.unwrap();
    let all = frames("amqp-agent", 50, 2_000);
    for (i, chunk) in all.chunks(100).enumerate() {
        publisher.publish(encode_frames(chunk)).await.unwrap();
        if i == 7 {
            publisher.publish(b"garbage".to_vec()).await.unwrap();
        }
    }
    // A redelivery of the first batch, as after a crash between commit and ack.
    publisher.publish(encode_frames(&all[..100])).await.unwrap();
    let mut config = Config::new(URL, dir.path());
    config.stream = queue.clone();
    config.exchange = exchange.clone();
    config.routing_key = "packets".into();
    config.dead_letter = dead.clone();
    config.save_after_num = 300;
    config.stop_after_num = 2_100;
    let summary = tokio::time::timeout(
        Duration::from_secs(120),
        processor::run(config, CancellationToken::new()),
    )
    .await
    .expect("finishes")
    .unwrap();
    assert_eq!(summary.dead_letters, 1);
    assert_eq!(summary.duplicates, 100);
    assert_eq!(summary.rows_written, vec![("netpipe".to_string(), 2_000)]);
    let (_, rows) = read_csv(&csv_files(dir.path(), "netdata")[0]);
    assert_eq!(rows, expected_rows("netpipe", &all));

    // The poison message waits in the dead-letter queue, with its reason.
    let connection = Connection::connect(URL, ConnectionProperties::default())
        .await
        .unwrap();
    let channel = connection.create_channel().await.unwrap();
    let dead_letter = channel
        .basic_get(dead.as_str().into(), BasicGetOptions { no_ack: true })
        .await
        .unwrap()
        .expect("one dead letter");
    assert_eq!(dead_letter.delivery.data, b"garbage");
    let headers = dead_letter.delivery.properties.headers().clone().unwrap();
    let reason = match headers.inner().get("x-netpipe-reason") {
        Some(lapin::types::AMQPValue::LongString(s)) => s.as_bytes().to_vec(),
        other => panic!("reason header: {other:?}"),
    };
    assert_eq!(reason, b"not_json");
    let _ = connection.close(200, "OK".into()).await;
    cleanup(&[&queue, &dead], &exchange).await;
}

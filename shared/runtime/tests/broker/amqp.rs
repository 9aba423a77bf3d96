//! RabbitMQ backend against the real server on 127.0.0.1:5672 (guest/guest).

use std::collections::HashSet;
use std::time::Duration;

use lapin::options::{
    BasicGetOptions, ExchangeDeclareOptions, ExchangeDeleteOptions, QueueDeleteOptions,
};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{Connection, ConnectionProperties, ExchangeKind};
use netpipe_runtime::broker::{AckToken, BrokerConfig, BrokerError, Consumer, Message, Publisher};

const URL: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";

async fn raw() -> Connection {
    Connection::connect(URL, ConnectionProperties::default())
        .await
        .unwrap()
}

/// Names unique to this test and process; leftovers of an earlier run are deleted first.
async fn config(test: &str) -> BrokerConfig {
    let mut config = BrokerConfig::parse(URL).unwrap();
    let pid = std::process::id();
    config.stream = format!("netpipe-test-{test}-{pid}");
    config.exchange = format!("netpipe-test-{test}-{pid}.x");
    config.routing_key = "packets".into();
    config.dead_letter = format!("netpipe-test-{test}-{pid}.dead");
    config.consumer = "c1".into();
    config.block = Duration::from_millis(300);
    cleanup(&config).await;
    config
}

async fn cleanup(config: &BrokerConfig) {
    let connection = raw().await;
    for queue in [&config.stream, &config.dead_letter] {
        let channel = connection.create_channel().await.unwrap();
        let _ = channel
            .queue_delete(queue.as_str().into(), QueueDeleteOptions::default())
            .await;
    }
    let channel = connection.create_channel().await.unwrap();
    let _ = channel
        .exchange_delete(
            config.exchange.as_str().into(),
            ExchangeDeleteOptions::default(),
        )
        .await;
    let _ = connection.close(200, "OK".into()).await;
}

fn bodies(messages: &[Message]) -> Vec<String> {
    messages
        .iter()
        .map(|m| String::from_utf8(m.body.clone()).unwrap())
        .collect()
}

fn tokens(messages: &[Message]) -> Vec<AckToken> {
    messages.iter().map(|m| m.token.clone()).collect()
}

async fn receive_all(consumer: &mut Consumer, want: usize) -> Vec<Message> {
    let mut got = Vec::new();
    let mut empty = 0;
    while got.len() < want && empty < 5 {
        let batch = consumer.receive(want - got.len()).await.unwrap();
        if batch.is_empty() {
            empty += 1;
        }
        got.extend(batch);
    }
    got
}

#[cfg_attr(
    not(feature = "system-tests"),
    ignore = "needs RabbitMQ at 127.0.0.1:5672: run with --features system-tests (scripts/test.sh does)"
)]
#[tokio::test]
async fn batches_are_confirmed_delivered_and_acked_once() {
    let config = config("exactly-once").await;
    let publisher = Publisher::connect(&config).await.unwrap();
    let sent: Vec<String> = (0..20).map(|i| format!("batch-{i}")).collect();
    for body in &sent {
        publisher.publish(body.clone().into_bytes()).await.unwrap();
    }
    assert_eq!(publisher.stats().published, 20);
    let mut consumer = Consumer::connect(&config).await.unwrap();
    let got = receive_all(&mut consumer, 20).await;
    assert_eq!(bodies(&got), sent);
    assert!(got.iter().all(|m| !m.redelivered));
    consumer.ack(&tokens(&got)).await.unwrap();
    consumer.close().await;

    let mut again = Consumer::connect(&config).await.unwrap();
    assert!(again.receive(10).await.unwrap().is_empty(), "all acked");
    again.close().await;
    cleanup(&config).await;
}

#[cfg_attr(
    not(feature = "system-tests"),
    ignore = "needs RabbitMQ at 127.0.0.1:5672: run with --features system-tests (scripts/test.sh does)"
)]
#[tokio::test]
async fn concurrent_publishes_are_all_confirmed() {
    let mut config = config("concurrent").await;
    config.prefetch = 100; // receive all 80 before acking
    let publisher = Publisher::connect(&config).await.unwrap();
    let tasks: Vec<_> = (0..8)
        .map(|t| {
            let publisher = publisher.clone();
            tokio::spawn(async move {
                for i in 0..10 {
                    publisher
                        .publish(format!("{t}-{i}").into_bytes())
                        .await
                        .unwrap();
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    assert_eq!(publisher.stats().published, 80);
    let mut consumer = Consumer::connect(&config).await.unwrap();
    let got = receive_all(&mut consumer, 80).await;
    let unique: HashSet<_> = bodies(&got).into_iter().collect();
    assert_eq!(unique.len(), 80);
    consumer.ack(&tokens(&got)).await.unwrap();
    consumer.close().await;
    cleanup(&config).await;
}

#[cfg_attr(
    not(feature = "system-tests"),
    ignore = "needs RabbitMQ at 127.0.0.1:5672: run with --features system-tests (scripts/test.sh does)"
)]
#[tokio::test]
async fn unacked_messages_are_redelivered_after_the_channel_closes() {
    let config = config("redeliver").await;
    let publisher = Publisher::connect(&config).await.unwrap();
    for i in 0..3 {
        publisher
            .publish(format!("m{i}").into_bytes())
            .await
            .unwrap();
    }
    let mut first = Consumer::connect(&config).await.unwrap();
    let held = receive_all(&mut first, 3).await;
    assert_eq!(bodies(&held), vec!["m0", "m1", "m2"]);
    first.close().await;

    let mut config2 = config.clone();
    config2.consumer = "c2".into();
    let mut second = Consumer::connect(&config2).await.unwrap();
    let got = receive_all(&mut second, 3).await;
    assert_eq!(bodies(&got), vec!["m0", "m1", "m2"]);
    assert!(got.iter().all(|m| m.redelivered));
    second.ack(&tokens(&got)).await.unwrap();
    assert_eq!(second.stats().redelivered, 3);
    second.close().await;
    cleanup(&config).await;
}

#[cfg_attr(
    not(feature = "system-tests"),
    ignore = "needs RabbitMQ at 127.0.0.1:5672: run with --features system-tests (scripts/test.sh does)"
)]
#[tokio::test]
async fn two_consumers_share_the_queue_without_duplicates() {
    let mut config = config("split").await;
    config.prefetch = 2;
    let publisher = Publisher::connect(&config).await.unwrap();
    for i in 0..30 {
        publisher
            .publish(format!("s{i}").into_bytes())
            .await
            .unwrap();
    }
    let mut a = Consumer::connect(&config).await.unwrap();
    let mut b_config = config.clone();
    b_config.consumer = "c2".into();
    let mut b = Consumer::connect(&b_config).await.unwrap();
    let (mut seen_a, mut seen_b) = (Vec::new(), Vec::new());
    for _ in 0..30 {
        let got = a.receive(2).await.unwrap();
        a.ack(&tokens(&got)).await.unwrap();
        seen_a.extend(bodies(&got));
        let got = b.receive(2).await.unwrap();
        b.ack(&tokens(&got)).await.unwrap();
        seen_b.extend(bodies(&got));
        if seen_a.len() + seen_b.len() >= 30 {
            break;
        }
    }
    assert!(!seen_a.is_empty() && !seen_b.is_empty());
    let all: HashSet<_> = seen_a.iter().chain(&seen_b).collect();
    assert_eq!(seen_a.len() + seen_b.len(), 30, "no duplicates");
    assert_eq!(all.len(), 30);
    a.close().await;
    b.close().await;
    cleanup(&config).await;
}

#[cfg_attr(
    not(feature = "system-tests"),
    ignore = "needs RabbitMQ at 127.0.0.1:5672: run with --features system-tests (scripts/test.sh does)"
)]
#[tokio::test]
async fn dead_letters_carry_their_reason_in_a_header() {
    let config = config("dead-letter").await;
    let publisher = Publisher::connect(&config).await.unwrap();
    publisher.publish(b"not frames".to_vec()).await.unwrap();
    let mut consumer = Consumer::connect(&config).await.unwrap();
    let got = receive_all(&mut consumer, 1).await;
    assert_eq!(got.len(), 1);
    consumer
        .dead_letter(&got[0], "expected a JSON array of frames")
        .await
        .unwrap();
    assert_eq!(consumer.stats().dead_lettered, 1);
    consumer.close().await;

    let connection = raw().await;
    let channel = connection.create_channel().await.unwrap();
    let dead = channel
        .basic_get(
            config.dead_letter.as_str().into(),
            BasicGetOptions { no_ack: true },
        )
        .await
        .unwrap()
        .expect("one dead letter");
    assert_eq!(dead.delivery.data, b"not frames");
    let headers = dead.delivery.properties.headers().clone().unwrap();
    let header = |name: &str| match headers.inner().get(name) {
        Some(AMQPValue::LongString(s)) => String::from_utf8(s.as_bytes().to_vec()).unwrap(),
        other => panic!("header {name}: {other:?}"),
    };
    assert_eq!(
        header("x-netpipe-reason"),
        "expected a JSON array of frames"
    );
    assert_eq!(header("x-netpipe-queue"), config.stream);
    assert_eq!(dead.delivery.properties.delivery_mode(), &Some(2));

    let mut again = Consumer::connect(&config).await.unwrap();
    assert!(
        again.receive(5).await.unwrap().is_empty(),
        "acked on the queue"
    );
    again.close().await;
    cleanup(&config).await;
}

#[cfg_attr(
    not(feature = "system-tests"),
    ignore = "needs RabbitMQ at 127.0.0.1:5672: run with --features system-tests (scripts/test.sh does)"
)]
#[tokio::test]
async fn an_existing_topic_exchange_is_reused() {
    let config = config("topic").await;
    let connection = raw().await;
    let channel = connection.create_channel().await.unwrap();
    channel
        .exchange_declare(
            config.exchange.as_str().into(),
            ExchangeKind::Topic,
            ExchangeDeclareOptions {
                durable: true,
                ..ExchangeDeclareOptions::default()
            },
            FieldTable::default(),
        )
        .await
        .unwrap();
    let publisher = Publisher::connect(&config).await.unwrap();
    publisher.publish(b"via topic".to_vec()).await.unwrap();
    let mut consumer = Consumer::connect(&config).await.unwrap();
    let got = receive_all(&mut consumer, 1).await;
    assert_eq!(bodies(&got), vec!["via topic"]);
    consumer.ack(&tokens(&got)).await.unwrap();
    consumer.close().await;
    cleanup(&config).await;
}

#[cfg_attr(
    not(feature = "system-tests"),
    ignore = "needs RabbitMQ at 127.0.0.1:5672: run with --features system-tests (scripts/test.sh does)"
)]
#[tokio::test]
async fn an_unroutable_message_is_rejected_not_lost() {
    let config = config("unroutable").await;
    let publisher = Publisher::connect(&config).await.unwrap();
    let connection = raw().await;
    let channel = connection.create_channel().await.unwrap();
    channel
        .queue_unbind(
            config.stream.as_str().into(),
            config.exchange.as_str().into(),
            config.routing_key.as_str().into(),
            FieldTable::default(),
        )
        .await
        .unwrap();
    let err = publisher.publish(b"nowhere".to_vec()).await.unwrap_err();
    assert!(matches!(err, BrokerError::Rejected { .. }), "{err}");
    assert_eq!(publisher.stats().published, 0);
    cleanup(&config).await;
}

#[tokio::test]
async fn an_unreachable_broker_is_a_retryable_error() {
    let config = BrokerConfig::parse("amqp://guest:guest@127.0.0.1:1/%2f").unwrap();
    let result = tokio::time::timeout(Duration::from_secs(15), Publisher::connect(&config))
        .await
        .expect("connect is bounded");
    let err = result.unwrap_err();
    assert!(matches!(err, BrokerError::Unreachable { .. }), "{err}");
    assert!(err.is_retryable());
    assert!(!err.to_string().contains("guest:guest"), "{err}");
    let result = tokio::time::timeout(Duration::from_secs(15), Consumer::connect(&config))
        .await
        .expect("connect is bounded");
    assert!(matches!(result, Err(BrokerError::Unreachable { .. })));
}

#[tokio::test]
async fn bad_urls_are_one_line_errors_without_passwords() {
    // Parsed once, before any connection.
    let err = BrokerConfig::parse("amqp://guest:secret@localhost:notaport/%2f").unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, BrokerError::BadUrl { .. }), "{text}");
    assert!(!text.contains("secret"), "{text}");
    assert!(!text.contains('\n'), "{text}");
}

#[cfg_attr(
    not(feature = "system-tests"),
    ignore = "needs RabbitMQ at 127.0.0.1:5672: run with --features system-tests (scripts/test.sh does)"
)]
#[tokio::test]
async fn lag_counts_ready_messages_of_the_queue() {
    let mut config = config("lag").await;
    config.prefetch = 2;
    let publisher = Publisher::connect(&config).await.unwrap();
    for i in 0..6 {
        publisher
            .publish(format!("m{i}").into_bytes())
            .await
            .unwrap();
    }
    let mut consumer = Consumer::connect(&config).await.unwrap();
    let got = receive_all(&mut consumer, 2).await;
    assert_eq!(got.len(), 2);
    // Prefetch 2: two are out with this consumer, the other four wait in the queue.
    let mut lag = consumer.lag().await.unwrap();
    for _ in 0..20 {
        if lag == Some(4) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        lag = consumer.lag().await.unwrap();
    }
    assert_eq!(lag, Some(4));
    consumer.ack(&tokens(&got)).await.unwrap();
    consumer.close().await;
    cleanup(&config).await;
}

//! kombu-compatible Redis list backend against the real server on 127.0.0.1:6379 (db 15).

use std::collections::HashSet;
use std::time::Duration;

use base64::Engine;
use deadpool_redis::redis::{self, AsyncCommands};
use netpipe_runtime::broker::codec::decode_kombu_envelope;
use netpipe_runtime::broker::{AckToken, BrokerConfig, Consumer, Message, Publisher};

const URL: &str = "kombu+redis://127.0.0.1:6379";
const RAW_URL: &str = "redis://127.0.0.1:6379/15";

async fn raw() -> redis::aio::MultiplexedConnection {
    redis::Client::open(RAW_URL)
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap()
}

/// Names unique to this test and process; every key under them is deleted first.
async fn config(test: &str) -> BrokerConfig {
    let mut config = BrokerConfig::parse(URL).unwrap();
    let pid = std::process::id();
    config.stream = format!("netpipe-test-kombu-{test}-{pid}");
    config.exchange = config.stream.clone();
    config.routing_key = config.stream.clone();
    config.dead_letter = format!("{}.dead", config.stream);
    config.consumer = "c1".into();
    config.block = Duration::from_millis(200);
    let mut conn = raw().await;
    let mut keys: Vec<String> = conn.keys(format!("{}*", config.stream)).await.unwrap();
    keys.push(format!("_kombu.binding.{}", config.exchange));
    let _: () = conn.del(keys).await.unwrap();
    config
}

fn processing(config: &BrokerConfig, consumer: &str) -> String {
    format!("{}.netpipe.processing.{consumer}", config.stream)
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

async fn list(key: &str) -> Vec<Vec<u8>> {
    raw().await.lrange(key, 0, -1).await.unwrap()
}

/// Deletes what a test created (a failed test leaves its keys for inspection).
async fn cleanup(config: &BrokerConfig) {
    let mut conn = raw().await;
    let mut keys: Vec<String> = conn.keys(format!("{}*", config.stream)).await.unwrap();
    keys.push(format!("_kombu.binding.{}", config.exchange));
    let _: () = conn.del(keys).await.unwrap();
}

#[cfg_attr(
    not(feature = "system-tests"),
    ignore = "needs Redis at 127.0.0.1:6379: run with --features system-tests (scripts/test.sh does)"
)]
#[tokio::test]
async fn the_list_holds_the_originals_envelope_in_db_15() {
    let config = config("envelope").await;
    let publisher = Publisher::connect(&config).await.unwrap();
    let body = br#"{"data": {"ether": {"type": 2048}}, "created": "2018-01-28 22:58:16", "source": "localdev"}"#;
    publisher.publish(body.to_vec()).await.unwrap();

    let elements = list(&config.stream).await;
    assert_eq!(elements.len(), 1);
    let envelope: serde_json::Value = serde_json::from_slice(&elements[0]).unwrap();
    assert_eq!(envelope["content-type"], "application/json");
    assert_eq!(envelope["content-encoding"], "utf-8");
    assert_eq!(envelope["headers"], serde_json::json!({}));
    let properties = &envelope["properties"];
    assert_eq!(properties["delivery_mode"], 2);
    assert_eq!(properties["priority"], 0);
    assert_eq!(properties["body_encoding"], "base64");
    assert_eq!(
        properties["delivery_info"]["exchange"],
        config.exchange.as_str()
    );
    assert_eq!(
        properties["delivery_info"]["routing_key"],
        config.routing_key.as_str()
    );
    assert_eq!(properties["delivery_tag"].as_str().unwrap().len(), 36);
    let inner = base64::engine::general_purpose::STANDARD
        .decode(envelope["body"].as_str().unwrap())
        .unwrap();
    assert_eq!(inner, body);

    let members: Vec<String> = raw()
        .await
        .smembers(format!("_kombu.binding.{}", config.exchange))
        .await
        .unwrap();
    let s = &config.stream;
    assert_eq!(
        members,
        vec![format!("{s}\x06\x16^{}$\x06\x16{s}", s.replace('-', "\\-"))]
    );
    cleanup(&config).await;
}

#[cfg_attr(
    not(feature = "system-tests"),
    ignore = "needs Redis at 127.0.0.1:6379: run with --features system-tests (scripts/test.sh does)"
)]
#[tokio::test]
async fn messages_are_consumed_in_order_and_acked_once() {
    let config = config("exactly-once").await;
    let publisher = Publisher::connect(&config).await.unwrap();
    let sent: Vec<String> = (0..20).map(|i| format!("{{\"n\": {i}}}")).collect();
    for body in &sent {
        publisher.publish(body.clone().into_bytes()).await.unwrap();
    }
    let mut consumer = Consumer::connect(&config).await.unwrap();
    let got = receive_all(&mut consumer, 20).await;
    assert_eq!(bodies(&got), sent);
    assert!(got.iter().all(|m| !m.redelivered));
    assert!(list(&config.stream).await.is_empty());
    assert_eq!(
        list(&processing(&config, "c1")).await.len(),
        20,
        "held until acked"
    );
    consumer.ack(&tokens(&got)).await.unwrap();
    assert!(list(&processing(&config, "c1")).await.is_empty());
    assert!(consumer.receive(5).await.unwrap().is_empty());
    assert!(
        consumer.ack(&tokens(&got[..1])).await.is_err(),
        "twice is a bug"
    );
    cleanup(&config).await;
}

#[cfg_attr(
    not(feature = "system-tests"),
    ignore = "needs Redis at 127.0.0.1:6379: run with --features system-tests (scripts/test.sh does)"
)]
#[tokio::test]
async fn a_python_kombu_element_is_consumed() {
    let config = config("python").await;
    let element = r#"{"body": "eyJkYXRhIjoge30sICJjcmVhdGVkIjogIjIwMTgtMDEtMjggMjI6NTg6MTYiLCAic291cmNlIjogImxvY2FsZGV2In0=", "content-encoding": "utf-8", "content-type": "application/json", "headers": {}, "properties": {"delivery_mode": 2, "priority": 0, "delivery_info": {"exchange": "NEW_PACKETS", "routing_key": "NEW_PACKETS"}, "body_encoding": "base64", "delivery_tag": "5b2e5e4c-7f0e-4b0b-9a51-3a3c1c7e9f10"}}"#;
    let _: () = raw().await.lpush(&config.stream, element).await.unwrap();
    let mut consumer = Consumer::connect(&config).await.unwrap();
    let got = receive_all(&mut consumer, 1).await;
    assert_eq!(
        bodies(&got),
        vec![r#"{"data": {}, "created": "2018-01-28 22:58:16", "source": "localdev"}"#]
    );
    assert_eq!(
        got[0].token,
        AckToken::Kombu("5b2e5e4c-7f0e-4b0b-9a51-3a3c1c7e9f10".into())
    );
    consumer.ack(&tokens(&got)).await.unwrap();
    assert!(list(&processing(&config, "c1")).await.is_empty());
    cleanup(&config).await;
}

#[cfg_attr(
    not(feature = "system-tests"),
    ignore = "needs Redis at 127.0.0.1:6379: run with --features system-tests (scripts/test.sh does)"
)]
#[tokio::test]
async fn unacked_messages_come_back_after_a_restart() {
    let config = config("restart").await;
    let publisher = Publisher::connect(&config).await.unwrap();
    for i in 0..4 {
        publisher
            .publish(format!("r{i}").into_bytes())
            .await
            .unwrap();
    }
    let mut first = Consumer::connect(&config).await.unwrap();
    let held = receive_all(&mut first, 3).await;
    assert_eq!(bodies(&held), vec!["r0", "r1", "r2"]);
    drop(first); // crashed: nothing acked

    let mut restarted = Consumer::connect(&config).await.unwrap();
    let got = receive_all(&mut restarted, 4).await;
    assert_eq!(bodies(&got), vec!["r0", "r1", "r2", "r3"]);
    assert_eq!(
        got.iter().map(|m| m.redelivered).collect::<Vec<_>>(),
        vec![true, true, true, false]
    );
    restarted.ack(&tokens(&got)).await.unwrap();
    assert!(list(&processing(&config, "c1")).await.is_empty());
    cleanup(&config).await;
}

#[cfg_attr(
    not(feature = "system-tests"),
    ignore = "needs Redis at 127.0.0.1:6379: run with --features system-tests (scripts/test.sh does)"
)]
#[tokio::test]
async fn a_dead_consumers_messages_are_taken_over() {
    let mut config = config("takeover").await;
    config.claim_idle = Duration::from_millis(300);
    let publisher = Publisher::connect(&config).await.unwrap();
    for i in 0..3 {
        publisher
            .publish(format!("t{i}").into_bytes())
            .await
            .unwrap();
    }
    let mut dying = Consumer::connect(&config).await.unwrap();
    let held = receive_all(&mut dying, 3).await;
    assert_eq!(held.len(), 3);
    drop(dying);

    let mut other = config.clone();
    other.consumer = "c2".into();
    let mut survivor = Consumer::connect(&other).await.unwrap();
    assert!(
        survivor.receive(10).await.unwrap().is_empty(),
        "c1 still looks alive"
    );
    tokio::time::sleep(Duration::from_millis(400)).await;
    let got = receive_all(&mut survivor, 3).await;
    assert_eq!(bodies(&got), vec!["t0", "t1", "t2"]);
    assert!(got.iter().all(|m| m.redelivered));
    survivor.ack(&tokens(&got)).await.unwrap();
    assert!(list(&processing(&config, "c1")).await.is_empty());
    assert!(list(&processing(&config, "c2")).await.is_empty());
    cleanup(&config).await;
}

#[cfg_attr(
    not(feature = "system-tests"),
    ignore = "needs Redis at 127.0.0.1:6379: run with --features system-tests (scripts/test.sh does)"
)]
#[tokio::test]
async fn two_consumers_split_the_list() {
    let config = config("split").await;
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
    for _ in 0..15 {
        let got = a.receive(2).await.unwrap();
        a.ack(&tokens(&got)).await.unwrap();
        seen_a.extend(bodies(&got));
        let got = b.receive(2).await.unwrap();
        b.ack(&tokens(&got)).await.unwrap();
        seen_b.extend(bodies(&got));
    }
    assert!(!seen_a.is_empty() && !seen_b.is_empty());
    let all: HashSet<_> = seen_a.iter().chain(&seen_b).collect();
    assert_eq!(seen_a.len() + seen_b.len(), 30);
    assert_eq!(all.len(), 30);
    cleanup(&config).await;
}

#[cfg_attr(
    not(feature = "system-tests"),
    ignore = "needs Redis at 127.0.0.1:6379: run with --features system-tests (scripts/test.sh does)"
)]
#[tokio::test]
async fn garbage_elements_are_dead_lettered_and_counted() {
    let config = config("garbage").await;
    let publisher = Publisher::connect(&config).await.unwrap();
    let mut conn = raw().await;
    let _: () = conn.lpush(&config.stream, "not json at all").await.unwrap();
    publisher.publish(b"{\"ok\": 1}".to_vec()).await.unwrap();
    let bad_base64 = r#"{"body": "!!!", "properties": {"body_encoding": "base64"}}"#;
    let _: () = conn.lpush(&config.stream, bad_base64).await.unwrap();

    let mut consumer = Consumer::connect(&config).await.unwrap();
    let got = receive_all(&mut consumer, 3).await;
    assert_eq!(bodies(&got), vec!["{\"ok\": 1}"]);
    let stats = consumer.stats();
    assert_eq!(
        (stats.malformed, stats.dead_lettered, stats.received),
        (2, 2, 1)
    );
    assert_eq!(
        list(&processing(&config, "c1")).await.len(),
        1,
        "only the good one is held"
    );

    let dead = list(&config.dead_letter).await;
    assert_eq!(dead.len(), 2);
    let mut reasons = Vec::new();
    let mut kept = Vec::new();
    for element in &dead {
        let decoded = decode_kombu_envelope(element).unwrap();
        reasons.push(
            decoded.headers["x-netpipe-reason"]
                .as_str()
                .unwrap()
                .to_string(),
        );
        kept.push(String::from_utf8(decoded.body).unwrap());
    }
    assert!(
        reasons.iter().any(|r| r.contains("not JSON")),
        "{reasons:?}"
    );
    assert!(reasons.iter().any(|r| r.contains("base64")), "{reasons:?}");
    assert!(
        kept.contains(&"not json at all".to_string()),
        "raw element kept"
    );
    cleanup(&config).await;
}

#[cfg_attr(
    not(feature = "system-tests"),
    ignore = "needs Redis at 127.0.0.1:6379: run with --features system-tests (scripts/test.sh does)"
)]
#[tokio::test]
async fn dead_letter_keeps_body_and_reason() {
    let config = config("dead-letter").await;
    let publisher = Publisher::connect(&config).await.unwrap();
    publisher
        .publish(b"{\"bad\": true}".to_vec())
        .await
        .unwrap();
    let mut consumer = Consumer::connect(&config).await.unwrap();
    let got = receive_all(&mut consumer, 1).await;
    consumer.dead_letter(&got[0], "no data key").await.unwrap();
    assert!(list(&processing(&config, "c1")).await.is_empty());
    let dead = list(&config.dead_letter).await;
    assert_eq!(dead.len(), 1);
    let decoded = decode_kombu_envelope(&dead[0]).unwrap();
    assert_eq!(decoded.body, b"{\"bad\": true}");
    assert_eq!(decoded.headers["x-netpipe-reason"], "no data key");
    assert_eq!(decoded.headers["x-netpipe-queue"], config.stream.as_str());
    cleanup(&config).await;
}

#[cfg_attr(
    not(feature = "system-tests"),
    ignore = "needs Redis at 127.0.0.1:6379: run with --features system-tests (scripts/test.sh does)"
)]
#[tokio::test]
async fn a_long_block_does_not_hit_the_response_timeout() {
    let mut config = config("long-block").await;
    config.block = Duration::from_secs(2);
    let mut consumer = Consumer::connect(&config).await.unwrap();
    let started = std::time::Instant::now();
    assert!(consumer.receive(10).await.unwrap().is_empty());
    assert!(started.elapsed() >= Duration::from_millis(1900));
    cleanup(&config).await;
}

#[tokio::test]
async fn unreachable_and_bad_urls() {
    let config = BrokerConfig::parse("kombu+redis://127.0.0.1:1/15").unwrap();
    let result = tokio::time::timeout(Duration::from_secs(15), Consumer::connect(&config))
        .await
        .expect("bounded");
    assert!(matches!(
        result,
        Err(netpipe_runtime::broker::BrokerError::Unreachable { .. })
    ));
    let err = BrokerConfig::parse("kombu+redis://:pw@h:x/1").unwrap_err();
    assert!(
        matches!(err, netpipe_runtime::broker::BrokerError::BadUrl { .. }),
        "{err}"
    );
    assert!(!err.to_string().contains("pw@"), "{err}");
    assert!(err.to_string().contains("kombu+redis://"), "{err}");
}

#[cfg_attr(
    not(feature = "system-tests"),
    ignore = "needs Redis at 127.0.0.1:6379: run with --features system-tests (scripts/test.sh does)"
)]
#[tokio::test]
async fn lag_is_the_length_of_the_queue_list() {
    let config = config("lag").await;
    let publisher = Publisher::connect(&config).await.unwrap();
    for i in 0..5 {
        publisher
            .publish(format!("{{\"n\": {i}}}").into_bytes())
            .await
            .unwrap();
    }
    let mut consumer = Consumer::connect(&config).await.unwrap();
    assert_eq!(consumer.lag().await.unwrap(), Some(5));
    let got = consumer.receive(2).await.unwrap();
    assert_eq!(consumer.lag().await.unwrap(), Some(5 - got.len() as u64));
    consumer.ack(&tokens(&got)).await.unwrap();
    cleanup(&config).await;
}

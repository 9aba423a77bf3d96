//! Redis Streams backend against the real server on 127.0.0.1:6379.

use std::collections::HashSet;
use std::time::Duration;

use deadpool_redis::redis::{self, AsyncCommands};
use netpipe_runtime::broker::{AckToken, BrokerConfig, BrokerError, Consumer, Message, Publisher};

const URL: &str = "redis://127.0.0.1:6379/0";

/// A config with names unique to this test and process; the keys are deleted first.
async fn config(test: &str) -> BrokerConfig {
    let mut config = BrokerConfig::parse(URL).unwrap();
    let pid = std::process::id();
    config.stream = format!("netpipe-test-{test}-{pid}");
    config.dead_letter = format!("netpipe-test-{test}-{pid}.dead");
    config.group = "processors".into();
    config.consumer = "c1".into();
    config.block = Duration::from_millis(200);
    let mut conn = raw().await;
    let _: () = conn
        .del(&[&config.stream, &config.dead_letter])
        .await
        .unwrap();
    config
}

async fn raw() -> redis::aio::MultiplexedConnection {
    redis::Client::open(URL)
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap()
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

async fn pending_count(config: &BrokerConfig) -> i64 {
    let reply: redis::Value = redis::cmd("XPENDING")
        .arg(&config.stream)
        .arg(&config.group)
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

/// Receives until `want` messages arrived or a few empty polls in a row.
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

/// Deletes what a test created (a failed test leaves its keys for inspection).
async fn cleanup(config: &BrokerConfig) {
    let _: () = raw()
        .await
        .del(&[&config.stream, &config.dead_letter])
        .await
        .unwrap();
}

#[cfg_attr(
    not(feature = "system-tests"),
    ignore = "needs Redis at 127.0.0.1:6379: run with --features system-tests (scripts/test.sh does)"
)]
#[tokio::test]
async fn batches_are_delivered_and_acked_exactly_once() {
    let config = config("exactly-once").await;
    let publisher = Publisher::connect(&config).await.unwrap();
    let sent: Vec<String> = (0..25).map(|i| format!("batch-{i}")).collect();
    for body in &sent {
        publisher.publish(body.clone().into_bytes()).await.unwrap();
    }
    assert_eq!(publisher.stats().published, 25);

    let mut consumer = Consumer::connect(&config).await.unwrap();
    let got = receive_all(&mut consumer, 25).await;
    assert_eq!(bodies(&got), sent, "in order, each once");
    assert!(got.iter().all(|m| !m.redelivered));
    assert_eq!(pending_count(&config).await, 25);
    consumer.ack(&tokens(&got)).await.unwrap();
    assert_eq!(pending_count(&config).await, 0);
    assert!(consumer.receive(10).await.unwrap().is_empty());

    // A restart with the same name finds nothing left to redo.
    drop(consumer);
    let mut again = Consumer::connect(&config).await.unwrap();
    assert!(again.receive(10).await.unwrap().is_empty());
    assert_eq!(again.stats().received, 0);
    cleanup(&config).await;
}

#[cfg_attr(
    not(feature = "system-tests"),
    ignore = "needs Redis at 127.0.0.1:6379: run with --features system-tests (scripts/test.sh does)"
)]
#[tokio::test]
async fn concurrent_publishes_all_arrive() {
    let config = config("concurrent").await;
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
    let got: HashSet<String> = bodies(&receive_all(&mut consumer, 80).await)
        .into_iter()
        .collect();
    assert_eq!(got.len(), 80);
    cleanup(&config).await;
}

#[cfg_attr(
    not(feature = "system-tests"),
    ignore = "needs Redis at 127.0.0.1:6379: run with --features system-tests (scripts/test.sh does)"
)]
#[tokio::test]
async fn unacked_entries_are_reclaimed_after_claim_idle() {
    let mut config = config("reclaim").await;
    config.claim_idle = Duration::from_millis(300);
    let publisher = Publisher::connect(&config).await.unwrap();
    for i in 0..5 {
        publisher
            .publish(format!("m{i}").into_bytes())
            .await
            .unwrap();
    }
    let mut dying = Consumer::connect(&config).await.unwrap();
    let held = receive_all(&mut dying, 5).await;
    assert_eq!(held.len(), 5);
    drop(dying); // never acks

    let mut other_config = config.clone();
    other_config.consumer = "c2".into();
    let mut survivor = Consumer::connect(&other_config).await.unwrap();
    assert!(
        survivor.receive(10).await.unwrap().is_empty(),
        "not idle long enough yet"
    );
    tokio::time::sleep(Duration::from_millis(400)).await;
    let reclaimed = receive_all(&mut survivor, 5).await;
    assert_eq!(bodies(&reclaimed), bodies(&held));
    assert!(reclaimed.iter().all(|m| m.redelivered));
    survivor.ack(&tokens(&reclaimed)).await.unwrap();
    assert_eq!(pending_count(&config).await, 0);
    assert_eq!(survivor.stats().redelivered, 5);
    cleanup(&config).await;
}

#[cfg_attr(
    not(feature = "system-tests"),
    ignore = "needs Redis at 127.0.0.1:6379: run with --features system-tests (scripts/test.sh does)"
)]
#[tokio::test]
async fn restarted_consumer_gets_its_unacked_entries_back() {
    let config = config("restart").await;
    let publisher = Publisher::connect(&config).await.unwrap();
    for i in 0..3 {
        publisher
            .publish(format!("r{i}").into_bytes())
            .await
            .unwrap();
    }
    let mut first = Consumer::connect(&config).await.unwrap();
    let held = receive_all(&mut first, 3).await;
    assert_eq!(held.len(), 3);
    drop(first);
    publisher.publish(b"r3".to_vec()).await.unwrap();

    let mut restarted = Consumer::connect(&config).await.unwrap();
    let got = receive_all(&mut restarted, 4).await;
    assert_eq!(bodies(&got), vec!["r0", "r1", "r2", "r3"]);
    assert_eq!(
        got.iter().map(|m| m.redelivered).collect::<Vec<_>>(),
        vec![true, true, true, false]
    );
    cleanup(&config).await;
}

#[cfg_attr(
    not(feature = "system-tests"),
    ignore = "needs Redis at 127.0.0.1:6379: run with --features system-tests (scripts/test.sh does)"
)]
#[tokio::test]
async fn two_consumers_in_one_group_split_the_stream() {
    let config = config("split").await;
    let publisher = Publisher::connect(&config).await.unwrap();
    for i in 0..40 {
        publisher
            .publish(format!("s{i}").into_bytes())
            .await
            .unwrap();
    }
    let mut a = Consumer::connect(&config).await.unwrap();
    let mut b_config = config.clone();
    b_config.consumer = "c2".into();
    let mut b = Consumer::connect(&b_config).await.unwrap();
    let mut seen_a = Vec::new();
    let mut seen_b = Vec::new();
    for _ in 0..20 {
        let got_a = a.receive(3).await.unwrap();
        a.ack(&tokens(&got_a)).await.unwrap();
        seen_a.extend(bodies(&got_a));
        let got_b = b.receive(3).await.unwrap();
        b.ack(&tokens(&got_b)).await.unwrap();
        seen_b.extend(bodies(&got_b));
    }
    assert!(!seen_a.is_empty() && !seen_b.is_empty());
    let all: HashSet<String> = seen_a.iter().chain(&seen_b).cloned().collect();
    assert_eq!(seen_a.len() + seen_b.len(), 40, "no duplicates");
    assert_eq!(all.len(), 40);
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
    publisher.publish(b"not frames".to_vec()).await.unwrap();
    let mut consumer = Consumer::connect(&config).await.unwrap();
    let got = receive_all(&mut consumer, 1).await;
    assert_eq!(got.len(), 1);
    consumer
        .dead_letter(&got[0], "expected a JSON array of frames")
        .await
        .unwrap();
    assert_eq!(pending_count(&config).await, 0);
    assert_eq!(consumer.stats().dead_lettered, 1);

    let entries: redis::streams::StreamRangeReply =
        raw().await.xrange_all(&config.dead_letter).await.unwrap();
    assert_eq!(entries.ids.len(), 1);
    let entry = &entries.ids[0];
    let text = |k: &str| -> String { entry.get(k).unwrap() };
    assert_eq!(text("body"), "not frames");
    assert_eq!(text("reason"), "expected a JSON array of frames");
    assert_eq!(text("stream"), config.stream);
    let AckToken::Redis(id) = &got[0].token else {
        panic!("redis token expected")
    };
    assert_eq!(&text("id"), id);
    cleanup(&config).await;
}

#[cfg_attr(
    not(feature = "system-tests"),
    ignore = "needs Redis at 127.0.0.1:6379: run with --features system-tests (scripts/test.sh does)"
)]
#[tokio::test]
async fn a_full_stream_counts_entries_trimmed_unread() {
    let mut config = config("full").await;
    config.max_len = Some(100);
    let publisher = Publisher::connect(&config).await.unwrap();
    for i in 0..350 {
        publisher
            .publish(format!("f{i}").into_bytes())
            .await
            .unwrap();
    }
    let len: u64 = raw().await.xlen(&config.stream).await.unwrap();
    assert!((100..350).contains(&len), "trimmed to about 100: {len}");
    let stats = publisher.stats();
    assert!(stats.stream_full > 0);
    assert_eq!(stats.trimmed_unread, 350 - len, "nobody read anything");

    // Once the group has read everything, trimming loses nothing more.
    let mut consumer = Consumer::connect(&config).await.unwrap();
    let got = receive_all(&mut consumer, 400).await;
    assert_eq!(got.len() as u64, len);
    consumer.ack(&tokens(&got)).await.unwrap();
    let before = publisher.stats().trimmed_unread;
    for i in 0..50 {
        publisher
            .publish(format!("g{i}").into_bytes())
            .await
            .unwrap();
    }
    assert_eq!(publisher.stats().trimmed_unread, before);
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
    let got = consumer.receive(10).await.unwrap();
    assert!(got.is_empty());
    assert!(
        started.elapsed() >= Duration::from_millis(1900),
        "really blocked"
    );
    cleanup(&config).await;
}

#[tokio::test]
async fn an_unreachable_server_is_a_retryable_error() {
    let config = BrokerConfig::parse("redis://127.0.0.1:1/0").unwrap();
    let result = tokio::time::timeout(Duration::from_secs(15), Publisher::connect(&config))
        .await
        .expect("connect is bounded");
    let err = result.unwrap_err();
    assert!(matches!(err, BrokerError::Unreachable { .. }), "{err}");
    assert!(err.is_retryable());
    let result = tokio::time::timeout(Duration::from_secs(15), Consumer::connect(&config))
        .await
        .expect("connect is bounded");
    assert!(matches!(result, Err(BrokerError::Unreachable { .. })));
}

#[tokio::test]
async fn bad_urls_are_one_line_errors_without_passwords() {
    for url in ["redis://:secret@localhost:notaport/0", "redis://:secret@/0"] {
        let err = BrokerConfig::parse(url).unwrap_err();
        let text = err.to_string();
        assert!(matches!(err, BrokerError::BadUrl { .. }), "{text}");
        assert!(!text.contains("secret"), "{text}");
        assert!(!text.contains('\n'), "{text}");
    }
}

#[cfg_attr(
    not(feature = "system-tests"),
    ignore = "needs Redis at 127.0.0.1:6379: run with --features system-tests (scripts/test.sh does)"
)]
#[tokio::test]
async fn a_live_consumer_keeps_entries_it_holds_for_long() {
    let mut config = config("hold").await;
    config.claim_idle = Duration::from_millis(600);
    config.block = Duration::from_millis(100);
    let publisher = Publisher::connect(&config).await.unwrap();
    for i in 0..3 {
        publisher
            .publish(format!("h{i}").into_bytes())
            .await
            .unwrap();
    }
    let mut holder = Consumer::connect(&config).await.unwrap();
    let held = receive_all(&mut holder, 3).await;
    assert_eq!(held.len(), 3);

    let mut other_config = config.clone();
    other_config.consumer = "c2".into();
    let mut other = Consumer::connect(&other_config).await.unwrap();
    // Both keep polling for three claim periods; the holder keeps its entries fresh.
    let deadline = tokio::time::Instant::now() + Duration::from_millis(1800);
    let holder_loop = async {
        let mut again = Vec::new();
        while tokio::time::Instant::now() < deadline {
            again.extend(holder.receive(10).await.unwrap());
        }
        again
    };
    let other_loop = async {
        let mut stolen = Vec::new();
        while tokio::time::Instant::now() < deadline {
            stolen.extend(other.receive(10).await.unwrap());
        }
        stolen
    };
    let (again, stolen) = tokio::join!(holder_loop, other_loop);
    assert!(
        again.is_empty(),
        "no duplicates to the holder: {:?}",
        bodies(&again)
    );
    assert!(stolen.is_empty(), "nothing stolen: {:?}", bodies(&stolen));
    holder.ack(&tokens(&held)).await.unwrap();
    assert_eq!(pending_count(&config).await, 0);
    cleanup(&config).await;
}

#[cfg_attr(
    not(feature = "system-tests"),
    ignore = "needs Redis at 127.0.0.1:6379: run with --features system-tests (scripts/test.sh does)"
)]
#[tokio::test]
async fn lag_counts_entries_not_yet_delivered_to_the_group() {
    let config = config("lag").await;
    let publisher = Publisher::connect(&config).await.unwrap();
    for i in 0..7 {
        publisher
            .publish(format!("m{i}").into_bytes())
            .await
            .unwrap();
    }
    let mut consumer = Consumer::connect(&config).await.unwrap();
    assert_eq!(consumer.lag().await.unwrap(), Some(7));
    let got = consumer.receive(3).await.unwrap();
    assert_eq!(got.len(), 3);
    assert_eq!(
        consumer.lag().await.unwrap(),
        Some(4),
        "delivered, even unacked"
    );
    consumer.ack(&tokens(&got)).await.unwrap();
    assert_eq!(consumer.lag().await.unwrap(), Some(4));
    cleanup(&config).await;
}

/// Consumers trim the stream (`XTRIM MINID ~`) only below what every group has delivered and
/// acknowledged: another group's unread entries and this group's pending ones stay.
#[cfg_attr(
    not(feature = "system-tests"),
    ignore = "needs Redis at 127.0.0.1:6379: run with --features system-tests (scripts/test.sh does)"
)]
#[tokio::test]
async fn consumers_trim_only_what_every_group_acknowledged() {
    let config = config("trim").await;
    let publisher = Publisher::connect(&config).await.unwrap();
    // A second group that has read nothing yet.
    let _: () = redis::cmd("XGROUP")
        .arg("CREATE")
        .arg(&config.stream)
        .arg("others")
        .arg("0")
        .query_async(&mut raw().await)
        .await
        .unwrap();
    for i in 0..300 {
        publisher
            .publish(format!("m{i}").into_bytes())
            .await
            .unwrap();
    }
    let xlen = || async { raw().await.xlen::<_, u64>(&config.stream).await.unwrap() };
    let mut ours = Consumer::connect(&config).await.unwrap();
    let got = receive_all(&mut ours, 300).await;
    assert_eq!(got.len(), 300);
    ours.ack(&tokens(&got[..250])).await.unwrap();
    assert_eq!(
        xlen().await,
        300,
        "the other group has read nothing: no trim"
    );
    assert_eq!(ours.stats().trimmed_acked, 0);

    let mut others_config = config.clone();
    others_config.group = "others".into();
    others_config.consumer = "o1".into();
    let mut others = Consumer::connect(&others_config).await.unwrap();
    let theirs = receive_all(&mut others, 300).await;
    assert_eq!(theirs.len(), 300);
    others.ack(&tokens(&theirs)).await.unwrap();
    let left = xlen().await;
    // Our 50 pending entries stay (an approximate trim removes whole nodes of 100 entries).
    assert!((50..=150).contains(&left), "left {left}");
    assert!(others.stats().trimmed_acked >= 150);
    let AckToken::Redis(first_pending) = &got[250].token else {
        panic!("redis token expected")
    };
    let still: Vec<redis::Value> = redis::cmd("XRANGE")
        .arg(&config.stream)
        .arg(first_pending)
        .arg("+")
        .query_async::<Vec<redis::Value>>(&mut raw().await)
        .await
        .unwrap();
    assert_eq!(still.len(), 50, "every pending entry is still there");

    // Once the pending entries are acknowledged too, the stream empties (up to one node).
    tokio::time::sleep(Duration::from_millis(300)).await;
    ours.ack(&tokens(&got[250..])).await.unwrap();
    assert!(xlen().await < 100, "left {}", xlen().await);
    assert!(ours.stats().trimmed_acked > 0);
    cleanup(&config).await;
}

/// Names of the consumers of `group` on `stream`.
async fn consumer_names(stream: &str, group: &str) -> Vec<String> {
    let reply: redis::Value = redis::cmd("XINFO")
        .arg("CONSUMERS")
        .arg(stream)
        .arg(group)
        .query_async(&mut raw().await)
        .await
        .unwrap();
    let redis::Value::Array(consumers) = reply else {
        panic!("XINFO CONSUMERS: {reply:?}")
    };
    consumers
        .into_iter()
        .filter_map(|c| match c {
            redis::Value::Array(kv) => {
                kv.chunks(2).find_map(|pair| match (&pair[0], pair.get(1)) {
                    (redis::Value::BulkString(k), Some(redis::Value::BulkString(v)))
                        if k == b"name" =>
                    {
                        Some(String::from_utf8_lossy(v).into_owned())
                    }
                    _ => None,
                })
            }
            _ => None,
        })
        .collect()
}

/// A consumer that died (a restart under a new name) is removed from the group once its
/// pending entries were claimed by a live one, instead of staying there forever.
#[cfg_attr(
    not(feature = "system-tests"),
    ignore = "needs Redis at 127.0.0.1:6379: run with --features system-tests (scripts/test.sh does)"
)]
#[tokio::test]
async fn dead_consumers_are_removed_once_their_entries_are_claimed() {
    let mut config = config("dead-consumers").await;
    config.claim_idle = Duration::from_millis(200);
    let publisher = Publisher::connect(&config).await.unwrap();
    for i in 0..5 {
        publisher
            .publish(format!("d{i}").into_bytes())
            .await
            .unwrap();
    }
    let mut old_config = config.clone();
    old_config.consumer = "old-name".into();
    let mut old = Consumer::connect(&old_config).await.unwrap();
    assert_eq!(receive_all(&mut old, 5).await.len(), 5);
    drop(old); // dies holding five entries
    assert!(
        consumer_names(&config.stream, &config.group)
            .await
            .contains(&"old-name".to_string())
    );

    let mut live = Consumer::connect(&config).await.unwrap();
    let mut reclaimed = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let got = live.receive(10).await.unwrap();
        live.ack(&tokens(&got)).await.unwrap();
        reclaimed.extend(bodies(&got));
        let names = consumer_names(&config.stream, &config.group).await;
        if reclaimed.len() == 5 && !names.contains(&"old-name".to_string()) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "reclaimed {reclaimed:?}, consumers {names:?}"
        );
    }
    assert_eq!(live.stats().consumers_removed, 1);
    assert_eq!(
        consumer_names(&config.stream, &config.group).await,
        vec![config.consumer.clone()]
    );
    cleanup(&config).await;
}

//! The publisher against the in-process stand-in: delivery, batching, auth, failures.

use std::collections::BTreeSet;
use std::sync::atomic::Ordering;
use std::time::Duration;

use crate::support::*;
use antinex_standin::StandinConfig;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

#[tokio::test]
async fn rows_arrive_exactly_once_in_batches() {
    let server = standin(StandinConfig::default()).await;
    let url = stream("once");
    let _feeder = feed(&url, 25, 100).await;
    let summary = run_until(config(&url, &server.url()), "2,500 rows", || {
        accepted(&server) >= 2500
    })
    .await;
    assert_exactly_once(&server, 2500);
    let jobs = server.state.jobs();
    assert!(
        jobs.len() >= 3,
        "2,500 rows in batches of at most 1,000: {} jobs",
        jobs.len()
    );
    assert!(jobs.iter().all(|j| j.row_count <= 1000 && j.row_count > 0));
    assert_eq!(summary.rows_sent, 2500);
    assert_eq!(summary.rows_received, 2500);
    assert_eq!(summary.messages_received, 25);
    assert_eq!(summary.messages_acked, 25);
    assert_eq!(summary.rows_abandoned, 0);
    assert_eq!(summary.logins, 1, "one login for the whole run");
    assert_eq!(server.state.count(&server.state.counters.unauthorized), 0);
}

#[tokio::test]
async fn request_body_follows_the_template_and_features() {
    let server = standin(StandinConfig::default()).await;
    let url = stream("body");
    let _feeder = feed(&url, 1, 10).await;
    run_until(config(&url, &server.url()), "10 rows", || {
        accepted(&server) >= 10
    })
    .await;
    let jobs = server.state.jobs();
    assert_eq!(jobs.len(), 1);
    let job = &jobs[0];
    let template = publisher::template::default_template();
    let mut expected: BTreeSet<String> = template.as_object().unwrap().keys().cloned().collect();
    expected.insert("publish_to_core".into());
    expected.remove("predict_rows");
    let sent: BTreeSet<String> = job.body.keys().cloned().collect();
    assert_eq!(
        sent, expected,
        "same field set as the template (+ publish_to_core)"
    );
    assert_eq!(
        job.body["features_to_process"],
        serde_json::json!(SENT_FEATURES)
    );
    assert_eq!(job.body["label"], "Full-Django-AntiNex-Simple-Scaler-DNN");
    assert_eq!(job.body["predict_feature"], "label_value");
    assert_eq!(job.body["publish_to_core"], true);
    assert_eq!(job.body["model_desc"], template["model_desc"]);
    let rows = job.rows.as_ref().unwrap();
    assert_eq!(rows.len(), 10);
    for (i, row) in rows.iter().enumerate() {
        let row = row.as_object().unwrap();
        let keys: BTreeSet<&str> = row.keys().map(String::as_str).collect();
        let mut want: BTreeSet<&str> = SENT_FEATURES.into_iter().collect();
        want.insert("label_value");
        assert_eq!(keys, want, "only the features (+ predict column)");
        assert!(
            row.values().all(Value::is_f64),
            "numbers as JSON numbers: {row:?}"
        );
        assert_eq!(row["idx"], i as f64);
        assert_eq!(row["ip_tos"], 0.0, "a real zero stays 0");
        assert_eq!(
            row["tcp_fields_options.MSS"], -1.0,
            "missing becomes ANTINEX_MISSING_VALUE"
        );
        assert_eq!(
            row["label_value"], -1.0,
            "the row's own label is not leaked"
        );
        assert_eq!(row["eth_type"], 2048.0);
    }
}

#[tokio::test]
async fn one_second_tokens_renew_without_a_401_storm() {
    let server = standin(StandinConfig {
        token_lifetime: Duration::from_secs(1),
        ..StandinConfig::default()
    })
    .await;
    let url = stream("expiry");
    let mut c = config(&url, &server.url());
    c.batch_rows = 20;
    c.batch_delay = Duration::from_millis(10);
    let run = tokio::spawn(publisher::run(c, CancellationToken::new()));
    // 4.5 s of traffic: several token lifetimes.
    let feeder = feed(&url, 0, 0).await;
    for m in 0..45u64 {
        feeder
            .publish(row_batch(m * 20, 20).encode())
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    close(&url, feeder);
    let summary = with_timeout(run).await.unwrap().unwrap();
    assert_exactly_once(&server, 900);
    let logins = server.state.count(&server.state.counters.logins_ok);
    let unauthorized = server.state.count(&server.state.counters.unauthorized);
    assert!(
        logins >= 4,
        "tokens expired and were renewed: {logins} logins"
    );
    assert!(
        unauthorized <= logins,
        "at most one failed request per expiry: {unauthorized} 401s for {logins} logins"
    );
    assert!(
        summary.token_renewals >= 1,
        "renewed before exp: {summary:?}"
    );
    assert_eq!(summary.rows_sent, 900);
}

#[tokio::test]
async fn server_down_then_up_delivers_everything_once() {
    let addr = free_addr();
    let url = stream("down");
    let _feeder = feed(&url, 5, 100).await;
    let shutdown = CancellationToken::new();
    let metrics = publisher::metrics::PublisherMetrics::new().unwrap();
    let run = tokio::spawn(publisher::run_with_metrics(
        config(&url, &format!("http://{addr}")),
        shutdown.clone(),
        metrics.clone(),
    ));
    tokio::time::sleep(Duration::from_millis(800)).await;
    let server = antinex_standin::Standin::start(StandinConfig::default(), &addr)
        .await
        .unwrap();
    wait_for("500 rows", || accepted(&server) >= 500).await;
    shutdown.cancel();
    let summary = with_timeout(run).await.unwrap().unwrap();
    assert!(
        metrics.logins.with_label_values(&["connect"]).get() >= 1,
        "connection refused while down, retried with backoff"
    );
    assert_exactly_once(&server, 500);
    assert_eq!(summary.messages_acked, 5);
    assert_eq!(summary.rows_sent, 500);
}

#[tokio::test]
async fn server_errors_are_retried_until_it_recovers() {
    let server = standin(StandinConfig::default()).await;
    server.state.faults.fail_next.store(3, Ordering::SeqCst);
    let url = stream("500");
    let _feeder = feed(&url, 4, 100).await;
    let summary = run_until(config(&url, &server.url()), "400 rows", || {
        accepted(&server) >= 400
    })
    .await;
    assert_exactly_once(&server, 400);
    assert!(summary.retries >= 3, "{summary:?}");
    assert_eq!(summary.messages_acked, 4);
    assert_eq!(summary.messages_dead_lettered, 0);
}

#[tokio::test]
async fn a_slow_server_times_out_and_the_retry_is_not_a_duplicate() {
    let server = standin(StandinConfig::default()).await;
    server.state.faults.slow_ms.store(1500, Ordering::SeqCst);
    server.state.faults.slow_next.store(2, Ordering::SeqCst);
    let url = stream("slow");
    let _feeder = feed(&url, 3, 100).await;
    let mut c = config(&url, &server.url());
    c.request_timeout = Duration::from_millis(300);
    c.batch_rows = 100;
    let metrics = publisher::metrics::PublisherMetrics::new().unwrap();
    let summary =
        run_with_metrics_until(c, metrics.clone(), "300 rows", || accepted(&server) >= 300).await;
    // Let the slow handlers finish: they must not create second jobs.
    tokio::time::sleep(Duration::from_millis(1600)).await;
    assert_exactly_once(&server, 300);
    assert!(
        metrics.batches.with_label_values(&["timeout"]).get() >= 1,
        "requests timed out"
    );
    assert!(summary.retries >= 1);
    assert_eq!(summary.messages_acked, 3);
    // Each timed-out batch was POSTed again: counted, since the API cannot deduplicate.
    let timeouts = metrics.batches.with_label_values(&["timeout"]).get();
    assert_eq!(metrics.rows_resent.get(), 100 * timeouts);
}

#[tokio::test]
async fn a_refused_batch_goes_to_the_dead_letter_stream_with_the_response() {
    let server = standin(StandinConfig::default()).await;
    server.state.faults.refuse_next.store(1, Ordering::SeqCst);
    let url = stream("refused");
    let name = url.trim_start_matches("memory://").to_string();
    let feeder = feed(&url, 3, 100).await;
    let mut c = config(&url, &server.url());
    c.batch_rows = 100;
    let shutdown = CancellationToken::new();
    let run = tokio::spawn(publisher::run(c, shutdown.clone()));
    wait_for("one dead letter and 200 accepted rows", || {
        netpipe_runtime::broker::memory_dead_letters(&name).len() == 1
            && server.state.count(&server.state.counters.rows_accepted) == 200
    })
    .await;
    shutdown.cancel();
    let summary = with_timeout(run).await.unwrap().unwrap();
    drop(feeder);
    let dead = netpipe_runtime::broker::memory_dead_letters(&name);
    let (body, reason) = &dead[0];
    assert!(reason.contains("HTTP 400"), "{reason}");
    assert!(
        reason.contains("MLJob Failed"),
        "reason carries the body: {reason}"
    );
    let refused = netpipe_runtime::broker::codec::RowBatch::decode(body).unwrap();
    assert_eq!(refused.rows.len(), 100);
    let mut all: Vec<u64> = posted_idx(&server);
    all.extend(refused.rows.iter().map(|r| r.seq - SEQ_BASE));
    all.sort_unstable();
    all.dedup();
    assert_eq!(all.len(), 300, "nothing lost, nothing twice");
    assert_eq!(summary.messages_dead_lettered, 1);
    assert_eq!(summary.rows_dead_lettered, 100);
    assert_eq!(summary.messages_acked, 2);
    assert_eq!(
        server.state.count(&server.state.counters.ml_posts),
        3,
        "a 400 is not retried"
    );
    netpipe_runtime::broker::forget_memory(&name);
}

#[tokio::test]
async fn wrong_password_is_a_clear_error_with_backoff_and_not_ready() {
    let server = standin(StandinConfig::default()).await;
    let url = stream("badpw");
    let feeder = feed(&url, 2, 10).await;
    let mut c = config(&url, &server.url());
    c.password = publisher::SecretString::from("wrong-password");
    let ops = free_addr();
    c.common.ops_addr = ops.parse().unwrap();
    let shutdown = CancellationToken::new();
    let run = tokio::spawn(publisher::run(c, shutdown.clone()));
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let ready = reqwest::get(format!("http://{ops}/ready")).await.unwrap();
    assert_eq!(ready.status().as_u16(), 503);
    assert!(ready.text().await.unwrap().contains("login"));
    let health = reqwest::get(format!("http://{ops}/health")).await.unwrap();
    assert_eq!(health.status().as_u16(), 200);
    let metrics = reqwest::get(format!("http://{ops}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("publisher_logins_total{outcome=\"refused\"}"),
        "{metrics}"
    );
    let attempts = server.state.count(&server.state.counters.logins_refused);
    // 20 ms doubling to 200 ms over 1.5 s is about ten tries; a busy loop would be thousands.
    assert!(
        (2..=20).contains(&attempts),
        "{attempts} login attempts in 1.5 s"
    );
    shutdown.cancel();
    let summary = with_timeout(run).await.unwrap().unwrap();
    assert_eq!(summary.rows_sent, 0);
    assert_eq!(
        summary.messages_acked, 0,
        "nothing acknowledged: the rows stay on the stream"
    );
    assert_eq!(summary.rows_abandoned, 20);
    assert_eq!(server.state.count(&server.state.counters.ml_posts), 0);
    close(&url, feeder);
}

#[tokio::test]
async fn predictions_are_written_beside_their_rows() {
    let server = standin(StandinConfig {
        prediction_delay: Duration::from_millis(300),
        ..StandinConfig::default()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let csv_path = dir.path().join("predictions.csv");
    let url = stream("predictions");
    let _feeder = feed(&url, 3, 50).await;
    let mut c = config(&url, &server.url());
    c.batch_rows = 60;
    c.poll_predictions = publisher::PollPredictions::Auto;
    c.predictions_csv = Some(csv_path.clone());
    let predictions_url = stream("predictions-out");
    c.predictions_url = Some(predictions_url.clone());
    let path = csv_path.clone();
    let summary = run_until(c, "150 predictions", || {
        std::fs::read_to_string(&path)
            .map(|t| t.lines().count())
            .unwrap_or(0)
            >= 151
    })
    .await;
    assert_eq!(summary.predictions_written, 150);
    assert!(
        server.state.count(&server.state.counters.result_gets) >= 3,
        "polled"
    );
    let text = std::fs::read_to_string(&csv_path).unwrap();
    let mut lines = text.lines();
    assert_eq!(
        lines.next(),
        Some("agent,seq,model,job_id,result_id,prediction,label_name")
    );
    let mut seqs = BTreeSet::new();
    for line in lines {
        let fields: Vec<&str> = line.split(',').collect();
        assert_eq!(fields.len(), 7, "{line}");
        assert_eq!(fields[0], AGENT);
        let seq: u64 = fields[1].parse().unwrap();
        assert_eq!(fields[2], "Full-Django-AntiNex-Simple-Scaler-DNN");
        // The stand-in predicts 1 for odd idx; idx = seq - SEQ_BASE for these rows.
        let idx = seq - SEQ_BASE;
        let class = idx % 2;
        assert_eq!(fields[5], class.to_string(), "{line}");
        assert_eq!(fields[6], if class == 1 { "attack" } else { "not_attack" });
        assert!(seqs.insert(seq), "one prediction per row");
    }
    assert_eq!(seqs.len(), 150);

    // The same predictions on the predictions stream, one message per job.
    let mut out = netpipe_runtime::broker::BrokerConfig::parse(predictions_url.clone()).unwrap();
    out.block = Duration::from_millis(100);
    let mut consumer = netpipe_runtime::broker::Consumer::connect(&out)
        .await
        .unwrap();
    let mut streamed = BTreeSet::new();
    for message in consumer.receive(100).await.unwrap() {
        let records: Vec<Value> = serde_json::from_slice(&message.body).unwrap();
        for r in records {
            assert_eq!(r["model"], "Full-Django-AntiNex-Simple-Scaler-DNN");
            streamed.insert(r["seq"].as_u64().unwrap());
        }
    }
    assert_eq!(streamed, seqs);
    netpipe_runtime::broker::forget_memory(predictions_url.trim_start_matches("memory://"));
}

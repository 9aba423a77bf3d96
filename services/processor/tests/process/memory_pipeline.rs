//! The processor over the memory:// broker: rows equal the schema's flattening cell for cell,
//! poison is dead-lettered without stopping the stream, redeliveries are written once.

use crate::support::{csv_files, expected_rows, frames, read_csv, unique};
use netpipe_runtime::broker::codec::{RowBatch, encode_frames};
use netpipe_runtime::broker::{BrokerConfig, Consumer, Publisher, memory_dead_letters};
use processor::Config;
use tokio_util::sync::CancellationToken;

async fn publisher(name: &str) -> Publisher {
    let mut config = BrokerConfig::parse(format!("memory://{name}")).unwrap();
    config.memory_capacity = 10_000;
    Publisher::connect(&config).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frames_become_rows_equal_to_the_schema_cell_for_cell() {
    let dir = tempfile::tempdir().unwrap();
    let name = unique("mem-cells");
    let all = frames("agent-a", 1_000, 250);
    let publisher = publisher(&name).await;
    for chunk in all.chunks(16) {
        publisher.publish(encode_frames(chunk)).await.unwrap();
    }
    let mut config = Config::new(&format!("memory://{name}"), dir.path());
    config.schemas = vec!["netpipe".into(), "antinex-v1".into()];
    config.save_after_num = 64;
    config.stop_after_num = 250;
    let summary = processor::run(config, CancellationToken::new())
        .await
        .unwrap();
    assert_eq!(summary.packets, 250);
    assert_eq!(
        summary.rows_written,
        vec![
            ("netpipe".to_string(), 250),
            ("antinex-v1".to_string(), 250)
        ]
    );

    for schema in ["netpipe", "antinex-v1"] {
        let files = csv_files(dir.path(), &format!("netdata-{schema}-"));
        assert_eq!(files.len(), 1, "{schema}: {files:?}");
        let (header, rows) = read_csv(&files[0]);
        let columns = netpipe_packet::schema::by_name(schema)
            .unwrap()
            .column_names();
        assert_eq!(header, columns, "{schema}");
        let expected = expected_rows(schema, &all);
        assert_eq!(rows.len(), expected.len());
        for (i, (got, want)) in rows.iter().zip(&expected).enumerate() {
            assert_eq!(got, want, "{schema} row {i}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poison_message_in_the_middle_is_dead_lettered_and_the_rest_written() {
    let dir = tempfile::tempdir().unwrap();
    let name = unique("mem-poison");
    let first = frames("a", 10, 30);
    let second = frames("a", 40, 30);
    let publisher = publisher(&name).await;
    publisher.publish(encode_frames(&first)).await.unwrap();
    publisher.publish(b"{not json".to_vec()).await.unwrap();
    publisher.publish(b"[{\"v\":99}]".to_vec()).await.unwrap();
    publisher.publish(vec![b' '; 200_000]).await.unwrap();
    publisher.publish(encode_frames(&second)).await.unwrap();
    // A redelivery of the first batch: dropped by (agent, seq).
    publisher.publish(encode_frames(&first)).await.unwrap();
    let mut config = Config::new(&format!("memory://{name}"), dir.path());
    config.max_message_bytes = 100_000;
    config.stop_after_num = 90;
    let summary = processor::run(config, CancellationToken::new())
        .await
        .unwrap();
    assert_eq!(summary.dead_letters, 3);
    assert_eq!(summary.duplicates, 30);
    assert_eq!(summary.rows_written, vec![("netpipe".to_string(), 60)]);
    let mut reasons: Vec<String> = memory_dead_letters(&name)
        .into_iter()
        .map(|(_, r)| r)
        .collect();
    reasons.sort();
    assert_eq!(reasons, vec!["not_json", "oversized", "wrong_version"]);
    let files = csv_files(dir.path(), "netdata-");
    let (_, rows) = read_csv(&files[0]);
    let mut all = first.clone();
    all.extend(second);
    assert_eq!(rows, expected_rows("netpipe", &all));
    let manifest = netpipe_runtime::dataset::Manifest::load(
        &netpipe_runtime::dataset::Manifest::path_for(&files[0]),
    )
    .unwrap();
    assert_eq!(manifest.rows, 60);
    assert_eq!(manifest.loss.duplicates_dropped, 30);
    assert_eq!(manifest.loss.dead_lettered.values().sum::<u64>(), 3);
    assert_eq!(manifest.loss.missing_seq, 0);
    assert!(manifest.closed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn committed_rows_are_forwarded_to_the_rows_stream() {
    let dir = tempfile::tempdir().unwrap();
    let name = unique("mem-rows");
    let rows_name = unique("mem-rows-out");
    let all = frames("a", 1, 40);
    let publisher = publisher(&name).await;
    publisher.publish(encode_frames(&all)).await.unwrap();
    let mut rows_config = BrokerConfig::parse(format!("memory://{rows_name}")).unwrap();
    rows_config.block = std::time::Duration::from_millis(200);
    let mut rows_consumer = Consumer::connect(&rows_config).await.unwrap();
    let mut config = Config::new(&format!("memory://{name}"), dir.path());
    config.schemas = vec!["antinex-v1".into()];
    config.rows_stream = Some(rows_name.clone());
    config.rows_broker_url = Some(format!("memory://{rows_name}"));
    config.stop_after_num = 40;
    processor::run(config, CancellationToken::new())
        .await
        .unwrap();
    let messages = rows_consumer.receive(10).await.unwrap();
    assert_eq!(messages.len(), 1);
    let batch = RowBatch::decode(&messages[0].body).unwrap();
    assert_eq!(batch.schema, "antinex-v1");
    assert_eq!(batch.rows.len(), 40);
    assert_eq!(batch.rows[3].agent, "a");
    assert_eq!(batch.rows[3].seq, 4);
    let (_, csv_rows) = read_csv(&csv_files(dir.path(), "netdata-")[0]);
    assert_eq!(batch.rows[3].cells, csv_rows[3]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn original_messages_without_the_antinex_schema_are_dead_lettered() {
    let dir = tempfile::tempdir().unwrap();
    let name = unique("mem-legacy");
    let publisher = publisher(&name).await;
    let legacy = br#"{"data":{"ether":{"dst":"00:00:00:00:00:00","src":"00:00:00:00:00:00","type":2048}},"created":"2018-01-28 22:58:16","source":"localdev"}"#;
    publisher.publish(legacy.to_vec()).await.unwrap();
    publisher
        .publish(encode_frames(&frames("a", 1, 1)))
        .await
        .unwrap();
    let mut config = Config::new(&format!("memory://{name}"), dir.path());
    config.stop_after_num = 1;
    let summary = processor::run(config, CancellationToken::new())
        .await
        .unwrap();
    assert_eq!(summary.dead_letters, 1);
    assert_eq!(
        memory_dead_letters(&name)[0].1,
        "legacy_without_antinex_schema"
    );
    assert_eq!(summary.rows_written, vec![("netpipe".to_string(), 1)]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_torn_last_line_left_by_a_crash_is_cut_at_start_up() {
    let dir = tempfile::tempdir().unwrap();
    let name = unique("mem-torn");
    let batch = frames("a", 1, 20);
    let publisher = publisher(&name).await;
    publisher.publish(encode_frames(&batch)).await.unwrap();
    let mut config = Config::new(&format!("memory://{name}"), dir.path());
    config.stop_after_num = 20;
    let first = processor::run(config.clone(), CancellationToken::new())
        .await
        .unwrap();
    let first_file = first.files[0].clone();
    // What a crash mid-append leaves: the file was marked open again, then half a row.
    let manifest_path = netpipe_runtime::dataset::Manifest::path_for(&first_file);
    let mut manifest = netpipe_runtime::dataset::Manifest::load(&manifest_path).unwrap();
    manifest.closed = false;
    manifest.store(&first_file).unwrap();
    {
        use std::io::Write;
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .open(&first_file)
            .unwrap();
        file.write_all(b"2026-01-01T00:00:00.000000000Z,a,21,1,6")
            .unwrap();
    }
    // The restart also gets the first batch again (it was acknowledged, but say it was not).
    publisher.publish(encode_frames(&batch)).await.unwrap();
    publisher
        .publish(encode_frames(&frames("a", 1, 25)[20..]))
        .await
        .unwrap();
    config.stop_after_num = 25;
    let second = processor::run(config, CancellationToken::new())
        .await
        .unwrap();
    assert_eq!(second.duplicates, 20);
    assert_eq!(second.rows_written[0].1, 5);
    let (_, rows) = read_csv(&first_file);
    assert_eq!(rows.len(), 20, "the torn line is gone");
    let repaired = netpipe_runtime::dataset::Manifest::load(&manifest_path).unwrap();
    assert_eq!(repaired.repaired.torn_lines, 1);
    assert!(repaired.closed);
}

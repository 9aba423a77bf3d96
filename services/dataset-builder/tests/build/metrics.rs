//! Run counters: the `.prom` file for node exporter and the Pushgateway push.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use crate::support::{config, netpipe_csv, s};
use dataset_builder::build_once;
use dataset_builder::synth::SynthSpec;

/// A one-request HTTP server on 127.0.0.1 that answers `status` and hands back
/// (request line, headers, body).
fn one_request_server(status: &'static str) -> (String, mpsc::Receiver<(String, String, String)>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let mut reader = BufReader::new(stream.try_clone().unwrap());
        let mut request_line = String::new();
        reader.read_line(&mut request_line).unwrap();
        let mut headers = String::new();
        let mut length = 0usize;
        loop {
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            if line == "\r\n" || line.is_empty() {
                break;
            }
            if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                length = v.trim().parse().unwrap();
            }
            headers.push_str(&line);
        }
        let mut body = vec![0; length];
        reader.read_exact(&mut body).unwrap();
        let mut stream = stream;
        write!(
            stream,
            "HTTP/1.1 {status}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        tx.send((
            request_line.trim_end().to_string(),
            headers,
            String::from_utf8(body).unwrap(),
        ))
        .unwrap();
    });
    (url, rx)
}

fn dataset(tmp: &std::path::Path) -> std::path::PathBuf {
    let data = tmp.join("data");
    netpipe_csv(
        &data.join("a/x.csv"),
        &SynthSpec {
            rows: 250,
            ..SynthSpec::default()
        },
    );
    data
}

#[test]
fn prom_file_holds_the_runs_counters() {
    let tmp = tempfile::tempdir().unwrap();
    let data = dataset(tmp.path());
    let prom = tmp.path().join("textfile/dataset_builder.prom");
    std::fs::create_dir_all(prom.parent().unwrap()).unwrap();
    let cfg = config(&[
        "--ds-dir",
        &s(&data),
        "--output-dir",
        &s(&tmp.path().join("out")),
        "--label-rule",
        "1:attack:src=10.66.0.0/16",
        "--prom-file",
        &s(&prom),
        "--test-ratio",
        "0.2",
    ]);
    let summary = build_once(&cfg).unwrap();
    let text = std::fs::read_to_string(&prom).unwrap();
    let value = |series: &str| -> f64 {
        text.lines()
            .find_map(|l| l.strip_prefix(series).and_then(|v| v.strip_prefix(' ')))
            .unwrap_or_else(|| panic!("{series} missing in\n{text}"))
            .parse()
            .unwrap()
    };
    assert_eq!(value("dataset_builder_success"), 1.0);
    assert_eq!(value("dataset_builder_input_files"), 1.0);
    assert_eq!(value("dataset_builder_rows_read"), 250.0);
    assert_eq!(
        value("dataset_builder_rows_written{output=\"fulldata\"}"),
        250.0
    );
    assert_eq!(
        value("dataset_builder_rows_written{output=\"test\"}"),
        summary.stats.rows_test as f64
    );
    let attack = summary
        .stats
        .labels
        .iter()
        .find(|l| l.1 == "attack")
        .unwrap()
        .3;
    assert!(attack > 0);
    assert_eq!(
        value(
            "dataset_builder_rows_by_label{label_name=\"attack\",label_value=\"1\",output=\"cleaned\"}"
        ),
        attack as f64
    );
    assert_eq!(value("dataset_builder_bad_input{kind=\"ragged_row\"}"), 0.0);
    assert!(value("dataset_builder_duration_seconds") >= 0.0);
    assert!(text.contains("# TYPE dataset_builder_rows_read gauge\n"));
    assert!(!text.contains("dataset_builder_error"));
    // Written via a temporary file: nothing else is left in the directory.
    let names: Vec<_> = std::fs::read_dir(prom.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names.len(), 1, "{names:?}");
}

#[test]
fn counters_are_pushed_to_the_pushgateway() {
    let tmp = tempfile::tempdir().unwrap();
    let data = dataset(tmp.path());
    let (url, requests) = one_request_server("200 OK");
    let cfg = config(&[
        "--ds-dir",
        &s(&data),
        "--output-dir",
        &s(&tmp.path().join("out")),
        "--pushgateway-url",
        &format!("{url}/"),
    ]);
    let summary = build_once(&cfg).unwrap();
    assert_eq!(summary.metrics_error, None);
    let (line, headers, body) = requests.recv_timeout(Duration::from_secs(10)).unwrap();
    assert_eq!(line, "PUT /metrics/job/dataset_builder HTTP/1.1");
    assert!(
        headers
            .to_ascii_lowercase()
            .contains("content-type: text/plain; version=0.0.4"),
        "{headers}"
    );
    assert!(body.contains("dataset_builder_success 1\n"), "{body}");
    assert!(body.contains("dataset_builder_rows_read 250\n"), "{body}");
}

#[test]
fn a_failed_push_is_reported_but_keeps_the_datasets() {
    let tmp = tempfile::tempdir().unwrap();
    let data = dataset(tmp.path());
    let (url, requests) = one_request_server("500 Internal Server Error");
    let out = tmp.path().join("out");
    let cfg = config(&[
        "--ds-dir",
        &s(&data),
        "--output-dir",
        &s(&out),
        "--pushgateway-url",
        &url,
        "--pushgateway-job",
        "nightly",
    ]);
    let summary = build_once(&cfg).unwrap();
    let (line, _, _) = requests.recv_timeout(Duration::from_secs(10)).unwrap();
    assert_eq!(line, "PUT /metrics/job/nightly HTTP/1.1");
    let err = summary.metrics_error.unwrap();
    assert!(err.contains("500"), "{err}");
    assert!(out.join("cleaned_attack_scans.csv").exists());
}

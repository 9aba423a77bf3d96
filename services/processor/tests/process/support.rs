//! Helpers shared by the processor tests: synthetic frames and reading the CSV output back.
#![allow(dead_code)]

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use netpipe_packet::frame::{Ethernet, Frame, Ipv4, MacAddr, Payload, Tcp, TcpOptions, Udp};

/// A varied but deterministic frame: TCP with options, UDP, or bare Ethernet.
pub fn frame(agent: &str, boot: u64, seq: u64) -> Frame {
    let n = seq - boot;
    let mut f = Frame::new(
        Arc::from(agent),
        boot,
        seq,
        1_700_000_000_000_000_000 + n as i64 * 1000,
        60 + (n % 100) as u32,
        60 + (n % 100) as u32,
        1,
    );
    f.eth = Some(Ethernet {
        src: MacAddr([0, 1, 2, 3, 4, (n % 256) as u8]),
        dst: MacAddr([6, 7, 8, 9, 10, 11]),
        ether_type: 0x0800,
    });
    let proto = match n % 3 {
        0 => 6,
        1 => 17,
        _ => 1,
    };
    f.ipv4 = Some(Ipv4 {
        ihl: 5,
        tos: 0,
        len: 40 + (n % 1000) as u16,
        id: (n % 65536) as u16,
        flags: 2,
        frag: 0,
        ttl: 64,
        proto,
        chksum: (n * 7 % 65536) as u16,
        src: Ipv4Addr::new(10, 0, 0, (n % 250) as u8 + 1),
        dst: Ipv4Addr::new(127, 0, 0, 1),
        options: None,
    });
    match proto {
        6 => {
            f.tcp = Some(Tcp {
                sport: 40000 + (n % 1000) as u16,
                dport: 8080,
                seq: n as u32,
                ack: 0,
                dataofs: 8,
                flags: 2,
                window: 65535,
                chksum: (n % 65536) as u16,
                urgptr: 0,
                opts: TcpOptions {
                    kinds: vec![2, 1, 3],
                    mss: Some(1460),
                    wscale: Some(7),
                    ..Default::default()
                },
            });
            f.payload = Some(Payload {
                len: 4,
                hex: Some("48545450".into()),
                capped: false,
            });
        }
        17 => {
            f.udp = Some(Udp {
                sport: 5353,
                dport: 53,
                len: 20,
                chksum: 0,
            })
        }
        _ => {}
    }
    f
}

pub fn frames(agent: &str, boot: u64, count: u64) -> Vec<Frame> {
    (boot..boot + count)
        .map(|seq| frame(agent, boot, seq))
        .collect()
}

/// CSV files in `dir` whose names start with `prefix`, sorted.
pub fn csv_files(dir: &Path, prefix: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|entries| entries.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    files.retain(|p| {
        p.extension().is_some_and(|e| e == "csv")
            && p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(prefix))
    });
    files.sort();
    files
}

/// Header and records of one CSV file (checks it ends with a newline).
pub fn read_csv(path: &Path) -> (Vec<String>, Vec<Vec<String>>) {
    let bytes = std::fs::read(path).unwrap();
    assert!(
        bytes.is_empty() || bytes.ends_with(b"\n"),
        "{path:?} ends with a complete line"
    );
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .from_reader(bytes.as_slice());
    let header = reader.headers().unwrap().iter().map(String::from).collect();
    let rows = reader
        .records()
        .map(|r| r.unwrap().iter().map(String::from).collect())
        .collect();
    (header, rows)
}

/// The expected CSV records of `frames` under a schema, idx counting from 0.
pub fn expected_rows(schema: &str, frames: &[Frame]) -> Vec<Vec<String>> {
    let schema = netpipe_packet::schema::by_name(schema).unwrap();
    frames
        .iter()
        .enumerate()
        .map(|(i, f)| {
            let mut line = Vec::new();
            schema.write_row(
                f,
                &netpipe_packet::schema::RowContext { idx: i as u64 },
                &mut line,
            );
            let mut reader = csv::ReaderBuilder::new()
                .has_headers(false)
                .from_reader(line.as_slice());
            reader
                .records()
                .next()
                .unwrap()
                .unwrap()
                .iter()
                .map(String::from)
                .collect()
        })
        .collect()
}

/// A name unique to this test process.
pub fn unique(test: &str) -> String {
    format!("{test}-{}-{}", std::process::id(), rand::random::<u32>())
}

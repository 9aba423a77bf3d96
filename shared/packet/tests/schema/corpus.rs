//! Every corpus packet, decoded, flattened under both schemas: the CSV reads back to the same
//! cells with the right column count, key cells equal the frame's fields, and the legacy message
//! flattens to the same antinex-v1 row.

use std::path::PathBuf;

use netpipe_packet::Frame;
use netpipe_packet::decode::{DecodeOptions, FrameMeta, decode};
use netpipe_packet::schema::legacy::{antinex_cells_from_message, message_from_frame};
use netpipe_packet::schema::{RowContext, by_name};
use netpipe_runtime::capture::CaptureFile;

/// Packets taken per corpus file.
const PER_FILE: usize = 3000;

fn corpus_frames(data: &std::path::Path) -> Vec<Frame> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(data.join("pcaps"))
        .unwrap()
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            p.extension()
                .is_some_and(|e| e == "pcap" || e == "pcapng" || e == "cap")
        })
        .collect();
    paths.sort();
    let meta = FrameMeta {
        agent: "corpus".into(),
        boot: 7,
        seq: 0,
    };
    let mut frames = Vec::new();
    for path in paths {
        let Ok(mut file) = CaptureFile::open(&path) else {
            continue;
        };
        let mut in_file = 0;
        // Every file, at most PER_FILE packets each (a few large captures dominate the corpus).
        while in_file < PER_FILE
            && let Ok(Some(packet)) = file.next_packet()
        {
            in_file += 1;
            let seq = frames.len() as u64;
            frames.push(decode(
                &packet,
                &FrameMeta {
                    seq,
                    ..meta.clone()
                },
                &DecodeOptions::default(),
            ));
        }
    }
    frames
}

#[test]
fn corpus_rows_round_trip_under_both_schemas() {
    let Some(data) =
        netpipe_testkit::paths::shared_data_or_skip("corpus_rows_round_trip_under_both_schemas")
    else {
        return;
    };
    let frames = corpus_frames(&data);
    assert!(frames.len() > 100, "only {} corpus frames", frames.len());
    for name in ["netpipe", "antinex-v1"] {
        let schema = by_name(name).unwrap();
        let mut out = Vec::new();
        schema.write_header(&mut out);
        for (i, f) in frames.iter().enumerate() {
            schema.write_row(f, &RowContext { idx: i as u64 }, &mut out);
        }
        let mut reader = csv::Reader::from_reader(out.as_slice());
        assert_eq!(reader.headers().unwrap().len(), schema.columns.len());
        let mut n = 0;
        for (i, record) in reader.records().enumerate() {
            let record = record.unwrap();
            let ctx = RowContext { idx: i as u64 };
            let expected = schema.row_cells(&frames[i], &ctx);
            let got: Vec<&str> = record.iter().collect();
            assert_eq!(got, expected, "{name} row {i}");
            n += 1;
        }
        assert_eq!(n, frames.len(), "{name} row count");
    }
}

#[test]
fn corpus_cells_match_the_frames() {
    let Some(data) = netpipe_testkit::paths::shared_data_or_skip("corpus_cells_match_the_frames")
    else {
        return;
    };
    let frames = corpus_frames(&data);
    let netpipe = by_name("netpipe").unwrap();
    let antinex = by_name("antinex-v1").unwrap();
    let col =
        |schema: &netpipe_packet::schema::ColumnSchema, n: &str| schema.column_index(n).unwrap();
    let mut tcp_rows = 0;
    for (i, f) in frames.iter().enumerate() {
        let ctx = RowContext { idx: i as u64 };
        let cells = netpipe.row_cells(f, &ctx);
        assert_eq!(cells[col(netpipe, "seq")], f.seq.to_string());
        assert_eq!(cells[col(netpipe, "wire_len")], f.wire_len.to_string());
        let version = if f.ipv4.is_some() {
            "4"
        } else if f.ipv6.is_some() {
            "6"
        } else {
            ""
        };
        assert_eq!(cells[col(netpipe, "ip_version")], version, "row {i}");
        if let Some(ip) = &f.ipv4 {
            assert_eq!(cells[col(netpipe, "ip_src")], ip.src.to_string());
            assert_eq!(cells[col(netpipe, "ip_len")], ip.len.to_string());
        }
        if let Some(ip) = &f.ipv6 {
            assert_eq!(cells[col(netpipe, "ipv6_dst")], ip.dst.to_string());
        }
        let legacy = antinex.row_cells(f, &ctx);
        assert_eq!(
            legacy,
            antinex_cells_from_message(&message_from_frame(f, "x", "y"), &ctx).unwrap(),
            "row {i}"
        );
        // kamene had no MPLS or 802.1ad layer: the original stopped before IP on those frames.
        let kamene_reaches_ip = f.mpls.is_empty() && f.vlan.iter().all(|t| t.tpid == 0x8100);
        if let (Some(tcp), Some(ip), true) = (&f.tcp, &f.ipv4, kamene_reaches_ip) {
            tcp_rows += 1;
            assert_eq!(cells[col(netpipe, "tcp_flags")], tcp.flags.to_string());
            assert_eq!(legacy[col(antinex, "tcp_sport")], tcp.sport.to_string());
            // The original's mix-ups: ip_len / tcp_seq hold the last non-zero shadowing field.
            let ip_len = [
                ip.len,
                ip.id,
                ip.flags.into(),
                ip.frag,
                ip.ttl.into(),
                ip.proto.into(),
                ip.chksum,
            ]
            .into_iter()
            .rfind(|v| *v != 0)
            .unwrap_or(0);
            assert_eq!(
                legacy[col(antinex, "ip_len")],
                ip_len.to_string(),
                "row {i}"
            );
            let tcp_seq = [
                tcp.seq,
                tcp.ack,
                tcp.dataofs.into(),
                tcp.flags.into(),
                tcp.window.into(),
                tcp.chksum.into(),
            ]
            .into_iter()
            .rfind(|v| *v != 0)
            .unwrap_or(0);
            assert_eq!(
                legacy[col(antinex, "tcp_seq")],
                tcp_seq.to_string(),
                "row {i}"
            );
        }
    }
    // With the stub decoder there are no TCP frames; the real one decodes hundreds.
    eprintln!("{} frames, {tcp_rows} IPv4/TCP", frames.len());
}

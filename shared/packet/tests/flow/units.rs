//! The flow engine's rules, one at a time: key and direction, timeouts (packet time and the
//! live tick), TCP termination, eviction, time going backwards, the early-flow arrays, the
//! CICFlowMeter-style features with their corrections, and the project's own fixture capture.

use crate::flow_support;

use std::net::{IpAddr, Ipv4Addr};

use flow_support::{cell_text, flows_of_packets};
use netpipe_packet::flow::{Cell, ExpirationReason, FlowConfig, FlowPacket, FlowRecord, FlowTable};
use netpipe_packet::frame::MacAddr;

const T0: i64 = 1_700_000_000_000_000_000;
const MS: i64 = 1_000_000;
const SEC: i64 = 1_000 * MS;

const SYN: u16 = 0x02;
const FIN: u16 = 0x01;
const RST: u16 = 0x04;
const PSH: u16 = 0x08;
const ACK: u16 = 0x10;
const URG: u16 = 0x20;

fn ip(last: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(192, 0, 2, last))
}

/// A TCP packet from `a`:`pa` to `b`:`pb` at `t` ns after T0.
fn tcp(t: i64, a: u8, pa: u16, b: u8, pb: u16, flags: u16, payload: u32) -> FlowPacket {
    FlowPacket {
        ts_ns: T0 + t,
        size: 54 + payload,
        ip_version: 4,
        src_ip: ip(a),
        dst_ip: ip(b),
        src_port: pa,
        dst_port: pb,
        protocol: 6,
        vlan_id: 0,
        src_mac: MacAddr([2, 0, 0, 0, 0, a]),
        dst_mac: MacAddr([2, 0, 0, 0, 0, b]),
        tcp_flags: flags,
        tcp_window: Some(1000 + u16::from(a)),
        transport_header_len: 20,
        payload_len: payload,
    }
}

fn fwd(t: i64, flags: u16, payload: u32) -> FlowPacket {
    tcp(t, 1, 40_000, 2, 80, flags, payload)
}
fn bwd(t: i64, flags: u16, payload: u32) -> FlowPacket {
    tcp(t, 2, 80, 1, 40_000, flags, payload)
}

fn run(config: FlowConfig, packets: &[FlowPacket]) -> Vec<FlowRecord> {
    let mut table = FlowTable::new(config, 0);
    let mut out = Vec::new();
    for p in packets {
        table.push(p, &mut out);
    }
    table.finish(&mut out);
    out
}

fn f64_cell(record: &FlowRecord, column: &str) -> f64 {
    cell_text(record, column)
        .unwrap_or_else(|| panic!("no column {column}"))
        .parse()
        .unwrap()
}

#[test]
fn first_sender_is_src_and_replies_are_dst2src() {
    let flows = run(
        FlowConfig::default(),
        &[bwd(0, SYN, 0), fwd(MS, SYN | ACK, 0), bwd(2 * MS, ACK, 0)],
    );
    assert_eq!(flows.len(), 1);
    let f = &flows[0].flow;
    assert_eq!((f.src_ip, f.src_port), (ip(2), 80));
    assert_eq!((f.src2dst.packets, f.dst2src.packets), (2, 1));
    assert_eq!(f.src2dst.flag("syn"), 1);
    assert_eq!(f.dst2src.flag("ack"), 1);
    assert_eq!(cell_text(&flows[0], "src_oui").unwrap(), "02:00:00");
}

#[test]
fn idle_timeout_splits_at_the_exact_millisecond() {
    let config = FlowConfig {
        idle_timeout_ms: 5_000,
        ..FlowConfig::default()
    };
    let flows = run(
        config,
        &[fwd(0, 0, 0), fwd(4_999 * MS, 0, 0), fwd(9_999 * MS, 0, 0)],
    );
    // 4.999 s gap stays in the flow, 5.000 s starts a new one (NFStream: gap >= idle).
    assert_eq!(flows.len(), 2);
    assert_eq!(flows[0].reason, ExpirationReason::Idle);
    assert_eq!(flows[0].flow.bidirectional.packets, 2);
    assert_eq!(flows[1].reason, ExpirationReason::EndOfCapture);
    assert_eq!(cell_text(&flows[0], "expiration_id").unwrap(), "0");
}

#[test]
fn active_timeout_cuts_a_busy_flow() {
    let config = FlowConfig {
        active_timeout_ms: 30_000,
        ..FlowConfig::default()
    };
    let packets: Vec<_> = (0..40).map(|i| fwd(i * SEC, 0, 10)).collect();
    let flows = run(config, &packets);
    assert_eq!(flows.len(), 2);
    assert_eq!(flows[0].reason, ExpirationReason::Active);
    assert_eq!(cell_text(&flows[0], "expiration_id").unwrap(), "1");
    assert_eq!(flows[0].flow.bidirectional.packets, 30);
    assert_eq!(flows[1].flow.bidirectional.packets, 10);
}

#[test]
fn the_tick_emits_idle_flows_without_any_packet() {
    let config = FlowConfig {
        idle_timeout_ms: 2_000,
        ..FlowConfig::default()
    };
    let mut table = FlowTable::new(config, 7);
    let mut out = Vec::new();
    table.push(&fwd(0, SYN, 0), &mut out);
    table.push(&tcp(500 * MS, 3, 1, 4, 2, 0, 0), &mut out);
    table.tick(T0 + 1_999 * MS, &mut out);
    assert!(out.is_empty());
    table.tick(T0 + 2_000 * MS, &mut out);
    assert_eq!(out.len(), 1, "only the first flow is idle for 2 s");
    assert_eq!(out[0].reason, ExpirationReason::Idle);
    assert_eq!(out[0].flow.id, 7);
    table.tick(T0 + 2_500 * MS, &mut out);
    assert_eq!(out.len(), 2);
    assert_eq!(out[1].flow.id, 8);
    assert!(table.is_empty());
}

#[test]
fn tcp_termination_ends_flows_only_when_asked() {
    let close = [
        fwd(0, SYN, 0),
        bwd(MS, SYN | ACK, 0),
        fwd(2 * MS, ACK, 0),
        fwd(3 * MS, FIN | ACK, 0),
        bwd(4 * MS, FIN | ACK, 0),
        fwd(5 * MS, ACK, 0),
        // A new connection on the same ports after the close.
        fwd(6 * MS, SYN, 0),
    ];
    let on = FlowConfig {
        tcp_end: true,
        ..FlowConfig::default()
    };
    let flows = run(on.clone(), &close);
    assert_eq!(flows.len(), 2);
    assert_eq!(flows[0].reason, ExpirationReason::TcpEnd);
    assert_eq!(flows[0].flow.bidirectional.packets, 6);
    assert_eq!(cell_text(&flows[0], "expiration_id").unwrap(), "-1");
    let off = run(FlowConfig::default(), &close);
    assert_eq!(off.len(), 1);
    assert_eq!(off[0].flow.bidirectional.packets, 7);

    let reset = run(
        on,
        &[fwd(0, SYN, 0), bwd(MS, RST | ACK, 0), fwd(2 * MS, SYN, 0)],
    );
    assert_eq!(reset.len(), 2);
    assert_eq!(reset[0].reason, ExpirationReason::TcpEnd);
    assert_eq!(reset[0].flow.bidirectional.packets, 2);
}

#[test]
fn a_full_table_evicts_the_least_recently_seen_flow_and_counts_it() {
    let config = FlowConfig {
        max_flows: 2,
        ..FlowConfig::default()
    };
    let mut table = FlowTable::new(config, 0);
    let mut out = Vec::new();
    table.push(&tcp(0, 1, 1, 2, 1, 0, 0), &mut out);
    table.push(&tcp(MS, 1, 2, 2, 2, 0, 0), &mut out);
    table.push(&tcp(2 * MS, 1, 1, 2, 1, 0, 0), &mut out); // flow 0 is now the most recent
    table.push(&tcp(3 * MS, 1, 3, 2, 3, 0, 0), &mut out);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].reason, ExpirationReason::Evicted);
    assert_eq!(out[0].flow.src_port, 2);
    assert_eq!(table.len(), 2);
    assert_eq!(table.counters().evicted, 1);
    table.finish(&mut out);
    let packets: u64 = out.iter().map(|r| r.flow.bidirectional.packets).sum();
    assert_eq!(packets, 4);
}

#[test]
fn a_packet_from_the_past_counts_at_the_meter_time() {
    let flows = run(
        FlowConfig::default(),
        &[fwd(10 * MS, 0, 0), bwd(5 * MS, 0, 0), fwd(12 * MS, 0, 0)],
    );
    let f = &flows[0].flow;
    assert_eq!(f.dst2src.first_seen_ms, (T0 + 10 * MS) / MS);
    assert_eq!(f.bidirectional.piat_ms.min(), 0.0);
    assert_eq!(f.bidirectional.duration_ms(), 2);
}

#[test]
fn early_flow_arrays_are_padded_with_minus_one() {
    let flows = run(
        FlowConfig {
            splt: 4,
            ..FlowConfig::default()
        },
        &[fwd(0, 0, 1), bwd(3 * MS, 0, 2)],
    );
    let json = flows[0].to_json();
    assert_eq!(json["splt_direction"], serde_json::json!([0, 1, -1, -1]));
    assert_eq!(json["splt_ps"], serde_json::json!([55, 56, -1, -1]));
    assert_eq!(json["splt_piat_ms"], serde_json::json!([0, 3, -1, -1]));
    let mut csv = Vec::new();
    flows[0].write_csv(&mut csv);
    assert!(
        String::from_utf8(csv)
            .unwrap()
            .contains("\"[0, 1, -1, -1]\"")
    );
    let none = run(
        FlowConfig {
            splt: 0,
            ..FlowConfig::default()
        },
        &[fwd(0, 0, 1)],
    );
    assert_eq!(none[0].to_json()["splt_ps"], serde_json::json!([]));
}

#[test]
fn psh_and_urg_are_counted_per_direction() {
    // CICFlowMeter never incremented its backward PSH/URG counters (Engelen et al. 2021).
    let flows = run(
        FlowConfig::default(),
        &[
            fwd(0, PSH | ACK, 5),
            bwd(MS, PSH | URG | ACK, 5),
            bwd(2 * MS, URG, 0),
        ],
    );
    let r = &flows[0];
    assert_eq!(f64_cell(r, "fwd_psh_flags"), 1.0);
    assert_eq!(f64_cell(r, "bwd_psh_flags"), 1.0);
    assert_eq!(f64_cell(r, "fwd_urg_flags"), 0.0);
    assert_eq!(f64_cell(r, "bwd_urg_flags"), 2.0);
    assert_eq!(f64_cell(r, "down_up_ratio"), 2.0);
    assert_eq!(f64_cell(r, "fwd_act_data_packets"), 1.0);
    assert_eq!(f64_cell(r, "fwd_init_win_bytes"), 1001.0);
    assert_eq!(f64_cell(r, "bwd_init_win_bytes"), 1002.0);
    assert_eq!(f64_cell(r, "fwd_header_bytes"), 20.0);
    assert_eq!(f64_cell(r, "bwd_header_bytes"), 40.0);
}

#[test]
fn active_and_idle_are_durations_and_subflows_divide_as_floats() {
    // Activity: 0..1 s, idle 9 s, then 10..11 s. CICFlowMeter stored timestamps, not durations.
    let flows = run(
        FlowConfig::default(),
        &[
            fwd(0, 0, 1),
            bwd(SEC, 0, 1),
            fwd(10 * SEC, 0, 1),
            fwd(11 * SEC, 0, 1),
            bwd(11 * SEC + 500 * MS, 0, 1),
        ],
    );
    let r = &flows[0];
    assert_eq!(f64_cell(r, "active_mean_us"), 1_250_000.0);
    assert_eq!(f64_cell(r, "active_max_us"), 1_500_000.0);
    assert_eq!(f64_cell(r, "active_min_us"), 1_000_000.0);
    assert_eq!(f64_cell(r, "idle_mean_us"), 9_000_000.0);
    // Gaps over 1 s: 1 s -> 10 s only (exactly 1 s is not over), so 2 subflows.
    assert_eq!(f64_cell(r, "subflow_count"), 2.0);
    assert_eq!(f64_cell(r, "subflow_fwd_packets"), 1.5);
    assert_eq!(f64_cell(r, "subflow_bwd_packets"), 1.0);
    assert_eq!(f64_cell(r, "fwd_iat_total_us"), 11_000_000.0);
    assert_eq!(f64_cell(r, "flow_duration_us"), 11_500_000.0);
    let rate = f64_cell(r, "flow_packets_per_s");
    assert!((rate - 5.0 / 11.5).abs() < 1e-12, "{rate}");
}

#[test]
fn bulk_features_use_float_division() {
    // Five forward packets with payload, 100 ms apart: one bulk of 5 packets and 500 bytes
    // over 0.4 s; then a backward packet with payload, which ends nothing here.
    let mut packets: Vec<_> = (0..5).map(|i| fwd(i * 100 * MS, PSH, 100)).collect();
    packets.push(bwd(450 * MS, 0, 0));
    let flows = run(FlowConfig::default(), &packets);
    let r = &flows[0];
    assert_eq!(f64_cell(r, "fwd_bulk_bytes_avg"), 500.0);
    assert_eq!(f64_cell(r, "fwd_bulk_packets_avg"), 5.0);
    assert_eq!(f64_cell(r, "fwd_bulk_rate_avg"), 1250.0);
    assert_eq!(f64_cell(r, "bwd_bulk_bytes_avg"), 0.0);
    // Three packets are no bulk.
    let flows = run(
        FlowConfig::default(),
        &(0..3).map(|i| fwd(i * MS, 0, 10)).collect::<Vec<_>>(),
    );
    assert_eq!(f64_cell(&flows[0], "fwd_bulk_packets_avg"), 0.0);
}

#[test]
fn zero_length_flows_have_zero_rates_not_infinity() {
    let flows = run(FlowConfig::default(), &[fwd(0, SYN, 0)]);
    let json = flows[0].to_json();
    for column in [
        "flow_bytes_per_s",
        "flow_packets_per_s",
        "fwd_bulk_rate_avg",
    ] {
        assert_eq!(json[column], serde_json::json!(0.0), "{column}");
    }
    let cells = flows[0].cells();
    assert!(
        cells
            .iter()
            .all(|(_, c)| !matches!(c, Cell::F(v) if !v.is_finite()))
    );
}

#[test]
fn the_fixture_capture_gives_its_five_flows() {
    let packets = netpipe_runtime::capture::sample::sample_packets();
    let (flows, table) = flows_of_packets(&packets, FlowConfig::default());
    let counters = table.counters();
    assert_eq!(counters.skipped_not_ip, 2, "the ARP pair");
    assert_eq!(counters.packets_in_flows, packets.len() as u64 - 2);
    assert_eq!(flows.len(), 5);
    let by_proto = |proto: u8, version: u8| {
        flows
            .iter()
            .find(|r| {
                r.flow.protocol == proto && r.flow.ip_version == version && r.flow.vlan_id == 0
            })
            .unwrap()
    };
    let session = by_proto(6, 4);
    assert_eq!(session.flow.bidirectional.packets, 7);
    assert_eq!(
        (session.flow.src2dst.packets, session.flow.dst2src.packets),
        (4, 3)
    );
    assert_eq!(session.flow.bidirectional.flag("fin"), 2);
    assert_eq!(session.flow.src2dst.flag("syn"), 1);
    let icmp = by_proto(1, 4);
    assert_eq!((icmp.flow.src_port, icmp.flow.dst_port), (0, 0));
    assert_eq!(icmp.flow.bidirectional.packets, 2);
    let dns = by_proto(17, 4);
    assert_eq!((dns.flow.src_port, dns.flow.dst_port), (53_001, 53));
    assert_eq!(by_proto(6, 6).flow.bidirectional.packets, 1);
    let vlan = flows.iter().find(|r| r.flow.vlan_id == 42).unwrap();
    assert_eq!(vlan.flow.protocol, 17);
    let bytes: u64 = flows.iter().map(|r| r.flow.bidirectional.bytes).sum();
    let expected: usize = packets
        .iter()
        .filter(|p| p.data.get(12..14) != Some(&[0x08, 0x06]))
        .map(|p| p.data.len())
        .sum();
    assert_eq!(bytes, expected as u64, "bytes are link-layer wire lengths");
}

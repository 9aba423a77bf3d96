//! Properties of the flow engine on random traffic: every packet is in exactly one flow, no
//! flow outlives its timeouts, the table bound holds with every eviction counted, and a capture
//! split at a flow boundary gives the same flows.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use netpipe_packet::flow::{ExpirationReason, FlowConfig, FlowPacket, FlowRecord, FlowTable};
use netpipe_packet::frame::MacAddr;
use proptest::prelude::*;

const T0: i64 = 1_700_000_000_000_000_000;
const IDLE_MS: i64 = 5_000;
const ACTIVE_MS: i64 = 30_000;

fn config(max_flows: usize) -> FlowConfig {
    FlowConfig {
        idle_timeout_ms: IDLE_MS,
        active_timeout_ms: ACTIVE_MS,
        max_flows,
        ..FlowConfig::default()
    }
}

/// (gap before the packet in µs, host pair and direction, port choice, protocol, size).
type Spec = (i64, u8, u8, u8, u16);

fn packets(specs: &[Spec]) -> Vec<FlowPacket> {
    let mut t = T0;
    specs
        .iter()
        .map(|&(gap_us, hosts, ports, proto, size)| {
            t += gap_us * 1_000;
            let a = hosts % 3;
            let b = (hosts / 3) % 3;
            let v6 = hosts % 5 == 0;
            let addr = |n: u8| {
                if v6 {
                    IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, u16::from(n)))
                } else {
                    IpAddr::V4(Ipv4Addr::new(192, 0, 2, n))
                }
            };
            let protocol = [6u8, 17, 1][usize::from(proto % 3)];
            let (sp, dp) = if protocol == 1 {
                (0, 0)
            } else {
                (1000 + u16::from(ports % 2), 80 + u16::from(ports / 2 % 2))
            };
            FlowPacket {
                ts_ns: t,
                size: u32::from(size) + 60,
                ip_version: if v6 { 6 } else { 4 },
                src_ip: addr(a),
                dst_ip: addr(b),
                src_port: sp,
                dst_port: dp,
                protocol,
                vlan_id: 0,
                src_mac: MacAddr([2, 0, 0, 0, 0, a]),
                dst_mac: MacAddr([2, 0, 0, 0, 0, b]),
                tcp_flags: if protocol == 6 {
                    u16::from(ports) & 0x3f
                } else {
                    0
                },
                tcp_window: (protocol == 6).then_some(512),
                transport_header_len: 20,
                payload_len: u32::from(size),
            }
        })
        .collect()
}

fn run(config: FlowConfig, packets: &[FlowPacket]) -> (Vec<FlowRecord>, FlowTable) {
    let mut table = FlowTable::new(config, 0);
    let mut out = Vec::new();
    for p in packets {
        table.push(p, &mut out);
        assert!(table.len() <= table.config().max_flows);
    }
    table.finish(&mut out);
    (out, table)
}

/// A record without what depends on where the capture was cut (id, why it ended).
fn comparable(record: &FlowRecord) -> String {
    let mut json = record.to_json();
    if let Some(map) = json.as_object_mut() {
        for column in ["id", "expiration_id", "expiration_reason"] {
            map.remove(column);
        }
    }
    json.to_string()
}

fn specs() -> impl Strategy<Value = Vec<Spec>> {
    // Gaps up to 8 s (idle is 5 s), mostly short, so flows both continue and expire.
    let gap = prop_oneof![4 => 0i64..200_000, 1 => 0i64..8_000_000];
    proptest::collection::vec((gap, 0u8..9, any::<u8>(), any::<u8>(), 0u16..1500), 1..300)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(100))]

    #[test]
    fn every_packet_and_byte_is_in_exactly_one_flow(specs in specs(), max_flows in 1usize..6) {
        let packets = packets(&specs);
        let (flows, table) = run(config(max_flows), &packets);
        let counted: u64 = flows.iter().map(|r| r.flow.bidirectional.packets).sum();
        prop_assert_eq!(counted, packets.len() as u64);
        let bytes: u64 = flows.iter().map(|r| r.flow.bidirectional.bytes).sum();
        prop_assert_eq!(bytes, packets.iter().map(|p| u64::from(p.size)).sum::<u64>());
        for r in &flows {
            let f = &r.flow;
            prop_assert_eq!(f.bidirectional.packets, f.src2dst.packets + f.dst2src.packets);
            prop_assert_eq!(f.bidirectional.bytes, f.src2dst.bytes + f.dst2src.bytes);
        }
        let evicted = flows.iter().filter(|r| r.reason == ExpirationReason::Evicted).count();
        prop_assert_eq!(evicted as u64, table.counters().evicted);
        prop_assert_eq!(flows.len() as u64, table.counters().flows_emitted);
    }

    #[test]
    fn no_flow_outlives_its_timeouts(specs in specs()) {
        let (flows, _) = run(config(1_000_000), &packets(&specs));
        for r in &flows {
            let f = &r.flow;
            prop_assert!(f.bidirectional.duration_ms() < ACTIVE_MS, "{}", f.bidirectional.duration_ms());
            if f.bidirectional.packets > 1 {
                prop_assert!((f.bidirectional.piat_ms.max() as i64) < IDLE_MS);
            }
        }
    }

    #[test]
    fn splitting_at_a_flow_boundary_gives_the_same_flows(
        first in specs(),
        second in specs(),
    ) {
        // A quiet gap of the idle timeout between the halves ends every flow of the first.
        let mut all = packets(&first);
        let offset = all.last().map_or(T0, |p| p.ts_ns) + IDLE_MS * 1_000_000 - T0;
        let mut rest = packets(&second);
        for p in &mut rest {
            p.ts_ns += offset;
        }
        all.extend(rest.iter().copied());
        let (whole, _) = run(config(1_000_000), &all);
        let (mut halves, _) = run(config(1_000_000), &all[..first.len()]);
        halves.extend(run(config(1_000_000), &rest).0);
        let mut a: Vec<String> = whole.iter().map(comparable).collect();
        let mut b: Vec<String> = halves.iter().map(comparable).collect();
        a.sort();
        b.sort();
        prop_assert_eq!(a, b);
    }
}

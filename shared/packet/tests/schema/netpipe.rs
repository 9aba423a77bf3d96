//! The netpipe schema (v2; v1 is its prefix) on hand-built frames: exact header, cell values, empty cells for absent
//! layers, RFC 4180 quoting that a CSV reader reads back to the same cells.

use netpipe_packet::schema::{RowContext, by_name};
use netpipe_testkit::samples;

/// The v1 header. Changing it means bumping the schema version (docs/schemas.md).
const NETPIPE_V1_HEADER: &str = "ts,agent,seq,boot,wire_len,cap_len,link,eth_src,eth_dst,eth_type,sll_pkttype,vlan_id,vlan_pcp,vlan_inner_id,arp_op,arp_hwtype,arp_ptype,arp_hwlen,arp_plen,arp_hwsrc,arp_psrc,arp_hwdst,arp_pdst,ip_version,ip_is_fragment,ip_ihl,ip_tos,ip_len,ip_id,ip_flags,ip_frag,ip_ttl,ip_proto,ip_chksum,ip_src,ip_dst,ip_options,ipv6_tc,ipv6_fl,ipv6_plen,ipv6_nh,ipv6_hlim,ipv6_src,ipv6_dst,ipv6_ext,ipv6_frag_id,tcp_sport,tcp_dport,tcp_seq,tcp_ack,tcp_dataofs,tcp_flags,tcp_window,tcp_chksum,tcp_urgptr,tcp_opt_kinds,tcp_opt_mss,tcp_opt_wscale,tcp_opt_sackok,tcp_opt_sack,tcp_opt_ts_val,tcp_opt_ts_ecr,udp_sport,udp_dport,udp_len,udp_chksum,icmp_type,icmp_code,icmp_chksum,icmp_id,icmp_seq,icmp_gw,icmpv6_type,icmpv6_code,icmpv6_chksum,icmpv6_id,icmpv6_seq,dns_id,dns_qr,dns_opcode,dns_aa,dns_tc,dns_rd,dns_ra,dns_z,dns_ad,dns_cd,dns_rcode,dns_qdcount,dns_ancount,dns_nscount,dns_arcount,dns_qname,dns_qtype,dns_qclass,payload_len,payload_hex,payload_capped,padding_len,decode_errors\n";

fn cells_by_name(frame: &netpipe_packet::Frame) -> std::collections::HashMap<&'static str, String> {
    let schema = by_name("netpipe").unwrap();
    schema
        .column_names()
        .into_iter()
        .zip(schema.row_cells(frame, &RowContext { idx: 0 }))
        .collect()
}

/// The columns v2 appends to v1 (issue 18: 802.3 length, LLC/SNAP, MPLS).
const NETPIPE_V2_ADDED: &str = "eth_len,llc_dsap,llc_ssap,llc_control,llc_oui,llc_pid,mpls_label,mpls_tc,mpls_ttl,mpls_inner_label,mpls_depth,icmp_ptr,icmp_unused\n";

#[test]
fn v1_header_stays_selectable_and_v2_only_appends() {
    let v1 = by_name("netpipe-v1").unwrap();
    assert_eq!(v1.version, 1);
    let mut out = Vec::new();
    v1.write_header(&mut out);
    assert_eq!(String::from_utf8(out).unwrap(), NETPIPE_V1_HEADER);

    let v2 = by_name("netpipe").unwrap();
    assert_eq!(v2.version, 2);
    let mut out = Vec::new();
    v2.write_header(&mut out);
    let expected = format!(
        "{},{NETPIPE_V2_ADDED}",
        NETPIPE_V1_HEADER.trim_end_matches('\n')
    );
    assert_eq!(String::from_utf8(out).unwrap(), expected);
    // A v1 row is the v2 row without the appended cells.
    let frame = samples::every_field();
    let ctx = RowContext { idx: 0 };
    let cells = v2.row_cells(&frame, &ctx);
    assert_eq!(v1.row_cells(&frame, &ctx), cells[..v1.columns.len()]);
}

#[test]
fn header_is_the_documented_v1_header() {
    let schema = by_name("netpipe").unwrap();
    // The columns the issue requires, in their required relative order.
    let required = "ts,agent,seq,wire_len,cap_len,eth_src,eth_dst,eth_type,vlan_id,arp_op,arp_hwtype,arp_ptype,arp_hwlen,arp_plen,arp_hwsrc,arp_psrc,arp_hwdst,arp_pdst,ip_version,ip_ihl,ip_tos,ip_len,ip_id,ip_flags,ip_frag,ip_ttl,ip_proto,ip_chksum,ip_src,ip_dst,ipv6_tc,ipv6_fl,ipv6_plen,ipv6_nh,ipv6_hlim,ipv6_src,ipv6_dst,tcp_sport,tcp_dport,tcp_seq,tcp_ack,tcp_dataofs,tcp_flags,tcp_window,tcp_chksum,tcp_urgptr,tcp_opt_mss,tcp_opt_wscale,tcp_opt_sackok,tcp_opt_ts_val,tcp_opt_ts_ecr,udp_sport,udp_dport,udp_len,udp_chksum,icmp_type,icmp_code,icmp_chksum,icmp_id,icmp_seq,icmpv6_type,icmpv6_code,dns_id,dns_qr,dns_opcode,dns_rcode,dns_qdcount,dns_ancount,dns_nscount,dns_arcount,dns_qname,dns_qtype,payload_len,payload_hex";
    let names = schema.column_names();
    let mut it = names.iter();
    for r in required.split(',') {
        assert!(
            it.any(|n| *n == r),
            "required column {r} missing or out of order"
        );
    }
}

#[test]
fn tcp_syn_cells() {
    let c = cells_by_name(&samples::tcp_syn());
    let expect = [
        ("ts", "2018-01-28T23:06:05.123456789Z"),
        ("agent", "agent-1"),
        ("seq", "1"),
        ("boot", "1700000000000000000"),
        ("wire_len", "74"),
        ("cap_len", "74"),
        ("link", "1"),
        ("eth_src", "08:00:27:89:2d:02"),
        ("eth_dst", "52:54:00:12:35:02"),
        ("eth_type", "2048"),
        ("vlan_id", ""),
        ("ip_version", "4"),
        ("ip_is_fragment", "0"),
        ("ip_ihl", "5"),
        ("ip_len", "60"),
        ("ip_id", "7238"),
        ("ip_flags", "2"),
        ("ip_frag", "0"),
        ("ip_ttl", "64"),
        ("ip_proto", "6"),
        ("ip_chksum", "15546"),
        ("ip_src", "10.0.2.15"),
        ("ip_dst", "104.198.143.177"),
        ("ip_options", ""),
        ("ipv6_src", ""),
        ("tcp_sport", "45629"),
        ("tcp_dport", "80"),
        ("tcp_seq", "1653870371"),
        ("tcp_ack", "0"),
        ("tcp_dataofs", "10"),
        ("tcp_flags", "2"),
        ("tcp_window", "29200"),
        ("tcp_chksum", "65072"),
        ("tcp_urgptr", "0"),
        ("tcp_opt_kinds", "2 4 8 1 3"),
        ("tcp_opt_mss", "1460"),
        ("tcp_opt_wscale", "7"),
        ("tcp_opt_sackok", "1"),
        ("tcp_opt_sack", ""),
        ("tcp_opt_ts_val", "252549220"),
        ("tcp_opt_ts_ecr", "0"),
        ("udp_sport", ""),
        ("icmp_type", ""),
        ("dns_id", ""),
        ("dns_qr", ""),
        ("payload_len", ""),
        ("padding_len", ""),
        ("decode_errors", ""),
    ];
    for (name, value) in expect {
        assert_eq!(c[name], value, "column {name}");
    }
}

#[test]
fn other_layers_cells() {
    let c = cells_by_name(&samples::tcp_http_data());
    assert_eq!(c["tcp_opt_sack"], "100-200 300-400");
    assert_eq!(c["tcp_opt_sackok"], "0");
    assert_eq!(c["tcp_opt_mss"], "");
    assert_eq!(c["payload_len"], "17");
    assert_eq!(c["payload_hex"], "485454502f312e3120323030204f4b0d0a");
    assert_eq!(c["payload_capped"], "0");
    assert_eq!(c["padding_len"], "2");

    let c = cells_by_name(&samples::udp_dns());
    for (name, value) in [
        ("udp_dport", "53"),
        ("udp_len", "41"),
        ("udp_chksum", "43981"),
        ("dns_id", "6699"),
        ("dns_qr", "0"),
        ("dns_rd", "1"),
        ("dns_ad", "1"),
        ("dns_qdcount", "1"),
        ("dns_arcount", "1"),
        ("dns_qname", "weird,\"name\".example.com"),
        ("dns_qtype", "1"),
        ("dns_qclass", "1"),
        ("payload_len", "33"),
        ("payload_hex", ""),
        ("tcp_sport", ""),
        ("tcp_opt_sackok", ""),
    ] {
        assert_eq!(c[name], value, "dns column {name}");
    }

    let c = cells_by_name(&samples::icmp_echo());
    for (name, value) in [
        ("icmp_type", "8"),
        ("icmp_code", "0"),
        ("icmp_chksum", "63487"),
        ("icmp_id", "1024"),
        ("icmp_seq", "1"),
        ("icmp_gw", ""),
        ("ip_proto", "1"),
    ] {
        assert_eq!(c[name], value, "icmp column {name}");
    }

    let c = cells_by_name(&samples::arp_request());
    for (name, value) in [
        ("eth_type", "2054"),
        ("eth_dst", "ff:ff:ff:ff:ff:ff"),
        ("arp_op", "1"),
        ("arp_hwtype", "1"),
        ("arp_ptype", "2048"),
        ("arp_hwlen", "6"),
        ("arp_plen", "4"),
        ("arp_hwsrc", "08:00:27:89:2d:02"),
        ("arp_psrc", "10.0.2.15"),
        ("arp_hwdst", "00:00:00:00:00:00"),
        ("arp_pdst", "10.0.2.2"),
        ("ip_version", ""),
        ("ip_is_fragment", ""),
        ("padding_len", "18"),
    ] {
        assert_eq!(c[name], value, "arp column {name}");
    }

    let c = cells_by_name(&samples::ipv6_tcp());
    for (name, value) in [
        ("ip_version", "6"),
        ("ip_len", ""),
        ("ipv6_fl", "74565"),
        ("ipv6_plen", "40"),
        ("ipv6_nh", "6"),
        ("ipv6_hlim", "64"),
        ("ipv6_src", "2001:db8::1"),
        ("ipv6_dst", "fe80::1:2:3:4"),
        ("ipv6_ext", "0"),
        ("ipv6_frag_id", ""),
        ("tcp_opt_kinds", ""),
    ] {
        assert_eq!(c[name], value, "ipv6 column {name}");
    }

    let c = cells_by_name(&samples::every_field());
    for (name, value) in [
        ("eth_type", "2048"), // innermost: after the VLAN tags
        ("vlan_id", "100"),
        ("vlan_pcp", "3"),
        ("vlan_inner_id", "200"),
        ("sll_pkttype", "4"),
        ("ip_options", "94040000"),
        ("icmp_gw", "10.0.0.1"),
        ("icmpv6_type", "128"),
        ("icmpv6_id", "9"),
        ("ipv6_frag_id", "77"),
        ("payload_capped", "1"),
        ("decode_errors", "malformed_dns;fragment"),
        ("eth_len", ""), // a type, not a length
        ("llc_dsap", "170"),
        ("llc_ssap", "170"),
        ("llc_control", "3"),
        ("llc_oui", "0"),
        ("llc_pid", "2048"),
        ("mpls_label", "1000"), // outermost entry, like vlan_id
        ("mpls_tc", "5"),
        ("mpls_ttl", "64"),
        ("mpls_inner_label", "29"),
        ("mpls_depth", "2"),
        ("icmp_ptr", "20"),
        ("icmp_unused", "1500"),
    ] {
        assert_eq!(c[name], value, "every_field column {name}");
    }

    // An 802.3 frame: the length is eth_len, never eth_type (issue 18).
    let mut f = samples::arp_request();
    f.arp = None;
    if let Some(eth) = f.eth.as_mut() {
        eth.ether_type = 361;
    }
    f.llc = Some(netpipe_packet::frame::Llc {
        dsap: 0x42,
        ssap: 0x42,
        control: 3,
        oui: None,
        pid: None,
    });
    let c = cells_by_name(&f);
    for (name, value) in [
        ("eth_type", ""),
        ("eth_len", "361"),
        ("llc_dsap", "66"),
        ("llc_oui", ""),
        ("mpls_label", ""),
        ("mpls_depth", ""),
        ("mpls_inner_label", ""),
    ] {
        assert_eq!(c[name], value, "802.3 column {name}");
    }
}

#[test]
fn csv_lines_read_back_to_the_same_cells() {
    let schema = by_name("netpipe").unwrap();
    let mut out = Vec::new();
    schema.write_header(&mut out);
    let frames = {
        let mut v = samples::typical();
        v.push(samples::every_field());
        let mut odd = samples::tcp_syn();
        odd.agent = "host, with \"quotes\"\r\nand lines".into();
        v.push(odd);
        v
    };
    for (i, f) in frames.iter().enumerate() {
        let before = out.len();
        schema.write_row(f, &RowContext { idx: i as u64 }, &mut out);
        assert_eq!(out.last(), Some(&b'\n'));
        assert!(out.len() > before);
    }
    let mut reader = csv::Reader::from_reader(out.as_slice());
    assert_eq!(reader.headers().unwrap().len(), schema.columns.len());
    let mut n = 0;
    for (i, record) in reader.records().enumerate() {
        let record = record.unwrap();
        let expected = schema.row_cells(&frames[i], &RowContext { idx: i as u64 });
        let got: Vec<&str> = record.iter().collect();
        assert_eq!(got, expected, "row {i}");
        n += 1;
    }
    assert_eq!(n, frames.len());
}

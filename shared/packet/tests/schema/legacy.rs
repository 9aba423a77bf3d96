//! Frame -> original message body (with the original's field shadowing) -> antinex-v1 cells.

use netpipe_packet::schema::antinex::antinex_index;
use netpipe_packet::schema::legacy::{
    antinex_cells_from_message, is_publishable, message_from_frame,
};
use netpipe_packet::schema::{RowContext, by_name};
use netpipe_testkit::samples;
use serde_json::{Value, json};

fn data(frame: &netpipe_packet::Frame) -> Value {
    message_from_frame(frame, "2018-01-28 22:58:16", "localdev")["data"].clone()
}

fn antinex(frame: &netpipe_packet::Frame, idx: u64) -> Vec<String> {
    by_name("antinex-v1")
        .unwrap()
        .row_cells(frame, &RowContext { idx })
}

fn cell<'a>(cells: &'a [String], name: &str) -> &'a str {
    &cells[antinex_index(name).unwrap()]
}

#[test]
fn envelope_has_data_created_source() {
    let msg = message_from_frame(&samples::tcp_syn(), "2018-01-28 22:58:16", "localdev");
    let obj = msg.as_object().unwrap();
    assert_eq!(obj.len(), 3);
    assert_eq!(msg["created"], "2018-01-28 22:58:16");
    assert_eq!(msg["source"], "localdev");
    assert!(is_publishable(&samples::tcp_syn()));
    let mut cooked = samples::tcp_syn();
    cooked.eth = None;
    assert!(!is_publishable(&cooked));
    assert!(data(&cooked).get("ether").is_none());
    assert!(data(&cooked).get("ip").is_some());
}

#[test]
fn syn_is_shadowed_like_the_original() {
    let d = data(&samples::tcp_syn());
    assert_eq!(
        d["ether"],
        json!({"dst": "52:54:00:12:35:02", "src": "08:00:27:89:2d:02", "type": 2048})
    );
    // ip.len = the header checksum; id/flags/ttl/proto/chksum never appear under their names.
    assert_eq!(
        d["ip"],
        json!({"version": 4, "ihl": 5, "tos": 0, "len": 15546, "src": "10.0.2.15", "dst": "104.198.143.177"})
    );
    // tcp.seq = the TCP checksum; TSval only; SAckOK as ""; NOP null.
    assert_eq!(
        d["tcp"],
        json!({"sport": 45629, "dport": 80, "seq": 65072,
               "fields_options": {"NOP": null, "MSS": 1460, "WScale": 7, "SAckOK": "", "Timestamp": 252549220}})
    );
    assert_eq!(d.as_object().unwrap().len(), 3);
}

#[test]
fn shadowing_takes_the_last_non_zero_field() {
    let mut f = samples::tcp_syn();
    let ip = f.ipv4.as_mut().unwrap();
    ip.chksum = 0;
    let tcp = f.tcp.as_mut().unwrap();
    tcp.chksum = 0;
    tcp.window = 0;
    tcp.urgptr = 9;
    let d = data(&f);
    assert_eq!(d["ip"]["len"], 6, "proto is the last non-zero");
    assert_eq!(d["tcp"]["seq"], 2, "flags is the last non-zero");
    assert_eq!(d["tcp"]["fields_urgptr"], 9);

    let mut u = samples::udp_dns();
    u.dns = None; // no DNS layer: plain UDP
    let d = data(&u);
    assert_eq!(d["udp"], json!({"sport": 40000, "dport": 53, "len": 43981}));
    u.udp.as_mut().unwrap().chksum = 0;
    assert_eq!(data(&u)["udp"]["len"], 41);
}

#[test]
fn payload_and_padding_hex_keys() {
    let d = data(&samples::tcp_http_data());
    assert_eq!(
        d["raw"],
        json!({"load": "485454502f312e3120323030204f4b0d0a"})
    );
    assert_eq!(d["padding"], json!({"load": "0000"}));
    assert_eq!(
        d["tcp"]["fields_options"],
        json!({"NOP": null, "SAck": [100, 200, 300, 400]})
    );
    let cells = antinex(&samples::tcp_http_data(), 3);
    assert_eq!(
        cell(&cells, "tcp_fields_options.SAck"),
        "[100, 200, 300, 400]"
    );
    assert_eq!(
        cell(&cells, "raw_load"),
        "485454502f312e3120323030204f4b0d0a"
    );
    assert_eq!(cell(&cells, "pad_load"), "0000");
    assert_eq!(cell(&cells, "raw_hex_field_load"), "");

    let mut f = samples::tcp_http_data();
    f.payload.as_mut().unwrap().hex = None; // payload capture off: no Raw layer
    assert!(data(&f).get("raw").is_none());
}

#[test]
fn icmp_echo_code_is_the_id_and_unused_fields_are_null() {
    let d = data(&samples::icmp_echo());
    assert_eq!(
        d["icmp"],
        json!({"type": 8, "code": 1024, "seq": 1, "ts_ori": null, "ts_rx": null, "ts_tx": null,
               "gw": null, "ptr": null, "addr_mask": null, "unused": null})
    );
    assert_eq!(d["raw"], json!({"hex_field_load": "ff00fe01"}));
    let mut f = samples::icmp_echo();
    f.icmp.as_mut().unwrap().id = Some(0);
    f.payload = None;
    let d = data(&f);
    // id 0 -> code = checksum; no data after seq -> kamene stopped there.
    assert_eq!(d["icmp"], json!({"type": 8, "code": 63487, "seq": 1}));
    let cells = antinex(&samples::icmp_echo(), 0);
    assert_eq!(cell(&cells, "icmp_code"), "1024");
    assert_eq!(cell(&cells, "icmp_type"), "8");
    assert_eq!(cell(&cells, "icmp_seq"), "1");
    assert_eq!(cell(&cells, "icmp_id"), "");
    assert_eq!(cell(&cells, "icmp_gw"), "");
    assert_eq!(cell(&cells, "raw_hex_field_load"), "ff00fe01");
    assert_eq!(cell(&cells, "pad_load"), "0000000000000000000000000000");
}

#[test]
fn icmp_error_quote_is_not_raw() {
    let mut f = samples::icmp_echo();
    let icmp = f.icmp.as_mut().unwrap();
    icmp.icmp_type = 3;
    icmp.code = 3;
    icmp.id = None;
    icmp.seq = None;
    let d = data(&f);
    assert_eq!(
        d["icmp"],
        json!({"type": 3, "code": 63487, "seq": null, "ts_ori": null, "ts_rx": null, "ts_tx": null,
               "gw": null, "ptr": null, "addr_mask": null, "unused": 0})
    );
    assert!(d.get("raw").is_none());
}

#[test]
fn dns_keeps_only_the_class_defaults_and_stops() {
    let mut f = samples::udp_dns();
    f.payload.as_mut().unwrap().hex = Some("00".repeat(33));
    f.padding = samples::tcp_http_data().padding;
    let d = data(&f);
    let dns = d["dns"].as_object().unwrap();
    assert_eq!(dns.len(), 20);
    assert_eq!(dns["default_id"], 0);
    assert_eq!(dns["default_rd"], 0);
    assert_eq!(dns["default_qdcount"], Value::Null);
    assert!(d.get("raw").is_none() && d.get("padding").is_none());
    let cells = antinex(&f, 0);
    assert_eq!(cell(&cells, "dns_default_id"), "0");
    assert_eq!(cell(&cells, "dns_default_qdcount"), "");
    assert_eq!(cell(&cells, "dns_id"), "");
    assert_eq!(cell(&cells, "udp_len"), "43981");
    // Port 5353 (mDNS): kamene did not dissect DNS there, so it is a Raw payload.
    f.udp.as_mut().unwrap().dport = 5353;
    let d = data(&f);
    assert!(d.get("dns").is_none());
    assert_eq!(d["raw"]["load"], "00".repeat(33));
}

#[test]
fn arp_and_vlan() {
    let d = data(&samples::arp_request());
    assert_eq!(
        d["arp"],
        json!({"hwtype": 1, "ptype": 2048, "hwlen": 6, "plen": 4, "op": 1,
               "hwsrc": "08:00:27:89:2d:02", "psrc": "10.0.2.15",
               "hwdst": "00:00:00:00:00:00", "pdst": "10.0.2.2"})
    );
    assert_eq!(d["padding"]["load"], "00".repeat(18));
    let cells = antinex(&samples::arp_request(), 0);
    assert_eq!(cell(&cells, "arp_op"), "1");
    assert_eq!(cell(&cells, "arp_pdst"), "10.0.2.2");
    assert_eq!(cell(&cells, "eth_type"), "2054");

    let d = data(&samples::every_field());
    // Dot1Q: DEI ("id") shadowed into prio; innermost tag wins the shared key; dropped in rows.
    assert_eq!(d["dot1q"], json!({"prio": 0, "vlan": 200, "type": 2048}));
}

#[test]
fn antinex_row_has_the_original_semantics() {
    let schema = by_name("antinex-v1").unwrap();
    let f = samples::tcp_syn();
    let cells = schema.row_cells(&f, &RowContext { idx: 586 });
    for (name, value) in [
        ("idx", "586"),
        ("eth_src", "08:00:27:89:2d:02"),
        ("eth_type", "2048"),
        ("eth_id", ""),
        ("ip_len", "15546"),
        ("ip_id", ""),
        ("ip_ihl", "5"),
        ("ip_tos", "0"),
        ("ip_version", "4"),
        ("ip_src", "10.0.2.15"),
        ("tcp_seq", "65072"),
        ("tcp_sport", "45629"),
        ("tcp_fields_options.MSS", "1460"),
        ("tcp_fields_options.WScale", "7"),
        ("tcp_fields_options.Timestamp", "252549220"),
        ("tcp_fields_options.SAckOK", ""),
        ("tcp_fields_options.NOP", ""),
        ("tcp_id", ""),
        ("ipvsix_id", ""),
        ("udp_len", ""),
        ("raw_load", ""),
    ] {
        assert_eq!(cell(&cells, name), value, "column {name}");
    }
    // The schema path and the message path are the same computation.
    for (i, f) in samples::typical().iter().enumerate() {
        let ctx = RowContext { idx: i as u64 };
        let via_message =
            antinex_cells_from_message(&message_from_frame(f, "x", "y"), &ctx).unwrap();
        assert_eq!(schema.row_cells(f, &ctx), via_message);
    }
    let mut line = Vec::new();
    schema.write_row(&samples::udp_dns(), &RowContext { idx: 0 }, &mut line);
    assert_eq!(
        line.iter().filter(|b| **b == b',').count(),
        schema.columns.len() - 1
    );
}

#[test]
fn ipv6_layer() {
    let d = data(&samples::ipv6_tcp());
    assert_eq!(
        d["ipv6"],
        json!({"version": 6, "tc": 0, "fl": 74565, "plen": 40, "nh": 0, "hlim": 64,
               "src": "2001:db8::1", "dst": "fe80::1:2:3:4"})
    );
    let cells = antinex(&samples::ipv6_tcp(), 0);
    assert_eq!(cell(&cells, "ipv6_nh"), "0");
    assert_eq!(cell(&cells, "ipv6_version"), "6");
    assert_eq!(cell(&cells, "ip_version"), "");
    assert_eq!(
        cell(&cells, "tcp_seq"),
        "1000",
        "window is the last non-zero"
    );
}

// ---- Packets the original dissected further than a Frame's layers (issue 18) ----
//
// Each packet below was built with kamene 0.32 (the scapy fork the original dissected with),
// e.g. `Ether()/IP()/ICMP(type=3, code=3)/IP()/UDP()/Raw(b"hello")`, and its bytes are used
// as they are. The expected cells follow the original's rules (original.md §2.4, §3.3), each
// cited next to its value; running the original's `convert_pkt_to_json` on these bytes under
// kamene gives the same dict (checked while writing this test).

fn decode_hex_packet(hex: &str) -> netpipe_packet::Frame {
    let bytes: Vec<u8> = (0..hex.len() / 2)
        .map(|i| u8::from_str_radix(&hex[i * 2..i * 2 + 2], 16).unwrap())
        .collect();
    let packet = netpipe_runtime::capture::RawPacket {
        ts_ns: 0,
        wire_len: bytes.len() as u32,
        link: netpipe_runtime::capture::LinkType(1),
        data: &bytes,
    };
    let meta = netpipe_packet::decode::FrameMeta {
        agent: std::sync::Arc::from("golden"),
        boot: 1,
        seq: 1,
    };
    // antinex-v1's default payload policy: the whole payload (issue 18).
    let options = netpipe_packet::decode::DecodeOptions {
        payload_bytes: netpipe_packet::decode::payload_bytes_for(None, true),
    };
    netpipe_packet::decode::decode(&packet, &meta, &options)
}

/// Ether / IP 10.0.0.2 > 10.0.0.1 / ICMP port unreachable / IPerror / UDPerror 40000 > 9999 /
/// Raw "hello".
const ICMP_UNREACH_QUOTING_UDP: &str = "66778899aabb00112233445508004500003d002a0000400166940a0000020a0000010303111e00000000450000211c46000040114a840a0000010a0000029c40270f000de4af68656c6c6f";

#[test]
fn golden_icmp_error_quoting_a_udp_datagram() {
    let frame = decode_hex_packet(ICMP_UNREACH_QUOTING_UDP);
    let cells = antinex(&frame, 7);
    for (name, value) in [
        ("idx", "7"),
        // Ether has no shadowed field: its keys are correct (§2.4 "ARP, Ether and IPv6").
        ("eth_dst", "66:77:88:99:aa:bb"),
        ("eth_src", "00:11:22:33:44:55"),
        ("eth_type", "2048"),
        // IP: `len` holds the last non-zero of len/id/flags/frag/ttl/proto/chksum, the header
        // checksum 0x6694 (§2.4 shadowing bug).
        ("ip_version", "4"),
        ("ip_ihl", "5"),
        ("ip_tos", "0"),
        ("ip_len", "26260"),
        ("ip_src", "10.0.0.2"),
        ("ip_dst", "10.0.0.1"),
        // ICMP: `code` holds the last non-zero of code/chksum, the checksum 0x111e (§2.4).
        ("icmp_type", "3"),
        ("icmp_code", "4382"),
        // `unused` applies to type 3 and is 0; the conditional fields that do not apply are
        // null while bytes remain (§2.4 rule 5), and pandas writes null as an empty cell.
        ("icmp_unused", "0"),
        ("icmp_seq", ""),
        ("icmp_gw", ""),
        ("icmp_ptr", ""),
        ("icmp_addr_mask", ""),
        ("icmp_ts_ori", ""),
        // The quoted IP and UDP headers are kamene's IPerror / UDPerror layers, whose keys the
        // processor drops (§2.4 rule 1): no udp_* cells, and ip_* stay the outer header's.
        ("udp_sport", ""),
        ("udp_dport", ""),
        ("udp_len", ""),
        // The Raw layer after UDPerror is kept: "hello" is UTF-8, so `load` = its hex (§2.4).
        ("raw_load", "68656c6c6f"),
        ("raw_hex_field_load", ""),
        ("pad_load", ""),
        ("dns_default_id", ""),
    ] {
        assert_eq!(cell(&cells, name), value, "column {name}");
    }
    // The whole message, as the original published it (the *error layers included).
    let d = data(&frame);
    assert_eq!(d["iperror"]["src"], "10.0.0.1");
    assert_eq!(
        d["iperror"]["len"], 19076,
        "IPerror's checksum 0x4a84, shadowed into len"
    );
    assert_eq!(
        d["udperror"],
        json!({"sport": 40000, "dport": 9999, "len": 58543})
    );
    assert_eq!(d["raw"], json!({"load": "68656c6c6f"}));
}

#[test]
fn golden_icmp_error_quote_variants() {
    let bytes = |hex: &str| -> Vec<u8> {
        (0..hex.len() / 2)
            .map(|i| u8::from_str_radix(&hex[i * 2..i * 2 + 2], 16).unwrap())
            .collect()
    };
    let to_hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
    let base = bytes(ICMP_UNREACH_QUOTING_UDP);
    // Offsets: Ethernet 14 + IP 20 + ICMP 8 = 42 is the quoted IP header; 62 the quoted UDP.
    // Non-UTF-8 quoted payload: Raw stores it under hex_field_load (§2.4 `load` rule).
    let mut non_utf8 = base.clone();
    non_utf8[70] = 0xff;
    non_utf8[71] = 0xfe;
    let cells = antinex(&decode_hex_packet(&to_hex(&non_utf8)), 0);
    assert_eq!(cell(&cells, "raw_load"), "");
    assert_eq!(cell(&cells, "raw_hex_field_load"), "fffe6c6c6f");
    // Quoted IP length 30 (10 bytes after its header): IPerror keeps 10 bytes, UDPerror 8 of
    // them, Raw the next 2; kamene's IP.extract_padding makes the other 3 a Padding layer,
    // which the processor keeps as pad_*.
    let mut short_ip = base.clone();
    short_ip[44] = 0;
    short_ip[45] = 30;
    let cells = antinex(&decode_hex_packet(&to_hex(&short_ip)), 0);
    assert_eq!(cell(&cells, "raw_load"), "6865");
    assert_eq!(cell(&cells, "pad_load"), "6c6c6f");
    // A quote cut inside the quoted IP header (13 bytes): kamene fails IPerror and shows the
    // whole quote as Raw (not UTF-8: byte 0x84, so hex_field_load).
    let cut = &base[..42 + 13];
    let mut cut = cut.to_vec();
    cut[16] = 0;
    cut[17] = 20 + 8 + 13; // outer IP total length
    let cells = antinex(&decode_hex_packet(&to_hex(&cut)), 0);
    assert_eq!(
        cell(&cells, "raw_hex_field_load"),
        "450000211c46000040114a840a"
    );
    // Exactly the quoted IP and UDP headers (the usual 28-byte quote): no Raw at all.
    let mut headers_only = base[..42 + 28].to_vec();
    headers_only[17] = 20 + 8 + 28;
    let cells = antinex(&decode_hex_packet(&to_hex(&headers_only)), 0);
    assert_eq!(cell(&cells, "raw_load"), "");
    assert_eq!(cell(&cells, "raw_hex_field_load"), "");
}

/// Ether / IP 10.0.0.1 > 224.0.0.252 / UDP 50000 > 5355 / LLMNRQuery id=0x1234 qd="wpad".
const LLMNR_QUERY: &str = "01005e0000fc001122334455080045000032007700000111ce470a000001e00000fcc35014eb001e516912340000000100000000000004777061640000010001";

#[test]
fn golden_llmnr_query() {
    let frame = decode_hex_packet(LLMNR_QUERY);
    // The decoder reads LLMNR as DNS, as Wireshark does.
    let dns = frame.dns.as_ref().expect("LLMNR decoded as DNS");
    assert_eq!((dns.id, dns.qdcount), (0x1234, 1));
    assert_eq!(dns.qname.as_deref(), Some("wpad"));
    let cells = antinex(&frame, 0);
    for (name, value) in [
        ("eth_dst", "01:00:5e:00:00:fc"),
        ("eth_type", "2048"),
        // IP: the header checksum 0xce47 in len (§2.4 shadowing bug).
        ("ip_len", "52807"),
        ("ip_dst", "224.0.0.252"),
        // UDP: `len` holds the checksum 0x5169 (§2.4: "udp.len = checksum").
        ("udp_sport", "50000"),
        ("udp_dport", "5355"),
        ("udp_len", "20841"),
        // kamene dissects port 5355 as LLMNRQuery, a layer key the processor drops, and
        // converting its question raised, which ended the walk (§2.4, `qd`): so no dns_*
        // cells and no raw_* cells for the query bytes.
        ("dns_default_id", ""),
        ("dns_id", ""),
        ("raw_load", ""),
        ("raw_hex_field_load", ""),
    ] {
        assert_eq!(cell(&cells, name), value, "column {name}");
    }
    let d = data(&frame);
    let llmnr = d["llmnrquery"].as_object().expect("llmnrquery layer");
    assert_eq!(llmnr.len(), 15);
    assert_eq!(llmnr["default_c"], 0);
    assert_eq!(llmnr["default_qd"], Value::Null);
    assert!(d.get("raw").is_none() && d.get("dns").is_none());
}

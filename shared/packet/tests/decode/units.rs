//! Targeted decoder checks on hand-made byte vectors: link types, layer edge cases and
//! every `DecodeIssue`. Crash inputs found by fuzzing are added at the bottom.

use crate::decode_support;

use decode_support::{decode_bytes, decode_cut};
use etherparse::PacketBuilder;
use netpipe_packet::decode::DecodeOptions;
use netpipe_packet::frame::{DecodeIssue, Frame};

const OFF: DecodeOptions = DecodeOptions { payload_bytes: 0 };
const ON: DecodeOptions = DecodeOptions { payload_bytes: 64 };

fn ipv4_udp(sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    PacketBuilder::ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64)
        .udp(sport, dport)
        .write(&mut out, payload)
        .expect("write");
    out
}

fn ipv6_udp(payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    PacketBuilder::ipv6([1; 16], [2; 16], 64)
        .udp(1000, 2000)
        .write(&mut out, payload)
        .expect("write");
    out
}

fn ipv4_tcp_raw_options(options: &[u8], payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    PacketBuilder::ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64)
        .tcp(1234, 80, 1, 1000)
        .options_raw(options)
        .expect("options")
        .write(&mut out, payload)
        .expect("write");
    out
}

fn ethernet(ether_type: u16, body: &[u8]) -> Vec<u8> {
    let mut out = vec![0xaa; 6];
    out.extend_from_slice(&[0xbb; 6]);
    out.extend_from_slice(&ether_type.to_be_bytes());
    out.extend_from_slice(body);
    out
}

fn issues(frame: &Frame) -> &[DecodeIssue] {
    &frame.errors
}

#[test]
fn null_loopback_accepts_both_byte_orders_and_loop_is_big_endian() {
    let ip = ipv4_udp(1, 2, b"x");
    for family in [2u32.to_le_bytes(), 2u32.to_be_bytes()] {
        let mut packet = family.to_vec();
        packet.extend_from_slice(&ip);
        let frame = decode_bytes(0, &packet, &OFF);
        assert!(frame.ipv4.is_some(), "{frame:?}");
        assert!(frame.errors.is_empty());
    }
    let v6 = ipv6_udp(b"y");
    for family in [24u32, 28, 30] {
        let mut packet = family.to_be_bytes().to_vec();
        packet.extend_from_slice(&v6);
        assert!(
            decode_bytes(108, &packet, &OFF).ipv6.is_some(),
            "AF {family}"
        );
    }
    // LOOP is always network order: a little-endian 2 is not AF_INET.
    let mut packet = 2u32.to_le_bytes().to_vec();
    packet.extend_from_slice(&ip);
    assert_eq!(
        issues(&decode_bytes(108, &packet, &OFF)),
        [DecodeIssue::UnsupportedEtherType]
    );
    assert_eq!(
        issues(&decode_bytes(0, &[2, 0], &OFF)),
        [DecodeIssue::TruncatedLink]
    );
}

#[test]
fn linux_sll_v1_and_v2_headers() {
    let ip = ipv4_udp(5, 6, b"");
    let mut sll = vec![0, 4, 0, 1, 0, 6, 1, 2, 3, 4, 5, 6, 0, 0, 0x08, 0x00];
    sll.extend_from_slice(&ip);
    let frame = decode_bytes(113, &sll, &OFF);
    let header = frame.sll.as_ref().expect("sll");
    assert_eq!((header.version, header.pkttype, header.hatype), (1, 4, 1));
    assert_eq!(
        (header.addr.as_str(), header.protocol),
        ("010203040506", 0x0800)
    );
    assert_eq!(header.ifindex, None);
    assert_eq!(frame.inner_ether_type(), Some(0x0800));
    assert_eq!(frame.udp.map(|u| u.dport), Some(6));

    let mut sll2 = vec![
        0x86, 0xdd, 0, 0, 0, 0, 0, 7, 0, 1, 3, 6, 9, 8, 7, 6, 5, 4, 0, 0,
    ];
    sll2.extend_from_slice(&ipv6_udp(b"z"));
    let frame = decode_bytes(276, &sll2, &OFF);
    let header = frame.sll.as_ref().expect("sll2");
    assert_eq!(
        (header.version, header.pkttype, header.ifindex),
        (2, 3, Some(7))
    );
    assert_eq!(header.addr, "090807060504");
    assert!(frame.ipv6.is_some() && frame.udp.is_some());

    assert_eq!(
        issues(&decode_bytes(276, &sll2[..19], &OFF)),
        [DecodeIssue::TruncatedLink]
    );
    assert_eq!(
        issues(&decode_bytes(113, &sll[..15], &OFF)),
        [DecodeIssue::TruncatedLink]
    );
}

#[test]
fn raw_ip_link_types() {
    let v4 = ipv4_udp(1, 2, b"abc");
    let v6 = ipv6_udp(b"abc");
    for link in [12, 14, 101] {
        assert!(decode_bytes(link, &v4, &OFF).ipv4.is_some());
        assert!(decode_bytes(link, &v6, &OFF).ipv6.is_some());
    }
    assert!(decode_bytes(228, &v4, &OFF).ipv4.is_some());
    assert!(decode_bytes(229, &v6, &OFF).ipv6.is_some());
    // The link type wins over the version nibble.
    assert_eq!(
        issues(&decode_bytes(228, &v6, &OFF)),
        [DecodeIssue::MalformedIp]
    );
    assert_eq!(
        issues(&decode_bytes(229, &v4, &OFF)),
        [DecodeIssue::MalformedIp]
    );
    assert_eq!(
        issues(&decode_bytes(101, &[0x50], &OFF)),
        [DecodeIssue::MalformedIp]
    );
    assert_eq!(
        issues(&decode_bytes(101, &[], &OFF)),
        [DecodeIssue::TruncatedIp]
    );
    assert_eq!(
        issues(&decode_bytes(101, &v4[..19], &OFF)),
        [DecodeIssue::TruncatedIp]
    );
    assert_eq!(
        issues(&decode_bytes(1, &[0; 13], &OFF)),
        [DecodeIssue::TruncatedLink]
    );
    assert_eq!(
        issues(&decode_bytes(147, &v4, &OFF)),
        [DecodeIssue::UnsupportedEtherType]
    );
}

#[test]
fn vlan_tags_any_tpid_any_depth() {
    let ip = ipv4_udp(1, 2, b"");
    let mut body = vec![0x20, 0x0a, 0x88, 0xa8]; // outer 0x9100 tag: pcp 1, id 10
    body.extend_from_slice(&[0xf0, 0x14, 0x81, 0x00]); // 0x88a8 tag: pcp 7, dei, id 20
    body.extend_from_slice(&[0x00, 0x1e, 0x08, 0x00]); // 0x8100 tag: id 30, then IPv4
    body.extend_from_slice(&ip);
    let frame = decode_bytes(1, &ethernet(0x9100, &body), &OFF);
    let tags: Vec<_> = frame
        .vlan
        .iter()
        .map(|t| (t.tpid, t.id, t.pcp, t.dei, t.ether_type))
        .collect();
    assert_eq!(
        tags,
        vec![
            (0x9100, 10, 1, false, 0x88a8),
            (0x88a8, 20, 7, true, 0x8100),
            (0x8100, 30, 0, false, 0x0800)
        ]
    );
    assert!(frame.udp.is_some());
    let frame = decode_bytes(1, &ethernet(0x8100, &[0, 1, 0x08]), &OFF);
    assert_eq!(issues(&frame), [DecodeIssue::TruncatedVlan]);
    assert!(frame.eth.is_some());
}

#[test]
fn arp_addresses_are_text_for_ethernet_ipv4_and_hex_otherwise() {
    let mut arp = vec![0, 1, 8, 0, 6, 4, 0, 2];
    arp.extend_from_slice(&[1, 2, 3, 4, 5, 6, 192, 168, 0, 1]);
    arp.extend_from_slice(&[7, 8, 9, 10, 11, 12, 10, 0, 0, 9]);
    arp.extend_from_slice(&[0; 4]); // padding
    let frame = decode_bytes(1, &ethernet(0x0806, &arp), &ON);
    let a = frame.arp.as_ref().expect("arp");
    assert_eq!(a.op, 2);
    assert_eq!(
        (a.hwsrc.as_str(), a.psrc.as_str()),
        ("01:02:03:04:05:06", "192.168.0.1")
    );
    assert_eq!(
        (a.hwdst.as_str(), a.pdst.as_str()),
        ("07:08:09:0a:0b:0c", "10.0.0.9")
    );
    let padding = frame.padding.as_ref().expect("padding");
    assert_eq!((padding.len, padding.hex.as_deref()), (4, Some("00000000")));

    // IEEE 802 hardware with a 2-byte protocol address: hex.
    let other = [
        0, 6, 0x12, 0x34, 2, 2, 0, 1, 0xaa, 0xbb, 0x01, 0x02, 0xcc, 0xdd, 0x03, 0x04,
    ];
    let frame = decode_bytes(1, &ethernet(0x0806, &other), &OFF);
    let a = frame.arp.as_ref().expect("arp");
    assert_eq!(
        [&a.hwsrc, &a.psrc, &a.hwdst, &a.pdst].map(String::as_str),
        ["aabb", "0102", "ccdd", "0304"]
    );
    let frame = decode_bytes(1, &ethernet(0x0806, &other[..15]), &OFF);
    assert_eq!(issues(&frame), [DecodeIssue::MalformedArp]);
    assert!(frame.arp.is_none());
}

#[test]
fn ethernet_padding_is_not_payload() {
    let mut ip = ipv4_udp(1000, 2000, b"hi");
    ip.extend_from_slice(&[0xee; 16]);
    let frame = decode_bytes(1, &ethernet(0x0800, &ip), &ON);
    let payload = frame.payload.as_ref().expect("payload");
    assert_eq!((payload.len, payload.hex.as_deref()), (2, Some("6869")));
    let padding = frame.padding.as_ref().expect("padding");
    assert_eq!(padding.len, 16);
    assert_eq!(padding.hex.as_deref(), Some("ee".repeat(16).as_str()));

    // Payload capture off: lengths, no hex.
    let frame = decode_bytes(1, &ethernet(0x0800, &ip), &OFF);
    assert_eq!(
        frame.payload.as_ref().map(|p| (p.len, p.hex.is_none())),
        Some((2, true))
    );
    assert_eq!(
        frame.padding.as_ref().map(|p| (p.len, p.hex.is_none())),
        Some((16, true))
    );
}

#[test]
fn payload_hex_is_capped() {
    let body: Vec<u8> = (0..100).collect();
    let frame = decode_bytes(
        101,
        &ipv4_udp(1, 2, &body),
        &DecodeOptions { payload_bytes: 4 },
    );
    let payload = frame.payload.expect("payload");
    assert_eq!(
        (payload.len, payload.hex.as_deref(), payload.capped),
        (100, Some("00010203"), true)
    );
}

#[test]
fn ipv4_options_and_length_problems() {
    let mut ip = ipv4_udp(1, 2, b"");
    // Rebuild with a 4-byte option (router alert): IHL 6.
    ip.splice(20..20, [0x94, 0x04, 0x00, 0x00]);
    ip[0] = 0x46;
    let total = ip.len() as u16;
    ip[2..4].copy_from_slice(&total.to_be_bytes());
    let frame = decode_bytes(101, &ip, &OFF);
    let v4 = frame.ipv4.as_ref().expect("ipv4");
    assert_eq!((v4.ihl, v4.options.as_deref()), (6, Some("94040000")));
    assert!(frame.udp.is_some());

    // Total length below the header length.
    let mut bad = ipv4_udp(1, 2, b"");
    bad[2..4].copy_from_slice(&10u16.to_be_bytes());
    assert!(issues(&decode_bytes(101, &bad, &OFF)).contains(&DecodeIssue::MalformedIp));
    // IHL below 5.
    bad[0] = 0x44;
    assert_eq!(
        issues(&decode_bytes(101, &bad, &OFF)),
        [DecodeIssue::MalformedIp]
    );

    // Total length beyond a complete capture is a lie; beyond a snaplen cut it is not.
    let mut long = ipv4_udp(1, 2, b"abcd");
    long[2..4].copy_from_slice(&500u16.to_be_bytes());
    assert!(issues(&decode_bytes(101, &long, &OFF)).contains(&DecodeIssue::MalformedIp));
    let packet = netpipe_runtime::capture::RawPacket {
        ts_ns: 0,
        wire_len: 500,
        link: netpipe_runtime::capture::LinkType::RAW,
        data: &long,
    };
    let frame = netpipe_packet::decode::decode(&packet, &decode_support::meta(), &OFF);
    assert!(frame.errors.is_empty(), "{:?}", frame.errors);
    assert_eq!(frame.payload.map(|p| p.len), Some(4));
}

#[test]
fn ipv4_later_fragments_have_no_transport() {
    let mut ip = ipv4_udp(1, 2, b"12345678");
    ip[6..8].copy_from_slice(&(0x2000u16 | 3).to_be_bytes()); // MF, offset 3
    let frame = decode_bytes(101, &ip, &OFF);
    assert_eq!(issues(&frame), [DecodeIssue::Fragment]);
    assert!(frame.udp.is_none());
    assert!(frame.is_fragment());
    assert_eq!(frame.ipv4.as_ref().map(|i| (i.flags, i.frag)), Some((1, 3)));
    assert_eq!(frame.payload.map(|p| p.len), Some(16));
}

#[test]
fn ipv6_extension_problems() {
    // Hop-by-hop (8 bytes) then a routing header claiming 24 bytes with only 8 present.
    let mut packet = ipv6_udp(b"");
    packet[6] = 0; // next header: hop-by-hop
    let body = [43, 0, 0, 0, 0, 0, 0, 0, 17, 2, 0, 0, 0, 0, 0, 0];
    packet.truncate(40);
    packet.extend_from_slice(&body);
    let plen = body.len() as u16;
    packet[4..6].copy_from_slice(&plen.to_be_bytes());
    let frame = decode_bytes(101, &packet, &OFF);
    assert_eq!(issues(&frame), [DecodeIssue::MalformedIpv6Ext]);
    let ip = frame.ipv6.as_ref().expect("ipv6");
    assert_eq!((ip.ext.as_slice(), ip.upper), (&[0u8][..], 43));

    // Fragment header with a non-zero offset.
    let mut packet = ipv6_udp(b"");
    packet.truncate(40);
    packet[6] = 44;
    packet.extend_from_slice(&[17, 0, 0, 0x19, 0, 0, 0, 9]); // offset 3, M=1, id 9
    packet.extend_from_slice(&[1; 8]);
    packet[4..6].copy_from_slice(&16u16.to_be_bytes());
    let frame = decode_bytes(101, &packet, &OFF);
    assert_eq!(issues(&frame), [DecodeIssue::Fragment]);
    let frag = frame.ipv6.as_ref().and_then(|i| i.frag).expect("frag");
    assert_eq!((frag.offset, frag.more, frag.id), (3, true, 9));
    assert!(frame.udp.is_none());
    assert_eq!(frame.payload.map(|p| p.len), Some(8));

    // Unknown upper layer.
    let mut packet = ipv6_udp(b"");
    packet[6] = 132; // SCTP
    assert_eq!(
        issues(&decode_bytes(101, &packet, &OFF)),
        [DecodeIssue::UnsupportedIpProto]
    );
    // No next header is not a problem.
    packet[6] = 59;
    assert!(decode_bytes(101, &packet, &OFF).errors.is_empty());
}

#[test]
fn icmp_type_specific_fields() {
    let icmp = |bytes: &[u8]| {
        let mut out = Vec::new();
        PacketBuilder::ipv4([1, 1, 1, 1], [2, 2, 2, 2], 9)
            .icmpv4_raw(bytes[0], bytes[1], [bytes[4], bytes[5], bytes[6], bytes[7]])
            .write(&mut out, &bytes[8..])
            .expect("write");
        decode_bytes(101, &out, &OFF)
    };
    let frame = icmp(&[5, 1, 0, 0, 192, 168, 1, 254]);
    let i = frame.icmp.expect("icmp");
    assert_eq!((i.icmp_type, i.code), (5, 1));
    assert_eq!(
        i.gw.map(|g| g.to_string()).as_deref(),
        Some("192.168.1.254")
    );
    assert_eq!((i.id, i.seq), (None, None));
    for icmp_type in [0, 8, 13, 14, 15, 16, 17, 18] {
        let i = icmp(&[icmp_type, 0, 0, 0, 0, 7, 0, 9]).icmp.expect("icmp");
        assert_eq!(
            (i.id, i.seq, i.gw),
            (Some(7), Some(9), None),
            "type {icmp_type}"
        );
    }
    // Time exceeded: the quoted datagram is payload, not layers of this packet.
    let frame = icmp(&[11, 0, 0, 0, 0, 0, 0, 0, 0x45, 0, 0, 28]);
    assert_eq!(frame.icmp.map(|i| (i.id, i.gw)), Some((None, None)));
    assert_eq!(frame.payload.map(|p| p.len), Some(4));

    let mut v6 = Vec::new();
    PacketBuilder::ipv6([1; 16], [2; 16], 1)
        .icmpv6_echo_reply(77, 88)
        .write(&mut v6, b"")
        .expect("write");
    let i = decode_bytes(101, &v6, &OFF).icmpv6.expect("icmpv6");
    assert_eq!((i.icmp_type, i.id, i.seq), (129, Some(77), Some(88)));

    // Four bytes of ICMP: type/code/checksum kept, id/seq missing.
    let mut short = ipv4_udp(1, 2, b"");
    short[9] = 1;
    short.truncate(24);
    short[2..4].copy_from_slice(&24u16.to_be_bytes());
    short[20..24].copy_from_slice(&[8, 0, 0xab, 0xcd]);
    let frame = decode_cut(101, &short, &OFF);
    assert_eq!(issues(&frame), [DecodeIssue::TruncatedTransport]);
    assert_eq!(
        frame.icmp.map(|i| (i.icmp_type, i.chksum, i.id)),
        Some((8, 0xabcd, None))
    );
}

#[test]
fn tcp_flags_include_ns_and_bad_offsets_are_reported() {
    let mut packet = ipv4_tcp_raw_options(&[], b"");
    packet[32] |= 1; // NS
    packet[33] = 0xff;
    let tcp = decode_bytes(101, &packet, &OFF).tcp.expect("tcp");
    assert_eq!(tcp.flags, 0x1ff);

    packet[32] = 0x40; // data offset 4
    let frame = decode_bytes(101, &packet, &OFF);
    assert_eq!(issues(&frame), [DecodeIssue::MalformedTransport]);
    assert_eq!(frame.tcp.map(|t| t.dataofs), Some(4));

    let frame = decode_cut(101, &packet[..30], &OFF);
    assert_eq!(issues(&frame), [DecodeIssue::TruncatedTransport]);
    assert!(frame.tcp.is_none());
}

#[test]
fn tcp_options_keep_what_parsed_before_a_bad_one() {
    // MSS, NOP, an unknown kind 30 (len 4), then a SACK with an impossible length 1.
    let options = [2, 4, 5, 0xb4, 1, 30, 4, 0xde, 0xad, 5, 1, 0];
    let frame = decode_bytes(101, &ipv4_tcp_raw_options(&options, b""), &OFF);
    assert_eq!(issues(&frame), [DecodeIssue::MalformedTcpOption]);
    let opts = frame.tcp.expect("tcp").opts;
    assert_eq!(opts.mss, Some(1460));
    assert_eq!(opts.kinds, vec![2, 1, 30, 5]);

    // Timestamps running past the header end.
    let options = [1, 1, 8, 10, 0, 0, 0, 1];
    let frame = decode_bytes(101, &ipv4_tcp_raw_options(&options, b""), &OFF);
    assert_eq!(issues(&frame), [DecodeIssue::MalformedTcpOption]);
    assert_eq!(frame.tcp.expect("tcp").opts.ts_val, None);

    // Wrong length for a known kind (window scale with 4 bytes) is malformed, parsing goes on.
    let options = [3, 4, 7, 7, 4, 2, 1, 0];
    let frame = decode_bytes(101, &ipv4_tcp_raw_options(&options, b""), &OFF);
    assert_eq!(issues(&frame), [DecodeIssue::MalformedTcpOption]);
    let opts = frame.tcp.expect("tcp").opts;
    assert_eq!((opts.wscale, opts.sackok), (None, true));
    assert_eq!(opts.kinds, vec![3, 4, 1, 0]);
}

fn dns_query(name_wire: &[u8]) -> Vec<u8> {
    let mut msg = vec![0x12, 0x34, 0x01, 0x20, 0, 1, 0, 0, 0, 0, 0, 1];
    msg.extend_from_slice(name_wire);
    msg.extend_from_slice(&[0, 28, 0, 1]);
    msg
}

#[test]
fn dns_header_and_first_question() {
    let msg = dns_query(b"\x03www\x07example\x03com\x00");
    let frame = decode_bytes(101, &ipv4_udp(40000, 53, &msg), &OFF);
    assert!(frame.errors.is_empty(), "{:?}", frame.errors);
    let dns = frame.dns.expect("dns");
    assert_eq!(dns.id, 0x1234);
    assert!(!dns.qr && dns.rd && dns.ad && !dns.cd);
    assert_eq!((dns.qdcount, dns.arcount), (1, 1));
    assert_eq!(dns.qname.as_deref(), Some("www.example.com"));
    assert_eq!((dns.qtype, dns.qclass), (Some(28), Some(1)));

    // mDNS port, root name.
    let frame = decode_bytes(101, &ipv4_udp(5353, 5353, &dns_query(b"\x00")), &OFF);
    assert_eq!(frame.dns.and_then(|d| d.qname).as_deref(), Some("."));

    // Non-printable bytes, dots and backslashes inside labels are escaped.
    let frame = decode_bytes(
        101,
        &ipv4_udp(53, 9, &dns_query(b"\x04a.b\x01\x01\\\x00")),
        &OFF,
    );
    assert_eq!(
        frame.dns.and_then(|d| d.qname).as_deref(),
        Some("a\\.b\\001.\\\\")
    );

    // A backwards compression pointer is followed; a self pointer is malformed.
    let mut msg = dns_query(b"\x03abc\x00");
    msg[5] = 2; // two questions: the second is a pointer to the first name
    msg.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1]);
    let frame = decode_bytes(101, &ipv4_udp(53, 9, &msg), &OFF);
    assert!(frame.errors.is_empty());
    let frame = decode_bytes(101, &ipv4_udp(53, 9, &dns_query(b"\xc0\x0c")), &OFF);
    assert_eq!(issues(&frame), [DecodeIssue::MalformedDns]);
    let dns = frame.dns.expect("header kept");
    assert_eq!((dns.id, dns.qname), (0x1234, None));

    // A name longer than 255 bytes on the wire.
    let mut long = Vec::new();
    for _ in 0..5 {
        long.push(63);
        long.extend_from_slice(&[b'a'; 63]);
    }
    long.push(0);
    let frame = decode_bytes(101, &ipv4_udp(53, 9, &dns_query(&long)), &OFF);
    assert_eq!(issues(&frame), [DecodeIssue::MalformedDns]);

    // Shorter than a header.
    let frame = decode_bytes(101, &ipv4_udp(53, 9, &[1, 2, 3]), &OFF);
    assert_eq!(issues(&frame), [DecodeIssue::MalformedDns]);
    assert!(frame.dns.is_none());
    // Not on a DNS port: not DNS.
    assert!(
        decode_bytes(101, &ipv4_udp(54, 9, &msg), &OFF)
            .dns
            .is_none()
    );
}

#[test]
fn dns_over_tcp_skips_the_length_prefix() {
    let msg = dns_query(b"\x02ns\x00");
    let mut framed = (msg.len() as u16).to_be_bytes().to_vec();
    framed.extend_from_slice(&msg);
    let mut packet = Vec::new();
    PacketBuilder::ipv4([1; 4], [2; 4], 5)
        .tcp(53, 40000, 7, 100)
        .write(&mut packet, &framed)
        .expect("write");
    let frame = decode_bytes(101, &packet, &OFF);
    assert!(frame.errors.is_empty(), "{:?}", frame.errors);
    assert_eq!(frame.dns.and_then(|d| d.qname).as_deref(), Some("ns"));
    assert_eq!(frame.payload.map(|p| p.len as usize), Some(framed.len()));
}

#[test]
fn udp_length_problems() {
    let mut packet = ipv4_udp(1, 2, b"abcdef");
    packet[24..26].copy_from_slice(&4u16.to_be_bytes());
    assert_eq!(
        issues(&decode_bytes(101, &packet, &OFF)),
        [DecodeIssue::MalformedTransport]
    );
    packet[24..26].copy_from_slice(&400u16.to_be_bytes());
    assert_eq!(
        issues(&decode_bytes(101, &packet, &OFF)),
        [DecodeIssue::MalformedTransport]
    );
    let frame = decode_cut(101, &packet[..25], &OFF);
    assert_eq!(issues(&frame), [DecodeIssue::TruncatedTransport]);
    assert!(frame.udp.is_none());
}

// ---- Issue 18: LLMNR, 802.3/LLC, MPLS ----

#[test]
fn llmnr_is_dns_like_wireshark_reads_it() {
    // Query for "wpad", id 0x1234, one question, type A, class IN.
    let mut query = vec![0x12, 0x34, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0];
    query.extend_from_slice(b"\x04wpad\x00\x00\x01\x00\x01");
    for (sport, dport) in [(50_000, 5355), (5355, 50_000)] {
        let frame = decode_bytes(101, &ipv4_udp(sport, dport, &query), &OFF);
        let dns = frame.dns.as_ref().expect("LLMNR decoded as DNS");
        assert_eq!((dns.id, dns.qdcount, dns.qtype), (0x1234, 1, Some(1)));
        assert_eq!(dns.qname.as_deref(), Some("wpad"));
        assert!(frame.errors.is_empty(), "{:?}", frame.errors);
    }
    // Other ports stay plain UDP.
    assert!(
        decode_bytes(101, &ipv4_udp(50_000, 5356, &query), &OFF)
            .dns
            .is_none()
    );
}

/// 802.3 header: MACs and a length, then `body` (the LLC data), then `trailer`.
fn ieee8023(len: u16, body: &[u8], trailer: &[u8]) -> Vec<u8> {
    let mut out = ethernet(len, body);
    out.extend_from_slice(trailer);
    out
}

#[test]
fn ieee8023_length_is_not_an_ether_type_and_llc_is_decoded() {
    // STP BPDU: DSAP/SSAP 0x42, U-format control 0x03, 35 bytes of BPDU; 7 bytes of padding.
    let mut body = vec![0x42, 0x42, 0x03];
    body.extend_from_slice(&[0; 35]);
    let frame = decode_bytes(1, &ieee8023(38, &body, &[0; 7]), &ON);
    assert!(frame.errors.is_empty(), "{:?}", frame.errors);
    assert_eq!(frame.eth.map(|e| e.ether_type), Some(38));
    assert_eq!(
        frame.inner_ether_type(),
        None,
        "a length is not an EtherType"
    );
    assert_eq!(frame.ieee8023_len(), Some(38));
    let llc = frame.llc.expect("LLC");
    assert_eq!((llc.dsap, llc.ssap, llc.control), (0x42, 0x42, 3));
    assert_eq!((llc.oui, llc.pid), (None, None));
    assert_eq!(frame.payload.as_ref().map(|p| p.len), Some(35));
    assert_eq!(frame.padding.as_ref().map(|p| p.len), Some(7));

    // I-format control: two bytes, shown little-endian as Wireshark does.
    let frame = decode_bytes(1, &ieee8023(6, &[0xf0, 0xf0, 0x02, 0x01, 9, 9], &[]), &OFF);
    assert_eq!(frame.llc.map(|l| l.control), Some(0x0102));
    assert_eq!(frame.payload.as_ref().map(|p| p.len), Some(2));
}

#[test]
fn snap_with_oui_zero_carries_an_ether_type() {
    let ip = ipv4_udp(1, 2, b"hi");
    let mut body = vec![0xaa, 0xaa, 0x03, 0, 0, 0, 0x08, 0x00];
    body.extend_from_slice(&ip);
    let frame = decode_bytes(1, &ieee8023(body.len() as u16, &body, &[]), &OFF);
    let llc = frame.llc.expect("LLC");
    assert_eq!((llc.oui, llc.pid), (Some(0), Some(0x0800)));
    assert_eq!(frame.udp.map(|u| u.dport), Some(2));
    assert!(frame.errors.is_empty(), "{:?}", frame.errors);

    // Cisco's OUI (CDP): SNAP decoded, the rest is payload.
    let body = [0xaa, 0xaa, 0x03, 0, 0, 0x0c, 0x20, 0x00, 1, 2, 3];
    let frame = decode_bytes(1, &ieee8023(11, &body, &[]), &OFF);
    assert_eq!(frame.llc.and_then(|l| l.oui), Some(0x0c));
    assert_eq!(frame.llc.and_then(|l| l.pid), Some(0x2000));
    assert_eq!(frame.payload.as_ref().map(|p| p.len), Some(3));
}

#[test]
fn bad_llc_is_a_clear_issue_not_a_panic() {
    // Length larger than the frame, LLC cut after one byte, SNAP cut short.
    for (len, body) in [
        (100u16, vec![0x42, 0x42, 0x03]),
        (1, vec![0x42]),
        (5, vec![0xaa, 0xaa, 0x03, 0, 0]),
        (0, vec![]),
    ] {
        let frame = decode_bytes(1, &ieee8023(len, &body, &[]), &ON);
        assert!(
            frame.errors.contains(&DecodeIssue::TruncatedLink),
            "len {len}: {:?}",
            frame.errors
        );
        assert_eq!(frame.inner_ether_type(), None);
    }
    // A VLAN tag followed by a length: LLC after the tag.
    let mut tagged = 118u16.to_be_bytes().to_vec();
    tagged.extend_from_slice(&6u16.to_be_bytes());
    tagged.extend_from_slice(&[0xf0, 0xf0, 0x03, 1, 2, 3]);
    let frame = decode_bytes(1, &ethernet(0x8100, &tagged), &OFF);
    assert_eq!(frame.vlan.len(), 1);
    assert_eq!(frame.llc.map(|l| l.dsap), Some(0xf0));
    assert_eq!(frame.ieee8023_len(), Some(6));
    assert_eq!(frame.inner_ether_type(), None);
}

fn mpls_entry(label: u32, tc: u8, bottom: bool, ttl: u8) -> [u8; 4] {
    ((label << 12) | (u32::from(tc) << 9) | (u32::from(bottom) << 8) | u32::from(ttl)).to_be_bytes()
}

#[test]
fn mpls_label_stack_then_ip() {
    let mut body = mpls_entry(1000, 5, false, 64).to_vec();
    body.extend_from_slice(&mpls_entry(29, 6, true, 255));
    body.extend_from_slice(&ipv4_udp(7, 8, b"x"));
    let frame = decode_bytes(1, &ethernet(0x8847, &body), &OFF);
    assert!(frame.errors.is_empty(), "{:?}", frame.errors);
    let stack: Vec<_> = frame
        .mpls
        .iter()
        .map(|m| (m.label, m.tc, m.bottom, m.ttl))
        .collect();
    assert_eq!(stack, [(1000, 5, false, 64), (29, 6, true, 255)]);
    assert_eq!(frame.udp.map(|u| u.sport), Some(7));
    assert_eq!(frame.inner_ether_type(), Some(0x8847));

    // IPv6 by version nibble; multicast MPLS (0x8848); the explicit-null label says IPv6 even
    // when the nibble is wrong (then the IPv6 decoder reports it).
    let mut body = mpls_entry(16, 0, true, 1).to_vec();
    body.extend_from_slice(&ipv6_udp(b"y"));
    let frame = decode_bytes(1, &ethernet(0x8848, &body), &OFF);
    assert!(frame.ipv6.is_some() && frame.errors.is_empty());
    let mut body = mpls_entry(2, 0, true, 1).to_vec();
    body.extend_from_slice(&ipv4_udp(1, 2, b"z"));
    let frame = decode_bytes(1, &ethernet(0x8847, &body), &OFF);
    assert_eq!(frame.errors, [DecodeIssue::MalformedIp]);
}

#[test]
fn mpls_edge_cases_are_counted_not_guessed() {
    // A pseudowire (first nibble 0: control word) is not decoded.
    let mut body = mpls_entry(100, 0, true, 9).to_vec();
    body.extend_from_slice(&[0x00, 0x00, 0x00, 0x01, 0xaa, 0xbb]);
    let frame = decode_bytes(1, &ethernet(0x8847, &body), &OFF);
    assert_eq!(frame.errors, [DecodeIssue::UnsupportedEtherType]);
    assert_eq!(frame.mpls.len(), 1);
    // A stack cut before its bottom entry (tcpdump's mpls-label-heapoverflow shape).
    let mut body = mpls_entry(48, 0, false, 48).to_vec();
    body.extend_from_slice(&[0x30, 0x00]);
    let frame = decode_cut(1, &ethernet(0x8848, &body), &OFF);
    assert_eq!(frame.errors, [DecodeIssue::TruncatedLink]);
    assert_eq!(frame.mpls.len(), 1);
    // Nothing after the bottom entry.
    let frame = decode_bytes(1, &ethernet(0x8847, &mpls_entry(3, 0, true, 1)), &OFF);
    assert_eq!(frame.errors, [DecodeIssue::TruncatedIp]);
    // A long stack is decoded entry by entry (bounded by the packet).
    let mut body = Vec::new();
    for i in 0..300 {
        body.extend_from_slice(&mpls_entry(i, 0, i == 299, 1));
    }
    body.extend_from_slice(&ipv4_udp(1, 2, b""));
    let frame = decode_bytes(1, &ethernet(0x8847, &body), &OFF);
    assert_eq!(frame.mpls.len(), 300);
    assert!(frame.udp.is_some());
}

#[test]
fn icmp_pointer_and_unused_word() {
    let icmp = |t: u8, rest: [u8; 4]| {
        let mut out = Vec::new();
        PacketBuilder::ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64)
            .icmpv4_raw(t, 0, rest)
            .write(&mut out, &[])
            .expect("write");
        decode_bytes(101, &out, &OFF)
    };
    let f = icmp(12, [20, 0, 0, 0]);
    assert_eq!(f.icmp.map(|i| (i.ptr, i.unused)), Some((Some(20), None)));
    let f = icmp(3, [0, 0, 0x05, 0xdc]); // frag needed, next-hop MTU 1500
    assert_eq!(f.icmp.map(|i| (i.ptr, i.unused)), Some((None, Some(1500))));
    let f = icmp(8, [0, 1, 0, 2]);
    assert_eq!(
        f.icmp.map(|i| (i.ptr, i.unused, i.id)),
        Some((None, None, Some(1)))
    );
}

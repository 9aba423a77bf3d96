//! Typical hand-built frames (TCP SYN with options, HTTP data segment, UDP DNS query, ICMP echo,
//! ARP request, IPv6 TCP, and one frame with every layer set) for tests and benchmarks.

use std::net::{Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

use netpipe_packet::frame::*;

const TS: i64 = 1_517_180_765_123_456_789; // 2018-01-28T23:06:05.123456789Z

fn base(seq: u64, wire_len: u32) -> Frame {
    let mut f = Frame::new(
        Arc::from("agent-1"),
        1_700_000_000_000_000_000,
        seq,
        TS,
        wire_len,
        wire_len,
        1,
    );
    f.eth = Some(Ethernet {
        src: MacAddr([0x08, 0x00, 0x27, 0x89, 0x2d, 0x02]),
        dst: MacAddr([0x52, 0x54, 0x00, 0x12, 0x35, 0x02]),
        ether_type: 0x0800,
    });
    f
}

fn ipv4(proto: u8, len: u16, chksum: u16) -> Ipv4 {
    Ipv4 {
        ihl: 5,
        tos: 0,
        len,
        id: 0x1c46,
        flags: IPV4_FLAG_DF,
        frag: 0,
        ttl: 64,
        proto,
        chksum,
        src: Ipv4Addr::new(10, 0, 2, 15),
        dst: Ipv4Addr::new(104, 198, 143, 177),
        options: None,
    }
}

/// A Linux SYN: MSS, SAckOK, Timestamp, NOP, WScale.
pub fn tcp_syn() -> Frame {
    let mut f = base(1, 74);
    f.ipv4 = Some(ipv4(6, 60, 0x3cba));
    f.tcp = Some(Tcp {
        sport: 45629,
        dport: 80,
        seq: 1_653_870_371,
        ack: 0,
        dataofs: 10,
        flags: 2,
        window: 29200,
        chksum: 0xfe30,
        urgptr: 0,
        opts: TcpOptions {
            kinds: vec![2, 4, 8, 1, 3],
            mss: Some(1460),
            wscale: Some(7),
            sackok: true,
            sack: Vec::new(),
            ts_val: Some(252_549_220),
            ts_ecr: Some(0),
        },
    });
    f
}

/// An ACK with an HTTP response line as payload, SACK blocks and a 2-byte Ethernet trailer.
pub fn tcp_http_data() -> Frame {
    let mut f = base(2, 87);
    f.ipv4 = Some(ipv4(6, 69, 0x4c3a));
    f.tcp = Some(Tcp {
        sport: 80,
        dport: 45629,
        seq: 3_000_000_000,
        ack: 1_653_870_372,
        dataofs: 8,
        flags: 0x18,
        window: 65535,
        chksum: 0x4f53,
        urgptr: 0,
        opts: TcpOptions {
            kinds: vec![1, 1, 5],
            sack: vec![(100, 200), (300, 400)],
            ..TcpOptions::default()
        },
    });
    f.payload = Some(Payload {
        len: 17,
        hex: Some("485454502f312e3120323030204f4b0d0a".into()),
        capped: false,
    });
    f.padding = Some(Payload {
        len: 2,
        hex: Some("0000".into()),
        capped: false,
    });
    f
}

/// A DNS query over UDP for a name that needs CSV quoting.
pub fn udp_dns() -> Frame {
    let mut f = base(3, 75);
    f.ipv4 = Some(ipv4(17, 61, 0x1234));
    f.udp = Some(Udp {
        sport: 40000,
        dport: 53,
        len: 41,
        chksum: 0xabcd,
    });
    f.dns = Some(Dns {
        id: 0x1a2b,
        qr: false,
        opcode: 0,
        aa: false,
        tc: false,
        rd: true,
        ra: false,
        z: false,
        ad: true,
        cd: false,
        rcode: 0,
        qdcount: 1,
        ancount: 0,
        nscount: 0,
        arcount: 1,
        qname: Some("weird,\"name\".example.com".into()),
        qtype: Some(1),
        qclass: Some(1),
    });
    f.payload = Some(Payload {
        len: 33,
        hex: None,
        capped: false,
    });
    f
}

/// An ICMP echo request with 4 data bytes (not UTF-8).
pub fn icmp_echo() -> Frame {
    let mut f = base(4, 60);
    f.ipv4 = Some(ipv4(1, 32, 0x0b0b));
    f.icmp = Some(Icmp {
        icmp_type: 8,
        code: 0,
        chksum: 0xf7ff,
        id: Some(0x0400),
        seq: Some(1),
        gw: None,
        ptr: None,
        unused: None,
    });
    f.payload = Some(Payload {
        len: 4,
        hex: Some("ff00fe01".into()),
        capped: false,
    });
    f.padding = Some(Payload {
        len: 14,
        hex: Some("0000000000000000000000000000".into()),
        capped: false,
    });
    f
}

/// An ARP request with the usual 18 bytes of Ethernet padding.
pub fn arp_request() -> Frame {
    let mut f = base(5, 60);
    if let Some(eth) = f.eth.as_mut() {
        eth.ether_type = 0x0806;
        eth.dst = MacAddr([0xff; 6]);
    }
    f.arp = Some(Arp {
        hwtype: 1,
        ptype: 0x0800,
        hwlen: 6,
        plen: 4,
        op: 1,
        hwsrc: "08:00:27:89:2d:02".into(),
        psrc: "10.0.2.15".into(),
        hwdst: "00:00:00:00:00:00".into(),
        pdst: "10.0.2.2".into(),
    });
    f.padding = Some(Payload {
        len: 18,
        hex: Some("00".repeat(18)),
        capped: false,
    });
    f
}

/// A TCP segment over IPv6 with a hop-by-hop header.
pub fn ipv6_tcp() -> Frame {
    let mut f = base(6, 94);
    if let Some(eth) = f.eth.as_mut() {
        eth.ether_type = 0x86dd;
    }
    f.ipv6 = Some(Ipv6 {
        tc: 0,
        fl: 0x12345,
        plen: 40,
        nh: 0,
        hlim: 64,
        src: Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1),
        dst: Ipv6Addr::new(0xfe80, 0, 0, 0, 0x1, 0x2, 0x3, 0x4),
        ext: vec![0],
        upper: 6,
        frag: None,
    });
    f.tcp = Some(Tcp {
        sport: 443,
        dport: 50000,
        seq: 1,
        ack: 2,
        dataofs: 5,
        flags: 0x10,
        window: 1000,
        chksum: 0,
        urgptr: 0,
        opts: TcpOptions::default(),
    });
    f
}

/// A frame with every field of the Frame type set (not a realistic packet: it exists so that
/// serialization covers every key).
pub fn every_field() -> Frame {
    let mut f = tcp_syn();
    f.sll = Some(LinuxSll {
        version: 2,
        pkttype: 4,
        hatype: 1,
        addr: "080027892d02".into(),
        protocol: 0x0800,
        ifindex: Some(3),
    });
    f.vlan = vec![
        VlanTag {
            tpid: 0x88a8,
            id: 100,
            pcp: 3,
            dei: true,
            ether_type: 0x8100,
        },
        VlanTag {
            tpid: 0x8100,
            id: 200,
            pcp: 0,
            dei: false,
            ether_type: 0x0800,
        },
    ];
    f.mpls = vec![
        MplsLabel {
            label: 1000,
            tc: 5,
            bottom: false,
            ttl: 64,
        },
        MplsLabel {
            label: 29,
            tc: 0,
            bottom: true,
            ttl: 63,
        },
    ];
    f.llc = Some(Llc {
        dsap: 0xaa,
        ssap: 0xaa,
        control: 3,
        oui: Some(0),
        pid: Some(0x0800),
    });
    f.arp = arp_request().arp;
    if let Some(ip) = f.ipv4.as_mut() {
        ip.options = Some("94040000".into());
    }
    f.ipv6 = ipv6_tcp().ipv6;
    if let Some(ip) = f.ipv6.as_mut() {
        ip.frag = Some(Ipv6Fragment {
            offset: 0,
            more: true,
            id: 77,
        });
    }
    f.icmp = Some(Icmp {
        icmp_type: 5,
        code: 1,
        chksum: 1,
        id: Some(1),
        seq: Some(2),
        gw: Some(Ipv4Addr::new(10, 0, 0, 1)),
        ptr: Some(20),
        unused: Some(1500),
    });
    f.icmpv6 = Some(Icmpv6 {
        icmp_type: 128,
        code: 0,
        chksum: 5,
        id: Some(9),
        seq: Some(10),
    });
    if let Some(tcp) = f.tcp.as_mut() {
        tcp.urgptr = 1;
        tcp.opts.sack = vec![(1, 2)];
    }
    f.udp = udp_dns().udp;
    f.dns = udp_dns().dns;
    f.payload = Some(Payload {
        len: 100,
        hex: Some("00ff".into()),
        capped: true,
    });
    f.padding = Some(Payload {
        len: 6,
        hex: Some("0000".into()),
        capped: true,
    });
    f.errors = vec![DecodeIssue::MalformedDns, DecodeIssue::Fragment];
    f
}

/// The typical frames, for benchmarks.
pub fn typical() -> Vec<Frame> {
    vec![
        tcp_syn(),
        tcp_http_data(),
        udp_dns(),
        icmp_echo(),
        arp_request(),
        ipv6_tcp(),
    ]
}

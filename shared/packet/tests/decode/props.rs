//! Property tests: packets built with etherparse's `PacketBuilder` from random field values
//! decode back to the same values; random bytes never panic, for every link type.

use crate::decode_support;

use etherparse::{
    EtherType, IpDscp, IpEcn, IpHeaders, IpNumber, Ipv4Extensions, Ipv4Header, Ipv6Extensions,
    Ipv6FlowLabel, Ipv6Header, PacketBuilder, SingleVlanHeader, TcpHeader, TcpOptionElement,
    VlanHeader, VlanId, VlanPcp,
};
use netpipe_packet::decode::DecodeOptions;
use netpipe_packet::frame::Frame;
use proptest::prelude::*;

#[derive(Debug, Clone)]
struct Vlan {
    id: u16,
    pcp: u8,
    dei: bool,
}

#[derive(Debug, Clone)]
enum Ip {
    V4 {
        src: [u8; 4],
        dst: [u8; 4],
        ttl: u8,
        dscp: u8,
        ecn: u8,
        id: u16,
        df: bool,
    },
    V6 {
        src: [u8; 16],
        dst: [u8; 16],
        hlim: u8,
        tc: u8,
        fl: u32,
    },
}

#[derive(Debug, Clone)]
enum Transport {
    Tcp {
        sport: u16,
        dport: u16,
        seq: u32,
        ack: u32,
        flags: u16,
        window: u16,
        urgptr: u16,
        options: Vec<TcpOptionElement>,
    },
    Udp {
        sport: u16,
        dport: u16,
    },
    Echo {
        request: bool,
        id: u16,
        seq: u16,
    },
}

#[derive(Debug, Clone)]
struct Spec {
    src_mac: [u8; 6],
    dst_mac: [u8; 6],
    vlan: Option<Vlan>,
    ip: Ip,
    transport: Transport,
    payload: Vec<u8>,
}

fn vlan() -> impl Strategy<Value = Vlan> {
    (1u16..4095, 0u8..8, any::<bool>()).prop_map(|(id, pcp, dei)| Vlan { id, pcp, dei })
}

fn ip() -> impl Strategy<Value = Ip> {
    let v4 = (
        any::<[u8; 4]>(),
        any::<[u8; 4]>(),
        any::<u8>(),
        0u8..64,
        0u8..4,
        any::<u16>(),
        any::<bool>(),
    )
        .prop_map(|(src, dst, ttl, dscp, ecn, id, df)| Ip::V4 {
            src,
            dst,
            ttl,
            dscp,
            ecn,
            id,
            df,
        });
    let v6 = (
        any::<[u8; 16]>(),
        any::<[u8; 16]>(),
        any::<u8>(),
        any::<u8>(),
        0u32..(1 << 20),
    )
        .prop_map(|(src, dst, hlim, tc, fl)| Ip::V6 {
            src,
            dst,
            hlim,
            tc,
            fl,
        });
    prop_oneof![v4, v6]
}

fn tcp_option() -> impl Strategy<Value = TcpOptionElement> {
    use TcpOptionElement::*;
    prop_oneof![
        Just(Noop),
        any::<u16>().prop_map(MaximumSegmentSize),
        any::<u8>().prop_map(WindowScale),
        Just(SelectiveAcknowledgementPermitted),
        (
            any::<(u32, u32)>(),
            proptest::collection::vec(any::<(u32, u32)>(), 0..3)
        )
            .prop_map(|(first, rest)| {
                let mut more = [None; 3];
                for (slot, block) in more.iter_mut().zip(rest) {
                    *slot = Some(block);
                }
                SelectiveAcknowledgement(first, more)
            }),
        (any::<u32>(), any::<u32>()).prop_map(|(v, e)| Timestamp(v, e)),
    ]
}

fn option_len(option: &TcpOptionElement) -> usize {
    use TcpOptionElement::*;
    match option {
        Noop => 1,
        MaximumSegmentSize(_) => 4,
        WindowScale(_) => 3,
        SelectiveAcknowledgementPermitted => 2,
        SelectiveAcknowledgement(_, more) => 10 + 8 * more.iter().flatten().count(),
        Timestamp(..) => 10,
    }
}

fn transport() -> impl Strategy<Value = Transport> {
    let tcp = (
        any::<(u16, u16, u32, u32)>(),
        0u16..512,
        any::<(u16, u16)>(),
        proptest::collection::vec(tcp_option(), 0..6),
    )
        .prop_map(
            |((sport, dport, seq, ack), flags, (window, urgptr), options)| {
                // At most 40 option bytes fit in a TCP header.
                let mut total = 0;
                let options = options
                    .into_iter()
                    .filter(|o| {
                        total += option_len(o);
                        total <= 40
                    })
                    .collect();
                Transport::Tcp {
                    sport,
                    dport,
                    seq,
                    ack,
                    flags,
                    window,
                    urgptr,
                    options,
                }
            },
        );
    let udp = any::<(u16, u16)>().prop_map(|(sport, dport)| Transport::Udp { sport, dport });
    let echo = (any::<bool>(), any::<u16>(), any::<u16>())
        .prop_map(|(request, id, seq)| Transport::Echo { request, id, seq });
    prop_oneof![tcp, udp, echo]
}

fn spec() -> impl Strategy<Value = Spec> {
    (
        any::<[u8; 6]>(),
        any::<[u8; 6]>(),
        proptest::option::of(vlan()),
        ip(),
        transport(),
        proptest::collection::vec(any::<u8>(), 0..80),
    )
        .prop_map(|(src_mac, dst_mac, vlan, ip, transport, payload)| Spec {
            src_mac,
            dst_mac,
            vlan,
            ip,
            transport,
            payload,
        })
}

/// No DNS ports: a random payload there would (rightly) be a malformed DNS message.
fn avoid_dns(port: u16) -> bool {
    !matches!(port, 53 | 5353 | 5355)
}

fn build(spec: &Spec) -> Vec<u8> {
    let ip_headers = match &spec.ip {
        Ip::V4 {
            src,
            dst,
            ttl,
            dscp,
            ecn,
            id,
            df,
        } => {
            let mut header =
                Ipv4Header::new(0, *ttl, IpNumber::UDP, *src, *dst).expect("ipv4 header");
            header.dscp = IpDscp::try_new(*dscp).expect("dscp");
            header.ecn = IpEcn::try_new(*ecn).expect("ecn");
            header.identification = *id;
            header.dont_fragment = *df;
            IpHeaders::Ipv4(header, Ipv4Extensions::default())
        }
        Ip::V6 {
            src,
            dst,
            hlim,
            tc,
            fl,
        } => IpHeaders::Ipv6(
            Ipv6Header {
                traffic_class: *tc,
                flow_label: Ipv6FlowLabel::try_new(*fl).expect("flow label"),
                payload_length: 0,
                next_header: IpNumber::UDP,
                hop_limit: *hlim,
                source: *src,
                destination: *dst,
            },
            Ipv6Extensions::default(),
        ),
    };
    let eth = PacketBuilder::ethernet2(spec.src_mac, spec.dst_mac);
    let step = match &spec.vlan {
        None => eth.ip(ip_headers),
        Some(v) => eth
            .vlan(VlanHeader::Single(SingleVlanHeader {
                pcp: VlanPcp::try_new(v.pcp).expect("pcp"),
                drop_eligible_indicator: v.dei,
                vlan_id: VlanId::try_new(v.id).expect("vlan id"),
                ether_type: EtherType(0),
            }))
            .ip(ip_headers),
    };
    let mut out = Vec::new();
    let is_v4 = matches!(spec.ip, Ip::V4 { .. });
    match &spec.transport {
        Transport::Tcp {
            sport,
            dport,
            seq,
            ack,
            flags,
            window,
            urgptr,
            options,
        } => {
            let mut header = TcpHeader::new(*sport, *dport, *seq, *window);
            header.acknowledgment_number = *ack;
            header.urgent_pointer = *urgptr;
            let bit = |n: u16| flags & (1 << n) != 0;
            header.fin = bit(0);
            header.syn = bit(1);
            header.rst = bit(2);
            header.psh = bit(3);
            header.ack = bit(4);
            header.urg = bit(5);
            header.ece = bit(6);
            header.cwr = bit(7);
            header.ns = bit(8);
            header.set_options(options).expect("options fit");
            step.tcp_header(header)
                .write(&mut out, &spec.payload)
                .expect("write");
        }
        Transport::Udp { sport, dport } => step
            .udp(*sport, *dport)
            .write(&mut out, &spec.payload)
            .expect("write"),
        Transport::Echo { request, id, seq } => match (is_v4, request) {
            (true, true) => step
                .icmpv4_echo_request(*id, *seq)
                .write(&mut out, &spec.payload),
            (true, false) => step
                .icmpv4_echo_reply(*id, *seq)
                .write(&mut out, &spec.payload),
            (false, true) => step
                .icmpv6_echo_request(*id, *seq)
                .write(&mut out, &spec.payload),
            (false, false) => step
                .icmpv6_echo_reply(*id, *seq)
                .write(&mut out, &spec.payload),
        }
        .expect("write"),
    }
    out
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn check(spec: &Spec, frame: &Frame) -> Result<(), TestCaseError> {
    prop_assert!(frame.errors.is_empty(), "{:?}", frame.errors);
    let eth = frame.eth.expect("ethernet");
    prop_assert_eq!(eth.src.0, spec.src_mac);
    prop_assert_eq!(eth.dst.0, spec.dst_mac);
    match &spec.vlan {
        None => prop_assert!(frame.vlan.is_empty()),
        Some(v) => {
            prop_assert_eq!(frame.vlan.len(), 1);
            let tag = frame.vlan[0];
            prop_assert_eq!(
                (tag.tpid, tag.id, tag.pcp, tag.dei),
                (0x8100, v.id, v.pcp, v.dei)
            );
        }
    }
    match &spec.ip {
        Ip::V4 {
            src,
            dst,
            ttl,
            dscp,
            ecn,
            id,
            df,
        } => {
            let ip = frame.ipv4.as_ref().expect("ipv4");
            prop_assert_eq!(ip.src.octets(), *src);
            prop_assert_eq!(ip.dst.octets(), *dst);
            prop_assert_eq!(ip.ttl, *ttl);
            prop_assert_eq!(ip.tos, (dscp << 2) | ecn);
            prop_assert_eq!(ip.id, *id);
            prop_assert_eq!(ip.flags, if *df { 2 } else { 0 });
            prop_assert_eq!((ip.ihl, ip.frag), (5, 0));
            prop_assert!(ip.options.is_none());
        }
        Ip::V6 {
            src,
            dst,
            hlim,
            tc,
            fl,
        } => {
            let ip = frame.ipv6.as_ref().expect("ipv6");
            prop_assert_eq!(ip.src.octets(), *src);
            prop_assert_eq!(ip.dst.octets(), *dst);
            prop_assert_eq!((ip.hlim, ip.tc, ip.fl), (*hlim, *tc, *fl));
            prop_assert!(ip.ext.is_empty());
            prop_assert_eq!(ip.upper, ip.nh);
        }
    }
    match &spec.transport {
        Transport::Tcp {
            sport,
            dport,
            seq,
            ack,
            flags,
            window,
            urgptr,
            options,
        } => {
            let tcp = frame.tcp.as_ref().expect("tcp");
            prop_assert_eq!(
                (tcp.sport, tcp.dport, tcp.seq, tcp.ack),
                (*sport, *dport, *seq, *ack)
            );
            prop_assert_eq!(
                (tcp.flags, tcp.window, tcp.urgptr),
                (*flags, *window, *urgptr)
            );
            check_options(options, &tcp.opts)?;
        }
        Transport::Udp { sport, dport } => {
            let udp = frame.udp.expect("udp");
            prop_assert_eq!((udp.sport, udp.dport), (*sport, *dport));
            prop_assert_eq!(usize::from(udp.len), 8 + spec.payload.len());
        }
        Transport::Echo { request, id, seq } => {
            let (icmp_type, got_id, got_seq) = match (&frame.icmp, &frame.icmpv6) {
                (Some(i), None) => (i.icmp_type, i.id, i.seq),
                (None, Some(i)) => (i.icmp_type, i.id, i.seq),
                other => return Err(TestCaseError::fail(format!("no icmp: {other:?}"))),
            };
            let want_type = match (matches!(spec.ip, Ip::V4 { .. }), request) {
                (true, true) => 8,
                (true, false) => 0,
                (false, true) => 128,
                (false, false) => 129,
            };
            prop_assert_eq!(
                (icmp_type, got_id, got_seq),
                (want_type, Some(*id), Some(*seq))
            );
        }
    }
    let payload = frame.payload.as_ref().expect("payload");
    prop_assert_eq!(payload.len as usize, spec.payload.len());
    let want_hex =
        (!spec.payload.is_empty()).then(|| hex(&spec.payload[..spec.payload.len().min(64)]));
    prop_assert_eq!(payload.hex.clone(), want_hex);
    prop_assert_eq!(payload.capped, spec.payload.len() > 64);
    Ok(())
}

fn check_options(
    sent: &[TcpOptionElement],
    got: &netpipe_packet::frame::TcpOptions,
) -> Result<(), TestCaseError> {
    use TcpOptionElement::*;
    let kinds: Vec<u8> = sent
        .iter()
        .map(|o| match o {
            Noop => 1,
            MaximumSegmentSize(_) => 2,
            WindowScale(_) => 3,
            SelectiveAcknowledgementPermitted => 4,
            SelectiveAcknowledgement(..) => 5,
            Timestamp(..) => 8,
        })
        .collect();
    // etherparse pads the option area with zeros: one EOL, then padding we do not list.
    prop_assert!(
        got.kinds.starts_with(&kinds),
        "{:?} vs {:?}",
        got.kinds,
        kinds
    );
    prop_assert!(got.kinds[kinds.len()..].iter().all(|&k| k == 0));
    prop_assert!(got.kinds.len() <= kinds.len() + 1);
    // The last occurrence of each option wins.
    let mut sack = Vec::new();
    let (mut mss, mut wscale, mut sackok, mut ts) = (None, None, false, None);
    for option in sent {
        match option {
            Noop => {}
            MaximumSegmentSize(v) => mss = Some(*v),
            WindowScale(v) => wscale = Some(*v),
            SelectiveAcknowledgementPermitted => sackok = true,
            SelectiveAcknowledgement(first, more) => {
                sack.push(*first);
                sack.extend(more.iter().flatten().copied());
            }
            Timestamp(v, e) => ts = Some((*v, *e)),
        }
    }
    prop_assert_eq!(got.mss, mss);
    prop_assert_eq!(got.wscale, wscale);
    prop_assert_eq!(got.sackok, sackok);
    prop_assert_eq!(&got.sack, &sack);
    prop_assert_eq!(got.ts_val.zip(got.ts_ecr), ts);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn built_packets_decode_to_their_fields(spec in spec()) {
        let ports_ok = match &spec.transport {
            Transport::Tcp { sport, dport, .. } | Transport::Udp { sport, dport } => {
                avoid_dns(*sport) && avoid_dns(*dport)
            }
            Transport::Echo { .. } => true,
        };
        prop_assume!(ports_ok);
        let bytes = build(&spec);
        let frame = decode_support::decode_bytes(1, &bytes, &DecodeOptions { payload_bytes: 64 });
        check(&spec, &frame)?;
    }

    #[test]
    fn random_bytes_never_panic(
        link in proptest::sample::select(vec![0u16, 1, 12, 14, 101, 108, 113, 228, 229, 276, 999]),
        bytes in proptest::collection::vec(any::<u8>(), 0..256),
    ) {
        for payload_bytes in [0, 8] {
            let frame = decode_support::decode_bytes(link, &bytes, &DecodeOptions { payload_bytes });
            let payload = frame.payload.as_ref().map_or(0, |p| p.len as usize);
            let padding = frame.padding.as_ref().map_or(0, |p| p.len as usize);
            prop_assert!(payload + padding <= bytes.len());
            prop_assert_eq!(frame.cap_len as usize, bytes.len());
        }
    }

    /// Valid IPv4/IPv6 headers in front of random bytes reach the deeper layers.
    #[test]
    fn random_transport_bytes_never_panic(
        v6 in any::<bool>(),
        proto in proptest::sample::select(vec![1u8, 6, 17, 58, 0, 43, 44, 60, 51, 135]),
        body in proptest::collection::vec(any::<u8>(), 0..200),
    ) {
        let mut packet = Vec::new();
        if v6 {
            let header = Ipv6Header {
                traffic_class: 0,
                flow_label: Ipv6FlowLabel::ZERO,
                payload_length: body.len() as u16,
                next_header: IpNumber(proto),
                hop_limit: 64,
                source: [0; 16],
                destination: [1; 16],
            };
            header.write(&mut packet).expect("ipv6");
        } else {
            let header = Ipv4Header::new(body.len() as u16, 64, IpNumber(proto), [1; 4], [2; 4])
                .expect("ipv4");
            header.write(&mut packet).expect("ipv4");
        }
        packet.extend_from_slice(&body);
        let frame = decode_support::decode_bytes(101, &packet, &DecodeOptions::default());
        prop_assert!(frame.ipv4.is_some() || frame.ipv6.is_some());
        let payload = frame.payload.as_ref().map_or(0, |p| p.len as usize);
        prop_assert!(payload <= body.len());
    }
}

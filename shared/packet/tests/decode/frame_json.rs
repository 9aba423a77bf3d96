//! The fast frame codec (`netpipe_packet::frame_json`) against serde_json, the reference: encoding is
//! byte for byte the same, decoding yields the same frames, and whenever the fast reader
//! accepts a body, serde_json accepts it too with the same result (so the fast path can
//! neither invent frames nor hide poison).

use crate::decode_support;

use std::net::{Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

use netpipe_packet::decode::DecodeOptions;
use netpipe_packet::frame::*;
use netpipe_packet::frame_json::read_frames;
use netpipe_runtime::broker::codec::{decode_frames, encode_frames};
use netpipe_runtime::capture::sample::write_sample_pcap;
use proptest::prelude::*;

fn serde_bytes(frames: &[Frame]) -> Vec<u8> {
    serde_json::to_vec(frames).unwrap()
}

/// Checks one batch both ways; returns whether the fast reader took it.
fn check_batch(frames: &[Frame]) -> bool {
    let body = encode_frames(frames);
    assert_eq!(
        String::from_utf8_lossy(&body),
        String::from_utf8_lossy(&serde_bytes(frames))
    );
    assert_eq!(decode_frames(&body).unwrap(), frames);
    match read_frames(&body) {
        Some(fast) => {
            assert_eq!(fast, frames);
            true
        }
        None => false,
    }
}

/// Frames of every capture under `dir`, with and without payload hex.
fn check_captures(files: &[std::path::PathBuf]) -> (usize, usize) {
    let (mut batches, mut fast) = (0, 0);
    for path in files {
        for payload_bytes in [0, 64] {
            let (frames, _) = decode_support::decode_file(path, &DecodeOptions { payload_bytes });
            for batch in frames.chunks(64) {
                batches += 1;
                if check_batch(batch) {
                    fast += 1;
                } else {
                    // Only bodies the fast path does not read by design (escapes) may miss it.
                    assert!(
                        encode_frames(batch).contains(&b'\\'),
                        "{path:?}: fast path refused a plain batch"
                    );
                }
            }
        }
    }
    (batches, fast)
}

#[test]
fn fixture_frames_encode_like_serde_and_take_the_fast_path() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sample.pcap");
    write_sample_pcap(&path).unwrap();
    let (batches, fast) = check_captures(&[path]);
    assert!(batches > 0);
    assert_eq!(fast, batches);
}

#[test]
fn corpus_frames_encode_like_serde_and_decode_back() {
    let Some(dir) = decode_support::pcaps_dir("corpus_frames_encode_like_serde_and_decode_back")
    else {
        return;
    };
    let mut files = Vec::new();
    for sub in ["", "malformed"] {
        files.extend(decode_support::capture_files(&dir.join(sub)));
    }
    let (batches, fast) = check_captures(&files);
    assert!(batches > 1_000, "only {batches} batches");
    // Nearly every real batch takes the fast path (escapes in DNS names are the exception).
    assert!(
        fast * 100 >= batches * 99,
        "fast path took {fast} of {batches}"
    );
}

/// Decodes with both readers and requires the same answer (frames, or an error from both).
fn same_as_serde(body: &[u8]) -> Result<Vec<Frame>, String> {
    let reference = serde_json::from_slice::<Vec<Frame>>(body).map_err(|e| e.to_string());
    if let Some(fast) = read_frames(body) {
        assert_eq!(
            Ok(&fast),
            reference.as_ref(),
            "fast path accepted {:?}",
            String::from_utf8_lossy(body)
        );
    }
    let combined = decode_frames(body).map_err(|e| e.to_string());
    assert_eq!(combined, reference, "{:?}", String::from_utf8_lossy(body));
    reference
}

fn tcp_frame() -> Frame {
    let mut frame = Frame::new(
        Arc::from("agent-1"),
        5,
        9,
        1_700_000_000_000_000_001,
        74,
        74,
        1,
    );
    frame.eth = Some(Ethernet {
        src: MacAddr([0, 0x1b, 0x21, 0xaa, 0xff, 9]),
        dst: MacAddr([0xff; 6]),
        ether_type: 0x0800,
    });
    frame.ipv4 = Some(Ipv4 {
        ihl: 5,
        tos: 0,
        len: 60,
        id: 1,
        flags: 2,
        frag: 0,
        ttl: 64,
        proto: 6,
        chksum: 7,
        src: Ipv4Addr::new(127, 0, 0, 1),
        dst: Ipv4Addr::new(10, 200, 0, 255),
        options: None,
    });
    frame.tcp = Some(Tcp {
        sport: 1234,
        dport: 80,
        seq: u32::MAX,
        ack: 0,
        dataofs: 10,
        flags: 2,
        window: 65535,
        chksum: 1,
        urgptr: 0,
        opts: TcpOptions {
            kinds: vec![2, 4, 5, 8],
            mss: Some(1460),
            sackok: true,
            sack: vec![(1, 2), (u32::MAX, 0)],
            ts_val: Some(3),
            ..TcpOptions::default()
        },
    });
    frame.payload = Some(Payload {
        len: 0,
        hex: None,
        capped: false,
    });
    frame
}

#[test]
fn unusual_but_valid_bodies_decode_as_serde_decodes_them() {
    let frame = tcp_frame();
    let plain = String::from_utf8(encode_frames(std::slice::from_ref(&frame))).unwrap();
    let pretty = serde_json::to_string_pretty(&[&frame]).unwrap();
    assert!(
        read_frames(pretty.as_bytes()).is_some(),
        "whitespace is read"
    );
    assert_eq!(
        same_as_serde(pretty.as_bytes()).unwrap(),
        std::slice::from_ref(&frame)
    );
    // Keys in another order than serde writes them: the in-order path gives up, the any-order
    // path reads them.
    let reordered = plain
        .replacen("{\"v\":1,", "{", 1)
        .replacen(
            "\"sport\":1234,\"dport\":80",
            "\"dport\":80,\"sport\":1234",
            1,
        )
        .replace("}]", ",\"v\":1}]");
    assert_ne!(reordered, plain);
    assert!(read_frames(reordered.as_bytes()).is_some(), "{reordered}");
    assert_eq!(
        same_as_serde(reordered.as_bytes()).unwrap(),
        std::slice::from_ref(&frame)
    );
    for body in [
        "[]".to_owned(),
        " [ ] ".to_owned(),
        plain.replace(
            "\"ts_ns\":1700000000000000001",
            "\"ts_ns\":-9223372036854775808",
        ),
        plain.replace(",\"payload\":{\"len\":0}", ",\"payload\":null"),
        plain.replace("\"agent\":\"agent-1\"", "\"agent\":\"ag\\u0065nt-1\""),
        plain.replace("\"dport\":80", "\"dp\\u006frt\":80"),
        plain.replace(
            "\"src\":\"00:1b:21:aa:ff:09\"",
            "\"src\":\"0:1b:21:aa:ff:9\"",
        ),
        plain.replace(
            "\"src\":\"00:1b:21:aa:ff:09\"",
            "\"src\":\"00:1B:21:AA:FF:09\"",
        ),
        plain.replace("\"sackok\":true", "\"sackok\":false"),
        plain.replace("\"v\":1,", "\"v\":1,\"future\":[1,{\"x\":null}],"),
    ] {
        same_as_serde(body.as_bytes()).unwrap_or_else(|e| panic!("{body}: {e}"));
    }
}

#[test]
fn invalid_bodies_fail_with_serde_json_errors() {
    let plain = String::from_utf8(encode_frames(&[tcp_frame()])).unwrap();
    for body in [
        String::new(),
        "[".to_owned(),
        "{}".to_owned(),
        format!("{plain} x"),
        format!("{plain},"),
        plain.replace("\"dport\":80", "\"dport\":80,\"dport\":81"),
        plain.replace("\"dport\":80", "\"dport\":65536"),
        plain.replace("\"dport\":80", "\"dport\":080"),
        plain.replace("\"dport\":80", "\"dport\":80.0"),
        plain.replace("\"dport\":80", "\"dport\":8e1"),
        plain.replace("\"dport\":80", "\"dport\":-80"),
        plain.replace("\"dport\":80", "\"dport\":\"80\""),
        plain.replace("\"seq\":9", "\"seq\":18446744073709551616"),
        plain.replace(
            "\"ts_ns\":1700000000000000001",
            "\"ts_ns\":9223372036854775808",
        ),
        plain.replace("\"ts_ns\":1700000000000000001", "\"ts_ns\":-0"),
        plain.replace(
            "\"ts_ns\":1700000000000000001",
            "\"ts_ns\":-9223372036854775809",
        ),
        plain.replace("\"agent\":\"agent-1\"", "\"agent\":\"a\tb\""),
        plain.replace("\"agent\":\"agent-1\"", "\"agent\":null"),
        plain.replace("\"v\":1,", ""),
        plain.replace("\"127.0.0.1\"", "\"127.0.0.01\""),
        plain.replace("\"127.0.0.1\"", "\"127.0.0\""),
        plain.replace("\"00:1b:21:aa:ff:09\"", "\"00:1b:21:aa:ff:0g\""),
        plain.replace("true", "tru"),
        plain.replace("[1,2]", "[1,2,3]"),
        plain.replace("{\"len\":0}", "{\"len\":0,\"len\":0}"),
        plain.replace("[2,4,5,8]", "[2,4,5,256]"),
        "[{\"v\":1,\"errors\":[\"no_such_issue\"]}]".to_owned(),
    ] {
        assert!(same_as_serde(body.as_bytes()).is_err(), "{body}");
    }
    let mut invalid_utf8 = plain.into_bytes();
    let at = invalid_utf8
        .windows(7)
        .position(|w| w == b"agent-1")
        .unwrap();
    invalid_utf8[at] = 0xff;
    assert!(same_as_serde(&invalid_utf8).is_err());
}

fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-f0-9:.]{0,20}",
        any::<String>(),
        proptest::collection::vec(0u8..0x80, 0..12)
            .prop_map(|b| b.into_iter().map(char::from).collect()),
    ]
}

prop_compose! {
    fn tcp()(
        ports in any::<(u16, u16, u32, u32)>(),
        fields in any::<(u8, u16, u16, u16, u16)>(),
        kinds in proptest::collection::vec(any::<u8>(), 0..5),
        opts in any::<(Option<u16>, Option<u8>, bool, Option<u32>, Option<u32>)>(),
        sack in proptest::collection::vec(any::<(u32, u32)>(), 0..3),
    ) -> Tcp {
        Tcp {
            sport: ports.0, dport: ports.1, seq: ports.2, ack: ports.3,
            dataofs: fields.0, flags: fields.1, window: fields.2, chksum: fields.3, urgptr: fields.4,
            // The decoder fills options only with their kinds (the wire format omits the rest).
            opts: if kinds.is_empty() { TcpOptions::default() } else { TcpOptions {
                kinds, mss: opts.0, wscale: opts.1, sackok: opts.2, sack, ts_val: opts.3,
                ts_ecr: opts.4,
            } },
        }
    }
}

prop_compose! {
    fn ip_layers()(
        v4 in proptest::option::of((any::<[u8; 9]>(), any::<(u16, u16, u16, u16)>(),
            any::<(u32, u32)>(), proptest::option::of(text()))),
        v6 in proptest::option::of((any::<(u8, u32, u16, u8, u8, u8)>(), any::<(u128, u128)>(),
            proptest::collection::vec(any::<u8>(), 0..3),
            proptest::option::of(any::<(u16, bool, u32)>()))),
    ) -> (Option<Ipv4>, Option<Ipv6>) {
        let ipv4 = v4.map(|(b, w, (s, d), options)| Ipv4 {
            ihl: b[0], tos: b[1], len: w.0, id: w.1, flags: b[2], frag: w.2, ttl: b[3],
            proto: b[4], chksum: w.3, src: Ipv4Addr::from(s), dst: Ipv4Addr::from(d), options,
        });
        let ipv6 = v6.map(|(h, (s, d), ext, frag)| Ipv6 {
            tc: h.0, fl: h.1, plen: h.2, nh: h.3, hlim: h.4, src: Ipv6Addr::from(s),
            dst: Ipv6Addr::from(d), ext, upper: h.5,
            frag: frag.map(|(offset, more, id)| Ipv6Fragment { offset, more, id }),
        });
        (ipv4, ipv6)
    }
}

prop_compose! {
    fn other_layers()(
        eth in proptest::option::of(any::<([u8; 6], [u8; 6], u16)>()),
        sll in proptest::option::of((any::<(u8, u16, u16, u16, Option<u32>)>(), text())),
        vlan in proptest::collection::vec(any::<(u16, u16, u8, bool, u16)>(), 0..3),
        arp in proptest::option::of((any::<(u16, u16, u8, u8, u16)>(), text(), text())),
        icmp in proptest::option::of(any::<(u8, u8, u16, Option<u16>, Option<u16>, Option<u32>)>()),
        icmp_rest in any::<(Option<u8>, Option<u32>)>(),
        mpls in proptest::collection::vec(any::<(u32, u8, bool, u8)>(), 0..3),
        llc in proptest::option::of(any::<(u8, u8, u16, Option<u32>, Option<u16>)>()),
        icmpv6 in proptest::option::of(any::<(u8, u8, u16, Option<u16>, Option<u16>)>()),
        udp in proptest::option::of(any::<(u16, u16, u16, u16)>()),
        dns in proptest::option::of((any::<(u16, [bool; 8], u8, u8)>(), any::<[u16; 4]>(),
            proptest::option::of(text()), any::<(Option<u16>, Option<u16>)>())),
        payload in proptest::option::of((any::<u32>(), proptest::option::of(text()), any::<bool>())),
        errors in proptest::collection::vec(proptest::sample::select(DecodeIssue::ALL.to_vec()), 0..3),
    ) -> Frame {
        let mut frame = Frame::new(Arc::from(""), 0, 0, 0, 0, 0, 0);
        frame.eth = eth.map(|(s, d, t)| Ethernet { src: MacAddr(s), dst: MacAddr(d), ether_type: t });
        frame.sll = sll.map(|((version, pkttype, hatype, protocol, ifindex), addr)| LinuxSll {
            version, pkttype, hatype, addr, protocol, ifindex,
        });
        frame.vlan = vlan.into_iter().map(|(tpid, id, pcp, dei, ether_type)| VlanTag {
            tpid, id, pcp, dei, ether_type,
        }).collect();
        frame.arp = arp.map(|((hwtype, ptype, hwlen, plen, op), a, b)| Arp {
            hwtype, ptype, hwlen, plen, op, hwsrc: a.clone(), psrc: b.clone(), hwdst: b, pdst: a,
        });
        frame.icmp = icmp.map(|(t, code, chksum, id, seq, gw)| Icmp {
            icmp_type: t, code, chksum, id, seq, gw: gw.map(Ipv4Addr::from),
            ptr: icmp_rest.0, unused: icmp_rest.1,
        });
        frame.mpls = mpls.into_iter().map(|(label, tc, bottom, ttl)| MplsLabel {
            label, tc, bottom, ttl,
        }).collect();
        frame.llc = llc.map(|(dsap, ssap, control, oui, pid)| Llc { dsap, ssap, control, oui, pid });
        frame.icmpv6 = icmpv6.map(|(t, code, chksum, id, seq)| Icmpv6 {
            icmp_type: t, code, chksum, id, seq,
        });
        frame.udp = udp.map(|(sport, dport, len, chksum)| Udp { sport, dport, len, chksum });
        frame.dns = dns.map(|((id, f, opcode, rcode), c, qname, (qtype, qclass))| Dns {
            id, qr: f[0], opcode, aa: f[1], tc: f[2], rd: f[3], ra: f[4], z: f[5], ad: f[6],
            cd: f[7], rcode, qdcount: c[0], ancount: c[1], nscount: c[2], arcount: c[3], qname,
            qtype, qclass,
        });
        frame.payload = payload.map(|(len, hex, capped)| Payload { len, hex, capped });
        frame.padding = frame.payload.clone();
        frame.errors = errors;
        frame
    }
}

prop_compose! {
    fn frame()(
        agent in text(),
        head in any::<(u32, u64, u64, i64, u32, u32, u16)>(),
        ip in ip_layers(),
        tcp in proptest::option::of(tcp()),
        layers in other_layers(),
    ) -> Frame {
        let mut frame = layers;
        frame.v = head.0;
        frame.agent = Arc::from(agent);
        (frame.boot, frame.seq, frame.ts_ns) = (head.1, head.2, head.3);
        (frame.wire_len, frame.cap_len, frame.link) = (head.4, head.5, head.6);
        (frame.ipv4, frame.ipv6) = ip;
        frame.tcp = tcp;
        frame
    }
}

/// Bytes that change the meaning of JSON text the most.
fn mutation() -> impl Strategy<Value = (usize, u8, u8)> {
    let bytes = b"0123456789-+.eE\"\\{}[]:, nutlf\t\x00\x1f\x7f\xc3\xff";
    (
        any::<usize>(),
        proptest::sample::select(bytes.to_vec()),
        0u8..3,
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn arbitrary_frames_encode_like_serde_and_round_trip(
        frames in proptest::collection::vec(frame(), 0..4)
    ) {
        check_batch(&frames);
    }

    #[test]
    fn mutated_bodies_never_decode_differently_from_serde(
        frames in proptest::collection::vec(frame(), 1..3),
        mutations in proptest::collection::vec(mutation(), 1..4),
    ) {
        let mut body = encode_frames(&frames);
        for (at, byte, kind) in mutations {
            let at = at % (body.len() + 1);
            match kind {
                0 if at < body.len() => body[at] = byte,
                1 if at < body.len() => { body.remove(at); }
                _ => body.insert(at, byte),
            }
        }
        let _ = same_as_serde(&body);
    }
}

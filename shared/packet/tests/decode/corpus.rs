//! Robustness: every packet of every corpus capture decodes without a panic, and the
//! malformed ones report the problems they have. Plus targeted checks of specific captures.

use crate::decode_support;

use std::collections::BTreeMap;
use std::path::Path;

use netpipe_packet::decode::DecodeOptions;
use netpipe_packet::frame::{DecodeIssue, Frame};

fn frames_of(dir: &Path, name: &str) -> Vec<Frame> {
    let (frames, err) = decode_support::decode_file(&dir.join(name), &DecodeOptions::default());
    assert!(err.is_none(), "{name}: {err:?}");
    assert!(!frames.is_empty(), "{name}: no packets");
    frames
}

/// Issue counts over all frames of one file.
fn issue_counts(frames: &[Frame]) -> BTreeMap<DecodeIssue, usize> {
    let mut counts = BTreeMap::new();
    for frame in frames {
        for issue in &frame.errors {
            *counts.entry(*issue).or_insert(0) += 1;
        }
    }
    counts
}

#[test]
fn every_corpus_packet_decodes_without_panic() {
    let Some(dir) = decode_support::pcaps_dir("every_corpus_packet_decodes_without_panic") else {
        return;
    };
    let mut packets = 0;
    for sub in ["", "malformed", "bad-files"] {
        for path in decode_support::capture_files(&dir.join(sub)) {
            for payload_bytes in [0, 64, 100_000] {
                let (frames, _) =
                    decode_support::decode_file(&path, &DecodeOptions { payload_bytes });
                for frame in &frames {
                    // Payload and padding never claim more bytes than were captured.
                    let payload = frame.payload.as_ref().map_or(0, |p| p.len);
                    let padding = frame.padding.as_ref().map_or(0, |p| p.len);
                    assert!(payload + padding <= frame.cap_len, "{path:?}: {frame:?}");
                }
                packets += frames.len();
                if std::env::var_os("DECODE_SUMMARY").is_some() && payload_bytes == 0 {
                    println!("{}: {:?}", path.display(), issue_counts(&frames));
                }
            }
        }
    }
    assert!(packets > 100_000, "decoded only {packets} packets");
}

fn has(frame: &Frame, issue: DecodeIssue) -> bool {
    frame.errors.contains(&issue)
}

#[test]
fn malformed_captures_report_their_problems() {
    let Some(dir) = decode_support::pcaps_dir("malformed_captures_report_their_problems") else {
        return;
    };
    let bad = dir.join("malformed");
    let only = |name: &str| {
        let frames = frames_of(&bad, name);
        assert_eq!(frames.len(), 1, "{name}");
        frames.into_iter().next().unwrap_or_else(|| unreachable!())
    };

    let frame = frames_of(&dir, "zeek-tcp-truncated-header.pcap")
        .into_iter()
        .find(|f| !f.errors.is_empty())
        .expect("a frame with issues");
    assert!(
        has(&frame, DecodeIssue::TruncatedTransport)
            || has(&frame, DecodeIssue::MalformedTcpOption),
        "{frame:?}"
    );
    // The fixed TCP header parsed and is kept.
    assert!(frame.tcp.is_some(), "{frame:?}");

    // Link type IPv4 holding an IPv6 packet: the link type wins.
    let frame = only("tcpdump-LINKTYPE_IPV4_invalid.pcap");
    assert_eq!(frame.errors, vec![DecodeIssue::MalformedIp]);
    assert!(frame.ipv4.is_none() && frame.ipv6.is_none());
    let frame = only("tcpdump-LINKTYPE_IPV6_invalid.pcap");
    assert_eq!(frame.errors, vec![DecodeIssue::MalformedIp]);

    // The UDP length says the DNS message is empty (tcpdump: "length 0 < 12").
    let frame = only("tcpdump-dns-zlip-1.pcap");
    assert_eq!(frame.errors, vec![DecodeIssue::MalformedDns]);
    assert!(frame.dns.is_none());
    // Bad label type / compression loop: header kept, name not.
    for name in ["tcpdump-dns-badlabel.pcap", "pcpp-dns_stack_overflow.pcap"] {
        let frame = only(name);
        assert_eq!(frame.errors, vec![DecodeIssue::MalformedDns], "{name}");
        // The header parsed and is kept; the name is not.
        let dns = frame.dns.expect("dns header");
        assert!(dns.qname.is_none(), "{name}: {dns:?}");
    }

    for name in [
        "tcpdump-ipv6-rthdr-oobr.pcap",
        "tcpdump-ip6_frag_asan.pcap",
        "tcpdump-ipv6-next-header-oobr-1.pcap",
        "tcpdump-ipv6_frag6_negative_len.pcap",
    ] {
        let frame = only(name);
        assert!(
            has(&frame, DecodeIssue::MalformedIpv6Ext),
            "{name}: {frame:?}"
        );
        assert!(frame.ipv6.is_some(), "{name}");
    }

    let frame = only("tcpdump-ip_printroute_asan.pcap");
    assert_eq!(frame.errors, vec![DecodeIssue::TruncatedIp]);
    let frame = only("tcpdump-udp-length-heapoverflow.pcap");
    assert_eq!(frame.errors, vec![DecodeIssue::TruncatedTransport]);
    assert!(frame.ipv4.is_some() && frame.udp.is_none());

    let counts = issue_counts(&frames_of(&bad, "pcpp-ipv4-malformed.pcap"));
    assert_eq!(
        counts.get(&DecodeIssue::MalformedIp),
        Some(&2),
        "{counts:?}"
    );
}

#[test]
fn linux_sll2_header_is_decoded() {
    let Some(dir) = decode_support::pcaps_dir("linux_sll2_header_is_decoded") else {
        return;
    };
    let frames = frames_of(&dir, "pcpp-sll2.pcap");
    let sll = frames[0].sll.as_ref().expect("sll2");
    assert_eq!(
        (
            sll.version,
            sll.pkttype,
            sll.hatype,
            sll.protocol,
            sll.ifindex
        ),
        (2, 0, 1, 0x0800, Some(20))
    );
    assert_eq!(sll.addr, "f03f958f8263");
    assert_eq!(frames[0].tcp.as_ref().map(|t| t.sport), Some(443));

    // ARP and RARP over SLL2.
    let frames = frames_of(&dir, "zeek-linux_dlt_sll2.pcap");
    assert!(frames.iter().all(|f| f.errors.is_empty()), "{frames:?}");
    assert!(frames.iter().any(|f| f.arp.is_some()));
    assert!(frames.iter().any(|f| f.icmpv6.is_some()));
}

#[test]
fn null_loopback_picks_ip_version_from_family() {
    let Some(dir) = decode_support::pcaps_dir("null_loopback_picks_ip_version_from_family") else {
        return;
    };
    let frames = frames_of(&dir, "pcpp-null_loopback.pcap");
    let v6 = frames[0].ipv6.as_ref().expect("AF_INET6 packet");
    assert_eq!(v6.src.to_string(), "::1");
    assert_eq!(frames[0].tcp.as_ref().map(|t| t.dport), Some(81));
    let v4 = frames[1].ipv4.as_ref().expect("AF_INET packet");
    assert_eq!(v4.dst.to_string(), "172.16.1.255");
    assert_eq!(frames[1].udp.map(|u| u.sport), Some(55369));
}

#[test]
fn qinq_tags_are_listed_outermost_first() {
    let Some(dir) = decode_support::pcaps_dir("qinq_tags_are_listed_outermost_first") else {
        return;
    };
    let frames = frames_of(&dir, "tcpdump-802.1ad_QinQ.pcap");
    let frame = &frames[0];
    assert_eq!(frame.eth.map(|e| e.ether_type), Some(0x88a8));
    let tags: Vec<_> = frame
        .vlan
        .iter()
        .map(|t| (t.tpid, t.id, t.ether_type))
        .collect();
    assert_eq!(tags, vec![(0x88a8, 200, 0x8100), (0x8100, 2001, 0x0806)]);
    assert_eq!(frame.inner_ether_type(), Some(0x0806));
    let arp = frame.arp.as_ref().expect("arp");
    assert_eq!((arp.op, arp.psrc.as_str()), (1, "172.21.79.97"));
    assert_eq!(arp.hwsrc, "00:20:d2:5a:fb:3f");
    // 60-byte minimum frame: the zero fill after the ARP body is padding.
    assert_eq!(frame.padding.as_ref().map(|p| p.len), Some(14));
}

#[test]
fn ipv6_extension_chain_is_walked_to_udp() {
    let Some(dir) = decode_support::pcaps_dir("ipv6_extension_chain_is_walked_to_udp") else {
        return;
    };
    let frames = frames_of(&dir, "libpcap-ipv6_ext_headers.pcap");
    let frame = &frames[0];
    assert!(frame.errors.is_empty(), "{:?}", frame.errors);
    let ip = frame.ipv6.as_ref().expect("ipv6");
    assert_eq!(ip.ext.first(), Some(&0));
    assert!(ip.ext.len() >= 40, "{} headers", ip.ext.len());
    assert_eq!(ip.ext.iter().filter(|&&n| n == 44).count(), 33);
    assert_eq!(ip.upper, 17);
    assert_eq!(ip.frag.map(|f| (f.offset, f.more)), Some((0, false)));
    let udp = frame.udp.expect("udp after the chain");
    assert_eq!((udp.sport, udp.dport, udp.len), (12345, 54321, 18));
    assert_eq!(frame.payload.as_ref().map(|p| p.len), Some(10));

    // Hop-by-hop, destination options, routing and AH in front of real protocols.
    for frame in frames_of(&dir, "pcpp-ipv6_options.pcap") {
        assert!(!frame.ipv6.as_ref().expect("ipv6").ext.is_empty());
        assert!(
            frame.errors.iter().all(|e| !e.is_error()),
            "{:?}",
            frame.errors
        );
    }
}

#[test]
fn only_first_fragments_carry_transport() {
    let Some(dir) = decode_support::pcaps_dir("only_first_fragments_carry_transport") else {
        return;
    };
    let frames = frames_of(&dir, "pcpp-ip4_fragments.pcap");
    let first = &frames[0];
    assert_eq!(
        first.udp.map(|u| (u.sport, u.dport, u.len)),
        Some((789, 2049, 8320))
    );
    assert!(first.errors.is_empty(), "{:?}", first.errors);
    assert!(first.is_fragment());
    for later in &frames[1..5] {
        assert_eq!(later.errors, vec![DecodeIssue::Fragment]);
        assert!(later.udp.is_none());
        assert!(later.ipv4.as_ref().is_some_and(|ip| ip.frag > 0));
        assert_eq!(later.payload.as_ref().map(|p| p.len), Some(1480));
    }

    let frames = frames_of(&dir, "pcpp-ip6_fragments.pcap");
    let first = &frames[0];
    let frag = first
        .ipv6
        .as_ref()
        .and_then(|ip| ip.frag)
        .expect("frag header");
    assert_eq!((frag.offset, frag.more), (0, true));
    assert_eq!(first.udp.map(|u| u.dport), Some(5353));
    // The mDNS header and first question are in the first fragment.
    let dns = first.dns.as_ref().expect("dns");
    assert_eq!(dns.qname.as_deref(), Some("_afpovertcp._tcp.local"));
    assert!(first.errors.is_empty(), "{:?}", first.errors);
    assert_eq!(frames[1].errors, vec![DecodeIssue::Fragment]);
    assert!(frames[1].udp.is_none());

    // Atomic fragments (offset 0, no more fragments) decode like whole packets.
    for frame in frames_of(&dir, "zeek-ipv6-http-atomic-frag.pcap") {
        assert!(!frame.errors.contains(&DecodeIssue::Fragment));
    }
}

#[test]
fn tcp_options_are_decoded_in_wire_order() {
    let Some(dir) = decode_support::pcaps_dir("tcp_options_are_decoded_in_wire_order") else {
        return;
    };
    let frames = frames_of(&dir, "tcpdump-ssh.pcap");
    let syn = frames[0].tcp.as_ref().expect("tcp");
    assert_eq!(syn.flags, 0x002);
    assert_eq!(syn.opts.kinds, vec![2, 1, 3, 1, 1, 8, 4, 0]);
    assert_eq!(syn.opts.mss, Some(1460));
    assert_eq!(syn.opts.wscale, Some(6));
    assert!(syn.opts.sackok);
    assert_eq!(
        (syn.opts.ts_val, syn.opts.ts_ecr),
        (Some(1948436430), Some(0))
    );
    // Somewhere in the session the receiver reports holes with SACK blocks.
    assert!(
        frames
            .iter()
            .any(|f| f.tcp.as_ref().is_some_and(|t| !t.opts.sack.is_empty()))
    );

    let frames = frames_of(&dir, "zeek-tcp-option-sack.pcap");
    let blocks: Vec<usize> = frames
        .iter()
        .map(|f| f.tcp.as_ref().map_or(0, |t| t.opts.sack.len()))
        .collect();
    assert_eq!(blocks, vec![1, 2, 3, 4]);
    let last = frames[3].tcp.as_ref().expect("tcp");
    assert_eq!(last.opts.sack[0], (1, 16));
    assert_eq!(last.opts.sack[1], (256, 4096));
    assert_eq!(last.opts.kinds, vec![5, 0]);

    let frames = frames_of(&dir, "zeek-tcp-window-scale-range.pcap");
    assert_eq!(
        frames[0].tcp.as_ref().and_then(|t| t.opts.wscale),
        Some(255)
    );
}

#[test]
fn dns_questions_are_decoded() {
    let Some(dir) = decode_support::pcaps_dir("dns_questions_are_decoded") else {
        return;
    };
    let frames = frames_of(&dir, "pcpp-DnsPackets.pcap");
    let dns: Vec<_> = frames.iter().filter_map(|f| f.dns.as_ref()).collect();
    assert!(dns.len() > 400, "{} dns frames", dns.len());
    let first = dns[0];
    assert_eq!(first.id, 0x8185);
    assert_eq!(first.qname.as_deref(), Some("www.google.com"));
    assert_eq!((first.qtype, first.qclass), (Some(1), Some(1)));
    assert!(!first.qr && first.rd);
    let answer = dns[1];
    assert!(answer.qr && answer.ra);
    assert_eq!(answer.ancount, 5);
    assert!(
        frames
            .iter()
            .all(|f| !f.errors.contains(&DecodeIssue::MalformedDns))
    );
}

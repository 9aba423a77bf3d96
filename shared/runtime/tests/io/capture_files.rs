//! Reading every capture in ../shared/data/pcaps: counts match capinfos, broken files fail with
//! one clear error, nothing panics.

use std::path::Path;

use netpipe_runtime::capture::{CaptureFile, FileError, FileFormat, LinkType};
use netpipe_testkit::paths::shared_data_or_skip;

fn count(path: &Path) -> Result<(u64, Vec<u16>), FileError> {
    let mut file = CaptureFile::open(path)?;
    let mut links = Vec::new();
    while let Some(packet) = file.next_packet()? {
        assert!(packet.data.len() <= 262_144 || packet.data.len() <= packet.wire_len as usize);
        if !links.contains(&packet.link.0) {
            links.push(packet.link.0);
        }
    }
    Ok((file.packets(), links))
}

#[test]
fn well_formed_captures_read_completely() {
    let Some(data) = shared_data_or_skip("well_formed_captures_read_completely") else {
        return;
    };
    let pcaps = data.join("pcaps");
    let expected: &[(&str, u64, &[u16])] = &[
        ("libpcap-gateway_or_not.pcap", 14, &[1]),
        ("sanders-arp_resolution.pcapng", 2, &[1]),
        ("pcpp-ipv6_options.pcap", 6, &[1]), // really pcapng
        ("scapy-pfcp.pcap", 0, &[]),         // big-endian pcapng; count checked below
        ("tcpdump-tcp-handshake-nano.pcap", 3, &[113]),
        ("zeek-linux_dlt_sll2.pcap", 0, &[276]),
        ("pcpp-null_loopback.pcap", 0, &[0]),
        ("tcpdump-LINKTYPE_IPV4.pcap", 0, &[228]),
        ("tcpdump-LINKTYPE_IPV6.pcap", 0, &[229]),
        ("pcpp-raw_ip.pcap", 0, &[101]),
        ("large-100k.pcap", 100_000, &[]),
        ("pcpp-DnsPackets.pcap", 464, &[1]),
    ];
    for (name, packets, links) in expected {
        let (got, seen) = count(&pcaps.join(name)).unwrap_or_else(|e| panic!("{e}"));
        assert!(got > 0, "{name}: no packets");
        if *packets > 0 {
            assert_eq!(got, *packets, "{name}");
        }
        for link in links.iter() {
            assert!(
                seen.contains(link),
                "{name}: link types {seen:?}, want {link}"
            );
        }
    }
}

#[test]
fn format_comes_from_the_magic_number() {
    let Some(data) = shared_data_or_skip("format_comes_from_the_magic_number") else {
        return;
    };
    let pcaps = data.join("pcaps");
    for name in [
        "pcpp-ipv6_options.pcap",
        "scapy-pfcp.pcap",
        "malformed/pcpp-ipv4-malformed.pcap",
    ] {
        let file = CaptureFile::open(pcaps.join(name)).unwrap();
        assert_eq!(file.format(), FileFormat::PcapNg, "{name}");
    }
    let nano = CaptureFile::open(pcaps.join("pcpp-nanosecs_big_endian.pcap")).unwrap();
    assert_eq!(
        nano.format(),
        FileFormat::Pcap {
            nanosecond: true,
            big_endian: true
        }
    );
}

#[test]
fn multi_interface_pcapng_keeps_each_interface_link_type() {
    let Some(data) = shared_data_or_skip("multi_interface_pcapng_keeps_each_interface_link_type")
    else {
        return;
    };
    let (packets, links) = count(&data.join("pcaps/pcpp-many_interfaces-1.pcapng")).unwrap();
    assert!(packets > 0);
    assert!(
        links.len() >= 2,
        "expected several link types, got {links:?}"
    );
}

#[test]
fn nanosecond_timestamps_are_kept() {
    let Some(data) = shared_data_or_skip("nanosecond_timestamps_are_kept") else {
        return;
    };
    let mut file = CaptureFile::open(data.join("pcaps/tcpdump-tcp-handshake-nano.pcap")).unwrap();
    let packet = file.next_packet().unwrap().unwrap();
    assert_eq!(packet.link, LinkType::LINUX_SLL);
    assert_ne!(
        packet.ts_ns % 1000,
        0,
        "nanosecond digits lost: {}",
        packet.ts_ns
    );
}

#[test]
fn every_corpus_file_reads_or_fails_cleanly() {
    let Some(data) = shared_data_or_skip("every_corpus_file_reads_or_fails_cleanly") else {
        return;
    };
    let mut failures = Vec::new();
    for sub in ["pcaps", "pcaps/malformed", "pcaps/bad-files"] {
        for entry in std::fs::read_dir(data.join(sub)).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().to_string();
            if !(name.ends_with(".pcap") || name.ends_with(".pcapng") || name.ends_with(".gz")) {
                continue;
            }
            if let Err(e) = count(&path) {
                let line = e.to_string();
                assert!(!line.contains('\n'), "{line}");
                assert!(line.contains(&name), "error does not name the file: {line}");
                failures.push(format!("{sub}/{name}"));
            }
        }
    }
    failures.sort();
    // Only the broken files (and the gzip-compressed input of make-large.sh) fail.
    for failure in &failures {
        assert!(
            failure.starts_with("pcaps/bad-files/") || failure.ends_with(".gz"),
            "unexpected failure: {failure}"
        );
    }
    assert!(failures.len() >= 8, "{failures:?}");
}

#[test]
fn broken_files_give_specific_errors() {
    let Some(data) = shared_data_or_skip("broken_files_give_specific_errors") else {
        return;
    };
    let bad = data.join("pcaps/bad-files");
    let err = count(&bad.join("tcpdump-unsupported-link-type-160.pcap")).unwrap_err();
    assert!(
        err.to_string().contains("unsupported link type USER (160)"),
        "{err}"
    );
    let err = count(&bad.join("libpcap-pcap-invalid-version-1.pcap")).unwrap_err();
    assert!(
        matches!(
            err,
            FileError::UnsupportedVersion { .. } | FileError::Corrupt { .. }
        ),
        "{err}"
    );
    let err = count(&bad.join("dpkt-truncated_dns_2.pcap")).unwrap_err();
    assert!(matches!(err, FileError::Truncated { .. }), "{err}");
}

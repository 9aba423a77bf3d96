//! The project's own capture fixtures: realistic packets built with etherparse's `PacketBuilder`
//! and written as pcap files. Tests use them when the reference corpus is absent, and
//! `netpipe fixture` writes one for the Quick start. Addresses are loopback or documentation
//! ranges; these bytes only ever go into files.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::Path;

use etherparse::{PacketBuilder, TcpOptionElement, VlanId};

use netpipe_packet::link::LinkType;

/// One packet for a fixture file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FixturePacket {
    pub ts_ns: i64,
    pub data: Vec<u8>,
}

/// Writes packets as a nanosecond-resolution little-endian pcap file.
pub fn write_pcap(path: &Path, link: LinkType, packets: &[FixturePacket]) -> io::Result<()> {
    let mut out = BufWriter::new(File::create(path)?);
    out.write_all(&0xa1b2_3c4d_u32.to_le_bytes())?; // nanosecond magic
    out.write_all(&2u16.to_le_bytes())?;
    out.write_all(&4u16.to_le_bytes())?;
    out.write_all(&0i32.to_le_bytes())?;
    out.write_all(&0u32.to_le_bytes())?;
    out.write_all(&262_144u32.to_le_bytes())?;
    out.write_all(&u32::from(link.0).to_le_bytes())?;
    for packet in packets {
        let secs = u32::try_from(packet.ts_ns.div_euclid(1_000_000_000)).unwrap_or(0);
        let nanos = u32::try_from(packet.ts_ns.rem_euclid(1_000_000_000)).unwrap_or(0);
        let len =
            u32::try_from(packet.data.len()).map_err(|_| io::Error::other("packet too large"))?;
        out.write_all(&secs.to_le_bytes())?;
        out.write_all(&nanos.to_le_bytes())?;
        out.write_all(&len.to_le_bytes())?;
        out.write_all(&len.to_le_bytes())?;
        out.write_all(&packet.data)?;
    }
    out.flush()
}

/// Writes [`sample_packets`] to `path`; returns the number of packets.
pub fn write_sample_pcap(path: &Path) -> io::Result<usize> {
    let packets = sample_packets();
    write_pcap(path, LinkType::ETHERNET, &packets)?;
    Ok(packets.len())
}

const CLIENT_MAC: [u8; 6] = [0x02, 0x00, 0x00, 0x00, 0x00, 0x01];
const SERVER_MAC: [u8; 6] = [0x02, 0x00, 0x00, 0x00, 0x00, 0x02];
const CLIENT: [u8; 4] = [192, 0, 2, 10];
const SERVER: [u8; 4] = [192, 0, 2, 20];
const START_NS: i64 = 1_764_403_200_000_000_000; // 2025-11-29T08:00:00Z

/// A small mixed capture: a TCP session with options and an HTTP exchange, DNS over UDP, ICMP
/// echo, ARP, an IPv6 TCP SYN and a VLAN-tagged UDP datagram.
pub fn sample_packets() -> Vec<FixturePacket> {
    let mut packets = Vec::new();
    let mut ts = START_NS;
    let mut push = |data: Vec<u8>| {
        ts += 1_234_567;
        packets.push(FixturePacket { ts_ns: ts, data });
    };
    let syn_options = [
        TcpOptionElement::MaximumSegmentSize(1460),
        TcpOptionElement::SelectiveAcknowledgementPermitted,
        TcpOptionElement::Timestamp(1_000, 0),
        TcpOptionElement::Noop,
        TcpOptionElement::WindowScale(7),
    ];
    let ts_only = [
        TcpOptionElement::Noop,
        TcpOptionElement::Noop,
        TcpOptionElement::Timestamp(1_001, 2_000),
    ];
    let request = b"GET /index.html HTTP/1.1\r\nHost: example.test\r\n\r\n";
    let response = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello";
    // A TCP session: handshake, an HTTP exchange, FIN from both sides.
    let seg = |seq, ack, syn, fin, options, payload| Segment {
        seq,
        ack,
        syn,
        fin,
        options,
        payload,
    };
    let session: [(Dir, Segment<'_>); 7] = [
        (
            Dir::ToServer,
            seg(1_000, None, true, false, &syn_options, b""),
        ),
        (
            Dir::ToClient,
            seg(5_000, Some(1_001), true, false, &syn_options, b""),
        ),
        (
            Dir::ToServer,
            seg(1_001, Some(5_001), false, false, &ts_only, b""),
        ),
        (
            Dir::ToServer,
            seg(1_001, Some(5_001), false, false, &ts_only, request),
        ),
        (
            Dir::ToClient,
            seg(5_001, Some(1_050), false, false, &ts_only, response),
        ),
        (
            Dir::ToServer,
            seg(1_050, Some(5_044), false, true, &ts_only, b""),
        ),
        (
            Dir::ToClient,
            seg(5_044, Some(1_051), false, true, &ts_only, b""),
        ),
    ];
    for (dir, segment) in &session {
        push(tcp(*dir, segment));
    }
    // DNS query and answer over UDP.
    push(udp(
        CLIENT_MAC,
        SERVER_MAC,
        CLIENT,
        SERVER,
        53_001,
        53,
        None,
        &dns_query(0x1234, "example.test"),
    ));
    push(udp(
        SERVER_MAC,
        CLIENT_MAC,
        SERVER,
        CLIENT,
        53,
        53_001,
        None,
        &dns_answer(0x1234, "example.test", SERVER),
    ));
    // ICMP echo.
    push(icmp_echo(
        CLIENT_MAC, SERVER_MAC, CLIENT, SERVER, true, 77, 1,
    ));
    push(icmp_echo(
        SERVER_MAC, CLIENT_MAC, SERVER, CLIENT, false, 77, 1,
    ));
    // ARP request and reply.
    push(arp(
        CLIENT_MAC, [0xff; 6], 1, CLIENT_MAC, CLIENT, [0; 6], SERVER,
    ));
    push(arp(
        SERVER_MAC, CLIENT_MAC, 2, SERVER_MAC, SERVER, CLIENT_MAC, CLIENT,
    ));
    // IPv6 TCP SYN.
    let v6_client = [
        0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
    ];
    let v6_server = [
        0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x20,
    ];
    let mut v6 = Vec::new();
    let builder = PacketBuilder::ethernet2(CLIENT_MAC, SERVER_MAC)
        .ipv6(v6_client, v6_server, 64)
        .tcp(40_000, 443, 77, 64_800)
        .syn()
        .options(&syn_options);
    if let Ok(builder) = builder
        && builder.write(&mut v6, &[]).is_ok()
    {
        push(v6);
    }
    // VLAN-tagged UDP.
    push(udp(
        CLIENT_MAC,
        SERVER_MAC,
        CLIENT,
        SERVER,
        5_000,
        6_000,
        Some(42),
        b"vlan payload",
    ));
    packets
}

/// A direction of the sample TCP session (client 43210 <-> server 8080).
#[derive(Debug, Clone, Copy)]
enum Dir {
    ToServer,
    ToClient,
}

/// One TCP segment of the sample session.
struct Segment<'a> {
    seq: u32,
    ack: Option<u32>,
    syn: bool,
    fin: bool,
    options: &'a [TcpOptionElement],
    payload: &'a [u8],
}

fn tcp(dir: Dir, segment: &Segment<'_>) -> Vec<u8> {
    let (src_mac, dst_mac, src, dst, sport, dport) = match dir {
        Dir::ToServer => (CLIENT_MAC, SERVER_MAC, CLIENT, SERVER, 43_210, 8080),
        Dir::ToClient => (SERVER_MAC, CLIENT_MAC, SERVER, CLIENT, 8080, 43_210),
    };
    let mut builder = PacketBuilder::ethernet2(src_mac, dst_mac)
        .ipv4(src, dst, 64)
        .tcp(sport, dport, segment.seq, 64_240);
    if segment.syn {
        builder = builder.syn();
    }
    if segment.fin {
        builder = builder.fin();
    }
    if let Some(ack) = segment.ack {
        builder = builder.ack(ack);
    }
    if !segment.payload.is_empty() {
        builder = builder.psh();
    }
    let mut out = Vec::new();
    if let Ok(builder) = builder.options(segment.options) {
        // Writing into a Vec only fails for payloads too large for IPv4, which these are not.
        let _ = builder.write(&mut out, segment.payload);
    }
    out
}

#[allow(clippy::too_many_arguments)]
fn udp(
    src_mac: [u8; 6],
    dst_mac: [u8; 6],
    src: [u8; 4],
    dst: [u8; 4],
    sport: u16,
    dport: u16,
    vlan: Option<u16>,
    payload: &[u8],
) -> Vec<u8> {
    let mut out = Vec::new();
    let ethernet = PacketBuilder::ethernet2(src_mac, dst_mac);
    let result = match vlan.and_then(|id| VlanId::try_new(id).ok()) {
        Some(id) => ethernet
            .single_vlan(id)
            .ipv4(src, dst, 64)
            .udp(sport, dport)
            .write(&mut out, payload),
        None => ethernet
            .ipv4(src, dst, 64)
            .udp(sport, dport)
            .write(&mut out, payload),
    };
    let _ = result;
    out
}

fn icmp_echo(
    src_mac: [u8; 6],
    dst_mac: [u8; 6],
    src: [u8; 4],
    dst: [u8; 4],
    request: bool,
    id: u16,
    seq: u16,
) -> Vec<u8> {
    let mut out = Vec::new();
    let ip = PacketBuilder::ethernet2(src_mac, dst_mac).ipv4(src, dst, 64);
    let payload = b"netpipe-ping-0123456789abcdef";
    let _ = if request {
        ip.icmpv4_echo_request(id, seq).write(&mut out, payload)
    } else {
        ip.icmpv4_echo_reply(id, seq).write(&mut out, payload)
    };
    out
}

fn arp(
    src_mac: [u8; 6],
    dst_mac: [u8; 6],
    op: u16,
    hwsrc: [u8; 6],
    psrc: [u8; 4],
    hwdst: [u8; 6],
    pdst: [u8; 4],
) -> Vec<u8> {
    let mut out = Vec::with_capacity(60);
    out.extend_from_slice(&dst_mac);
    out.extend_from_slice(&src_mac);
    out.extend_from_slice(&0x0806u16.to_be_bytes());
    out.extend_from_slice(&1u16.to_be_bytes()); // Ethernet
    out.extend_from_slice(&0x0800u16.to_be_bytes()); // IPv4
    out.extend_from_slice(&[6, 4]);
    out.extend_from_slice(&op.to_be_bytes());
    out.extend_from_slice(&hwsrc);
    out.extend_from_slice(&psrc);
    out.extend_from_slice(&hwdst);
    out.extend_from_slice(&pdst);
    out.resize(60, 0); // minimum Ethernet frame: padding
    out
}

fn dns_name(out: &mut Vec<u8>, name: &str) {
    for label in name.split('.') {
        out.push(u8::try_from(label.len()).unwrap_or(63).min(63));
        out.extend_from_slice(&label.as_bytes()[..label.len().min(63)]);
    }
    out.push(0);
}

fn dns_query(id: u16, name: &str) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&id.to_be_bytes());
    out.extend_from_slice(&0x0100u16.to_be_bytes()); // RD
    out.extend_from_slice(&[0, 1, 0, 0, 0, 0, 0, 0]);
    dns_name(&mut out, name);
    out.extend_from_slice(&[0, 1, 0, 1]); // A, IN
    out
}

fn dns_answer(id: u16, name: &str, address: [u8; 4]) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&id.to_be_bytes());
    out.extend_from_slice(&0x8180u16.to_be_bytes()); // QR RD RA
    out.extend_from_slice(&[0, 1, 0, 1, 0, 0, 0, 0]);
    dns_name(&mut out, name);
    out.extend_from_slice(&[0, 1, 0, 1]);
    out.extend_from_slice(&[0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0x0e, 0x10, 0, 4]); // pointer, A, IN, TTL 3600
    out.extend_from_slice(&address);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capture::CaptureFile;

    #[test]
    fn sample_capture_reads_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sample.pcap");
        let written = write_sample_pcap(&path).unwrap();
        assert!(written >= 15, "{written}");
        let expected = sample_packets();
        let mut file = CaptureFile::open(&path).unwrap();
        let mut n = 0;
        while let Some(packet) = file.next_packet().unwrap() {
            assert_eq!(packet.data, expected[n].data.as_slice());
            assert_eq!(packet.ts_ns, expected[n].ts_ns);
            assert!(!packet.data.is_empty());
            n += 1;
        }
        assert_eq!(n, written);
    }
}

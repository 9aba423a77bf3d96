//! Live flows on `lo`: real TCP, UDP and ICMP traffic on 127.0.0.1, captured with libpcap and
//! metered by `flow_live::LiveFlows`; each flow must be emitted by the idle timeout while the
//! capture is otherwise quiet (the wall-clock tick), not only at the end. Needs root (CAP_NET_RAW);
//! skipped with a notice elsewhere, failing in CI and
//! with `--features system-tests`.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use netpipe_packet::decode::{DecodeOptions, FrameMeta, decode};
use netpipe_packet::flow::{ExpirationReason, FlowConfig, FlowRecord};
use netpipe_runtime::capture::{LiveCapture, LiveConfig};
use netpipe_runtime::flow_live::LiveFlows;

/// Sends one ICMP echo request to 127.0.0.1 through a raw socket; the kernel answers it.
#[allow(unsafe_code)] // a raw ICMP socket through libc
fn ping_localhost(id: u16) -> bool {
    let mut msg = [8u8, 0, 0, 0, (id >> 8) as u8, id as u8, 0, 1, b'n', b'p'];
    let mut sum: u32 = msg
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    let checksum = !(sum as u16);
    msg[2..4].copy_from_slice(&checksum.to_be_bytes());
    // SAFETY: plain socket calls on a local buffer and a zeroed sockaddr_in.
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_RAW, libc::IPPROTO_ICMP);
        if fd < 0 {
            return false;
        }
        let mut addr: libc::sockaddr_in = std::mem::zeroed();
        addr.sin_family = libc::AF_INET as libc::sa_family_t;
        addr.sin_addr.s_addr = u32::from_ne_bytes([127, 0, 0, 1]);
        let sent = libc::sendto(
            fd,
            msg.as_ptr().cast(),
            msg.len(),
            0,
            (&addr as *const libc::sockaddr_in).cast(),
            std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
        );
        libc::close(fd);
        sent == msg.len() as isize
    }
}

#[cfg_attr(
    not(feature = "system-tests"),
    ignore = "needs root (live capture on lo): run with --features system-tests (scripts/test.sh does)"
)]
#[test]
fn idle_flows_leave_on_time_while_the_capture_is_quiet() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let tcp_port = listener.local_addr().unwrap().port();
    let udp_a = UdpSocket::bind("127.0.0.1:0").unwrap();
    let udp_b = UdpSocket::bind("127.0.0.1:0").unwrap();
    let udp_port = udp_b.local_addr().unwrap().port();
    let mut config = LiveConfig::new("lo");
    config.filter = format!("tcp port {tcp_port} or udp port {udp_port} or icmp");
    let mut capture = match LiveCapture::open(&config) {
        Ok(capture) => capture,
        Err(e) if !netpipe_testkit::must_not_skip() => {
            eprintln!("live flows on lo: skipped ({e})");
            return;
        }
        Err(e) => panic!("live capture on lo: {e}"),
    };
    let idle = Duration::from_millis(1500);
    let (records_tx, records) = mpsc::channel::<(Instant, FlowRecord)>();
    let flow_config = FlowConfig {
        idle_timeout_ms: idle.as_millis() as i64,
        ..FlowConfig::default()
    };
    let meter = LiveFlows::spawn(flow_config, 0, Duration::from_millis(50), 4096, move |r| {
        let _ = records_tx.send((Instant::now(), r));
    })
    .unwrap();
    let meter = Arc::new(meter);
    let stop = Arc::new(AtomicBool::new(false));
    let breaker = capture.breakloop_handle();
    let reader = {
        let (meter, stop) = (meter.clone(), stop.clone());
        std::thread::spawn(move || {
            let meta = FrameMeta {
                agent: Arc::from("lo-test"),
                boot: 0,
                seq: 0,
            };
            while !stop.load(Ordering::Relaxed) {
                match capture.next_packet() {
                    Ok(Some(packet)) => {
                        meter.push(&decode(&packet, &meta, &DecodeOptions { payload_bytes: 0 }))
                    }
                    Ok(None) => {}
                    Err(_) => break,
                }
            }
        })
    };
    std::thread::sleep(Duration::from_millis(200));

    // The traffic: a TCP exchange, three UDP datagrams, one ping.
    let server = std::thread::spawn(move || {
        let (mut conn, _) = listener.accept().unwrap();
        let mut buf = [0u8; 5];
        conn.read_exact(&mut buf).unwrap();
        conn.write_all(&buf).unwrap();
    });
    let mut client = TcpStream::connect(("127.0.0.1", tcp_port)).unwrap();
    client.write_all(b"hello").unwrap();
    let mut echo = [0u8; 5];
    client.read_exact(&mut echo).unwrap();
    drop(client);
    server.join().unwrap();
    for _ in 0..3 {
        udp_a.send_to(b"netpipe", ("127.0.0.1", udp_port)).unwrap();
    }
    assert!(ping_localhost(0x4e50), "raw ICMP socket (needs root)");
    let traffic_end = Instant::now();

    // Quiet now: the three flows must come out by the idle timeout plus a little, on their own.
    let mut got: Vec<(Instant, FlowRecord)> = Vec::new();
    let deadline = traffic_end + idle + Duration::from_secs(3);
    while got.len() < 3 && Instant::now() < deadline {
        if let Ok(item) = records.recv_timeout(Duration::from_millis(100)) {
            got.push(item);
        }
    }
    stop.store(true, Ordering::Relaxed);
    breaker.breakloop();
    reader.join().unwrap();
    let meter = Arc::try_unwrap(meter).ok().expect("reader thread ended");
    let dropped = meter.dropped();
    let counters = meter.finish().unwrap();
    assert_eq!(dropped, 0);

    let find = |proto: u8| {
        got.iter()
            .find(|(_, r)| r.flow.protocol == proto)
            .unwrap_or_else(|| panic!("no protocol {proto} flow emitted while quiet: {got:?}"))
    };
    for proto in [6u8, 17, 1] {
        let (at, record) = find(proto);
        assert_eq!(record.reason, ExpirationReason::Idle, "protocol {proto}");
        assert!(
            *at >= traffic_end + idle - Duration::from_millis(200),
            "protocol {proto} left before its idle timeout"
        );
        assert!(
            *at <= traffic_end + idle + Duration::from_secs(1),
            "protocol {proto} left late"
        );
    }
    let tcp = &find(6).1.flow;
    assert!(tcp.bidirectional.packets >= 8, "handshake, data, close");
    assert!(tcp.src2dst.packets > 0 && tcp.dst2src.packets > 0);
    assert_eq!(tcp.dst_port, tcp_port);
    assert_eq!(tcp.bidirectional.flag("syn"), 2);
    let udp = &find(17).1.flow;
    assert_eq!((udp.bidirectional.packets, udp.dst_port), (3, udp_port));
    let icmp = &find(1).1.flow;
    assert_eq!(
        icmp.bidirectional.packets, 2,
        "request and the kernel's reply"
    );
    // 127.0.0.1 to itself with no ports: NFStream's direction rule sees the reply as src->dst.
    assert_eq!((icmp.src2dst.packets, icmp.dst2src.packets), (2, 0));
    assert!(counters.packets_in_flows >= 13);
}

//! Live capture on `lo` while the test sends UDP (IPv4 and IPv6), TCP and ICMP echo to
//! 127.0.0.1 / ::1: every matching packet arrives once; the agent's own broker traffic never does.
//! Needs root (CAP_NET_RAW): ignored unless the `system-tests` feature is on (scripts/test.sh).

#[path = "../capture/support.rs"]
mod support;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream, UdpSocket};
use std::time::Duration;

use capture_agent::{AgentError, Config, start};
use clap::Parser;
use netpipe_packet::frame::Frame;
use netpipe_runtime::capture::LiveError;
use support::*;
use tokio_util::sync::CancellationToken;

const UDP_V4: usize = 200;
const UDP_V6: usize = 20;
const ECHOES: u16 = 3;

/// Internet checksum (RFC 1071).
fn checksum(bytes: &[u8]) -> u16 {
    let mut sum: u32 = bytes
        .chunks(2)
        .map(|pair| u32::from(u16::from_be_bytes([pair[0], *pair.get(1).unwrap_or(&0)])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// Sends `ECHOES` ICMP echo requests to 127.0.0.1 from a raw socket (like `ping -c 3 -i 0.2`,
/// without needing iputils-ping); the kernel answers each with an echo reply.
fn send_pings(id: u16) {
    let socket = socket2::Socket::new(
        socket2::Domain::IPV4,
        socket2::Type::from(libc::SOCK_RAW),
        Some(socket2::Protocol::ICMPV4),
    )
    .unwrap();
    let target = socket2::SockAddr::from(std::net::SocketAddr::from(([127, 0, 0, 1], 0)));
    for seq in 1..=ECHOES {
        let mut packet = vec![8, 0, 0, 0];
        packet.extend_from_slice(&id.to_be_bytes());
        packet.extend_from_slice(&seq.to_be_bytes());
        packet.extend_from_slice(b"netpipe live_lo ping");
        let sum = checksum(&packet);
        packet[2..4].copy_from_slice(&sum.to_be_bytes());
        socket.send_to(&packet, &target).unwrap();
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// (type, seq) of the test's echo requests (8) and replies (0).
fn echo_of(frame: &Frame, id: u16) -> Option<(u8, u16)> {
    let icmp = frame.icmp.as_ref()?;
    (matches!(icmp.icmp_type, 0 | 8) && icmp.id == Some(id)).then_some((icmp.icmp_type, icmp.seq?))
}

fn is_port(frame: &Frame, port: u16) -> bool {
    frame
        .udp
        .as_ref()
        .is_some_and(|u| u.sport == port || u.dport == port)
        || frame
            .tcp
            .as_ref()
            .is_some_and(|t| t.sport == port || t.dport == port)
}

#[cfg_attr(
    not(feature = "system-tests"),
    ignore = "needs root (live capture on lo) and redis-server installed: run with --features system-tests (scripts/test.sh does)"
)]
#[tokio::test]
async fn live_capture_on_lo_sees_test_traffic_but_not_its_broker() {
    let redis = PrivateRedis::start();
    let udp_port = free_port();
    let tcp_listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let tcp_port = tcp_listener.local_addr().unwrap().port();
    let stream = unique("live_lo");

    let mut config = Config::parse_from(["capture-agent"]);
    config.interface = "lo".into();
    config.broker_url = redis.url();
    config.stream = stream.clone();
    config.common.ops_addr = "127.0.0.1:0".parse().unwrap();
    config.batch_delay_ms = 5;
    config.agent_id = Some("live-test".into());
    // The test's filter includes the broker port on purpose: the agent must exclude it. Only
    // echo messages: the UDP to a closed port also makes ICMP port-unreachable errors.
    config.filter = Some(format!(
        "(udp and port {udp_port}) or (tcp and (port {tcp_port} or port {})) \
         or (icmp and (icmp[icmptype] == icmp-echo or icmp[icmptype] == icmp-echoreply))",
        redis.port
    ));
    let shutdown = CancellationToken::new();
    let agent = match start(config, shutdown.clone()).await {
        Ok(agent) => agent,
        Err(AgentError::Capture(LiveError::MissingCapability { .. })) => {
            netpipe_testkit::skip("live_capture_on_lo", "capturing needs CAP_NET_RAW");
            return;
        }
        Err(e) => panic!("{e}"),
    };
    assert!(
        agent
            .effective_filter
            .contains(&format!("not ((host 127.0.0.1) and port {})", redis.port)),
        "{}",
        agent.effective_filter
    );
    assert!(
        wait_until(Duration::from_secs(10), || async {
            ops_get(agent.ops_addr.expect("ops server"), "/ready")
                .await
                .0
                == 200
        })
        .await
    );
    let mut consumer = consumer(&redis.url(), &stream).await;

    // Traffic: UDP over IPv4 and IPv6, one TCP connection with data.
    let sender = UdpSocket::bind("127.0.0.1:0").unwrap();
    for i in 0..UDP_V4 {
        sender
            .send_to(format!("udp4 {i}").as_bytes(), ("127.0.0.1", udp_port))
            .unwrap();
        if i % 50 == 49 {
            std::thread::sleep(Duration::from_millis(5));
        }
    }
    if let Ok(sender6) = UdpSocket::bind("[::1]:0") {
        for i in 0..UDP_V6 {
            sender6
                .send_to(format!("udp6 {i}").as_bytes(), ("::1", udp_port))
                .unwrap();
        }
    }
    let server = std::thread::spawn(move || {
        let (mut conn, _) = tcp_listener.accept().unwrap();
        let mut received = Vec::new();
        conn.read_to_end(&mut received).unwrap();
        received
    });
    let mut client = TcpStream::connect(("127.0.0.1", tcp_port)).unwrap();
    client.write_all(b"hello over tcp").unwrap();
    drop(client);
    assert_eq!(server.join().unwrap(), b"hello over tcp");

    let echo_id = (std::process::id() & 0xffff) as u16;
    send_pings(echo_id);

    let mut frames: Vec<Frame> = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    let mut all_seen = false;
    while !all_seen && std::time::Instant::now() < deadline {
        frames.extend(receive_frames(&mut consumer, usize::MAX, Duration::from_millis(200)).await);
        let udp = frames
            .iter()
            .filter(|f| is_port(f, udp_port) && f.udp.is_some())
            .count();
        all_seen = udp >= UDP_V4 + UDP_V6
            && frames
                .iter()
                .any(|f| is_port(f, tcp_port) && f.payload.is_some())
            && frames.iter().filter_map(|f| echo_of(f, echo_id)).count() >= 2 * usize::from(ECHOES);
    }
    // Let anything late (broker traffic, if it were captured) arrive too.
    frames.extend(receive_more(&mut consumer, Duration::from_millis(500)).await);
    shutdown.cancel();
    let summary = agent.wait().await.unwrap();

    let udp: Vec<&Frame> = frames
        .iter()
        .filter(|f| f.udp.is_some() && is_port(f, udp_port))
        .collect();
    let udp_v6 = udp.iter().filter(|f| f.ipv6.is_some()).count();
    assert!(
        all_seen,
        "received {} UDP frames (or not all echoes)",
        udp.len()
    );
    assert_eq!(udp.len(), UDP_V4 + udp_v6, "each UDP packet exactly once");
    let tcp: Vec<&Frame> = frames.iter().filter(|f| is_port(f, tcp_port)).collect();
    let syn = tcp.iter().any(|f| {
        f.tcp
            .as_ref()
            .is_some_and(|t| t.flags & 0x02 != 0 && t.dport == tcp_port)
    });
    assert!(syn, "the SYN to the test port was captured");
    assert!(
        tcp.iter().any(|f| f.payload.is_some()),
        "the data segment was captured"
    );
    let mut echoes: Vec<(u8, u16)> = frames.iter().filter_map(|f| echo_of(f, echo_id)).collect();
    echoes.sort_unstable();
    let expected: Vec<(u8, u16)> = [0u8, 8]
        .iter()
        .flat_map(|kind| (1..=ECHOES).map(move |seq| (*kind, seq)))
        .collect();
    assert_eq!(echoes, expected, "each echo request and reply exactly once");
    let broker = frames.iter().filter(|f| is_port(f, redis.port)).count();
    assert_eq!(broker, 0, "the agent captured its own broker traffic");
    assert_eq!(summary.dropped_total(), 0);
    assert!(frames.iter().all(|f| &*f.agent == "live-test"));
}

#[cfg_attr(
    not(feature = "system-tests"),
    ignore = "needs root (live capture on lo) and Redis at 127.0.0.1:6379: run with --features system-tests (scripts/test.sh does)"
)]
#[tokio::test]
async fn a_live_capture_with_count_exits_after_that_many_packets() {
    let udp_port = free_port();
    let stream = unique("live_count");
    let mut config = Config::parse_from(["capture-agent"]);
    config.interface = "lo".into();
    config.broker_url = REDIS_URL.into();
    config.stream = stream.clone();
    config.common.ops_addr = "127.0.0.1:0".parse().unwrap();
    config.batch_delay_ms = 5;
    config.filter = Some(format!("udp and dst port {udp_port}"));
    config.count = Some(7);
    let agent = match start(config, CancellationToken::new()).await {
        Ok(agent) => agent,
        Err(AgentError::Capture(LiveError::MissingCapability { .. })) => {
            netpipe_testkit::skip("a_live_capture_with_count", "capturing needs CAP_NET_RAW");
            return;
        }
        Err(e) => panic!("{e}"),
    };
    let mut consumer = consumer(REDIS_URL, &stream).await;
    // Keep sending until the agent has stopped on its own (it must, without a shutdown).
    let sender = UdpSocket::bind("127.0.0.1:0").unwrap();
    let done = agent.wait();
    tokio::pin!(done);
    let summary = loop {
        sender
            .send_to(b"count me", ("127.0.0.1", udp_port))
            .unwrap();
        tokio::select! {
            summary = &mut done => break summary.unwrap(),
            _ = tokio::time::sleep(Duration::from_millis(20)) => {}
        }
    };
    assert_eq!(summary.packets_captured, 7);
    assert_eq!(summary.frames_published, 7);
    let frames = receive_frames(&mut consumer, 7, Duration::from_secs(10)).await;
    assert_eq!(frames.len(), 7);
}

/// Kernel drops on `lo` are counted once per lost packet (the kernel sees each loopback packet
/// twice, as sent and as received). The capture is stalled by a full in-process broker with
/// `--overflow wait`, so its ring overflows; once the test drains the broker, every packet sent
/// is a published frame or a counted kernel drop: frames + dropped{kernel} == sent (within the
/// kernel counters' own slack).
#[cfg_attr(
    not(feature = "system-tests"),
    ignore = "needs root (live capture on lo): run with --features system-tests (scripts/test.sh does)"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kernel_drops_on_lo_are_counted_once() {
    const SENT: u64 = 20_000;
    let udp_port = free_port();
    let url = format!("memory://{}", unique("kernel-drops"));
    let mut config = Config::parse_from(["capture-agent"]);
    config.interface = "lo".into();
    config.broker_url = url.clone();
    config.common.ops_addr = "127.0.0.1:0".parse().unwrap();
    config.filter = Some(format!("udp and dst port {udp_port}"));
    config.overflow = Some(capture_agent::Overflow::Wait);
    config.buffer_frames = 1;
    config.batch_size = 1;
    config.batch_delay_ms = 0;
    config.max_in_flight = 1;
    config.payload_bytes = Some(0);
    config.buffer_size = 1 << 20;
    config.shutdown_grace_secs = 1;
    config.stats_message_secs = 0;
    let shutdown = CancellationToken::new();
    let agent = match start(config, shutdown.clone()).await {
        Ok(agent) => agent,
        Err(AgentError::Capture(LiveError::MissingCapability { .. })) => {
            netpipe_testkit::skip("kernel_drops_on_lo", "capturing needs CAP_NET_RAW");
            return;
        }
        Err(e) => panic!("{e}"),
    };
    let metrics = agent.metrics.clone();
    // Bound, never read: no ICMP port-unreachable, and the capture tap comes first anyway.
    let _sink = UdpSocket::bind(("127.0.0.1", udp_port)).unwrap();
    let sender = UdpSocket::bind("127.0.0.1:0").unwrap();
    let payload = vec![0x5a; 1200];
    for i in 0..SENT {
        sender.send_to(&payload, ("127.0.0.1", udp_port)).unwrap();
        // Paced below the loopback's input backlog (netdev_max_backlog, 1000 by default): a
        // packet dropped there never reaches the receive side, nor any capture.
        if i % 200 == 199 {
            std::thread::sleep(Duration::from_millis(3));
        }
    }
    // Nobody consumes yet: the memory broker (1024 messages) and the buffer are full and the
    // capture waits, so the kernel ring (1 MiB) overflowed. Now drain.
    let mut broker = netpipe_runtime::broker::BrokerConfig::parse(url.clone()).unwrap();
    broker.block = Duration::from_millis(200);
    let mut consumer = netpipe_runtime::broker::Consumer::connect(&broker)
        .await
        .unwrap();
    let mut frames = 0u64;
    let mut quiet = 0;
    while quiet < 10 {
        let messages = consumer.receive(256).await.unwrap();
        if messages.is_empty() {
            quiet += 1;
        } else {
            quiet = 0;
        }
        for message in messages {
            frames += netpipe_runtime::broker::codec::decode_frames(&message.bytes())
                .unwrap()
                .len() as u64;
        }
    }
    shutdown.cancel();
    let drain = async {
        loop {
            let messages = consumer.receive(256).await.unwrap_or_default();
            for message in messages {
                frames += netpipe_runtime::broker::codec::decode_frames(&message.bytes())
                    .unwrap()
                    .len() as u64;
            }
            if metrics.buffered_frames.get() == 0 && quiet > 20 {
                break;
            }
            quiet += 1;
        }
        frames
    };
    let frames = drain.await;
    let summary = agent.wait().await.unwrap();
    let kernel = summary.dropped["kernel"];
    assert!(kernel > 0, "the stalled capture lost packets in the kernel");
    assert_eq!(summary.packets_captured, frames, "{summary:?}");
    // The kernel's own packet-socket counters miss a handful now and then (2 of 20,000 seen):
    // allow 0.1%; counting both loopback copies was +90%.
    let counted = frames + kernel;
    assert!(
        counted.abs_diff(SENT) <= SENT / 1000,
        "each lost packet counted once: {counted} of {SENT}, {summary:?}"
    );
}

/// `--flows` live: a UDP exchange on `lo`, then silence. Its flow must reach the flow stream
/// through the idle timeout (the wall-clock tick), while the agent is still running and no
/// packet arrives, not only at shutdown.
#[cfg_attr(
    not(feature = "system-tests"),
    ignore = "needs root (live capture on lo) and redis-server installed: run with --features system-tests (scripts/test.sh does)"
)]
#[tokio::test]
async fn live_flows_on_lo_leave_on_idle_timeout_while_the_capture_is_quiet() {
    use netpipe_runtime::broker::flow_batch::FlowBatch;
    let redis = PrivateRedis::start();
    let udp_port = free_port();
    let stream = unique("live_flows");
    let mut config = Config::parse_from(["capture-agent"]);
    config.interface = "lo".into();
    config.broker_url = redis.url();
    config.stream = stream.clone();
    config.common.ops_addr = "127.0.0.1:0".parse().unwrap();
    config.batch_delay_ms = 5;
    config.agent_id = Some("live-flows".into());
    config.filter = Some(format!("udp and port {udp_port}"));
    config.flows = true;
    config.flow_idle_timeout = 1;
    let shutdown = CancellationToken::new();
    let agent = match start(config, shutdown.clone()).await {
        Ok(agent) => agent,
        Err(AgentError::Capture(LiveError::MissingCapability { .. })) => {
            netpipe_testkit::skip("live_flows_on_lo", "capturing needs CAP_NET_RAW");
            return;
        }
        Err(e) => panic!("{e}"),
    };
    assert!(
        wait_until(Duration::from_secs(10), || async {
            ops_get(agent.ops_addr.expect("ops server"), "/ready")
                .await
                .0
                == 200
        })
        .await
    );
    let mut flows = consumer(&redis.url(), &format!("{stream}-flows")).await;
    let sender = UdpSocket::bind("127.0.0.1:0").unwrap();
    let sender_port = sender.local_addr().unwrap().port();
    for i in 0..5 {
        sender
            .send_to(format!("flow {i}").as_bytes(), ("127.0.0.1", udp_port))
            .unwrap();
    }
    let sent_at = std::time::Instant::now();
    let mut rows = Vec::new();
    while rows.is_empty() && sent_at.elapsed() < Duration::from_secs(10) {
        for message in flows.receive(8).await.unwrap() {
            let batch = FlowBatch::decode(&message.body).unwrap();
            assert_eq!(batch.agent, "live-flows");
            rows.extend(batch.rows);
        }
    }
    let waited = sent_at.elapsed();
    assert!(!shutdown.is_cancelled());
    assert_eq!(rows.len(), 1, "one flow: {rows:?}");
    let header = netpipe_packet::flow::column_names();
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .from_reader(rows[0].csv.as_bytes());
    let record = reader.records().next().unwrap().unwrap();
    let col = |name: &str| &record[header.iter().position(|h| h == name).unwrap()];
    assert_eq!(col("src_port"), sender_port.to_string());
    assert_eq!(col("dst_port"), udp_port.to_string());
    assert_eq!(col("bidirectional_packets"), "5");
    assert_eq!(col("expiration_reason"), "idle");
    assert!(
        waited >= Duration::from_millis(900),
        "left after {waited:?}"
    );
    shutdown.cancel();
    let summary = agent.wait().await.unwrap();
    assert_eq!(summary.flows_emitted, 1);
    assert_eq!(summary.flows_published, 1);
}

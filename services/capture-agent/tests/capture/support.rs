//! Test helpers: generated pcaps, private redis servers, consumers, ops endpoints.
#![allow(dead_code)]

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use netpipe_packet::decode::{DecodeOptions, FrameMeta, decode};
use netpipe_packet::frame::Frame;
use netpipe_runtime::broker::codec::decode_frames;
use netpipe_runtime::broker::{BrokerConfig, Consumer};
use netpipe_runtime::capture::CaptureFile;

pub const REDIS_URL: &str = "redis://127.0.0.1:6379";
pub const AMQP_URL: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";

/// A stream/queue name unique to this test and process.
pub fn unique(test: &str) -> String {
    format!("agent-test.{test}.{}", std::process::id())
}

/// A port nothing listens on right now.
pub fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// One generated packet: Ethernet/IPv4/UDP or TCP, with a timestamp.
pub struct TestPacket {
    pub ts_us: i64,
    pub bytes: Vec<u8>,
}

/// `count` packets alternating UDP and TCP, `gap_us` apart, starting at `start_us`.
pub fn make_packets(count: usize, start_us: i64, gap_us: i64) -> Vec<TestPacket> {
    (0..count)
        .map(|i| {
            let payload = format!("packet {i}");
            let builder = etherparse::PacketBuilder::ethernet2(
                [2, 0, 0, 0, 0, 1],
                [2, 0, 0, 0, 0, 2],
            )
            .ipv4([127, 0, 0, 1], [127, 0, 0, 2], 64);
            let mut bytes = Vec::new();
            if i % 2 == 0 {
                let b = builder.udp(40000 + (i % 1000) as u16, 5353);
                b.write(&mut bytes, payload.as_bytes()).unwrap();
            } else {
                let b = builder.tcp(40000 + (i % 1000) as u16, 8080, i as u32, 1024);
                b.write(&mut bytes, payload.as_bytes()).unwrap();
            }
            TestPacket {
                ts_us: start_us + gap_us * i as i64,
                bytes,
            }
        })
        .collect()
}

/// Writes a classic little-endian microsecond pcap (link type Ethernet).
pub fn write_pcap(path: &Path, packets: &[TestPacket]) {
    let mut out = Vec::new();
    out.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
    out.extend_from_slice(&2u16.to_le_bytes());
    out.extend_from_slice(&4u16.to_le_bytes());
    out.extend_from_slice(&0i32.to_le_bytes()); // thiszone
    out.extend_from_slice(&0u32.to_le_bytes()); // sigfigs
    out.extend_from_slice(&65535u32.to_le_bytes()); // snaplen
    out.extend_from_slice(&1u32.to_le_bytes()); // LINKTYPE_ETHERNET
    for packet in packets {
        let len = packet.bytes.len() as u32;
        out.extend_from_slice(&((packet.ts_us / 1_000_000) as u32).to_le_bytes());
        out.extend_from_slice(&((packet.ts_us % 1_000_000) as u32).to_le_bytes());
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&packet.bytes);
    }
    std::fs::write(path, out).unwrap();
}

/// The frames the agent must produce for `path`: decode of each packet with the run's
/// agent id and boot, sequence numbers counting up from boot.
pub fn expected_frames(path: &Path, agent: &str, boot: u64, options: &DecodeOptions) -> Vec<Frame> {
    let mut file = CaptureFile::open(path).unwrap();
    let agent: Arc<str> = Arc::from(agent);
    let mut frames = Vec::new();
    let mut seq = boot;
    while let Some(packet) = file.next_packet().unwrap() {
        let meta = FrameMeta {
            agent: agent.clone(),
            boot,
            seq,
        };
        frames.push(decode(&packet, &meta, options));
        seq += 1;
    }
    frames
}

/// A consumer on `stream` (its own group).
pub async fn consumer(url: &str, stream: &str) -> Consumer {
    let mut config = BrokerConfig::parse(url).unwrap();
    config.stream = stream.to_string();
    config.exchange = stream.to_string();
    config.routing_key = stream.to_string();
    config.group = format!("{stream}.group");
    config.dead_letter = format!("{stream}.dead");
    config.block = Duration::from_millis(200);
    config.prefetch = 256;
    Consumer::connect(&config).await.unwrap()
}

/// Receives frame batches until `count` frames arrived or `timeout` passed.
pub async fn receive_frames(
    consumer: &mut Consumer,
    count: usize,
    timeout: Duration,
) -> Vec<Frame> {
    let deadline = Instant::now() + timeout;
    let mut frames = Vec::new();
    while frames.len() < count && Instant::now() < deadline {
        let messages = consumer.receive(256).await.unwrap();
        let tokens: Vec<_> = messages.iter().map(|m| m.token.clone()).collect();
        for message in &messages {
            // The agent's in-band loss reports are not frames.
            if netpipe_runtime::broker::agent_stats::AgentStats::decode(&message.bytes()).is_some()
            {
                continue;
            }
            frames.extend(decode_frames(&message.bytes()).unwrap());
        }
        if !tokens.is_empty() {
            consumer.ack(&tokens).await.unwrap();
        }
    }
    frames
}

/// Keeps receiving for `quiet` and returns whatever else arrived (expected: nothing).
pub async fn receive_more(consumer: &mut Consumer, quiet: Duration) -> Vec<Frame> {
    receive_frames(consumer, usize::MAX, quiet).await
}

/// A private redis-server on a free port, killed on drop.
pub struct PrivateRedis {
    pub port: u16,
    child: Option<Child>,
}

impl PrivateRedis {
    pub fn start() -> Self {
        let mut redis = PrivateRedis {
            port: free_port(),
            child: None,
        };
        redis.restart();
        redis
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    pub fn restart(&mut self) {
        self.stop();
        let child = Command::new("redis-server")
            .args([
                "--port",
                &self.port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server is installed");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "redis-server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        self.stop();
    }
}

/// GET on the ops server: (status, body).
pub async fn ops_get(addr: SocketAddr, path: &str) -> (u16, String) {
    let response = reqwest::get(format!("http://{addr}{path}")).await.unwrap();
    let status = response.status().as_u16();
    (status, response.text().await.unwrap())
}

/// Polls `check` every 50 ms until it is true or `timeout` passes.
pub async fn wait_until<F, Fut>(timeout: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if check().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

/// A fresh temporary pcap path.
pub fn temp_pcap(dir: &tempfile::TempDir, name: &str) -> PathBuf {
    dir.path().join(name)
}

//! Fills a Redis stream with synthetic frames for bench/processor_redis.sh (payload off,
//! a TCP/UDP/ICMP mix like real traffic).
//!
//! `fill_stream REDIS_URL STREAM FRAMES PER_MESSAGE`

use std::net::Ipv4Addr;
use std::sync::Arc;

use netpipe_packet::frame::{Ethernet, Frame, Ipv4, MacAddr, Tcp, TcpOptions, Udp};
use netpipe_runtime::broker::codec::encode_frames;
use netpipe_runtime::broker::{BrokerConfig, Publisher};

fn frame(agent: &Arc<str>, boot: u64, n: u64) -> Frame {
    let mut f = Frame::new(
        agent.clone(),
        boot,
        boot + n,
        1_700_000_000_000_000_000 + n as i64 * 1000,
        66,
        66,
        1,
    );
    f.eth = Some(Ethernet {
        src: MacAddr([0, 1, 2, 3, 4, 5]),
        dst: MacAddr([6, 7, 8, 9, 10, 11]),
        ether_type: 0x0800,
    });
    let proto = if n % 4 == 3 { 17 } else { 6 };
    f.ipv4 = Some(Ipv4 {
        ihl: 5,
        tos: 0,
        len: 52,
        id: (n % 65536) as u16,
        flags: 2,
        frag: 0,
        ttl: 64,
        proto,
        chksum: (n % 65536) as u16,
        src: Ipv4Addr::new(10, 0, (n % 200) as u8, 1),
        dst: Ipv4Addr::new(10, 0, 0, 2),
        options: None,
    });
    if proto == 6 {
        f.tcp = Some(Tcp {
            sport: 40000 + (n % 20000) as u16,
            dport: 443,
            seq: n as u32,
            ack: (n * 3) as u32,
            dataofs: 8,
            flags: 16,
            window: 501,
            chksum: (n % 65536) as u16,
            urgptr: 0,
            opts: TcpOptions {
                kinds: vec![1, 1, 8],
                ts_val: Some(n as u32),
                ts_ecr: Some(n as u32 + 1),
                ..Default::default()
            },
        });
    } else {
        f.udp = Some(Udp {
            sport: 53,
            dport: 40000,
            len: 32,
            chksum: 0,
        });
    }
    f
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let [_, url, stream, frames, per_message] = args.as_slice() else {
        anyhow::bail!("usage: fill_stream REDIS_URL STREAM FRAMES PER_MESSAGE");
    };
    let total: u64 = frames.parse()?;
    let per_message: u64 = per_message.parse()?;
    let mut config = BrokerConfig::parse(url.as_str()).unwrap();
    config.stream = stream.clone();
    config.max_len = None;
    let publisher = Publisher::connect(&config).await?;
    let agent: Arc<str> = Arc::from("bench-agent");
    let boot = 1_000_000;
    let mut sent = 0;
    let mut inflight = tokio::task::JoinSet::new();
    while sent < total {
        let n = per_message.min(total - sent);
        let batch: Vec<Frame> = (sent..sent + n).map(|i| frame(&agent, boot, i)).collect();
        let body = encode_frames(&batch);
        let publisher = publisher.clone();
        inflight.spawn(async move { publisher.publish(body).await });
        if inflight.len() >= 8
            && let Some(done) = inflight.join_next().await
        {
            done??;
        }
        sent += n;
    }
    while let Some(done) = inflight.join_next().await {
        done??;
    }
    println!("published {total} frames to {stream}");
    Ok(())
}

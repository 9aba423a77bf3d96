//! A generator of netpipe-like CSVs (mixed TCP/UDP/DNS/ICMP/ARP/IPv6 rows, a scanning
//! "attacker" in 10.66.0.0/16), deterministic per seed. Used by tests and the benchmark; the
//! real column list is the processor's, and the builder aligns any list by name.

use std::io::{self, Write};

use crate::random::splitmix64;

/// The generated header.
pub const COLUMNS: [&str; 45] = [
    "ts",
    "agent",
    "boot",
    "seq",
    "wire_len",
    "cap_len",
    "link",
    "sll_pkttype",
    "eth_src",
    "eth_dst",
    "eth_type",
    "ip_version",
    "ip_ihl",
    "ip_tos",
    "ip_len",
    "ip_id",
    "ip_flags",
    "ip_ttl",
    "ip_proto",
    "ip_src",
    "ip_dst",
    "ipv6_src",
    "ipv6_dst",
    "ipv6_nh",
    "ipv6_hlim",
    "tcp_sport",
    "tcp_dport",
    "tcp_seq",
    "tcp_ack",
    "tcp_flags",
    "tcp_window",
    "udp_sport",
    "udp_dport",
    "udp_len",
    "icmp_type",
    "icmp_code",
    "arp_op",
    "arp_hwsrc",
    "arp_psrc",
    "arp_hwdst",
    "arp_pdst",
    "dns_id",
    "dns_qname",
    "payload_len",
    "payload_hex",
];

/// The kind of packet a row describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Tcp,
    Udp,
    Dns,
    Icmp,
    Arp,
    Tcp6,
}

#[derive(Debug, Clone)]
pub struct SynthSpec {
    pub seed: u64,
    /// Stop after this many rows...
    pub rows: u64,
    /// ...or once this many bytes are written, whichever comes first.
    pub max_bytes: u64,
    pub agent: String,
    /// Time of the first row (ns since the epoch).
    pub start_ns: i64,
    /// Every n-th row is followed by a copy of itself (a new seq and ts, as loopback capture
    /// sees a packet twice); 0 for none.
    pub duplicate_every: u64,
}

impl Default for SynthSpec {
    fn default() -> Self {
        SynthSpec {
            seed: 1,
            rows: 1000,
            max_bytes: u64::MAX,
            agent: "agent-1".into(),
            start_ns: 1_767_225_600_000_000_000, // 2026-01-01T00:00:00Z
            duplicate_every: 0,
        }
    }
}

/// What was written.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SynthStats {
    pub rows: u64,
    pub bytes: u64,
    /// Rows whose source is the attacker network 10.66.0.0/16.
    pub attacker_rows: u64,
    pub duplicates: u64,
}

/// Writes the header and rows; returns the counts.
pub fn write_csv<W: Write>(mut out: W, spec: &SynthSpec) -> io::Result<SynthStats> {
    let mut stats = SynthStats::default();
    let mut line = COLUMNS.join(",").into_bytes();
    line.push(b'\n');
    out.write_all(&line)?;
    stats.bytes += line.len() as u64;
    let mut rng = spec.seed;
    let mut packet = 0u64;
    let mut repeat: Option<Row> = None;
    while stats.rows < spec.rows && stats.bytes < spec.max_bytes {
        let seq = stats.rows;
        let ts = spec.start_ns + (seq as i64) * 1_000_003;
        let row = match repeat.take() {
            Some(row) => {
                stats.duplicates += 1;
                row
            }
            None => {
                packet += 1;
                let row = Row::random(&mut rng);
                if spec.duplicate_every > 0 && packet.is_multiple_of(spec.duplicate_every) {
                    repeat = Some(row.clone());
                }
                row
            }
        };
        if row.attacker {
            stats.attacker_rows += 1;
        }
        line.clear();
        row.write(&mut line, ts, &spec.agent, seq);
        out.write_all(&line)?;
        stats.bytes += line.len() as u64;
        stats.rows += 1;
    }
    out.flush()?;
    Ok(stats)
}

fn next(rng: &mut u64) -> u64 {
    *rng = rng.wrapping_add(1);
    splitmix64(*rng)
}

#[derive(Debug, Clone)]
struct Row {
    kind: Kind,
    attacker: bool,
    host: u8,
    peer: u8,
    sport: u16,
    dport: u16,
    flags: u8,
    ip_id: u16,
    tcp_seq: u32,
    window: u16,
    payload: Vec<u8>,
}

impl Row {
    fn random(rng: &mut u64) -> Row {
        let r = next(rng);
        let kind = match r % 100 {
            0..=54 => Kind::Tcp,
            55..=66 => Kind::Udp,
            67..=74 => Kind::Dns,
            75..=81 => Kind::Icmp,
            82..=88 => Kind::Arp,
            _ => Kind::Tcp6,
        };
        let r2 = next(rng);
        let attacker = matches!(kind, Kind::Tcp | Kind::Icmp) && r2.is_multiple_of(5);
        let payload_len = if kind == Kind::Tcp && !attacker && r2.is_multiple_of(3) {
            (r2 >> 8) % 48 + 1
        } else {
            0
        };
        let mut payload = Vec::with_capacity(payload_len as usize);
        for i in 0..payload_len {
            payload.push((r2 >> (i % 56)) as u8 ^ i as u8);
        }
        let r3 = next(rng);
        Row {
            kind,
            attacker,
            host: (r3 % 200) as u8 + 2,
            peer: ((r3 >> 8) % 200) as u8 + 2,
            sport: 32768 + ((r3 >> 16) % 28000) as u16,
            dport: if attacker {
                ((r3 >> 32) % 1024) as u16 + 1
            } else {
                [443u16, 80, 8080, 22][((r3 >> 32) % 4) as usize % 4]
            },
            flags: if attacker {
                2
            } else {
                [16u8, 24, 18, 17][((r3 >> 40) % 4) as usize % 4]
            },
            ip_id: (r3 >> 48) as u16,
            tcp_seq: next(rng) as u32,
            window: 1024 + (r2 % 64000) as u16,
            payload,
        }
    }

    fn write(&self, out: &mut Vec<u8>, ts_ns: i64, agent: &str, seq: u64) {
        let mut cells: [Cell; 45] = std::array::from_fn(|_| Cell::Empty);
        let set = |cells: &mut [Cell; 45], name: &str, value: Cell| {
            if let Some(slot) = COLUMNS
                .iter()
                .position(|c| *c == name)
                .and_then(|i| cells.get_mut(i))
            {
                *slot = value;
            }
        };
        let time = chrono::DateTime::from_timestamp_nanos(ts_ns)
            .to_rfc3339_opts(chrono::SecondsFormat::Nanos, true);
        let src_ip = if self.attacker {
            format!("10.66.{}.{}", self.host / 16, self.host)
        } else {
            format!("192.168.1.{}", self.host)
        };
        let dst_ip = format!("192.168.1.{}", self.peer);
        let mac = |x: u8| format!("02:00:00:00:00:{x:02x}");
        let payload_len = self.payload.len() as u64;
        let ip_payload: u64 = match self.kind {
            Kind::Tcp | Kind::Tcp6 => 20 + payload_len,
            Kind::Udp | Kind::Dns => 8 + 30,
            Kind::Icmp => 8 + 56,
            Kind::Arp => 0,
        };
        let wire = match self.kind {
            Kind::Arp => 42,
            Kind::Tcp6 => 14 + 40 + ip_payload,
            _ => 14 + 20 + ip_payload,
        };
        use Cell::{Int, Text};
        set(&mut cells, "ts", Text(time));
        set(&mut cells, "agent", Text(agent.to_string()));
        set(&mut cells, "boot", Int(1));
        set(&mut cells, "seq", Int(seq));
        set(&mut cells, "wire_len", Int(wire));
        set(&mut cells, "cap_len", Int(wire));
        set(&mut cells, "link", Int(1));
        set(&mut cells, "eth_src", Text(mac(self.host)));
        set(&mut cells, "eth_dst", Text(mac(self.peer)));
        match self.kind {
            Kind::Arp => {
                set(&mut cells, "eth_type", Int(2054));
                set(&mut cells, "arp_op", Int(1));
                set(&mut cells, "arp_hwsrc", Text(mac(self.host)));
                set(&mut cells, "arp_psrc", Text(src_ip));
                set(&mut cells, "arp_hwdst", Text("00:00:00:00:00:00".into()));
                set(&mut cells, "arp_pdst", Text(dst_ip));
                return finish(out, &cells);
            }
            Kind::Tcp6 => {
                set(&mut cells, "eth_type", Int(34525));
                set(
                    &mut cells,
                    "ipv6_src",
                    Text(format!("fd00::{:x}", self.host)),
                );
                set(
                    &mut cells,
                    "ipv6_dst",
                    Text(format!("fd00::{:x}", self.peer)),
                );
                set(&mut cells, "ipv6_nh", Int(6));
                set(&mut cells, "ipv6_hlim", Int(64));
            }
            _ => {
                set(&mut cells, "eth_type", Int(2048));
                set(&mut cells, "ip_version", Int(4));
                set(&mut cells, "ip_ihl", Int(5));
                set(&mut cells, "ip_tos", Int(0));
                set(&mut cells, "ip_len", Int(20 + ip_payload));
                set(&mut cells, "ip_id", Int(u64::from(self.ip_id)));
                set(&mut cells, "ip_flags", Int(2));
                set(&mut cells, "ip_ttl", Int(64));
                set(&mut cells, "ip_src", Text(src_ip));
                set(&mut cells, "ip_dst", Text(dst_ip));
            }
        }
        match self.kind {
            Kind::Tcp | Kind::Tcp6 => {
                if self.kind == Kind::Tcp {
                    set(&mut cells, "ip_proto", Int(6));
                }
                set(&mut cells, "tcp_sport", Int(u64::from(self.sport)));
                set(&mut cells, "tcp_dport", Int(u64::from(self.dport)));
                set(&mut cells, "tcp_seq", Int(u64::from(self.tcp_seq)));
                set(&mut cells, "tcp_ack", Int(0));
                set(&mut cells, "tcp_flags", Int(u64::from(self.flags)));
                set(&mut cells, "tcp_window", Int(u64::from(self.window)));
            }
            Kind::Udp | Kind::Dns => {
                set(&mut cells, "ip_proto", Int(17));
                set(&mut cells, "udp_sport", Int(u64::from(self.sport)));
                let dport = if self.kind == Kind::Dns { 53 } else { 5353 };
                set(&mut cells, "udp_dport", Int(dport));
                set(&mut cells, "udp_len", Int(38));
                if self.kind == Kind::Dns {
                    set(&mut cells, "dns_id", Int(u64::from(self.ip_id)));
                    set(&mut cells, "dns_qname", Text("example.com.".into()));
                }
            }
            Kind::Icmp => {
                set(&mut cells, "ip_proto", Int(1));
                set(&mut cells, "icmp_type", Int(8));
                set(&mut cells, "icmp_code", Int(0));
            }
            Kind::Arp => {}
        }
        set(&mut cells, "payload_len", Int(payload_len));
        if !self.payload.is_empty() {
            set(
                &mut cells,
                "payload_hex",
                Text(crate::hashio::hex(&self.payload)),
            );
        }
        finish(out, &cells)
    }
}

enum Cell {
    Empty,
    Int(u64),
    Text(String),
}

fn finish(out: &mut Vec<u8>, cells: &[Cell]) {
    let mut ints = itoa::Buffer::new();
    for (i, cell) in cells.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        match cell {
            Cell::Empty => {}
            Cell::Int(n) => out.extend_from_slice(ints.format(*n).as_bytes()),
            Cell::Text(t) => out.extend_from_slice(t.as_bytes()),
        }
    }
    out.push(b'\n');
}

//! A finished flow and its columns: NFStream's names and units first, then netpipe's
//! expiration reason and agent, then the CICFlowMeter-style set (see docs/flows.md).

use std::sync::Arc;

use super::ExpirationReason;
use super::state::{FLAG_NAMES, Flow, Side};
use super::stats::Running;

/// One value of a flow column.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    U(u64),
    I(i64),
    F(f64),
    S(String),
    /// An early-flow array (a JSON array; in CSV one quoted cell, NFStream's `[a, b]` layout).
    A(Vec<i64>),
}

/// A column name in up to three static parts (joined only when names are needed).
#[derive(Debug, Clone, Copy)]
pub struct Name(&'static str, &'static str, &'static str);

impl Name {
    fn one(a: &'static str) -> Name {
        Name(a, "", "")
    }
    pub fn text(&self) -> String {
        [self.0, self.1, self.2].concat()
    }
}

/// A flow that ended, with why.
#[derive(Debug, Clone)]
pub struct FlowRecord {
    pub flow: Flow,
    pub reason: ExpirationReason,
    pub agent: Arc<str>,
}

const SIDES: [&str; 3] = ["bidirectional", "src2dst", "dst2src"];

/// Every column name, in output order (the CSV header).
pub fn column_names() -> Vec<String> {
    let record = FlowRecord::new(
        Flow::new(0, super::table::placeholder(), 0),
        ExpirationReason::Idle,
        Arc::from(""),
    );
    record.cells().into_iter().map(|(name, _)| name).collect()
}

fn oui(mac: &str) -> String {
    mac.get(..8).unwrap_or_default().to_owned()
}

/// Rate per second over a duration in µs; 0 for a zero-length flow (CICFlowMeter gives
/// Infinity/NaN there).
fn per_second(amount: f64, duration_us: i64) -> f64 {
    if duration_us > 0 {
        amount / (duration_us as f64 / 1e6)
    } else {
        0.0
    }
}

fn ratio(a: f64, b: f64) -> f64 {
    if b > 0.0 { a / b } else { 0.0 }
}

impl FlowRecord {
    pub fn new(flow: Flow, reason: ExpirationReason, agent: Arc<str>) -> FlowRecord {
        FlowRecord {
            flow,
            reason,
            agent,
        }
    }

    /// (column, value) pairs in output order.
    pub fn cells(&self) -> Vec<(String, Cell)> {
        let mut c: Vec<(String, Cell)> = Vec::with_capacity(160);
        self.visit(&mut |name: Name, cell: Cell| c.push((name.text(), cell)));
        c
    }

    /// Calls `sink` with every column in output order (no name is formatted here).
    pub fn visit(&self, sink: &mut impl FnMut(Name, Cell)) {
        let f = &self.flow;
        let mut put = |name: &'static str, cell: Cell| sink(Name::one(name), cell);
        let src_mac = f.src_mac.to_string();
        let dst_mac = f.dst_mac.to_string();
        put("id", Cell::U(f.id));
        put("expiration_id", Cell::I(self.reason.nfstream_id()));
        let (src_oui, dst_oui) = (oui(&src_mac), oui(&dst_mac));
        put("src_ip", Cell::S(f.src_ip.to_string()));
        put("src_mac", Cell::S(src_mac));
        put("src_oui", Cell::S(src_oui));
        put("src_port", Cell::U(u64::from(f.src_port)));
        put("dst_ip", Cell::S(f.dst_ip.to_string()));
        put("dst_mac", Cell::S(dst_mac));
        put("dst_oui", Cell::S(dst_oui));
        put("dst_port", Cell::U(u64::from(f.dst_port)));
        put("protocol", Cell::U(u64::from(f.protocol)));
        put("ip_version", Cell::U(u64::from(f.ip_version)));
        put("vlan_id", Cell::U(u64::from(f.vlan_id)));
        put("tunnel_id", Cell::U(0));
        let sides: [&Side; 3] = [&f.bidirectional, &f.src2dst, &f.dst2src];
        for (name, side) in SIDES.iter().zip(sides) {
            sink(
                Name(name, "_first_seen_ms", ""),
                Cell::I(side.first_seen_ms),
            );
            sink(Name(name, "_last_seen_ms", ""), Cell::I(side.last_seen_ms));
            sink(Name(name, "_duration_ms", ""), Cell::I(side.duration_ms()));
            sink(Name(name, "_packets", ""), Cell::U(side.packets));
            sink(Name(name, "_bytes", ""), Cell::U(side.bytes));
        }
        for (name, side) in SIDES.iter().zip(sides) {
            stat_cells(sink, name, "_ps", &side.ps);
        }
        for (name, side) in SIDES.iter().zip(sides) {
            stat_cells(sink, name, "_piat_ms", &side.piat_ms);
        }
        for (name, side) in SIDES.iter().zip(sides) {
            for (flag, count) in FLAG_NAMES.iter().zip(side.flags) {
                sink(Name(name, flag, "_packets"), Cell::U(u64::from(count)));
            }
        }
        let mut put = |name: &'static str, cell: Cell| sink(Name::one(name), cell);
        put(
            "splt_direction",
            Cell::A(splt_column(f, |s| i64::from(s.direction))),
        );
        put("splt_ps", Cell::A(splt_column(f, |s| i64::from(s.ps))));
        put("splt_piat_ms", Cell::A(splt_column(f, |s| s.piat_ms)));
        put(
            "expiration_reason",
            Cell::S(self.reason.as_str().to_owned()),
        );
        put("agent", Cell::S(self.agent.to_string()));
        self.cic_cells(sink);
    }

    /// The CICFlowMeter-style set, with the corrections of Engelen et al. (2021).
    fn cic_cells(&self, put: &mut impl FnMut(Name, Cell)) {
        let f = &self.flow;
        let (fwd, bwd, bi) = (&f.src2dst, &f.dst2src, &f.bidirectional);
        let duration_us = bi.last_us - bi.first_us;
        put(Name::one("flow_duration_us"), Cell::I(duration_us));
        us_stats(put, "flow_iat", &bi.iat_us);
        put(
            Name::one("fwd_iat_total_us"),
            Cell::I(fwd.last_us - fwd.first_us),
        );
        us_stats(put, "fwd_iat", &fwd.iat_us);
        put(
            Name::one("bwd_iat_total_us"),
            Cell::I(bwd.last_us - bwd.first_us),
        );
        us_stats(put, "bwd_iat", &bwd.iat_us);
        us_stats(put, "active", &f.active_us);
        us_stats(put, "idle", &f.idle_us);
        let subflows = f.subflows.max(1) as f64;
        put(Name::one("subflow_count"), Cell::U(f.subflows));
        put(
            Name::one("subflow_fwd_packets"),
            Cell::F(fwd.packets as f64 / subflows),
        );
        put(
            Name::one("subflow_fwd_bytes"),
            Cell::F(fwd.bytes as f64 / subflows),
        );
        put(
            Name::one("subflow_bwd_packets"),
            Cell::F(bwd.packets as f64 / subflows),
        );
        put(
            Name::one("subflow_bwd_bytes"),
            Cell::F(bwd.bytes as f64 / subflows),
        );
        for (dir, side) in [("fwd", fwd), ("bwd", bwd)] {
            let bulk = &side.bulk;
            put(
                Name(dir, "_bulk_bytes_avg", ""),
                Cell::F(ratio(bulk.bytes as f64, bulk.bulks as f64)),
            );
            put(
                Name(dir, "_bulk_packets_avg", ""),
                Cell::F(ratio(bulk.packets as f64, bulk.bulks as f64)),
            );
            put(
                Name(dir, "_bulk_rate_avg", ""),
                Cell::F(per_second(bulk.bytes as f64, bulk.duration_us)),
            );
        }
        for (dir, side) in [("fwd", fwd), ("bwd", bwd)] {
            put(Name(dir, "_header_bytes", ""), Cell::U(side.header_bytes));
        }
        for (dir, side) in [("fwd", fwd), ("bwd", bwd)] {
            put(
                Name(dir, "_init_win_bytes", ""),
                Cell::I(side.init_window.map_or(-1, i64::from)),
            );
        }
        put(
            Name::one("fwd_act_data_packets"),
            Cell::U(fwd.act_data_packets),
        );
        put(
            Name::one("fwd_seg_size_min"),
            Cell::U(u64::from(fwd.min_header_len.unwrap_or(0))),
        );
        for (dir, side) in [("fwd", fwd), ("bwd", bwd)] {
            put(Name(dir, "_psh_flags", ""), Cell::U(side.flag("psh")));
            put(Name(dir, "_urg_flags", ""), Cell::U(side.flag("urg")));
        }
        for (dir, side) in [("fwd", fwd), ("bwd", bwd)] {
            put(
                Name(dir, "_segment_size_avg", ""),
                Cell::F(side.payload.mean()),
            );
        }
        put(
            Name::one("down_up_ratio"),
            Cell::F(ratio(bwd.packets as f64, fwd.packets as f64)),
        );
        put(
            Name::one("flow_bytes_per_s"),
            Cell::F(per_second(bi.bytes as f64, duration_us)),
        );
        put(
            Name::one("flow_packets_per_s"),
            Cell::F(per_second(bi.packets as f64, duration_us)),
        );
        put(
            Name::one("fwd_packets_per_s"),
            Cell::F(per_second(fwd.packets as f64, duration_us)),
        );
        put(
            Name::one("bwd_packets_per_s"),
            Cell::F(per_second(bwd.packets as f64, duration_us)),
        );
    }

    /// Appends one CSV row (no header) to `out`.
    pub fn write_csv(&self, out: &mut Vec<u8>) {
        let mut first = true;
        self.visit(&mut |_, cell| {
            if !first {
                out.push(b',');
            }
            first = false;
            write_csv_cell(&cell, out);
        });
        out.push(b'\n');
    }

    /// The record as one JSON object (column order kept).
    pub fn to_json(&self) -> serde_json::Value {
        let mut map = serde_json::Map::new();
        for (name, cell) in self.cells() {
            let value = match cell {
                Cell::U(v) => serde_json::Value::from(v),
                Cell::I(v) => serde_json::Value::from(v),
                Cell::F(v) => serde_json::Value::from(v),
                Cell::S(v) => serde_json::Value::from(v),
                Cell::A(v) => serde_json::Value::from(v),
            };
            map.insert(name, value);
        }
        serde_json::Value::Object(map)
    }
}

/// `{side}_{min,mean,stddev,max}_{unit}`; min and max are whole numbers (NFStream integers).
fn stat_cells(
    put: &mut impl FnMut(Name, Cell),
    side: &'static str,
    unit: &'static str,
    r: &Running,
) {
    put(Name(side, "_min", unit), Cell::U(r.min() as u64));
    put(Name(side, "_mean", unit), Cell::F(r.mean()));
    put(Name(side, "_stddev", unit), Cell::F(r.stddev()));
    put(Name(side, "_max", unit), Cell::U(r.max() as u64));
}

fn us_stats(put: &mut impl FnMut(Name, Cell), prefix: &'static str, r: &Running) {
    put(Name(prefix, "_mean_us", ""), Cell::F(r.mean()));
    put(Name(prefix, "_stddev_us", ""), Cell::F(r.stddev()));
    put(Name(prefix, "_max_us", ""), Cell::F(r.max()));
    put(Name(prefix, "_min_us", ""), Cell::F(r.min()));
}

fn splt_column(flow: &Flow, field: impl Fn(&super::state::Splt) -> i64) -> Vec<i64> {
    let mut values: Vec<i64> = flow.splt.iter().map(field).collect();
    values.resize(flow.splt_len(), -1);
    values
}

fn write_csv_cell(cell: &Cell, out: &mut Vec<u8>) {
    match cell {
        Cell::U(v) => out.extend_from_slice(itoa::Buffer::new().format(*v).as_bytes()),
        Cell::I(v) => out.extend_from_slice(itoa::Buffer::new().format(*v).as_bytes()),
        Cell::F(v) => {
            if v.is_finite() {
                out.extend_from_slice(ryu::Buffer::new().format_finite(*v).as_bytes());
            } else {
                out.extend_from_slice(b"0.0");
            }
        }
        Cell::S(s) => {
            if s.contains([',', '"', '\n', '\r']) {
                out.push(b'"');
                out.extend_from_slice(s.replace('"', "\"\"").as_bytes());
                out.push(b'"');
            } else {
                out.extend_from_slice(s.as_bytes());
            }
        }
        Cell::A(values) => {
            out.extend_from_slice(b"\"[");
            for (i, v) in values.iter().enumerate() {
                if i > 0 {
                    out.extend_from_slice(b", ");
                }
                out.extend_from_slice(itoa::Buffer::new().format(*v).as_bytes());
            }
            out.extend_from_slice(b"]\"");
        }
    }
}

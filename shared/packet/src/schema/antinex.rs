//! The `antinex-v1` schema: the columns of the original network-pipeline datasets.
//!
//! Column set: `idx`, then, sorted in byte order as the recorded CSVs are, the 66 other names of
//! the original `ANTINEX_FEATURES_TO_PROCESS` list plus the original's non-numeric and optional
//! columns (addresses, payload hex, TCP options and IP options). Cells have the original's exact
//! semantics including its field mix-ups: they are computed by [`super::legacy`] (Frame -> original
//! message -> original flatten), so the live path and the archive path share one implementation.

use super::{Column, ColumnSchema, Layer, RowInput};

/// The cell of column `index`, taken from the row's legacy cells.
fn legacy_cell(input: &RowInput<'_>, index: usize, out: &mut super::CellOut<'_>) {
    if let Some(cell) = input.legacy_cells().get(index) {
        out.text(cell);
    }
}

macro_rules! antinex_columns {
    ($($name:literal),* $(,)?) => {
        /// The antinex-v1 column names, in header order.
        pub static ANTINEX_V1_NAMES: &[&str] = &[$($name),*];
        static ANTINEX_V1_COLUMNS: &[Column] = &[$(Column { name: $name, layer: Layer::Always, write: legacy_cell }),*];
    };
}

antinex_columns!(
    "idx",
    "arp_hwdst",
    "arp_hwlen",
    "arp_hwsrc",
    "arp_hwtype",
    "arp_id",
    "arp_op",
    "arp_pdst",
    "arp_plen",
    "arp_psrc",
    "arp_ptype",
    "dns_default_aa",
    "dns_default_ad",
    "dns_default_an",
    "dns_default_ancount",
    "dns_default_ar",
    "dns_default_arcount",
    "dns_default_cd",
    "dns_default_id",
    "dns_default_length",
    "dns_default_ns",
    "dns_default_nscount",
    "dns_default_opcode",
    "dns_default_qd",
    "dns_default_qdcount",
    "dns_default_qr",
    "dns_default_ra",
    "dns_default_rcode",
    "dns_default_rd",
    "dns_default_tc",
    "dns_default_z",
    "dns_id",
    "eth_dst",
    "eth_id",
    "eth_src",
    "eth_type",
    "icmp_addr_mask",
    "icmp_code",
    "icmp_gw",
    "icmp_id",
    "icmp_ptr",
    "icmp_seq",
    "icmp_ts_ori",
    "icmp_ts_rx",
    "icmp_ts_tx",
    "icmp_type",
    "icmp_unused",
    "ip_dst",
    "ip_fields_options",
    "ip_id",
    "ip_ihl",
    "ip_len",
    "ip_src",
    "ip_tos",
    "ip_version",
    "ipv6_dst",
    "ipv6_fl",
    "ipv6_hlim",
    "ipv6_nh",
    "ipv6_plen",
    "ipv6_src",
    "ipv6_tc",
    "ipv6_version",
    "ipvsix_id",
    "pad_hex_field_load",
    "pad_id",
    "pad_load",
    "raw_hex_field_load",
    "raw_id",
    "raw_load",
    "tcp_dport",
    "tcp_fields_options.AltChkSum",
    "tcp_fields_options.AltChkSumOpt",
    "tcp_fields_options.EOL",
    "tcp_fields_options.Experiment",
    "tcp_fields_options.MSS",
    "tcp_fields_options.Mood",
    "tcp_fields_options.NOP",
    "tcp_fields_options.SAck",
    "tcp_fields_options.SAckOK",
    "tcp_fields_options.Timestamp",
    "tcp_fields_options.WScale",
    "tcp_fields_urgptr",
    "tcp_id",
    "tcp_seq",
    "tcp_sport",
    "udp_dport",
    "udp_id",
    "udp_len",
    "udp_sport",
);

/// The `antinex-v1` schema.
pub static ANTINEX_V1: ColumnSchema = ColumnSchema {
    name: "antinex-v1",
    version: 1,
    columns: ANTINEX_V1_COLUMNS,
};

/// Index of an antinex-v1 column by name (`idx` is 0; the rest are sorted, so binary search).
pub fn antinex_index(name: &str) -> Option<usize> {
    if name == "idx" {
        return Some(0);
    }
    let rest = ANTINEX_V1_NAMES.get(1..)?;
    rest.binary_search_by(|probe| probe.as_bytes().cmp(name.as_bytes()))
        .ok()
        .map(|i| i + 1)
}

/// The original `ANTINEX_FEATURES_TO_PROCESS` list (original.md §3.3), verbatim.
pub const ANTINEX_FEATURES_TO_PROCESS: &str = "idx,arp_hwlen,arp_hwtype,arp_id,arp_op,arp_plen,arp_ptype,dns_default_aa,dns_default_ad,dns_default_an,dns_default_ancount,dns_default_ar,dns_default_arcount,dns_default_cd,dns_default_id,dns_default_length,dns_default_ns,dns_default_nscount,dns_default_opcode,dns_default_qd,dns_default_qdcount,dns_default_qr,dns_default_ra,dns_default_rcode,dns_default_rd,dns_default_tc,dns_default_z,dns_id,eth_id,eth_type,icmp_addr_mask,icmp_code,icmp_gw,icmp_id,icmp_ptr,icmp_seq,icmp_ts_ori,icmp_ts_rx,icmp_ts_tx,icmp_type,icmp_unused,ip_id,ip_ihl,ip_len,ip_tos,ip_version,ipv6_fl,ipv6_hlim,ipv6_nh,ipv6_plen,ipv6_tc,ipv6_version,ipvsix_id,pad_id,tcp_dport,tcp_fields_options.MSS,tcp_fields_options.NOP,tcp_fields_options.SAckOK,tcp_fields_options.Timestamp,tcp_fields_options.WScale,tcp_id,tcp_seq,tcp_sport,udp_dport,udp_id,udp_len,udp_sport";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idx_first_then_byte_sorted() {
        assert_eq!(ANTINEX_V1_NAMES[0], "idx");
        let rest = &ANTINEX_V1_NAMES[1..];
        assert!(rest.windows(2).all(|w| w[0].as_bytes() < w[1].as_bytes()));
        assert_eq!(ANTINEX_V1.column_names(), ANTINEX_V1_NAMES);
        for (i, name) in ANTINEX_V1_NAMES.iter().enumerate() {
            assert_eq!(antinex_index(name), Some(i));
        }
        assert_eq!(antinex_index("ip_ttl"), None);
    }

    #[test]
    fn contains_every_feature_and_the_recorded_headers() {
        let features: Vec<&str> = ANTINEX_FEATURES_TO_PROCESS.split(',').collect();
        assert_eq!(features.len(), 67);
        for f in features {
            assert!(antinex_index(f).is_some(), "missing feature {f}");
        }
        // The django 2018-01-28 header (original.md §12), plus react-redux's extra column.
        let django = "idx,arp_id,dns_id,eth_dst,eth_id,eth_src,eth_type,icmp_id,ip_dst,ip_id,ip_ihl,ip_len,ip_src,ip_tos,ip_version,ipvsix_id,pad_id,pad_load,raw_id,raw_load,tcp_dport,tcp_fields_options.MSS,tcp_fields_options.NOP,tcp_fields_options.SAckOK,tcp_fields_options.Timestamp,tcp_fields_options.WScale,tcp_id,tcp_seq,tcp_sport,udp_id,raw_hex_field_load";
        for c in django.split(',') {
            assert!(antinex_index(c).is_some(), "missing recorded column {c}");
        }
    }
}

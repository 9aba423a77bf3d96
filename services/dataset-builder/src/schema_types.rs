//! Column types a dataset's schema declares, so the builder never mistakes a list, an
//! address, hex bytes or a name for a number with "bad" cells.
//!
//! A CSV written by netpipe names its schema in its manifest (`netpipe`, `antinex-v1`); a
//! column listed here holds text by design (`tcp_opt_kinds` = `2 4 8 1 3`, `ip_options` =
//! hex). Guessing from the cells does not work for these: many rows hold a single number (`2`),
//! so the column looks numeric and every list becomes a bad row.

/// The netpipe schema's text columns: times, ids, addresses, lists, hex, names, reasons.
const NETPIPE_TEXT: [&str; 20] = [
    "ts",
    "agent",
    "eth_src",
    "eth_dst",
    "arp_hwsrc",
    "arp_psrc",
    "arp_hwdst",
    "arp_pdst",
    "ip_src",
    "ip_dst",
    "ip_options",
    "ipv6_src",
    "ipv6_dst",
    "ipv6_ext",
    "tcp_opt_kinds",
    "tcp_opt_sack",
    "icmp_gw",
    "dns_qname",
    "payload_hex",
    "decode_errors",
];

/// Schema name of the flow datasets `netpipe run --flows` and the processor write.
pub const FLOW_SCHEMA: &str = "netpipe-flows";

/// The flow schema's text columns: addresses, OUIs, the early-flow JSON arrays, the expiry
/// reason and the agent (every other flow column is a number).
const FLOW_TEXT: [&str; 11] = [
    "src_ip",
    "src_mac",
    "src_oui",
    "dst_ip",
    "dst_mac",
    "dst_oui",
    "splt_direction",
    "splt_ps",
    "splt_piat_ms",
    "expiration_reason",
    "agent",
];

/// Is `column` a text column of `schema`? Unknown schemas declare nothing (the cells decide).
pub fn is_text_column(schema: &str, column: &str) -> bool {
    match schema {
        "netpipe" => NETPIPE_TEXT.contains(&column),
        FLOW_SCHEMA => FLOW_TEXT.contains(&column),
        _ => false,
    }
}

/// Which datasets a build reads: packet rows or flow records never mix in one dataset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DatasetKind {
    /// One row per packet (schemas netpipe, antinex-v1, the original's recordings).
    Packets,
    /// One row per bidirectional flow (schema netpipe-flows).
    Flows,
}

impl DatasetKind {
    /// The kind of dataset a schema describes.
    pub fn of_schema(schema: &str) -> DatasetKind {
        if schema == FLOW_SCHEMA {
            DatasetKind::Flows
        } else {
            DatasetKind::Packets
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            DatasetKind::Packets => "packets",
            DatasetKind::Flows => "flows",
        }
    }
}

/// What to do with the text columns a schema declares.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum TextColumns {
    /// Leave them out of the cleaned set (it stays all numbers).
    Drop,
    /// Keep them in the cleaned set as text cells.
    Keep,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_declared_column_is_in_the_netpipe_schema() {
        let schema = netpipe_packet::schema::by_name("netpipe").unwrap();
        for name in NETPIPE_TEXT {
            assert!(schema.column_index(name).is_some(), "{name}");
        }
        assert!(is_text_column("netpipe", "tcp_opt_kinds"));
        assert!(!is_text_column("netpipe", "tcp_opt_mss"));
        assert!(!is_text_column("antinex-v1", "tcp_opt_kinds"));
    }

    #[test]
    fn every_declared_flow_column_is_a_flow_column() {
        let names = netpipe_packet::flow::column_names();
        for name in FLOW_TEXT {
            assert!(names.iter().any(|n| n == name), "{name}");
        }
        assert!(is_text_column(FLOW_SCHEMA, "splt_ps"));
        assert!(!is_text_column(FLOW_SCHEMA, "bidirectional_packets"));
        assert!(!is_text_column("netpipe", "splt_ps"));
    }
}

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

/// Is `column` a text column of `schema`? Unknown schemas declare nothing (the cells decide).
pub fn is_text_column(schema: &str, column: &str) -> bool {
    match schema {
        "netpipe" => NETPIPE_TEXT.contains(&column),
        _ => false,
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
        let schema = shared::schema::by_name("netpipe").unwrap();
        for name in NETPIPE_TEXT {
            assert!(schema.column_index(name).is_some(), "{name}");
        }
        assert!(is_text_column("netpipe", "tcp_opt_kinds"));
        assert!(!is_text_column("netpipe", "tcp_opt_mss"));
        assert!(!is_text_column("antinex-v1", "tcp_opt_kinds"));
    }
}

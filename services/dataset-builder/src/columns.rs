//! Which columns become features of the cleaned set, and why the others do not.

use serde::Serialize;

/// Columns the builder writes itself; an input column of the same name is left out.
pub const RESERVED: [&str; 3] = ["src_file", "label_value", "label_name"];

/// Per-packet identifiers and times: unique per row, never a feature.
const IDENTIFIERS: [&str; 14] = [
    "idx",
    "agent",
    "boot",
    "seq",
    "ts",
    "ts_ns",
    "time",
    "timestamp",
    "created",
    "received",
    "id",
    "uuid",
    "source",
    "flow_id",
];

/// Why a column is not a feature of the cleaned set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DropReason {
    /// Named in --drop-column.
    Configured,
    /// A per-packet identifier or time (idx, agent, seq, ts ...).
    Identifier,
    /// A MAC or IP address (`*src`, `*dst`, `*_mac`, `*_addr`).
    Address,
    /// A payload (`*hex*`, `*_load`, `payload*`).
    Payload,
    /// A DNS name.
    DnsName,
    /// No row of any input has a value (e.g. the original's `*_id` columns).
    AlwaysEmpty,
    /// No cell of the column is a number.
    Text,
    /// The input's schema declares it text (a list, address, hex or name); --text-columns drop.
    SchemaText,
}

impl DropReason {
    pub fn describe(self) -> &'static str {
        match self {
            DropReason::Configured => "named in --drop-column",
            DropReason::Identifier => "per-packet identifier or time",
            DropReason::Address => "MAC or IP address",
            DropReason::Payload => "payload bytes",
            DropReason::DnsName => "DNS name",
            DropReason::AlwaysEmpty => "always empty",
            DropReason::Text => "text: no cell is a number",
            DropReason::SchemaText => "text by the input's schema (list, address, hex or name)",
        }
    }
}

/// Is this name one of the builder's own columns?
pub fn is_reserved(name: &str) -> bool {
    RESERVED.contains(&name)
}

/// The reason to drop a column judged by its name alone, before looking at any data.
pub fn drop_by_name(name: &str, configured: &[String]) -> Option<DropReason> {
    if configured.iter().any(|c| c == name) {
        return Some(DropReason::Configured);
    }
    // A flow's absolute first/last-seen times (`{side}_first_seen_ms`) say when, not what:
    // like a packet's `ts`, a feature there would learn the capture's clock.
    if IDENTIFIERS.contains(&name)
        || name.ends_with("_first_seen_ms")
        || name.ends_with("_last_seen_ms")
    {
        return Some(DropReason::Identifier);
    }
    if name.contains("hex") || name.ends_with("_load") || name.starts_with("payload") {
        // `payload_len` is a length, not bytes.
        if !name.ends_with("_len") {
            return Some(DropReason::Payload);
        }
    }
    if name.starts_with("dns_") && name.contains("name") {
        return Some(DropReason::DnsName);
    }
    if name.ends_with("src")
        || name.ends_with("dst")
        || name.ends_with("_mac")
        || name.ends_with("_addr")
    {
        return Some(DropReason::Address);
    }
    None
}

/// A decimal number as Python/pandas write them: optional sign, digits with an optional
/// fraction, optional exponent (`8080`, `-1`, `65495.0`, `.5`, `1e-3`). No inf/NaN, no spaces.
pub fn is_numeric(cell: &[u8]) -> bool {
    let mut rest = cell;
    if let [b'+' | b'-', tail @ ..] = rest {
        rest = tail;
    }
    let int_digits = leading_digits(rest);
    rest = rest.get(int_digits..).unwrap_or_default();
    let mut frac_digits = 0;
    if let [b'.', tail @ ..] = rest {
        frac_digits = leading_digits(tail);
        rest = tail.get(frac_digits..).unwrap_or_default();
    }
    if int_digits + frac_digits == 0 {
        return false;
    }
    if let [b'e' | b'E', tail @ ..] = rest {
        let mut exp = tail;
        if let [b'+' | b'-', t @ ..] = exp {
            exp = t;
        }
        let digits = leading_digits(exp);
        return digits > 0 && digits == exp.len();
    }
    rest.is_empty()
}

fn leading_digits(bytes: &[u8]) -> usize {
    bytes.iter().take_while(|b| b.is_ascii_digit()).count()
}

/// A non-negative integer cell such as a port or protocol number; accepts pandas' float
/// spelling of integers (`8080.0`).
pub fn cell_u32(cell: &[u8]) -> Option<u32> {
    let digits = leading_digits(cell);
    let (int, frac) = cell.split_at(digits);
    let frac_ok = match frac {
        [] => true,
        [b'.', zeros @ ..] => zeros.iter().all(|b| *b == b'0'),
        _ => false,
    };
    if digits == 0 || !frac_ok {
        return None;
    }
    std::str::from_utf8(int).ok()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_as_python_writes_them() {
        for ok in [
            "0",
            "8080",
            "-1",
            "+2",
            "65495.0",
            "3269735087.0",
            ".5",
            "5.",
            "1e-3",
            "2E+10",
        ] {
            assert!(is_numeric(ok.as_bytes()), "{ok}");
        }
        for bad in [
            "",
            "-",
            ".",
            "1e",
            "e5",
            "nan",
            "inf",
            "0x10",
            "1 ",
            " 1",
            "4854ab",
            "1.2.3",
            "127.0.0.1",
        ] {
            assert!(!is_numeric(bad.as_bytes()), "{bad}");
        }
    }

    #[test]
    fn integer_cells() {
        assert_eq!(cell_u32(b"8080"), Some(8080));
        assert_eq!(cell_u32(b"8080.0"), Some(8080));
        assert_eq!(cell_u32(b"8080.5"), None);
        assert_eq!(cell_u32(b""), None);
        assert_eq!(cell_u32(b"-1"), None);
        assert_eq!(cell_u32(b"99999999999"), None);
    }

    #[test]
    fn names_that_are_never_features() {
        let none: Vec<String> = Vec::new();
        let cases = [
            ("idx", Some(DropReason::Identifier)),
            ("seq", Some(DropReason::Identifier)),
            ("eth_src", Some(DropReason::Address)),
            ("ip_dst", Some(DropReason::Address)),
            ("ipv6_src", Some(DropReason::Address)),
            ("arp_hwsrc", Some(DropReason::Address)),
            ("arp_pdst", Some(DropReason::Address)),
            ("raw_load", Some(DropReason::Payload)),
            ("raw_hex_field_load", Some(DropReason::Payload)),
            ("payload_hex", Some(DropReason::Payload)),
            ("dns_qname", Some(DropReason::DnsName)),
            ("payload_len", None),
            ("tcp_sport", None),
            ("udp_dport", None),
            ("tcp_fields_options.MSS", None),
            ("icmp_addr_mask", None),
            ("bidirectional_first_seen_ms", Some(DropReason::Identifier)),
            ("src2dst_last_seen_ms", Some(DropReason::Identifier)),
            ("bidirectional_duration_ms", None),
            ("src_port", None),
        ];
        for (name, want) in cases {
            assert_eq!(drop_by_name(name, &none), want, "{name}");
        }
        assert_eq!(
            drop_by_name("ip_ttl", &["ip_ttl".to_string()]),
            Some(DropReason::Configured)
        );
    }
}

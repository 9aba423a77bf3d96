//! The original processor's flatten (original.md §3.3, §3.5): one message body -> one row.
//!
//! Per supported layer key, nested dicts are flattened with `.`, keys get the layer's prefix, and
//! empty nested dicts disappear. Unsupported layer keys (`dot1q`, `iperror`, ...) are dropped, as
//! the original did. The `*_id` columns stay empty (the original never filled them). Columns the
//! antinex-v1 list does not have (none occur for messages we build) are dropped.

use serde_json::{Map, Value};

use super::LegacyError;
use crate::schema::RowContext;
use crate::schema::antinex::{ANTINEX_V1_NAMES, antinex_index};

/// Column prefix of each layer key the original processor kept.
fn prefix_for(layer: &str) -> Option<&'static str> {
    Some(match layer {
        "ether" => "eth_",
        "ip" => "ip_",
        "ipv6" => "ipv6_",
        "tcp" => "tcp_",
        "udp" => "udp_",
        "dns" => "dns_",
        "icmp" => "icmp_",
        "arp" => "arp_",
        "raw" => "raw_",
        "padding" => "pad_",
        _ => return None,
    })
}

/// antinex-v1 cells (in column order, `idx` first) of an original message body
/// `{"data": {...}, "created", "source"}`. Cells are unquoted text; absent values are empty.
pub fn antinex_cells_from_message(
    msg: &Value,
    ctx: &RowContext,
) -> Result<Vec<String>, LegacyError> {
    let obj = msg.as_object().ok_or(LegacyError::NotAnObject)?;
    let data = obj.get("data").ok_or(LegacyError::MissingData)?;
    let data = data.as_object().ok_or(LegacyError::DataNotAnObject)?;
    Ok(antinex_cells_from_data(data, ctx))
}

/// Same as [`antinex_cells_from_message`], from the `data` object alone.
pub fn antinex_cells_from_data(data: &Map<String, Value>, ctx: &RowContext) -> Vec<String> {
    let mut cells = vec![String::new(); ANTINEX_V1_NAMES.len()];
    if let Some(first) = cells.first_mut() {
        *first = itoa::Buffer::new().format(ctx.idx).to_owned();
    }
    let mut name = String::with_capacity(48);
    for (layer, fields) in data {
        let (Some(prefix), Some(fields)) = (prefix_for(layer), fields.as_object()) else {
            continue;
        };
        name.clear();
        name.push_str(prefix);
        flatten_into(&mut name, fields, &mut cells);
    }
    cells
}

/// Flattens `fields` under the column-name prefix in `name` (restored on return).
fn flatten_into(name: &mut String, fields: &Map<String, Value>, cells: &mut [String]) {
    let base = name.len();
    for (key, value) in fields {
        name.truncate(base);
        name.push_str(key);
        match value {
            Value::Object(inner) => {
                name.push('.');
                flatten_into(name, inner, cells);
            }
            other => {
                if let Some(cell) = antinex_index(name).and_then(|i| cells.get_mut(i)) {
                    *cell = legacy_cell_text(other);
                }
            }
        }
    }
    name.truncate(base);
}

/// How pandas `to_csv` wrote one value: null empty, booleans `True`/`False`, integers in decimal,
/// floats as Python `repr`, strings raw, lists as Python `repr` (`[1, 2]`).
pub fn legacy_cell_text(value: &Value) -> String {
    let mut out = String::new();
    write_python_repr(value, &mut out, false);
    out
}

fn write_python_repr(value: &Value, out: &mut String, nested: bool) {
    match value {
        Value::Null => {
            if nested {
                out.push_str("None");
            }
        }
        Value::Bool(b) => out.push_str(if *b { "True" } else { "False" }),
        Value::Number(n) => {
            if let Some(u) = n.as_u64() {
                out.push_str(itoa::Buffer::new().format(u));
            } else if let Some(i) = n.as_i64() {
                out.push_str(itoa::Buffer::new().format(i));
            } else if let Some(f) = n.as_f64() {
                out.push_str(&python_float_repr(f));
            }
        }
        Value::String(s) => {
            if nested {
                out.push('\'');
                out.push_str(s);
                out.push('\'');
            } else {
                out.push_str(s);
            }
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_python_repr(item, out, true);
            }
            out.push(']');
        }
        Value::Object(map) => {
            out.push('{');
            for (i, (k, v)) in map.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                out.push('\'');
                out.push_str(k);
                out.push_str("': ");
                write_python_repr(v, out, true);
            }
            out.push('}');
        }
    }
}

/// Python's `repr(float)`: shortest round-trip digits, `.0` for integral values, exponent form
/// (`1e+16`, `1.5e-07`) outside 1e-4..1e16.
fn python_float_repr(f: f64) -> String {
    if !f.is_finite() {
        return if f.is_nan() {
            "nan".into()
        } else if f > 0.0 {
            "inf".into()
        } else {
            "-inf".into()
        };
    }
    let abs = f.abs();
    if abs == 0.0 || (1e-4..1e16).contains(&abs) {
        // Plain notation; ryu may still choose exponent form, so use Display (shortest digits).
        let s = format!("{f}");
        return if s.contains('.') { s } else { format!("{s}.0") };
    }
    // Exponent form: shortest mantissa digits, exponent with sign and at least two digits.
    let s = format!("{f:e}");
    let (mantissa, exp) = s.split_once('e').unwrap_or((&s, "0"));
    let (sign, digits) = match exp.strip_prefix('-') {
        Some(d) => ('-', d),
        None => ('+', exp),
    };
    format!("{mantissa}e{sign}{digits:0>2}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn python_repr_of_values() {
        assert_eq!(legacy_cell_text(&json!(null)), "");
        assert_eq!(legacy_cell_text(&json!(65495)), "65495");
        assert_eq!(legacy_cell_text(&json!(7.0)), "7.0");
        assert_eq!(legacy_cell_text(&json!(0.5)), "0.5");
        assert_eq!(legacy_cell_text(&json!(1e16)), "1e+16");
        assert_eq!(legacy_cell_text(&json!(1.5e-7)), "1.5e-07");
        assert_eq!(legacy_cell_text(&json!("")), "");
        assert_eq!(legacy_cell_text(&json!(true)), "True");
        assert_eq!(legacy_cell_text(&json!([1, 2])), "[1, 2]");
        assert_eq!(legacy_cell_text(&json!(["a", null])), "['a', None]");
    }

    #[test]
    fn flattens_a_recorded_message() {
        // Row 24 of django/netdata-2018-01-28-23-06-05.csv (original.md §12).
        let msg = json!({"data": {
            "ether": {"dst": "00:00:00:00:00:00", "src": "00:00:00:00:00:00", "type": 2048},
            "ip": {"version": 4, "ihl": 5, "tos": 0, "len": 35862, "src": "127.0.0.1", "dst": "127.0.0.1"},
            "tcp": {"sport": 54068, "dport": 8080, "seq": 65072,
                    "fields_options": {"NOP": null, "MSS": 65495, "WScale": 7, "SAckOK": "", "Timestamp": 3269740282u64}},
            "dot1q": {"vlan": 5}},
            "created": "2018-01-28 22:58:16", "source": "localdev"});
        let cells = antinex_cells_from_message(&msg, &RowContext { idx: 24 }).unwrap();
        let get = |n: &str| cells[antinex_index(n).unwrap()].as_str();
        assert_eq!(get("idx"), "24");
        assert_eq!(get("eth_type"), "2048");
        assert_eq!(get("ip_len"), "35862");
        assert_eq!(get("ip_tos"), "0");
        assert_eq!(get("tcp_seq"), "65072");
        assert_eq!(get("tcp_sport"), "54068");
        assert_eq!(get("tcp_fields_options.MSS"), "65495");
        assert_eq!(get("tcp_fields_options.Timestamp"), "3269740282");
        assert_eq!(get("tcp_fields_options.SAckOK"), "");
        assert_eq!(get("tcp_fields_options.NOP"), "");
        assert_eq!(get("ip_id"), "");
        assert_eq!(get("raw_load"), "");
    }

    #[test]
    fn rejects_bodies_without_data() {
        let ctx = RowContext::default();
        assert_eq!(
            antinex_cells_from_message(&json!([1]), &ctx),
            Err(LegacyError::NotAnObject)
        );
        assert_eq!(
            antinex_cells_from_message(&json!({"created": "x"}), &ctx),
            Err(LegacyError::MissingData)
        );
        assert_eq!(
            antinex_cells_from_message(&json!({"data": 3}), &ctx),
            Err(LegacyError::DataNotAnObject)
        );
    }
}

//! Column schemas: flatten a Frame into one CSV row under a named, versioned column list.
//!
//! A schema is data: an ordered static list of [`Column`]s, each a name and a function that
//! writes that column's cell for one frame. One flatten loop ([`ColumnSchema::write_row`]) serves
//! every schema, the header is the list of names, and adding a column is one line. Cells are
//! written straight into the output buffer (see [`csv_cell`]); absent values are empty cells.
//!
//! Schemas (documented column by column in docs/schemas.md):
//! * `netpipe` v2 ([`netpipe::NETPIPE`]): every field the Frame has, with its real meaning;
//!   `netpipe-v1` ([`netpipe::NETPIPE_V1`]) is its v1 prefix.
//! * `antinex-v1` ([`antinex::ANTINEX_V1`]): the columns of the original network-pipeline datasets,
//!   with the original's semantics including its field mix-ups (computed via [`legacy`]).
//!
//! Versioning rule: within one (name, version) the header is byte-for-byte identical; any change
//! to the column list, a column's meaning or its formatting bumps the version.

pub mod antinex;
pub mod csv_cell;
pub mod legacy;
pub mod netpipe;
pub mod timefmt;

use std::cell::OnceCell;

use crate::frame::Frame;
pub use csv_cell::CellOut;

/// Per-row facts that are not in the Frame.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RowContext {
    /// 0-based row number within the output file (antinex-v1 `idx`).
    pub idx: u64,
}

/// What a column's writer sees: the frame, the row context and per-row values computed once and
/// shared by several columns.
pub struct RowInput<'a> {
    pub frame: &'a Frame,
    pub ctx: &'a RowContext,
    /// antinex-v1 cells (in column order), computed on first use.
    legacy_cells: OnceCell<Vec<String>>,
}

impl<'a> RowInput<'a> {
    pub fn new(frame: &'a Frame, ctx: &'a RowContext) -> Self {
        RowInput {
            frame,
            ctx,
            legacy_cells: OnceCell::new(),
        }
    }

    /// The antinex-v1 cells of this frame (original semantics), computed once per row.
    pub fn legacy_cells(&self) -> &[String] {
        self.legacy_cells
            .get_or_init(|| legacy::antinex_cells_from_frame(self.frame, self.ctx))
    }
}

/// Writes one column's cell. The `usize` is the column's index in its schema.
pub type WriteCell = fn(&RowInput<'_>, usize, &mut CellOut<'_>);

/// One column: its header name, the frame layer it reads and how to write its cell.
pub struct Column {
    pub name: &'static str,
    /// The writer runs only when this layer is present; otherwise the cell is empty without a
    /// call (most columns of a row belong to absent layers, so this is the hot path).
    pub layer: Layer,
    pub write: WriteCell,
}

/// Which part of a frame a column needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Layer {
    /// Always call the writer.
    Always,
    Eth,
    Sll,
    Vlan,
    Mpls,
    Llc,
    Arp,
    Ipv4,
    Ipv6,
    /// IPv4 or IPv6.
    Ip,
    Tcp,
    Udp,
    Icmp,
    Icmpv6,
    Dns,
    Payload,
    Padding,
    Errors,
}

impl Layer {
    const fn bit(self) -> u32 {
        1 << self as u8
    }

    /// Bit set of the layers present in `frame` (`Always` is always set).
    fn present_in(frame: &Frame) -> u32 {
        let mut m = Layer::Always.bit();
        let mut set = |cond: bool, l: Layer| {
            if cond {
                m |= l.bit();
            }
        };
        set(frame.eth.is_some(), Layer::Eth);
        set(frame.sll.is_some(), Layer::Sll);
        set(!frame.vlan.is_empty(), Layer::Vlan);
        set(!frame.mpls.is_empty(), Layer::Mpls);
        set(frame.llc.is_some(), Layer::Llc);
        set(frame.arp.is_some(), Layer::Arp);
        set(frame.ipv4.is_some(), Layer::Ipv4);
        set(frame.ipv6.is_some(), Layer::Ipv6);
        set(frame.ipv4.is_some() || frame.ipv6.is_some(), Layer::Ip);
        set(frame.tcp.is_some(), Layer::Tcp);
        set(frame.udp.is_some(), Layer::Udp);
        set(frame.icmp.is_some(), Layer::Icmp);
        set(frame.icmpv6.is_some(), Layer::Icmpv6);
        set(frame.dns.is_some(), Layer::Dns);
        set(frame.payload.is_some(), Layer::Payload);
        set(frame.padding.is_some(), Layer::Padding);
        set(!frame.errors.is_empty(), Layer::Errors);
        m
    }
}

/// A named, versioned, ordered list of columns.
pub struct ColumnSchema {
    pub name: &'static str,
    pub version: u32,
    pub columns: &'static [Column],
}

/// Every schema, by name.
pub static SCHEMAS: [&ColumnSchema; 3] = [
    &netpipe::NETPIPE,
    &antinex::ANTINEX_V1,
    &netpipe::NETPIPE_V1,
];

/// The schema called `name` (`netpipe`, `antinex-v1`, `netpipe-v1`).
pub fn by_name(name: &str) -> Option<&'static ColumnSchema> {
    SCHEMAS.iter().copied().find(|s| s.name == name)
}

impl ColumnSchema {
    /// Column names in order (the header).
    pub fn column_names(&self) -> Vec<&'static str> {
        self.columns.iter().map(|c| c.name).collect()
    }

    /// Index of the column called `name`.
    pub fn column_index(&self, name: &str) -> Option<usize> {
        self.columns.iter().position(|c| c.name == name)
    }

    /// The CSV header line, with a trailing `\n`.
    pub fn write_header(&self, out: &mut Vec<u8>) {
        for (i, col) in self.columns.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            CellOut::csv(out).text(col.name);
        }
        out.push(b'\n');
    }

    /// One CSV line for `frame`, with a trailing `\n`; text cells are quoted per RFC 4180 when
    /// they contain `,` `"` CR or LF.
    pub fn write_row(&self, frame: &Frame, ctx: &RowContext, out: &mut Vec<u8>) {
        let input = RowInput::new(frame, ctx);
        let present = Layer::present_in(frame);
        // One byte per separator plus a typical cell: a single reservation for most rows.
        out.reserve(self.columns.len() * 4);
        for (i, col) in self.columns.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            if present & col.layer.bit() != 0 {
                (col.write)(&input, i, &mut CellOut::csv(out));
            }
        }
        out.push(b'\n');
    }

    /// The same cells as [`Self::write_row`], unquoted, one String each.
    pub fn row_cells(&self, frame: &Frame, ctx: &RowContext) -> Vec<String> {
        let input = RowInput::new(frame, ctx);
        let present = Layer::present_in(frame);
        let mut scratch = Vec::with_capacity(64);
        self.columns
            .iter()
            .enumerate()
            .map(|(i, col)| {
                scratch.clear();
                if present & col.layer.bit() != 0 {
                    (col.write)(&input, i, &mut CellOut::raw(&mut scratch));
                }
                String::from_utf8_lossy(&scratch).into_owned()
            })
            .collect()
    }
}

impl std::fmt::Debug for ColumnSchema {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ColumnSchema")
            .field("name", &self.name)
            .field("version", &self.version)
            .field("columns", &self.columns.len())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schemas_are_found_by_name_and_have_unique_columns() {
        for name in ["netpipe", "antinex-v1", "netpipe-v1"] {
            let schema = by_name(name).unwrap();
            assert_eq!(schema.name, name);
            let mut names = schema.column_names();
            let n = names.len();
            names.sort_unstable();
            names.dedup();
            assert_eq!(names.len(), n, "duplicate column in {name}");
        }
        assert!(by_name("nope").is_none());
    }
}

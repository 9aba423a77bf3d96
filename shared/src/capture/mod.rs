//! Capture input: the only code that talks to libpcap or reads capture files.
//!
//! Files are read with `pcap-parser` (format detected by magic number; pcapng with several
//! interfaces and link types works, which libpcap cannot do); live interfaces go through libpcap
//! (`pcap` crate) with a kernel BPF filter.

mod file;
mod linktype;
mod live;

pub use file::{CaptureFile, FileError, FileFormat};
pub use linktype::LinkType;
pub use live::{FileFilter, LiveCapture, LiveConfig, LiveError, LiveStats, compile_filter};

/// One captured packet as it came off the wire or out of a file, borrowed from the reader.
#[derive(Debug, Clone, Copy)]
pub struct RawPacket<'a> {
    /// Capture time, nanoseconds since the Unix epoch (UTC).
    pub ts_ns: i64,
    /// Length on the wire.
    pub wire_len: u32,
    /// Link-layer type of this packet (per interface in pcapng).
    pub link: LinkType,
    /// The captured bytes (`data.len()` is the captured length).
    pub data: &'a [u8],
}

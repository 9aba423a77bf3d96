//! Capture input: the only code that talks to libpcap or reads capture files.
//!
//! Files are read with `pcap-parser` (format detected by magic number; pcapng with several
//! interfaces and link types works, which libpcap cannot do); live interfaces go through libpcap
//! (`pcap` crate) with a kernel BPF filter.

mod file;
mod live;
pub mod sample;

pub use file::{CaptureFile, FileError, FileFormat};
pub use live::{FileFilter, LiveCapture, LiveConfig, LiveError, LiveStats, compile_filter};
pub use netpipe_packet::link::{LinkType, RawPacket};

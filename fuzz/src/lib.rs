//! The decoder's exact source files, compiled on their own for fuzzing.
//!
//! `shared` pulls in tokio, the broker clients, TLS and OpenTelemetry; building all of that
//! with sanitizer coverage takes far longer than the decoder itself. The decoder only needs
//! `frame`, `capture::{LinkType, RawPacket}` and etherparse, so this crate includes those
//! files by path: the fuzzer runs the very code `shared` ships.

#[path = "../../shared/src/frame.rs"]
pub mod frame;

#[path = "../../shared/src/capture/linktype.rs"]
mod linktype;

pub mod capture {
    pub use crate::linktype::LinkType;

    /// Same fields as `shared::capture::RawPacket` (that file also declares the pcap reader
    /// modules, so it cannot be included here).
    #[derive(Debug, Clone, Copy)]
    pub struct RawPacket<'a> {
        pub ts_ns: i64,
        pub wire_len: u32,
        pub link: LinkType,
        pub data: &'a [u8],
    }
}

#[path = "../../shared/src/decode/mod.rs"]
pub mod decode;

/// Link types the decoder understands; the first two input bytes pick one.
pub const LINK_TYPES: [u16; 10] = [0, 1, 12, 14, 101, 108, 113, 228, 229, 276];

/// Link type from the first two input bytes: the value itself when it is a supported link
/// type (so corpus seeds can carry their real link type), otherwise an index into the list.
pub fn pick_link(selector: u16) -> u16 {
    if LINK_TYPES.contains(&selector) {
        selector
    } else {
        LINK_TYPES[usize::from(selector) % LINK_TYPES.len()]
    }
}

//! Helpers of the decoder fuzz target. The decoder itself comes from the pure packet crate
//! (`netpipe-packet`: no tokio, no brokers, no TLS), so instrumenting it stays quick.

pub use netpipe_packet::{decode, frame, link};

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

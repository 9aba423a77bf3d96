//! The Frame batch wire format, encoded and decoded without serde's generic machinery.
//!
//! Frame JSON is the hot path of the whole pipeline: the agent encodes every packet and the
//! processor decodes it again, and with serde_json those two steps took about half of each
//! service's CPU (docs/benchmarks.md, "Frame codec"). This module writes exactly the bytes
//! `serde_json::to_vec` writes for `&[Frame]` (the derive in `frame.rs` stays the contract, and
//! tests compare the two byte for byte), and reads the common shape of such a body directly.
//!
//! The reader is a fast path, not a second parser to trust: it gives up (`None`) on anything it
//! does not expect (an escape sequence, `null`, an unknown or repeated key, a number with a
//! fraction), and the caller then decodes the body with serde_json, which yields either the
//! same frames or the error that dead-letters the message. Tests check that whenever the fast
//! path accepts a body, serde_json accepts it too and yields the same frames.

mod read;
mod write;

pub use read::read_frames;
pub use write::write_frames;

//! netpipe's pure packet core: no I/O, no clock, no logging, no tokio.
//!
//! One path for a packet (see docs/architecture.md): captured bytes ([`link::RawPacket`]) ->
//! [`decode`] -> [`frame::Frame`] -> [`schema`] rows. Beside it, [`flow`] folds frames into
//! bidirectional flow records. [`frame_json`] is the frame's JSON form (the wire format of
//! frames on a broker, and what `netpipe decode` prints); [`seq`] numbers packets.
//! Everything that touches the outside world (capture, brokers, datasets, HTTP) is in the
//! runtime crate, `netpipe-runtime`.

pub mod ascii_out;
pub mod decode;
pub mod flow;
pub mod frame;
pub mod frame_json;
pub mod link;
pub mod schema;
pub mod seq;

pub use frame::{FRAME_VERSION, Frame};
pub use link::{LinkType, RawPacket};

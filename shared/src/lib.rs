//! netpipe's common crate: everything more than one service needs.
//!
//! One path for a packet (see docs/architecture.md):
//! capture -> [`decode`] -> [`frame::Frame`] -> [`broker`] -> [`schema`] rows -> [`dataset`] files.
//! `decode` and `schema` are pure (no I/O, no clock, no logging); all I/O lives in `capture`,
//! `broker`, `dataset` and `ops`. Beside the packet path, [`flow`] (pure) folds frames into
//! bidirectional flow records and [`flow_live`] runs it with a wall-clock tick in live capture.

pub mod ascii_out;
pub mod broker;
pub mod capture;
pub mod dataset;
pub mod decode;
pub mod error_line;
pub mod fixtures;
pub mod flags;
pub mod flow;
pub mod flow_live;
pub mod frame;
pub mod frame_json;
pub mod ops;
pub mod paths;
pub mod schema;
pub mod seq;

pub use error_line::error_line;
pub use frame::{FRAME_VERSION, Frame};

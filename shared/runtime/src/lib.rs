//! netpipe's runtime crate: everything that touches the outside world, for every service.
//!
//! One path for a packet (see docs/architecture.md): [`capture`] -> decode (the pure packet
//! core, `netpipe-packet`) -> frame -> [`broker`] -> schema rows -> [`dataset`] files. [`ops`]
//! is the HTTP surface every service shares (health, readiness, metrics, telemetry, signals);
//! [`service`] is the shell every service shares (common flags, env names, backoff);
//! [`flow_live`] runs the pure flow engine with a wall-clock tick in live capture.

pub mod broker;
pub mod capture;
pub mod dataset;
pub mod error_line;
pub mod flags;
pub mod flow_live;
pub mod ops;
pub mod service;

pub use error_line::error_line;

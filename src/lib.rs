//! The `netpipe` command: composes the service libraries.

pub mod cli;
pub mod decode_cmd;

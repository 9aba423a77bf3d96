//! The `netpipe` command: composes the service libraries.

pub mod cli;
pub mod decode_cmd;
pub mod flows_cmd;
pub mod health_check_cmd;
pub mod reference;
pub mod run_cmd;
pub mod run_flows;

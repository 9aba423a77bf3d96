//! The `netpipe` command line: decode, flows, run, health-check, bad input, extreme flag values
//! (one test binary). Live captures on `lo` need root: those tests are ignored unless the
//! `system-tests` feature is on (scripts/test.sh turns it on).

mod decode_cli;
mod decode_stdin_output;
mod extreme_flags;
mod flows_cli;
mod health_check_cli;
mod run_bad_input;
mod run_cli;
mod run_env_isolation;
mod run_flows_cli;

//! `netpipe`: one binary for the whole pipeline.
//! `netpipe decode` prints rows or frames of a capture; `netpipe run` is the embedded pipeline.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    netpipe_runtime::ops::tune_allocator();
    let cli = netpipe::cli::Cli::parse();
    match netpipe::cli::dispatch(cli) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("netpipe: {}", netpipe_runtime::error_line(err.as_ref()));
            ExitCode::FAILURE
        }
    }
}

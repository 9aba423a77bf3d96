//! `netpipe`: one binary for the whole pipeline.
//! `netpipe decode` prints rows or frames of a capture; `netpipe run` is the embedded pipeline.

use std::process::ExitCode;

fn main() -> ExitCode {
    netpipe_runtime::ops::tune_allocator();
    let (cli, deprecations) = netpipe::cli::Cli::parse_with_aliases();
    // No log subscriber in the CLI: the warnings go to stderr directly.
    for line in deprecations.lines() {
        eprintln!("netpipe: warning: {line}");
    }
    match netpipe::cli::dispatch(cli) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("netpipe: {}", netpipe_runtime::error_line(err.as_ref()));
            ExitCode::FAILURE
        }
    }
}

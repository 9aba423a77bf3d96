//! Every way a build can fail, each with the exit code the job reports.

use std::path::PathBuf;

/// Exit code of a successful build.
pub const EXIT_OK: u8 = 0;
/// Exit code when writing outputs (or another local I/O step) failed, the ops server could not
/// listen, or a signal stopped the build before it finished.
pub const EXIT_IO: u8 = 1;
/// Exit code for an invalid configuration: flags, label rules, output paths.
pub const EXIT_CONFIG: u8 = 3;
/// Exit code for bad input: no input file, an unreadable or malformed file, bad rows.
pub const EXIT_BAD_INPUT: u8 = 4;

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("invalid configuration: {0}")]
    Config(String),

    #[error("label rules {source_name}: {message}")]
    Rules {
        source_name: String,
        message: String,
    },

    #[error("no input files: {0}")]
    NoInputs(String),

    #[error("cannot read input {path}: {source}")]
    ReadInput {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// A problem at one place of one input file (header, CSV syntax, file changed).
    #[error("{path}:{line}: {message}")]
    Input {
        path: String,
        line: u64,
        message: String,
    },

    /// Rows that would make a wrong dataset; listed with file:line, and refused unless
    /// `--allow-bad-rows` says to skip them.
    #[error(
        "bad input: {ragged_rows} ragged row(s), {bad_cells} non-numeric cell(s) in numeric columns; \
         rerun with --allow-bad-rows to skip those rows{}",
        list(examples)
    )]
    BadRows {
        ragged_rows: u64,
        bad_cells: u64,
        examples: Vec<String>,
    },

    /// `--allow-bad-rows` would have skipped more than `--max-bad-rows-percent` of the rows.
    #[error(
        "bad input: {skipped} of {rows} rows ({percent:.2}%) are bad, more than \
         --max-bad-rows-percent {limit}; nothing written"
    )]
    TooManyBadRows {
        skipped: u64,
        rows: u64,
        percent: f64,
        limit: f64,
    },

    #[error("cannot {action} {path}: {source}")]
    Io {
        path: PathBuf,
        action: &'static str,
        #[source]
        source: std::io::Error,
    },

    /// The ops server could not start (address in use, ...).
    #[error("ops server: {0}")]
    Ops(String),

    /// A bug (a panicked build thread); reported, never expected.
    #[error("internal error: {0}")]
    Internal(String),

    /// SIGTERM/SIGINT (the shutdown token) stopped the build before it finished; nothing was
    /// written.
    #[error("stopped before the build finished")]
    Cancelled,
}

fn list(examples: &[String]) -> String {
    examples.iter().map(|e| format!("\n  {e}")).collect()
}

impl BuildError {
    /// The process exit code for this error.
    pub fn exit_code(&self) -> u8 {
        match self {
            BuildError::Config(_) | BuildError::Rules { .. } => EXIT_CONFIG,
            BuildError::NoInputs(_)
            | BuildError::ReadInput { .. }
            | BuildError::Input { .. }
            | BuildError::BadRows { .. }
            | BuildError::TooManyBadRows { .. } => EXIT_BAD_INPUT,
            BuildError::Io { .. }
            | BuildError::Ops(_)
            | BuildError::Internal(_)
            | BuildError::Cancelled => EXIT_IO,
        }
    }

    /// Every value of [`BuildError::kind`] (metric label values are fixed up front).
    pub const KINDS: [&'static str; 10] = [
        "config",
        "rules",
        "no_inputs",
        "read_input",
        "input",
        "bad_rows",
        "io",
        "ops",
        "internal",
        "cancelled",
    ];

    /// A short machine-friendly name, used as a metric label.
    pub fn kind(&self) -> &'static str {
        match self {
            BuildError::Config(_) => "config",
            BuildError::Rules { .. } => "rules",
            BuildError::NoInputs(_) => "no_inputs",
            BuildError::ReadInput { .. } => "read_input",
            BuildError::Input { .. } => "input",
            BuildError::BadRows { .. } | BuildError::TooManyBadRows { .. } => "bad_rows",
            BuildError::Io { .. } => "io",
            BuildError::Ops(_) => "ops",
            BuildError::Internal(_) => "internal",
            BuildError::Cancelled => "cancelled",
        }
    }

    pub(crate) fn io(
        path: impl Into<PathBuf>,
        action: &'static str,
        source: std::io::Error,
    ) -> Self {
        BuildError::Io {
            path: path.into(),
            action,
            source,
        }
    }

    pub(crate) fn read(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        BuildError::ReadInput {
            path: path.into(),
            source,
        }
    }
}

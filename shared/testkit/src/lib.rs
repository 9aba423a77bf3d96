//! netpipe's test kit: only ever a dev-dependency. Sample frames, where the reference corpus beside the repository lives, and `promtool`.

pub mod paths;
pub mod promtool;
pub mod samples;

pub use promtool::promtool_check;

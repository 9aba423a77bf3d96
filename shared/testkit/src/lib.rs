//! netpipe's test kit: only ever a dev-dependency. Sample frames, where the reference corpus beside the repository lives, and `promtool`.

pub mod paths;
pub mod promtool;
pub mod samples;
pub mod system;

pub use promtool::promtool_check;
pub use system::{must_not_skip, skip};

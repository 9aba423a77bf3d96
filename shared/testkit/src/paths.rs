//! Where the reference data beside the repository lives (`../shared/data`), for tests and benches.

use std::path::PathBuf;

/// `../shared/data` next to the workspace root, or `NETPIPE_SHARED_DATA` when set.
/// Returns `None` when absent (a user's clone): tests then say so and skip, except in CI
/// (`CI=true`), where a missing reference directory is an error.
pub fn shared_data_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("NETPIPE_SHARED_DATA") {
        let dir = PathBuf::from(dir);
        return dir.is_dir().then_some(dir);
    }
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    // This crate is shared/testkit, two levels below the workspace root.
    let dir = manifest.ancestors().nth(3)?.join("shared").join("data");
    dir.is_dir().then_some(dir)
}

/// Like [`shared_data_dir`], for tests: prints a skip notice when the data is absent, and
/// panics in CI, where the data must be there.
pub fn shared_data_or_skip(test: &str) -> Option<PathBuf> {
    let dir = shared_data_dir();
    if dir.is_none() {
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("{test}: ../shared/data is missing, and CI must have it");
        }
        eprintln!("{test}: skipped, ../shared/data is absent (set NETPIPE_SHARED_DATA to run it)");
    }
    dir
}

//! Whether a test that needs a server, a tool or root may skip when it is missing.

/// True in CI (`CI=true`) and when the tests are built with `--features system-tests` (as
/// scripts/test.sh does): a missing server, tool or privilege then fails the test instead of
/// skipping it, so nothing is left out silently.
pub fn must_not_skip() -> bool {
    cfg!(feature = "system-tests") || std::env::var("CI").is_ok_and(|v| v == "true")
}

/// For a test that cannot run here (`why`): prints a skip notice, or panics when
/// [`must_not_skip`]. The caller returns after it.
pub fn skip(test: &str, why: &str) {
    if must_not_skip() {
        panic!("{test}: {why} (required with --features system-tests and in CI)");
    }
    eprintln!("{test}: skipped, {why}");
}

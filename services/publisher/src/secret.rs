//! Passwords and tokens: secrecy's `SecretString`. Its `Debug` prints `[REDACTED]`, it has no
//! `Display` (so it cannot reach a log line or an error message by accident), and the value is
//! wiped on drop; only `expose_secret()` gives it, at the places that put it on the wire.

use std::convert::Infallible;

pub use secrecy::{ExposeSecret, SecretString};

/// clap's value parser for a secret flag or env var.
pub fn parse_secret(value: &str) -> Result<SecretString, Infallible> {
    Ok(SecretString::from(value))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_hides_the_value() {
        let Ok(s) = parse_secret("hunter2");
        assert!(!format!("{s:?}").contains("hunter2"));
        assert!(!format!("{:?}", Some(s.clone())).contains("hunter2"));
        assert_eq!(s.expose_secret(), "hunter2");
    }
}

//! The one boolean parser of every flag and environment variable.

/// `1`, `true`, `yes`, `on`, `y`, `t` (any case) are true; `0`, `false`, `no`, `off`, `n`, `f`
/// and empty are false. A superset of what each service accepted before (clap's "boolish",
/// the publisher's list, the original's `"1"`), so no existing env file changes meaning.
pub fn parse_bool(value: &str) -> Result<bool, String> {
    match value.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" | "y" | "t" => Ok(true),
        "0" | "false" | "no" | "off" | "n" | "f" | "" => Ok(false),
        other => Err(format!(
            "expected 1/0, true/false, yes/no or on/off, got {other:?}"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::parse_bool;

    #[test]
    fn accepts_every_spelling_the_services_accepted() {
        for yes in ["1", "true", "TRUE", " yes", "on", "y", "t"] {
            assert_eq!(parse_bool(yes), Ok(true), "{yes}");
        }
        for no in ["0", "false", "No", "off", "n", "f", "", "  "] {
            assert_eq!(parse_bool(no), Ok(false), "{no}");
        }
        assert!(parse_bool("maybe").is_err());
        assert!(parse_bool("2").is_err());
    }
}

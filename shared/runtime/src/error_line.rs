//! One line for an error and its causes, for the last message a binary prints.
//!
//! Many errors show their cause in their own message *and* return it from `source()`, so
//! printing the whole chain naively repeats it (`No such file (os error 2): No such file (os
//! error 2)`), while printing only the top hides causes such as a TLS or DNS failure behind
//! "error sending request". This prints each cause once.

use std::error::Error;

/// `top: cause: deeper cause`, leaving out a cause whose text is already on the line.
pub fn error_line(error: &(dyn Error + 'static)) -> String {
    let mut line = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !text.is_empty() && !line.contains(&text) {
            line.push_str(": ");
            line.push_str(&text);
        }
        source = cause.source();
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("{path}: {source}")]
    struct Repeats {
        path: String,
        source: std::io::Error,
    }

    #[derive(Debug, thiserror::Error)]
    #[error("error sending request")]
    struct Hides {
        source: std::io::Error,
    }

    #[test]
    fn a_cause_in_the_message_is_not_repeated() {
        let e = Repeats {
            path: "/x".into(),
            source: std::io::Error::from(std::io::ErrorKind::NotFound),
        };
        assert_eq!(error_line(&e), "/x: entity not found");
    }

    #[test]
    fn a_hidden_cause_is_shown() {
        let e = Hides {
            source: std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused"),
        };
        assert_eq!(error_line(&e), "error sending request: refused");
    }
}

//! The environment naming scheme's old names, and parsing that honours them.
//!
//! Each service lists its renamed variables as [`Alias`]es. When the old name is set and the
//! new one is not, the flag reads the old name (clap's own env handling: same parser, same
//! delimiter); either way the old name earns one deprecation warning, logged once telemetry is
//! up. The original network-pipeline's names are not aliases: they are the scheme's names.
//!
//! [`defaults`] builds a `Config` from flags alone, with every env variable ignored: what
//! `netpipe run` embeds, so the shell's environment cannot change the embedded pipeline.

use std::collections::HashSet;
use std::ffi::OsString;
use std::sync::{Mutex, OnceLock};

use clap::{Command, CommandFactory, FromArgMatches};

/// A renamed environment variable: `old` still works, with a warning, until it is removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Alias {
    pub old: &'static str,
    pub new: &'static str,
}

/// The deprecated names one parse met.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Deprecations {
    used: Vec<(Alias, bool)>,
}

impl Deprecations {
    /// `(alias, honoured)`: honoured = the old name's value was used (the new one is unset).
    pub fn used(&self) -> &[(Alias, bool)] {
        &self.used
    }

    /// One warning line per deprecated name.
    pub fn lines(&self) -> Vec<String> {
        self.used
            .iter()
            .map(|(alias, honoured)| warning(alias, *honoured))
            .collect()
    }

    /// Logs [`Deprecations::lines`] as warnings, each name once per process whoever calls this.
    pub fn log(&self) {
        static LOGGED: OnceLock<Mutex<HashSet<&'static str>>> = OnceLock::new();
        let logged = LOGGED.get_or_init(Default::default);
        for (alias, honoured) in &self.used {
            let first = logged
                .lock()
                .map(|mut set| set.insert(alias.old))
                .unwrap_or(false);
            if first {
                let line = warning(alias, *honoured);
                tracing::warn!(old = alias.old, new = alias.new, "{line}");
            }
        }
    }
}

fn warning(alias: &Alias, honoured: bool) -> String {
    if honoured {
        format!(
            "environment variable {} is deprecated: rename it to {}",
            alias.old, alias.new
        )
    } else {
        format!(
            "environment variable {} is deprecated and ignored: {} is set",
            alias.old, alias.new
        )
    }
}

/// Points every flag whose env is an alias's `new` name at the `old` name when only the old
/// one is set (`lookup` reads the environment).
pub fn apply_aliases(
    command: Command,
    aliases: &[Alias],
    lookup: impl Fn(&str) -> Option<OsString>,
) -> (Command, Deprecations) {
    let mut deprecations = Deprecations::default();
    let mut renames: Vec<Alias> = Vec::new();
    for alias in aliases {
        let declared = command
            .get_arguments()
            .any(|arg| arg.get_env().is_some_and(|env| env == alias.new));
        if !declared || lookup(alias.old).is_none() {
            continue;
        }
        let honoured = lookup(alias.new).is_none();
        deprecations.used.push((*alias, honoured));
        if honoured {
            renames.push(*alias);
        }
    }
    let command = command.mut_args(|arg| {
        let rename = renames
            .iter()
            .find(|alias| arg.get_env().is_some_and(|env| env == alias.new));
        match rename {
            Some(alias) => arg.env(alias.old),
            None => arg,
        }
    });
    (command, deprecations)
}

/// `C` from the process's arguments and environment, aliases applied; exits with clap's
/// message on bad input, like `Parser::parse`.
pub fn parse<C: CommandFactory + FromArgMatches>(aliases: &[Alias]) -> (C, Deprecations) {
    parse_from(std::env::args_os(), aliases)
}

/// [`parse`] with explicit arguments (the environment is still read).
pub fn parse_from<C, I, T>(args: I, aliases: &[Alias]) -> (C, Deprecations)
where
    C: CommandFactory + FromArgMatches,
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let (command, deprecations) =
        apply_aliases(C::command(), aliases, |name| std::env::var_os(name));
    let matches = command.get_matches_from(args);
    match C::from_arg_matches(&matches) {
        Ok(config) => (config, deprecations),
        Err(error) => error.exit(),
    }
}

/// `C` from `args` alone: every env variable of every flag ignored.
pub fn from_args_only<C, I, T>(args: I) -> Result<C, clap::Error>
where
    C: CommandFactory + FromArgMatches,
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let command = C::command().mut_args(|arg| arg.env(None::<&'static str>));
    let matches = command.try_get_matches_from(args)?;
    C::from_arg_matches(&matches)
}

/// `C`'s defaults, no env variable read (the struct a caller then fills in).
pub fn defaults<C: CommandFactory + FromArgMatches>() -> C {
    let name = C::command().get_name().to_string();
    match from_args_only::<C, _, _>([name]) {
        Ok(config) => config,
        // Only a required flag without a default could fail here: a bug in `C`, not input.
        Err(error) => panic!("{} has a required flag: {error}", C::command().get_name()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Demo {
        #[arg(long, env = "DEMO_NEW_NAME", default_value = "default")]
        name: String,
        #[arg(long, env = "DEMO_LIST", value_delimiter = ',')]
        list: Vec<String>,
    }

    const ALIASES: &[Alias] = &[
        Alias {
            old: "DEMO_OLD_NAME",
            new: "DEMO_NEW_NAME",
        },
        Alias {
            old: "DEMO_OLD_LIST",
            new: "DEMO_LIST",
        },
        Alias {
            old: "DEMO_UNRELATED",
            new: "NOT_A_FLAG_OF_DEMO",
        },
    ];

    /// The env name each flag reads after the aliases for `env` are applied.
    fn env_names(env: &[(&str, &str)]) -> (Vec<String>, Deprecations) {
        let lookup = |name: &str| {
            env.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| OsString::from(v))
        };
        let (command, deprecations) = apply_aliases(Demo::command(), ALIASES, lookup);
        let names = command
            .get_arguments()
            .filter_map(|arg| arg.get_env())
            .map(|env| env.to_string_lossy().into_owned())
            .collect();
        (names, deprecations)
    }

    #[test]
    fn the_old_name_is_read_and_reported_when_the_new_one_is_unset() {
        let (names, deprecations) =
            env_names(&[("DEMO_OLD_NAME", "old"), ("DEMO_OLD_LIST", "a,b")]);
        assert_eq!(names, ["DEMO_OLD_NAME", "DEMO_OLD_LIST"]);
        assert_eq!(
            deprecations.used(),
            &[(ALIASES[0], true), (ALIASES[1], true)]
        );

        let (names, deprecations) =
            env_names(&[("DEMO_OLD_NAME", "old"), ("DEMO_NEW_NAME", "new")]);
        assert_eq!(names, ["DEMO_NEW_NAME", "DEMO_LIST"]);
        assert_eq!(deprecations.used(), &[(ALIASES[0], false)]);

        let (names, deprecations) = env_names(&[("DEMO_UNRELATED", "x")]);
        assert_eq!(names, ["DEMO_NEW_NAME", "DEMO_LIST"]);
        assert!(deprecations.used().is_empty());
    }

    #[test]
    fn defaults_ignore_the_environment() {
        // DEMO_* are never set in the real environment; PATH always is.
        #[derive(Debug, Parser)]
        struct Path {
            #[arg(long, env = "PATH", default_value = "none")]
            path: String,
        }
        assert_eq!(defaults::<Path>().path, "none");
        assert_eq!(defaults::<Demo>().name, "default");
    }
}

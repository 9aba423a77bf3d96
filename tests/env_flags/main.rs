//! Every environment variable that switches a flag on takes 1 (and yes, on) as well as
//! true, as the original's variables did and as the docs say (`LOG_JSON=1`,
//! `CAP_EXIT_AT_EOF=1`, `DEDUP=1`, ...).
//!
//! This file holds one test only: it sets process environment variables, which no other
//! thread of this test binary reads meanwhile.

use clap::{ArgAction, Command, CommandFactory};

/// A service's name and how to build its clap command.
type Service = (&'static str, fn() -> Command);

#[test]
#[allow(unsafe_code)] // std::env::set_var / remove_var (unsafe since edition 2024)
fn on_off_variables_take_digits_as_well_as_words() {
    let services: [Service; 4] = [
        ("capture-agent", capture_agent::Config::command),
        ("processor", processor::Config::command),
        ("publisher", publisher::Config::command),
        ("dataset-builder", dataset_builder::Config::command),
    ];
    let mut refused = Vec::new();
    let mut checked = 0;
    for (service, command) in services {
        let flags: Vec<(String, String)> = command()
            .get_arguments()
            .filter(|arg| matches!(arg.get_action(), ArgAction::SetTrue))
            .filter_map(|arg| {
                let env = arg.get_env()?.to_string_lossy().into_owned();
                Some((arg.get_id().to_string(), env))
            })
            .collect();
        for (id, env) in flags {
            for (value, expected) in [("1", true), ("yes", true), ("on", true), ("0", false)] {
                checked += 1;
                // SAFETY: the only test of this binary; nothing reads the environment
                // concurrently. clap reads an argument's variable when the command is built.
                unsafe { std::env::set_var(&env, value) };
                let parsed = command().try_get_matches_from([service]);
                unsafe { std::env::remove_var(&env) };
                match parsed {
                    Ok(matches) if matches.get_flag(&id) == expected => {}
                    Ok(_) => refused.push(format!("{service} {env}={value} read as {}", !expected)),
                    Err(error) => refused.push(format!("{service} {env}={value}: {error}")),
                }
            }
        }
    }
    assert!(checked >= 4 * 8, "only {checked} checks");
    assert!(refused.is_empty(), "{refused:#?}");
}

//! The repository's documents agree with the code: README commands run, README tables equal
//! the code, deployment files set only variables the services read (one test binary). Running
//! the README's commands needs Redis and RabbitMQ: ignored unless the `system-tests` feature is
//! on (scripts/test.sh turns it on).

mod deploy_env;
mod readme_commands;
mod readme_reference;

//! The shell every service shares: the common flags ([`CommonArgs`]: ops address, JSON logs,
//! OTLP export), the one boolean parser ([`parse_bool`]), the one backoff ([`Backoff`]) and
//! connect-with-retry ([`connect_with_retry`]), and the environment naming scheme with its
//! deprecated aliases ([`env`]).
//!
//! A service's `main` is: [`env::parse`] its `Config` (aliases applied), [`CommonArgs::telemetry`]
//! + `init_telemetry`, [`env::Deprecations::log`], then `service::run(config, shutdown)`.

mod backoff;
mod common;
pub mod env;
mod flag;
mod ops_addr;
mod retry;

pub use backoff::{Backoff, sleep_or_shutdown};
pub use common::CommonArgs;
pub use flag::parse_bool;
pub use ops_addr::{OpsAddr, OpsAddrError};
pub use retry::{RetryOutcome, connect_with_retry};

//! The flow engine: unit cases, properties and the NFStream oracles (one test binary).

mod flow_support;
mod oracles;
mod props;
mod units;

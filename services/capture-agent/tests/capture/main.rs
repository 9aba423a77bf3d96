//! The capture-agent as a library and as a binary: replays, broker outages, resume, start-up
//! failures, TLS (one test binary). Tests that need Redis, RabbitMQ, redis-server, root or
//! promtool are ignored unless the `system-tests` feature is on (scripts/test.sh turns it on).

mod binary;
mod broker_outage;
mod replay;
mod resume;
mod start_failures;
mod support;
mod tls;

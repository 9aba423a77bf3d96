//! The processor: frames from memory://, Redis Streams, kombu lists and RabbitMQ become rows;
//! restarts, dead letters, ops endpoints, start-up checks (one test binary). Tests that need
//! Redis, RabbitMQ or promtool are ignored unless the `system-tests` feature is on
//! (scripts/test.sh turns it on).

mod amqp_pipeline;
mod memory_pipeline;
mod redis_flows;
mod redis_pipeline;
mod start_checks;
mod support;

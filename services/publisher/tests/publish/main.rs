//! The publisher and the AntiNex stand-in: delivery, rows from Redis and RabbitMQ, ops
//! endpoints, secrets, URL handling, the stand-in's contract (one test binary). Tests that need
//! Redis, RabbitMQ or promtool are ignored unless the `system-tests` feature is on
//! (scripts/test.sh turns it on).

mod amqp_rows;
mod body_reference;
mod delivery;
mod ops;
mod redis_rows;
mod secrets;
mod standin_contract;
mod support;
mod url_handling;

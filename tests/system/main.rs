//! Several services together: capture to dataset, processor to publisher, flows through Redis,
//! broker crashes, the whole system under Prometheus (one test binary). Most need Redis,
//! RabbitMQ, redis-server/rabbitmq-server, root or Prometheus: those are ignored unless the
//! `system-tests` feature is on (scripts/test.sh turns it on).

mod amqp_restart;
mod flows_distributed;
mod no_silent_loss;
mod pipeline_to_dataset;
mod processor_to_publisher;
mod whole_system;

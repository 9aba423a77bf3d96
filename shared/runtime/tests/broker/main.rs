//! Broker backends against real servers: Redis Streams, RabbitMQ, the kombu envelope (one test
//! binary).

mod amqp;
mod kombu;
mod redis;

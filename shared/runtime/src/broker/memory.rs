//! `memory://NAME`: a bounded in-process channel. A real backend for the embedded pipeline:
//! publishers wait when it is full (back-pressure), consumers share one receiver.
//! Acknowledgement is a no-op: a message lives only in this process. Frames cross it as they
//! are (a shared pointer to the batch), never serialised.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use tokio::sync::{Mutex as AsyncMutex, mpsc};

use super::codec::Payload;
use super::stats::PublisherCounters;
use super::{AckToken, BrokerConfig, BrokerError, ConsumerStats, Message, PublisherStats};

/// Dead-lettered bodies with their reasons.
type DeadLetters = Arc<Mutex<Vec<(Vec<u8>, String)>>>;
type SharedReceiver = Arc<AsyncMutex<mpsc::Receiver<Payload>>>;

struct Channel {
    /// The registry's own sender; `None` once the channel is closed.
    sender: Option<mpsc::Sender<Payload>>,
    receiver: SharedReceiver,
    dead: DeadLetters,
}

impl Channel {
    fn open(capacity: usize) -> Self {
        let (sender, receiver) = mpsc::channel(capacity.max(1));
        Channel {
            sender: Some(sender),
            receiver: Arc::new(AsyncMutex::new(receiver)),
            dead: Arc::default(),
        }
    }
}

/// Process-wide registry: the same name joins the same channel.
fn registry() -> &'static Mutex<HashMap<String, Channel>> {
    static REGISTRY: OnceLock<Mutex<HashMap<String, Channel>>> = OnceLock::new();
    REGISTRY.get_or_init(|| Mutex::new(HashMap::new()))
}

/// A publisher's end. Publishing to a name whose channel was closed starts a new channel.
fn publisher_end(name: &str, capacity: usize) -> mpsc::Sender<Payload> {
    let mut map = registry().lock().unwrap_or_else(|e| e.into_inner());
    let entry = map
        .entry(name.to_string())
        .or_insert_with(|| Channel::open(capacity));
    match &entry.sender {
        Some(sender) => sender.clone(),
        None => {
            *entry = Channel::open(capacity);
            entry.sender.clone().unwrap_or_else(|| mpsc::channel(1).0)
        }
    }
}

/// A consumer's end. A consumer that joins after the channel was closed still drains it and
/// then sees `Closed`, so a late start cannot wait forever on a channel nobody will fill.
fn consumer_end(name: &str, capacity: usize) -> (SharedReceiver, DeadLetters) {
    let mut map = registry().lock().unwrap_or_else(|e| e.into_inner());
    let entry = map
        .entry(name.to_string())
        .or_insert_with(|| Channel::open(capacity));
    (entry.receiver.clone(), entry.dead.clone())
}

/// Closes a channel: once every publisher handle is dropped and the queue is drained, its
/// consumers get `BrokerError::Closed`. A later publisher with the same name starts a new one.
pub fn forget(name: &str) {
    let mut map = registry().lock().unwrap_or_else(|e| e.into_inner());
    if let Some(entry) = map.get_mut(name) {
        entry.sender = None;
    }
}

#[derive(Debug, Clone)]
pub struct MemoryPublisher {
    name: String,
    sender: mpsc::Sender<Payload>,
    counters: Arc<PublisherCounters>,
}

impl MemoryPublisher {
    pub fn connect(name: &str, capacity: usize) -> Self {
        let sender = publisher_end(name, capacity);
        MemoryPublisher {
            name: name.to_string(),
            sender,
            counters: Arc::default(),
        }
    }

    /// Waits while the channel is full.
    pub async fn publish(&self, payload: Payload) -> Result<(), BrokerError> {
        self.sender
            .send(payload)
            .await
            .map_err(|_| BrokerError::Closed {
                name: self.name.clone(),
            })?;
        self.counters.count_published();
        Ok(())
    }

    pub fn stats(&self) -> PublisherStats {
        self.counters.snapshot()
    }

    pub fn ping(&self) -> Result<(), BrokerError> {
        if self.sender.is_closed() {
            Err(BrokerError::Closed {
                name: self.name.clone(),
            })
        } else {
            Ok(())
        }
    }
}

pub struct MemoryConsumer {
    name: String,
    receiver: SharedReceiver,
    dead: DeadLetters,
    block: std::time::Duration,
    next_id: AtomicU64,
    dead_lettered: AtomicU64,
}

impl std::fmt::Debug for MemoryConsumer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryConsumer")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl MemoryConsumer {
    pub fn connect(name: &str, config: &BrokerConfig) -> Self {
        let (receiver, dead) = consumer_end(name, config.memory_capacity);
        MemoryConsumer {
            name: name.to_string(),
            receiver,
            dead,
            block: config.block,
            next_id: AtomicU64::new(0),
            dead_lettered: AtomicU64::new(0),
        }
    }

    /// Up to `max` messages, waiting at most the configured block time for the first.
    /// `Closed` when every publisher is gone and the channel is drained.
    pub async fn receive(&self, max: usize) -> Result<Vec<Message>, BrokerError> {
        let mut receiver = self.receiver.lock().await;
        let mut payloads = Vec::new();
        match tokio::time::timeout(self.block, receiver.recv_many(&mut payloads, max.max(1))).await
        {
            Ok(0) => {
                return Err(BrokerError::Closed {
                    name: self.name.clone(),
                });
            }
            Ok(_) => {}
            Err(_elapsed) => return Ok(Vec::new()),
        }
        Ok(payloads
            .into_iter()
            .map(|payload| {
                let token = AckToken::Memory(self.next_id.fetch_add(1, Ordering::Relaxed));
                match payload {
                    Payload::Bytes(body) => Message::encoded(body, token, false),
                    Payload::Frames(frames) => Message::frames(frames, token),
                }
            })
            .collect())
    }

    /// Messages queued in the channel.
    pub async fn lag(&self) -> u64 {
        self.receiver.lock().await.len() as u64
    }

    pub fn ack(&self, _tokens: &[AckToken]) -> Result<(), BrokerError> {
        Ok(())
    }

    /// Keeps the message and its reason in the channel's dead-letter list (see [`dead_letters`]).
    pub fn dead_letter(&self, message: &Message, reason: &str) -> Result<(), BrokerError> {
        self.dead
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((message.bytes().into_owned(), reason.to_string()));
        self.dead_lettered.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    pub fn stats(&self) -> ConsumerStats {
        ConsumerStats {
            received: self.next_id.load(Ordering::Relaxed),
            dead_lettered: self.dead_lettered.load(Ordering::Relaxed),
            ..ConsumerStats::default()
        }
    }
}

/// Dead-lettered messages of a memory channel, with reasons (bounded by what was sent).
pub fn dead_letters(name: &str) -> Vec<(Vec<u8>, String)> {
    let map = registry().lock().unwrap_or_else(|e| e.into_inner());
    map.get(name)
        .map(|c| c.dead.lock().unwrap_or_else(|e| e.into_inner()).clone())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::broker::{Consumer, Publisher};

    #[tokio::test]
    async fn messages_arrive_in_order_and_close_ends_the_stream() {
        let mut config = BrokerConfig::parse("memory://memory-test-order").unwrap();
        config.block = std::time::Duration::from_millis(50);
        let publisher = Publisher::connect(&config).await.unwrap();
        let mut consumer = Consumer::connect(&config).await.unwrap();
        for i in 0..5u8 {
            publisher.publish(vec![i]).await.unwrap();
        }
        let got = consumer.receive(10).await.unwrap();
        assert_eq!(
            got.iter().map(|m| m.body[0]).collect::<Vec<_>>(),
            vec![0, 1, 2, 3, 4]
        );
        assert!(
            consumer.receive(10).await.unwrap().is_empty(),
            "times out empty"
        );
        drop(publisher);
        forget("memory-test-order");
        assert!(matches!(
            consumer.receive(10).await,
            Err(BrokerError::Closed { .. })
        ));
    }
}

#[cfg(test)]
mod late_consumer_tests {
    use super::*;
    use crate::broker::{Consumer, Publisher};

    /// The embedded pipeline may finish publishing before its consumer has connected.
    #[tokio::test]
    async fn a_consumer_joining_after_close_drains_then_sees_closed() {
        let mut config = BrokerConfig::parse("memory://memory-test-late-consumer").unwrap();
        config.block = std::time::Duration::from_millis(50);
        let publisher = Publisher::connect(&config).await.unwrap();
        publisher.publish(b"only".to_vec()).await.unwrap();
        drop(publisher);
        forget("memory-test-late-consumer");
        let mut consumer = Consumer::connect(&config).await.unwrap();
        let got = consumer.receive(10).await.unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].body, b"only");
        assert!(matches!(
            consumer.receive(10).await,
            Err(BrokerError::Closed { .. })
        ));
        // The name can be used again: a new publisher starts a fresh channel.
        let again = Publisher::connect(&config).await.unwrap();
        again.publish(b"new".to_vec()).await.unwrap();
        let mut fresh = Consumer::connect(&config).await.unwrap();
        assert_eq!(fresh.receive(10).await.unwrap()[0].body, b"new");
    }
}

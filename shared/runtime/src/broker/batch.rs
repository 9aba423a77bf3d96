//! Batching: many small items (frames, rows) become one broker message.
//!
//! [`batcher`] returns a bounded sender and a [`Batcher`]. [`Batcher::next_batch`] hands out up
//! to `max_items` items, or fewer once `max_delay` has passed since the first item of the batch
//! arrived, so a slow trickle still leaves within `max_delay`. Producers either wait when the
//! buffer is full ([`BatchSender::send`], back-pressure) or drop and count
//! ([`BatchSender::try_send`], for a capture loop that must never block).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::mpsc;

/// The batcher is gone; the item was not taken.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the batcher has shut down")]
pub struct BatcherClosed;

/// Why [`BatchSender::try_send`] did not take an item.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TryBatchError {
    /// The buffer is full; the item was dropped and counted in [`BatchSender::dropped`].
    #[error("batch buffer full; item dropped")]
    Full,
    #[error("the batcher has shut down")]
    Closed,
}

/// Creates a batcher holding at most `capacity` items not yet handed out.
pub fn batcher<T>(
    max_items: usize,
    max_delay: Duration,
    capacity: usize,
) -> (BatchSender<T>, Batcher<T>) {
    let (sender, receiver) = mpsc::channel(capacity.max(1));
    (
        BatchSender {
            sender,
            dropped: Arc::default(),
        },
        Batcher {
            receiver,
            max_items: max_items.max(1),
            max_delay,
        },
    )
}

/// The producing side; clones share the buffer and the drop counter.
#[derive(Debug)]
pub struct BatchSender<T> {
    sender: mpsc::Sender<T>,
    dropped: Arc<AtomicU64>,
}

impl<T> Clone for BatchSender<T> {
    fn clone(&self) -> Self {
        BatchSender {
            sender: self.sender.clone(),
            dropped: self.dropped.clone(),
        }
    }
}

impl<T> BatchSender<T> {
    /// Waits while the buffer is full.
    pub async fn send(&self, item: T) -> Result<(), BatcherClosed> {
        self.sender.send(item).await.map_err(|_| BatcherClosed)
    }

    /// Like [`send`](Self::send), for a thread outside the runtime (e.g. a capture loop).
    /// Must not be called from async code.
    pub fn blocking_send(&self, item: T) -> Result<(), BatcherClosed> {
        self.sender.blocking_send(item).map_err(|_| BatcherClosed)
    }

    /// Never waits: a full buffer drops the item and counts it.
    pub fn try_send(&self, item: T) -> Result<(), TryBatchError> {
        match self.sender.try_send(item) {
            Ok(()) => Ok(()),
            Err(mpsc::error::TrySendError::Full(_)) => {
                self.dropped.fetch_add(1, Ordering::Relaxed);
                Err(TryBatchError::Full)
            }
            Err(mpsc::error::TrySendError::Closed(_)) => Err(TryBatchError::Closed),
        }
    }

    /// Items dropped by `try_send` because the buffer was full.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Items waiting in the buffer.
    pub fn buffered(&self) -> usize {
        self.sender.max_capacity() - self.sender.capacity()
    }
}

/// The consuming side.
#[derive(Debug)]
pub struct Batcher<T> {
    receiver: mpsc::Receiver<T>,
    max_items: usize,
    max_delay: Duration,
}

impl<T> Batcher<T> {
    /// The next batch: waits for a first item, then collects until `max_items` or until
    /// `max_delay` after that first item. Once every sender is gone, returns what is left
    /// (immediately) and then `None`.
    pub async fn next_batch(&mut self) -> Option<Vec<T>> {
        let first = self.receiver.recv().await?;
        let deadline = tokio::time::Instant::now() + self.max_delay;
        let mut batch = Vec::with_capacity(self.max_items.min(4096));
        batch.push(first);
        while batch.len() < self.max_items {
            let room = self.max_items - batch.len();
            match tokio::time::timeout_at(deadline, self.receiver.recv_many(&mut batch, room)).await
            {
                Ok(0) | Err(_) => break, // closed, or the delay is over
                Ok(_) => {}
            }
        }
        Some(batch)
    }

    /// Stops accepting items; what is buffered can still be taken with `next_batch`.
    pub fn close(&mut self) {
        self.receiver.close();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::time::Instant;

    const DELAY: Duration = Duration::from_millis(100);

    #[tokio::test(start_paused = true)]
    async fn a_full_batch_leaves_without_waiting() {
        let (sender, mut batcher) = batcher(3, DELAY, 10);
        for i in 0..7 {
            sender.send(i).await.unwrap();
        }
        let started = Instant::now();
        assert_eq!(batcher.next_batch().await, Some(vec![0, 1, 2]));
        assert_eq!(batcher.next_batch().await, Some(vec![3, 4, 5]));
        assert_eq!(started.elapsed(), Duration::ZERO);
        assert_eq!(batcher.next_batch().await, Some(vec![6]));
        assert_eq!(started.elapsed(), DELAY, "a partial batch waits max_delay");
    }

    #[tokio::test(start_paused = true)]
    async fn the_delay_counts_from_the_first_item() {
        let (sender, mut batcher) = batcher(100, DELAY, 10);
        let producer = tokio::spawn(async move {
            sender.send(1).await.unwrap();
            tokio::time::sleep(Duration::from_millis(60)).await;
            sender.send(2).await.unwrap();
            tokio::time::sleep(Duration::from_millis(60)).await;
            sender.send(3).await.unwrap();
            sender
        });
        let started = Instant::now();
        assert_eq!(batcher.next_batch().await, Some(vec![1, 2]));
        assert_eq!(started.elapsed(), DELAY);
        assert_eq!(batcher.next_batch().await, Some(vec![3]));
        assert_eq!(started.elapsed(), Duration::from_millis(220));
        drop(producer.await.unwrap());
        assert_eq!(batcher.next_batch().await, None);
    }

    #[tokio::test(start_paused = true)]
    async fn an_idle_batcher_waits_without_returning_empty_batches() {
        let (sender, mut batcher) = batcher::<u8>(10, DELAY, 10);
        let waited = tokio::time::timeout(Duration::from_secs(5), batcher.next_batch()).await;
        assert!(waited.is_err(), "no item, no batch");
        drop(sender);
        assert_eq!(batcher.next_batch().await, None);
    }

    #[tokio::test(start_paused = true)]
    async fn closing_senders_flushes_the_rest_at_once() {
        let (sender, mut batcher) = batcher(10, DELAY, 10);
        sender.send("a").await.unwrap();
        sender.send("b").await.unwrap();
        drop(sender);
        let started = Instant::now();
        assert_eq!(batcher.next_batch().await, Some(vec!["a", "b"]));
        assert_eq!(started.elapsed(), Duration::ZERO);
        assert_eq!(batcher.next_batch().await, None);
    }

    #[tokio::test(start_paused = true)]
    async fn the_buffer_is_bounded_and_drops_are_counted() {
        let (sender, mut batcher) = batcher(10, DELAY, 2);
        sender.try_send(1).unwrap();
        sender.try_send(2).unwrap();
        assert_eq!(sender.buffered(), 2);
        assert_eq!(sender.try_send(3), Err(TryBatchError::Full));
        assert_eq!(sender.clone().try_send(4), Err(TryBatchError::Full));
        assert_eq!(sender.dropped(), 2);
        let blocked = tokio::time::timeout(Duration::from_secs(1), sender.send(5)).await;
        assert!(blocked.is_err(), "send waits while full");
        assert_eq!(batcher.next_batch().await, Some(vec![1, 2]));
        sender.send(5).await.unwrap();
        batcher.close();
        assert_eq!(sender.try_send(6), Err(TryBatchError::Closed));
        assert_eq!(batcher.next_batch().await, Some(vec![5]));
    }
}

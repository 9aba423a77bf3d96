//! Counters a backend keeps so the services can export them as metrics.

use std::sync::atomic::{AtomicU64, Ordering};

/// What a publisher has seen since it connected (shared by its clones).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PublisherStats {
    /// Messages the broker accepted.
    pub published: u64,
    /// Publishes that found the stream at its `max_len` cap (Redis Streams): from then on
    /// each publish trims the oldest entries.
    pub stream_full: u64,
    /// Entries trimmed from the stream before the consumer group had read them (Redis Streams):
    /// the largest count the broker reported, so a lower bound of what was lost. Only an
    /// explicit `max_len` cap can trim unread entries.
    pub trimmed_unread: u64,
    /// Entries the stream held at the last publish or `backlog()` check (Redis Streams `XLEN`;
    /// 0 where the backend does not tell). The consumers trim what every group acknowledged, so
    /// this is the real backlog.
    pub backlog: u64,
}

/// What a consumer has seen since it connected.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ConsumerStats {
    /// Messages handed out by `receive` (including redeliveries).
    pub received: u64,
    /// Of those, messages delivered before (reclaimed, requeued, recovered after a restart).
    pub redelivered: u64,
    /// Messages sent to the dead-letter stream/queue/list (by `dead_letter` or by the backend).
    pub dead_lettered: u64,
    /// kombu list elements that were not a valid envelope; each was dead-lettered by the backend.
    pub malformed: u64,
    /// Pending entries whose data had already been trimmed when reclaimed (Redis Streams):
    /// acknowledged and counted, since nothing is left to deliver.
    pub lost_pending: u64,
    /// Acks for deliveries of a connection that has since closed (AMQP): the broker
    /// requeued those messages, so they will come again.
    pub stale_acks: u64,
    /// Acknowledged entries this consumer removed from the stream (Redis Streams:
    /// `XTRIM MINID` up to what every group has delivered and acknowledged).
    pub trimmed_acked: u64,
    /// Dead consumers (idle, nothing pending) this consumer removed from the group (Redis
    /// Streams `XGROUP DELCONSUMER`).
    pub consumers_removed: u64,
}

#[derive(Debug, Default)]
pub(crate) struct PublisherCounters {
    pub published: AtomicU64,
    pub stream_full: AtomicU64,
    pub trimmed_unread: AtomicU64,
    pub backlog: AtomicU64,
}

impl PublisherCounters {
    pub fn snapshot(&self) -> PublisherStats {
        PublisherStats {
            published: self.published.load(Ordering::Relaxed),
            stream_full: self.stream_full.load(Ordering::Relaxed),
            trimmed_unread: self.trimmed_unread.load(Ordering::Relaxed),
            backlog: self.backlog.load(Ordering::Relaxed),
        }
    }

    pub fn count_published(&self) {
        self.published.fetch_add(1, Ordering::Relaxed);
    }
}

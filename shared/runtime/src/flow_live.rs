//! Flows in live capture: a [`FlowTable`] on its own thread, fed in batches, with a wall-clock
//! tick so a flow idle for the idle timeout is emitted on time even when no packet arrives (a
//! quiet interface blocks the capture read, so the capture thread cannot tick).
//! This is the clock-and-thread side of the pure `flow` module.
//!
//! The hand-over is a bounded buffer under a mutex: the capture thread appends one compact
//! [`FlowPacket`] per frame (an uncontended lock, no allocation, no wake-up); the meter thread
//! takes the whole buffer at once when [`HAND_OVER`] packets wait, on its tick, or at the end.
//! One send and one wake-up per packet (a channel) cost the agent about a third of its replay
//! throughput.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use netpipe_packet::flow::{
    FlowConfig, FlowCounters, FlowPacket, FlowRecord, FlowTable, SkipReason,
};
use netpipe_packet::frame::Frame;

type Item = Result<FlowPacket, SkipReason>;

/// Packets that wake the meter: it takes them (and all others waiting) in one go.
pub const HAND_OVER: usize = 512;

/// The buffer between the capture thread and the meter thread.
struct Pending {
    items: Vec<Item>,
    /// The capture side is done: the meter takes what is left, emits the open flows, stops.
    closed: bool,
    /// The meter thread is gone (a panicking sink): nothing more is taken.
    meter_gone: bool,
    /// The meter sleeps until a batch is ready; the push that completes one wakes it.
    meter_waiting: bool,
    /// A replay producer sleeps until the meter makes room.
    producer_waiting: bool,
}

struct Shared {
    pending: Mutex<Pending>,
    batch_ready: Condvar,
    room: Condvar,
    capacity: usize,
    wake_at: usize,
}

impl Shared {
    /// The buffer, also after a panic elsewhere (its state stays consistent: every change is
    /// one push, one swap or one flag).
    fn lock(&self) -> MutexGuard<'_, Pending> {
        self.pending
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn close(&self) {
        let mut pending = self.lock();
        pending.closed = true;
        self.batch_ready.notify_one();
    }
}

/// Marks the meter gone however its thread ends, so a waiting producer never waits forever.
struct GoneOnExit(Arc<Shared>);

impl Drop for GoneOnExit {
    fn drop(&mut self) {
        let mut pending = self.0.lock();
        pending.meter_gone = true;
        self.0.room.notify_all();
    }
}

/// A running live flow meter. [`LiveFlows::finish`] (or dropping it) emits the flows still
/// open as `end_of_capture`.
pub struct LiveFlows {
    shared: Arc<Shared>,
    dropped: AtomicU64,
    handle: Option<JoinHandle<FlowCounters>>,
}

/// Wall clock in ns since the Unix epoch (0 if the clock is before 1970).
fn wall_clock_ns() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

impl LiveFlows {
    /// Starts the meter thread. `sink` receives every finished flow, on the meter thread.
    /// `capacity` bounds the packets waiting for the meter; a packet that finds the buffer
    /// full is dropped and counted ([`LiveFlows::dropped`]). Packets reach the table within
    /// one `tick` of their capture.
    pub fn spawn(
        config: FlowConfig,
        first_id: u64,
        tick: Duration,
        capacity: usize,
        sink: impl FnMut(FlowRecord) + Send + 'static,
    ) -> std::io::Result<LiveFlows> {
        Self::spawn_with(config, first_id, Some(tick), capacity, sink)
    }

    /// A meter thread for a file replay: packet time only (no wall-clock tick), fed with
    /// [`LiveFlows::push_wait`] so no packet is lost; the capture thread only hands packets
    /// over, the table work runs beside it.
    pub fn spawn_replay(
        config: FlowConfig,
        first_id: u64,
        capacity: usize,
        sink: impl FnMut(FlowRecord) + Send + 'static,
    ) -> std::io::Result<LiveFlows> {
        Self::spawn_with(config, first_id, None, capacity, sink)
    }

    fn spawn_with(
        config: FlowConfig,
        first_id: u64,
        tick: Option<Duration>,
        capacity: usize,
        sink: impl FnMut(FlowRecord) + Send + 'static,
    ) -> std::io::Result<LiveFlows> {
        let capacity = capacity.max(1);
        let shared = Arc::new(Shared {
            pending: Mutex::new(Pending {
                items: Vec::with_capacity(HAND_OVER.min(capacity)),
                closed: false,
                meter_gone: false,
                meter_waiting: false,
                producer_waiting: false,
            }),
            batch_ready: Condvar::new(),
            room: Condvar::new(),
            capacity,
            wake_at: HAND_OVER.min(capacity),
        });
        let meter_side = shared.clone();
        let handle = std::thread::Builder::new()
            .name("flow-meter".into())
            .spawn(move || {
                let _gone = GoneOnExit(meter_side.clone());
                run_meter(&meter_side, FlowTable::new(config, first_id), tick, sink)
            })?;
        Ok(LiveFlows {
            shared,
            dropped: AtomicU64::new(0),
            handle: Some(handle),
        })
    }

    /// Hands a decoded frame to the meter without blocking the capture.
    pub fn push(&self, frame: &Frame) {
        if !self.hand_over(FlowPacket::from_frame(frame), false) {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Hands a decoded frame to the meter, waiting for room (replay: nothing is dropped);
    /// `false` when the meter thread is gone (counted in [`LiveFlows::dropped`]).
    pub fn push_wait(&self, frame: &Frame) -> bool {
        if self.hand_over(FlowPacket::from_frame(frame), true) {
            return true;
        }
        self.dropped.fetch_add(1, Ordering::Relaxed);
        false
    }

    fn hand_over(&self, item: Item, wait: bool) -> bool {
        let shared = &*self.shared;
        let mut pending = shared.lock();
        loop {
            if pending.meter_gone {
                return false;
            }
            if pending.items.len() < shared.capacity {
                break;
            }
            if !wait {
                return false;
            }
            pending.producer_waiting = true;
            if pending.meter_waiting {
                // A full buffer is a ready batch, whatever its size.
                pending.meter_waiting = false;
                shared.batch_ready.notify_one();
            }
            pending = shared
                .room
                .wait(pending)
                .unwrap_or_else(std::sync::PoisonError::into_inner);
        }
        pending.items.push(item);
        if pending.meter_waiting && pending.items.len() >= shared.wake_at {
            pending.meter_waiting = false;
            shared.batch_ready.notify_one();
        }
        true
    }

    /// Packets dropped because the meter's buffer was full.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Stops the meter: open flows are emitted as `end_of_capture`; returns its counters, or
    /// an error when the meter thread died (a panicking sink), so a loss is never silent.
    pub fn finish(mut self) -> Result<FlowCounters, MeterDied> {
        self.shared.close();
        match self.handle.take() {
            Some(handle) => handle.join().map_err(|_| MeterDied),
            None => Err(MeterDied),
        }
    }
}

impl Drop for LiveFlows {
    /// Without [`LiveFlows::finish`] the meter still emits what is open, on its own thread.
    fn drop(&mut self) {
        self.shared.close();
    }
}

/// The meter thread: takes the waiting packets in batches, folds them into the table, ticks
/// the wall clock when a tick passed without a packet, and ends with `end_of_capture`.
fn run_meter(
    shared: &Shared,
    mut table: FlowTable,
    tick: Option<Duration>,
    mut sink: impl FnMut(FlowRecord),
) -> FlowCounters {
    let mut batch: Vec<Item> = Vec::with_capacity(shared.wake_at);
    let mut out = Vec::new();
    loop {
        let deadline = tick.map(|tick| Instant::now() + tick);
        let closed = {
            let mut pending = shared.lock();
            while pending.items.len() < shared.wake_at && !pending.closed {
                pending.meter_waiting = true;
                pending = match deadline {
                    None => shared
                        .batch_ready
                        .wait(pending)
                        .unwrap_or_else(std::sync::PoisonError::into_inner),
                    Some(deadline) => {
                        let now = Instant::now();
                        if now >= deadline {
                            break;
                        }
                        shared
                            .batch_ready
                            .wait_timeout(pending, deadline - now)
                            .unwrap_or_else(std::sync::PoisonError::into_inner)
                            .0
                    }
                };
            }
            pending.meter_waiting = false;
            std::mem::swap(&mut pending.items, &mut batch);
            if pending.producer_waiting {
                pending.producer_waiting = false;
                shared.room.notify_all();
            }
            pending.closed
        };
        let quiet = batch.is_empty();
        for item in batch.drain(..) {
            match item {
                Ok(packet) => table.push(&packet, &mut out),
                Err(reason) => table.count_skip(reason),
            }
        }
        // Like a packet, the tick moves the meter clock: only when no packet came, so a
        // packet still on its way never counts at a later time than its own.
        if quiet && tick.is_some() && !closed {
            table.tick(wall_clock_ns(), &mut out);
        }
        for record in out.drain(..) {
            sink(record);
        }
        if closed {
            break;
        }
    }
    table.finish(&mut out);
    for record in out.drain(..) {
        sink(record);
    }
    table.counters()
}

/// The flow meter thread ended by a panic; the flows it held are lost.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the flow meter thread died; flows still open in it were lost")]
pub struct MeterDied;

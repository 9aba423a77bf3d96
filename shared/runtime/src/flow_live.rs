//! Flows in live capture: a [`FlowTable`] on its own thread, fed through a bounded channel, with
//! a wall-clock tick so a flow idle for the idle timeout is emitted on time even when no packet
//! arrives (a quiet interface blocks the capture read, so the capture thread cannot tick).
//! This is the clock-and-thread side of the pure `flow` module.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError, SyncSender, TrySendError};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use netpipe_packet::flow::{
    FlowConfig, FlowCounters, FlowPacket, FlowRecord, FlowTable, SkipReason,
};
use netpipe_packet::frame::Frame;

type Item = Result<FlowPacket, SkipReason>;

/// A running live flow meter. Dropping the sender side ([`LiveFlows::finish`]) emits the
/// flows still open as `end_of_capture`.
pub struct LiveFlows {
    tx: SyncSender<Item>,
    dropped: Arc<AtomicU64>,
    handle: JoinHandle<FlowCounters>,
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
    /// `capacity` bounds the queue of packets waiting for the meter; a packet that finds it
    /// full is dropped and counted ([`LiveFlows::dropped`]).
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
        mut sink: impl FnMut(FlowRecord) + Send + 'static,
    ) -> std::io::Result<LiveFlows> {
        let (tx, rx) = mpsc::sync_channel::<Item>(capacity.max(1));
        let handle = std::thread::Builder::new()
            .name("flow-meter".into())
            .spawn(move || {
                let mut table = FlowTable::new(config, first_id);
                let mut out = Vec::new();
                loop {
                    let received = match tick {
                        Some(tick) => rx.recv_timeout(tick),
                        None => rx.recv().map_err(|_| RecvTimeoutError::Disconnected),
                    };
                    match received {
                        Ok(Ok(packet)) => table.push(&packet, &mut out),
                        Ok(Err(reason)) => table.count_skip(reason),
                        Err(RecvTimeoutError::Timeout) => table.tick(wall_clock_ns(), &mut out),
                        Err(RecvTimeoutError::Disconnected) => break,
                    }
                    for record in out.drain(..) {
                        sink(record);
                    }
                }
                table.finish(&mut out);
                for record in out.drain(..) {
                    sink(record);
                }
                table.counters()
            })?;
        Ok(LiveFlows {
            tx,
            dropped: Arc::new(AtomicU64::new(0)),
            handle,
        })
    }

    /// Hands a decoded frame to the meter without blocking the capture.
    pub fn push(&self, frame: &Frame) {
        match self.tx.try_send(FlowPacket::from_frame(frame)) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {
                self.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Hands a decoded frame to the meter, waiting for room (replay: nothing is dropped);
    /// `false` when the meter thread is gone (counted in [`LiveFlows::dropped`]).
    pub fn push_wait(&self, frame: &Frame) -> bool {
        if self.tx.send(FlowPacket::from_frame(frame)).is_ok() {
            return true;
        }
        self.dropped.fetch_add(1, Ordering::Relaxed);
        false
    }

    /// Packets dropped because the meter's queue was full.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Stops the meter: open flows are emitted as `end_of_capture`; returns its counters, or
    /// an error when the meter thread died (a panicking sink), so a loss is never silent.
    pub fn finish(self) -> Result<FlowCounters, MeterDied> {
        drop(self.tx);
        self.handle.join().map_err(|_| MeterDied)
    }
}

/// The flow meter thread ended by a panic; the flows it held are lost.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the flow meter thread died; flows still open in it were lost")]
pub struct MeterDied;

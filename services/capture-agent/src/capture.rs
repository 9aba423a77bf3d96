//! The capture thread: reads packets (libpcap or a file), decodes them and puts frames into the
//! bounded buffer. It never waits on the network: a live capture drops the newest frame when the
//! buffer is full (and counts it); a file replay waits for room instead.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use netpipe_packet::decode::{DecodeOptions, FrameMeta, decode};
use netpipe_packet::frame::Frame;
use netpipe_packet::seq::SequenceGenerator;
use netpipe_runtime::capture::{CaptureFile, LinkType, LiveCapture, RawPacket, compile_filter};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::AgentError;
use crate::config::Overflow;
use crate::metrics::AgentMetrics;

/// How often libpcap's drop counters are polled.
const STATS_POLL: Duration = Duration::from_secs(1);
/// Longest sleep while pacing a replay, so shutdown is noticed quickly.
const PACING_SLICE: Duration = Duration::from_millis(50);

/// Where packets come from.
pub enum Source {
    Live(LiveCapture),
    File {
        file: CaptureFile,
        /// Reopened for every further replay.
        path: PathBuf,
        /// Replays in all; 0 = until shutdown.
        loops: u64,
        /// BPF filter applied in user space (empty = none).
        filter: String,
        snaplen: i32,
        /// Replay pace factor; `None` = as fast as possible.
        speed: Option<f64>,
    },
}

/// Why the capture thread stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CaptureEnd {
    EndOfFile,
    Shutdown,
    /// The publisher side went away (it gave up during shutdown).
    BufferClosed,
    /// A live capture reached --count packets.
    CountReached,
}

pub struct CaptureTask {
    pub source: Source,
    /// Stop after this many packets (--count).
    pub count: Option<u64>,
    pub tx: mpsc::Sender<Frame>,
    pub overflow: Overflow,
    pub sequence: SequenceGenerator,
    pub agent: Arc<str>,
    pub decode_options: DecodeOptions,
    pub metrics: Arc<AgentMetrics>,
    pub shutdown: CancellationToken,
    /// --resume: packets with a sequence number below this were confirmed by an earlier run
    /// and are skipped (0 = none).
    pub skip_below: u64,
    /// --flows: every decoded frame is also folded into this flow meter.
    pub flows: Option<crate::flows::FlowMeter>,
}

impl CaptureTask {
    pub fn run(self) -> Result<CaptureEnd, AgentError> {
        let CaptureTask {
            source,
            count,
            tx,
            overflow,
            sequence,
            agent,
            decode_options,
            metrics,
            shutdown,
            skip_below,
            flows,
        } = self;
        let mut sink = FrameSink {
            tx,
            overflow,
            sequence,
            agent,
            decode_options,
            metrics,
            pushed: 0,
            skipped: 0,
            skip_below,
            limit: count.unwrap_or(u64::MAX),
            flows,
        };
        let end = sink.run_source(source, &shutdown);
        // Open flows leave as end_of_capture however the capture ended.
        if let Some(flows) = sink.flows.take() {
            flows.finish();
        }
        end
    }
}

impl FrameSink {
    fn run_source(
        &mut self,
        source: Source,
        shutdown: &CancellationToken,
    ) -> Result<CaptureEnd, AgentError> {
        let sink = self;
        match source {
            Source::Live(capture) => run_live(capture, sink, shutdown),
            Source::File {
                file,
                path,
                loops,
                filter,
                snaplen,
                speed,
            } => {
                let mut file = file;
                let mut replay = 1;
                loop {
                    let before = sink.pushed + sink.skipped;
                    let end = run_file(file, &filter, snaplen, speed, sink, shutdown)?;
                    // A file that gave nothing (empty, or all filtered) would loop for ever.
                    let more =
                        (loops == 0 || replay < loops) && sink.pushed + sink.skipped > before;
                    if end != CaptureEnd::EndOfFile || sink.limit_reached() || !more {
                        return Ok(end);
                    }
                    replay += 1;
                    file = CaptureFile::open(&path)?;
                }
            }
        }
    }
}

/// Decodes packets and hands frames to the buffer according to the overflow policy.
struct FrameSink {
    tx: mpsc::Sender<Frame>,
    overflow: Overflow,
    sequence: SequenceGenerator,
    agent: Arc<str>,
    decode_options: DecodeOptions,
    metrics: Arc<AgentMetrics>,
    /// Packets pushed so far, and the --count limit (u64::MAX without one).
    pushed: u64,
    /// Packets skipped as confirmed by an earlier run (--resume), below `skip_below`.
    skipped: u64,
    skip_below: u64,
    limit: u64,
    flows: Option<crate::flows::FlowMeter>,
}

impl FrameSink {
    fn limit_reached(&self) -> bool {
        self.pushed >= self.limit
    }

    /// `false` when the buffer is closed (the publisher is gone).
    fn push(&mut self, packet: &RawPacket<'_>) -> bool {
        let seq = self.sequence.next_seq();
        if seq < self.skip_below {
            // Confirmed by the run this one resumes: same sequence number, already on the broker.
            self.skipped += 1;
            self.metrics.packets_resume_skipped.inc();
            return true;
        }
        let meta = FrameMeta {
            agent: self.agent.clone(),
            boot: self.sequence.boot(),
            seq,
        };
        let frame = decode(packet, &meta, &self.decode_options);
        if let Some(flows) = self.flows.as_mut() {
            flows.push(&frame);
        }
        self.pushed += 1;
        self.metrics.packets_captured.inc();
        self.metrics.count_decode_issues(&frame.errors);
        match self.overflow {
            // try_send first: blocking_send parks through a block_on context on every call
            // (~8% of the agent's CPU), which only a full buffer needs.
            Overflow::Wait => match self.tx.try_send(frame) {
                Ok(()) => true,
                Err(mpsc::error::TrySendError::Full(frame)) => self.tx.blocking_send(frame).is_ok(),
                Err(mpsc::error::TrySendError::Closed(_)) => false,
            },
            Overflow::Drop => match self.tx.try_send(frame) {
                Ok(()) => true,
                Err(mpsc::error::TrySendError::Full(_)) => {
                    self.metrics.buffer_drops.record(1, |since_last| {
                        tracing::warn!(
                            dropped = since_last,
                            "buffer full (broker slow or down): dropping newest packets"
                        );
                    });
                    true
                }
                Err(mpsc::error::TrySendError::Closed(_)) => false,
            },
        }
    }
}

fn run_live(
    mut capture: LiveCapture,
    sink: &mut FrameSink,
    shutdown: &CancellationToken,
) -> Result<CaptureEnd, AgentError> {
    let mut drops = DropPoller::new(&mut capture);
    let mut last_poll = Instant::now();
    let end = loop {
        if shutdown.is_cancelled() {
            break CaptureEnd::Shutdown;
        }
        match capture.next_packet() {
            Ok(Some(packet)) => {
                if !sink.push(&packet) {
                    break CaptureEnd::BufferClosed;
                }
                if sink.limit_reached() {
                    break CaptureEnd::CountReached;
                }
            }
            Ok(None) => {}
            // A shutdown interrupts a blocked read (breakloop), which reads as an error.
            Err(_) if shutdown.is_cancelled() => break CaptureEnd::Shutdown,
            Err(e) => return Err(AgentError::Capture(e)),
        }
        if last_poll.elapsed() >= STATS_POLL {
            last_poll = Instant::now();
            drops.poll(&mut capture, &sink.metrics);
        }
    };
    if matches!(end, CaptureEnd::CountReached) {
        // What is left in the ring was not asked for: not a loss.
        drops.poll(&mut capture, &sink.metrics);
    } else {
        drops.finish(&mut capture, &sink.metrics);
    }
    Ok(end)
}

/// Turns libpcap's cumulative drop counters into counter increments.
struct DropPoller {
    /// libpcap's last raw counters.
    kernel: u64,
    interface: u64,
    received: u64,
    /// Raw kernel drops and ring entries so far, and the packets already counted as dropped.
    kernel_raw_total: u64,
    received_raw_total: u64,
    kernel_counted: u64,
    /// Ring entries per packet: on a loopback interface the kernel hands the packet socket
    /// every packet twice (as sent and as received; libpcap discards the sent copy in user
    /// space), so a full ring drops, and `ps_drop` counts, both copies of each lost packet.
    copies_per_packet: u64,
}

impl DropPoller {
    /// Starts from libpcap's counters now: what arrived before the filter was set is not ours.
    fn new(capture: &mut LiveCapture) -> Self {
        let start = capture.stats().ok();
        DropPoller {
            kernel: start.as_ref().map_or(0, |s| s.kernel_dropped),
            interface: start.as_ref().map_or(0, |s| s.interface_dropped),
            received: start.as_ref().map_or(0, |s| s.received),
            kernel_raw_total: 0,
            received_raw_total: 0,
            kernel_counted: 0,
            copies_per_packet: if is_loopback(capture.interface()) {
                2
            } else {
                1
            },
        }
    }

    fn poll(&mut self, capture: &mut LiveCapture, metrics: &AgentMetrics) {
        let stats = match capture.stats() {
            Ok(stats) => stats,
            Err(e) => {
                tracing::debug!(error = %e, "libpcap stats unavailable");
                return;
            }
        };
        // libpcap's counters are 32-bit and may wrap; a decrease means a wrap.
        self.kernel_raw_total += delta(self.kernel, stats.kernel_dropped);
        self.received_raw_total += delta(self.received, stats.received);
        let interface = delta(self.interface, stats.interface_dropped);
        self.kernel = stats.kernel_dropped;
        self.received = stats.received;
        self.interface = stats.interface_dropped;
        // While capturing: whole packets only (a lone dropped copy may be the sent one, which
        // libpcap discards anyway); `finish` settles the exact figure.
        let lost = self.kernel_raw_total / self.copies_per_packet;
        self.count_kernel(lost, metrics);
        metrics.interface_drops.record(interface, |since_last| {
            tracing::warn!(dropped = since_last, "interface dropped packets");
        });
    }

    /// The last poll, once the capture has stopped reading: every packet the kernel handed the
    /// socket (`ps_recv`, drops included; each loopback packet twice) that was not captured was
    /// lost, also what was left in the ring.
    fn finish(&mut self, capture: &mut LiveCapture, metrics: &AgentMetrics) {
        self.poll(capture, metrics);
        let seen = self.received_raw_total / self.copies_per_packet;
        let lost = seen.saturating_sub(metrics.packets_captured.get());
        self.count_kernel(lost, metrics);
    }

    /// Raises the kernel drop counter to `lost` packets (it never goes down).
    fn count_kernel(&mut self, lost: u64, metrics: &AgentMetrics) {
        let kernel = lost.saturating_sub(self.kernel_counted);
        self.kernel_counted = lost.max(self.kernel_counted);
        metrics.kernel_drops.record(kernel, |since_last| {
            tracing::warn!(
                dropped = since_last,
                "kernel dropped packets (capture buffer full)"
            );
        });
    }
}

/// `lo`, or an interface libpcap flags as loopback.
fn is_loopback(interface: &str) -> bool {
    interface == "lo"
        || pcap::Device::list().is_ok_and(|devices| {
            devices
                .iter()
                .any(|d| d.name == interface && d.flags.is_loopback())
        })
}

fn delta(previous: u64, now: u64) -> u64 {
    if now >= previous {
        now - previous
    } else {
        now + (u64::from(u32::MAX) + 1 - previous)
    }
}

fn run_file(
    mut file: CaptureFile,
    filter: &str,
    // The file's own snaplen applies on replay; the flag only shapes live captures.
    _snaplen: i32,
    speed: Option<f64>,
    sink: &mut FrameSink,
    shutdown: &CancellationToken,
) -> Result<CaptureEnd, AgentError> {
    let mut programs: HashMap<LinkType, pcap::BpfProgram> = HashMap::new();
    let mut pacer = speed.map(Pacer::new);
    loop {
        if shutdown.is_cancelled() {
            return Ok(CaptureEnd::Shutdown);
        }
        if sink.limit_reached() {
            return Ok(CaptureEnd::EndOfFile);
        }
        let packet = match file.next_packet() {
            Ok(Some(packet)) => packet,
            Ok(None) => return Ok(CaptureEnd::EndOfFile),
            Err(e) => return Err(AgentError::File(e)),
        };
        if !filter.is_empty() {
            let program = match programs.entry(packet.link) {
                std::collections::hash_map::Entry::Occupied(entry) => entry.into_mut(),
                std::collections::hash_map::Entry::Vacant(entry) => {
                    entry.insert(compile_filter(filter, packet.link)?)
                }
            };
            if !program.filter(packet.data) {
                sink.metrics.packets_filtered.inc();
                continue;
            }
        }
        if let Some(pacer) = pacer.as_mut()
            && !pacer.wait_for(packet.ts_ns, shutdown)
        {
            return Ok(CaptureEnd::Shutdown);
        }
        if !sink.push(&packet) {
            return Ok(CaptureEnd::BufferClosed);
        }
    }
}

/// Replays at the recorded pace (times a factor).
struct Pacer {
    speed: f64,
    start: Option<(Instant, i64)>,
}

impl Pacer {
    fn new(speed: f64) -> Self {
        Pacer { speed, start: None }
    }

    /// Sleeps until the packet with timestamp `ts_ns` is due; `false` if shutdown came first.
    fn wait_for(&mut self, ts_ns: i64, shutdown: &CancellationToken) -> bool {
        let (started, first_ts) = *self.start.get_or_insert((Instant::now(), ts_ns));
        let offset_ns = ts_ns.saturating_sub(first_ts).max(0) as f64 / self.speed;
        let due = started + Duration::from_nanos(offset_ns as u64);
        loop {
            if shutdown.is_cancelled() {
                return false;
            }
            let now = Instant::now();
            if now >= due {
                return true;
            }
            std::thread::sleep((due - now).min(PACING_SLICE));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn libpcap_counter_wraps_are_deltas() {
        assert_eq!(delta(10, 15), 5);
        assert_eq!(delta(u64::from(u32::MAX) - 1, 3), 5);
    }
}

//! `--flows`: bidirectional flows metered at the edge, published as their own message kind on
//! their own stream/queue ([`netpipe_runtime::broker::flow_batch`]).
//!
//! ```text
//! capture thread --frame--> FlowMeter --finished flows--> bounded queue --> FlowPublishTask
//!   both: a meter thread (netpipe_runtime::flow_live::LiveFlows) beside the capture thread
//!   replay: packet time, end_of_capture at EOF, waits for room (no loss)
//!   live:   the wall-clock tick too (an idle flow leaves on time), drops and counts when full
//! ```
//!
//! A replay waits for room in the queue (nothing is lost); a live capture drops a record that
//! finds the queue full and counts it (`flows_dropped{reason="buffer_full"}`). The publisher
//! retries a failed batch with backoff, like frames; after the shutdown grace period what is
//! left is counted as `shutdown`, a refused batch as `broker_rejected`. Flow ids count up from
//! 0 per (agent, boot), so a lost batch is a gap the processor's manifest reports.

use std::sync::Arc;
use std::time::Duration;

use netpipe_packet::flow::{FlowConfig, FlowRecord};
use netpipe_packet::frame::Frame;
use netpipe_runtime::broker::flow_batch::{FLOW_SCHEMA_VERSION, FlowBatch, FlowRow};
use netpipe_runtime::broker::{BrokerConfig, Publisher};
use netpipe_runtime::flow_live::LiveFlows;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::metrics::{AgentMetrics, flow_drop_reason};

/// Finished flows waiting for the flow publisher.
pub const FLOW_QUEUE: usize = 65_536;
/// Packets waiting for the flow meter thread (live: more are dropped and counted).
const LIVE_METER_QUEUE: usize = 65_536;
/// Wall-clock tick of the live flow meter (idle flows leave within this of their timeout).
const LIVE_TICK: Duration = Duration::from_millis(200);
const OPERATION_TIMEOUT: Duration = Duration::from_secs(10);
const FIRST_BACKOFF: Duration = Duration::from_millis(100);

/// The flow side of the capture thread: a meter thread beside it (the table work never slows
/// the capture down more than handing a packet over).
pub struct FlowMeter {
    meter: LiveFlows,
    /// Replay: wait for room in the meter's queue (nothing lost); live: drop and count.
    wait: bool,
    metrics: Arc<AgentMetrics>,
}

impl FlowMeter {
    /// File replay: packet time, open flows leave as `end_of_capture` at EOF; the meter waits
    /// for room in the queue to the publisher, so a replay loses no flow.
    pub fn replay(
        config: FlowConfig,
        tx: mpsc::Sender<FlowRecord>,
        metrics: Arc<AgentMetrics>,
    ) -> std::io::Result<FlowMeter> {
        let counted = metrics.clone();
        let meter = LiveFlows::spawn_replay(config, 0, LIVE_METER_QUEUE, move |record| {
            counted.flows_emitted.inc();
            if tx.blocking_send(record).is_err() {
                // The publisher gave up (shutdown grace over): counted, not silent.
                counted
                    .flows_dropped
                    .with_label_values(&[flow_drop_reason::SHUTDOWN])
                    .inc();
            }
        })?;
        Ok(FlowMeter {
            meter,
            wait: true,
            metrics,
        })
    }

    /// Live capture: the wall-clock tick emits idle flows on time; a record that finds the
    /// queue to the publisher full is dropped and counted.
    pub fn live(
        config: FlowConfig,
        tx: mpsc::Sender<FlowRecord>,
        metrics: Arc<AgentMetrics>,
    ) -> std::io::Result<FlowMeter> {
        let counted = metrics.clone();
        let meter = LiveFlows::spawn(config, 0, LIVE_TICK, LIVE_METER_QUEUE, move |record| {
            counted.flows_emitted.inc();
            if tx.try_send(record).is_err() {
                counted
                    .flows_dropped
                    .with_label_values(&[flow_drop_reason::BUFFER_FULL])
                    .inc();
            }
        })?;
        Ok(FlowMeter {
            meter,
            wait: false,
            metrics,
        })
    }

    /// Folds one decoded frame in (before it goes to the frame buffer).
    pub fn push(&mut self, frame: &Frame) {
        if self.wait {
            if !self.meter.push_wait(frame) {
                self.metrics.flow_meter_packets_dropped.inc();
            }
            return;
        }
        let before = self.meter.dropped();
        self.meter.push(frame);
        if self.meter.dropped() > before {
            self.metrics.flow_meter_packets_dropped.inc();
        }
    }

    /// End of the capture: the flows still open leave as `end_of_capture`.
    pub fn finish(self) {
        if let Err(e) = self.meter.finish() {
            tracing::error!(error = %e, "flow meter failed");
            self.metrics
                .flows_dropped
                .with_label_values(&[flow_drop_reason::METER_DIED])
                .inc();
        }
    }
}

/// Publishes finished flows in batches on the flow stream/queue, one batch at a time.
pub struct FlowPublishTask {
    pub rx: mpsc::Receiver<FlowRecord>,
    pub broker: BrokerConfig,
    pub agent: Arc<str>,
    pub boot: u64,
    pub batch_size: usize,
    pub batch_delay: Duration,
    pub metrics: Arc<AgentMetrics>,
    pub shutdown: CancellationToken,
    pub shutdown_grace: Duration,
    pub max_backoff: Duration,
}

/// How publishing one batch ended.
enum Sent {
    Delivered,
    Rejected,
    GaveUp,
}

impl FlowPublishTask {
    pub async fn run(mut self) {
        // Connected up front, while the capture runs: most flows leave at the end of a replay,
        // and a connection made only then would add its round trips to the run.
        // A failure is retried with the first batch.
        let mut publisher = tokio::select! {
            connected = tokio::time::timeout(OPERATION_TIMEOUT, Publisher::connect(&self.broker)) => {
                connected.ok().and_then(Result::ok)
            }
            () = self.shutdown.cancelled() => None,
        };
        let mut grace_deadline: Option<Instant> = None;
        let batch_size = self.batch_size.max(1);
        let mut gave_up = false;
        loop {
            let mut records = Vec::with_capacity(batch_size);
            if self.rx.recv_many(&mut records, batch_size).await == 0 {
                break;
            }
            self.fill(&mut records, batch_size).await;
            let count = records.len() as u64;
            if gave_up {
                self.count_dropped(flow_drop_reason::SHUTDOWN, count);
                continue;
            }
            let body = self.encode(&records);
            match self
                .publish(&body, &mut publisher, &mut grace_deadline)
                .await
            {
                Sent::Delivered => self.metrics.flows_published.inc_by(count),
                Sent::Rejected => self.count_dropped(flow_drop_reason::BROKER_REJECTED, count),
                Sent::GaveUp => {
                    gave_up = true;
                    self.count_dropped(flow_drop_reason::SHUTDOWN, count);
                    // Whatever is still queued is lost too; count it as it drains.
                    self.rx.close();
                }
            }
        }
    }

    fn count_dropped(&self, reason: &str, n: u64) {
        self.metrics
            .flows_dropped
            .with_label_values(&[reason])
            .inc_by(n);
        tracing::warn!(dropped = n, reason, "flow records dropped");
    }

    async fn fill(&mut self, records: &mut Vec<FlowRecord>, batch_size: usize) {
        if self.batch_delay.is_zero() {
            return;
        }
        let deadline = Instant::now() + self.batch_delay;
        while records.len() < batch_size {
            let room = batch_size - records.len();
            match tokio::time::timeout_at(deadline, self.rx.recv_many(records, room)).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    }

    fn encode(&self, records: &[FlowRecord]) -> Vec<u8> {
        let mut line = Vec::new();
        let rows = records
            .iter()
            .map(|record| {
                line.clear();
                record.write_csv(&mut line);
                while line.last() == Some(&b'\n') {
                    line.pop();
                }
                FlowRow {
                    id: record.flow.id,
                    first_seen_ms: record.flow.bidirectional.first_seen_ms,
                    csv: String::from_utf8_lossy(&line).into_owned(),
                }
            })
            .collect();
        FlowBatch {
            agent: self.agent.to_string(),
            boot: self.boot,
            schema_version: FLOW_SCHEMA_VERSION,
            rows,
        }
        .encode()
    }

    /// Retries with backoff until delivered, refused, or the shutdown grace period is over.
    async fn publish(
        &self,
        body: &[u8],
        publisher: &mut Option<Publisher>,
        grace_deadline: &mut Option<Instant>,
    ) -> Sent {
        let mut backoff = FIRST_BACKOFF;
        loop {
            if publisher.is_none() {
                match tokio::time::timeout(OPERATION_TIMEOUT, Publisher::connect(&self.broker))
                    .await
                {
                    Ok(Ok(p)) => *publisher = Some(p),
                    Ok(Err(e)) => tracing::debug!(error = %e, "flow stream: connect failed"),
                    Err(_) => tracing::debug!("flow stream: connect timed out"),
                }
            }
            if let Some(p) = publisher.as_ref() {
                match tokio::time::timeout(OPERATION_TIMEOUT, p.publish(body)).await {
                    Ok(Ok(())) => return Sent::Delivered,
                    Ok(Err(e)) if !e.is_retryable() => {
                        tracing::error!(error = %e, "flow batch refused by the broker");
                        return Sent::Rejected;
                    }
                    Ok(Err(e)) => {
                        tracing::debug!(error = %e, "flow batch publish failed; retrying");
                        *publisher = None;
                    }
                    Err(_) => *publisher = None,
                }
            }
            // Only a failed attempt counts against the grace period: a healthy broker gets
            // everything, however long the queue at shutdown.
            if self.shutdown.is_cancelled() {
                let deadline =
                    *grace_deadline.get_or_insert_with(|| Instant::now() + self.shutdown_grace);
                if Instant::now() >= deadline {
                    return Sent::GaveUp;
                }
            }
            tokio::select! {
                () = tokio::time::sleep(backoff) => {}
                () = self.shutdown.cancelled(), if grace_deadline.is_none() => {}
            }
            backoff = (backoff * 2).min(self.max_backoff.max(FIRST_BACKOFF));
        }
    }
}

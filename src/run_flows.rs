//! `netpipe run --flows`: a flow dataset beside the packet dataset. Flows come from their own
//! reading of the same source (the file again, or a second libpcap handle on the interface,
//! metered with the wall-clock tick), so the packet pipeline is untouched. Records go through
//! the same `DatasetWriter` as packet rows: append + fsync, manifest with counts, dedup by
//! (agent, flow id), in `{DS_DIR}/{DS_NAME}-flows-*.csv`.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use netpipe_packet::decode::{DecodeOptions, FrameMeta, decode};
use netpipe_packet::flow::{FlowConfig, FlowRecord, FlowTable};
use netpipe_runtime::capture::{CaptureFile, FileFilter, LiveCapture, LiveConfig};
use netpipe_runtime::dataset::{DatasetConfig, DatasetWriter, RowId, SchemaInfo};
use netpipe_runtime::flow_live::LiveFlows;
use tokio_util::sync::CancellationToken;

/// Name and version of the flow dataset's column schema in manifests (shared with the
/// processor's flow datasets).
pub use netpipe_runtime::broker::flow_batch::{FLOW_SCHEMA, FLOW_SCHEMA_VERSION};
/// Wall-clock tick of live flow metering (idle flows leave within this of their timeout).
const LIVE_TICK: Duration = Duration::from_millis(200);
/// Packets waiting for the live flow meter; more are dropped and counted.
const LIVE_QUEUE: usize = 65_536;

/// What the flow side of a run wrote.
#[derive(Debug, Clone, Default)]
pub struct FlowsSummary {
    pub flows: u64,
    pub packets_in_flows: u64,
    pub skipped: u64,
    /// Packets the live meter could not take (queue full).
    pub dropped: u64,
    pub file: PathBuf,
}

/// Where the flow side reads and writes.
#[derive(Debug, Clone)]
pub struct FlowsSource {
    pub read: Option<PathBuf>,
    pub interface: Option<String>,
    pub filter: Option<String>,
    pub dir: PathBuf,
    pub ds_name: String,
    pub agent: String,
    /// Commit after this many flows (and at the end).
    pub commit_every: u64,
    pub config: FlowConfig,
}

fn flow_schema() -> SchemaInfo {
    netpipe_runtime::broker::flow_batch::flow_dataset_schema()
}

/// The flow dataset writer and how many rows wait for a commit.
struct FlowSink {
    writer: DatasetWriter,
    agent: String,
    since_commit: u64,
    commit_every: u64,
    flows: u64,
    line: Vec<u8>,
    error: Option<anyhow::Error>,
}

impl FlowSink {
    fn write(&mut self, record: &FlowRecord) {
        if self.error.is_some() {
            return;
        }
        self.line.clear();
        record.write_csv(&mut self.line);
        let first_seen_ns = record
            .flow
            .bidirectional
            .first_seen_ms
            .saturating_mul(1_000_000);
        self.writer.append_line(
            RowId {
                agent: &self.agent,
                boot: 0,
                seq: record.flow.id,
                ts_ns: first_seen_ns,
            },
            &self.line,
        );
        self.flows += 1;
        self.since_commit += 1;
        if self.since_commit >= self.commit_every {
            self.since_commit = 0;
            if let Err(e) = self.writer.commit() {
                self.error = Some(anyhow::Error::new(e).context("committing the flow dataset"));
            }
        }
    }

    fn close(self) -> anyhow::Result<(u64, PathBuf)> {
        if let Some(e) = self.error {
            return Err(e);
        }
        let path = self.writer.path().to_path_buf();
        self.writer.close().context("closing the flow dataset")?;
        Ok((self.flows, path))
    }
}

/// Starts the flow side on its own thread; `stop` ends a live capture.
pub fn start(
    source: FlowsSource,
    stop: CancellationToken,
) -> anyhow::Result<std::thread::JoinHandle<anyhow::Result<FlowsSummary>>> {
    let dataset = DatasetConfig::new(&source.dir, format!("{}-flows", source.ds_name));
    let (writer, _) =
        DatasetWriter::open(dataset, flow_schema()).context("opening the flow dataset")?;
    let sink = FlowSink {
        writer,
        agent: source.agent.clone(),
        since_commit: 0,
        commit_every: source.commit_every.max(1),
        flows: 0,
        line: Vec::new(),
        error: None,
    };
    let handle = match (&source.read, &source.interface) {
        (Some(file), _) => {
            let file = file.clone();
            std::thread::Builder::new()
                .name("run-flows".into())
                .spawn(move || from_file(&file, &source, sink))?
        }
        (None, Some(interface)) => {
            let mut config = LiveConfig::new(interface.as_str());
            config.filter = source.filter.clone().unwrap_or_default();
            let mut capture = LiveCapture::open(&config)?;
            let breaker = capture.breakloop_handle();
            let stopped = stop.clone();
            tokio::spawn(async move {
                stopped.cancelled().await;
                breaker.breakloop();
            });
            std::thread::Builder::new()
                .name("run-flows".into())
                .spawn(move || from_interface(&mut capture, &source, sink, &stop))?
        }
        (None, None) => anyhow::bail!("--flows needs --read FILE or --interface IF"),
    };
    Ok(handle)
}

fn meta(agent: &str) -> FrameMeta {
    FrameMeta {
        agent: Arc::from(agent),
        boot: 0,
        seq: 0,
    }
}

fn from_file(
    path: &std::path::Path,
    source: &FlowsSource,
    mut sink: FlowSink,
) -> anyhow::Result<FlowsSummary> {
    let mut file = CaptureFile::open(path)?;
    let mut table = FlowTable::new(source.config.clone(), 0);
    let mut filters = FileFilter::new(source.filter.as_deref());
    let meta = meta(&source.agent);
    let options = DecodeOptions { payload_bytes: 0 };
    let mut out = Vec::new();
    let mut read_error = None;
    loop {
        let packet = match file.next_packet() {
            Ok(Some(packet)) => packet,
            Ok(None) => break,
            Err(e) => {
                read_error = Some(e);
                break;
            }
        };
        if !filters.keeps(&packet)? {
            continue;
        }
        table.push_frame(&decode(&packet, &meta, &options), &mut out);
        for record in out.drain(..) {
            sink.write(&record);
        }
    }
    // Flows read before a broken record are still written; the error is reported after.
    while table.finish_some(&mut out, 4096) > 0 {
        for record in out.drain(..) {
            sink.write(&record);
        }
    }
    let counters = table.counters();
    let (flows, file_path) = sink.close()?;
    if let Some(e) = read_error {
        return Err(anyhow::Error::new(e).context("reading the capture for flows"));
    }
    Ok(FlowsSummary {
        flows,
        packets_in_flows: counters.packets_in_flows,
        skipped: counters.skipped_not_ip + counters.skipped_fragment + counters.skipped_too_short,
        dropped: 0,
        file: file_path,
    })
}

fn from_interface(
    capture: &mut LiveCapture,
    source: &FlowsSource,
    sink: FlowSink,
    stop: &CancellationToken,
) -> anyhow::Result<FlowsSummary> {
    let sink = Arc::new(Mutex::new(Some(sink)));
    let writer_side = sink.clone();
    let meter = LiveFlows::spawn(
        source.config.clone(),
        0,
        LIVE_TICK,
        LIVE_QUEUE,
        move |record| {
            if let Ok(mut guard) = writer_side.lock()
                && let Some(sink) = guard.as_mut()
            {
                sink.write(&record);
            }
        },
    )?;
    let meta = meta(&source.agent);
    let options = DecodeOptions { payload_bytes: 0 };
    while !stop.is_cancelled() {
        match capture.next_packet() {
            Ok(Some(packet)) => meter.push(&decode(&packet, &meta, &options)),
            Ok(None) => {}
            // breakloop on shutdown, or a capture failure: either way the meter finishes.
            Err(e) => {
                if !stop.is_cancelled() {
                    tracing::warn!(message = "Flow capture stopped.", error = %e);
                }
                break;
            }
        }
    }
    let dropped = meter.dropped();
    let counters = meter.finish()?;
    let sink = sink
        .lock()
        .ok()
        .and_then(|mut guard| guard.take())
        .context("the flow dataset writer was lost")?;
    let (flows, file) = sink.close()?;
    Ok(FlowsSummary {
        flows,
        packets_in_flows: counters.packets_in_flows,
        skipped: counters.skipped_not_ip + counters.skipped_fragment + counters.skipped_too_short,
        dropped,
        file,
    })
}

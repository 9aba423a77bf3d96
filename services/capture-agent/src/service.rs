//! The agent's `run`: open the source, serve ops, capture -> buffer -> publish until the file
//! ends or shutdown, then publish what is buffered.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use netpipe_packet::decode::DecodeOptions;
use netpipe_packet::frame::DecodeIssue;
use netpipe_packet::seq::SequenceGenerator;
use netpipe_runtime::broker::codec::WireFormat;
use netpipe_runtime::broker::{BrokerError, BrokerUrl, Publisher, redact_url};
use netpipe_runtime::capture::{CaptureFile, LinkType, LiveCapture, LiveConfig, compile_filter};
use netpipe_runtime::ops::{Heartbeat, OpsState, Readiness, serve_at};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use crate::capture::{CaptureEnd, CaptureTask, Source};
use crate::metrics::{AgentMetrics, drop_reason};
use crate::publish::{BROKER_REACHABLE, PublishTask};
use crate::{AgentError, Config, Overflow, Summary, flows, metrics, publish, resume, self_filter};

/// Readiness condition: the interface or file is open.
pub const CAPTURE_OPEN: &str = "capture handle open";
const FIRST_CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
const VERSION: &str = env!("CARGO_PKG_VERSION");

/// A started agent: its ops address and shared state, and the task to wait for.
pub struct Agent {
    /// Where /health, /ready and /metrics listen (`None` with OPS_ADDR=off).
    pub ops_addr: Option<SocketAddr>,
    pub readiness: Readiness,
    pub metrics: Arc<AgentMetrics>,
    /// The filter libpcap was given (live capture: with the broker exclusion).
    pub effective_filter: String,
    done: tokio::task::JoinHandle<Result<Summary, AgentError>>,
}

impl Agent {
    pub async fn wait(self) -> Result<Summary, AgentError> {
        self.done
            .await
            .map_err(|e| AgentError::Thread(e.to_string()))?
    }
}

/// Runs until the file is published (`--exit-at-eof`) or `shutdown` is cancelled, then
/// publishes what is buffered and returns.
pub async fn run(config: Config, shutdown: CancellationToken) -> Result<Summary, AgentError> {
    start(config, shutdown).await?.wait().await
}

/// Opens the capture, starts the ops server and the pipeline; configuration problems are
/// returned here, before anything runs.
pub async fn start(config: Config, shutdown: CancellationToken) -> Result<Agent, AgentError> {
    validate(&config)?;
    let metrics = Arc::new(AgentMetrics::new(VERSION)?);
    let readiness = Readiness::new();
    readiness.declare(&[CAPTURE_OPEN, BROKER_REACHABLE]);
    let heartbeat = Heartbeat::new(Duration::from_secs(10));

    let (source, effective_filter) = open_source(&config)?;
    readiness.set_met(CAPTURE_OPEN);

    let ops_shutdown = CancellationToken::new();
    let ops = serve_at(
        &config.common.ops_addr,
        OpsState::new(heartbeat.clone(), readiness.clone(), metrics.ops.clone()),
        ops_shutdown.clone(),
    )
    .await?;

    let connected = first_connect(&config).await?;
    let broker = config.broker()?;
    let durability = netpipe_runtime::broker::spawn_durability_report(
        broker.clone(),
        readiness.clone(),
        metrics.broker_durable.clone(),
        shutdown.child_token(),
    );
    let (tx, rx) = mpsc::channel(config.buffer_capacity());
    let capture_stop = shutdown.child_token();
    let agent_id_text = config.agent_id();
    let agent_id: Arc<str> = Arc::from(agent_id_text.as_str());
    let (sequence, resume) = resume_state(&config, &agent_id_text)?;
    let boot = sequence.boot();
    let skip_below = resume.as_ref().map_or(0, |s| s.boot + s.confirmed);
    if let Some(state) = &resume
        && state.confirmed > 0
    {
        tracing::info!(
            boot,
            confirmed = state.confirmed,
            "resuming the replay after the packets the broker confirmed"
        );
    }
    let progress = match (&config.resume, resume) {
        (Some(path), Some(state)) => Some(Arc::new(std::sync::Mutex::new(resume::Progress::new(
            path.clone(),
            state,
        )))),
        _ => None,
    };
    tracing::info!(
        agent = %agent_id,
        boot = sequence.boot(),
        source = %source_name(&config),
        filter = %effective_filter,
        broker = %broker.url,
        stream = %config.stream,
        overflow = ?config.overflow(),
        "capture-agent starting"
    );
    let mut source = source;
    if let Source::Live(live) = &mut source {
        // Wake a capture blocked on an idle interface when it is time to stop.
        let breakloop = live.breakloop_handle();
        let stop = capture_stop.clone();
        tokio::spawn(async move {
            stop.cancelled().await;
            breakloop.breakloop();
        });
    }
    // --flows: the meter at the edge and its own publisher on the flow stream/queue.
    let (flow_meter, flow_publishing) = if config.flows {
        let (flow_tx, flow_rx) = mpsc::channel(flows::FLOW_QUEUE);
        let meter = match &source {
            Source::Live(_) => {
                flows::FlowMeter::live(config.flow_config(), flow_tx, metrics.clone())
                    .map_err(|e| AgentError::Thread(e.to_string()))?
            }
            Source::File { .. } => {
                flows::FlowMeter::replay(config.flow_config(), flow_tx, metrics.clone())
                    .map_err(|e| AgentError::Thread(e.to_string()))?
            }
        };
        let flow_broker = config.flow_broker()?;
        tracing::info!(stream = %flow_broker.stream, "metering flows at the edge");
        let task = flows::FlowPublishTask {
            rx: flow_rx,
            broker: flow_broker,
            agent: agent_id.clone(),
            boot,
            batch_size: config.batch_size,
            batch_delay: config.batch_delay(),
            metrics: metrics.clone(),
            shutdown: shutdown.clone(),
            shutdown_grace: Duration::from_secs(config.shutdown_grace_secs),
            max_backoff: Duration::from_millis(config.reconnect_max_ms),
        };
        (Some(meter), Some(tokio::spawn(task.run())))
    } else {
        (None, None)
    };
    let capture = CaptureTask {
        source,
        count: config.count,
        tx,
        overflow: config.overflow(),
        sequence,
        agent: agent_id.clone(),
        decode_options: DecodeOptions {
            payload_bytes: config.payload_bytes(),
        },
        metrics: metrics.clone(),
        shutdown: capture_stop.clone(),
        skip_below,
        flows: flow_meter,
    };
    let (capture_done_tx, capture_done) = oneshot::channel();
    std::thread::Builder::new()
        .name("capture".into())
        .spawn(move || {
            let _ = capture_done_tx.send(capture.run());
        })
        .map_err(|e| AgentError::Thread(e.to_string()))?;

    let publisher = PublishTask {
        rx,
        connected,
        format: WireFormat::for_url(&broker.url, &agent_id_text),
        broker,
        batch_size: config.batch_size,
        max_in_flight: config.max_in_flight,
        batch_delay: config.batch_delay(),
        metrics: metrics.clone(),
        readiness: readiness.clone(),
        shutdown: shutdown.clone(),
        shutdown_grace: Duration::from_secs(config.shutdown_grace_secs),
        max_backoff: Duration::from_millis(config.reconnect_max_ms),
        max_backlog: config.max_backlog(),
        wait_for_backlog: config.overflow() == Overflow::Wait,
        progress,
        stats_message: (config.stats_message_secs > 0).then(|| publish::StatsMessage {
            agent: agent_id.clone(),
            boot,
            interval: Duration::from_secs(config.stats_message_secs),
        }),
    };
    let frames_publishing = tokio::spawn(publisher.run());
    // The pipeline has drained once both publishers have.
    let publishing = tokio::spawn(async move {
        let _ = frames_publishing.await;
        if let Some(flows) = flow_publishing {
            let _ = flows.await;
        }
    });

    let ops_addr = ops.as_ref().map(|ops| ops.local_addr);
    let supervisor = Supervisor {
        broker_wait: (config.read.is_some() && config.broker_wait_secs > 0)
            .then(|| Duration::from_secs(config.broker_wait_secs)),
        config,
        metrics: metrics.clone(),
        heartbeat,
        shutdown,
        ops_shutdown,
        ops_task: ops.map(|ops| ops.task),
        _durability: durability,
    };
    let done = tokio::spawn(supervisor.run(capture_done, publishing));
    Ok(Agent {
        ops_addr,
        readiness,
        metrics,
        effective_filter,
        done,
    })
}

/// The sequence generator, and with --resume the replay's state (loaded, or new and stored).
fn resume_state(
    config: &Config,
    agent: &str,
) -> Result<(SequenceGenerator, Option<resume::ResumeState>), AgentError> {
    let (Some(path), Some(file)) = (&config.resume, &config.read) else {
        return Ok((SequenceGenerator::start(None), None));
    };
    if let Some(state) = resume::ResumeState::load(path, file, config.loops, agent)? {
        return Ok((SequenceGenerator::with_boot(state.boot), Some(state)));
    }
    let sequence = SequenceGenerator::start(None);
    let state = resume::ResumeState::new(file, config.loops, agent, sequence.boot())?;
    state
        .store(path)
        .map_err(|e| AgentError::Config(format!("--resume {}: {e}", path.display())))?;
    Ok((sequence, Some(state)))
}

fn validate(config: &Config) -> Result<(), AgentError> {
    if config.resume.is_some() && config.read.is_none() {
        return Err(AgentError::Config(
            "--resume needs --read (only a file replay can be resumed)".into(),
        ));
    }
    if let Some(speed) = config.speed
        && !(speed.is_finite() && speed > 0.0)
    {
        return Err(AgentError::Config(format!(
            "--speed must be a positive number, not {speed}"
        )));
    }
    if config.count == Some(0) {
        return Err(AgentError::Config("--count must be at least 1".into()));
    }
    if config.batch_size == 0 || config.buffer_frames == 0 || config.max_in_flight == 0 {
        return Err(AgentError::Config(
            "--batch-size, --buffer-frames and --max-in-flight must be at least 1".into(),
        ));
    }
    if config.flows && !netpipe_runtime::broker::flow_batch::carries_flows(&config.broker_url) {
        return Err(AgentError::Config(
            "--flows needs a redis:// or amqp:// broker (flow records have their own stream/queue; memory:// and kombu+redis:// have none)".into(),
        ));
    }
    // Syntax of the URL (host, port, scheme) before anything is opened.
    BrokerUrl::parse(&config.broker_url)?;
    Ok(())
}

/// One connection attempt before capturing: a URL the backend refuses to use is a
/// configuration error; an unreachable broker is not (the agent buffers and retries).
async fn first_connect(config: &Config) -> Result<Option<Publisher>, AgentError> {
    let broker = config.broker()?;
    match tokio::time::timeout(FIRST_CONNECT_TIMEOUT, Publisher::connect(&broker)).await {
        Ok(Ok(publisher)) => Ok(Some(publisher)),
        Ok(Err(e @ (BrokerError::BadUrl { .. } | BrokerError::UnsupportedScheme { .. }))) => {
            Err(AgentError::Broker(e))
        }
        // Wrong credentials are not transient: retrying would only hide them.
        Ok(Err(e)) if e.is_auth_failure() => Err(AgentError::Broker(e)),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "broker not reachable yet; capturing into the buffer and retrying");
            Ok(None)
        }
        Err(_) => {
            tracing::warn!(broker = %broker.redacted_url(), "broker connect timed out; capturing into the buffer and retrying");
            Ok(None)
        }
    }
}

fn source_name(config: &Config) -> String {
    match &config.read {
        Some(path) => format!("file {}", path.display()),
        None => format!("interface {}", config.interface),
    }
}

/// Opens the interface (filter with the broker excluded) or the file (filter checked now).
fn open_source(config: &Config) -> Result<(Source, String), AgentError> {
    let base_filter = config.base_filter();
    match &config.read {
        Some(path) => {
            let file = CaptureFile::open(path)?;
            if !base_filter.is_empty() {
                let link = file.link_type().unwrap_or(LinkType::ETHERNET);
                compile_filter(&base_filter, link)?;
            }
            let source = Source::File {
                file,
                path: path.clone(),
                loops: config.loops,
                filter: base_filter.clone(),
                snaplen: config.snaplen,
                speed: config.speed,
            };
            Ok((source, base_filter))
        }
        None => {
            let filter =
                self_filter::live_filter(&base_filter, &BrokerUrl::parse(&config.broker_url)?)?;
            let mut live = LiveConfig::new(config.interface.clone());
            live.filter = filter.clone();
            live.snaplen = config.snaplen;
            live.promiscuous = config.promiscuous();
            live.buffer_size = config.buffer_size;
            Ok((Source::Live(LiveCapture::open(&live)?), filter))
        }
    }
}

/// Watches the pipeline: heartbeat, periodic summary, shutdown order, final summary.
struct Supervisor {
    /// With --read: how long the broker may stay unreachable before the replay gives up.
    broker_wait: Option<Duration>,
    config: Config,
    metrics: Arc<AgentMetrics>,
    heartbeat: Heartbeat,
    shutdown: CancellationToken,
    ops_shutdown: CancellationToken,
    ops_task: Option<tokio::task::JoinHandle<()>>,
    /// The background durability check ends with the agent.
    _durability: tokio_util::task::AbortOnDropHandle<()>,
}

impl Supervisor {
    async fn run(
        self,
        capture_done: oneshot::Receiver<Result<CaptureEnd, AgentError>>,
        mut publishing: tokio::task::JoinHandle<()>,
    ) -> Result<Summary, AgentError> {
        let interval = Duration::from_secs(self.config.stats_interval_secs.max(1));
        let mut summary_tick = tokio::time::interval(interval);
        summary_tick.tick().await;
        let mut beat = tokio::time::interval(Duration::from_secs(1));
        let mut capture_done = capture_done;
        let mut capture_result: Option<Result<CaptureEnd, AgentError>> = None;
        let mut last = Totals::default();
        let mut outage = Outage::default();
        // Phase 1: until the capture ends (EOF, shutdown, error).
        loop {
            tokio::select! {
                _ = beat.tick() => {
                    self.heartbeat.beat();
                    self.check_broker(&mut outage);
                }
                _ = summary_tick.tick() => last = self.log_summary(last, interval),
                result = &mut capture_done, if capture_result.is_none() => {
                    capture_result = Some(result.unwrap_or_else(|_| {
                        Err(AgentError::Thread("capture thread ended without a result".into()))
                    }));
                    break;
                }
            }
        }
        let capture_result = capture_result.unwrap_or(Ok(CaptureEnd::Shutdown));
        match &capture_result {
            Ok(end) => tracing::info!(?end, "capture stopped; publishing what is buffered"),
            Err(e) => tracing::error!(error = %e, "capture failed; publishing what is buffered"),
        }
        // Phase 2: the buffer is closed; the publisher drains it.
        loop {
            tokio::select! {
                _ = beat.tick() => {
                    self.heartbeat.beat();
                    self.check_broker(&mut outage);
                }
                _ = summary_tick.tick() => last = self.log_summary(last, interval),
                _ = &mut publishing => break,
            }
        }
        // Phase 3: a replay without --exit-at-eof keeps serving /metrics until shutdown.
        if matches!(capture_result, Ok(CaptureEnd::EndOfFile)) && !self.config.exit_at_eof {
            tracing::info!("file published; waiting for shutdown (use --exit-at-eof to exit)");
            loop {
                tokio::select! {
                    _ = beat.tick() => self.heartbeat.beat(),
                    () = self.shutdown.cancelled() => break,
                }
            }
        }
        let totals = Totals::read(&self.metrics);
        tracing::info!(
            captured = totals.captured,
            published = totals.published,
            dropped = totals.dropped,
            "final summary"
        );
        self.ops_shutdown.cancel();
        if let Some(task) = self.ops_task {
            let _ = task.await;
        }
        capture_result?;
        if outage.gave_up
            && let Some(wait) = self.broker_wait
        {
            return Err(AgentError::BrokerGaveUp {
                url: redact_url(&self.config.broker_url),
                secs: wait.as_secs(),
                unpublished: totals.captured.saturating_sub(totals.published),
            });
        }
        Ok(summary(&self.metrics))
    }

    /// Gives a replay up (stops it, as a signal would) once the broker has been down for
    /// --broker-wait-secs: a file replay must end, with an error, not wait forever.
    fn check_broker(&self, outage: &mut Outage) {
        let Some(limit) = self.broker_wait else {
            return;
        };
        if self.metrics.broker_up.get() == 1 {
            outage.since = None;
            return;
        }
        let since = *outage.since.get_or_insert_with(std::time::Instant::now);
        if !outage.gave_up && since.elapsed() >= limit {
            outage.gave_up = true;
            tracing::error!(
                broker = %redact_url(&self.config.broker_url),
                secs = limit.as_secs(),
                "broker unreachable for too long; giving up the replay"
            );
            self.shutdown.cancel();
        }
    }

    fn log_summary(&self, last: Totals, interval: Duration) -> Totals {
        let now = Totals::read(&self.metrics);
        let secs = interval.as_secs_f64().max(1.0);
        tracing::info!(
            captured = now.captured,
            published = now.published,
            dropped = now.dropped,
            buffered = self.metrics.buffered_frames.get(),
            capture_rate = format!("{:.0}/s", (now.captured - last.captured) as f64 / secs),
            publish_rate = format!("{:.0}/s", (now.published - last.published) as f64 / secs),
            broker_up = self.metrics.broker_up.get() == 1,
            "capture summary"
        );
        now
    }
}

/// A broker outage as the supervisor sees it.
#[derive(Debug, Default)]
struct Outage {
    since: Option<std::time::Instant>,
    gave_up: bool,
}

#[derive(Debug, Clone, Copy, Default)]
struct Totals {
    captured: u64,
    published: u64,
    dropped: u64,
}

impl Totals {
    fn read(metrics: &AgentMetrics) -> Self {
        Totals {
            captured: metrics.packets_captured.get(),
            published: metrics.frames_published.get(),
            dropped: drop_reason::ALL.iter().map(|r| metrics.dropped(r)).sum(),
        }
    }
}

fn summary(metrics: &AgentMetrics) -> Summary {
    Summary {
        packets_captured: metrics.packets_captured.get(),
        packets_filtered: metrics.packets_filtered.get(),
        frames_published: metrics.frames_published.get(),
        batches_published: metrics.batches_published.get(),
        dropped: drop_reason::ALL
            .iter()
            .map(|reason| (*reason, metrics.dropped(reason)))
            .collect(),
        decode_issues: DecodeIssue::ALL
            .iter()
            .zip(&metrics.decode_issues)
            .map(|(issue, counter)| (issue.as_str(), counter.get()))
            .collect(),
        publish_failures: metrics::publish_failure::ALL
            .iter()
            .map(|reason| metrics.publish_failures.with_label_values(&[*reason]).get())
            .sum(),
        broker_rejections: metrics.broker_rejections.get(),
        flows_emitted: metrics.flows_emitted.get(),
        flows_published: metrics.flows_published.get(),
        flows_dropped: metrics::flow_drop_reason::ALL
            .iter()
            .map(|reason| (*reason, metrics.flows_dropped(reason)))
            .collect(),
    }
}

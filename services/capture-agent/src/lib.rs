//! capture-agent: packets from a live interface (libpcap) or a pcap/pcapng file -> decoded
//! frames -> bounded buffer -> batches -> broker, with /health, /ready and /metrics.
//!
//! ```text
//! capture thread (libpcap | file) --decode--> bounded buffer --batch+encode--> Publisher
//!      live: drop newest when full                        reconnects with backoff
//!      file: wait for room                                 while the broker is down
//! ```

pub mod capture;
pub mod config;
pub mod flows;
pub mod metrics;
pub mod publish;
pub mod resume;
pub mod self_filter;
pub mod service;

use std::collections::BTreeMap;

use netpipe_runtime::broker::BrokerError;
use netpipe_runtime::capture::{FileError, LiveError};
use netpipe_runtime::ops::{MetricsError, OpsError};

pub use config::{Config, Overflow, Profile};
pub use service::{Agent, CAPTURE_OPEN, run, start};

use crate::metrics::drop_reason;

/// Why the agent could not start or had to stop.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error("{0}")]
    Config(String),
    #[error(transparent)]
    Capture(#[from] LiveError),
    #[error(transparent)]
    File(#[from] FileError),
    #[error(transparent)]
    Broker(#[from] BrokerError),
    #[error(transparent)]
    Ops(#[from] OpsError),
    #[error(transparent)]
    Metrics(#[from] MetricsError),
    #[error("capture thread: {0}")]
    Thread(String),
    /// A replay gave up on a broker that stayed unreachable for --broker-wait-secs.
    #[error(
        "broker {url} unreachable for {secs} s (--broker-wait-secs); {unpublished} captured frames were not published"
    )]
    BrokerGaveUp {
        url: String,
        secs: u64,
        unpublished: u64,
    },
}

/// What a run did, for the caller and the last log line.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    pub packets_captured: u64,
    pub packets_filtered: u64,
    pub frames_published: u64,
    pub batches_published: u64,
    /// Packets lost, by reason (every reason listed, zero or not).
    pub dropped: BTreeMap<&'static str, u64>,
    pub decode_issues: BTreeMap<&'static str, u64>,
    pub publish_failures: u64,
    pub broker_rejections: u64,
    /// --flows: flow records finished, accepted by the broker, and lost (by reason).
    pub flows_emitted: u64,
    pub flows_published: u64,
    pub flows_dropped: BTreeMap<&'static str, u64>,
}

impl Summary {
    pub fn dropped_total(&self) -> u64 {
        self.dropped.values().sum()
    }

    /// Flow records (--flows) the agent finished and then lost, all reasons.
    pub fn flows_lost(&self) -> u64 {
        self.flows_dropped.values().sum()
    }

    /// Frames the agent captured and then lost (refused by the broker, still buffered when the
    /// shutdown grace ran out, buffer overflow). Kernel and interface drops are not in it:
    /// those packets never reached the agent, and a live capture reports them as it goes.
    pub fn lost_after_capture(&self) -> u64 {
        [
            drop_reason::BUFFER_FULL,
            drop_reason::BROKER_REJECTED,
            drop_reason::SHUTDOWN,
            drop_reason::INTERNAL,
        ]
        .iter()
        .filter_map(|reason| self.dropped.get(reason))
        .sum()
    }
}

/// The end-of-run line: totals, then only the non-zero reasons.
impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} packets captured, {} filtered out, {} frames published in {} batches, {} dropped",
            self.packets_captured,
            self.packets_filtered,
            self.frames_published,
            self.batches_published,
            self.dropped_total(),
        )?;
        for (title, counts) in [
            ("dropped", &self.dropped),
            ("decode issues", &self.decode_issues),
        ] {
            let nonzero: Vec<String> = counts
                .iter()
                .filter(|(_, n)| **n > 0)
                .map(|(reason, n)| format!("{reason}={n}"))
                .collect();
            if !nonzero.is_empty() {
                write!(f, "; {title}: {}", nonzero.join(" "))?;
            }
        }
        if self.flows_emitted > 0 {
            let lost = self.flows_lost();
            write!(
                f,
                "; {} flows, {} published, {} lost",
                self.flows_emitted, self.flows_published, lost
            )?;
        }
        if self.publish_failures > 0 || self.broker_rejections > 0 {
            write!(
                f,
                "; {} failed publish attempts, {} batches rejected",
                self.publish_failures, self.broker_rejections
            )?;
        }
        Ok(())
    }
}

//! Live capture through libpcap, with a kernel BPF filter.

use std::time::Duration;

use pcap::{Active, Capture, Direction, Precision};

use super::{LinkType, RawPacket};

/// Settings for opening an interface.
#[derive(Debug, Clone)]
pub struct LiveConfig {
    pub interface: String,
    /// BPF filter expression; empty captures everything.
    pub filter: String,
    pub snaplen: i32,
    pub promiscuous: bool,
    /// Kernel buffer size in bytes (0 keeps libpcap's default).
    pub buffer_size: i32,
    /// How long one read may wait before returning nothing, so shutdown is noticed.
    pub read_timeout: Duration,
    /// Only packets received (not sent) by the interface. On `lo` every packet is seen twice,
    /// once in each direction, so this is the default there.
    pub inbound_only: bool,
}

impl LiveConfig {
    pub fn new(interface: impl Into<String>) -> Self {
        let interface = interface.into();
        let inbound_only = interface == "lo";
        LiveConfig {
            interface,
            filter: String::new(),
            snaplen: 65535,
            promiscuous: false,
            buffer_size: 0,
            read_timeout: Duration::from_millis(100),
            inbound_only,
        }
    }
}

/// Why an interface could not be opened or read.
#[derive(Debug, thiserror::Error)]
pub enum LiveError {
    #[error("interface {interface}: no such device")]
    NoSuchDevice { interface: String },
    #[error(
        "interface {interface}: permission denied; capturing needs CAP_NET_RAW{}",
        if *.promiscuous { " and CAP_NET_ADMIN (promiscuous mode)" } else { "" }
    )]
    MissingCapability {
        interface: String,
        promiscuous: bool,
    },
    #[error("invalid BPF filter {filter:?}: {reason}")]
    BadFilter { filter: String, reason: String },
    #[error("interface {interface}: unsupported link type {link}")]
    UnsupportedLinkType { interface: String, link: String },
    #[error("interface {interface}: {reason}")]
    Pcap { interface: String, reason: String },
}

/// libpcap's own drop counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LiveStats {
    pub received: u64,
    /// Dropped by the kernel because the buffer was full.
    pub kernel_dropped: u64,
    /// Dropped by the interface or its driver.
    pub interface_dropped: u64,
}

/// An open interface.
pub struct LiveCapture {
    capture: Capture<Active>,
    interface: String,
    link: LinkType,
}

impl std::fmt::Debug for LiveCapture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LiveCapture")
            .field("interface", &self.interface)
            .field("link", &self.link)
            .finish()
    }
}

impl LiveCapture {
    /// Opens the interface, applies the filter in the kernel, and checks the link type.
    pub fn open(config: &LiveConfig) -> Result<Self, LiveError> {
        let interface = config.interface.clone();
        let classify = |e: pcap::Error| classify_open_error(&interface, config.promiscuous, e);
        let mut inactive = Capture::from_device(interface.as_str())
            .map_err(classify)?
            .snaplen(config.snaplen)
            .promisc(config.promiscuous)
            .precision(Precision::Nano)
            .timeout(
                i32::try_from(config.read_timeout.as_millis())
                    .unwrap_or(1000)
                    .max(1),
            );
        if config.buffer_size > 0 {
            inactive = inactive.buffer_size(config.buffer_size);
        }
        let mut capture = inactive.open().map_err(classify)?;
        let link = LinkType(u16::try_from(capture.get_datalink().0).unwrap_or(u16::MAX));
        if !link.is_supported() {
            return Err(LiveError::UnsupportedLinkType {
                interface,
                link: link.to_string(),
            });
        }
        if !config.filter.trim().is_empty() {
            capture
                .filter(&config.filter, true)
                .map_err(|e| LiveError::BadFilter {
                    filter: config.filter.clone(),
                    reason: pcap_reason(e),
                })?;
        }
        if config.inbound_only {
            capture
                .direction(Direction::In)
                .map_err(|e| LiveError::Pcap {
                    interface: interface.clone(),
                    reason: pcap_reason(e),
                })?;
        }
        Ok(LiveCapture {
            capture,
            interface,
            link,
        })
    }

    pub fn link_type(&self) -> LinkType {
        self.link
    }

    pub fn interface(&self) -> &str {
        &self.interface
    }

    /// The next packet, or `None` when the read timeout passed without one.
    pub fn next_packet(&mut self) -> Result<Option<RawPacket<'_>>, LiveError> {
        match self.capture.next_packet() {
            Ok(packet) => {
                let ts = packet.header.ts;
                // Precision::Nano: tv_usec holds nanoseconds.
                // (timeval fields are i64 on 64-bit Linux.)
                let ts_ns = ts
                    .tv_sec
                    .saturating_mul(1_000_000_000)
                    .saturating_add(ts.tv_usec);
                Ok(Some(RawPacket {
                    ts_ns,
                    wire_len: packet.header.len,
                    link: self.link,
                    data: packet.data,
                }))
            }
            Err(pcap::Error::TimeoutExpired) => Ok(None),
            Err(e) => Err(LiveError::Pcap {
                interface: self.interface.clone(),
                reason: pcap_reason(e),
            }),
        }
    }

    /// A handle that wakes a blocked [`LiveCapture::next_packet`] from another thread
    /// (`pcap_breakloop`); that call then returns an error. Needed for shutdown: on Linux with
    /// TPACKET_V3 the read timeout only fires once a packet has arrived, so an idle capture
    /// (nothing passes the filter) otherwise blocks forever.
    pub fn breakloop_handle(&mut self) -> pcap::BreakLoop {
        self.capture.breakloop_handle()
    }

    /// libpcap's counters since the capture was opened.
    pub fn stats(&mut self) -> Result<LiveStats, LiveError> {
        let stat = self.capture.stats().map_err(|e| LiveError::Pcap {
            interface: self.interface.clone(),
            reason: pcap_reason(e),
        })?;
        Ok(LiveStats {
            received: u64::from(stat.received),
            kernel_dropped: u64::from(stat.dropped),
            interface_dropped: u64::from(stat.if_dropped),
        })
    }
}

/// Compiles a BPF filter for a link type without opening a device, e.g. to filter packets read
/// from a file. Returns a clear error for an invalid expression.
pub fn compile_filter(filter: &str, link: LinkType) -> Result<pcap::BpfProgram, LiveError> {
    let bad = |reason: String| LiveError::BadFilter {
        filter: filter.to_string(),
        reason,
    };
    let dead = Capture::dead_with_precision(pcap::Linktype(i32::from(link.0)), Precision::Nano)
        .map_err(|e| bad(pcap_reason(e)))?;
    dead.compile(filter, true).map_err(|e| bad(pcap_reason(e)))
}

/// A BPF filter for packets read from a file, run in user space: compiled once for each link
/// type the file uses (a pcapng file may mix them). Without an expression every packet passes.
#[derive(Default)]
pub struct FileFilter {
    expr: Option<String>,
    programs: std::collections::HashMap<LinkType, pcap::BpfProgram>,
}

impl FileFilter {
    pub fn new(expr: Option<&str>) -> Self {
        FileFilter {
            expr: expr.filter(|e| !e.is_empty()).map(str::to_string),
            programs: Default::default(),
        }
    }

    /// Whether the packet passes the filter.
    pub fn keeps(&mut self, packet: &RawPacket<'_>) -> Result<bool, LiveError> {
        let Some(expr) = &self.expr else {
            return Ok(true);
        };
        let program = match self.programs.entry(packet.link) {
            std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
            std::collections::hash_map::Entry::Vacant(e) => {
                e.insert(compile_filter(expr, packet.link)?)
            }
        };
        Ok(program.filter(packet.data))
    }
}

fn classify_open_error(interface: &str, promiscuous: bool, e: pcap::Error) -> LiveError {
    let reason = pcap_reason(e);
    let lower = reason.to_ascii_lowercase();
    if lower.contains("no such device")
        || lower.contains("doesn't exist")
        || lower.contains("not found")
    {
        LiveError::NoSuchDevice {
            interface: interface.to_string(),
        }
    } else if lower.contains("permission") || lower.contains("not permitted") {
        LiveError::MissingCapability {
            interface: interface.to_string(),
            promiscuous,
        }
    } else {
        LiveError::Pcap {
            interface: interface.to_string(),
            reason,
        }
    }
}

fn pcap_reason(e: pcap::Error) -> String {
    match e {
        pcap::Error::PcapError(s) => s,
        other => other.to_string(),
    }
}

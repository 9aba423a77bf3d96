//! Reading pcap and pcapng files with `pcap-parser`.
//!
//! The format comes from the magic number, never from the file name (several corpus files named
//! `.pcap` are pcapng). pcapng files may hold several interfaces with different link types and
//! timestamp resolutions; each packet carries the link type of its own interface.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use pcap_parser::pcapng::{Block, InterfaceDescriptionBlock};
use pcap_parser::traits::PcapReaderIterator;
use pcap_parser::{PcapBlockOwned, PcapError};

use super::{LinkType, RawPacket};

/// Initial read buffer; grown (up to [`MAX_BUFFER`]) when one block is larger. Small, so a
/// short replay does not read (and fault in) a megabyte before its first packet.
const INITIAL_BUFFER: usize = 64 << 10;
/// The largest block we accept. libpcap caps records at 256 KiB; pcapng allows more.
const MAX_BUFFER: usize = 64 << 20;

/// Which container format a file uses, from its magic number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileFormat {
    Pcap { nanosecond: bool, big_endian: bool },
    PcapNg,
}

/// Why a capture file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: not a pcap or pcapng file (magic number {magic})")]
    UnknownFormat { path: PathBuf, magic: String },
    #[error("{path}: file is empty")]
    Empty { path: PathBuf },
    #[error("{path}: unsupported pcap version {major}.{minor}")]
    UnsupportedVersion {
        path: PathBuf,
        major: u16,
        minor: u16,
    },
    #[error("{path}: unsupported link type {link}")]
    UnsupportedLinkType { path: PathBuf, link: String },
    #[error("{path}: link type field has reserved bits set (0x{raw:08x})")]
    ReservedLinkTypeBits { path: PathBuf, raw: u32 },
    #[error("{path}: truncated after {packets} packets (a record is cut short at byte {offset})")]
    Truncated {
        path: PathBuf,
        packets: u64,
        offset: usize,
    },
    #[error("{path}: corrupt file at byte {offset} after {packets} packets: {reason}")]
    Corrupt {
        path: PathBuf,
        packets: u64,
        offset: usize,
        reason: String,
    },
}

/// One pcapng interface: link type and timestamp scale.
#[derive(Debug, Clone, Copy)]
struct Interface {
    link: LinkType,
    /// Timestamp units per second.
    units_per_sec: u64,
    /// Seconds to add to every timestamp (`if_tsoffset`).
    offset_sec: i64,
}

/// A capture file opened for reading, packet by packet.
pub struct CaptureFile {
    reader: Box<dyn PcapReaderIterator + Send>,
    state: State,
}

/// Everything but the reader, so a block borrowed from the reader can update it.
struct State {
    path: PathBuf,
    format: FileFormat,
    /// Link type of a legacy pcap file.
    legacy_link: LinkType,
    interfaces: Vec<Interface>,
    /// Bytes of the block returned last, consumed at the next call.
    pending_consume: usize,
    /// The current packet's bytes, copied out of the reader's buffer.
    packet: Vec<u8>,
    packets: u64,
    skipped_unsupported: u64,
    finished: bool,
    /// Byte order of the current pcapng section.
    big_endian: bool,
}

impl std::fmt::Debug for CaptureFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CaptureFile")
            .field("path", &self.state.path)
            .field("format", &self.state.format)
            .field("packets", &self.state.packets)
            .finish_non_exhaustive()
    }
}

impl CaptureFile {
    /// Opens a file and reads its header. Fails with one clear error naming the file.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, FileError> {
        let path = path.as_ref().to_path_buf();
        let file = File::open(&path).map_err(|source| FileError::Io {
            path: path.clone(),
            source,
        })?;
        Self::from_reader(path, file)
    }

    /// Reads a capture from any byte stream (`netpipe decode -r -` reads stdin); `name` is
    /// what messages call it. Nothing is read twice, so a pipe works like a file.
    pub fn from_reader(
        name: impl Into<PathBuf>,
        mut file: impl Read + Send + 'static,
    ) -> Result<Self, FileError> {
        let path: PathBuf = name.into();
        let io_err = |source| FileError::Io {
            path: path.clone(),
            source,
        };
        let mut magic = [0u8; 4];
        let got = read_up_to(&mut file, &mut magic).map_err(io_err)?;
        if got == 0 {
            return Err(FileError::Empty { path });
        }
        let format = match magic {
            [0xd4, 0xc3, 0xb2, 0xa1] => FileFormat::Pcap {
                nanosecond: false,
                big_endian: false,
            },
            [0xa1, 0xb2, 0xc3, 0xd4] => FileFormat::Pcap {
                nanosecond: false,
                big_endian: true,
            },
            [0x4d, 0x3c, 0xb2, 0xa1] => FileFormat::Pcap {
                nanosecond: true,
                big_endian: false,
            },
            [0xa1, 0xb2, 0x3c, 0x4d] => FileFormat::Pcap {
                nanosecond: true,
                big_endian: true,
            },
            [0x0a, 0x0d, 0x0d, 0x0a] => FileFormat::PcapNg,
            _ => {
                let magic = magic[..got]
                    .iter()
                    .map(|b| format!("{b:02x}"))
                    .collect::<String>();
                return Err(FileError::UnknownFormat { path, magic });
            }
        };
        // The parser reads the header itself, and wants it whole in its first read: hand it
        // the magic again plus the start of the stream, then the rest.
        let mut head = vec![0u8; 64 * 1024];
        head[..got].copy_from_slice(&magic[..got]);
        let more = read_up_to(&mut file, &mut head[got..]).map_err(io_err)?;
        head.truncate(got + more);
        let replayed = std::io::Cursor::new(head).chain(file);
        let reader = pcap_parser::create_reader(INITIAL_BUFFER, replayed).map_err(|e| match e {
            PcapError::Eof | PcapError::UnexpectedEof | PcapError::Incomplete(_) => {
                FileError::Truncated {
                    path: path.clone(),
                    packets: 0,
                    offset: 0,
                }
            }
            other => FileError::Corrupt {
                path: path.clone(),
                packets: 0,
                offset: 0,
                reason: describe(&other),
            },
        })?;
        let mut capture = CaptureFile {
            reader,
            state: State {
                path,
                format,
                legacy_link: LinkType::ETHERNET,
                interfaces: Vec::new(),
                pending_consume: 0,
                packet: Vec::with_capacity(2048),
                packets: 0,
                skipped_unsupported: 0,
                finished: false,
                big_endian: false,
            },
        };
        if let FileFormat::Pcap { .. } = format {
            capture.read_legacy_header()?;
        }
        Ok(capture)
    }

    pub fn path(&self) -> &Path {
        &self.state.path
    }

    pub fn format(&self) -> FileFormat {
        self.state.format
    }

    /// Packets returned so far.
    pub fn packets(&self) -> u64 {
        self.state.packets
    }

    /// Packets skipped because their pcapng interface has a link type we do not decode.
    pub fn skipped_unsupported(&self) -> u64 {
        self.state.skipped_unsupported
    }

    /// Link type of a legacy pcap file, or of the first interface of a pcapng file seen so far.
    pub fn link_type(&self) -> Option<LinkType> {
        match self.state.format {
            FileFormat::Pcap { .. } => Some(self.state.legacy_link),
            FileFormat::PcapNg => self.state.interfaces.first().map(|i| i.link),
        }
    }

    fn read_legacy_header(&mut self) -> Result<(), FileError> {
        let path = self.state.path.clone();
        loop {
            let outcome = match self.reader.next() {
                Ok((offset, PcapBlockOwned::LegacyHeader(header))) => Ok((
                    offset,
                    Some((
                        header.version_major,
                        header.version_minor,
                        header.network.0 as u32,
                    )),
                )),
                Ok((offset, _)) => Ok((offset, None)),
                Err(e) => Err(classify(&e)),
            };
            match outcome {
                Ok((offset, Some((major, minor, raw)))) => {
                    self.reader.consume(offset);
                    // As libpcap: 2.0 to 2.4 only.
                    if major != 2 || minor > 4 {
                        return Err(FileError::UnsupportedVersion { path, major, minor });
                    }
                    // As libpcap: bits 16..25 are reserved and must be zero; bits 26..31 carry
                    // the optional FCS length and are allowed.
                    if raw & 0x03ff_0000 != 0 {
                        return Err(FileError::ReservedLinkTypeBits { path, raw });
                    }
                    let link = LinkType((raw & 0xffff) as u16);
                    if !link.is_supported() {
                        return Err(FileError::UnsupportedLinkType {
                            path,
                            link: link.to_string(),
                        });
                    }
                    self.state.legacy_link = link;
                    return Ok(());
                }
                Ok((offset, None)) => self.reader.consume(offset),
                Err(Problem::Incomplete) => self.refill()?,
                Err(problem) => return Err(self.state.error(problem, 0)),
            }
        }
    }

    /// The next packet, or `None` at the end of the file. After an error the reader is finished.
    pub fn next_packet(&mut self) -> Result<Option<RawPacket<'_>>, FileError> {
        if self.state.finished {
            return Ok(None);
        }
        if self.state.pending_consume > 0 {
            self.reader.consume(self.state.pending_consume);
            self.state.pending_consume = 0;
        }
        loop {
            let consumed = self.reader.consumed();
            let outcome = match self.reader.next() {
                Ok((offset, block)) => Ok((offset, self.state.take_block(block, consumed))),
                Err(e) => Err(classify(&e)),
            };
            match outcome {
                Ok((offset, Found::Packet(packet))) => {
                    self.state.pending_consume = offset;
                    self.state.packets += 1;
                    return Ok(Some(RawPacket {
                        ts_ns: packet.ts_ns,
                        wire_len: packet.wire_len,
                        link: packet.link,
                        data: &self.state.packet,
                    }));
                }
                Ok((offset, Found::Nothing)) => self.reader.consume(offset),
                Ok((_, Found::Error(err))) => {
                    self.state.finished = true;
                    return Err(err);
                }
                Err(Problem::Eof) => {
                    self.state.finished = true;
                    return Ok(None);
                }
                Err(Problem::Incomplete) => self.refill()?,
                Err(Problem::TooSmall) => {
                    let size = self
                        .reader
                        .data()
                        .len()
                        .saturating_mul(2)
                        .max(INITIAL_BUFFER * 2);
                    if size > MAX_BUFFER || !self.reader.grow(size) {
                        self.state.finished = true;
                        let reason = format!("a block is larger than {} MiB", MAX_BUFFER >> 20);
                        return Err(self.state.error(Problem::Corrupt(reason), consumed));
                    }
                    self.refill()?;
                }
                Err(problem) => {
                    self.state.finished = true;
                    return Err(self.state.error(problem, consumed));
                }
            }
        }
    }

    fn refill(&mut self) -> Result<(), FileError> {
        let consumed = self.reader.consumed();
        let outcome = self.reader.refill().map_err(|e| classify(&e));
        outcome.map_err(|problem| {
            self.state.finished = true;
            self.state.error(problem, consumed)
        })
    }
}

impl State {
    /// Interprets one block; packet bytes are copied into `self.packet`.
    fn take_block(&mut self, block: PcapBlockOwned<'_>, offset: usize) -> Found {
        match block {
            PcapBlockOwned::Legacy(record) => {
                let nanosecond = matches!(
                    self.format,
                    FileFormat::Pcap {
                        nanosecond: true,
                        ..
                    }
                );
                let frac_ns = if nanosecond {
                    i64::from(record.ts_usec)
                } else {
                    i64::from(record.ts_usec) * 1000
                };
                let caplen = (record.caplen as usize).min(record.data.len());
                self.packet.clear();
                self.packet.extend_from_slice(&record.data[..caplen]);
                Found::Packet(PacketMeta {
                    ts_ns: i64::from(record.ts_sec) * 1_000_000_000 + frac_ns,
                    wire_len: record.origlen,
                    link: self.legacy_link,
                })
            }
            PcapBlockOwned::LegacyHeader(_) => Found::Nothing,
            PcapBlockOwned::NG(Block::SectionHeader(shb)) => {
                // libpcap and Wireshark accept versions 1.0 and 1.2 only.
                if shb.major_version != 1 || !matches!(shb.minor_version, 0 | 2) {
                    return Found::Error(FileError::UnsupportedVersion {
                        path: self.path.clone(),
                        major: shb.major_version,
                        minor: shb.minor_version,
                    });
                }
                // A new section starts a new interface numbering.
                self.interfaces.clear();
                self.big_endian = shb.big_endian();
                Found::Nothing
            }
            PcapBlockOwned::NG(Block::InterfaceDescription(idb)) => {
                self.interfaces.push(interface_of(&idb));
                Found::Nothing
            }
            PcapBlockOwned::NG(Block::EnhancedPacket(epb)) => {
                let record = NgRecord {
                    if_id: epb.if_id,
                    ts: (u64::from(epb.ts_high) << 32) | u64::from(epb.ts_low),
                    caplen: epb.caplen,
                    origlen: epb.origlen,
                    data: epb.data,
                };
                self.take_record(record, offset)
            }
            PcapBlockOwned::NG(Block::SimplePacket(spb)) => {
                let Some(iface) = self.interfaces.first().copied() else {
                    return Found::Error(FileError::Corrupt {
                        path: self.path.clone(),
                        packets: self.packets,
                        offset,
                        reason: "simple packet block before any interface".into(),
                    });
                };
                if !iface.link.is_supported() {
                    self.skipped_unsupported += 1;
                    return Found::Nothing;
                }
                let caplen = (spb.origlen as usize).min(spb.data.len());
                self.packet.clear();
                self.packet.extend_from_slice(&spb.data[..caplen]);
                // Simple packet blocks carry no timestamp.
                Found::Packet(PacketMeta {
                    ts_ns: 0,
                    wire_len: spb.origlen,
                    link: iface.link,
                })
            }
            PcapBlockOwned::NG(Block::Unknown(block)) => {
                // pcap-parser 0.17 does not recognise the obsolete Packet Block (type 2) nor
                // enhanced packets in big-endian sections; both carry real packets.
                match parse_packet_block(block.block_type, block.data, self.big_endian) {
                    Some(record) => self.take_record(record, offset),
                    None => Found::Nothing,
                }
            }
            PcapBlockOwned::NG(_) => Found::Nothing,
        }
    }

    fn take_record(&mut self, record: NgRecord<'_>, offset: usize) -> Found {
        let Some(iface) = self.interfaces.get(record.if_id as usize).copied() else {
            return Found::Error(FileError::Corrupt {
                path: self.path.clone(),
                packets: self.packets,
                offset,
                reason: format!("packet refers to undeclared interface {}", record.if_id),
            });
        };
        if !iface.link.is_supported() {
            self.skipped_unsupported += 1;
            return Found::Nothing;
        }
        let caplen = (record.caplen as usize).min(record.data.len());
        self.packet.clear();
        self.packet.extend_from_slice(&record.data[..caplen]);
        Found::Packet(PacketMeta {
            ts_ns: scale_to_ns(record.ts, iface.units_per_sec, iface.offset_sec),
            wire_len: record.origlen,
            link: iface.link,
        })
    }

    fn error(&self, problem: Problem, offset: usize) -> FileError {
        let (path, packets) = (self.path.clone(), self.packets);
        match problem {
            Problem::Eof | Problem::Incomplete | Problem::Truncated => FileError::Truncated {
                path,
                packets,
                offset,
            },
            Problem::TooSmall => FileError::Corrupt {
                path,
                packets,
                offset,
                reason: "block too large".into(),
            },
            Problem::Corrupt(reason) => FileError::Corrupt {
                path,
                packets,
                offset,
                reason,
            },
        }
    }
}

/// A reader error with the borrowed input dropped.
enum Problem {
    Eof,
    /// More data must be read into the buffer.
    Incomplete,
    TooSmall,
    /// The file ends inside a block.
    Truncated,
    Corrupt(String),
}

fn classify(e: &PcapError<&[u8]>) -> Problem {
    match e {
        PcapError::Eof => Problem::Eof,
        PcapError::Incomplete(_) => Problem::Incomplete,
        PcapError::BufferTooSmall => Problem::TooSmall,
        PcapError::UnexpectedEof => Problem::Truncated,
        other => Problem::Corrupt(describe(other)),
    }
}

/// The fields of a pcapng packet record, whichever block type carried it.
struct NgRecord<'a> {
    if_id: u32,
    ts: u64,
    caplen: u32,
    origlen: u32,
    data: &'a [u8],
}

/// Parses the body of an obsolete Packet Block (type 2) or an Enhanced Packet Block (type 6)
/// that pcap-parser left as unknown. `block_type` may be byte-swapped.
fn parse_packet_block(block_type: u32, body: &[u8], big_endian: bool) -> Option<NgRecord<'_>> {
    let u32_at = |at: usize| -> Option<u32> {
        let bytes: [u8; 4] = body.get(at..at + 4)?.try_into().ok()?;
        Some(if big_endian {
            u32::from_be_bytes(bytes)
        } else {
            u32::from_le_bytes(bytes)
        })
    };
    let if_id = match block_type {
        2 | 0x0200_0000 => {
            let bytes: [u8; 2] = body.get(0..2)?.try_into().ok()?;
            u32::from(if big_endian {
                u16::from_be_bytes(bytes)
            } else {
                u16::from_le_bytes(bytes)
            })
        }
        6 | 0x0600_0000 => u32_at(0)?,
        _ => return None,
    };
    let ts = (u64::from(u32_at(4)?) << 32) | u64::from(u32_at(8)?);
    let (caplen, origlen) = (u32_at(12)?, u32_at(16)?);
    let data = body.get(20..)?;
    Some(NgRecord {
        if_id,
        ts,
        caplen,
        origlen,
        data,
    })
}

struct PacketMeta {
    ts_ns: i64,
    wire_len: u32,
    link: LinkType,
}

enum Found {
    Packet(PacketMeta),
    Nothing,
    Error(FileError),
}

fn interface_of(idb: &InterfaceDescriptionBlock<'_>) -> Interface {
    let raw = idb.linktype.0;
    let link = if (0..=i32::from(u16::MAX)).contains(&raw) {
        LinkType(raw as u16)
    } else {
        LinkType(u16::MAX)
    };
    // if_tsresol: high bit set means a power of two, else a power of ten; default microseconds.
    let resol = idb.if_tsresol;
    let units_per_sec = if resol & 0x80 != 0 {
        1u64.checked_shl(u32::from(resol & 0x7f)).unwrap_or(0)
    } else {
        10u64.checked_pow(u32::from(resol)).unwrap_or(0)
    };
    Interface {
        link,
        units_per_sec: if units_per_sec == 0 {
            1_000_000
        } else {
            units_per_sec
        },
        offset_sec: idb.if_tsoffset,
    }
}

/// Converts a pcapng timestamp in interface units to ns since the epoch, saturating.
fn scale_to_ns(ts: u64, units_per_sec: u64, offset_sec: i64) -> i64 {
    let ns = u128::from(ts) * 1_000_000_000 / u128::from(units_per_sec.max(1));
    let ns = i64::try_from(ns).unwrap_or(i64::MAX);
    ns.saturating_add(offset_sec.saturating_mul(1_000_000_000))
}

fn describe(e: &PcapError<&[u8]>) -> String {
    match e {
        PcapError::HeaderNotRecognized => "header not recognized".into(),
        PcapError::ReadError => "read error".into(),
        PcapError::BufferTooSmall => "block too large".into(),
        PcapError::NomError(_, kind) | PcapError::OwnedNomError(_, kind) => {
            format!("invalid block ({})", kind.description())
        }
        other => format!("{other:?}"),
    }
}

fn read_up_to(reader: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..])? {
            0 => break,
            n => filled += n,
        }
    }
    Ok(filled)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pcapng_resolutions_scale_to_nanoseconds() {
        assert_eq!(scale_to_ns(1_500, 1_000_000, 0), 1_500_000);
        assert_eq!(scale_to_ns(7, 1_000_000_000, 2), 2_000_000_007);
        assert_eq!(scale_to_ns(1, 1 << 10, 0), 976_562);
        assert_eq!(scale_to_ns(u64::MAX, 1, 0), i64::MAX);
    }

    #[test]
    fn garbage_is_not_a_capture_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.pcap");
        std::fs::write(&path, b"hello world").unwrap();
        let err = CaptureFile::open(&path).unwrap_err();
        assert!(
            err.to_string().contains("not a pcap or pcapng file"),
            "{err}"
        );
        std::fs::write(&path, b"").unwrap();
        assert!(matches!(
            CaptureFile::open(&path),
            Err(FileError::Empty { .. })
        ));
        assert!(matches!(
            CaptureFile::open(dir.path().join("missing")),
            Err(FileError::Io { .. })
        ));
    }
}

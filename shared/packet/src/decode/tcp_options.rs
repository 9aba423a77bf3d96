//! TCP options: every kind in wire order, the well-known ones decoded.

use super::bytes::{u8_at, u16_at, u32_at};
use crate::frame::TcpOptions;

const EOL: u8 = 0;
const NOP: u8 = 1;
const MSS: u8 = 2;
const WSCALE: u8 = 3;
const SACK_PERMITTED: u8 = 4;
const SACK: u8 = 5;
const TIMESTAMPS: u8 = 8;
const SACK_BLOCK_LEN: usize = 8;

/// How option parsing ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    Ok,
    /// An option's length runs past the end of the option bytes (or its length byte is missing).
    Overrun,
    /// An option has an impossible length (< 2, or wrong for its kind).
    Invalid,
}

/// Parses `bytes` (the option area of one header) into `out`, keeping what parsed before a
/// problem.
pub(crate) fn parse(bytes: &[u8], out: &mut TcpOptions) -> Outcome {
    let mut at = 0usize;
    let mut outcome = Outcome::Ok;
    // One allocation: there are never more kinds than option bytes.
    out.kinds.reserve_exact(bytes.len());
    while let Some(kind) = u8_at(bytes, at) {
        out.kinds.push(kind);
        match kind {
            // What follows an end-of-list is padding.
            EOL => break,
            NOP => at += 1,
            _ => {
                let Some(len) = u8_at(bytes, at + 1).map(usize::from) else {
                    return Outcome::Overrun;
                };
                if len < 2 {
                    return Outcome::Invalid;
                }
                let Some(body) = bytes.get(at + 2..at + len) else {
                    return Outcome::Overrun;
                };
                if !decode_known(kind, body, out) {
                    outcome = Outcome::Invalid;
                }
                at += len;
            }
        }
    }
    outcome
}

/// Decodes one known option; false when its length is wrong for its kind.
fn decode_known(kind: u8, body: &[u8], out: &mut TcpOptions) -> bool {
    match kind {
        MSS => match (body.len(), u16_at(body, 0)) {
            (2, Some(mss)) => out.mss = Some(mss),
            _ => return false,
        },
        WSCALE => match (body.len(), u8_at(body, 0)) {
            (1, Some(shift)) => out.wscale = Some(shift),
            _ => return false,
        },
        SACK_PERMITTED => {
            if !body.is_empty() {
                return false;
            }
            out.sackok = true;
        }
        SACK => {
            if body.is_empty() || !body.len().is_multiple_of(SACK_BLOCK_LEN) {
                return false;
            }
            for block in body.chunks_exact(SACK_BLOCK_LEN) {
                if let (Some(left), Some(right)) = (u32_at(block, 0), u32_at(block, 4)) {
                    out.sack.push((left, right));
                }
            }
        }
        TIMESTAMPS => match (body.len(), u32_at(body, 0), u32_at(body, 4)) {
            (8, Some(val), Some(ecr)) => {
                out.ts_val = Some(val);
                out.ts_ecr = Some(ecr);
            }
            _ => return false,
        },
        // Unknown kinds are kept in `kinds` only.
        _ => {}
    }
    true
}

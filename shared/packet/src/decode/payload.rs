//! Payload and padding: byte counts always, a capped hex copy when payload capture is on.

use super::Ctx;
use super::bytes::{head, hex};
use crate::frame::Payload;

fn payload_of(bytes: &[u8], limit: usize) -> Payload {
    let len = u32::try_from(bytes.len()).unwrap_or(u32::MAX);
    if limit == 0 || bytes.is_empty() {
        return Payload {
            len,
            hex: None,
            capped: false,
        };
    }
    Payload {
        len,
        hex: Some(hex(head(bytes, limit))),
        capped: bytes.len() > limit,
    }
}

/// Records the application payload (bytes after the last decoded header, inside the IP length).
pub(crate) fn set_payload(ctx: &mut Ctx, bytes: &[u8]) {
    ctx.frame.payload = Some(payload_of(bytes, ctx.payload_bytes));
}

/// Records link-layer padding / trailer bytes after the network datagram (if any).
pub(crate) fn set_padding(ctx: &mut Ctx, bytes: &[u8]) {
    if !bytes.is_empty() {
        ctx.frame.padding = Some(payload_of(bytes, ctx.payload_bytes));
    }
}

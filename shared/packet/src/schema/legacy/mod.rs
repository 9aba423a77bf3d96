//! The original network-pipeline formats (original.md §2.3-2.4, §3.3): the message body its
//! capture tools published and the flat row its processor wrote.
//!
//! * [`message_from_frame`]: Frame -> the original's message body `{"data", "created", "source"}`,
//!   reproducing `convert_pkt_to_json` with kamene's field lists, including the field-shadowing
//!   bug, the DNS defaults-only layer and the payload hex rules (for original consumers).
//! * [`antinex_cells_from_message`]: an original message body -> antinex-v1 cells (the original
//!   processor's flatten). Works on archived messages and on our own.
//!
//! antinex-v1 rows computed from a Frame go through both, so the two paths cannot disagree.

mod flatten;
mod icmp_quote;
mod message;

pub use flatten::{antinex_cells_from_data, antinex_cells_from_message, legacy_cell_text};
pub use message::{data_layers, is_publishable, message_from_frame};

use super::RowContext;
use crate::frame::Frame;

/// Why an original message body could not be flattened.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LegacyError {
    #[error("legacy message is not a JSON object")]
    NotAnObject,
    #[error("legacy message has no \"data\" key")]
    MissingData,
    #[error("legacy message \"data\" is not a JSON object")]
    DataNotAnObject,
}

/// antinex-v1 cells of a frame, with the original's semantics (Frame -> message -> flatten).
pub fn antinex_cells_from_frame(frame: &Frame, ctx: &RowContext) -> Vec<String> {
    antinex_cells_from_data(&data_layers(frame), ctx)
}

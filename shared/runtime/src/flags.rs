//! Value parsers for numeric flags with bounds, so an extreme value (`u64::MAX`, a size that
//! would not fit in memory, an interval past the end of time) is refused by clap with one line
//! instead of overflowing later.

use clap::builder::RangedU64ValueParser;

/// A `usize` flag within `min..=max`.
pub fn usize_in(min: u64, max: u64) -> RangedU64ValueParser<usize> {
    RangedU64ValueParser::<usize>::new().range(min..=max)
}

/// Longest duration a seconds flag accepts (one year): far beyond any sensible setting, far
/// below what would overflow a clock.
pub const MAX_SECS: u64 = 365 * 24 * 3600;
/// The same for milliseconds.
pub const MAX_MS: u64 = MAX_SECS * 1000;

//! A batch of rows on its way to `POST /ml/`: the rows already written as JSON, which broker
//! messages they came from, and each row's identity for predictions.

use std::borrow::Cow;

use serde::Deserialize;
use sha2::{Digest, Sha256};

/// A `RowBatch` read without copying its strings (they borrow from the message body unless
/// they contain escapes): decoding is most of the per-row cost.
#[derive(Debug, Deserialize)]
pub struct RowBatchRef<'a> {
    #[serde(borrow)]
    pub columns: Vec<Cow<'a, str>>,
    #[serde(borrow)]
    pub rows: Vec<RowRef<'a>>,
}

#[derive(Debug, Deserialize)]
pub struct RowRef<'a> {
    #[serde(borrow)]
    pub agent: Cow<'a, str>,
    pub seq: u64,
    #[serde(borrow)]
    pub cells: Vec<Cow<'a, str>>,
}

/// Consecutive rows `start..start+len` of one broker message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Part {
    pub message: u64,
    pub start: usize,
    pub len: usize,
}

/// Where a row came from: what a prediction is written beside.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowIdentity {
    pub agent: String,
    pub seq: u64,
}

#[derive(Debug, Default)]
pub struct Batch {
    /// Row objects, comma-separated, ready to go between `[` and `]`.
    pub rows_json: Vec<u8>,
    pub rows: usize,
    pub parts: Vec<Part>,
    pub identities: Vec<RowIdentity>,
    hasher: Sha256,
}

impl Batch {
    pub fn with_capacity(rows: usize, bytes_per_row: usize) -> Self {
        Batch {
            rows_json: Vec::with_capacity(rows.saturating_mul(bytes_per_row)),
            identities: Vec::with_capacity(rows),
            ..Default::default()
        }
    }

    pub fn is_empty(&self) -> bool {
        self.rows == 0
    }

    /// Records that row `index` of `message` is in this batch; the caller then writes the row
    /// object right after [`Batch::row_separator`].
    pub fn add_row(
        &mut self,
        message: u64,
        index: usize,
        agent: &str,
        seq: u64,
        keep_identity: bool,
    ) {
        match self.parts.last_mut() {
            Some(part) if part.message == message && part.start + part.len == index => {
                part.len += 1
            }
            _ => self.parts.push(Part {
                message,
                start: index,
                len: 1,
            }),
        }
        if self.rows > 0 {
            self.rows_json.push(b',');
        }
        self.rows += 1;
        self.hasher.update(agent.as_bytes());
        self.hasher.update([0]);
        self.hasher.update(seq.to_le_bytes());
        if keep_identity {
            self.identities.push(RowIdentity {
                agent: agent.to_string(),
                seq,
            });
        }
    }

    /// Same rows (by identity, in order) => same key, so a retried or redelivered batch can be
    /// recognised by a server that honours `Idempotency-Key`.
    pub fn idempotency_key(&self, model: &str) -> String {
        let mut hasher = self.hasher.clone();
        hasher.update(model.as_bytes());
        let digest = hasher.finalize();
        digest.iter().take(16).map(|b| format!("{b:02x}")).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_merge_consecutive_rows_and_keys_follow_identity() {
        let mut a = Batch::default();
        a.add_row(1, 0, "ag", 10, true);
        a.add_row(1, 1, "ag", 11, true);
        a.add_row(2, 0, "ag", 12, true);
        assert_eq!(
            a.parts,
            vec![
                Part {
                    message: 1,
                    start: 0,
                    len: 2
                },
                Part {
                    message: 2,
                    start: 0,
                    len: 1
                }
            ]
        );
        assert_eq!(a.rows_json, b",,".to_vec());
        let mut b = Batch::default();
        b.add_row(7, 0, "ag", 10, true);
        b.add_row(7, 1, "ag", 11, true);
        b.add_row(7, 2, "ag", 12, true);
        assert_eq!(a.idempotency_key("m"), b.idempotency_key("m"));
        assert_ne!(a.idempotency_key("m"), a.idempotency_key("other"));
        assert_eq!(a.idempotency_key("m").len(), 32);
    }
}

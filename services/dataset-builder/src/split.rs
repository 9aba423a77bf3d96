//! Pass 3 (only with --test-ratio): split the cleaned set into train and test, stratified by
//! label, streaming.
//!
//! Label L has N_L cleaned rows (known from pass 2) and gets t_L = round(N_L * ratio) test rows.
//! Its j-th row (0-based) goes to test with probability (t_L - chosen so far) / (N_L - j)
//! (selection sampling, Knuth's Algorithm S), the coin being a seeded hash of
//! (seed, label_value, j). So every label gets exactly t_L test rows, the chosen rows are a
//! uniformly random subset, memory is a few counters per label, and a seed gives the same split.

use std::fs::File;
use std::path::Path;

use csv::ByteRecord;
use serde::Serialize;

use crate::error::BuildError;
use crate::output::{RowWriter, Staging, Written, needs_quoting};
use crate::random::{DOMAIN_SPLIT, below, draw};
use crate::scan::{csv_error, csv_reader, read_header};

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct LabelSplit {
    pub train: u64,
    pub test: u64,
}

#[derive(Debug)]
pub struct SplitOutcome {
    pub train: Written,
    pub test: Written,
    /// Per label index.
    pub per_label: Vec<LabelSplit>,
}

/// How many of `rows` go to test.
pub fn test_rows(rows: u64, ratio: f64) -> u64 {
    ((rows as f64 * ratio).round() as u64).min(rows)
}

#[allow(clippy::too_many_arguments)]
pub fn split(
    cleaned_temp: &Path,
    label_values: &[i64],
    label_rows: &[u64],
    ratio: f64,
    seed: u64,
    train_path: &Path,
    test_path: &Path,
    staging: &mut Staging,
) -> Result<SplitOutcome, BuildError> {
    let (train_temp, train_file) = staging.create(train_path)?;
    let (test_temp, test_file) = staging.create(test_path)?;
    let mut train = RowWriter::new(train_file);
    let mut test = RowWriter::new(test_file);
    let file = File::open(cleaned_temp).map_err(|e| BuildError::read(cleaned_temp, e))?;
    let mut reader = csv_reader(std::io::BufReader::with_capacity(1 << 16, file));
    let mut record = ByteRecord::new();
    let header = read_header(&mut reader, &mut record, cleaned_temp)?;
    for name in &header {
        train.field(name.as_bytes());
        test.field(name.as_bytes());
    }
    train
        .end()
        .map_err(|e| BuildError::io(&train_temp, "write", e))?;
    test.end()
        .map_err(|e| BuildError::io(&test_temp, "write", e))?;
    let label_col = header.len().saturating_sub(1);
    let wanted: Vec<u64> = label_rows.iter().map(|n| test_rows(*n, ratio)).collect();
    let mut seen = vec![0u64; label_values.len()];
    let mut per_label = vec![LabelSplit::default(); label_values.len()];
    let value_text: Vec<Vec<u8>> = label_values
        .iter()
        .map(|v| v.to_string().into_bytes())
        .collect();
    while reader
        .read_byte_record(&mut record)
        .map_err(|e| csv_error(cleaned_temp, e))?
    {
        let cell = record.get(label_col).unwrap_or_default();
        let label = value_text.iter().position(|v| v.as_slice() == cell);
        let (Some(label), Some(seen_l), Some(split_l)) = (
            label,
            label.and_then(|l| seen.get_mut(l)),
            label.and_then(|l| per_label.get_mut(l)),
        ) else {
            return Err(BuildError::Input {
                path: cleaned_temp.display().to_string(),
                line: record.position().map_or(0, |p| p.line()),
                message: "unknown label value in the cleaned set".into(),
            });
        };
        let total = label_rows.get(label).copied().unwrap_or(0);
        let need = wanted
            .get(label)
            .copied()
            .unwrap_or(0)
            .saturating_sub(split_l.test);
        let remaining = total.saturating_sub(*seen_l).max(1);
        let value = label_values.get(label).copied().unwrap_or(0) as u64;
        let coin = below(draw(seed, DOMAIN_SPLIT, value, *seen_l), remaining);
        *seen_l += 1;
        // The cleaned set holds numbers, and text cells only with --text-columns keep.
        let (out, temp) = if coin < need {
            split_l.test += 1;
            (&mut test, &test_temp)
        } else {
            split_l.train += 1;
            (&mut train, &train_temp)
        };
        if needs_quoting(record.as_slice()) {
            for cell in &record {
                out.field(cell);
            }
        } else {
            for cell in &record {
                out.plain(cell);
            }
        }
        out.end().map_err(|e| BuildError::io(temp, "write", e))?;
    }
    Ok(SplitOutcome {
        train: train.finish(train_path, train_temp)?,
        test: test.finish(test_path, test_temp)?,
        per_label,
    })
}

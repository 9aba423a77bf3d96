//! Pass 1: read every input once to learn the union of columns, which columns hold numbers,
//! the row counts, the ragged rows and each file's SHA-256. Memory: a few counters per column.

use std::collections::HashMap;
use std::path::Path;

use csv::ByteRecord;
use tokio_util::sync::CancellationToken;

use crate::columns::{DropReason, drop_by_name, is_numeric, is_reserved};
use crate::error::BuildError;
use crate::hashio::HashingReader;
use crate::inputs::{InputFile, SchemaInfo, schema_of};
use crate::progress::{Progress, ROWS_PER_CHECK};
use crate::schema_types::{TextColumns, is_text_column};

/// One problem found at a place in an input, kept for the report.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Finding {
    pub file: usize,
    pub line: u64,
    pub message: String,
}

#[derive(Debug, Clone, Default)]
pub struct ColumnStats {
    pub non_empty: u64,
    pub numeric: u64,
    pub text: u64,
    /// The first non-numeric cells, which are errors if the column turns out numeric.
    pub text_examples: Vec<Finding>,
}

#[derive(Debug, Clone)]
pub struct ScannedFile {
    pub input: InputFile,
    pub header: Vec<String>,
    pub rows: u64,
    pub ragged_rows: u64,
    pub sha256: String,
    pub schema: SchemaInfo,
}

#[derive(Debug, Clone)]
pub struct Scan {
    pub files: Vec<ScannedFile>,
    /// Union of the inputs' columns in first-seen order over the sorted files; the builder's
    /// reserved names (src_file, label_value, label_name) are left out.
    pub columns: Vec<String>,
    pub stats: Vec<ColumnStats>,
    /// Per union column: some input's schema declares it text (see `schema_types`).
    pub schema_text: Vec<bool>,
    /// Reserved names some input had (they are replaced by the builder's own columns).
    pub reserved_seen: Vec<String>,
    pub ragged_examples: Vec<Finding>,
    pub rows: u64,
    pub ragged_rows: u64,
    pub bytes: u64,
}

impl Scan {
    /// Why each union column is not a feature, or `None` for a feature.
    pub fn classify(
        &self,
        configured_drops: &[String],
        text_columns: TextColumns,
    ) -> Vec<Option<DropReason>> {
        self.columns
            .iter()
            .zip(&self.stats)
            .zip(&self.schema_text)
            .map(|((name, stats), schema_text)| {
                let by_schema = match (*schema_text, text_columns) {
                    (true, TextColumns::Drop) => Some(Some(DropReason::SchemaText)),
                    (true, TextColumns::Keep) => Some(None),
                    (false, _) => None,
                };
                let by_name = drop_by_name(name, configured_drops);
                if by_name.is_some() {
                    return by_name;
                }
                if let Some(decided) = by_schema {
                    return decided;
                }
                if stats.non_empty == 0 {
                    Some(DropReason::AlwaysEmpty)
                } else if stats.numeric == 0 {
                    Some(DropReason::Text)
                } else {
                    None
                }
            })
            .collect()
    }

    /// Is the union column `u` text by an input's schema (its cells are never checked)?
    pub fn is_schema_text(&self, u: usize) -> bool {
        self.schema_text.get(u).copied().unwrap_or(false)
    }
}

/// Reads all inputs (pass 1).
pub fn scan(
    inputs: Vec<InputFile>,
    configured_drops: &[String],
    max_examples: usize,
    progress_secs: u64,
    cancel: &CancellationToken,
) -> Result<Scan, BuildError> {
    let total: u64 = inputs.iter().map(|f| f.size).sum();
    let mut progress = Progress::new("1/2 scan", total, progress_secs, cancel.clone());
    let mut scan = Scan {
        files: Vec::with_capacity(inputs.len()),
        columns: Vec::new(),
        stats: Vec::new(),
        schema_text: Vec::new(),
        reserved_seen: Vec::new(),
        ragged_examples: Vec::new(),
        rows: 0,
        ragged_rows: 0,
        bytes: 0,
    };
    let mut index: HashMap<String, usize> = HashMap::new();
    for (file_no, input) in inputs.into_iter().enumerate() {
        progress.check_cancelled()?;
        let file = input.open().map_err(|e| BuildError::read(&input.path, e))?;
        let mut hashing = HashingReader::new(file);
        let mut reader = csv_reader(&mut hashing);
        let mut record = ByteRecord::new();
        let header = read_header(&mut reader, &mut record, &input.path)?;
        let schema = schema_of(&input.path, &header);
        // Per file: (position in this file, union index) of the columns whose cells we check.
        let mut checked = Vec::new();
        for (pos, name) in header.iter().enumerate() {
            if is_reserved(name) {
                if !scan.reserved_seen.contains(name) {
                    scan.reserved_seen.push(name.clone());
                }
                continue;
            }
            let union = *index.entry(name.clone()).or_insert_with(|| {
                scan.columns.push(name.clone());
                scan.stats.push(ColumnStats::default());
                scan.schema_text.push(false);
                scan.columns.len() - 1
            });
            if is_text_column(&schema.schema, name) {
                if let Some(flag) = scan.schema_text.get_mut(union) {
                    *flag = true;
                }
                continue;
            }
            if drop_by_name(name, configured_drops).is_none() {
                checked.push((pos, union));
            }
        }
        let width = header.len();
        let (mut rows, mut ragged) = (0u64, 0u64);
        while reader
            .read_byte_record(&mut record)
            .map_err(|e| csv_error(&input.path, e))?
        {
            rows += 1;
            if rows % ROWS_PER_CHECK == 0 {
                progress.tick(reader.position().byte())?;
            }
            let line = record.position().map_or(0, |p| p.line());
            if record.len() != width {
                ragged += 1;
                if scan.ragged_examples.len() < max_examples {
                    scan.ragged_examples.push(Finding {
                        file: file_no,
                        line,
                        message: format!(
                            "{}:{line}: {} fields, the header has {width}",
                            input.name,
                            record.len()
                        ),
                    });
                }
                continue;
            }
            for &(pos, union) in &checked {
                let cell = record.get(pos).unwrap_or_default();
                if cell.is_empty() {
                    continue;
                }
                let Some(stats) = scan.stats.get_mut(union) else {
                    continue;
                };
                stats.non_empty += 1;
                if is_numeric(cell) {
                    stats.numeric += 1;
                } else {
                    stats.text += 1;
                    if stats.text_examples.len() < max_examples {
                        stats.text_examples.push(Finding {
                            file: file_no,
                            line,
                            message: format!(
                                "{}:{line}: column `{}`: `{}` is not a number",
                                input.name,
                                header.get(pos).map_or("", String::as_str),
                                shorten(cell)
                            ),
                        });
                    }
                }
            }
        }
        drop(reader);
        let (sha256, bytes) = hashing
            .finish()
            .map_err(|e| BuildError::read(&input.path, e))?;
        progress.file_done(bytes);
        scan.rows += rows;
        scan.ragged_rows += ragged;
        scan.bytes += bytes;
        scan.files.push(ScannedFile {
            input,
            header,
            rows,
            ragged_rows: ragged,
            sha256,
            schema,
        });
    }
    Ok(scan)
}

pub fn csv_reader<R: std::io::Read>(source: R) -> csv::Reader<R> {
    csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .buffer_capacity(1 << 20)
        .from_reader(source)
}

/// Reads and checks the header line: UTF-8, no empty or repeated names.
pub fn read_header<R: std::io::Read>(
    reader: &mut csv::Reader<R>,
    record: &mut ByteRecord,
    path: &Path,
) -> Result<Vec<String>, BuildError> {
    let name = path.display().to_string();
    let at_line1 = |message: String| BuildError::Input {
        path: name.clone(),
        line: 1,
        message,
    };
    if !reader
        .read_byte_record(record)
        .map_err(|e| csv_error(path, e))?
    {
        return Err(at_line1("empty file: no header line".into()));
    }
    let mut header = Vec::with_capacity(record.len());
    for (i, raw) in record.iter().enumerate() {
        let raw = if i == 0 {
            raw.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(raw)
        } else {
            raw
        };
        let column = std::str::from_utf8(raw)
            .map_err(|_| at_line1(format!("column {} of the header is not UTF-8", i + 1)))?
            .to_string();
        if column.is_empty() {
            return Err(at_line1(format!(
                "column {} of the header has no name",
                i + 1
            )));
        }
        if header.contains(&column) {
            return Err(at_line1(format!(
                "column `{column}` appears twice in the header"
            )));
        }
        header.push(column);
    }
    Ok(header)
}

pub fn csv_error(path: &Path, err: csv::Error) -> BuildError {
    let line = err.position().map_or(0, |p| p.line());
    match err.into_kind() {
        csv::ErrorKind::Io(e) => BuildError::read(path, e),
        other => BuildError::Input {
            path: path.display().to_string(),
            line,
            message: format!("{other:?}"),
        },
    }
}

/// A cell for an error message: lossy UTF-8, at most 40 characters.
pub fn shorten(cell: &[u8]) -> String {
    let text = String::from_utf8_lossy(cell);
    match text.char_indices().nth(40) {
        Some((cut, _)) => format!("{}...", text.get(..cut).unwrap_or_default()),
        None => text.into_owned(),
    }
}

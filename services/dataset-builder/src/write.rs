//! Pass 2: read every input again and write the full data and the cleaned set, row by row.

use csv::ByteRecord;
use tokio_util::sync::CancellationToken;

use crate::columns::is_numeric;
use crate::config::Config;
use crate::error::BuildError;
use crate::output::{RowWriter, Staging, Written, needs_quoting};
use crate::progress::{Progress, ROWS_PER_CHECK};
use crate::rules::Labeler;
use crate::scan::{Finding, Scan, csv_error, csv_reader, read_header, shorten};

/// Row counts of one input file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FileCounts {
    pub input: u64,
    pub fulldata: u64,
    pub cleaned: u64,
    pub duplicates_removed: u64,
    pub bad_rows_skipped: u64,
    pub incomplete_rows_dropped: u64,
}

#[derive(Debug)]
pub struct Written2 {
    pub fulldata: Written,
    pub cleaned: Written,
    pub per_file: Vec<FileCounts>,
    /// Rows per label index, in the full data and in the cleaned set.
    pub label_fulldata: Vec<u64>,
    pub label_cleaned: Vec<u64>,
    pub bad_row_examples: Vec<Finding>,
}

/// What pass 2 needs to know.
pub struct Plan<'a> {
    pub config: &'a Config,
    pub scan: &'a Scan,
    pub labeler: &'a Labeler,
    /// Union indices of the cleaned set's feature columns, in union order.
    pub features: &'a [usize],
    /// Pass 1 found non-numeric cells in feature columns, so pass 2 must look at every cell
    /// to skip those rows (otherwise the emptiness check is all it needs).
    pub check_numeric: bool,
    /// Stops the pass (shutdown requested).
    pub cancel: &'a CancellationToken,
}

pub fn write(plan: &Plan, staging: &mut Staging) -> Result<Written2, BuildError> {
    let Plan {
        config,
        scan,
        labeler,
        features,
        check_numeric,
        cancel,
    } = *plan;
    let fulldata_path = config.fulldata_path();
    let cleaned_path = config.cleaned_path();
    let (full_temp, full_file) = staging.create(&fulldata_path)?;
    let (clean_temp, clean_file) = staging.create(&cleaned_path)?;
    let mut full = RowWriter::new(full_file);
    let mut clean = RowWriter::new(clean_file);

    let label_values: Vec<Vec<u8>> = labeler
        .labels()
        .iter()
        .map(|l| l.label_value.to_string().into_bytes())
        .collect();
    let label_names: Vec<&[u8]> = labeler
        .labels()
        .iter()
        .map(|l| l.label_name.as_bytes())
        .collect();

    full.field(b"src_file");
    for c in &scan.columns {
        full.field(c.as_bytes());
    }
    full.field(b"label_value");
    full.field(b"label_name");
    full.end()
        .map_err(|e| BuildError::io(&full_temp, "write", e))?;
    for c in features.iter().filter_map(|u| scan.columns.get(*u)) {
        clean.field(c.as_bytes());
    }
    clean.field(b"label_value");
    clean
        .end()
        .map_err(|e| BuildError::io(&clean_temp, "write", e))?;

    let mut out = Written2Builder {
        per_file: Vec::with_capacity(scan.files.len()),
        label_fulldata: vec![0; label_values.len()],
        label_cleaned: vec![0; label_values.len()],
        bad_row_examples: Vec::new(),
    };
    let ctx = RowContext {
        config,
        check_numeric,
        label_values: &label_values,
        label_names: &label_names,
    };
    let mut progress = Progress::new(
        "2/2 write",
        scan.bytes,
        config.progress_secs,
        cancel.clone(),
    );
    let mut ordinal = 0u64;
    for (file_no, scanned) in scan.files.iter().enumerate() {
        progress.check_cancelled()?;
        let counts = write_file(
            &ctx,
            scan,
            labeler,
            features,
            file_no,
            (&mut full, &mut clean),
            (&full_temp, &clean_temp),
            &mut out,
            &mut ordinal,
            &mut progress,
        )?;
        progress.file_done(scanned.input.size);
        out.per_file.push(counts);
    }
    let fulldata = full.finish(&fulldata_path, full_temp)?;
    let cleaned = clean.finish(&cleaned_path, clean_temp)?;
    Ok(Written2 {
        fulldata,
        cleaned,
        per_file: out.per_file,
        label_fulldata: out.label_fulldata,
        label_cleaned: out.label_cleaned,
        bad_row_examples: out.bad_row_examples,
    })
}

struct Written2Builder {
    per_file: Vec<FileCounts>,
    label_fulldata: Vec<u64>,
    label_cleaned: Vec<u64>,
    bad_row_examples: Vec<Finding>,
}

struct RowContext<'a> {
    config: &'a Config,
    check_numeric: bool,
    label_values: &'a [Vec<u8>],
    label_names: &'a [&'a [u8]],
}

#[allow(clippy::too_many_arguments)]
fn write_file(
    ctx: &RowContext,
    scan: &Scan,
    labeler: &Labeler,
    features: &[usize],
    file_no: usize,
    (full, clean): (&mut RowWriter, &mut RowWriter),
    (full_temp, clean_temp): (&std::path::Path, &std::path::Path),
    out: &mut Written2Builder,
    ordinal: &mut u64,
    progress: &mut Progress,
) -> Result<FileCounts, BuildError> {
    let Some(scanned) = scan.files.get(file_no) else {
        return Ok(FileCounts::default());
    };
    let input = &scanned.input;
    let path = &input.path;
    let changed = || BuildError::Input {
        path: input.name.clone(),
        line: 0,
        message: "the file changed while the dataset was being built".into(),
    };
    let meta = std::fs::metadata(path).map_err(|e| BuildError::read(path, e))?;
    // A processor file may grow past its committed prefix (only the prefix is read); any
    // other file must be exactly as pass 1 saw it.
    let unchanged = if input.committed_prefix {
        meta.len() >= input.size
    } else {
        meta.len() == input.size && meta.modified().ok() == input.modified
    };
    if !unchanged {
        return Err(changed());
    }
    let file = input.open().map_err(|e| BuildError::read(path, e))?;
    let mut reader = csv_reader(std::io::BufReader::with_capacity(1 << 16, file));
    let mut record = ByteRecord::new();
    let header = read_header(&mut reader, &mut record, path)?;
    if header != scanned.header {
        return Err(changed());
    }
    let position = |name: &str| header.iter().position(|h| h == name);
    // For each union column and each feature: where it is in this file, if anywhere.
    let full_map: Vec<Option<usize>> = scan.columns.iter().map(|c| position(c)).collect();
    let feature_map: Vec<Option<usize>> = features
        .iter()
        .map(|u| full_map.get(*u).copied().flatten())
        .collect();
    let text_feature: Vec<bool> = features.iter().map(|u| scan.is_schema_text(*u)).collect();
    let labels = labeler.for_file(&header, path);
    let src_file = input.name.as_bytes();
    let missing = ctx.config.missing_value.as_bytes();
    let max_examples = ctx.config.max_error_reports;
    let (dedup, drop_incomplete) = (ctx.config.dedup, ctx.config.drop_incomplete_rows);

    let mut counts = FileCounts::default();
    let mut key: Vec<u8> = Vec::new();
    let mut previous: Vec<u8> = Vec::new();
    let mut have_previous = false;
    let full_err = |e| BuildError::io(full_temp, "write", e);
    let clean_err = |e| BuildError::io(clean_temp, "write", e);
    while reader
        .read_byte_record(&mut record)
        .map_err(|e| csv_error(path, e))?
    {
        let row = *ordinal;
        *ordinal += 1;
        counts.input += 1;
        if counts.input % ROWS_PER_CHECK == 0 {
            progress.tick(reader.position().byte())?;
        }
        let line = record.position().map_or(0, |p| p.line());
        let mut bad = |message: String| {
            counts.bad_rows_skipped += 1;
            if out.bad_row_examples.len() < max_examples {
                out.bad_row_examples.push(Finding {
                    file: file_no,
                    line,
                    message,
                });
            }
        };
        if record.len() != header.len() {
            bad(format!(
                "{}:{line}: {} fields, the header has {}",
                input.name,
                record.len(),
                header.len()
            ));
            continue;
        }
        let mut complete = true;
        let mut non_numeric = None;
        for (f, pos) in feature_map.iter().enumerate() {
            let cell = pos.and_then(|p| record.get(p)).unwrap_or_default();
            if cell.is_empty() {
                complete = false;
            } else if ctx.check_numeric
                && !is_numeric(cell)
                && !features.get(f).is_some_and(|u| scan.is_schema_text(*u))
            {
                non_numeric = Some((f, cell));
                break;
            }
        }
        if let Some((f, cell)) = non_numeric {
            let column = features
                .get(f)
                .and_then(|u| scan.columns.get(*u))
                .map_or("", String::as_str);
            bad(format!(
                "{}:{line}: column `{column}`: `{}` is not a number",
                input.name,
                shorten(cell)
            ));
            continue;
        }
        let label = labels.label(&record, row);
        if dedup {
            key.clear();
            for pos in &feature_map {
                key.extend_from_slice(pos.and_then(|p| record.get(p)).unwrap_or_default());
                key.push(0x1f);
            }
            key.extend_from_slice(&label.to_le_bytes());
            if have_previous && key == previous {
                counts.duplicates_removed += 1;
                continue;
            }
            std::mem::swap(&mut key, &mut previous);
            have_previous = true;
        }
        let value = ctx.label_values.get(label).map_or(&[][..], Vec::as_slice);
        let name = ctx.label_names.get(label).copied().unwrap_or_default();

        full.field(src_file);
        // Cells parsed from CSV rarely need quoting: one scan of the record decides.
        if needs_quoting(record.as_slice()) {
            for pos in &full_map {
                full.field(pos.and_then(|p| record.get(p)).unwrap_or_default());
            }
        } else {
            for pos in &full_map {
                full.plain(pos.and_then(|p| record.get(p)).unwrap_or_default());
            }
        }
        full.field(value);
        full.field(name);
        full.end().map_err(full_err)?;
        counts.fulldata += 1;
        if let Some(n) = out.label_fulldata.get_mut(label) {
            *n += 1;
        }

        if drop_incomplete && !complete {
            counts.incomplete_rows_dropped += 1;
            continue;
        }
        for (pos, text) in feature_map.iter().zip(&text_feature) {
            let cell = pos.and_then(|p| record.get(p)).unwrap_or_default();
            let cell = if cell.is_empty() { missing } else { cell };
            // Feature cells are numbers (checked) or the numeric missing value, except the
            // schema's text columns kept by --text-columns keep (`[1, -1]` needs quotes).
            if *text {
                clean.field(cell);
            } else {
                clean.plain(cell);
            }
        }
        clean.field(value);
        clean.end().map_err(clean_err)?;
        counts.cleaned += 1;
        if let Some(n) = out.label_cleaned.get_mut(label) {
            *n += 1;
        }
    }
    Ok(counts)
}

//! Packets or flows: a build reads one kind of dataset, so a directory where `netpipe run
//! --flows` wrote `{DS_NAME}-*.csv` and `{DS_NAME}-flows-*.csv` never mixes packet rows and
//! flow records into one dataset. The kind of a file is its schema's (manifest first, else the
//! header); files of the other kind found by the glob are skipped and logged, a listed one is
//! an error.

use crate::error::BuildError;
use crate::inputs::{InputFile, SchemaInfo, schema_of};
use crate::scan::{csv_reader, read_header};
use crate::schema_types::{DatasetKind, FLOW_SCHEMA};

/// Columns every flow input must have: the builder's rules and time windows read them.
pub const FLOW_REQUIRED: [&str; 7] = [
    "src_ip",
    "dst_ip",
    "src_port",
    "dst_port",
    "protocol",
    "bidirectional_first_seen_ms",
    "bidirectional_last_seen_ms",
];

/// What [`select`] kept and left out.
#[derive(Debug, Clone, Default)]
pub struct Selection {
    pub files: Vec<InputFile>,
    /// Files of the other kind (glob matches only).
    pub skipped_other_kind: Vec<String>,
}

/// Keeps the inputs of `kind`. `listed`: the paths were given on the command line, so a file
/// of the other kind is a mistake, not something to skip.
pub fn select(
    files: Vec<InputFile>,
    kind: DatasetKind,
    listed: bool,
) -> Result<Selection, BuildError> {
    let mut selection = Selection::default();
    for file in files {
        let (header, schema) = header_and_schema(&file)?;
        let file_kind = DatasetKind::of_schema(&schema.schema);
        if file_kind == kind {
            // A broken flow file is this build's problem only when it reads flows.
            if kind == DatasetKind::Flows {
                check_flow_header(&file, &header, &schema)?;
            }
            selection.files.push(file);
        } else if listed {
            return Err(BuildError::Input {
                path: file.name.clone(),
                line: 1,
                message: format!(
                    "a {} dataset (schema `{}`), but this build reads {}: build it with \
                     --kind {}",
                    file_kind.as_str(),
                    schema.schema,
                    kind.as_str(),
                    file_kind.as_str()
                ),
            });
        } else {
            selection.skipped_other_kind.push(file.name.clone());
        }
    }
    if !selection.skipped_other_kind.is_empty() {
        tracing::info!(
            files = selection.skipped_other_kind.len(),
            kind = kind.as_str(),
            "skipping the inputs of the other dataset kind (see --kind)"
        );
    }
    Ok(selection)
}

fn header_and_schema(file: &InputFile) -> Result<(Vec<String>, SchemaInfo), BuildError> {
    let source = file.open().map_err(|e| BuildError::read(&file.path, e))?;
    let mut reader = csv_reader(source);
    let mut record = csv::ByteRecord::new();
    let header = read_header(&mut reader, &mut record, &file.path)?;
    let schema = schema_of(&file.path, &header);
    Ok((header, schema))
}

/// A flow file's header must be the writer's (manifest) or at least hold the columns the
/// builder reads (a header guess, e.g. an NFStream CSV): else its cells would be read under
/// the wrong names.
fn check_flow_header(
    file: &InputFile,
    header: &[String],
    schema: &SchemaInfo,
) -> Result<(), BuildError> {
    let wrong = |message: String| BuildError::Input {
        path: file.name.clone(),
        line: 1,
        message,
    };
    if schema.source == "manifest" && schema.version.as_deref() == Some("1") {
        let expected = netpipe_packet::flow::column_names();
        if header != expected.as_slice() {
            let differs = expected
                .iter()
                .zip(header)
                .position(|(e, h)| e != h)
                .unwrap_or(expected.len().min(header.len()));
            return Err(wrong(format!(
                "the header is not the {FLOW_SCHEMA} v1 header its manifest names: {} columns \
                 instead of {}, first difference at column {} (`{}`, expected `{}`)",
                header.len(),
                expected.len(),
                differs + 1,
                header.get(differs).map_or("", String::as_str),
                expected.get(differs).map_or("", String::as_str),
            )));
        }
        return Ok(());
    }
    if let Some(missing) = FLOW_REQUIRED
        .iter()
        .find(|name| !header.iter().any(|h| h == *name))
    {
        return Err(wrong(format!(
            "a {FLOW_SCHEMA} dataset without the column `{missing}`"
        )));
    }
    Ok(())
}

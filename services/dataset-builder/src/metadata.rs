//! fulldata_metadata.json and cleaned_metadata.json: the original's fields plus counts,
//! dropped columns, input schemas and hashes. Keys are sorted, indent is 4 (as the original).

use std::collections::BTreeMap;

use serde::Serialize;

use crate::columns::DropReason;
use crate::inputs::SchemaInfo;
use crate::rules::LabelRulesMeta;
use crate::split::LabelSplit;

#[derive(Debug, Clone, Serialize)]
pub struct PostProcRules {
    pub drop_columns: Vec<String>,
    pub predict_feature: &'static str,
    pub missing_value: String,
    pub drop_incomplete_rows: bool,
    pub dedup: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct DroppedColumn {
    pub column: String,
    pub reason: DropReason,
    pub detail: &'static str,
}

#[derive(Debug, Clone, Serialize)]
pub struct LabelRows {
    pub label_value: i64,
    pub label_name: String,
    pub fulldata: u64,
    pub cleaned: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub train: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub test: Option<u64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct FileRows {
    pub input: u64,
    pub fulldata: u64,
    pub cleaned: u64,
    pub duplicates_removed: u64,
    pub bad_rows_skipped: u64,
    pub incomplete_rows_dropped: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Rows {
    pub input: u64,
    pub fulldata: u64,
    pub cleaned: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub train: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub test: Option<u64>,
    pub duplicates_removed: u64,
    pub bad_rows_skipped: u64,
    pub incomplete_rows_dropped: u64,
    pub per_label: Vec<LabelRows>,
    pub per_file: BTreeMap<String, FileRows>,
}

#[derive(Debug, Clone, Serialize)]
pub struct SplitMeta {
    pub seed: u64,
    pub test_ratio: f64,
    pub method: &'static str,
    pub train_file: String,
    pub test_file: String,
    pub per_label: BTreeMap<i64, LabelSplit>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Hashes {
    pub inputs: BTreeMap<String, String>,
    pub outputs: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Builder {
    pub name: &'static str,
    pub version: &'static str,
}

/// Everything both metadata files share.
#[derive(Debug, Clone, Serialize)]
pub struct Common {
    pub builder: Builder,
    pub created: String,
    /// `packets` or `flows`: what one row of this dataset is.
    pub dataset_kind: crate::schema_types::DatasetKind,
    /// Inputs the glob matched that hold the other kind, left out (see --kind).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub inputs_skipped_other_kind: Vec<String>,
    pub pipeline_files: Vec<String>,
    pub post_proc_rules: PostProcRules,
    pub label_rules: LabelRulesMeta,
    pub features_to_process: Vec<String>,
    pub feature_to_predict: &'static str,
    pub ignore_features: Vec<String>,
    pub columns_dropped: Vec<DroppedColumn>,
    pub rows: Rows,
    pub input_schemas: BTreeMap<String, SchemaInfo>,
    pub sha256: Hashes,
    pub seed: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub split: Option<SplitMeta>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub bad_row_examples: Vec<String>,
}

#[derive(Serialize)]
struct Metadata<'a> {
    output_type: &'static str,
    headers: &'a [String],
    #[serde(flatten)]
    common: &'a Common,
}

/// The JSON text of one metadata file.
pub fn render(output_type: &'static str, headers: &[String], common: &Common) -> Vec<u8> {
    let value = serde_json::to_value(Metadata {
        output_type,
        headers,
        common,
    })
    .map(sorted)
    .unwrap_or(serde_json::Value::Null);
    let mut out = Vec::new();
    let formatter = serde_json::ser::PrettyFormatter::with_indent(b"    ");
    let mut ser = serde_json::Serializer::with_formatter(&mut out, formatter);
    // Serializing a Value into a Vec cannot fail.
    let _ = serde::Serialize::serialize(&value, &mut ser);
    out.push(b'\n');
    out
}

/// Rebuilds every object with its keys in sorted order (whatever map type serde_json uses).
fn sorted(value: serde_json::Value) -> serde_json::Value {
    match value {
        serde_json::Value::Object(map) => {
            let mut entries: Vec<(String, serde_json::Value)> = map.into_iter().collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            serde_json::Value::Object(entries.into_iter().map(|(k, v)| (k, sorted(v))).collect())
        }
        serde_json::Value::Array(items) => {
            serde_json::Value::Array(items.into_iter().map(sorted).collect())
        }
        other => other,
    }
}

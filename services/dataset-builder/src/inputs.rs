//! Which files are inputs, in which order, and which schema each one follows.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use serde::Serialize;

use crate::config::Config;
use crate::error::BuildError;

/// Manifests written by the processor beside its CSVs; never inputs themselves.
pub const MANIFEST_SUFFIX: &str = ".manifest.json";
/// `format` of the processor's manifests (netpipe_runtime::dataset::manifest).
const PROCESSOR_MANIFEST_FORMAT: &str = "netpipe-dataset-manifest";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputFile {
    pub path: PathBuf,
    /// The path as written in `src_file` and the metadata.
    pub name: String,
    /// Bytes read from the file: its length, or the committed length of a processor file.
    pub size: u64,
    pub modified: Option<SystemTime>,
    /// `size` is the committed length from the processor's manifest (`bytes`): only that prefix
    /// is read, and the file may grow past it while the build runs (the processor appends).
    pub committed_prefix: bool,
}

impl InputFile {
    /// Opens the file for reading: all of it, or only the committed prefix of a processor file.
    pub fn open(&self) -> std::io::Result<std::io::Take<std::fs::File>> {
        let limit = if self.committed_prefix {
            self.size
        } else {
            u64::MAX
        };
        Ok(std::io::Read::take(std::fs::File::open(&self.path)?, limit))
    }
}

/// The schema an input follows, from its manifest or guessed from its header.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SchemaInfo {
    pub schema: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// `manifest` or `header`.
    pub source: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub manifest: Option<String>,
}

/// The input files in sorted path order: the listed paths, or else the glob's matches;
/// manifests and the builder's own output files are left out.
pub fn discover(config: &Config, outputs: &[PathBuf]) -> Result<Vec<InputFile>, BuildError> {
    let (candidates, origin) = if config.inputs.is_empty() {
        let pattern = config.glob_pattern();
        let paths = glob::glob(&pattern)
            .map_err(|e| BuildError::Config(format!("DS_GLOB_PATH `{pattern}`: {e}")))?;
        let mut found = Vec::new();
        for entry in paths {
            let path = entry.map_err(|e| {
                let path = e.path().to_path_buf();
                BuildError::read(path, e.into())
            })?;
            if path.is_file() {
                found.push(path);
            }
        }
        (found, format!("the pattern `{pattern}` matches no file"))
    } else {
        (config.inputs.clone(), "no input path given".to_string())
    };
    let outputs: Vec<PathBuf> = outputs.iter().map(|p| canonical_target(p)).collect();
    let mut files = Vec::new();
    for path in candidates {
        let name = path.display().to_string();
        if name.ends_with(MANIFEST_SUFFIX) {
            tracing::debug!(path = %name, "skipping a manifest");
            continue;
        }
        if outputs.contains(&canonical_target(&path)) {
            tracing::warn!(path = %name, "skipping an input that is one of this run's outputs");
            continue;
        }
        let meta = std::fs::metadata(&path).map_err(|e| BuildError::read(&path, e))?;
        if !meta.is_file() {
            return Err(BuildError::read(
                &path,
                std::io::Error::other("not a regular file"),
            ));
        }
        let committed = committed_length(&path);
        if let Some(bytes) = committed
            && bytes > meta.len()
        {
            return Err(BuildError::Input {
                path: name,
                line: 0,
                message: format!(
                    "its manifest commits {bytes} bytes but the file has only {}",
                    meta.len()
                ),
            });
        }
        files.push(InputFile {
            name,
            size: committed.unwrap_or(meta.len()),
            modified: meta.modified().ok(),
            committed_prefix: committed.is_some(),
            path,
        });
    }
    files.sort_by(|a, b| a.path.cmp(&b.path));
    files.dedup_by(|a, b| a.path == b.path);
    if files.is_empty() {
        return Err(BuildError::NoInputs(origin));
    }
    Ok(files)
}

/// Can the inputs be read? The listed files, else the directory the glob looks in (DS_DIR for
/// the default pattern). `Err` says why not.
pub fn check_readable(config: &Config) -> Result<(), String> {
    if !config.inputs.is_empty() {
        for path in &config.inputs {
            std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
        }
        return Ok(());
    }
    let dir = glob_dir(&config.glob_pattern());
    std::fs::read_dir(&dir)
        .map(|_| ())
        .map_err(|e| format!("cannot read {}: {e}", dir.display()))
}

/// The directory part of a glob pattern before its first wildcard (`.` if none).
fn glob_dir(pattern: &str) -> PathBuf {
    let mut dir = PathBuf::new();
    let components: Vec<_> = Path::new(pattern).components().collect();
    // The last component names files, not the directory to read.
    for component in components.iter().take(components.len().saturating_sub(1)) {
        let text = component.as_os_str().to_string_lossy();
        if text.contains(['*', '?', '[']) {
            break;
        }
        dir.push(component);
    }
    if dir.as_os_str().is_empty() {
        PathBuf::from(".")
    } else {
        dir
    }
}

/// A path made comparable whether or not it exists yet (outputs usually do not).
fn canonical_target(path: &Path) -> PathBuf {
    if let Ok(p) = path.canonicalize() {
        return p;
    }
    match (path.parent(), path.file_name()) {
        (Some(dir), Some(name)) => {
            let dir = if dir.as_os_str().is_empty() {
                Path::new(".")
            } else {
                dir
            };
            dir.canonicalize()
                .map(|d| d.join(name))
                .unwrap_or_else(|_| path.to_path_buf())
        }
        _ => path.to_path_buf(),
    }
}

/// The committed length of a processor CSV: `bytes` of the processor's manifest beside it.
/// The processor appends and fsyncs rows before it replaces the manifest, so the file always
/// holds at least that many bytes of complete rows; bytes past it may be a row being written.
/// `None` for any other file (no manifest, or not the processor's).
fn committed_length(csv: &Path) -> Option<u64> {
    let manifest = manifest_path(csv)?;
    let bytes = std::fs::read(&manifest).ok()?;
    let value: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    if value.get("format").and_then(serde_json::Value::as_str) != Some(PROCESSOR_MANIFEST_FORMAT) {
        return None;
    }
    value.get("bytes").and_then(serde_json::Value::as_u64)
}

/// The manifest beside a CSV: `x.csv.manifest.json` or `x.manifest.json`.
fn manifest_path(csv: &Path) -> Option<PathBuf> {
    let mut long = csv.as_os_str().to_owned();
    long.push(MANIFEST_SUFFIX);
    let long = PathBuf::from(long);
    if long.is_file() {
        return Some(long);
    }
    let stem = csv.file_stem()?;
    let mut short = stem.to_owned();
    short.push(MANIFEST_SUFFIX);
    let short = csv.with_file_name(short);
    short.is_file().then_some(short)
}

/// The schema of one input: its manifest's `schema` (a string, or `{name, version}`) and
/// `schema_version`/`version` when a manifest is there, else guessed from the header.
pub fn schema_of(csv: &Path, header: &[String]) -> SchemaInfo {
    if let Some(manifest) = manifest_path(csv) {
        match read_manifest(&manifest) {
            Ok(Some((schema, version))) => {
                return SchemaInfo {
                    schema,
                    version,
                    source: "manifest",
                    manifest: Some(manifest.display().to_string()),
                };
            }
            Ok(None) => tracing::warn!(
                manifest = %manifest.display(),
                "manifest names no schema; guessing from the header"
            ),
            Err(e) => tracing::warn!(
                manifest = %manifest.display(),
                error = %e,
                "unreadable manifest; guessing the schema from the header"
            ),
        }
    }
    SchemaInfo {
        schema: guess_schema(header).to_string(),
        version: None,
        source: "header",
        manifest: None,
    }
}

fn read_manifest(path: &Path) -> Result<Option<(String, Option<String>)>, String> {
    let bytes = std::fs::read(path).map_err(|e| e.to_string())?;
    let value: serde_json::Value = serde_json::from_slice(&bytes).map_err(|e| e.to_string())?;
    let text = |v: &serde_json::Value| match v {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        _ => None,
    };
    let top_version = value
        .get("schema_version")
        .or_else(|| value.get("version"))
        .and_then(text);
    Ok(match value.get("schema") {
        Some(serde_json::Value::Object(o)) => o.get("name").and_then(text).map(|name| {
            let version = o.get("version").and_then(text).or(top_version);
            (name, version)
        }),
        Some(other) => text(other).map(|name| (name, top_version)),
        None => None,
    })
}

/// `netpipe-flows` for flow records (netpipe's or NFStream's columns), `netpipe` for the
/// processor's packet files, `antinex-v1/original` for the original's recordings.
pub fn guess_schema(header: &[String]) -> &'static str {
    let has = |n: &str| header.iter().any(|h| h == n);
    if has("bidirectional_first_seen_ms") && has("src_ip") {
        crate::schema_types::FLOW_SCHEMA
    } else if has("ts") && has("agent") && has("seq") {
        "netpipe"
    } else if has("idx") && (has("ipvsix_id") || has("eth_id") || has("tcp_id")) {
        "antinex-v1/original"
    } else {
        "unknown"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glob_dir_stops_at_the_first_wildcard() {
        assert_eq!(glob_dir("/data/ds/*/*.csv"), PathBuf::from("/data/ds"));
        assert_eq!(glob_dir("/data/ds/*.csv"), PathBuf::from("/data/ds"));
        assert_eq!(glob_dir("/data/a?/x/*.csv"), PathBuf::from("/data"));
        assert_eq!(glob_dir("*.csv"), PathBuf::from("."));
        assert_eq!(glob_dir("rel/dir/x.csv"), PathBuf::from("rel/dir"));
    }

    #[test]
    fn manifest_overrides_the_guess() {
        let dir = tempfile::tempdir().unwrap();
        let csv = dir.path().join("a.csv");
        std::fs::write(&csv, "ts,agent,seq\n").unwrap();
        let header: Vec<String> = ["ts", "agent", "seq"].map(String::from).to_vec();
        assert_eq!(schema_of(&csv, &header).schema, "netpipe");
        assert_eq!(schema_of(&csv, &header).source, "header");
        std::fs::write(
            dir.path().join("a.csv.manifest.json"),
            r#"{"schema":{"name":"netpipe","version":3}}"#,
        )
        .unwrap();
        let info = schema_of(&csv, &header);
        assert_eq!(info.source, "manifest");
        assert_eq!(info.version.as_deref(), Some("3"));
    }
}

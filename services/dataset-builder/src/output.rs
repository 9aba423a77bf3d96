//! Output files are written under a temporary name beside their target, hashed while
//! written, fsynced, and renamed into place only when the whole build succeeded.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::error::BuildError;
use crate::hashio::HashingWriter;

/// A finished output file, still under its temporary name until [`Staging::commit`].
#[derive(Debug, Clone)]
pub struct Written {
    pub path: PathBuf,
    pub temp: PathBuf,
    pub sha256: String,
    pub bytes: u64,
}

/// Temporary files of one run; removed on drop unless committed.
#[derive(Debug, Default)]
pub struct Staging {
    temps: Vec<(PathBuf, PathBuf)>,
    committed: bool,
}

impl Staging {
    /// Creates `path`'s temporary file (and its directory).
    pub fn create(&mut self, path: &Path) -> Result<(PathBuf, File), BuildError> {
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => PathBuf::from("."),
        };
        std::fs::create_dir_all(&dir).map_err(|e| BuildError::io(&dir, "create directory", e))?;
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "output".into());
        let temp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
        let file = File::create(&temp).map_err(|e| BuildError::io(&temp, "create", e))?;
        self.temps.push((temp.clone(), path.to_path_buf()));
        Ok((temp, file))
    }

    /// Writes a whole small file (metadata) to its temporary name.
    pub fn write_all(&mut self, path: &Path, bytes: &[u8]) -> Result<Written, BuildError> {
        let (temp, file) = self.create(path)?;
        let mut out = HashingWriter::new(file);
        out.write_all(bytes)
            .map_err(|e| BuildError::io(&temp, "write", e))?;
        finish(path, temp, out)
    }

    /// Renames every temporary file onto its target, in creation order.
    pub fn commit(mut self) -> Result<(), BuildError> {
        for (temp, path) in &self.temps {
            std::fs::rename(temp, path).map_err(|e| BuildError::io(path, "rename into", e))?;
        }
        self.committed = true;
        Ok(())
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        if !self.committed {
            for (temp, _) in &self.temps {
                let _ = std::fs::remove_file(temp);
            }
        }
    }
}

/// Flushes, fsyncs and describes a finished output.
pub fn finish(path: &Path, temp: PathBuf, out: HashingWriter<File>) -> Result<Written, BuildError> {
    let (file, sha256, bytes) = out.finish();
    file.sync_all()
        .map_err(|e| BuildError::io(&temp, "sync", e))?;
    Ok(Written {
        path: path.to_path_buf(),
        temp,
        sha256,
        bytes,
    })
}

pub type CsvOut = csv::Writer<HashingWriter<File>>;

pub fn csv_writer(file: File) -> CsvOut {
    csv::WriterBuilder::new()
        .terminator(csv::Terminator::Any(b'\n'))
        .buffer_capacity(1 << 20)
        .from_writer(HashingWriter::new(file))
}

/// Flushes a CSV writer and finishes its file.
pub fn finish_csv(path: &Path, temp: PathBuf, writer: CsvOut) -> Result<Written, BuildError> {
    let out = writer
        .into_inner()
        .map_err(|e| BuildError::io(&temp, "write", e.into_error()))?;
    finish(path, temp, out)
}

/// Maps a CSV write error.
pub fn write_error(path: &Path, err: csv::Error) -> BuildError {
    let io = match err.into_kind() {
        csv::ErrorKind::Io(e) => e,
        other => std::io::Error::other(format!("{other:?}")),
    };
    BuildError::io(path, "write", io)
}

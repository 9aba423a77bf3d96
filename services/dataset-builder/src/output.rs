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

/// A CSV row writer for the big outputs: cells are appended to a line buffer (quoted only
/// when they hold a comma, quote, CR or LF, as the csv crate's `QuoteStyle::Necessary`), and
/// whole lines go to a large buffer that is hashed in big chunks.
pub struct RowWriter {
    out: std::io::BufWriter<HashingWriter<File>>,
    line: Vec<u8>,
    first: bool,
}

/// Does any of these bytes (e.g. all cells of a record, `ByteRecord::as_slice`) need quoting?
pub fn needs_quoting(bytes: &[u8]) -> bool {
    memchr::memchr3(b',', b'"', b'\n', bytes).is_some() || memchr::memchr(b'\r', bytes).is_some()
}

/// Bytes that force a cell to be quoted.
const NEEDS_QUOTE: [bool; 256] = {
    let mut t = [false; 256];
    t[b',' as usize] = true;
    t[b'"' as usize] = true;
    t[b'\n' as usize] = true;
    t[b'\r' as usize] = true;
    t
};

impl RowWriter {
    pub fn new(file: File) -> Self {
        RowWriter {
            out: std::io::BufWriter::with_capacity(1 << 20, HashingWriter::new(file)),
            line: Vec::with_capacity(4096),
            first: true,
        }
    }

    /// Appends a cell, quoting it when needed.
    pub fn field(&mut self, cell: &[u8]) {
        if cell.iter().any(|b| NEEDS_QUOTE[usize::from(*b)]) {
            self.quoted(cell);
        } else {
            self.plain(cell);
        }
    }

    /// Appends a cell known to need no quoting (see [`needs_quoting`]).
    pub fn plain(&mut self, cell: &[u8]) {
        if !self.first {
            self.line.push(b',');
        }
        self.first = false;
        self.line.extend_from_slice(cell);
    }

    fn quoted(&mut self, cell: &[u8]) {
        if !self.first {
            self.line.push(b',');
        }
        self.first = false;
        {
            self.line.push(b'"');
            for b in cell {
                if *b == b'"' {
                    self.line.push(b'"');
                }
                self.line.push(*b);
            }
            self.line.push(b'"');
        }
    }

    /// Ends the row (`\n`). A row is never a single empty cell here (labels follow).
    pub fn end(&mut self) -> std::io::Result<()> {
        self.line.push(b'\n');
        self.first = true;
        let result = self.out.write_all(&self.line);
        self.line.clear();
        result
    }

    /// Flushes, fsyncs and describes the finished output.
    pub fn finish(self, path: &Path, temp: PathBuf) -> Result<Written, BuildError> {
        let out = self
            .out
            .into_inner()
            .map_err(|e| BuildError::io(&temp, "write", e.into_error()))?;
        finish(path, temp, out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn row_writer_quotes_like_the_csv_crate() {
        let dir = tempfile::tempdir().unwrap();
        let cells: [&[u8]; 6] = [
            b"plain",
            b"a,b",
            b"say \"hi\"",
            b"two\nlines",
            b"",
            b"\xff\xfe",
        ];
        let ours = dir.path().join("ours.csv");
        let mut w = RowWriter::new(File::create(&ours).unwrap());
        for c in cells {
            w.field(c);
        }
        w.end().unwrap();
        w.field(b"x");
        w.field(b"");
        w.end().unwrap();
        let written = w.finish(&ours, ours.clone()).unwrap();

        let theirs = dir.path().join("theirs.csv");
        let mut c = csv::WriterBuilder::new()
            .flexible(true)
            .terminator(csv::Terminator::Any(b'\n'))
            .from_writer(HashingWriter::new(File::create(&theirs).unwrap()));
        c.write_record(cells).unwrap();
        c.write_record([b"x".as_slice(), b""]).unwrap();
        let reference = finish(&theirs, theirs.clone(), c.into_inner().unwrap()).unwrap();
        assert_eq!(
            std::fs::read(&ours).unwrap(),
            std::fs::read(&theirs).unwrap()
        );
        assert_eq!(written.sha256, reference.sha256);
    }
}

//! Start-up repair: a dataset file must hold only complete, committed rows.
//!
//! A crash can leave a torn last line (no trailing newline) or complete rows written after the
//! last manifest update (their broker messages were never acknowledged, so they come again).
//! Both are cut away; only the tail is read, so repair costs O(tail), not O(file).

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

use super::DatasetError;
use super::manifest::RepairFigures;

const CHUNK: u64 = 64 * 1024;

/// Cuts `path` back to its last complete line, and to `committed` bytes when that is known and
/// shorter. Returns what was removed.
pub fn repair_file(path: &Path, committed: Option<u64>) -> Result<RepairFigures, DatasetError> {
    let io_err = |op: &'static str| {
        move |source| DatasetError::Io {
            op,
            path: path.to_path_buf(),
            source,
        }
    };
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .map_err(io_err("open for repair"))?;
    let len = file.metadata().map_err(io_err("stat"))?.len();
    let complete = last_complete_len(&mut file, len).map_err(io_err("read tail"))?;
    let mut figures = RepairFigures {
        torn_lines: u64::from(complete < len),
        uncommitted_rows: 0,
    };
    let mut keep = complete;
    if let Some(committed) = committed
        && committed < keep
    {
        figures.uncommitted_rows =
            count_newlines(&mut file, committed, keep).map_err(io_err("read tail"))?;
        keep = committed;
    }
    if keep < len {
        file.set_len(keep).map_err(io_err("truncate"))?;
        file.sync_all().map_err(io_err("fsync"))?;
    }
    Ok(figures)
}

/// Length of the file up to and including its last `\n` (0 when there is none).
fn last_complete_len(file: &mut File, len: u64) -> std::io::Result<u64> {
    let mut end = len;
    let mut buf = vec![0u8; CHUNK as usize];
    while end > 0 {
        let start = end.saturating_sub(CHUNK);
        let chunk = &mut buf[..(end - start) as usize];
        file.seek(SeekFrom::Start(start))?;
        file.read_exact(chunk)?;
        if let Some(pos) = chunk.iter().rposition(|&b| b == b'\n') {
            return Ok(start + pos as u64 + 1);
        }
        end = start;
    }
    Ok(0)
}

fn count_newlines(file: &mut File, from: u64, to: u64) -> std::io::Result<u64> {
    file.seek(SeekFrom::Start(from))?;
    let mut remaining = to.saturating_sub(from);
    let mut buf = vec![0u8; CHUNK as usize];
    let mut count = 0u64;
    while remaining > 0 {
        let n = remaining.min(CHUNK) as usize;
        file.read_exact(&mut buf[..n])?;
        count += buf[..n].iter().filter(|&&b| b == b'\n').count() as u64;
        remaining -= n as u64;
    }
    Ok(count)
}

/// Number of lines in a file (used only for a file without a manifest).
pub fn count_lines(path: &Path) -> Result<u64, DatasetError> {
    let mut file = File::open(path).map_err(|source| DatasetError::Io {
        op: "open",
        path: path.to_path_buf(),
        source,
    })?;
    let len = file
        .metadata()
        .map_err(|source| DatasetError::Io {
            op: "stat",
            path: path.to_path_buf(),
            source,
        })?
        .len();
    count_newlines(&mut file, 0, len).map_err(|source| DatasetError::Io {
        op: "read",
        path: path.to_path_buf(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repaired(content: &[u8], committed: Option<u64>) -> (Vec<u8>, RepairFigures) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.csv");
        std::fs::write(&path, content).unwrap();
        let figures = repair_file(&path, committed).unwrap();
        (std::fs::read(&path).unwrap(), figures)
    }

    #[test]
    fn a_torn_last_line_is_cut() {
        let (bytes, figures) = repaired(b"h\n1,2\n3,", None);
        assert_eq!(bytes, b"h\n1,2\n");
        assert_eq!(figures.torn_lines, 1);
        assert_eq!(figures.uncommitted_rows, 0);
    }

    #[test]
    fn rows_past_the_commit_are_cut_and_counted() {
        let (bytes, figures) = repaired(b"h\n1,2\n3,4\n5,6\n7", Some(6));
        assert_eq!(bytes, b"h\n1,2\n");
        assert_eq!(figures.torn_lines, 1);
        assert_eq!(figures.uncommitted_rows, 2);
    }

    #[test]
    fn a_clean_file_is_untouched() {
        let (bytes, figures) = repaired(b"h\n1,2\n", Some(6));
        assert_eq!(bytes, b"h\n1,2\n");
        assert_eq!(figures, RepairFigures::default());
    }

    #[test]
    fn a_long_torn_line_spanning_chunks_is_cut() {
        let mut content = b"h\n".to_vec();
        content.extend(std::iter::repeat_n(b'x', 200_000));
        let (bytes, figures) = repaired(&content, None);
        assert_eq!(bytes, b"h\n");
        assert_eq!(figures.torn_lines, 1);
    }
}

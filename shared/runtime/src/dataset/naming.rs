//! Dataset file names, as the original plus an optional instance id:
//! `{DS_DIR}/{DS_NAME}-{YYYY-MM-DD-HH-MM-SS}[-{instance}].csv` (local time), or `OUTPUT_CSV`.
//! A name already taken (restart or rotation within the same second, or a fixed `OUTPUT_CSV`)
//! gets `-2`, `-3`, ... before the extension, so a file is never reopened or overwritten.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

/// Local-time stamp as in the original's file names.
pub fn local_stamp(now: chrono::DateTime<chrono::Local>) -> String {
    now.format("%Y-%m-%d-%H-%M-%S").to_string()
}

/// The preferred path of a new file (before collision suffixes).
pub fn base_path(
    dir: &Path,
    name: &str,
    instance: Option<&str>,
    output_csv: Option<&Path>,
    stamp: &str,
) -> PathBuf {
    if let Some(path) = output_csv {
        return path.to_path_buf();
    }
    let file = match instance {
        Some(id) => format!("{name}-{stamp}-{id}.csv"),
        None => format!("{name}-{stamp}.csv"),
    };
    dir.join(file)
}

/// `base` with `-{n}` inserted before its extension (`n >= 2`).
pub fn numbered(base: &Path, n: u32) -> PathBuf {
    let stem = base.file_stem().map(OsString::from).unwrap_or_default();
    let mut name = stem;
    name.push(format!("-{n}"));
    if let Some(ext) = base.extension() {
        name.push(".");
        name.push(ext);
    }
    base.with_file_name(name)
}

/// Rejects instance ids that would make odd file names.
pub fn valid_instance(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn names_follow_the_original() {
        let now = chrono::Local
            .with_ymd_and_hms(2018, 1, 28, 23, 6, 5)
            .single()
            .unwrap();
        let stamp = local_stamp(now);
        assert_eq!(stamp, "2018-01-28-23-06-05");
        assert_eq!(
            base_path(Path::new("/tmp"), "netdata", None, None, &stamp),
            PathBuf::from("/tmp/netdata-2018-01-28-23-06-05.csv")
        );
        assert_eq!(
            base_path(Path::new("/d"), "netdata", Some("p2"), None, &stamp),
            PathBuf::from("/d/netdata-2018-01-28-23-06-05-p2.csv")
        );
        assert_eq!(
            base_path(
                Path::new("/d"),
                "x",
                None,
                Some(Path::new("/o/out.csv")),
                &stamp
            ),
            PathBuf::from("/o/out.csv")
        );
        assert_eq!(
            numbered(Path::new("/o/out.csv"), 2),
            PathBuf::from("/o/out-2.csv")
        );
        assert!(valid_instance("proc-1.a_b"));
        assert!(!valid_instance("a/b"));
        assert!(!valid_instance(""));
    }
}

//! The dataset snapshot writer against a real directory: commit, dedup across restarts,
//! crash repair, rotation and clear errors.

use std::path::{Path, PathBuf};

use netpipe_runtime::dataset::{
    AppendOutcome, DatasetConfig, DatasetError, DatasetWriter, Manifest, RotatePolicy, RowId,
    SchemaInfo,
};

fn schema() -> SchemaInfo {
    SchemaInfo::from_columns("test", 3, &["idx", "agent", "seq"])
}

fn id(agent: &str, seq: u64) -> RowId<'_> {
    RowId {
        agent,
        boot: 100,
        seq,
        ts_ns: 1_000 + seq as i64,
    }
}

fn append(writer: &mut DatasetWriter, agent: &str, seq: u64) -> AppendOutcome {
    writer.append_with(id(agent, seq), |idx, buf| {
        buf.extend_from_slice(format!("{idx},{agent},{seq}\n").as_bytes())
    })
}

fn csv_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "csv"))
        .collect();
    files.sort();
    files
}

/// (agent, seq) of every row in every CSV of `dir`, checking each file's header.
fn all_rows(dir: &Path) -> Vec<(String, u64)> {
    let mut rows = Vec::new();
    for file in csv_files(dir) {
        let text = std::fs::read_to_string(&file).unwrap();
        assert!(text.ends_with('\n'), "{file:?} ends with a complete line");
        let mut lines = text.lines();
        assert_eq!(lines.next(), Some("idx,agent,seq"), "{file:?}");
        for (i, line) in lines.enumerate() {
            let cells: Vec<&str> = line.split(',').collect();
            assert_eq!(cells.len(), 3, "{line}");
            assert_eq!(cells[0], i.to_string(), "idx counts rows within the file");
            rows.push((cells[1].to_string(), cells[2].parse().unwrap()));
        }
    }
    rows.sort();
    rows
}

#[test]
fn commit_appends_rows_once_and_writes_the_manifest() {
    let dir = tempfile::tempdir().unwrap();
    let config = DatasetConfig::new(dir.path(), "netdata");
    let (mut writer, report) = DatasetWriter::open(config, schema()).unwrap();
    let name = report
        .path
        .file_name()
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        name.starts_with("netdata-") && name.ends_with(".csv"),
        "{name}"
    );
    assert_eq!(
        name.len(),
        "netdata-2018-01-28-23-06-05.csv".len(),
        "{name}"
    );

    for seq in 100..110 {
        assert_eq!(append(&mut writer, "a", seq), AppendOutcome::Buffered);
    }
    assert_eq!(append(&mut writer, "a", 105), AppendOutcome::Duplicate);
    let commit = writer.commit().unwrap();
    assert_eq!(commit.rows, 10);
    for seq in [110, 112, 105] {
        append(&mut writer, "a", seq);
    }
    append(&mut writer, "b", 7);
    writer.note_dead_letter("not_json");
    assert_eq!(writer.commit().unwrap().rows, 3);

    let text = std::fs::read_to_string(&report.path).unwrap();
    assert_eq!(text.matches("idx,agent,seq").count(), 1, "header once");
    assert_eq!(text.lines().count(), 1 + 13);
    let manifest = Manifest::load(&Manifest::path_for(&report.path)).unwrap();
    assert_eq!(manifest.rows, 13);
    assert_eq!(manifest.bytes, text.len() as u64);
    assert_eq!(manifest.schema.name, "test");
    assert_eq!(manifest.schema.version, 3);
    assert_eq!(manifest.schema.columns, vec!["idx", "agent", "seq"]);
    assert_eq!(manifest.first_ts_ns, Some(1_007));
    assert_eq!(manifest.last_ts_ns, Some(1_112));
    assert_eq!(manifest.loss.duplicates_dropped, 2);
    assert_eq!(manifest.loss.dead_lettered.get("not_json"), Some(&1));
    let a = manifest.agents.iter().find(|s| s.agent == "a").unwrap();
    assert_eq!((a.rows, a.first_seq, a.last_seq), (12, 100, 112));
    // 111 never arrived.
    assert_eq!(a.missing, 1);
    // agent b's run starts at boot 100 but its first number is 7: nothing below is known lost.
    assert!(!manifest.closed);
    writer.close().unwrap();
    assert!(
        Manifest::load(&Manifest::path_for(&report.path))
            .unwrap()
            .closed
    );
}

#[test]
fn a_closing_commit_writes_rows_and_the_closed_manifest_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let config = DatasetConfig::new(dir.path(), "netdata");
    let (mut writer, report) = DatasetWriter::open(config, schema()).unwrap();
    let manifest_path = Manifest::path_for(&report.path);
    for seq in 1..=5 {
        append(&mut writer, "a", seq);
    }
    assert_eq!(writer.commit_closing().unwrap().rows, 5);
    let closed = Manifest::load(&manifest_path).unwrap();
    assert!(closed.closed);
    assert_eq!(closed.rows, 5);
    assert_eq!(closed.commits, 1);

    // Rows after the closing commit reopen the file; close() commits them and closes again.
    append(&mut writer, "a", 6);
    writer.close().unwrap();
    let reclosed = Manifest::load(&manifest_path).unwrap();
    assert!(reclosed.closed);
    assert_eq!(reclosed.rows, 6);
    assert_eq!(all_rows(dir.path()).len(), 6);
    assert_eq!(csv_files(dir.path()).len(), 1, "no rotation at close");
}

#[test]
fn close_after_a_closing_commit_writes_nothing_more() {
    let dir = tempfile::tempdir().unwrap();
    let config = DatasetConfig::new(dir.path(), "netdata");
    let (mut writer, report) = DatasetWriter::open(config, schema()).unwrap();
    let manifest_path = Manifest::path_for(&report.path);
    append(&mut writer, "a", 1);
    writer.commit_closing().unwrap();
    // Mark the manifest; another write would replace it.
    let mut marked = std::fs::read(&manifest_path).unwrap();
    marked.extend_from_slice(b"  ");
    std::fs::write(&manifest_path, &marked).unwrap();
    writer.close().unwrap();
    assert_eq!(std::fs::read(&manifest_path).unwrap(), marked);
    assert!(Manifest::load(&manifest_path).unwrap().closed);
}

#[test]
fn a_restart_recovers_the_dedup_window_and_drops_redeliveries() {
    let dir = tempfile::tempdir().unwrap();
    let config = DatasetConfig::new(dir.path(), "netdata");
    {
        let (mut writer, _) = DatasetWriter::open(config.clone(), schema()).unwrap();
        for seq in 0..50 {
            append(&mut writer, "a", seq);
        }
        writer.commit().unwrap();
        // Dropped without close: as after kill -9.
    }
    let (mut writer, report) = DatasetWriter::open(config, schema()).unwrap();
    assert_eq!(report.recovered_agents, 1);
    assert_eq!(report.files_closed, 1);
    for seq in 40..60 {
        let outcome = append(&mut writer, "a", seq);
        let expected = if seq < 50 {
            AppendOutcome::Duplicate
        } else {
            AppendOutcome::Buffered
        };
        assert_eq!(outcome, expected, "seq {seq}");
    }
    writer.close().unwrap();
    let rows = all_rows(dir.path());
    assert_eq!(
        rows,
        (0..60).map(|s| ("a".to_string(), s)).collect::<Vec<_>>()
    );
    assert_eq!(
        csv_files(dir.path()).len(),
        2,
        "a restart starts a new file"
    );
}

#[test]
fn start_up_cuts_a_torn_line_and_uncommitted_rows() {
    let dir = tempfile::tempdir().unwrap();
    let config = DatasetConfig::new(dir.path(), "netdata");
    let first_path;
    {
        let (mut writer, report) = DatasetWriter::open(config.clone(), schema()).unwrap();
        first_path = report.path;
        for seq in 0..5 {
            append(&mut writer, "a", seq);
        }
        writer.commit().unwrap();
    }
    // A crash after the data write of the next commit, before its manifest: two whole rows
    // and half a third.
    {
        use std::io::Write;
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .open(&first_path)
            .unwrap();
        file.write_all(b"5,a,5\n6,a,6\n7,a").unwrap();
    }
    let (mut writer, report) = DatasetWriter::open(config, schema()).unwrap();
    assert_eq!(report.torn_lines_truncated, 1);
    assert_eq!(report.uncommitted_rows_truncated, 2);
    // The cut rows were never acknowledged, so they come again and are written once.
    for seq in 3..8 {
        append(&mut writer, "a", seq);
    }
    writer.close().unwrap();
    assert_eq!(
        all_rows(dir.path()),
        (0..8).map(|s| ("a".to_string(), s)).collect::<Vec<_>>()
    );
    let old = Manifest::load(&Manifest::path_for(&first_path)).unwrap();
    assert!(old.closed);
    assert_eq!(old.repaired.torn_lines, 1);
    assert_eq!(old.repaired.uncommitted_rows, 2);
}

#[test]
fn a_torn_output_csv_without_manifest_is_repaired() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.csv");
    std::fs::write(&out, "idx,agent,seq\n0,a,1\n1,a").unwrap();
    let mut config = DatasetConfig::new(dir.path().join("unused"), "netdata");
    config.output_csv = Some(out.clone());
    let (writer, report) = DatasetWriter::open(config, schema()).unwrap();
    assert_eq!(
        std::fs::read_to_string(&out).unwrap(),
        "idx,agent,seq\n0,a,1\n"
    );
    assert_eq!(report.path, dir.path().join("out-2.csv"));
    writer.close().unwrap();
}

#[test]
fn rotation_by_rows_closes_the_file_and_continues() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = DatasetConfig::new(dir.path(), "netdata");
    config.instance = Some("p1".into());
    config.rotate = RotatePolicy {
        rows: Some(10),
        ..Default::default()
    };
    let (mut writer, report) = DatasetWriter::open(config, schema()).unwrap();
    assert!(report.path.to_str().unwrap().ends_with("-p1.csv"));
    let mut rotations = 0;
    for chunk in 0..5u64 {
        for seq in chunk * 6..chunk * 6 + 6 {
            append(&mut writer, "a", seq);
        }
        if writer.commit().unwrap().rotated_to.is_some() {
            rotations += 1;
        }
    }
    writer.close().unwrap();
    assert_eq!(rotations, 2);
    assert_eq!(csv_files(dir.path()).len(), 3);
    assert_eq!(
        all_rows(dir.path()),
        (0..30).map(|s| ("a".to_string(), s)).collect::<Vec<_>>()
    );
    let manifests = Manifest::scan(dir.path()).unwrap();
    assert_eq!(manifests.len(), 3);
    assert!(manifests.iter().all(|(_, m)| m.closed));
    let mut indexes: Vec<u64> = manifests.iter().map(|(_, m)| m.file_index).collect();
    indexes.sort();
    assert_eq!(indexes, vec![0, 1, 2]);
}

#[test]
fn an_unwritable_directory_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let blocker = dir.path().join("a-file");
    std::fs::write(&blocker, "x").unwrap();
    let config = DatasetConfig::new(blocker.join("sub"), "netdata");
    let error = DatasetWriter::open(config, schema()).unwrap_err();
    assert!(matches!(error, DatasetError::Io { .. }), "{error:?}");
    let text = error.to_string();
    assert!(text.contains("a-file/sub"), "{text}");
}

#[test]
fn a_failed_commit_commits_nothing_and_a_retry_writes_rows_once() {
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().join("ds");
    let config = DatasetConfig::new(&out_dir, "netdata");
    let (mut writer, report) = DatasetWriter::open(config, schema()).unwrap();
    append(&mut writer, "a", 1);
    writer.commit().unwrap();
    append(&mut writer, "a", 2);
    // Make the manifest replacement fail: a directory where its temp file must go.
    let tmp = PathBuf::from(format!(
        "{}.manifest.json.tmp",
        report.path.to_str().unwrap()
    ));
    std::fs::create_dir(&tmp).unwrap();
    assert!(writer.commit().is_err());
    assert_eq!(
        std::fs::read_to_string(&report.path).unwrap(),
        "idx,agent,seq\n0,a,1\n",
        "rolled back to the last commit"
    );
    assert_eq!(writer.pending_rows(), 1);
    std::fs::remove_dir(&tmp).unwrap();
    assert_eq!(writer.commit().unwrap().rows, 1);
    writer.close().unwrap();
    assert_eq!(
        std::fs::read_to_string(&report.path).unwrap(),
        "idx,agent,seq\n0,a,1\n1,a,2\n"
    );
}

/// Appends rows `range` of agent `agent` with a long agent name, so chunks fill quickly.
fn append_many(writer: &mut DatasetWriter, agent: &str, range: std::ops::Range<u64>) {
    for seq in range {
        assert_eq!(append(writer, agent, seq), AppendOutcome::Buffered);
    }
}

fn file_len(path: &Path) -> u64 {
    std::fs::metadata(path).unwrap().len()
}

/// Waits until the write-ahead thread has put something past `len` into `path`.
fn wait_for_growth(path: &Path, len: u64) -> u64 {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let now = file_len(path);
        if now > len {
            return now;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "nothing written ahead"
        );
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
}

#[test]
fn rows_are_written_ahead_of_the_commit_and_cut_after_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    let config = DatasetConfig::new(dir.path(), "netdata");
    let agent = "a".repeat(100);
    let first_path;
    {
        let (mut writer, report) = DatasetWriter::open(config.clone(), schema()).unwrap();
        first_path = report.path.clone();
        append_many(&mut writer, &agent, 0..100);
        writer.commit().unwrap();
        let committed = file_len(&first_path);
        // ~110 bytes a row: several 256 KiB chunks.
        append_many(&mut writer, &agent, 100..10_000);
        let ahead = wait_for_growth(&first_path, committed);
        assert!(ahead > committed + 200_000, "{ahead}");
        let manifest = Manifest::load(&Manifest::path_for(&first_path)).unwrap();
        assert_eq!(manifest.bytes, committed, "written ahead is not committed");
        assert_eq!(manifest.rows, 100);
        // The process dies here: no commit.
    }
    let (mut writer, report) = DatasetWriter::open(config, schema()).unwrap();
    assert!(
        report.uncommitted_rows_truncated > 2_000,
        "{}",
        report.uncommitted_rows_truncated
    );
    assert_eq!(report.torn_lines_truncated, 0, "whole rows only");
    // The broker delivers the unacknowledged rows again: each lands once.
    append_many(&mut writer, &agent, 100..10_000);
    assert_eq!(writer.commit().unwrap().rows, 9_900);
    writer.close().unwrap();
    let rows = all_rows(dir.path());
    assert_eq!(rows.len(), 10_000);
    assert!(rows.iter().map(|(_, seq)| *seq).eq(0..10_000));
}

#[test]
fn a_commit_after_written_ahead_chunks_holds_every_row_once() {
    let dir = tempfile::tempdir().unwrap();
    let config = DatasetConfig::new(dir.path(), "netdata");
    let agent = "b".repeat(100);
    let (mut writer, report) = DatasetWriter::open(config, schema()).unwrap();
    for round in 0..3u64 {
        let start = round * 7_000;
        append_many(&mut writer, &agent, start..start + 7_000);
        let commit = writer.commit().unwrap();
        assert_eq!(commit.rows, 7_000);
        let manifest = Manifest::load(&Manifest::path_for(&report.path)).unwrap();
        assert_eq!(manifest.bytes, file_len(&report.path));
        assert_eq!(manifest.rows, (round + 1) * 7_000);
    }
    writer.close().unwrap();
    let rows = all_rows(dir.path());
    assert!(rows.iter().map(|(_, seq)| *seq).eq(0..21_000));
}

/// A small tmpfs mounted for one test (root only), unmounted when dropped.
struct SmallDisk {
    dir: tempfile::TempDir,
}

impl SmallDisk {
    fn mount(size: &str) -> Option<SmallDisk> {
        let dir = tempfile::tempdir().unwrap();
        let status = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .stderr(std::process::Stdio::null())
            .status();
        match status {
            Ok(status) if status.success() => Some(SmallDisk { dir }),
            _ => {
                netpipe_testkit::skip("full-disk test", "cannot mount a tmpfs (needs root)");
                None
            }
        }
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}

#[cfg_attr(
    not(feature = "system-tests"),
    ignore = "needs root (mounts a tmpfs): run with --features system-tests (scripts/test.sh does)"
)]
#[test]
fn a_full_disk_fails_the_commit_cleanly_and_a_retry_writes_rows_once() {
    let Some(disk) = SmallDisk::mount("2m") else {
        return;
    };
    let ds = disk.dir.path().join("ds");
    let config = DatasetConfig::new(&ds, "netdata");
    let agent = "c".repeat(100);
    let (mut writer, report) = DatasetWriter::open(config, schema()).unwrap();
    append_many(&mut writer, &agent, 0..100);
    writer.commit().unwrap();
    let committed = file_len(&report.path);
    // Leave ~300 KB free, then buffer ~1.1 MB of rows: the write-ahead thread runs out of
    // space part way, and so does the commit.
    let filler = disk.dir.path().join("filler");
    std::fs::write(&filler, vec![0u8; 1700 * 1024]).unwrap();
    append_many(&mut writer, &agent, 100..10_000);
    let error = writer.commit().unwrap_err().to_string();
    assert!(error.contains("No space left"), "{error}");
    assert!(
        error.contains(&report.path.display().to_string()),
        "{error}"
    );
    assert_eq!(file_len(&report.path), committed, "cut back to the commit");
    let manifest = Manifest::load(&Manifest::path_for(&report.path)).unwrap();
    assert_eq!(manifest.rows, 100);
    assert_eq!(writer.pending_rows(), 9_900, "rows kept for the retry");

    std::fs::remove_file(&filler).unwrap();
    assert_eq!(writer.commit().unwrap().rows, 9_900);
    writer.close().unwrap();
    let rows = all_rows(&ds);
    assert!(rows.iter().map(|(_, seq)| *seq).eq(0..10_000));
    assert_eq!(
        Manifest::load(&Manifest::path_for(&report.path))
            .unwrap()
            .bytes,
        file_len(&report.path)
    );
}

#[cfg_attr(
    not(feature = "system-tests"),
    ignore = "needs root (mounts a tmpfs): run with --features system-tests (scripts/test.sh does)"
)]
#[test]
fn a_full_disk_at_open_leaves_no_empty_file_behind() {
    let Some(disk) = SmallDisk::mount("64k") else {
        return;
    };
    let ds = disk.dir.path().join("ds");
    std::fs::create_dir(&ds).unwrap();
    // Fill the disk: creating a file still works (inodes), writing its header does not.
    let filler = disk.dir.path().join("filler");
    let _ = std::fs::write(&filler, vec![0u8; 128 * 1024]);
    for _ in 0..3 {
        let error = DatasetWriter::open(DatasetConfig::new(&ds, "netdata"), schema())
            .map(|_| ())
            .unwrap_err()
            .to_string();
        assert!(error.contains("No space left"), "{error}");
    }
    let left: Vec<_> = std::fs::read_dir(&ds)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(left.is_empty(), "files left behind: {left:?}");
}

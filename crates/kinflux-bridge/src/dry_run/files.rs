//! Records from files: one record per line for text formats (line protocol, JSON), one
//! record per file for binary ones (Avro).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use kinflux::kafka::Record;

/// How a file splits into records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Split {
    /// Each non-empty line is a record.
    Lines,
    /// The whole file is one record.
    WholeFile,
}

/// The records of `input` (a file, or every file directly in a directory, by name), at
/// most `max` of them. Each gets `topic`, partition 0, its index as offset, and
/// `timestamp_ms` as its time.
pub(super) fn read(
    input: &Path,
    split: Split,
    topic: &str,
    timestamp_ms: i64,
    max: usize,
) -> Result<Vec<Record>, String> {
    let files = files_of(input)?;
    let topic: Arc<str> = Arc::from(topic);
    let mut records = Vec::new();
    for file in files {
        let bytes = std::fs::read(&file).map_err(|e| format!("{}: {e}", file.display()))?;
        let values: Vec<Vec<u8>> = match split {
            Split::WholeFile => vec![bytes],
            Split::Lines => bytes
                .split(|&b| b == b'\n')
                .map(|line| line.strip_suffix(b"\r").unwrap_or(line))
                .filter(|line| !line.iter().all(u8::is_ascii_whitespace))
                .map(<[u8]>::to_vec)
                .collect(),
        };
        for value in values {
            if records.len() >= max {
                return Ok(records);
            }
            records.push(Record {
                topic: Arc::clone(&topic),
                partition: 0,
                offset: records.len() as i64,
                key: None,
                value: Some(value.into()),
                headers: Vec::new(),
                timestamp_ms,
            });
        }
    }
    Ok(records)
}

/// `input` itself, or the files directly in it, sorted by name.
fn files_of(input: &Path) -> Result<Vec<PathBuf>, String> {
    let meta = std::fs::metadata(input).map_err(|e| format!("{}: {e}", input.display()))?;
    if !meta.is_dir() {
        return Ok(vec![input.to_path_buf()]);
    }
    let mut files = Vec::new();
    let entries = std::fs::read_dir(input).map_err(|e| format!("{}: {e}", input.display()))?;
    for entry in entries {
        let entry = entry.map_err(|e| format!("{}: {e}", input.display()))?;
        if entry.file_type().is_ok_and(|t| t.is_file()) {
            files.push(entry.path());
        }
    }
    files.sort();
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_records_and_files_are_records() {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::write(dir.path().join("b.lp"), "m v=2\n\n  \nm v=3\r\n").expect("write");
        std::fs::write(dir.path().join("a.lp"), "m v=1").expect("write");
        let records = read(dir.path(), Split::Lines, "t", 5, 10).expect("read");
        let values: Vec<&[u8]> = records
            .iter()
            .map(|r| r.value.as_deref().expect("a value"))
            .collect();
        assert_eq!(values, [&b"m v=1"[..], b"m v=2", b"m v=3"]);
        assert_eq!(records[2].offset, 2);
        assert_eq!(&*records[0].topic, "t");

        let whole = read(dir.path(), Split::WholeFile, "t", 5, 10).expect("read");
        assert_eq!(whole.len(), 2);
        assert_eq!(
            read(dir.path(), Split::Lines, "t", 5, 2)
                .expect("read")
                .len(),
            2
        );
        assert!(read(&dir.path().join("missing"), Split::Lines, "t", 5, 2).is_err());
    }
}

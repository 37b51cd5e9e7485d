//! Spans: data that arrives as files in a folder. A path names one file, a
//! folder (its files), or a glob in its last part (`incoming/*.csv`); the
//! files it names, in name order (spans named by date sort by time), are
//! what `ingest` reads and what a `new_data` trigger watches.
//!
//! Hidden files and files being written by convention (`*.tmp`, `*.part`,
//! `*.partial`, `*.crdownload`) are never spans.

use crate::DataError;
use std::path::{Path, PathBuf};

/// Whether `path`'s last part is a glob pattern.
pub fn is_glob(path: &Path) -> bool {
    path.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.contains(['*', '?', '[', '{']))
}

/// The files `path` names, in name order. A folder or a glob that matches
/// nothing is empty; a folder that does not exist is an error naming it.
pub fn spans(path: &Path) -> Result<Vec<PathBuf>, DataError> {
    let (dir, pattern) = if is_glob(path) {
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        let glob = globset::Glob::new(name).map_err(|e| DataError::Invalid {
            path: path.to_path_buf(),
            message: format!("not a glob pattern: {e}"),
        })?;
        (path.parent().map(Path::to_path_buf).unwrap_or_default(), Some(glob.compile_matcher()))
    } else if path.is_dir() {
        (path.to_path_buf(), None)
    } else if path.exists() {
        return Ok(vec![path.to_path_buf()]);
    } else {
        let source = std::io::Error::new(std::io::ErrorKind::NotFound, "no such file or folder");
        return Err(DataError::Open { path: path.to_path_buf(), source });
    };
    let entries = std::fs::read_dir(if dir.as_os_str().is_empty() { Path::new(".") } else { &dir })
        .map_err(|source| DataError::Open { path: dir.clone(), source })?;
    let mut found = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|source| DataError::Open { path: dir.clone(), source })?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let is_file = entry.file_type().is_ok_and(|t| t.is_file());
        if is_file && !being_written(&name) && pattern.as_ref().is_none_or(|p| p.is_match(&name)) {
            found.push(entry.path());
        }
    }
    found.sort();
    Ok(found)
}

fn being_written(name: &str) -> bool {
    name.starts_with('.') || [".tmp", ".part", ".partial", ".crdownload"].iter().any(|s| name.ends_with(s))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_folder_or_a_glob_names_its_files_in_name_order_and_never_those_being_written() {
        let dir = tempfile::tempdir().unwrap();
        for name in ["2012-02.csv", "2012-01.csv", ".hidden.csv", "2012-03.csv.part", "notes.txt"] {
            std::fs::write(dir.path().join(name), "x\n1\n").unwrap();
        }
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        let names = |p: &Path| -> Vec<String> {
            spans(p).unwrap().iter().map(|f| f.file_name().unwrap().to_string_lossy().into_owned()).collect()
        };
        assert_eq!(names(dir.path()), ["2012-01.csv", "2012-02.csv", "notes.txt"]);
        assert_eq!(names(&dir.path().join("*.csv")), ["2012-01.csv", "2012-02.csv"]);
        assert_eq!(names(&dir.path().join("2012-0[2-9].csv")), ["2012-02.csv"]);
        assert!(names(&dir.path().join("*.parquet")).is_empty());
        let file = dir.path().join("2012-01.csv");
        assert_eq!(spans(&file).unwrap(), [file]);
        let gone = dir.path().join("gone").join("*.csv");
        assert!(spans(&gone).unwrap_err().to_string().contains("gone"));
        assert!(spans(&dir.path().join("gone")).unwrap_err().to_string().contains("no such file or folder"));
    }
}

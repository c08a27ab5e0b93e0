//! The history's files: a folder of records, one JSON file per night, and the site's pages.
//! The only I/O of [`crate::history`]. Every write is atomic
//! ([`crate::util::write_atomic`]); every read validates and names the file.

use std::path::{Path, PathBuf};

use super::record::{NightRecord, RECORD_VERSION, sort};
use super::site::Page;

/// Why the history could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{path}:{line}:{column}: not a history record: {message}")]
    Syntax { path: PathBuf, line: usize, column: usize, message: String },
    #[error("{path}:{line}:{column}: field `{field}`: {message}")]
    Field { path: PathBuf, line: usize, column: usize, field: String, message: String },
    #[error("{path}: {message}")]
    Invalid { path: PathBuf, message: String },
    #[error("{path}: {source}")]
    Summary { path: PathBuf, source: crate::summary::SummaryError },
    #[error("{dir}: {message}")]
    Summaries { dir: PathBuf, message: String },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> HistoryError + '_ {
    move |source| HistoryError::Io { path: path.to_path_buf(), source }
}

/// The `.json` files directly in `dir`, by name (hidden files, such as the temporary files of
/// an atomic write, are left out).
fn json_files(dir: &Path) -> Result<Vec<PathBuf>, HistoryError> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io(dir))? {
        let entry = entry.map_err(io(dir))?;
        let path = entry.path();
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with('.') || !name.ends_with(".json") || !path.is_file() {
            continue;
        }
        files.push(path);
    }
    files.sort();
    Ok(files)
}

/// Reads and validates every record in `dir`, oldest first. A folder that does not exist is
/// an empty history; any file that is not a valid record is an error naming it.
pub fn load(dir: &Path) -> Result<Vec<NightRecord>, HistoryError> {
    if !dir.exists() {
        return Ok(Vec::new());
    }
    let mut records = Vec::new();
    for path in json_files(dir)? {
        let text = std::fs::read_to_string(&path).map_err(io(&path))?;
        records.push(parse(&path, &text)?);
    }
    sort(&mut records);
    Ok(records)
}

/// Validates a record's text; `path` is only used in messages.
pub fn parse(path: &Path, text: &str) -> Result<NightRecord, HistoryError> {
    let value: serde_json::Value = serde_json::from_str(text).map_err(|e| HistoryError::Syntax {
        path: path.to_path_buf(),
        line: e.line(),
        column: e.column(),
        message: strip_position(&e.to_string()),
    })?;
    // The version first: a newer record may not fit this build's fields at all.
    if let Some(v) = value.get("record_version").and_then(|v| v.as_u64())
        && v > u64::from(RECORD_VERSION)
    {
        return Err(HistoryError::Invalid {
            path: path.to_path_buf(),
            message: format!(
                "record_version {v} is newer than this build understands (up to {}): update the perf gate to read it",
                RECORD_VERSION
            ),
        });
    }
    let mut de = serde_json::Deserializer::from_str(text);
    let record: NightRecord = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let field = e.path().to_string();
        let inner = e.into_inner();
        HistoryError::Field {
            path: path.to_path_buf(),
            line: inner.line(),
            column: inner.column(),
            field,
            message: strip_position(&inner.to_string()),
        }
    })?;
    record.validate().map_err(|message| HistoryError::Invalid { path: path.to_path_buf(), message })?;
    Ok(record)
}

fn strip_position(msg: &str) -> String {
    match msg.rfind(" at line ") {
        Some(i) => msg[..i].to_string(),
        None => msg.to_string(),
    }
}

/// Reads every summary (`*.json`) directly in `dir`: one run's results folder.
pub fn read_summaries(dir: &Path) -> Result<Vec<crate::summary::Summary>, HistoryError> {
    let found = crate::summary::read_folder(dir).map_err(|source| HistoryError::Summary { path: dir.to_path_buf(), source })?;
    if found.is_empty() {
        return Err(HistoryError::Summaries { dir: dir.to_path_buf(), message: "no summaries (*.json) in this folder".into() });
    }
    Ok(found.into_iter().map(|(_, s)| s).collect())
}

/// What [`append`] did.
#[derive(Debug, Clone, PartialEq)]
pub struct Appended {
    pub path: PathBuf,
    pub record: NightRecord,
    /// A record of the same night (same file name) was there and was replaced.
    pub replaced: bool,
}

/// Adds the night recorded by the summaries in `summaries_dir` to the history in `dir`
/// (created if needed). Adding the same night twice replaces its file: re-running a nightly
/// job does not duplicate it.
pub fn append(dir: &Path, summaries_dir: &Path) -> Result<Appended, HistoryError> {
    let summaries = read_summaries(summaries_dir)?;
    let record = NightRecord::from_summaries(&summaries)
        .map_err(|e| HistoryError::Summaries { dir: summaries_dir.to_path_buf(), message: e.to_string() })?;
    let path = dir.join(record.file_name());
    let replaced = path.exists();
    crate::util::write_atomic(&path, &record.to_bytes()).map_err(io(&path))?;
    Ok(Appended { path, record, replaced })
}

/// Writes the site's pages under `dir`, each atomically. Files of endpoints that no longer
/// exist are left alone.
pub fn write_site(dir: &Path, pages: &[Page]) -> Result<(), HistoryError> {
    for p in pages {
        let path = dir.join(&p.path);
        crate::util::write_atomic(&path, p.html.as_bytes()).map_err(io(&path))?;
    }
    Ok(())
}

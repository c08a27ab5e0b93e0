//! Reading and writing summary files. Writes are atomic (temp file in the same directory,
//! fsync, rename), so a reader never sees half a summary. Reads validate: a JSON or type
//! error names the file, line, column and field; a summary written by a newer build is
//! refused with a clear message instead of being misread.

use std::path::{Path, PathBuf};

use super::model::{SCHEMA_VERSION, Summary};

/// Why a summary file could not be written or used.
#[derive(Debug, thiserror::Error)]
pub enum SummaryError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{path}:{line}:{column}: invalid JSON: {message}")]
    Syntax { path: PathBuf, line: usize, column: usize, message: String },
    #[error("{path}:{line}:{column}: field `{field}`: {message}")]
    Field { path: PathBuf, line: usize, column: usize, field: String, message: String },
    #[error("{path}: schema_version {found} is newer than this build understands (up to {supported}): update the perf gate to read it")]
    Newer { path: PathBuf, found: u64, supported: u32 },
    #[error("{path}: field `schema_version`: {message}")]
    Version { path: PathBuf, message: String },
}

/// Writes `summary` as pretty JSON to `path` atomically, creating the directory if needed.
pub fn write_atomic(path: &Path, summary: &Summary) -> Result<(), SummaryError> {
    let mut bytes = serde_json::to_vec_pretty(summary).expect("a summary serializes");
    bytes.push(b'\n');
    crate::util::write_atomic(path, &bytes).map_err(|source| SummaryError::Io { path: path.to_path_buf(), source })
}

/// Reads every summary in `dir` (its `*.json` files, by name; hidden files, such as an atomic
/// write's temporary file, and the files written beside summaries for other tools are left
/// out). Any other file that is not a valid summary is an error naming it.
pub fn read_folder(dir: &Path) -> Result<Vec<(PathBuf, Summary)>, SummaryError> {
    let io = |source| SummaryError::Io { path: dir.to_path_buf(), source };
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io)? {
        let entry = entry.map_err(io)?;
        let path = entry.path();
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with('.') || !name.ends_with(".json") || !path.is_file() || written_for_other_tools(&path) {
            continue;
        }
        files.push(path);
    }
    files.sort();
    files.into_iter().map(|p| read(&p).map(|s| (p, s))).collect()
}

/// A JSON file the gate writes beside its summaries for other tools (`bmf.json`, an object of
/// benchmarks; `benchmark.json`, an array): valid JSON that is not an object with a
/// `schema_version`. A summary damaged beyond parsing is not one of these: it stays an error.
fn written_for_other_tools(path: &Path) -> bool {
    let Ok(bytes) = std::fs::read(path) else { return false };
    match serde_json::from_slice::<serde_json::Value>(&bytes) {
        Ok(serde_json::Value::Object(map)) => !map.contains_key("schema_version"),
        Ok(_) => true,
        Err(_) => false,
    }
}

/// Reads and validates a summary file.
pub fn read(path: &Path) -> Result<Summary, SummaryError> {
    let text = std::fs::read_to_string(path).map_err(|source| SummaryError::Io { path: path.to_path_buf(), source })?;
    parse(path, &text)
}

/// Validates summary text; `path` is only used in messages.
pub fn parse(path: &Path, text: &str) -> Result<Summary, SummaryError> {
    let value: serde_json::Value = serde_json::from_str(text).map_err(|e| SummaryError::Syntax {
        path: path.to_path_buf(),
        line: e.line(),
        column: e.column(),
        message: strip_position(&e.to_string()),
    })?;
    let version_err = |message: &str| SummaryError::Version { path: path.to_path_buf(), message: message.to_string() };
    let version = match value.get("schema_version") {
        None => return Err(version_err("missing: expected the summary format version, a positive integer")),
        Some(v) => v.as_u64().ok_or_else(|| version_err("expected a positive integer"))?,
    };
    if version > SCHEMA_VERSION as u64 {
        return Err(SummaryError::Newer { path: path.to_path_buf(), found: version, supported: SCHEMA_VERSION });
    }
    if version < SCHEMA_VERSION as u64 {
        // The hook for upgrading older formats. Version 1 is the first one: nothing older
        // exists, so anything below is not a summary this tool ever wrote.
        return Err(version_err(&format!("{version} is not a summary format version (the first is 1)")));
    }
    let mut de = serde_json::Deserializer::from_str(text);
    serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let field = e.path().to_string();
        let inner = e.into_inner();
        SummaryError::Field {
            path: path.to_path_buf(),
            line: inner.line(),
            column: inner.column(),
            field,
            message: strip_position(&inner.to_string()),
        }
    })
}

/// serde_json appends " at line L column C"; the error shows the position up front instead.
fn strip_position(msg: &str) -> String {
    match msg.rfind(" at line ") {
        Some(i) => msg[..i].to_string(),
        None => msg.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::summary::model::*;

    fn summary() -> Summary {
        Summary::new(
            "s",
            "load",
            RunInfo {
                started_at: "2030-01-01T00:00:00Z".into(),
                duration_s: 1.0,
                warmup_s: 0.0,
                git: GitInfo::default(),
                backend: crate::plan::BackendKind::Local,
                host: HostInfo::default(),
                tool_version: "0".into(),
                plan_hash: "h".into(),
                suite_hash: None,
                testbed: None,
                quick: false,
                tags: vec![],
                shard: None,
                merged_from: Vec::new(),
            },
        )
    }

    fn text() -> String {
        serde_json::to_string_pretty(&summary()).unwrap()
    }

    #[test]
    fn round_trips_through_a_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("deep/er/s.json");
        write_atomic(&path, &summary()).unwrap();
        assert_eq!(read(&path).unwrap(), summary());
        // Overwriting replaces the whole file.
        let mut other = summary();
        other.suite = "t".into();
        write_atomic(&path, &other).unwrap();
        assert_eq!(read(&path).unwrap().suite, "t");
    }

    #[test]
    fn type_errors_name_line_column_and_field() {
        let bad = text().replace("\"plan_hash\": \"h\"", "\"plan_hash\": 7");
        let e = parse(Path::new("r/s.json"), &bad).unwrap_err();
        let msg = e.to_string();
        let SummaryError::Field { line, field, .. } = &e else { panic!("{msg}") };
        assert_eq!(field, "run.plan_hash");
        let want = bad.lines().position(|l| l.contains("\"plan_hash\": 7")).unwrap() + 1;
        assert_eq!(*line, want);
        assert!(msg.starts_with(&format!("r/s.json:{want}:")), "{msg}");
        assert!(msg.contains("expected a string"), "{msg}");

        // The backend is one of three words.
        let other = text().replace("\"backend\": \"local\"", "\"backend\": \"podman\"");
        let msg = parse(Path::new("s.json"), &other).unwrap_err().to_string();
        assert!(msg.contains("field `run.backend`") && msg.contains("unknown variant `podman`"), "{msg}");

        let missing = text().replace("\"plan_hash\": \"h\",", "");
        let msg = parse(Path::new("s.json"), &missing).unwrap_err().to_string();
        assert!(msg.contains("missing field `plan_hash`"), "{msg}");
    }

    #[test]
    fn syntax_errors_have_a_position() {
        let e = parse(Path::new("s.json"), "{\n  \"schema_version\": 1,\n  oops\n}").unwrap_err();
        assert!(matches!(e, SummaryError::Syntax { line: 3, column: 3, .. }), "{e}");
    }

    #[test]
    fn newer_and_unknown_versions_are_refused() {
        let newer = text().replace("\"schema_version\": 1", "\"schema_version\": 2");
        let msg = parse(Path::new("s.json"), &newer).unwrap_err().to_string();
        assert!(msg.contains("schema_version 2 is newer than this build understands (up to 1)"), "{msg}");
        let zero = text().replace("\"schema_version\": 1", "\"schema_version\": 0");
        assert!(matches!(parse(Path::new("s.json"), &zero), Err(SummaryError::Version { .. })));
        let missing = text().replace("\"schema_version\": 1,", "");
        assert!(parse(Path::new("s.json"), &missing).unwrap_err().to_string().contains("missing"));
        assert!(read(Path::new("/nonexistent/s.json")).unwrap_err().to_string().starts_with("/nonexistent/s.json: "));
    }
}

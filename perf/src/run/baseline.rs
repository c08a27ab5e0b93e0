//! The stored baseline: summaries read and validated before any load is sent, and written
//! atomically by `--update-baseline`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::summary::{self, Summary};

use super::GateError;

/// Baseline summaries by suite name, with the file each came from.
#[derive(Debug, Clone, Default)]
pub struct Baselines {
    pub by_suite: BTreeMap<String, (Summary, PathBuf)>,
}

impl Baselines {
    pub fn get(&self, suite: &str) -> Option<&(Summary, PathBuf)> {
        self.by_suite.get(suite)
    }
}

/// Reads the baseline of each suite in `suites` from `path`:
/// - a folder: `<path>/<suite>.json` for each suite; a missing file is "no baseline";
/// - a file: one summary, which must belong to one of `suites`;
/// - nothing at `path`: no baseline at all (not an error).
///
/// A file that exists but is unreadable, malformed, from a newer format or about another
/// suite is an error naming the file (and the line, column and field where there is one).
pub fn load(path: &Path, suites: &[String]) -> Result<Baselines, GateError> {
    let mut out = Baselines::default();
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(GateError::Input(format!("baseline {}: {e}", path.display()))),
    };
    if meta.is_dir() {
        for suite in suites {
            let file = path.join(format!("{suite}.json"));
            if !file.exists() {
                continue;
            }
            let s = read_one(&file)?;
            if &s.suite != suite {
                return Err(GateError::Input(format!(
                    "{}: field `suite`: the file is named for suite `{suite}` but holds suite `{}`",
                    file.display(),
                    s.suite
                )));
            }
            out.by_suite.insert(suite.clone(), (s, file));
        }
    } else {
        let s = read_one(path)?;
        if !suites.contains(&s.suite) {
            return Err(GateError::Input(format!(
                "{}: field `suite`: baseline for suite `{}`, which this run does not run (it runs {})",
                path.display(),
                s.suite,
                suites.join(", ")
            )));
        }
        out.by_suite.insert(s.suite.clone(), (s, path.to_path_buf()));
    }
    Ok(out)
}

fn read_one(file: &Path) -> Result<Summary, GateError> {
    summary::read(file).map_err(|e| GateError::Input(format!("baseline {e}")))
}

/// The folder `--update-baseline` writes to for a `--baseline` path: the path itself when it
/// is a folder, the file's folder when it is a file; a path that does not exist yet is a
/// folder unless it names a `.json` file.
pub fn folder_for(path: &Path) -> PathBuf {
    let is_file = match std::fs::metadata(path) {
        Ok(m) => !m.is_dir(),
        Err(_) => path.extension().is_some_and(|e| e == "json"),
    };
    match path.parent() {
        Some(parent) if is_file => parent.to_path_buf(),
        _ => path.to_path_buf(),
    }
}

/// Writes each summary as `<dir>/<suite>.json`, each file atomically. Refuses invalid runs:
/// a baseline that could not be trusted would make every later comparison meaningless.
pub fn update(dir: &Path, summaries: &[Summary]) -> Result<Vec<PathBuf>, GateError> {
    if let Some(bad) = summaries.iter().find(|s| !s.valid) {
        return Err(GateError::Input(format!(
            "not updating the baseline: suite `{}` is an invalid run ({})",
            bad.suite,
            bad.invalid_reasons.join("; ")
        )));
    }
    let mut written = Vec::new();
    for s in summaries {
        let file = dir.join(format!("{}.json", s.suite));
        summary::write_atomic(&file, s).map_err(|e| GateError::Io(format!("writing the baseline: {e}")))?;
        written.push(file);
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::folder_for;

    #[test]
    fn update_writes_beside_a_file_or_into_a_folder() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("baseline.json");
        std::fs::write(&file, "{}").unwrap();
        assert_eq!(folder_for(&file), dir.path());
        assert_eq!(folder_for(dir.path()), dir.path());
        // Not there yet: a folder, unless it names a JSON file.
        assert_eq!(folder_for(&dir.path().join("new")), dir.path().join("new"));
        assert_eq!(folder_for(&dir.path().join("new.v2")), dir.path().join("new.v2"));
        assert_eq!(folder_for(&dir.path().join("next.json")), dir.path());
    }
}

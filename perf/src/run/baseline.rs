//! The stored baseline: summaries read and validated before any load is sent, picked by
//! testbed, and written atomically by `--update-baseline`.
//!
//! A baseline folder holds one folder per testbed, `<root>/<testbed key>/<suite>.json`
//! (`results/baseline/local-2cpu-epyc-24g-link500us/baseline.json`); a `<suite>.json`
//! directly in the folder (a downloaded artifact, a folder made by hand) is used by its own
//! testbed facts. A run is judged only against a baseline of its own testbed and of the same
//! suite definition; otherwise the suite is "not comparable", which is never a failure.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::compare::Noise;
use crate::github::{GithubContext, download_baseline_artifact};
use crate::summary::{self, Summary, Testbed};
use crate::util::Notes;
use crate::verdict::BaselineSource;

use super::options::{BaselineChoice, GateError};

/// What the stored baseline offers each suite of this run. A suite with no entry has no
/// baseline anywhere.
#[derive(Debug, Clone, Default)]
pub struct Baselines {
    pub by_suite: BTreeMap<String, Pick>,
    /// The noise an A/A run measured on the picked baseline's testbed, by suite
    /// (`<suite>.noise.json` beside `<suite>.json`).
    pub noise: BTreeMap<String, Noise>,
}

/// The baseline picked for one suite.
#[derive(Debug, Clone)]
pub enum Pick {
    /// A baseline to compare with. `across` says why it is not of this run's testbed or
    /// suite definition when `--baseline-any-testbed` forced it; `None` when it matches.
    Found { summary: Box<Summary>, path: PathBuf, across: Option<String> },
    /// Baselines exist, none comparable: no verdict for this suite.
    NotComparable {
        /// Why the closest one does not do.
        why: String,
        /// The testbeds that do have a baseline of this suite (keys; `unknown` for
        /// summaries written before testbeds).
        testbeds: Vec<String>,
    },
}

impl Baselines {
    /// The baseline to compare `suite` with, if there is a comparable (or forced) one.
    pub fn get(&self, suite: &str) -> Option<(&Summary, &PathBuf)> {
        match self.by_suite.get(suite) {
            Some(Pick::Found { summary, path, .. }) => Some((summary.as_ref(), path)),
            _ => None,
        }
    }

    pub fn pick(&self, suite: &str) -> Option<&Pick> {
        self.by_suite.get(suite)
    }

    /// The noise recorded beside `suite`'s baseline, when it matches this run's testbed.
    pub fn noise(&self, suite: &str) -> Option<&Noise> {
        self.noise.get(suite)
    }
}

/// What the baseline must match: this run's testbed and each suite's definition hash.
#[derive(Debug, Clone, Copy)]
pub struct Want<'a> {
    pub testbed: &'a Testbed,
    /// `(suite, definition hash)` for each suite of the run.
    pub suites: &'a [(String, String)],
    /// `--baseline-any-testbed`: compare with the closest baseline even when it does not
    /// match, and say so.
    pub any_testbed: bool,
}

/// Where the baselines of a run on `testbed` are read from, and how reports name them: the
/// path the user chose, or the nightly artifact of this testbed (downloaded into
/// `<out_dir>/baseline-artifact`). When the artifact cannot be had, says why and uses the
/// stored baseline, whose own testbed check still applies. `None`: compare with nothing.
pub async fn resolve(
    choice: &BaselineChoice,
    github: Option<&GithubContext>,
    testbed: &Testbed,
    out_dir: &Path,
    notes: &Notes,
) -> Option<(PathBuf, BaselineSource)> {
    let (name, workflow, fallback) = match choice {
        BaselineChoice::None => return None,
        BaselineChoice::Path { path, source } => return Some((path.clone(), source.clone())),
        BaselineChoice::Artifact { name, workflow, fallback } => (format!("{name}-{}", testbed.key), workflow, fallback),
    };
    let stored = |why: String| {
        notes.say(format!("  no nightly baseline: artifact `{name}`: {why}; using the stored baseline"));
        Some((fallback.clone(), BaselineSource::Committed { path: String::new() }))
    };
    let Some(ctx) = github else {
        return stored("no GitHub environment".into());
    };
    match download_baseline_artifact(ctx, &name, workflow, &out_dir.join("baseline-artifact")).await {
        Ok(dir) => {
            notes.say(format!("  baseline: artifact `{name}` of the newest successful scheduled {workflow} run"));
            Some((dir, BaselineSource::Artifact { name }))
        }
        Err(e) => stored(ctx.redact(&e.to_string())),
    }
}

/// Reads the baseline of each suite of `want` from `path`:
/// - a folder: `<path>/<testbed>/<suite>.json` for this run's testbed, else
///   `<path>/<suite>.json`, else (not comparable, or forced) another testbed's;
/// - a file: one summary, which must belong to one of the suites;
/// - nothing at `path`: no baseline at all (not an error).
///
/// Every candidate file is read and validated, whichever is picked: a file that exists but is
/// unreadable, malformed, from a newer format or about another suite is an error naming the
/// file (and the line, column and field where there is one).
pub fn load(path: &Path, want: Want<'_>) -> Result<Baselines, GateError> {
    let mut out = Baselines::default();
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(GateError::Input(format!("baseline {}: {e}", path.display()))),
    };
    if !meta.is_dir() {
        let s = read_one(path)?;
        let Some((_, hash)) = want.suites.iter().find(|(n, _)| *n == s.suite) else {
            let names: Vec<&str> = want.suites.iter().map(|(n, _)| n.as_str()).collect();
            return Err(GateError::Input(format!(
                "{}: field `suite`: baseline for suite `{}`, which this run does not run (it runs {})",
                path.display(),
                s.suite,
                names.join(", ")
            )));
        };
        let suite = s.suite.clone();
        out.by_suite.insert(suite, choose(vec![(s, path.to_path_buf())], hash, want));
        return Ok(out);
    }
    let testbed_dirs = subfolders(path)?;
    for (suite, hash) in want.suites {
        let file_name = format!("{suite}.json");
        // This testbed's folder first, then the folder itself, then the other testbeds'.
        let mut files = vec![path.join(&want.testbed.key).join(&file_name), path.join(&file_name)];
        files.extend(testbed_dirs.iter().filter(|d| **d != want.testbed.key).map(|d| path.join(d).join(&file_name)));
        let mut candidates = Vec::new();
        for file in files.into_iter().filter(|f| f.is_file()) {
            let s = read_one(&file)?;
            if &s.suite != suite {
                return Err(GateError::Input(format!(
                    "{}: field `suite`: the file is named for suite `{suite}` but holds suite `{}`",
                    file.display(),
                    s.suite
                )));
            }
            candidates.push((s, file));
        }
        if !candidates.is_empty() {
            let pick = choose(candidates, hash, want);
            if let Pick::Found { path, across: None, .. } = &pick
                && let Some(noise) = read_noise(path, suite)?
            {
                out.noise.insert(suite.clone(), noise);
            }
            out.by_suite.insert(suite.clone(), pick);
        }
    }
    Ok(out)
}

/// Why `base` cannot be compared with a run of suite definition `hash` on `testbed`.
pub fn mismatch(base: &Summary, testbed: &Testbed, hash: &str) -> Option<String> {
    let Some(recorded) = &base.run.testbed else {
        return Some("the baseline was recorded before testbeds existed (it names none); record it again".into());
    };
    if let Some(why) = testbed.mismatch(recorded) {
        return Some(why);
    }
    match base.run.suite_hash.as_deref() {
        Some(h) if h == hash => None,
        _ => Some(
            "the suite's definition changed since the baseline was recorded (its scenarios, requests, [defaults] or [compare], or --duration/--users/--tags)".into(),
        ),
    }
}

/// The first matching candidate (they come in order of preference); else, forced, the
/// closest one (same length, then same backend); else not comparable.
fn choose(candidates: Vec<(Summary, PathBuf)>, hash: &str, want: Want<'_>) -> Pick {
    let testbeds = {
        let mut keys: Vec<String> =
            candidates.iter().map(|(s, _)| s.run.testbed.as_ref().map_or_else(|| "unknown".to_string(), |t| t.key.clone())).collect();
        keys.sort();
        keys.dedup();
        keys
    };
    let reasons: Vec<Option<String>> = candidates.iter().map(|(s, _)| mismatch(s, want.testbed, hash)).collect();
    if let Some(i) = reasons.iter().position(Option::is_none) {
        let (summary, path) = candidates.into_iter().nth(i).expect("index from the same list");
        return Pick::Found { summary: Box::new(summary), path, across: None };
    }
    let closeness = |s: &Summary| {
        let t = s.run.testbed.as_ref();
        (t.is_some_and(|t| t.quick == want.testbed.quick), t.is_some_and(|t| t.backend == want.testbed.backend))
    };
    let best = (0..candidates.len()).rev().max_by_key(|i| closeness(&candidates[*i].0)).unwrap_or(0);
    let why = reasons[best].clone().unwrap_or_default();
    if want.any_testbed {
        let (summary, path) = candidates.into_iter().nth(best).expect("index from the same list");
        return Pick::Found { summary: Box::new(summary), path, across: Some(why) };
    }
    Pick::NotComparable { why, testbeds }
}

/// Names of the folders directly in `dir`, sorted.
fn subfolders(dir: &Path) -> Result<Vec<String>, GateError> {
    let entries = std::fs::read_dir(dir).map_err(|e| GateError::Input(format!("baseline {}: {e}", dir.display())))?;
    let mut out: Vec<String> = entries
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .filter_map(|e| e.file_name().into_string().ok())
        .collect();
    out.sort();
    Ok(out)
}

/// The file an A/A run's noise of `suite` is kept in, beside its baseline `<suite>.json`.
pub fn noise_file(baseline: &Path, suite: &str) -> PathBuf {
    baseline.with_file_name(format!("{suite}.noise.json"))
}

/// The noise recorded beside the baseline `path` of `suite`, if any; a file that is there but
/// does not read is an error naming it.
fn read_noise(path: &Path, suite: &str) -> Result<Option<Noise>, GateError> {
    let file = noise_file(path, suite);
    let text = match std::fs::read_to_string(&file) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(GateError::Input(format!("{}: {e}", file.display()))),
    };
    let de = &mut serde_json::Deserializer::from_str(&text);
    let noise: Noise = serde_path_to_error::deserialize(de).map_err(|e| {
        let inner = e.inner();
        GateError::Input(format!("{}:{}:{}: field `{}`: {inner}", file.display(), inner.line(), inner.column(), e.path()))
    })?;
    if noise.suite != suite {
        return Err(GateError::Input(format!("{}: field `suite`: the noise of suite `{}`, not `{suite}`", file.display(), noise.suite)));
    }
    Ok(Some(noise))
}

fn read_one(file: &Path) -> Result<Summary, GateError> {
    summary::read(file).map_err(|e| GateError::Input(format!("baseline {e}")))
}

/// The folder `--update-baseline` writes to for the baseline path `path` (a folder such as
/// the default `results/baseline/`, or a file): `<path>/<testbed>/` for a folder, the file's
/// own folder for a file. A path that does not exist yet is a folder unless it names a
/// `.json` file.
pub fn update_folder(path: &Path, testbed: &str) -> PathBuf {
    let is_file = match std::fs::metadata(path) {
        Ok(m) => !m.is_dir(),
        Err(_) => path.extension().is_some_and(|e| e == "json"),
    };
    match path.parent() {
        Some(parent) if is_file => parent.to_path_buf(),
        _ => path.join(testbed),
    }
}

/// Writes each summary as `<dir>/<suite>.json`, each file atomically. Refuses invalid runs:
/// a baseline that could not be trusted would make every later comparison meaningless.
pub fn update(dir: &Path, summaries: &[Summary], noise: &[Noise]) -> Result<Vec<PathBuf>, GateError> {
    if let Some(bad) = summaries.iter().find(|s| !s.valid) {
        return Err(GateError::Input(format!(
            "not updating the baseline: suite `{}` is an invalid run ({})",
            bad.suite,
            bad.invalid_reasons.join("; ")
        )));
    }
    let busy = summaries.iter().find_map(|s| Some((s, s.busy_machine()?)));
    if let Some((s, why)) = busy {
        return Err(GateError::Input(format!(
            "not updating the baseline: suite `{}`: {why}; every later run is judged against the baseline, so record it on a quiet machine",
            s.suite
        )));
    }
    let mut written = Vec::new();
    for s in summaries {
        let file = dir.join(format!("{}.json", s.suite));
        summary::write_atomic(&file, s).map_err(|e| GateError::Io(format!("writing the baseline: {e}")))?;
        written.push(file);
    }
    for n in noise {
        let file = noise_file(&dir.join(format!("{}.json", n.suite)), &n.suite);
        let json = serde_json::to_vec_pretty(n).map_err(|e| GateError::Io(format!("encoding {}: {e}", file.display())))?;
        crate::util::write_atomic(&file, &json).map_err(|e| GateError::Io(format!("writing {}: {e}", file.display())))?;
        written.push(file);
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compare::testkit;

    #[test]
    fn update_writes_beside_a_file_or_into_the_testbeds_folder() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("baseline.json");
        std::fs::write(&file, "{}").unwrap();
        let tb = "local-2cpu-epyc-24g";
        assert_eq!(update_folder(&file, tb), dir.path());
        assert_eq!(update_folder(dir.path(), tb), dir.path().join(tb));
        // Not there yet: a folder, unless it names a JSON file.
        assert_eq!(update_folder(&dir.path().join("new"), tb), dir.path().join("new").join(tb));
        assert_eq!(update_folder(&dir.path().join("new.v2"), tb), dir.path().join("new.v2").join(tb));
        assert_eq!(update_folder(&dir.path().join("next.json"), tb), dir.path());
    }

    #[test]
    fn a_run_measured_on_a_busy_machine_is_never_stored_as_the_baseline() {
        use crate::util::machine::MachineLoad;
        let dir = tempfile::tempdir().unwrap();
        let load = |foreign: f64| MachineLoad {
            cpus: 2,
            window_s: 30.0,
            busy_cores: 1.0 + foreign,
            run_cores: 1.0,
            foreign_cores: foreign,
            steal_cores: 0.0,
        };
        let mut quiet = testkit::summary("baseline", 30, Vec::new());
        quiet.machine = Some(load(0.05));
        let mut busy = testkit::summary("concurrent", 30, Vec::new());
        busy.machine = Some(load(1.2));
        let err = update(dir.path(), &[quiet.clone(), busy.clone()], &[]).unwrap_err().to_string();
        assert!(err.contains("suite `concurrent`") && err.contains("used 1.20 of its 2 CPUs") && err.contains("quiet machine"), "{err}");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0, "nothing written, not even the quiet suite");
        // Without figures (an older gate) or quiet: stored.
        busy.machine = None;
        assert_eq!(update(dir.path(), &[quiet, busy], &[]).unwrap().len(), 2);
    }

    #[test]
    fn the_noise_an_aa_measured_is_kept_beside_the_baseline_and_read_with_it() {
        let root = tempfile::tempdir().unwrap();
        let testbed = testkit::summary("baseline", 30, Vec::new())
            .run
            .testbed
            .unwrap_or_else(|| Testbed::new("local", 2, None, 24, None, false, None));
        let mut s = stored(&testbed, "h");
        s.suite = "baseline".into();
        let noise = Noise {
            suite: "baseline".into(),
            testbed: testbed.key.clone(),
            recorded_at: "2026-12-04T00:00:00Z".into(),
            endpoints: [("get".to_string(), [(crate::compare::Metric::P50, 0.031)].into_iter().collect())].into_iter().collect(),
        };
        let dir = update_folder(root.path(), &testbed.key);
        let written = update(&dir, &[s], std::slice::from_ref(&noise)).unwrap();
        assert_eq!(written.last().unwrap(), &dir.join("baseline.noise.json"));
        let suites = [("baseline".to_string(), "h".to_string())];
        let got = load(root.path(), Want { testbed: &testbed, suites: &suites, any_testbed: false }).unwrap();
        assert_eq!(got.noise("baseline"), Some(&noise));
        // A damaged noise file is bad input naming it, line and field.
        std::fs::write(dir.join("baseline.noise.json"), "{\"suite\": \"baseline\", \"testbed\": 7}").unwrap();
        let e = load(root.path(), Want { testbed: &testbed, suites: &suites, any_testbed: false }).unwrap_err().to_string();
        assert!(e.contains("baseline.noise.json:1:") && e.contains("field `testbed`"), "{e}");
    }

    fn stored(testbed: &Testbed, hash: &str) -> Summary {
        let mut s = testkit::summary("baseline", 30, Vec::new());
        s.run.testbed = Some(testbed.clone());
        s.run.suite_hash = Some(hash.to_string());
        s
    }

    fn write(path: &Path, s: &Summary) {
        summary::write_atomic(path, s).unwrap();
    }

    fn testbed(backend: &str) -> Testbed {
        Testbed::new(backend, 2, Some("AMD EPYC".into()), 24, None, false, Some(500.0))
    }

    #[test]
    fn the_baseline_of_this_testbed_is_picked_and_another_is_never_judged_against() {
        let dir = tempfile::tempdir().unwrap();
        let (local, docker) = (testbed("local"), testbed("docker"));
        let suites = vec![("baseline".to_string(), "h1".to_string())];
        std::fs::create_dir_all(dir.path().join(&local.key)).unwrap();
        write(&dir.path().join(&local.key).join("baseline.json"), &stored(&local, "h1"));

        // Same testbed, same definition: found.
        let got = load(dir.path(), Want { testbed: &local, suites: &suites, any_testbed: false }).unwrap();
        let Some(Pick::Found { path, across: None, .. }) = got.pick("baseline") else { panic!("{got:?}") };
        assert!(path.starts_with(dir.path().join(&local.key)));

        // Docker run, only a local baseline: not comparable, and the report can say which exist.
        let got = load(dir.path(), Want { testbed: &docker, suites: &suites, any_testbed: false }).unwrap();
        let Some(Pick::NotComparable { why, testbeds }) = got.pick("baseline") else { panic!("{got:?}") };
        assert!(why.contains(&local.key) && why.contains(&docker.key), "{why}");
        assert_eq!(testbeds, &vec![local.key.clone()]);
        assert!(got.get("baseline").is_none());

        // Forced: compared, and marked.
        let got = load(dir.path(), Want { testbed: &docker, suites: &suites, any_testbed: true }).unwrap();
        let Some(Pick::Found { across: Some(why), .. }) = got.pick("baseline") else { panic!("{got:?}") };
        assert!(why.contains(&local.key), "{why}");

        // The suite's definition changed: not comparable either.
        let changed = vec![("baseline".to_string(), "h2".to_string())];
        let got = load(dir.path(), Want { testbed: &local, suites: &changed, any_testbed: false }).unwrap();
        let Some(Pick::NotComparable { why, .. }) = got.pick("baseline") else { panic!("{got:?}") };
        assert!(why.contains("definition changed"), "{why}");

        // No baseline of that suite anywhere: no entry at all.
        let other = vec![("concurrent".to_string(), "h1".to_string())];
        assert!(load(dir.path(), Want { testbed: &local, suites: &other, any_testbed: false }).unwrap().pick("concurrent").is_none());
    }

    #[test]
    fn a_flat_file_is_judged_by_the_testbed_inside_it() {
        let dir = tempfile::tempdir().unwrap();
        let local = testbed("local");
        let suites = vec![("baseline".to_string(), "h1".to_string())];
        write(&dir.path().join("baseline.json"), &stored(&local, "h1"));
        let got = load(dir.path(), Want { testbed: &local, suites: &suites, any_testbed: false }).unwrap();
        assert!(matches!(got.pick("baseline"), Some(Pick::Found { across: None, .. })), "{got:?}");
        let file =
            load(&dir.path().join("baseline.json"), Want { testbed: &testbed("docker"), suites: &suites, any_testbed: false }).unwrap();
        assert!(matches!(file.pick("baseline"), Some(Pick::NotComparable { .. })), "{file:?}");
        // A summary from before testbeds is never compared unless forced.
        let mut old = stored(&local, "h1");
        old.run.testbed = None;
        write(&dir.path().join("baseline.json"), &old);
        let got = load(dir.path(), Want { testbed: &local, suites: &suites, any_testbed: false }).unwrap();
        let Some(Pick::NotComparable { why, testbeds }) = got.pick("baseline") else { panic!("{got:?}") };
        assert!(why.contains("before testbeds"), "{why}");
        assert_eq!(testbeds, &vec!["unknown".to_string()]);
    }

    #[test]
    fn a_broken_file_of_another_testbed_is_still_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let local = testbed("local");
        std::fs::create_dir_all(dir.path().join("docker-x")).unwrap();
        std::fs::write(dir.path().join("docker-x").join("baseline.json"), "{\n  \"schema_version\": 1,\n  \"suite\": 7\n}\n").unwrap();
        let suites = vec![("baseline".to_string(), "h1".to_string())];
        let err = load(dir.path(), Want { testbed: &local, suites: &suites, any_testbed: false }).unwrap_err().to_string();
        assert!(err.contains("docker-x") && err.contains("baseline.json:3:"), "{err}");
    }
}

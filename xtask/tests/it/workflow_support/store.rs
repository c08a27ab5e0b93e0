//! What GitHub remembers between runs: workflow runs, their artifacts, the Actions cache and
//! whether Pages is enabled.
//!
//! One store per scenario, shared by the harness (which writes what `upload-artifact` uploads
//! and reads what `download-artifact` asks for) and the fake GitHub API (which lists the runs and
//! artifacts and serves an artifact as the zip GitHub would). So a run can use what an earlier
//! run uploaded, through either path, as on GitHub. Artifact and cache files live on disk, under
//! the store's folder, so a 70 MB binary is not held in memory.
//!
//! Caches are GitHub's: saved once under a key and never changed (a second save of the same key
//! is refused), with a version made of the paths as written (a restore with other paths does not
//! see them), and scoped to the ref that saved them (a run sees its own ref's and the default
//! branch's).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use anyhow::{Context, Result, bail};

/// A completed workflow run, as the Actions API lists it.
#[derive(Debug, Clone)]
pub struct WorkflowRun {
    pub id: u64,
    /// The workflow's file name: `perf-nightly.yml`.
    pub workflow: String,
    pub event: String,
    pub branch: String,
    /// `success`, `failure`…
    pub conclusion: String,
    pub head_sha: String,
}

/// One artifact of one run.
#[derive(Debug, Clone)]
pub struct Artifact {
    pub id: u64,
    pub run_id: u64,
    pub name: String,
    /// The artifact's files, relative paths kept.
    pub dir: PathBuf,
    pub expired: bool,
}

impl Artifact {
    /// `(path inside the artifact, file on disk)`, sorted.
    pub fn files(&self) -> Result<Vec<(String, PathBuf)>> {
        let mut out = Vec::new();
        walk(&self.dir, &self.dir, &mut out)?;
        out.sort();
        Ok(out)
    }

    pub fn size(&self) -> u64 {
        self.files().unwrap_or_default().iter().map(|(_, p)| p.metadata().map_or(0, |m| m.len())).sum()
    }

    /// The artifact as GitHub serves it: a zip of its files.
    pub fn zip(&self) -> Result<Vec<u8>> {
        let mut writer = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        let options = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
        for (name, path) in self.files()? {
            writer.start_file(name, options)?;
            writer.write_all(&std::fs::read(&path)?)?;
        }
        Ok(writer.finish()?.into_inner())
    }
}

fn walk(root: &Path, dir: &Path, out: &mut Vec<(String, PathBuf)>) -> Result<()> {
    for entry in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let path = entry?.path();
        if path.is_dir() {
            walk(root, &path, out)?;
        } else {
            let rel = path.strip_prefix(root)?.to_string_lossy().into_owned();
            out.push((rel, path));
        }
    }
    Ok(())
}

/// One saved cache.
#[derive(Debug, Clone)]
pub struct CacheEntry {
    pub key: String,
    /// The paths as the workflow wrote them, each job's own folders named alike in every job
    /// (`~/…`, `$RUNNER_TEMP/…`, relative to the workspace): GitHub's cache version.
    pub version: Vec<String>,
    /// The ref whose run saved it (`refs/heads/main`, `refs/pull/7/merge`).
    pub scope: String,
    /// One entry per path of `version`, by index (`0`, `1`…): the saved file or folder itself;
    /// absent when that path did not exist.
    pub dir: PathBuf,
}

#[derive(Debug)]
pub struct Store {
    root: PathBuf,
    pub runs: Vec<WorkflowRun>,
    pub artifacts: Vec<Artifact>,
    /// What `actions/deploy-pages` deployed: the artifacts' ids, oldest first.
    pub pages_deployments: Vec<u64>,
    /// Settings → Pages → Source is "GitHub Actions" (true by default); when false,
    /// `actions/configure-pages` fails as it does on a repository without Pages.
    pub pages_enabled: bool,
    /// Saved caches, oldest first.
    pub caches: Vec<CacheEntry>,
    next_artifact_id: u64,
}

/// The store, shared with the fake API's server thread.
#[derive(Clone, Debug)]
pub struct SharedStore(Arc<Mutex<Store>>);

impl SharedStore {
    pub fn new(root: PathBuf) -> SharedStore {
        SharedStore(Arc::new(Mutex::new(Store {
            root,
            runs: Vec::new(),
            artifacts: Vec::new(),
            pages_deployments: Vec::new(),
            pages_enabled: true,
            caches: Vec::new(),
            next_artifact_id: 4_470_000_100,
        })))
    }

    pub fn lock(&self) -> MutexGuard<'_, Store> {
        self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Store {
    pub fn add_run(&mut self, run: WorkflowRun) {
        self.runs.retain(|r| r.id != run.id);
        self.runs.push(run);
    }

    /// Stores an artifact of `run_id` from `(path inside the artifact, content)` pairs.
    /// GitHub refuses a second artifact of the same name in one run.
    pub fn add_artifact(&mut self, run_id: u64, name: &str, files: &[(String, Content)]) -> Result<u64> {
        if self.find(run_id, name).is_some() {
            bail!("run {run_id} already has an artifact named `{name}` (artifacts are immutable; `overwrite` is not set)");
        }
        let id = self.next_artifact_id;
        self.next_artifact_id += 1;
        let dir = self.root.join(id.to_string());
        for (rel, content) in files {
            let dest = dir.join(rel);
            std::fs::create_dir_all(dest.parent().expect("a file has a parent"))?;
            match content {
                Content::Bytes(bytes) => std::fs::write(&dest, bytes)?,
                Content::File(src) => {
                    std::fs::copy(src, &dest).with_context(|| format!("copying {}", src.display()))?;
                }
            }
        }
        std::fs::create_dir_all(&dir)?;
        self.artifacts.push(Artifact { id, run_id, name: name.to_string(), dir, expired: false });
        Ok(id)
    }

    pub fn find(&self, run_id: u64, name: &str) -> Option<&Artifact> {
        self.artifacts.iter().find(|a| a.run_id == run_id && a.name == name)
    }

    pub fn by_id(&self, id: u64) -> Option<&Artifact> {
        self.artifacts.iter().find(|a| a.id == id)
    }

    pub fn of_run(&self, run_id: u64) -> Vec<&Artifact> {
        self.artifacts.iter().filter(|a| a.run_id == run_id).collect()
    }

    /// A fresh folder for a cache's files.
    pub fn new_cache_dir(&mut self) -> PathBuf {
        self.root.join("caches").join(self.caches.len().to_string())
    }

    /// The cache a restore of `key` (then `restore_keys`) with these paths finds, as
    /// `actions/cache` looks: in each scope in turn (the run's ref, then the default branch),
    /// the exact key, then the newest entry whose key starts with the key, then with each
    /// restore key in order. `true` with an exact match (`cache-hit`).
    pub fn find_cache(&self, key: &str, restore_keys: &[String], version: &[String], scopes: &[String]) -> Option<(CacheEntry, bool)> {
        for scope in scopes {
            // Newest first.
            let candidates: Vec<&CacheEntry> = self.caches.iter().rev().filter(|c| c.scope == *scope && c.version == version).collect();
            if let Some(exact) = candidates.iter().copied().find(|c| c.key == key) {
                return Some((exact.clone(), true));
            }
            for prefix in std::iter::once(key).chain(restore_keys.iter().map(String::as_str)) {
                if let Some(found) = candidates.iter().copied().find(|c| c.key.starts_with(prefix)) {
                    return Some((found.clone(), false));
                }
            }
        }
        None
    }
}

/// Copies a file or a folder (recursively) to `to`, making `to`'s parents, replacing files
/// that are there and keeping the others (as a cache restore extracts over what exists).
/// Permissions are kept.
pub fn copy_tree(from: &Path, to: &Path) -> Result<()> {
    if from.is_dir() {
        std::fs::create_dir_all(to).with_context(|| format!("creating {}", to.display()))?;
        for entry in std::fs::read_dir(from).with_context(|| format!("reading {}", from.display()))? {
            let entry = entry?;
            copy_tree(&entry.path(), &to.join(entry.file_name()))?;
        }
    } else {
        if let Some(parent) = to.parent() {
            std::fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
        }
        if to.is_file() {
            // A read-only file is replaced, not written through.
            std::fs::remove_file(to)?;
        }
        std::fs::copy(from, to).with_context(|| format!("copying {} to {}", from.display(), to.display()))?;
    }
    Ok(())
}

/// A file's content for [`Store::add_artifact`].
#[derive(Debug, Clone)]
pub enum Content {
    Bytes(Vec<u8>),
    File(PathBuf),
}

impl From<&str> for Content {
    fn from(text: &str) -> Content {
        Content::Bytes(text.as_bytes().to_vec())
    }
}

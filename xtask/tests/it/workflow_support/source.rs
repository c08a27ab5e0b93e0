//! The repository the runs check out: this repository's files as committed at HEAD, with the
//! working tree's `perf.toml`, `results/baseline/` and `.github/` laid over them (so the test
//! means something before those changes are committed), in a fresh git repository of its own.
//! A pull request gets one more commit on top, standing in for GitHub's merge commit, so that
//! `HEAD^1` is the base branch as on GitHub.
//!
//! `actions/checkout` clones it with the step's `fetch-depth` (default 1, as on GitHub): a
//! workflow that needs `HEAD^1` and forgot `fetch-depth: 2` fails here too. Nothing here touches
//! the real repository beyond reading it (`git archive HEAD`).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail};

/// The working tree's paths that replace HEAD's in the checked-out copy.
const OVERLAY: &[&str] = &["perf.toml", "results/baseline", ".github"];

/// A git repository playing the part of `acme/shop` on GitHub.
#[derive(Debug)]
pub struct SourceRepo {
    pub dir: PathBuf,
    /// The default branch's head (`github.sha` of a schedule or a dispatch).
    pub main_sha: String,
    /// The pull request's merge commit, made on first use.
    merge_sha: Option<String>,
}

impl SourceRepo {
    /// Builds the repository in `dir` from `repo_root` (this repository).
    /// Without `stored_baselines`, `results/baseline/` is left out.
    pub fn create(repo_root: &Path, dir: &Path, stored_baselines: bool) -> Result<SourceRepo> {
        std::fs::create_dir_all(dir)?;
        extract_head(repo_root, dir)?;
        for rel in OVERLAY {
            let (from, to) = (repo_root.join(rel), dir.join(rel));
            if to.is_dir() {
                std::fs::remove_dir_all(&to)?;
            } else if to.exists() {
                std::fs::remove_file(&to)?;
            }
            if from.exists() {
                copy_tree(&from, &to).with_context(|| format!("copying {}", from.display()))?;
            }
        }
        if !stored_baselines && dir.join("results/baseline").exists() {
            std::fs::remove_dir_all(dir.join("results/baseline"))?;
        }
        git(dir, &["init", "--quiet", "--initial-branch=main"])?;
        git(dir, &["add", "--all"])?;
        git(
            dir,
            &[
                "commit",
                "--quiet",
                "--message",
                "HEAD of the real repository, with the working tree's perf.toml, results/baseline and .github",
            ],
        )?;
        let main_sha = git(dir, &["rev-parse", "HEAD"])?;
        Ok(SourceRepo { dir: dir.to_path_buf(), main_sha, merge_sha: None })
    }

    /// The merge commit of pull request #7, on a branch of its own: its first parent is main.
    pub fn merge_commit(&mut self) -> Result<String> {
        if let Some(sha) = &self.merge_sha {
            return Ok(sha.clone());
        }
        git(&self.dir, &["switch", "--quiet", "--create", "pull/7/merge"])?;
        std::fs::write(self.dir.join("PULL_REQUEST_CHANGE.md"), "The pull request's change (a stand-in).\n")?;
        git(&self.dir, &["add", "PULL_REQUEST_CHANGE.md"])?;
        git(&self.dir, &["commit", "--quiet", "--message", "Merge 9f0c2b7e into ea6cd405 (stand-in for GitHub's merge commit)"])?;
        git(&self.dir, &["switch", "--quiet", "main"])?;
        let sha = git(&self.dir, &["rev-parse", "pull/7/merge"])?;
        self.merge_sha = Some(sha.clone());
        Ok(sha)
    }

    /// What `actions/checkout` does: clones `sha` into the empty `workspace` with `depth`
    /// commits of history (0: all); on `main`, or detached for a pull request's merge commit.
    pub fn checkout(&self, workspace: &Path, sha: &str, depth: u64) -> Result<()> {
        let branch = if Some(sha) == self.merge_sha.as_deref() { "pull/7/merge" } else { "main" };
        let url = format!("file://{}", self.dir.display());
        let mut args = vec!["clone".to_string(), "--quiet".into(), "--branch".into(), branch.into()];
        if depth > 0 {
            args.extend(["--depth".into(), depth.to_string()]);
        }
        args.extend([url, workspace.display().to_string()]);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        git(workspace.parent().expect("the workspace has a parent"), &args)?;
        if branch != "main" {
            git(workspace, &["checkout", "--quiet", "--detach"])?;
        }
        let head = git(workspace, &["rev-parse", "HEAD"])?;
        if head != sha {
            bail!("checked out {head}, expected {sha}");
        }
        Ok(())
    }
}

/// `git archive HEAD | tar -x`: the committed files, nothing else.
fn extract_head(repo_root: &Path, dir: &Path) -> Result<()> {
    let mut archive = Command::new("git")
        .arg("-C")
        .arg(repo_root)
        .args(["archive", "--format=tar", "HEAD"])
        .stdout(Stdio::piped())
        .spawn()
        .context("running git archive")?;
    let tar =
        Command::new("tar").arg("-x").arg("-C").arg(dir).stdin(archive.stdout.take().expect("piped")).status().context("running tar")?;
    if !archive.wait()?.success() || !tar.success() {
        bail!("git archive HEAD | tar -x into {} failed", dir.display());
    }
    Ok(())
}

fn copy_tree(from: &Path, to: &Path) -> Result<()> {
    if from.is_dir() {
        std::fs::create_dir_all(to)?;
        for entry in std::fs::read_dir(from)? {
            let entry = entry?;
            copy_tree(&entry.path(), &to.join(entry.file_name()))?;
        }
    } else {
        std::fs::copy(from, to)?;
    }
    Ok(())
}

/// Runs git in `dir` with a fixed identity and no user configuration; returns stdout.
pub fn git(dir: &Path, args: &[&str]) -> Result<String> {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(["-c", "user.name=harness", "-c", "user.email=harness@example.invalid", "-c", "commit.gpgsign=false"])
        .args(args)
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .output()
        .with_context(|| format!("running git {}", args.join(" ")))?;
    if !out.status.success() {
        bail!("git {} in {}: {}", args.join(" "), dir.display(), String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

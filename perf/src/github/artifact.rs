//! The baseline from CI: the artifact of the newest successful *scheduled* nightly run on the
//! default branch that carries it (the caller names it with the testbed, so a run on another
//! CPU model or backend is never picked; a run started by hand never counts).
//!
//! Found through the Actions API (repository → default branch → successful scheduled runs of
//! the nightly workflow on it → that run's artifacts), downloaded as a zip and unpacked into a
//! temporary folder beside the destination, then renamed into place, so the destination is
//! either the old baseline or the complete new one, never half of each. Entries that could
//! write outside the folder (absolute paths, `..`, links) are refused, and the archive is
//! bounded in size and entry count.

use std::io::{Cursor, Read};
use std::path::{Component, Path, PathBuf};

use http_body_util::BodyExt;

use super::client::client;
use super::context::GithubContext;
use super::error::GithubError;
use super::retry::with_retry;

/// Successful runs looked at, newest first, before giving up.
const MAX_RUNS: u8 = 10;
/// Largest artifact downloaded, compressed.
const MAX_DOWNLOAD_BYTES: usize = 256 * 1024 * 1024;
/// Largest total unpacked size.
const MAX_UNPACKED_BYTES: u64 = 1024 * 1024 * 1024;
/// Most entries in one artifact.
const MAX_ENTRIES: usize = 10_000;

/// Downloads artifact `artifact_name` of the newest successful scheduled run of
/// `workflow_file` (`perf-nightly.yml`) on the repository's default branch that has it and unpacks it into `dest_dir`,
/// replacing what was there. Returns the folder holding the `<suite>.json` summaries.
pub async fn download_baseline_artifact(
    ctx: &GithubContext,
    artifact_name: &str,
    workflow_file: &str,
    dest_dir: &Path,
) -> Result<PathBuf, GithubError> {
    const NEED: &str = "needed to download the baseline artifact";
    check_workflow_file(workflow_file)?;
    let repo = ctx.repo(NEED)?;
    let crab = client(ctx, NEED)?;
    let (crab, owner, name) = (&crab, repo.owner.as_str(), repo.name.as_str());

    let repository = with_retry(ctx, "get repository", move || async move { crab.repos(owner, name).get().await }).await?;
    let branch = repository
        .default_branch
        .ok_or_else(|| GithubError::Unexpected { operation: "get repository", message: "no default_branch in the repository".into() })?;
    let branch = branch.as_str();

    let runs = with_retry(ctx, "list workflow runs", move || async move {
        crab.workflows(owner, name)
            .list_runs(workflow_file)
            .branch(branch)
            .event("schedule")
            .status("success")
            .exclude_pull_requests(true)
            .per_page(MAX_RUNS)
            .send()
            .await
    })
    .await?;
    let runs: Vec<_> = runs
        .items
        .into_iter()
        .filter(|r| r.conclusion.as_deref() == Some("success") && r.head_branch == branch && r.event == "schedule")
        .collect();

    for run in &runs {
        let run_id = run.id;
        let listed = with_retry(ctx, "list run artifacts", move || async move {
            crab.actions().list_workflow_run_artifacts(owner, name, run_id).per_page(100u8).send().await
        })
        .await?;
        let Some(page) = listed.value else { continue };
        let Some(artifact) = page.items.into_iter().find(|a| a.name == artifact_name && !a.expired) else {
            continue;
        };
        if artifact.size_in_bytes > MAX_DOWNLOAD_BYTES {
            return Err(GithubError::BadArchive {
                artifact: artifact_name.to_owned(),
                message: format!("{} bytes, larger than the {MAX_DOWNLOAD_BYTES}-byte limit", artifact.size_in_bytes),
            });
        }
        tracing::info!("baseline: artifact {artifact_name} of run {run_id} ({}) on {branch}", run.head_sha);
        let route = format!("/repos/{owner}/{name}/actions/artifacts/{}/zip", artifact.id);
        let route = route.as_str();
        let bytes = with_retry(ctx, "download artifact", move || async move { download_limited(crab, route, MAX_DOWNLOAD_BYTES).await })
            .await?
            .ok_or_else(|| GithubError::BadArchive {
                artifact: artifact_name.to_owned(),
                message: format!("download larger than the {MAX_DOWNLOAD_BYTES}-byte limit"),
            })?;
        return unpack_zip(&bytes, artifact_name, dest_dir);
    }
    Err(GithubError::ArtifactNotFound {
        workflow: workflow_file.to_owned(),
        branch: branch.to_owned(),
        artifact: artifact_name.to_owned(),
        runs_checked: runs.len(),
    })
}

/// A workflow is named by its file name or numeric id; both end up in a URL path.
fn check_workflow_file(workflow_file: &str) -> Result<(), GithubError> {
    let ok = !workflow_file.is_empty()
        && !workflow_file.starts_with('.')
        && workflow_file.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(GithubError::InvalidEnv {
            name: "workflow file",
            reason: format!("{workflow_file:?}: expected a file name such as perf-nightly.yml"),
        })
    }
}

/// GETs `route` (GitHub answers with a redirect to the blob store, which octocrab follows
/// without the token), collecting at most `limit` bytes: `Ok(None)` when there were more.
async fn download_limited(crab: &octocrab::Octocrab, route: &str, limit: usize) -> Result<Option<Vec<u8>>, octocrab::Error> {
    let response = octocrab::map_github_error(crab._get(route).await?).await?;
    let mut body = response.into_body();
    let mut out = Vec::new();
    while let Some(frame) = body.frame().await {
        if let Ok(data) = frame?.into_data() {
            if out.len() + data.len() > limit {
                return Ok(None);
            }
            out.extend_from_slice(&data);
        }
    }
    Ok(Some(out))
}

/// Unpacks a zip into `dest_dir` atomically (temporary folder beside it, then rename) and
/// returns the folder holding the `.json` summaries: `dest_dir` itself, or the shallowest
/// folder below it that holds some.
pub fn unpack_zip(bytes: &[u8], artifact_name: &str, dest_dir: &Path) -> Result<PathBuf, GithubError> {
    let bad = |message: String| GithubError::BadArchive { artifact: artifact_name.to_owned(), message };
    let parent = match dest_dir.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
        _ => PathBuf::from("."),
    };
    std::fs::create_dir_all(&parent).map_err(|e| GithubError::io("cannot create", &parent, e))?;
    let staging = tempfile::Builder::new()
        .prefix(".perf-artifact-")
        .tempdir_in(&parent)
        .map_err(|e| GithubError::io("cannot create a folder in", &parent, e))?;

    let mut archive = zip::ZipArchive::new(Cursor::new(bytes)).map_err(|e| bad(format!("not a zip: {e}")))?;
    if archive.len() > MAX_ENTRIES {
        return Err(bad(format!("{} entries, more than {MAX_ENTRIES}", archive.len())));
    }
    let mut unpacked: u64 = 0;
    for index in 0..archive.len() {
        let mut entry = archive.by_index(index).map_err(|e| bad(format!("entry {index}: {e}")))?;
        let raw_name = String::from_utf8_lossy(entry.name_raw()).into_owned();
        let relative = safe_relative_path(&raw_name).map_err(|reason| GithubError::UnsafeArchive {
            artifact: artifact_name.to_owned(),
            entry: raw_name.clone(),
            reason,
        })?;
        if entry.is_symlink() {
            return Err(GithubError::UnsafeArchive {
                artifact: artifact_name.to_owned(),
                entry: raw_name,
                reason: "symbolic links are not unpacked",
            });
        }
        let target = staging.path().join(&relative);
        if entry.is_dir() {
            std::fs::create_dir_all(&target).map_err(|e| GithubError::io("cannot create", &target, e))?;
            continue;
        }
        if let Some(dir) = target.parent() {
            std::fs::create_dir_all(dir).map_err(|e| GithubError::io("cannot create", dir, e))?;
        }
        let mut file = std::fs::File::create(&target).map_err(|e| GithubError::io("cannot create", &target, e))?;
        let room = MAX_UNPACKED_BYTES - unpacked;
        let written = std::io::copy(&mut (&mut entry).take(room + 1), &mut file).map_err(|e| bad(format!("entry {raw_name:?}: {e}")))?;
        if written > room {
            return Err(bad(format!("unpacks to more than {MAX_UNPACKED_BYTES} bytes")));
        }
        unpacked += written;
    }

    let summaries = find_summaries(staging.path())
        .ok_or_else(|| bad("holds no .json summaries".into()))?
        .strip_prefix(staging.path())
        .map(Path::to_owned)
        .unwrap_or_default();
    replace_dir(staging.keep(), dest_dir)?;
    Ok(dest_dir.join(summaries))
}

/// The entry's path, if it stays inside the folder: relative, no `..`, no drive or root.
fn safe_relative_path(name: &str) -> Result<PathBuf, &'static str> {
    if name.starts_with('/') || name.starts_with('\\') || name.as_bytes().get(1) == Some(&b':') {
        return Err("absolute paths are not unpacked");
    }
    if name.contains('\0') {
        return Err("names with NUL bytes are not unpacked");
    }
    let mut path = PathBuf::new();
    for part in name.split(['/', '\\']) {
        match part {
            "" | "." => {}
            ".." => return Err("paths with '..' are not unpacked"),
            _ => path.push(part),
        }
    }
    // Belt and braces: the joined path must be made of plain names only.
    if path.as_os_str().is_empty() || !path.components().all(|c| matches!(c, Component::Normal(_))) {
        return Err("the entry has no usable name");
    }
    Ok(path)
}

/// The shallowest folder under `root` (itself included) holding a `.json` file.
fn find_summaries(root: &Path) -> Option<PathBuf> {
    let mut level = vec![root.to_owned()];
    for _depth in 0..4 {
        let mut next = Vec::new();
        for dir in &level {
            let mut entries: Vec<_> = std::fs::read_dir(dir).ok()?.filter_map(Result::ok).map(|e| e.path()).collect();
            entries.sort();
            if entries.iter().any(|p| p.is_file() && p.extension().is_some_and(|x| x == "json")) {
                return Some(dir.clone());
            }
            next.extend(entries.into_iter().filter(|p| p.is_dir()));
        }
        level = next;
    }
    None
}

/// Moves `staged` to `dest`, replacing `dest` if it exists; on failure `dest` is unchanged.
fn replace_dir(staged: PathBuf, dest: &Path) -> Result<(), GithubError> {
    let cleanup = |e: GithubError| {
        let _ = std::fs::remove_dir_all(&staged);
        e
    };
    if !dest.exists() {
        return std::fs::rename(&staged, dest).map_err(|e| cleanup(GithubError::io("cannot move the artifact to", dest, e)));
    }
    let parent = staged.parent().unwrap_or(Path::new("."));
    let graveyard = tempfile::Builder::new()
        .prefix(".perf-artifact-old-")
        .tempdir_in(parent)
        .map_err(|e| cleanup(GithubError::io("cannot create a folder in", parent, e)))?;
    let old = graveyard.path().join("old");
    std::fs::rename(dest, &old).map_err(|e| cleanup(GithubError::io("cannot move aside", dest, e)))?;
    if let Err(e) = std::fs::rename(&staged, dest) {
        let _ = std::fs::rename(&old, dest);
        return Err(cleanup(GithubError::io("cannot move the artifact to", dest, e)));
    }
    // `graveyard` drops here and deletes the old baseline.
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn safe_paths_stay_inside() {
        assert_eq!(safe_relative_path("baseline.json").unwrap(), PathBuf::from("baseline.json"));
        assert_eq!(safe_relative_path("./sub/concurrent.json").unwrap(), PathBuf::from("sub/concurrent.json"));
        for bad in ["/etc/passwd", "\\x", "C:/x", "../x.json", "a/../../x", "a/..", "a\\..\\x", "", "./"] {
            assert!(safe_relative_path(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn workflow_file_must_be_a_plain_name() {
        assert!(check_workflow_file("perf-nightly.yml").is_ok());
        assert!(check_workflow_file("12345").is_ok());
        for bad in ["", "../x.yml", "a/b.yml", ".hidden", "x?y"] {
            assert!(check_workflow_file(bad).is_err(), "{bad:?} accepted");
        }
    }
}

//! The actions the workflows use, done by the harness: `actions/checkout`, `actions/cache`
//! (and `/restore`, `/save`), `actions/upload-artifact`, `actions/download-artifact`, and the
//! Pages actions `actions/configure-pages`, `actions/upload-pages-artifact`,
//! `actions/deploy-pages`. Any other action is an error: the harness does not know it.
//!
//! Each action's `with:` is checked against the inputs the action declares (GitHub only warns
//! about an unexpected input, and the action then ignores it: a typo that is best caught here).
//!
//! - checkout clones the scenario's repository with the step's `fetch-depth`, once per job;
//! - cache (`actions/cache`, `/restore`, `/save`) keeps what it saves in the store, as GitHub's
//!   cache does: a save copies the `path`s that exist under `key` (refused, with the action's
//!   warning, when that key is saved already: caches are immutable), a restore copies back the
//!   exact `key`'s entry (`cache-hit: true`) or the newest whose key starts with the key or a
//!   `restore-keys` line (`cache-hit: false`), from the run's own ref or the default branch, with
//!   the same paths. A path under the job's `HOME`, `RUNNER_TEMP` or workspace is the same path
//!   in every job, as on a hosted runner. `actions/cache` saves after the job's last step when
//!   the job succeeded and the restore was no exact hit (its post step, `Post <name>`). Plain
//!   paths only (no globs); a key with a comma is refused as GitHub refuses it;
//! - upload-artifact matches `path` (one glob per line, `*` within a name, a folder takes its
//!   files, hidden files left out) and stores the files under the run and `name`, named
//!   relative to the patterns' common folder as the action does. `if-no-files-found: error` with
//!   nothing matched fails, unless the gate ran in check mode in this job: then nothing was
//!   written on purpose, and the upload is recorded as checked only;
//! - download-artifact takes `name` from this run, or from `run-id` when a `github-token` is
//!   given (without one the action ignores `run-id`, as the real one does); a missing artifact
//!   fails the step. Files are written without their execute bit, as from a zip;
//! - configure-pages wants the job's token to read Pages (`pages: read` or `write`) and gives
//!   the site's URLs of `acme/shop`; it fails as on GitHub when the scenario turned Pages off
//!   (`Store::pages_enabled`);
//! - upload-pages-artifact archives its `path` folder with the action's own `tar` command
//!   (hidden files, `.git` and `.github` left out) and stores `artifact.tar` as the artifact
//!   `name` (`github-pages`);
//! - deploy-pages wants `pages: write` and `id-token: write`, fails as the action does when
//!   this run has no such artifact, and records the deployment in the store.

use std::os::unix::fs::PermissionsExt;
use std::path::{Component, Path, PathBuf};

use anyhow::{Context, Result, anyhow, bail};
use serde_json::{Map, Value, json};

use super::expr::to_text;
use super::github::REPO;
use super::steps::{JobContext, JobState, StepResult};
use super::store::{CacheEntry, Content, copy_tree};

const CHECKOUT_INPUTS: &[&str] = &[
    "repository",
    "ref",
    "token",
    "ssh-key",
    "ssh-known-hosts",
    "ssh-strict",
    "ssh-user",
    "persist-credentials",
    "path",
    "clean",
    "filter",
    "sparse-checkout",
    "sparse-checkout-cone-mode",
    "fetch-depth",
    "fetch-tags",
    "show-progress",
    "lfs",
    "submodules",
    "set-safe-directory",
    "github-server-url",
];
const CACHE_INPUTS: &[&str] =
    &["path", "key", "restore-keys", "upload-chunk-size", "enableCrossOsArchive", "fail-on-cache-miss", "lookup-only", "save-always"];
const CACHE_RESTORE_INPUTS: &[&str] = &["path", "key", "restore-keys", "enableCrossOsArchive", "fail-on-cache-miss", "lookup-only"];
const CACHE_SAVE_INPUTS: &[&str] = &["path", "key", "upload-chunk-size", "enableCrossOsArchive"];
const UPLOAD_INPUTS: &[&str] =
    &["name", "path", "if-no-files-found", "retention-days", "compression-level", "overwrite", "include-hidden-files"];
const DOWNLOAD_INPUTS: &[&str] = &["name", "path", "pattern", "merge-multiple", "github-token", "repository", "run-id", "artifact-ids"];
const CONFIGURE_PAGES_INPUTS: &[&str] = &["static_site_generator", "generator_config_file", "token", "enablement"];
const UPLOAD_PAGES_INPUTS: &[&str] = &["name", "path", "retention-days", "include-hidden-files"];
const DEPLOY_PAGES_INPUTS: &[&str] = &["token", "timeout", "error_count", "reporting_interval", "artifact_name", "preview"];

/// The Pages site of `acme/shop`.
pub const PAGES_URL: &str = "https://acme.github.io/shop/";

/// What an `upload-artifact` step did.
#[derive(Debug, Clone)]
pub struct Upload {
    pub name: String,
    /// The files' paths inside the artifact.
    pub files: Vec<String>,
    /// The same files, relative to the workspace when inside it.
    pub sources: Vec<String>,
    /// Nothing matched, but the gate only checked in this job: the upload is not judged.
    pub checked_only: bool,
}

/// Runs the action `uses` with its evaluated `with:`.
pub fn run_action(ctx: &JobContext<'_>, state: &mut JobState, uses: &str, with: &Map<String, Value>) -> Result<StepResult> {
    let (action, version) = uses.split_once('@').ok_or_else(|| anyhow!("`{uses}`: an action needs @version"))?;
    if version.is_empty() {
        bail!("`{uses}`: empty version");
    }
    let input = |k: &str| with.get(k).map(to_text).unwrap_or_default();
    match action.to_ascii_lowercase().as_str() {
        "actions/checkout" => {
            check_inputs(uses, with, CHECKOUT_INPUTS)?;
            checkout(ctx, state, with)
        }
        "actions/cache" | "actions/cache/restore" | "actions/cache/save" => {
            let known = match action {
                "actions/cache/restore" => CACHE_RESTORE_INPUTS,
                "actions/cache/save" => CACHE_SAVE_INPUTS,
                _ => CACHE_INPUTS,
            };
            check_inputs(uses, with, known)?;
            if input("key").trim().is_empty() || input("path").trim().is_empty() {
                bail!("`{uses}` needs a non-empty `key` and `path`");
            }
            if action == "actions/cache/save" {
                return cache_save(ctx, &input("key"), &input("path"));
            }
            let mut restored = cache_restore(ctx, with)?;
            // actions/cache's post step saves when the job succeeded and the key missed.
            if action == "actions/cache" && restored.ok && restored.outputs.get("cache-hit") != Some(&json!("true")) {
                restored.post = Some(PostSave { key: input("key"), path: input("path") });
            }
            Ok(restored)
        }
        "actions/upload-artifact" => {
            check_inputs(uses, with, UPLOAD_INPUTS)?;
            upload(ctx, with)
        }
        "actions/download-artifact" => {
            check_inputs(uses, with, DOWNLOAD_INPUTS)?;
            download(ctx, with)
        }
        "actions/configure-pages" => {
            check_inputs(uses, with, CONFIGURE_PAGES_INPUTS)?;
            configure_pages(ctx)
        }
        "actions/upload-pages-artifact" => {
            check_inputs(uses, with, UPLOAD_PAGES_INPUTS)?;
            upload_pages(ctx, with)
        }
        "actions/deploy-pages" => {
            check_inputs(uses, with, DEPLOY_PAGES_INPUTS)?;
            deploy_pages(ctx, with)
        }
        _ => bail!("the harness does not know action {uses}"),
    }
}

/// A save `actions/cache` does after the job's last step (its post step).
#[derive(Debug, Clone)]
pub struct PostSave {
    pub key: String,
    pub path: String,
}

/// The cache's paths: each line of `path` as the same name in every job (the version) and as
/// this job's path.
fn cache_paths(ctx: &JobContext<'_>, path: &str) -> Result<Vec<(String, PathBuf)>> {
    let lines: Vec<&str> = path.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
    let mut out = Vec::new();
    for line in lines {
        if line.starts_with('!') || line.contains(['*', '?', '[']) {
            bail!("cache path `{line}`: the harness caches plain paths only");
        }
        let resolved = resolve(ctx, line);
        let same_everywhere = |dir: &Path, name: &str| {
            resolved
                .strip_prefix(dir)
                .ok()
                .map(|rest| if rest.as_os_str().is_empty() { name.to_string() } else { format!("{name}/{}", rest.display()) })
        };
        let version = if line.starts_with('~') {
            line.trim_end_matches('/').to_string()
        } else {
            same_everywhere(&ctx.dirs.home, "~")
                .or_else(|| same_everywhere(&ctx.dirs.temp, "$RUNNER_TEMP"))
                .or_else(|| same_everywhere(&ctx.dirs.workspace, "$GITHUB_WORKSPACE"))
                .unwrap_or_else(|| resolved.display().to_string())
        };
        out.push((version, resolved));
    }
    Ok(out)
}

/// GitHub refuses a key with a comma, or longer than 512 characters.
fn check_cache_key(key: &str) -> Option<String> {
    if key.contains(',') {
        Some(format!("Key Validation Error: {key} cannot contain commas."))
    } else if key.len() > 512 {
        Some(format!("Key Validation Error: {key} cannot be larger than 512 characters."))
    } else {
        None
    }
}

/// The refs whose caches this run sees: its own, then the default branch's.
fn cache_scopes(ctx: &JobContext<'_>) -> Vec<String> {
    let own = ctx.run.event.git_ref.clone();
    let default = "refs/heads/main".to_string();
    if own == default { vec![own] } else { vec![own, default] }
}

fn cache_restore(ctx: &JobContext<'_>, with: &Map<String, Value>) -> Result<StepResult> {
    let input = |k: &str| with.get(k).map(to_text).unwrap_or_default();
    let key = input("key");
    if let Some(error) = check_cache_key(&key) {
        return failed(format!("::error::{error}\n"));
    }
    let restore_keys: Vec<String> = input("restore-keys").lines().map(str::trim).filter(|l| !l.is_empty()).map(String::from).collect();
    let paths = cache_paths(ctx, &input("path"))?;
    let version: Vec<String> = paths.iter().map(|(v, _)| v.clone()).collect();
    let found = ctx.run.harness.store.lock().find_cache(&key, &restore_keys, &version, &cache_scopes(ctx));
    let mut outputs = Map::from_iter([("cache-primary-key".to_string(), json!(key))]);
    let Some((entry, exact)) = found else {
        outputs.insert("cache-hit".into(), json!("false"));
        outputs.insert("cache-matched-key".into(), json!(""));
        if input("fail-on-cache-miss") == "true" {
            let log = format!("::error::Failed to restore cache entry. Exiting as fail-on-cache-miss is set. Input key: {key}\n");
            return Ok(StepResult { ok: false, outputs, log, ..StepResult::default() });
        }
        return Ok(StepResult { ok: true, outputs, log: format!("Cache not found for input keys: {key}\n"), ..StepResult::default() });
    };
    if input("lookup-only") != "true" {
        for (index, (_, path)) in paths.iter().enumerate() {
            let saved = entry.dir.join(index.to_string());
            if saved.exists() {
                copy_tree(&saved, path)?;
            }
        }
    }
    outputs.insert("cache-hit".into(), json!(exact.to_string()));
    outputs.insert("cache-matched-key".into(), json!(entry.key));
    let log = format!("Cache restored from key: {} (saved by {})\n", entry.key, entry.scope);
    Ok(StepResult { ok: true, outputs, log, ..StepResult::default() })
}

/// Saves `path` under `key`, as `actions/cache/save` (or `actions/cache`'s post step) does.
pub fn cache_save(ctx: &JobContext<'_>, key: &str, path: &str) -> Result<StepResult> {
    if let Some(error) = check_cache_key(key) {
        return failed(format!("::error::{error}\n"));
    }
    let paths = cache_paths(ctx, path)?;
    let version: Vec<String> = paths.iter().map(|(v, _)| v.clone()).collect();
    let scope = ctx.run.event.git_ref.clone();
    let ok = |log: String| Ok(StepResult { ok: true, log, ..StepResult::default() });
    if !paths.iter().any(|(_, p)| p.exists()) {
        return ok(
            "::warning::Path Validation Error: Path(s) specified in the action for caching do(es) not exist, hence no cache is being saved.\n"
                .into(),
        );
    }
    let dir = {
        let mut store = ctx.run.harness.store.lock();
        if store.caches.iter().any(|c| c.key == key && c.version == version && c.scope == scope) {
            return ok(format!(
                "::warning::Failed to save: Unable to reserve cache with key {key}, another job may be creating this cache.\n"
            ));
        }
        store.new_cache_dir()
    };
    std::fs::create_dir_all(&dir)?;
    let mut saved = Vec::new();
    for (index, (name, path)) in paths.iter().enumerate() {
        if path.exists() {
            copy_tree(path, &dir.join(index.to_string()))?;
            saved.push(name.as_str());
        }
    }
    let log = format!("Cache saved with key: {key} ({})\n", saved.join(", "));
    ctx.run.harness.store.lock().caches.push(CacheEntry { key: key.to_string(), version, scope, dir });
    ok(log)
}

fn check_inputs(uses: &str, with: &Map<String, Value>, known: &[&str]) -> Result<()> {
    match with.keys().find(|k| !known.contains(&k.as_str())) {
        Some(k) => bail!("`{uses}` has no input `{k}` (its inputs: {})", known.join(", ")),
        None => Ok(()),
    }
}

fn checkout(ctx: &JobContext<'_>, state: &mut JobState, with: &Map<String, Value>) -> Result<StepResult> {
    for unsupported in ["ref", "path", "sparse-checkout", "ssh-key"] {
        if with.contains_key(unsupported) {
            bail!("the harness does not support checkout's `{unsupported}`");
        }
    }
    if let Some(repo) = with.get("repository").map(to_text)
        && repo != REPO
    {
        bail!("the harness checks out {REPO} only, not {repo}");
    }
    if state.checked_out {
        bail!("a second checkout in one job: the harness checks out once per job");
    }
    let depth: u64 = match with.get("fetch-depth") {
        None => 1,
        Some(v) => to_text(v).parse().with_context(|| format!("fetch-depth `{}`", to_text(v)))?,
    };
    let workspace = &ctx.dirs.workspace;
    // checkout cleans the workspace first.
    std::fs::remove_dir_all(workspace)?;
    ctx.run.harness.source_checkout(workspace, &ctx.run.sha, depth)?;
    state.checked_out = true;
    let outputs = Map::from_iter([("ref".to_string(), json!(ctx.run.event.git_ref)), ("commit".to_string(), json!(ctx.run.sha))]);
    Ok(StepResult {
        ok: true,
        outputs,
        log: format!("harness: checked out {} with fetch-depth {depth}\n", ctx.run.sha),
        upload: None,
        post: None,
    })
}

/// A relative path is the workspace's; `~` is `HOME`.
fn resolve(ctx: &JobContext<'_>, path: &str) -> PathBuf {
    match path.strip_prefix("~/") {
        Some(rest) => ctx.dirs.home.join(rest),
        None if path == "~" => ctx.dirs.home.clone(),
        None => ctx.dirs.workspace.join(path),
    }
}

/// GitHub refuses these characters; the harness also refuses an empty part (`perf-baseline-`,
/// `a--b`), the mark of an expression that evaluated to nothing.
fn check_artifact_name(name: &str) -> Result<()> {
    if name.is_empty() {
        bail!("the artifact name is empty");
    }
    if let Some(c) = name.chars().find(|c| "\":<>|*?\\/\r\n".contains(*c)) {
        bail!("the artifact name {name:?} contains {c:?}, which GitHub refuses");
    }
    if name.starts_with(['-', '_', '.']) || name.ends_with(['-', '_', '.']) || name.contains("--") {
        bail!("the artifact name {name:?} has an empty part: an expression in it evaluated to nothing");
    }
    Ok(())
}

fn upload(ctx: &JobContext<'_>, with: &Map<String, Value>) -> Result<StepResult> {
    let name = with.get("name").map_or_else(|| "artifact".to_string(), to_text);
    if let Err(e) = check_artifact_name(&name) {
        return Ok(StepResult { ok: false, log: format!("harness: upload-artifact: {e}\n"), ..StepResult::default() });
    }
    let include_hidden = with.get("include-hidden-files").map(to_text).as_deref() == Some("true");
    let patterns: Vec<String> =
        with.get("path").map(to_text).unwrap_or_default().lines().map(str::trim).filter(|l| !l.is_empty()).map(String::from).collect();
    if patterns.is_empty() {
        bail!("upload-artifact needs `path`");
    }
    let (root, files) = match_paths(ctx, &patterns, include_hidden)?;
    let relative = |p: &Path, to: &Path| p.strip_prefix(to).unwrap_or(p).display().to_string();
    let mut upload = Upload {
        name: name.clone(),
        files: files.iter().map(|f| relative(f, &root)).collect(),
        sources: files.iter().map(|f| relative(f, &ctx.dirs.workspace)).collect(),
        checked_only: false,
    };
    if files.is_empty() {
        let policy = with.get("if-no-files-found").map_or_else(|| "warn".to_string(), to_text);
        let message = format!("No files were found with the provided path: {}. No artifacts will be uploaded.", patterns.join(", "));
        let gate_checked = ctx.shim_calls()?.iter().any(|c| c.is_gate() && c.checked_only());
        let (ok, log) = match policy.as_str() {
            "error" if gate_checked => {
                upload.checked_only = true;
                (
                    true,
                    format!(
                        "harness: {message} The gate only checked in this job, so nothing was written: upload `{name}` checked, not judged.\n"
                    ),
                )
            }
            "error" => (false, format!("::error::{message}\n")),
            "warn" => (true, format!("::warning::{message}\n")),
            "ignore" => (true, format!("{message}\n")),
            other => bail!("if-no-files-found: `{other}` is not warn, error or ignore"),
        };
        return Ok(StepResult { ok, outputs: Map::new(), log, upload: Some(upload), post: None });
    }
    let contents: Vec<(String, Content)> = upload.files.iter().cloned().zip(files.iter().map(|f| Content::File(f.clone()))).collect();
    let stored = ctx.run.harness.store.lock().add_artifact(ctx.run.id, &name, &contents);
    match stored {
        Ok(id) => {
            let outputs = Map::from_iter([
                ("artifact-id".to_string(), json!(id.to_string())),
                ("artifact-url".to_string(), json!(format!("https://github.com/{REPO}/actions/runs/{}/artifacts/{id}", ctx.run.id))),
            ]);
            let log = format!("harness: uploaded `{name}` ({} files: {})\n", upload.files.len(), upload.files.join(", "));
            Ok(StepResult { ok: true, outputs, log, upload: Some(upload), post: None })
        }
        Err(e) => Ok(StepResult { ok: false, log: format!("::error::{e}\n"), upload: Some(upload), ..StepResult::default() }),
    }
}

/// The files `patterns` match, and the folder their names are relative to (upload-artifact's
/// rule: the common folder of the patterns' search paths; a lone file's own folder).
fn match_paths(ctx: &JobContext<'_>, patterns: &[String], include_hidden: bool) -> Result<(PathBuf, Vec<PathBuf>)> {
    let mut search_paths: Vec<PathBuf> = Vec::new();
    let mut files = Vec::new();
    for pattern in patterns {
        if pattern.starts_with('!') || pattern.contains("**") || pattern.contains(['?', '[']) {
            bail!("upload-artifact path `{pattern}`: the harness supports `*` within a name only");
        }
        let path = resolve(ctx, pattern);
        let first_wild = path.components().position(|c| c.as_os_str().to_string_lossy().contains('*'));
        let search: PathBuf = path.components().take(first_wild.unwrap_or(usize::MAX)).collect();
        search_paths.push(search);
        for found in glob(&path)? {
            if found.is_dir() {
                walk(&found, include_hidden, &mut files)?;
            } else {
                files.push(found);
            }
        }
    }
    files.sort();
    files.dedup();
    let mut roots: Vec<PathBuf> = Vec::new();
    for p in &search_paths {
        if !search_paths.iter().any(|other| other != p && p.starts_with(other)) && !roots.contains(p) {
            roots.push(p.clone());
        }
    }
    let root = match roots.as_slice() {
        [only] if files.len() == 1 && files[0] == *only => only.parent().expect("a file has a folder").to_path_buf(),
        [only] => only.clone(),
        _ => roots.iter().skip(1).fold(roots[0].clone(), |acc, p| common_ancestor(&acc, p)),
    };
    Ok((root, files))
}

fn common_ancestor(a: &Path, b: &Path) -> PathBuf {
    a.components().zip(b.components()).take_while(|(x, y)| x == y).map(|(x, _)| x).collect()
}

/// The existing paths matching `pattern` (absolute; `*` within a component).
fn glob(pattern: &Path) -> Result<Vec<PathBuf>> {
    let mut found = vec![PathBuf::from("/")];
    for component in pattern.components() {
        let Component::Normal(part) = component else { continue };
        let part = part.to_string_lossy();
        let mut next = Vec::new();
        for base in &found {
            if part.contains('*') {
                let Ok(entries) = std::fs::read_dir(base) else { continue };
                let mut names: Vec<String> = entries.filter_map(|e| e.ok()).map(|e| e.file_name().to_string_lossy().into_owned()).collect();
                names.sort();
                next.extend(names.into_iter().filter(|n| !n.starts_with('.') && wildcard(&part, n)).map(|n| base.join(n)));
            } else if base.join(part.as_ref()).exists() {
                next.push(base.join(part.as_ref()));
            }
        }
        found = next;
    }
    Ok(found)
}

/// `*` matches any run of characters.
fn wildcard(pattern: &str, name: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == name,
        Some((head, tail)) => {
            name.starts_with(head)
                && (0..=name.len() - head.len()).any(|i| name.is_char_boundary(head.len() + i) && wildcard(tail, &name[head.len() + i..]))
        }
    }
}

fn walk(dir: &Path, include_hidden: bool, out: &mut Vec<PathBuf>) -> Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        if !include_hidden && entry.file_name().to_string_lossy().starts_with('.') {
            continue;
        }
        let path = entry.path();
        if path.is_dir() { walk(&path, include_hidden, out)? } else { out.push(path) }
    }
    Ok(())
}

fn download(ctx: &JobContext<'_>, with: &Map<String, Value>) -> Result<StepResult> {
    let input = |k: &str| with.get(k).map(to_text).filter(|v| !v.is_empty());
    if input("pattern").is_some() || input("artifact-ids").is_some() || input("repository").is_some_and(|r| r != REPO) {
        bail!("the harness downloads by `name` (and `run-id`) from {REPO} only");
    }
    // Without a token the action downloads from this run, whatever `run-id` says.
    let run_id = match (input("run-id"), input("github-token")) {
        (Some(id), Some(_)) => id.parse::<u64>().with_context(|| format!("run-id `{id}`"))?,
        _ => ctx.run.id,
    };
    let dest = input("path").map_or_else(|| ctx.dirs.workspace.clone(), |p| resolve(ctx, &p));
    let store = ctx.run.harness.store.lock();
    let artifacts: Vec<_> = match input("name") {
        Some(name) => match store.find(run_id, &name) {
            Some(a) => vec![(a.clone(), dest.clone())],
            None => {
                let log = format!("::error::Unable to download artifact(s): Artifact not found for name: {name} (run {run_id})\n");
                return Ok(StepResult { ok: false, log, ..StepResult::default() });
            }
        },
        None => store.of_run(run_id).into_iter().map(|a| (a.clone(), dest.join(&a.name))).collect(),
    };
    drop(store);
    let mut log = String::new();
    for (artifact, into) in artifacts {
        for (rel, file) in artifact.files()? {
            let target = into.join(&rel);
            std::fs::create_dir_all(target.parent().expect("a file has a folder"))?;
            std::fs::copy(&file, &target)?;
            std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o644))?;
        }
        log.push_str(&format!("harness: downloaded `{}` of run {run_id} into {}\n", artifact.name, into.display()));
    }
    let outputs = Map::from_iter([("download-path".to_string(), json!(dest.display().to_string()))]);
    Ok(StepResult { ok: true, outputs, log, upload: None, post: None })
}

/// The access the job's token has to `scope` (`pages`, `id-token`…): the job's `permissions:`,
/// else the workflow's, else the restricted default (`contents: read`, `metadata: read`).
fn permission(ctx: &JobContext<'_>, scope: &str) -> String {
    let declared = ctx.job.get("permissions").unwrap_or(&ctx.workflow.permissions);
    match declared {
        Value::Null => if scope == "contents" || scope == "metadata" { "read" } else { "none" }.to_string(),
        Value::String(all) if all == "read-all" => if scope == "id-token" { "none" } else { "read" }.to_string(),
        Value::String(all) if all == "write-all" => "write".to_string(),
        Value::Object(map) => map.get(scope).map_or_else(|| "none".to_string(), to_text),
        _ => "none".to_string(),
    }
}

/// A failed step whose log says why.
fn failed(log: String) -> Result<StepResult> {
    Ok(StepResult { ok: false, log, ..StepResult::default() })
}

fn configure_pages(ctx: &JobContext<'_>) -> Result<StepResult> {
    if !ctx.run.harness.store.lock().pages_enabled {
        return failed(
            "::error::Get Pages site failed. Please verify that the repository has Pages enabled and configured to build using GitHub Actions, or consider exploring the `enablement` parameter for this action. Error: Not Found - https://docs.github.com/rest/pages/pages#get-a-apiname-pages-site\n".into(),
        );
    }
    if !matches!(permission(ctx, "pages").as_str(), "read" | "write") {
        return failed(
            "::error::Get Pages site failed: Resource not accessible by integration (the job's token has no `pages` permission)\n".into(),
        );
    }
    let base = PAGES_URL.trim_end_matches('/');
    let outputs = Map::from_iter([
        ("base_url".to_string(), json!(base)),
        ("origin".to_string(), json!("https://acme.github.io")),
        ("host".to_string(), json!("acme.github.io")),
        ("base_path".to_string(), json!("/shop")),
    ]);
    Ok(StepResult { ok: true, outputs, log: format!("harness: Pages of {REPO} at {base}\n"), upload: None, post: None })
}

fn upload_pages(ctx: &JobContext<'_>, with: &Map<String, Value>) -> Result<StepResult> {
    let name = with.get("name").map_or_else(|| "github-pages".to_string(), to_text);
    let folder = resolve(ctx, &with.get("path").map_or_else(|| "_site/".to_string(), to_text));
    let tar = ctx.dirs.temp.join("artifact.tar");
    let hidden = with.get("include-hidden-files").map(to_text).as_deref() == Some("true");
    // The action's own command (its Linux step).
    let mut command = std::process::Command::new("tar");
    command.args(["--dereference", "--hard-dereference", "--directory"]).arg(&folder).arg("-cvf").arg(&tar);
    command.args(["--exclude=.git", "--exclude=.github"]);
    if !hidden {
        command.arg("--exclude=.[^/]*");
    }
    let out = command.arg(".").output().context("running tar")?;
    let log = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    if !out.status.success() {
        return failed(format!("{log}harness: tar exited with {}\n", out.status));
    }
    let upload =
        Upload { name: name.clone(), files: vec!["artifact.tar".into()], sources: vec![folder.display().to_string()], checked_only: false };
    let stored = ctx.run.harness.store.lock().add_artifact(ctx.run.id, &name, &[("artifact.tar".into(), Content::File(tar))]);
    match stored {
        Ok(id) => Ok(StepResult {
            ok: true,
            outputs: Map::from_iter([("artifact_id".to_string(), json!(id.to_string()))]),
            log: format!("{log}harness: uploaded `{name}` (artifact.tar of {})\n", folder.display()),
            upload: Some(upload),
            post: None,
        }),
        Err(e) => Ok(StepResult { ok: false, log: format!("{log}::error::{e}\n"), upload: Some(upload), ..StepResult::default() }),
    }
}

fn deploy_pages(ctx: &JobContext<'_>, with: &Map<String, Value>) -> Result<StepResult> {
    for (scope, needed) in [("pages", "write"), ("id-token", "write")] {
        let has = permission(ctx, scope);
        if has != needed {
            return failed(format!("::error::deploy-pages needs `{scope}: {needed}`; the job's token has `{scope}: {has}`\n"));
        }
    }
    let name = with.get("artifact_name").map(to_text).filter(|n| !n.is_empty()).unwrap_or_else(|| "github-pages".into());
    let mut store = ctx.run.harness.store.lock();
    let Some(artifact) = store.find(ctx.run.id, &name).cloned() else {
        return failed(format!(
            "::error::Fetching artifact metadata failed. Is artifact `{name}` uploaded? (none in run {})\n",
            ctx.run.id
        ));
    };
    let files: Vec<String> = artifact.files()?.into_iter().map(|(rel, _)| rel).collect();
    if files != ["artifact.tar"] {
        return failed(format!("::error::artifact `{name}` is not a Pages artifact (one artifact.tar): {files:?}\n"));
    }
    store.pages_deployments.push(artifact.id);
    let outputs = Map::from_iter([("page_url".to_string(), json!(PAGES_URL))]);
    Ok(StepResult {
        ok: true,
        outputs,
        log: format!("harness: deployed `{name}` ({}) to {PAGES_URL}\n", artifact.id),
        upload: None,
        post: None,
    })
}

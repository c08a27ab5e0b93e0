//! One job's steps, as a hosted runner runs them.
//!
//! Each job gets its own folders (workspace, `RUNNER_TEMP`, `HOME` with `CARGO_HOME`, the
//! shims). A `run:` step is a script run by bash as GitHub runs it: `bash -e {0}` when no
//! `shell:` is given, `bash --noprofile --norc -eo pipefail {0}` for `shell: bash`, in the
//! workspace (or `working-directory`), with a clean environment made of the runner's variables
//! (`GITHUB_*`, `RUNNER_*`, `CI`, and `PERF_CHECK=1`: the gate only checks), the workflow's, the
//! job's and the step's `env:`, and what earlier steps wrote to `GITHUB_ENV` and `GITHUB_PATH`.
//! Fresh `GITHUB_OUTPUT`, `GITHUB_ENV`, `GITHUB_PATH` and `GITHUB_STEP_SUMMARY` files are made
//! for every step and read back after it. `GITHUB_TOKEN` is not set unless the workflow sets
//! it, as on GitHub.
//!
//! A step runs when its `if:` holds (`success()` when it has none); a failing step fails the
//! job unless `continue-on-error` is true. After the last step come the post steps of the
//! actions that have one (`actions/cache`'s save), last first, named `Post <step name>`.

use std::collections::BTreeMap;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use serde_json::{Map, Value, json};

use super::actions::{PostSave, Upload, cache_save, run_action};
use super::expr::{self, Scope, Status};
use super::model::{Workflow, object};
use super::runner::{JobResult, RunContext};
use super::shims::{self, ShimCall};
use super::template;

/// Longest a step may run: the gate only checks, so a step that takes this long is stuck.
const STEP_TIMEOUT: Duration = Duration::from_secs(180);

/// The `PATH` a hosted runner starts from (after the shims, `GITHUB_PATH` and `CARGO_HOME/bin`).
const SYSTEM_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Success,
    Failure,
    Skipped,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::Failure => "failure",
            Outcome::Skipped => "skipped",
        }
    }
}

/// One step of a job, after it ran (or was skipped).
#[derive(Debug, Clone)]
pub struct StepRun {
    pub name: String,
    pub id: Option<String>,
    /// What happened.
    pub outcome: Outcome,
    /// What counts for the job: `success` for a failure under `continue-on-error`.
    pub conclusion: Outcome,
    pub outputs: Map<String, Value>,
    /// stdout and stderr, interleaved (for actions: what the harness did).
    pub log: String,
    /// `::error::` and `::warning::` lines.
    pub annotations: Vec<String>,
    /// What `upload-artifact` did.
    pub upload: Option<Upload>,
}

impl StepRun {
    pub fn describe(&self) -> String {
        format!("--- step {:?}: {}\n{}", self.name, self.outcome.as_str(), self.log.trim_end())
    }
}

/// What a step did, before the harness records it.
#[derive(Debug, Default)]
pub struct StepResult {
    pub ok: bool,
    pub outputs: Map<String, Value>,
    pub log: String,
    pub upload: Option<Upload>,
    /// What the action does after the job's last step (`actions/cache`'s save).
    pub post: Option<PostSave>,
}

/// The folders of one job.
#[derive(Debug)]
pub struct JobDirs {
    pub workspace: PathBuf,
    pub temp: PathBuf,
    pub home: PathBuf,
    pub tool_cache: PathBuf,
    pub shims: PathBuf,
    pub shim_log: PathBuf,
    files: PathBuf,
}

impl JobDirs {
    fn create(root: &Path) -> Result<JobDirs> {
        let dirs = JobDirs {
            workspace: root.join("work").join("shop"),
            temp: root.join("temp"),
            home: root.join("home"),
            tool_cache: root.join("toolcache"),
            shims: root.join("shims"),
            shim_log: root.join("shim-calls.log"),
            files: root.join("file-commands"),
        };
        for dir in [&dirs.workspace, &dirs.temp, &dirs.home.join(".cargo").join("bin"), &dirs.tool_cache, &dirs.files] {
            std::fs::create_dir_all(dir)?;
        }
        Ok(dirs)
    }

    pub fn cargo_home(&self) -> PathBuf {
        self.home.join(".cargo")
    }
}

/// Everything fixed for one job.
pub struct JobContext<'a> {
    pub run: &'a RunContext<'a>,
    pub dirs: JobDirs,
    pub id: String,
    pub workflow: &'a Workflow,
    pub job: &'a Map<String, Value>,
    pub inputs: Value,
    pub needs: Value,
    pub github: Value,
}

/// What changes from step to step.
#[derive(Debug, Default)]
pub struct JobState {
    /// The workflow's and the job's `env:`, evaluated.
    env: BTreeMap<String, String>,
    /// What steps wrote to `GITHUB_ENV`.
    github_env: BTreeMap<String, String>,
    /// What steps wrote to `GITHUB_PATH`, newest first.
    path: Vec<String>,
    /// The `steps` context.
    steps: Map<String, Value>,
    failed: bool,
    pub checked_out: bool,
    /// Post steps of the actions that ran, with their steps' names, in the order they ran.
    post: Vec<(String, PostSave)>,
}

impl<'a> JobContext<'a> {
    pub fn new(
        run: &'a RunContext<'a>,
        root: &Path,
        id: &str,
        workflow: &'a Workflow,
        job: &'a Map<String, Value>,
        inputs: Value,
        needs: Value,
    ) -> Result<JobContext<'a>> {
        let dirs = JobDirs::create(root)?;
        shims::install(
            &dirs.shims,
            &dirs.shim_log,
            &run.harness.opts.tools,
            &run.harness.gate_results_dir(),
            &run.harness.gate_exit_file(),
        )?;
        let github = run.github(id, &dirs.workspace);
        Ok(JobContext { run, dirs, id: id.to_string(), workflow, job, inputs, needs, github })
    }

    /// The contexts of an expression in a step (or in the job's `env`/`outputs`).
    fn contexts(&self, state: &JobState) -> Map<String, Value> {
        let env: Map<String, Value> = state.env.iter().chain(&state.github_env).map(|(k, v)| (k.clone(), json!(v))).collect();
        let runner = json!({
            "os": "Linux", "arch": "X64", "name": "harness", "environment": "github-hosted",
            "temp": self.dirs.temp, "tool_cache": self.dirs.tool_cache, "debug": "",
        });
        self.run.contexts([
            ("github", self.github.clone()),
            ("inputs", self.inputs.clone()),
            ("needs", self.needs.clone()),
            ("env", Value::Object(env)),
            ("steps", Value::Object(state.steps.clone())),
            ("runner", runner),
            ("job", json!({ "status": if state.failed { "failure" } else { "success" } })),
            ("strategy", json!({})),
            ("matrix", json!({})),
        ])
    }

    pub fn shim_calls(&self) -> Result<Vec<ShimCall>> {
        shims::read_log(&self.dirs.shim_log)
    }

    /// The process environment of a `run:` step.
    fn process_env(&self, state: &JobState, step_env: &BTreeMap<String, String>, files: &StepFiles) -> BTreeMap<String, String> {
        let run = self.run;
        let event = run.event;
        let mut path: Vec<String> = vec![self.dirs.shims.display().to_string()];
        path.extend(state.path.iter().cloned());
        path.push(self.dirs.cargo_home().join("bin").display().to_string());
        path.push(SYSTEM_PATH.to_string());
        let text = |k: &str| expr::to_text(&self.github[k]);
        let mut env: BTreeMap<String, String> = [
            ("PATH", path.join(":")),
            ("HOME", self.dirs.home.display().to_string()),
            ("CARGO_HOME", self.dirs.cargo_home().display().to_string()),
            ("LANG", "C.UTF-8".into()),
            ("CI", "true".into()),
            ("GITHUB_ACTIONS", "true".into()),
            ("GITHUB_EVENT_NAME", event.name.clone()),
            ("GITHUB_EVENT_PATH", run.event_path.display().to_string()),
            ("GITHUB_REPOSITORY", text("repository")),
            ("GITHUB_REPOSITORY_OWNER", text("repository_owner")),
            ("GITHUB_API_URL", text("api_url")),
            ("GITHUB_GRAPHQL_URL", text("graphql_url")),
            ("GITHUB_SERVER_URL", text("server_url")),
            ("GITHUB_RUN_ID", run.id.to_string()),
            ("GITHUB_RUN_NUMBER", "1".into()),
            ("GITHUB_RUN_ATTEMPT", "1".into()),
            ("GITHUB_SHA", run.sha.clone()),
            ("GITHUB_REF", event.git_ref.clone()),
            ("GITHUB_REF_NAME", event.ref_name()),
            ("GITHUB_REF_TYPE", "branch".into()),
            ("GITHUB_HEAD_REF", text("head_ref")),
            ("GITHUB_BASE_REF", text("base_ref")),
            ("GITHUB_WORKFLOW", text("workflow")),
            ("GITHUB_JOB", self.id.clone()),
            ("GITHUB_ACTOR", text("actor")),
            ("GITHUB_WORKSPACE", self.dirs.workspace.display().to_string()),
            ("GITHUB_OUTPUT", files.output.display().to_string()),
            ("GITHUB_ENV", files.env.display().to_string()),
            ("GITHUB_PATH", files.path.display().to_string()),
            ("GITHUB_STEP_SUMMARY", files.summary.display().to_string()),
            ("RUNNER_OS", "Linux".into()),
            ("RUNNER_ARCH", "X64".into()),
            ("RUNNER_TEMP", self.dirs.temp.display().to_string()),
            ("RUNNER_TOOL_CACHE", self.dirs.tool_cache.display().to_string()),
            // The harness's one change to the runner: the gate validates everything and stops.
            ("PERF_CHECK", "1".into()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        env.extend(state.env.clone());
        env.extend(state.github_env.clone());
        env.extend(step_env.clone());
        env
    }
}

/// What a job's steps came to.
pub struct StepsOutcome {
    pub result: JobResult,
    pub outputs: Map<String, Value>,
    pub steps: Vec<StepRun>,
    pub shim_calls: Vec<ShimCall>,
}

/// Runs the job's steps, then evaluates the job's outputs.
pub fn run_steps(ctx: &JobContext<'_>) -> Result<StepsOutcome> {
    let mut state = JobState::default();
    let base = ctx.run.contexts([("github", ctx.github.clone()), ("inputs", ctx.inputs.clone()), ("needs", ctx.needs.clone())]);
    for (what, env) in [("workflow", &ctx.workflow.env), ("job", &object(ctx.job.get("env"), "env")?)] {
        let scope = Scope { contexts: &base, status: Status::OK };
        for (k, v) in env {
            let value = template::render_text(v, &scope).with_context(|| format!("{what} env `{k}`"))?;
            state.env.insert(k.clone(), value);
        }
    }
    let mut records = Vec::new();
    let steps = ctx.job.get("steps").and_then(Value::as_array).ok_or_else(|| anyhow!("a job without `steps`"))?;
    for (index, step) in steps.iter().enumerate() {
        let step = step.as_object().expect("checked by the model");
        let record = run_step(ctx, &mut state, index, step).with_context(|| format!("step {} ({})", index + 1, step_label(step)))?;
        println!("[{}] {}", ctx.id, record.describe());
        if let Some(id) = &record.id {
            state.steps.insert(
                id.clone(),
                json!({ "outputs": record.outputs, "outcome": record.outcome.as_str(), "conclusion": record.conclusion.as_str() }),
            );
        }
        state.failed |= record.conclusion == Outcome::Failure;
        records.push(record);
    }
    // Post steps, in the reverse order of their steps; `actions/cache`'s runs on success only.
    for (name, post) in std::mem::take(&mut state.post).into_iter().rev() {
        let (outcome, log) = if state.failed {
            (Outcome::Skipped, String::new())
        } else {
            let saved = cache_save(ctx, &post.key, &post.path).with_context(|| format!("post step of {name}"))?;
            (if saved.ok { Outcome::Success } else { Outcome::Failure }, saved.log)
        };
        let record = StepRun {
            name: format!("Post {name}"),
            id: None,
            outcome,
            conclusion: outcome,
            outputs: Map::new(),
            annotations: log.lines().filter(|l| l.starts_with("::error") || l.starts_with("::warning")).map(String::from).collect(),
            log,
            upload: None,
        };
        println!("[{}] {}", ctx.id, record.describe());
        state.failed |= record.conclusion == Outcome::Failure;
        records.push(record);
    }
    let contexts = ctx.contexts(&state);
    let mut outputs = Map::new();
    for (name, value) in object(ctx.job.get("outputs"), "outputs")? {
        let value = template::render_text(&value, &Scope { contexts: &contexts, status: Status::OK })
            .with_context(|| format!("job output `{name}`"))?;
        outputs.insert(name, Value::String(value));
    }
    let result = if state.failed { JobResult::Failure } else { JobResult::Success };
    Ok(StepsOutcome { result, outputs, steps: records, shim_calls: ctx.shim_calls()? })
}

fn step_label(step: &Map<String, Value>) -> String {
    let text = |k: &str| step.get(k).and_then(Value::as_str).map(str::to_string);
    text("name").or_else(|| text("uses")).or_else(|| text("run").map(|r| r.lines().next().unwrap_or("").to_string())).unwrap_or_default()
}

fn run_step(ctx: &JobContext<'_>, state: &mut JobState, index: usize, step: &Map<String, Value>) -> Result<StepRun> {
    let contexts = ctx.contexts(state);
    let scope = Scope { contexts: &contexts, status: Status { success: !state.failed, failure: state.failed } };
    let id = step.get("id").and_then(Value::as_str).map(String::from);
    let name = match step.get("name") {
        Some(n) => template::render_text(n, &scope)?,
        None => match (step.get("uses"), step.get("run")) {
            (Some(u), _) => format!("Run {}", expr::to_text(u)),
            (_, Some(r)) => format!("Run {}", expr::to_text(r).lines().next().unwrap_or("")),
            _ => bail!("a step needs `run` or `uses`"),
        },
    };
    let skipped = |name: String| StepRun {
        name,
        id: id.clone(),
        outcome: Outcome::Skipped,
        conclusion: Outcome::Skipped,
        outputs: Map::new(),
        log: String::new(),
        annotations: Vec::new(),
        upload: None,
    };
    if !template::condition(step.get("if"), &scope)? {
        return Ok(skipped(name));
    }
    let mut step_env = BTreeMap::new();
    for (k, v) in object(step.get("env"), "env")? {
        step_env.insert(k.clone(), template::render_text(&v, &scope).with_context(|| format!("env `{k}`"))?);
    }
    let mut result = match (step.get("uses"), step.get("run")) {
        (Some(_), Some(_)) => bail!("a step has both `uses` and `run`"),
        (Some(uses), None) => {
            let uses = uses.as_str().ok_or_else(|| anyhow!("`uses` is not a string"))?;
            let with = template::render(&Value::Object(object(step.get("with"), "with")?), &scope).context("with")?;
            run_action(ctx, state, uses, with.as_object().expect("an object renders to an object"))?
        }
        (None, Some(script)) => run_script(ctx, state, index, step, &template::render_text(script, &scope)?, &step_env)?,
        (None, None) => bail!("a step needs `run` or `uses`"),
    };
    let continue_on_error = match step.get("continue-on-error") {
        Some(v) => expr::truthy(&template::render(v, &scope)?),
        None => false,
    };
    if let Some(post) = result.post.take() {
        state.post.push((name.clone(), post));
    }
    let outcome = if result.ok { Outcome::Success } else { Outcome::Failure };
    let annotations = result.log.lines().filter(|l| l.starts_with("::error") || l.starts_with("::warning")).map(String::from).collect();
    Ok(StepRun {
        name,
        id,
        outcome,
        conclusion: if continue_on_error { Outcome::Success } else { outcome },
        outputs: result.outputs,
        log: result.log,
        annotations,
        upload: result.upload,
    })
}

/// The file commands of one step.
struct StepFiles {
    output: PathBuf,
    env: PathBuf,
    path: PathBuf,
    summary: PathBuf,
}

fn run_script(
    ctx: &JobContext<'_>,
    state: &mut JobState,
    index: usize,
    step: &Map<String, Value>,
    script: &str,
    step_env: &BTreeMap<String, String>,
) -> Result<StepResult> {
    let dir = &ctx.dirs.files;
    let files = StepFiles {
        output: dir.join(format!("set_output_{index}")),
        env: dir.join(format!("set_env_{index}")),
        path: dir.join(format!("add_path_{index}")),
        summary: dir.join(format!("step_summary_{index}")),
    };
    for f in [&files.output, &files.env, &files.path, &files.summary] {
        std::fs::write(f, "")?;
    }
    let shell: &[&str] = match step.get("shell").and_then(Value::as_str) {
        None => &["bash", "-e"],
        Some("bash") => &["bash", "--noprofile", "--norc", "-eo", "pipefail"],
        Some(other) => bail!("the harness runs bash steps only, not `shell: {other}`"),
    };
    let script_path = ctx.dirs.temp.join(format!("step-{index}.sh"));
    std::fs::write(&script_path, script)?;
    let cwd = match step.get("working-directory") {
        Some(w) => ctx.dirs.workspace.join(expr::to_text(w)),
        None => ctx.dirs.workspace.clone(),
    };
    let log_path = ctx.dirs.temp.join(format!("step-{index}.log"));
    let log_file = std::fs::File::create(&log_path)?;
    let mut child = Command::new(shell[0])
        .args(&shell[1..])
        .arg(&script_path)
        .current_dir(&cwd)
        .env_clear()
        .envs(ctx.process_env(state, step_env, &files))
        .stdin(Stdio::null())
        .stdout(log_file.try_clone()?)
        .stderr(log_file)
        .process_group(0)
        .spawn()
        .with_context(|| format!("starting bash in {}", cwd.display()))?;
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break Some(status);
        }
        if started.elapsed() > STEP_TIMEOUT {
            let _ = nix::sys::signal::killpg(nix::unistd::Pid::from_raw(child.id() as i32), nix::sys::signal::Signal::SIGKILL);
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut log = std::fs::read_to_string(&log_path).unwrap_or_default();
    let ok = match status {
        Some(s) if s.success() => true,
        Some(s) => {
            log.push_str(&format!("harness: the step exited with {s}\n"));
            false
        }
        None => {
            log.push_str(&format!("harness: the step ran longer than {STEP_TIMEOUT:?} and was killed\n"));
            false
        }
    };
    let outputs = parse_file_command(&files.output)?.into_iter().map(|(k, v)| (k, Value::String(v))).collect();
    state.github_env.extend(parse_file_command(&files.env)?);
    let added = std::fs::read_to_string(&files.path)?;
    for line in added.lines().map(str::trim).filter(|l| !l.is_empty()) {
        state.path.insert(0, line.to_string());
    }
    Ok(StepResult { ok, outputs, log, upload: None, post: None })
}

/// Reads `GITHUB_OUTPUT` / `GITHUB_ENV`: `name=value` lines and `name<<DELIMITER` blocks.
pub fn parse_file_command(path: &Path) -> Result<Vec<(String, String)>> {
    let text = std::fs::read_to_string(path)?;
    let mut out = Vec::new();
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        if line.trim().is_empty() {
            continue;
        }
        let equals = line.find('=');
        let heredoc = line.find("<<");
        match (equals, heredoc) {
            (Some(e), h) if h.is_none_or(|h| e < h) => out.push((line[..e].to_string(), line[e + 1..].to_string())),
            (_, Some(h)) => {
                let (name, delimiter) = (&line[..h], &line[h + 2..]);
                let mut value = Vec::new();
                loop {
                    match lines.next() {
                        Some(l) if l == delimiter => break,
                        Some(l) => value.push(l),
                        None => bail!("{}: `{name}<<{delimiter}` is never closed", path.display()),
                    }
                }
                out.push((name.to_string(), value.join("\n")));
            }
            _ => bail!("{}: invalid line {line:?} (expected name=value or name<<DELIMITER)", path.display()),
        }
    }
    Ok(out)
}

//! Runs a workflow for an event: jobs in `needs` order, job `if:`s, reusable workflows expanded
//! with their typed inputs, and each job's steps (see `steps`).
//!
//! A run's jobs are recorded with a path: `nightly` for a job of the triggered workflow,
//! `nightly/nightly` for the job `nightly` of the workflow that job calls. An error returned by
//! [`Harness::run`] is the harness refusing the workflow (unknown syntax, an undeclared input,
//! an action it does not know): the test fails with it. A job or step that fails is a result,
//! recorded in [`Run`], for the scenario to assert on.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use anyhow::{Context, Result, anyhow, bail};
use serde_json::{Map, Value, json};

use super::expr::{self, Scope, Status};
use super::github::{Event, FakeGithub, OWNER, REPO, TOKEN};
use super::model::{Workflow, object, workflow_name};
use super::shims::{ShimCall, Tools};
use super::source::SourceRepo;
use super::steps::{JobContext, StepRun, run_steps};
use super::store::{Content, SharedStore, WorkflowRun};
use super::template;

/// Where the harness finds things.
#[derive(Debug, Clone)]
pub struct HarnessOptions {
    /// The folder the workflow files are read from (`.github/workflows`, or an old copy).
    pub workflows_dir: PathBuf,
    /// This repository: its HEAD and working tree make the checked-out code.
    pub repo_root: PathBuf,
    pub tools: Tools,
    /// Whether the checked-out code carries the working tree's `results/baseline/`. Without
    /// it, the run is on a machine kind with no stored baseline of its testbed.
    pub stored_baselines: bool,
}

/// A job's result, as `needs.<id>.result` says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobResult {
    Success,
    Failure,
    Skipped,
}

impl JobResult {
    pub fn as_str(self) -> &'static str {
        match self {
            JobResult::Success => "success",
            JobResult::Failure => "failure",
            JobResult::Skipped => "skipped",
        }
    }
}

/// One job of a run.
#[derive(Debug, Clone)]
pub struct JobRun {
    /// `caller/called` for jobs of a reusable workflow.
    pub path: String,
    pub result: JobResult,
    pub outputs: Map<String, Value>,
    pub steps: Vec<StepRun>,
    /// What the shims saw during this job.
    pub shim_calls: Vec<ShimCall>,
}

impl JobRun {
    /// The step named `name` (or with id `name`); panics with the list of steps.
    pub fn step(&self, name: &str) -> &StepRun {
        self.steps.iter().find(|s| s.name == name || s.id.as_deref() == Some(name)).unwrap_or_else(|| {
            let names: Vec<&str> = self.steps.iter().map(|s| s.name.as_str()).collect();
            panic!("job {} has no step {name:?}; its steps: {names:?}", self.path)
        })
    }

    /// The gate's runs in this job (`cargo xtask perf …`).
    pub fn gate_calls(&self) -> Vec<&ShimCall> {
        self.shim_calls.iter().filter(|c| c.is_gate()).collect()
    }

    /// Every step's log, for failure messages.
    pub fn logs(&self) -> String {
        self.steps.iter().map(StepRun::describe).collect::<Vec<_>>().join("\n")
    }
}

/// A completed run.
#[derive(Debug, Clone)]
pub struct Run {
    pub id: u64,
    pub workflow: String,
    /// `success`, or `failure` when a job failed: what the Actions API says of the run.
    pub conclusion: String,
    pub jobs: Vec<JobRun>,
}

impl Run {
    /// The job at `path`; panics with the list of jobs.
    pub fn job(&self, path: &str) -> &JobRun {
        self.jobs.iter().find(|j| j.path == path).unwrap_or_else(|| {
            let paths: Vec<&str> = self.jobs.iter().map(|j| j.path.as_str()).collect();
            panic!("run of {} has no job {path:?}; its jobs: {paths:?}", self.workflow)
        })
    }

    /// Asserts no job failed, printing the failed jobs' steps when one did.
    pub fn assert_no_job_failed(&self) {
        let failed: Vec<&JobRun> = self.jobs.iter().filter(|j| j.result == JobResult::Failure && !j.steps.is_empty()).collect();
        let logs: Vec<String> = failed.iter().map(|j| format!("=== job {} failed\n{}", j.path, j.logs())).collect();
        assert!(failed.is_empty(), "run of {}:\n{}", self.workflow, logs.join("\n"));
    }

    /// Asserts the job succeeded, printing every step's log when it did not.
    pub fn assert_success(&self, path: &str) -> &JobRun {
        let job = self.job(path);
        assert_eq!(job.result, JobResult::Success, "job {path} of {}:\n{}", self.workflow, job.logs());
        job
    }
}

/// One scenario's GitHub: the fake API, the artifact store and the repository.
pub struct Harness {
    pub opts: HarnessOptions,
    pub store: SharedStore,
    pub github: FakeGithub,
    source: Mutex<SourceRepo>,
    scratch: tempfile::TempDir,
    next_run_id: Mutex<u64>,
}

/// The caller's view while running one workflow's jobs.
struct WorkflowScope<'a> {
    workflow: &'a Workflow,
    inputs: Value,
    /// `caller/` for a called workflow's jobs.
    prefix: String,
}

/// What a finished job gives the jobs that need it.
#[derive(Debug, Clone)]
struct Finished {
    result: JobResult,
    outputs: Map<String, Value>,
}

impl Harness {
    pub fn new(opts: HarnessOptions) -> Result<Harness> {
        let scratch = tempfile::Builder::new().prefix("workflows-").tempdir()?;
        let store = SharedStore::new(scratch.path().join("artifacts"));
        let github = FakeGithub::start(store.clone());
        let source = SourceRepo::create(&opts.repo_root, &scratch.path().join("origin"), opts.stored_baselines)?;
        Ok(Harness { opts, store, github, source: Mutex::new(source), scratch, next_run_id: Mutex::new(40_000_001) })
    }

    /// Records a completed run GitHub knows about (a nightly of last night, say).
    pub fn add_run(&self, id: u64, workflow: &str, event: &str, conclusion: &str) {
        let sha = self.source.lock().unwrap().main_sha.clone();
        let run = WorkflowRun {
            id,
            workflow: workflow.into(),
            event: event.into(),
            branch: "main".into(),
            conclusion: conclusion.into(),
            head_sha: sha,
        };
        self.store.lock().add_run(run);
    }

    /// Refuses an event the trigger would not fire on: an activity type it does not list (the
    /// default types of `pull_request` are opened, synchronize and reopened), or, for
    /// `workflow_run`, a workflow it does not name, or a name no workflow file has.
    fn check_trigger(&self, trigger: &Map<String, Value>, event: &Event) -> Result<()> {
        let action = event.payload["action"].as_str();
        let types: Vec<&str> = match trigger.get("types") {
            Some(Value::Array(t)) => t.iter().filter_map(Value::as_str).collect(),
            Some(Value::String(t)) => vec![t.as_str()],
            _ if event.name == "pull_request" => vec!["opened", "synchronize", "reopened"],
            _ => Vec::new(),
        };
        if let Some(action) = action
            && !types.is_empty()
            && !types.contains(&action)
        {
            bail!("activity type `{action}` is not in `types: {types:?}`");
        }
        if event.name == "workflow_run" {
            let names: Vec<&str> =
                trigger.get("workflows").and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_str).collect();
            let completed = event.payload["workflow_run"]["name"].as_str().unwrap_or_default();
            if !names.contains(&completed) {
                bail!("`workflows: {names:?}` does not name the workflow that completed, `{completed}`");
            }
            let mut known = Vec::new();
            for entry in std::fs::read_dir(&self.opts.workflows_dir)? {
                let file = entry?.file_name().to_string_lossy().into_owned();
                if file.ends_with(".yml") || file.ends_with(".yaml") {
                    known.push(workflow_name(&self.opts.workflows_dir, &file)?);
                }
            }
            if let Some(missing) = names.iter().find(|n| !known.iter().any(|k| k == *n)) {
                bail!("`workflows:` names `{missing}`, but no workflow file has that name (names: {known:?})");
            }
        }
        Ok(())
    }

    /// Where the stand-in summaries of [`Harness::set_gate_results`] are kept.
    pub fn gate_results_dir(&self) -> PathBuf {
        self.scratch.path().join("gate-results")
    }

    /// The summaries a check-only gate run "wrote" from now on (see `shims`): the harness never
    /// measures, so a scenario whose later jobs read the summaries (the nightly's history)
    /// gives them. Replaces the previous ones; an empty list means none.
    pub fn set_gate_results(&self, files: &[(String, Content)]) -> Result<()> {
        let dir = self.gate_results_dir();
        if dir.exists() {
            std::fs::remove_dir_all(&dir)?;
        }
        std::fs::create_dir_all(&dir)?;
        for (name, content) in files {
            match content {
                Content::Bytes(bytes) => std::fs::write(dir.join(name), bytes)?,
                Content::File(src) => {
                    std::fs::copy(src, dir.join(name))?;
                }
            }
        }
        Ok(())
    }

    /// Where the stand-in exit status of [`Harness::set_gate_exit`] is kept.
    pub fn gate_exit_file(&self) -> PathBuf {
        self.scratch.path().join("gate-exit")
    }

    /// The status a check-only gate run that passed its check exits with from now on, in
    /// place of 0: what a measured run would have returned (2 for a run with an invalid
    /// suite, say). `None`: 0, the check's own.
    pub fn set_gate_exit(&self, status: Option<i32>) -> Result<()> {
        let file = self.gate_exit_file();
        match status {
            Some(code) => std::fs::write(&file, code.to_string())?,
            None if file.exists() => std::fs::remove_file(&file)?,
            None => {}
        }
        Ok(())
    }

    /// Runs git in the repository playing `acme/shop` (what the runs cloned and pushed to).
    pub fn origin_git(&self, args: &[&str]) -> Result<String> {
        super::source::git(&self.source.lock().unwrap().dir, args)
    }

    /// What `actions/checkout` does in a job of this scenario.
    pub fn source_checkout(&self, workspace: &Path, sha: &str, depth: u64) -> Result<()> {
        self.source.lock().unwrap().checkout(workspace, sha, depth)
    }

    /// Runs `file` of the workflows folder for `event`, and records the run in the store.
    pub fn run(&self, file: &str, event: &Event) -> Result<Run> {
        let workflow = Workflow::load(&self.opts.workflows_dir, file)?;
        let trigger = workflow.trigger(&event.name).ok_or_else(|| anyhow!("{file} does not run on `{}`", event.name))?;
        self.check_trigger(&trigger, event).with_context(|| format!("{file} would not run for this `{}` event", event.name))?;
        let id = {
            let mut next = self.next_run_id.lock().unwrap();
            *next += 1;
            *next - 1
        };
        let sha = if event.name == "pull_request" {
            self.source.lock().unwrap().merge_commit()?
        } else {
            self.source.lock().unwrap().main_sha.clone()
        };
        let inputs = if event.name == "workflow_dispatch" {
            typed_inputs(&object(trigger.get("inputs"), "inputs")?, &event.inputs, "workflow_dispatch")?
        } else {
            Map::new()
        };
        let run_dir = self.scratch.path().join(format!("run-{id}"));
        std::fs::create_dir_all(&run_dir)?;
        let event_path = run_dir.join("event.json");
        std::fs::write(&event_path, serde_json::to_vec_pretty(&event.payload)?)?;
        let context = RunContext { harness: self, id, event, sha: sha.clone(), event_path, run_dir, workflow_name: workflow.name.clone() };
        let mut jobs = Vec::new();
        let scope = WorkflowScope { workflow: &workflow, inputs: Value::Object(inputs), prefix: String::new() };
        let finished = context.run_jobs(&scope, &mut jobs).with_context(|| format!("{file} on {}", event.name))?;
        let failed = finished.values().any(|f| f.result == JobResult::Failure);
        let conclusion = if failed { "failure" } else { "success" };
        let record = WorkflowRun {
            id,
            workflow: file.into(),
            event: event.name.clone(),
            branch: event.ref_name(),
            conclusion: conclusion.into(),
            head_sha: sha,
        };
        self.store.lock().add_run(record);
        Ok(Run { id, workflow: file.to_string(), conclusion: conclusion.to_string(), jobs })
    }
}

/// One run in progress.
pub struct RunContext<'a> {
    pub harness: &'a Harness,
    pub id: u64,
    pub event: &'a Event,
    /// `github.sha`.
    pub sha: String,
    pub event_path: PathBuf,
    run_dir: PathBuf,
    workflow_name: String,
}

impl RunContext<'_> {
    /// The `github` context of job `job` with its workspace.
    pub fn github(&self, job: &str, workspace: &Path) -> Value {
        let event = self.event;
        let pull = &event.payload["pull_request"];
        json!({
            "event_name": event.name,
            "event": event.payload,
            "event_path": self.event_path,
            "repository": REPO,
            "repository_owner": OWNER,
            "ref": event.git_ref,
            "ref_name": event.ref_name(),
            "ref_type": "branch",
            "head_ref": pull["head"]["ref"].as_str().unwrap_or(""),
            "base_ref": pull["base"]["ref"].as_str().unwrap_or(""),
            "sha": self.sha,
            "run_id": self.id.to_string(),
            "run_number": "1",
            "run_attempt": "1",
            "actor": "alice-dev",
            "triggering_actor": "alice-dev",
            "workflow": self.workflow_name,
            "token": TOKEN,
            "workspace": workspace,
            "api_url": self.harness.github.url(),
            "server_url": "https://github.com",
            "graphql_url": format!("{}/graphql", self.harness.github.url()),
            "job": job,
            "action": "",
            "retention_days": "90",
        })
    }

    /// Runs a workflow's jobs, each when the jobs it needs are done; returns their results.
    fn run_jobs(&self, scope: &WorkflowScope<'_>, out: &mut Vec<JobRun>) -> Result<BTreeMap<String, Finished>> {
        let mut finished: BTreeMap<String, Finished> = BTreeMap::new();
        let mut pending: Vec<&(String, Map<String, Value>)> = scope.workflow.jobs.iter().collect();
        while !pending.is_empty() {
            let ready = pending.iter().position(|(_, job)| needs(job).iter().all(|n| finished.contains_key(n)));
            let Some(index) = ready else {
                let names: Vec<&str> = pending.iter().map(|(id, _)| id.as_str()).collect();
                bail!("jobs {names:?} need jobs that do not exist or need each other");
            };
            let (id, job) = pending.remove(index);
            for need in needs(job) {
                if !scope.workflow.jobs.iter().any(|(other, _)| *other == need) {
                    bail!("job `{id}` needs `{need}`, which is not a job of {}", scope.workflow.file);
                }
            }
            let done = self.run_job(scope, id, job, &finished, out).with_context(|| format!("job `{}{id}`", scope.prefix))?;
            finished.insert(id.clone(), done);
        }
        Ok(finished)
    }

    fn run_job(
        &self,
        scope: &WorkflowScope<'_>,
        id: &str,
        job: &Map<String, Value>,
        finished: &BTreeMap<String, Finished>,
        out: &mut Vec<JobRun>,
    ) -> Result<Finished> {
        let path = format!("{}{id}", scope.prefix);
        let mut needs_ctx = Map::new();
        for need in needs(job) {
            let f = &finished[&need];
            needs_ctx.insert(need, json!({ "result": f.result.as_str(), "outputs": f.outputs }));
        }
        let status = Status {
            success: needs_ctx.values().all(|n| n["result"] == "success"),
            failure: needs_ctx.values().any(|n| n["result"] == "failure"),
        };
        let contexts = self.contexts([
            ("github", self.github(id, Path::new(""))),
            ("inputs", scope.inputs.clone()),
            ("needs", Value::Object(needs_ctx.clone())),
        ]);
        let run = template::condition(job.get("if"), &Scope { contexts: &contexts, status })?;
        if !run {
            out.push(JobRun { path, result: JobResult::Skipped, outputs: Map::new(), steps: Vec::new(), shim_calls: Vec::new() });
            return Ok(Finished { result: JobResult::Skipped, outputs: Map::new() });
        }
        if let Some(uses) = job.get("uses") {
            let uses = uses.as_str().ok_or_else(|| anyhow!("`uses` is not a string"))?;
            return self.call_workflow(scope, id, uses, job, &contexts, out);
        }
        let job_dir = self.run_dir.join(path.replace('/', "--"));
        let context = JobContext::new(self, &job_dir, id, scope.workflow, job, scope.inputs.clone(), Value::Object(needs_ctx))?;
        let done = run_steps(&context)?;
        let finished = Finished { result: done.result, outputs: done.outputs.clone() };
        out.push(JobRun { path, result: done.result, outputs: done.outputs, steps: done.steps, shim_calls: done.shim_calls });
        Ok(finished)
    }

    /// A job that calls a reusable workflow of this repository (`$/…` or `./…`): its `with:`
    /// is evaluated here, in the caller's contexts, and typed by the called workflow's
    /// `on.workflow_call.inputs`; its outputs come from `on.workflow_call.outputs`.
    fn call_workflow(
        &self,
        scope: &WorkflowScope<'_>,
        id: &str,
        uses: &str,
        job: &Map<String, Value>,
        contexts: &Map<String, Value>,
        out: &mut Vec<JobRun>,
    ) -> Result<Finished> {
        let file = uses
            .strip_prefix("$/.github/workflows/")
            .or_else(|| uses.strip_prefix("./.github/workflows/"))
            .filter(|f| !f.contains('/') && !f.contains('@'))
            .ok_or_else(|| {
                anyhow!("the harness runs reusable workflows of this repository only (`$/.github/workflows/X.yml`), not `{uses}`")
            })?;
        let called = Workflow::load(&self.harness.opts.workflows_dir, file)?;
        let call = called.trigger("workflow_call").ok_or_else(|| anyhow!("{file} has no `on.workflow_call`: it cannot be called"))?;
        let with = template::render(&Value::Object(object(job.get("with"), "with")?), &Scope { contexts, status: Status::OK })?;
        let with = with.as_object().cloned().unwrap_or_default();
        let inputs = typed_inputs(&object(call.get("inputs"), "inputs")?, &with, &format!("workflow_call of {file}"))?;
        let inner = WorkflowScope { workflow: &called, inputs: Value::Object(inputs), prefix: format!("{}{id}/", scope.prefix) };
        let finished = self.run_jobs(&inner, out).with_context(|| format!("called workflow {file}"))?;
        let jobs: Map<String, Value> =
            finished.iter().map(|(k, f)| (k.clone(), json!({ "result": f.result.as_str(), "outputs": f.outputs }))).collect();
        let contexts =
            self.contexts([("github", self.github(id, Path::new(""))), ("inputs", inner.inputs.clone()), ("jobs", Value::Object(jobs))]);
        let mut outputs = Map::new();
        for (name, decl) in object(call.get("outputs"), "outputs")? {
            let value = decl.get("value").ok_or_else(|| anyhow!("{file}: output `{name}` has no value"))?;
            outputs.insert(name.clone(), Value::String(template::render_text(value, &Scope { contexts: &contexts, status: Status::OK })?));
        }
        let result = if finished.values().any(|f| f.result == JobResult::Failure) { JobResult::Failure } else { JobResult::Success };
        // The calling job itself: its result and outputs, no steps of its own.
        out.push(JobRun {
            path: format!("{}{id}", scope.prefix),
            result,
            outputs: outputs.clone(),
            steps: Vec::new(),
            shim_calls: Vec::new(),
        });
        Ok(Finished { result, outputs })
    }

    /// The contexts every expression sees (`vars`, `secrets`) plus `extra`.
    pub fn contexts<const N: usize>(&self, extra: [(&str, Value); N]) -> Map<String, Value> {
        let mut map = Map::new();
        map.insert("vars".into(), json!({}));
        map.insert("secrets".into(), json!({ "GITHUB_TOKEN": TOKEN }));
        for (k, v) in extra {
            map.insert(k.to_string(), v);
        }
        map
    }
}

/// `needs:` as a list.
fn needs(job: &Map<String, Value>) -> Vec<String> {
    match job.get("needs") {
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(items)) => items.iter().filter_map(Value::as_str).map(String::from).collect(),
        _ => Vec::new(),
    }
}

/// The `inputs` context from the inputs `given` and those `declared` (`on.<trigger>.inputs`):
/// undeclared inputs are refused, missing ones take their default, and each is typed as
/// declared (`string`, `boolean`, `number`, `choice`).
pub fn typed_inputs(declared: &Map<String, Value>, given: &Map<String, Value>, trigger: &str) -> Result<Map<String, Value>> {
    if let Some(unknown) = given.keys().find(|k| !declared.contains_key(*k)) {
        bail!("input `{unknown}` is not declared by {trigger} (it declares {:?})", declared.keys().collect::<Vec<_>>());
    }
    let mut out = Map::new();
    for (name, decl) in declared {
        let kind = decl["type"].as_str().unwrap_or("string");
        let value = match given.get(name) {
            Some(v) => v.clone(),
            None if decl["required"] == true => bail!("{trigger}: the required input `{name}` is not given"),
            None => decl.get("default").cloned().unwrap_or(Value::Null),
        };
        let typed = match (kind, value) {
            ("string" | "choice" | "environment", Value::Null) => json!(""),
            ("string" | "choice" | "environment", v @ (Value::String(_) | Value::Bool(_) | Value::Number(_))) => json!(expr::to_text(&v)),
            ("boolean", Value::Null) => json!(false),
            ("boolean", v @ Value::Bool(_)) => v,
            ("number", v @ Value::Number(_)) => v,
            ("number", Value::String(s)) if s.trim().parse::<f64>().is_ok() => expr::number_value(s.trim().parse::<f64>()?),
            (kind, v) => bail!("{trigger}: input `{name}` is declared `{kind}` but gets {v}"),
        };
        if kind == "choice"
            && let Some(options) = decl["options"].as_array()
            && !options.contains(&typed)
        {
            bail!("{trigger}: input `{name}` is {typed}, not one of its options {options:?}");
        }
        out.insert(name.clone(), typed);
    }
    Ok(out)
}

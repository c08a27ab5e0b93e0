//! A small `act` for this repository's workflows: runs their jobs and steps here, the way a
//! scheduled event, a manual dispatch, a pull request or a `workflow_run` would run them on
//! GitHub, so that a workflow that cannot work fails in `cargo nextest`, not on GitHub's first
//! night.
//!
//! | part | module |
//! | --- | --- |
//! | workflow files (YAML → JSON values), the keys the harness knows | [`model`] |
//! | `${{ }}` expressions with GitHub's semantics | [`expr`] |
//! | where expressions sit: templates in strings, `if:` conditions | [`template`] |
//! | events, jobs, `needs`, job `if:`, reusable workflows and their inputs and outputs | [`runner`] |
//! | steps: bash, env, `GITHUB_OUTPUT`/`ENV`/`PATH`, `continue-on-error` | [`steps`] |
//! | checkout, cache, upload-artifact, download-artifact, the Pages actions | [`actions`] |
//! | `cargo`, `sudo`, `rustup`, `gh` stand-ins, and the log of their calls | [`shims`] |
//! | the checked-out repository | [`source`] |
//! | runs, artifacts and caches GitHub remembers | [`store`] |
//! | the REST API, faked by wiremock with the payloads of `fixtures/github/` | [`github`] |
//!
//! What is real: bash, the workflows' scripts, `git`, `curl`, `jq`, the gate's binary (in check
//! mode: `PERF_CHECK=1` makes it validate flags, environment, plan, baseline, the artifact
//! download and git refs, say what it would run, and stop), `cargo metadata`, and the
//! `cargo-perf` binary posting comments. What is not: the API (wiremock), `apt-get`, `rustup`,
//! `cargo build` (the binaries are already built), `cargo install` (it installs the built
//! `cargo-perf`, with cargo's install records and refusals), the cache (kept in the store,
//! with GitHub's keys, versions and scopes, so a second night finds what the first saved), the
//! load itself (a scenario that needs a nightly's summaries, or its exit status, gives
//! stand-ins), and Pages (a deployment is recorded, not served; a scenario can turn Pages
//! off). `git push` is real: to the local repository playing `acme/shop`.
#![allow(dead_code)] // each scenario uses a part

pub mod actions;
pub mod expr;
pub mod github;
pub mod model;
pub mod runner;
pub mod shims;
pub mod source;
pub mod steps;
pub mod store;
pub mod template;

use std::path::{Path, PathBuf};

pub use github::Event;
pub use runner::{Harness, HarnessOptions, JobResult, Run};
pub use shims::Tools;
pub use steps::Outcome;

/// This repository.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("xtask sits in the workspace").to_path_buf()
}

/// The built `cargo-perf`, next to the gate's binary (`cargo build --workspace` builds both).
pub fn cargo_perf() -> PathBuf {
    let path = Path::new(env!("CARGO_BIN_EXE_xtask")).with_file_name("cargo-perf");
    assert!(
        path.is_file(),
        "{} is missing: build it first (`cargo build -p perf --bin cargo-perf`, or `cargo build --workspace`)",
        path.display()
    );
    path
}

/// The harness's default options: this repository's `.github/workflows` and the built gate.
///
/// Two variables point it elsewhere, to try other workflows or another gate by hand:
/// `WORKFLOWS_DIR` (a folder of workflow files, such as an old commit's, from
/// `git show REV:.github/workflows/FILE`) and `WORKFLOWS_GATE` (the binary `cargo xtask`
/// runs).
pub fn default_options() -> HarnessOptions {
    let root = repo_root();
    let workflows_dir = std::env::var_os("WORKFLOWS_DIR").map_or_else(|| root.join(".github/workflows"), PathBuf::from);
    let gate = std::env::var_os("WORKFLOWS_GATE").map_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_xtask")), PathBuf::from);
    let cargo = std::env::var_os("CARGO").map_or_else(|| PathBuf::from(env!("CARGO")), PathBuf::from);
    let target_dir = Path::new(env!("CARGO_BIN_EXE_xtask")).parent().and_then(Path::parent).expect("target/<profile>/xtask").to_path_buf();
    for tool in ["bash", "git", "curl", "jq", "tar"] {
        assert!(
            std::process::Command::new("sh").args(["-c", &format!("command -v {tool}")]).output().is_ok_and(|o| o.status.success()),
            "the workflow harness needs `{tool}` on PATH (a hosted runner has it)"
        );
    }
    HarnessOptions {
        workflows_dir,
        repo_root: root,
        tools: Tools { gate, cargo_perf: cargo_perf(), cargo, target_dir },
        stored_baselines: true,
    }
}

/// A harness with the default options.
pub fn harness() -> Harness {
    Harness::new(default_options()).expect("the workflow harness starts")
}

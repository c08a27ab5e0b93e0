//! The GitHub workflows, run here as GitHub would run them (see `workflow_support`): a
//! scheduled nightly (and two nights of its history on the `perf-history` branch, deployed to
//! Pages by perf-history.yml), a nightly started by hand, a nightly with an invalid suite, a
//! schedule whose payload has no `repository`, an adopter's second night with the gate installed
//! from the cache, Pages not enabled, a pull request from this repository with a nightly
//! baseline to compare with, a fork's pull request before any nightly, and the fork's comment
//! posted from `workflow_run`. The gate runs for real, in check mode; GitHub's API is a local
//! fake speaking its real payloads.
//!
//! To try other workflow files (an old commit's, say) or another gate binary:
//!
//! ```sh
//! mkdir /tmp/old && for f in perf-pr.yml perf-nightly.yml perf-comment.yml; do
//!     git show REV:.github/workflows/$f > /tmp/old/$f; done
//! WORKFLOWS_DIR=/tmp/old cargo nextest run -p xtask -E 'test(/^workflows::/)'
//! ```

use crate::workflow_support::expr::{self, Scope, Status};
use crate::workflow_support::shims::ShimCall;
use crate::workflow_support::store::Content;
use crate::workflow_support::template;
use crate::workflow_support::*;
use serde_json::{Map, Value, json};

/// Last night's scheduled perf-nightly run, in the fake GitHub.
const NIGHTLY_RUN: u64 = 30_398_811;

/// The one gate run of a job.
fn only_gate_call(job: &runner::JobRun) -> &ShimCall {
    let calls = job.gate_calls();
    assert_eq!(calls.len(), 1, "one gate run in {}, got {calls:#?}\n{}", job.path, job.logs());
    calls[0]
}

fn env<'c>(call: &'c ShimCall, key: &str) -> Option<&'c str> {
    call.env.get(key).map(String::as_str)
}

fn assert_api_calls_all_known(h: &Harness) {
    assert!(h.github.unexpected().is_empty(), "requests the fake GitHub has no route for: {:?}", h.github.unexpected());
}

// ---------------------------------------------------------------------------------------------
// perf-nightly.yml

#[test]
fn the_scheduled_nightly_runs_every_suite_and_uploads_its_baseline_and_the_gate_binary() {
    let h = harness();
    let night = stand_in_night(&h, "2026-11-27T02:49:13.60499695Z");
    h.set_gate_results(&night).unwrap();
    let run = h.run("perf-nightly.yml", &Event::schedule()).expect("the harness runs perf-nightly.yml");
    run.assert_no_job_failed();
    let job = run.assert_success("nightly/nightly");

    // The gate ran every suite; the empty inputs reached it as empty PERF_* (GitHub sets them),
    // which it must read as "not set".
    let gate = only_gate_call(job);
    assert!(gate.checked_only(), "{gate:?}");
    assert!(gate.has_arg("--measure-noise"), "the night measures its testbed's noise: {gate:?}");
    assert_eq!(env(gate, "PERF_SUITES"), Some("all"));
    assert_eq!(env(gate, "PERF_DURATION"), Some(""), "GitHub sets the variable, empty: {gate:?}");
    assert_eq!(env(gate, "PERF_USERS"), Some(""));
    assert_eq!(env(gate, "PERF_BACKEND"), Some("local"));
    let log = &job.step("run").log;
    assert!(log.contains("check: everything is valid"), "{log}");
    assert!(log.contains("suites baseline, chaos_db"), "every suite: {log}");

    // The testbed step output names the artifact.
    let testbed = job.step("run").outputs["testbed"].as_str().unwrap_or_default().to_string();
    let parts: Vec<&str> = testbed.split('-').collect();
    assert!(parts.len() >= 4 && parts[0] == "local" && parts[1].ends_with("cpu"), "testbed {testbed:?}");
    let baseline = job.step("Upload the baseline").upload.clone().expect("an upload");
    assert_eq!(baseline.name, format!("perf-baseline-{testbed}"));
    // The gate only checked; the summaries it would have written are the scenario's stand-ins.
    let names: Vec<String> = night.iter().map(|(name, _)| name.clone()).collect();
    assert_eq!((baseline.files.clone(), baseline.checked_only), (names, false), "{baseline:?}");

    // The gate's binary, from `cargo metadata`'s target folder, uploaded as `perf-gate-bin`.
    let bin = job.step("Upload the gate's binary").upload.clone().expect("an upload");
    assert_eq!(
        (bin.name.as_str(), bin.sources.clone(), bin.files.clone()),
        ("perf-gate-bin", vec!["dist/cargo-perf".to_string()], vec!["cargo-perf".to_string()])
    );
    let cargo: Vec<&[String]> = job.shim_calls.iter().filter(|c| c.tool == "cargo").map(|c| c.args.as_slice()).collect();
    assert!(cargo.iter().any(|a| a.starts_with(&["build".into(), "--locked".into()])), "{cargo:?}");
    assert!(cargo.iter().any(|a| a.first().is_some_and(|s| s == "metadata")), "{cargo:?}");
    let stored = h.store.lock().find(run.id, "perf-gate-bin").expect("stored").files().unwrap();
    assert_eq!(stored[0].1.metadata().unwrap().len(), cargo_perf().metadata().unwrap().len(), "the built cargo-perf");

    // The reusable workflow's outputs reach the caller; nothing refreshes the stored baseline.
    let caller = run.assert_success("nightly");
    assert_eq!(caller.outputs["testbed"], json!(testbed));
    assert_eq!(caller.outputs["artifact"], json!(baseline.name));
    assert_eq!(run.job("refresh-baseline").result, JobResult::Skipped);
    assert!(job.shim_calls.iter().any(|c| c.tool == "sudo" && c.args[..2] == ["apt-get".to_string(), "install".to_string()]));
    assert_api_calls_all_known(&h);
}

#[test]
fn a_nightly_started_by_hand_runs_what_it_is_asked_and_is_never_a_baseline() {
    let h = harness();
    h.set_gate_results(&stand_in_night(&h, "2026-11-27T10:04:51Z")).unwrap();
    let inputs = [("suites", json!("spike")), ("duration", json!("60s")), ("users", json!("")), ("refresh-baseline", json!(false))];
    let run = h.run("perf-nightly.yml", &Event::dispatch("perf-nightly.yml", &inputs)).expect("the harness runs perf-nightly.yml");
    run.assert_no_job_failed();
    let job = run.assert_success("nightly/nightly");

    let gate = only_gate_call(job);
    assert_eq!((env(gate, "PERF_SUITES"), env(gate, "PERF_DURATION"), env(gate, "PERF_USERS")), (Some("spike"), Some("60s"), Some("")));
    assert!(job.step("run").log.contains("suites spike"), "{}", job.step("run").log);

    let testbed = job.step("run").outputs["testbed"].as_str().unwrap_or_default().to_string();
    let upload = job.step("Upload the baseline").upload.clone().expect("an upload");
    assert_eq!(upload.name, format!("perf-manual-{testbed}"));
    let uploads: Vec<&str> = job.steps.iter().filter_map(|s| s.upload.as_ref()).map(|u| u.name.as_str()).collect();
    assert!(uploads.iter().all(|n| !n.starts_with("perf-baseline") && *n != "perf-gate-bin"), "{uploads:?}");
    assert_eq!(job.step("Upload the gate's binary").outcome, Outcome::Skipped);
    assert_eq!(run.job("refresh-baseline").result, JobResult::Skipped);

    // Not a night of the history either: nothing pushed, nothing deployed.
    let history = history_after(&h, &run, "workflow_dispatch");
    assert_eq!((history.job("history").result, history.job("pages").result), (JobResult::Skipped, JobResult::Skipped));
    assert_eq!(h.origin_git(&["branch", "--list", "perf-history"]).unwrap(), "", "no perf-history branch");
    assert!(h.store.lock().pages_deployments.is_empty());
}

// ---------------------------------------------------------------------------------------------
// perf-nightly.yml: the history on the perf-history branch, the site on GitHub Pages

/// What a measured nightly would have written in `results/` (the harness's gate only checks):
/// a summary per default suite of this machine's testbed, of the default branch's commit,
/// started at `started_at`.
fn stand_in_night(h: &Harness, started_at: &str) -> Vec<(String, Content)> {
    let sha = h.origin_git(&["rev-parse", "main"]).unwrap();
    nightly_baseline_files(&local_testbed())
        .into_iter()
        .map(|(name, content)| {
            let Content::Bytes(bytes) = content else { unreachable!("nightly_baseline_files gives bytes") };
            let mut summary: Value = serde_json::from_slice(&bytes).unwrap();
            summary["run"]["git"]["sha"] = json!(sha);
            summary["run"]["started_at"] = json!(started_at);
            (name, Content::Bytes(serde_json::to_vec_pretty(&summary).unwrap()))
        })
        .collect()
}

/// perf-history.yml, started by `workflow_run` when the perf-nightly run `nightly` (started by
/// `event`) completed, as GitHub starts it.
fn history_after(h: &Harness, nightly: &Run, event: &str) -> Run {
    assert_eq!(nightly.workflow, "perf-nightly.yml");
    let sha = h.origin_git(&["rev-parse", "main"]).unwrap();
    let completed = Event::workflow_run_nightly(nightly.id, event, &nightly.conclusion, &sha);
    h.run("perf-history.yml", &completed).expect("the harness runs perf-history.yml")
}

/// The files of the perf-history branch in the fake GitHub's repository.
fn history_files(h: &Harness) -> Vec<String> {
    h.origin_git(&["ls-tree", "-r", "--name-only", "perf-history"]).unwrap().lines().map(String::from).collect()
}

/// The files in the Pages artifact of `run` (the tar the upload made).
fn pages_site(h: &Harness, run: &Run) -> Vec<String> {
    let store = h.store.lock();
    let artifact = store.find(run.id, "github-pages").expect("a github-pages artifact");
    let files = artifact.files().unwrap();
    assert_eq!(files.len(), 1, "one artifact.tar: {files:?}");
    assert_eq!(store.pages_deployments.last(), Some(&artifact.id), "this run's artifact is the one deployed");
    let out = std::process::Command::new("tar").arg("-tf").arg(&files[0].1).output().unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout).unwrap().lines().map(|l| l.trim_start_matches("./").to_string()).filter(|l| !l.is_empty()).collect()
}

#[test]
fn each_scheduled_nightly_adds_its_night_to_the_perf_history_branch_and_deploys_the_site() {
    let h = harness();
    let sha = h.origin_git(&["rev-parse", "main"]).unwrap();
    let testbed = local_testbed().key;
    let record = |date: &str| format!("records/{date}-{}-{testbed}.json", &sha[..12]);

    // The first night: no perf-history branch yet, so it starts as an orphan.
    h.set_gate_results(&stand_in_night(&h, "2026-11-27T02:49:13.60499695Z")).unwrap();
    let nightly = h.run("perf-nightly.yml", &Event::schedule()).expect("the harness runs perf-nightly.yml");
    nightly.assert_no_job_failed();
    let first = history_after(&h, &nightly, "schedule");
    first.assert_no_job_failed();
    let job = first.assert_success("history");
    assert_eq!(
        job.step("nightly").outputs["baseline"],
        json!(format!("perf-baseline-{testbed}")),
        "the nightly run's baseline artifact, found through the API"
    );
    let log = &job.step("Add the night to perf-history").log;
    assert!(log.contains("no perf-history branch yet"), "{log}");
    assert!(log.contains("added night 2026-11-27T02:49:13Z"), "{log}");
    assert!(job.shim_calls.iter().any(|c| c.tool == "gh" && c.args == ["auth", "setup-git"]), "credentials for the push");
    assert!(!job.shim_calls.iter().any(|c| c.tool == "cargo"), "the nightly's binary, nothing built: {:?}", job.shim_calls);
    let night_one = record("2026-11-27T024913Z");
    assert_eq!(history_files(&h), ["README.md".to_string(), night_one.clone()]);
    assert_eq!(h.origin_git(&["rev-list", "--count", "perf-history"]).unwrap(), "1");
    assert!(h.origin_git(&["merge-base", "main", "perf-history"]).is_err(), "an orphan: no commit of main in it");
    let first_record = h.origin_git(&["show", &format!("perf-history:{night_one}")]).unwrap();
    assert!(first_record.contains(&sha), "{first_record}");

    // The site went to Pages, from the deploy job with its own permissions.
    let site = pages_site(&h, &first);
    assert!(site.contains(&"index.html".to_string()), "{site:?}");
    assert!(site.iter().any(|f| f.starts_with(&format!("{testbed}/")) && f.ends_with(".html")), "an endpoint page: {site:?}");
    let pages = first.assert_success("pages");
    assert_eq!(pages.step("deployment").outputs["page_url"], json!(crate::workflow_support::actions::PAGES_URL));

    // The second night appends a second record; the first stays as it was.
    h.set_gate_results(&stand_in_night(&h, "2026-11-28T02:51:40Z")).unwrap();
    let nightly = h.run("perf-nightly.yml", &Event::schedule()).expect("the harness runs perf-nightly.yml");
    nightly.assert_no_job_failed();
    let second = history_after(&h, &nightly, "schedule");
    second.assert_no_job_failed();
    let log = &second.assert_success("history").step("Add the night to perf-history").log;
    assert!(!log.contains("no perf-history branch yet") && log.contains("history: 2 nights"), "{log}");
    assert_eq!(history_files(&h), ["README.md".to_string(), night_one.clone(), record("2026-11-28T025140Z")]);
    assert_eq!(h.origin_git(&["rev-list", "--count", "perf-history"]).unwrap(), "2");
    assert_eq!(h.origin_git(&["show", &format!("perf-history:{night_one}")]).unwrap(), first_record);
    assert!(pages_site(&h, &second).contains(&"index.html".to_string()));
    assert_eq!(h.store.lock().pages_deployments.len(), 2, "one deployment a night");
    assert_api_calls_all_known(&h);
}

/// GitHub sends some scheduled runs' payloads without `repository`: the night is still a
/// baseline, its binary uploaded, and a night of the history.
#[test]
fn a_schedule_payload_without_repository_still_makes_a_baseline_and_a_night_of_history() {
    let h = harness();
    h.set_gate_results(&stand_in_night(&h, "2026-11-27T02:49:13Z")).unwrap();
    let event = Event::schedule_without_repository();
    assert!(event.payload.get("repository").is_none() && event.payload.get("schedule").is_some());
    let nightly = h.run("perf-nightly.yml", &event).expect("the harness runs perf-nightly.yml");
    nightly.assert_no_job_failed();
    let job = nightly.assert_success("nightly/nightly");
    let upload = job.step("Upload the baseline").upload.clone().expect("an upload");
    assert!(upload.name.starts_with("perf-baseline-") && !upload.files.is_empty(), "{upload:?}");
    assert_eq!(job.step("Upload the gate's binary").outcome, Outcome::Success);
    assert_eq!(job.step("Save the cargo cache for pull requests").outcome, Outcome::Success);

    let history = history_after(&h, &nightly, "schedule");
    history.assert_no_job_failed();
    history.assert_success("history");
    history.assert_success("pages");
    let files = history_files(&h);
    assert!(files.len() == 2 && files[1].starts_with("records/2026-11-27T024913Z-"), "{files:?}");
    assert_api_calls_all_known(&h);
}

/// A summary of `name` from `files`, with `edit` applied.
fn edit_summary(files: &mut [(String, Content)], name: &str, edit: impl Fn(&mut Value)) {
    let (_, content) = files.iter_mut().find(|(n, _)| n == name).unwrap_or_else(|| panic!("no {name}"));
    let Content::Bytes(bytes) = content else { unreachable!("stand-ins are bytes") };
    let mut summary: Value = serde_json::from_slice(bytes).unwrap();
    edit(&mut summary);
    *bytes = serde_json::to_vec_pretty(&summary).unwrap();
}

/// An A/A's noise file of `suite`, as --measure-noise writes it beside the summary.
fn noise_file(suite: &str, testbed: &str) -> (String, Content) {
    let noise = json!({ "suite": suite, "testbed": testbed, "recorded_at": "2026-11-27T03:40:02Z", "endpoints": {} });
    (format!("{suite}.noise.json"), Content::Bytes(serde_json::to_vec_pretty(&noise).unwrap()))
}

/// One suite of `all` was an invalid run (the gate exits 2): the others are still tonight's
/// baseline, with their noise, and the night still uploads its binary and saves the cache, so
/// that pull requests find them. A night with no valid suite at all fails.
#[test]
fn one_invalid_suite_among_all_still_uploads_the_baseline_of_the_valid_ones() {
    let h = harness();
    let testbed = local_testbed().key;
    let mut night = stand_in_night(&h, "2026-11-27T02:49:13Z");
    assert!(night.len() >= 2, "the nightly runs more than one suite: {:?}", night.iter().map(|(n, _)| n).collect::<Vec<_>>());
    let suite_of = |name: &str| name.trim_end_matches(".json").to_string();
    let (valid_suite, invalid_suite) = (suite_of(&night[0].0), suite_of(&night[night.len() - 1].0));
    edit_summary(&mut night, &format!("{invalid_suite}.json"), |s| {
        s["valid"] = json!(false);
        s["invalid_reasons"] = json!(["the machine was busy with other work"]);
    });
    night.push(noise_file(&valid_suite, &testbed));
    night.push(noise_file(&invalid_suite, &testbed));
    h.set_gate_results(&night).unwrap();
    h.set_gate_exit(Some(2)).unwrap();

    let run = h.run("perf-nightly.yml", &Event::schedule()).expect("the harness runs perf-nightly.yml");
    run.assert_no_job_failed();
    assert_eq!(run.conclusion, "success", "pull requests take baselines from successful runs only");
    let job = run.assert_success("nightly/nightly");
    assert_eq!(job.step("run").outputs["exit-code"], json!("2"));
    let valid = job.step("valid");
    assert!(
        valid
            .annotations
            .iter()
            .any(|a| a.starts_with("::error title=invalid suites left out of the baseline::") && a.contains(&invalid_suite)),
        "{:?}",
        valid.annotations
    );
    let upload = job.step("Upload the baseline").upload.clone().expect("an upload");
    assert_eq!(upload.name, format!("perf-baseline-{testbed}"));
    let mut expected: Vec<String> = night.iter().map(|(n, _)| n.clone()).filter(|n| !n.starts_with(&format!("{invalid_suite}."))).collect();
    expected.sort();
    assert_eq!(upload.files, expected, "every valid suite with its noise, not {invalid_suite}");
    assert!(upload.files.contains(&format!("{valid_suite}.noise.json")));
    assert_eq!(job.step("Upload the gate's binary").outcome, Outcome::Success);
    assert_eq!(job.step("Save the cargo cache for pull requests").outcome, Outcome::Success);

    // No valid suite at all: no baseline, and the night fails.
    let summaries: Vec<String> = night.iter().map(|(n, _)| n.clone()).filter(|n| !n.ends_with(".noise.json")).collect();
    for name in &summaries {
        edit_summary(&mut night, name, |s| s["valid"] = json!(false));
    }
    h.set_gate_results(&night).unwrap();
    let run = h.run("perf-nightly.yml", &Event::schedule()).expect("the harness runs perf-nightly.yml");
    let job = run.job("nightly/nightly");
    assert_eq!((job.result, run.conclusion.as_str()), (JobResult::Failure, "failure"), "{}", job.logs());
    assert!(job.step("valid").annotations.iter().any(|a| a.starts_with("::error title=no baseline tonight::")), "{}", job.logs());
    assert_eq!(job.step("Upload the baseline").outcome, Outcome::Skipped);
}

/// Pages not enabled: perf-history's deploy fails, alone. The nightly run concluded
/// `success`, so the next pull request still gets that night's baseline.
#[test]
fn pages_not_enabled_still_leaves_the_next_pull_request_its_baseline() {
    let h = harness();
    let testbed = local_testbed().key;
    h.store.lock().pages_enabled = false;
    h.set_gate_results(&stand_in_night(&h, "2026-11-27T02:49:13Z")).unwrap();
    let nightly = h.run("perf-nightly.yml", &Event::schedule()).expect("the harness runs perf-nightly.yml");
    nightly.assert_no_job_failed();
    assert_eq!(nightly.conclusion, "success");

    let history = history_after(&h, &nightly, "schedule");
    history.assert_success("history");
    let pages = history.job("pages");
    assert_eq!(pages.result, JobResult::Failure);
    assert!(pages.logs().contains("Get Pages site failed"), "{}", pages.logs());
    assert_eq!(history.conclusion, "failure");
    assert!(h.store.lock().pages_deployments.is_empty());
    assert_eq!(history_files(&h).len(), 2, "the night is on perf-history all the same");

    h.set_gate_results(&[]).unwrap();
    let pr = h.run("perf-pr.yml", &Event::pull_request(false)).expect("the harness runs perf-pr.yml");
    pr.assert_no_job_failed();
    let log = &pr.assert_success("gate/gate").step("Perf gate").log;
    assert!(
        log.contains(&format!("baseline: artifact `perf-baseline-{testbed}` of the newest successful scheduled perf-nightly.yml run")),
        "{log}"
    );
    assert!(log.contains("the stored baseline as a second opinion"), "{log}");
    assert_api_calls_all_known(&h);
}

// ---------------------------------------------------------------------------------------------
// Installing the gate: night 1 installs, night 2 finds it in the cache

/// A revision of the gate, as an adopter pins it.
const GATE_REV: &str = "0123456789abcdef0123456789abcdef01234567";

fn adopter_install() -> String {
    format!("--locked --git https://github.com/perf-gate/perf-gate --rev {GATE_REV} perf")
}

/// The adopter's way: perf-nightly.yml with `install` and `gate: cargo perf`, two scheduled
/// nights in a row, the second with the first's cache.
#[test]
fn the_second_night_finds_the_gate_installed_by_the_first_in_the_cache() {
    let workflows = tempfile::tempdir().unwrap();
    copy_workflows(workflows.path(), |name, text| {
        if name == "perf-nightly.yml" {
            assert!(text.contains("      gate: cargo xtask perf\n"), "perf-nightly.yml names its gate");
            text.replace("      gate: cargo xtask perf\n", &format!("      gate: cargo perf\n      install: {}\n", adopter_install()))
        } else {
            text
        }
    });
    let h = Harness::new(HarnessOptions { workflows_dir: workflows.path().to_path_buf(), ..default_options() }).unwrap();
    for (night, started_at) in [(1, "2026-11-27T02:49:13Z"), (2, "2026-11-28T02:51:40Z")] {
        h.set_gate_results(&stand_in_night(&h, started_at)).unwrap();
        let run = h.run("perf-nightly.yml", &Event::schedule()).expect("the harness runs perf-nightly.yml");
        run.assert_no_job_failed();
        let job = run.assert_success("nightly/nightly");
        let installs: Vec<&ShimCall> =
            job.shim_calls.iter().filter(|c| c.tool == "cargo" && c.args.first().is_some_and(|a| a == "install")).collect();
        let install_log = &job.step("Install the gate").log;
        if night == 1 {
            assert_eq!(job.step("gate-cache").outputs["cache-hit"], json!("false"));
            assert_eq!(installs.len(), 1, "{installs:?}");
            assert!(installs[0].arg_after("--root").is_some_and(|r| r.ends_with("/perf-gate")), "a root of its own: {:?}", installs[0]);
            assert_eq!(installs[0].arg_after("--rev"), Some(GATE_REV));
            let saved = job.step("Post The installed gate");
            assert_eq!(saved.outcome, Outcome::Success);
            assert!(saved.log.contains("Cache saved with key: perf-gate-Linux-"), "{}", saved.log);
        } else {
            assert_eq!(job.step("gate-cache").outputs["cache-hit"], json!("true"), "{}", job.logs());
            assert!(installs.is_empty(), "nothing is installed again: {installs:?}\n{install_log}");
            assert!(install_log.contains("the gate is installed already"), "{install_log}");
            assert!(!job.steps.iter().any(|s| s.name == "Post The installed gate"), "an exact hit saves nothing");
        }
        // The installed gate ran the suites, and is the binary the night uploads.
        let gate = only_gate_call(job);
        assert_eq!(gate.args.first().map(String::as_str), Some("perf"), "`cargo perf`: {gate:?}");
        assert!(job.step("run").log.contains("check: everything is valid"), "{}", job.step("run").log);
        let bin = job.step("Upload the gate's binary").upload.clone().expect("an upload");
        assert_eq!(bin.files, ["cargo-perf".to_string()]);
        assert!(!job.shim_calls.iter().any(|c| c.tool == "cargo" && c.args.first().is_some_and(|a| a == "build")), "installed, not built");
    }
    assert_api_calls_all_known(&h);
}

/// A workflow that caches what `cached` names of an installed gate, then installs it.
fn install_twice(cached: &[&str]) -> String {
    let paths = cached.iter().map(|p| format!("            {p}\n")).collect::<Vec<_>>().concat();
    format!(
        "name: install-twice\n\
         on:\n  schedule:\n    - cron: \"0 3 * * *\"\n\
         permissions: {{}}\n\
         jobs:\n  install:\n    runs-on: ubuntu-24.04\n    steps:\n\
         \x20     - name: Cache\n        uses: actions/cache@9255dc7a253b0ccc959486e2bca901246202afeb # v5.0.1\n        with:\n          path: |\n{paths}          key: installed-gate\n\
         \x20     - name: Install\n        run: cargo install {}\n",
        adopter_install()
    )
}

/// The harness's cache and `cargo install` behave as GitHub's and cargo's: a cached binary
/// without cargo's install records makes the second night's `cargo install` fail as it did for
/// the workflows before they installed into a root of their own; with the records it is
/// "already installed".
#[test]
fn the_harness_catches_a_cached_binary_without_cargos_install_records() {
    let with_records = ["~/.cargo/bin/cargo-perf", "~/.cargo/.crates.toml", "~/.cargo/.crates2.json"];
    for (cached, records) in [(&with_records[..1], false), (&with_records[..], true)] {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("install-twice.yml"), install_twice(cached)).unwrap();
        let h = Harness::new(HarnessOptions { workflows_dir: dir.path().to_path_buf(), ..default_options() }).unwrap();
        let first = h.run("install-twice.yml", &Event::schedule()).expect("the harness runs install-twice.yml");
        let job = first.assert_success("install");
        assert!(job.step("Post Cache").log.contains("Cache saved with key: installed-gate"), "{}", job.logs());

        let second = h.run("install-twice.yml", &Event::schedule()).expect("the harness runs install-twice.yml");
        let job = second.job("install");
        assert_eq!(job.step("Cache").outputs["cache-hit"], json!("true"), "{}", job.logs());
        let log = &job.step("Install").log;
        if records {
            assert_eq!(job.result, JobResult::Success, "{}", job.logs());
            assert!(log.contains("Ignored package `perf v") && log.contains("is already installed, use --force to override"), "{log}");
        } else {
            assert_eq!(job.result, JobResult::Failure, "{}", job.logs());
            assert!(log.contains("error: binary `cargo-perf` already exists in destination\nAdd --force to overwrite"), "{log}");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// perf-pr.yml

/// The testbed of the bundled plan's local runs on this machine: its link to the databases
/// included (`-link500us`), as the gate's `check` reports it.
fn local_testbed() -> perf::summary::Testbed {
    let plan = perf::plan::load(&repo_root().join("perf.toml")).expect("perf.toml loads");
    let compiled = plan.compile(&Default::default()).expect("perf.toml compiles");
    perf::summary::testbed("local", false, None).with_link(compiled.setup.environment.link)
}

/// Last night's `perf-baseline-<testbed>`: the bundled v1 summary, relabelled with this
/// machine's testbed and each default suite's current definition hash, so that the gate finds
/// it comparable.
fn nightly_baseline_files(testbed: &perf::summary::Testbed) -> Vec<(String, Content)> {
    let plan = perf::plan::load(&repo_root().join("perf.toml")).expect("perf.toml loads");
    let compiled = plan.compile(&Default::default()).expect("perf.toml compiles");
    let template: Value =
        serde_json::from_str(&std::fs::read_to_string(repo_root().join("fixtures/summaries/v1-baseline-quick.json")).unwrap()).unwrap();
    let mut recorded = serde_json::to_value(testbed).unwrap();
    // The CPU calibration varies from run to run, and a busy test machine can be 25% slower
    // than the same machine idle: leave it out, so only the testbed key is compared.
    recorded.as_object_mut().unwrap().remove("cpu_score");
    compiled
        .suites
        .iter()
        .map(|suite| {
            let mut summary = template.clone();
            summary["suite"] = json!(suite.name);
            summary["run"]["testbed"] = recorded.clone();
            summary["run"]["suite_hash"] = json!(suite.definition_hash);
            summary["run"]["quick"] = json!(false);
            (format!("{}.json", suite.name), Content::Bytes(serde_json::to_vec_pretty(&summary).unwrap()))
        })
        .collect()
}

#[test]
fn a_pull_request_from_this_repository_runs_ab_with_last_nights_baseline_beside_and_comments() {
    let h = harness();
    let testbed = local_testbed();
    let artifact = format!("perf-baseline-{}", testbed.key);
    h.add_run(NIGHTLY_RUN, "perf-nightly.yml", "schedule", "success");
    h.store.lock().add_artifact(NIGHTLY_RUN, &artifact, &nightly_baseline_files(&testbed)).unwrap();

    let run = h.run("perf-pr.yml", &Event::pull_request(false)).expect("the harness runs perf-pr.yml");
    run.assert_no_job_failed();
    let job = run.assert_success("gate/gate");
    let gate = only_gate_call(job);
    assert!(gate.has_arg("--comment") && !gate.has_arg("--no-comment"), "{gate:?}");
    assert_eq!(gate.arg_after("--against"), Some("HEAD^1"), "A/B is the verdict by default: {gate:?}");
    assert_eq!(gate.arg_after("--baseline-from-artifact"), Some("perf-baseline"));
    let log = &job.step("Perf gate").log;
    // Last night's baseline is downloaded all the same: the report's second opinion.
    assert!(log.contains(&format!("baseline: artifact `{artifact}` of the newest successful scheduled perf-nightly.yml run")), "{log}");
    assert!(log.contains("check: would run A/B against HEAD^1"), "{log}");
    assert!(log.contains("the stored baseline as a second opinion"), "{log}");
    assert_eq!(job.step("Upload results").outcome, Outcome::Success);
    assert_api_calls_all_known(&h);
}

/// `compare: stored` (dedicated runners): last night's baseline is the verdict, and A/B only
/// the fallback.
#[test]
fn a_pull_request_with_compare_stored_uses_last_nights_baseline_and_no_ab() {
    let workflows = tempfile::tempdir().unwrap();
    copy_workflows(workflows.path(), |name, text| {
        if name == "perf-pr.yml" {
            assert!(text.contains("      backend: local\n"), "perf-pr.yml passes the backend");
            text.replace("      backend: local\n", "      backend: local\n      compare: stored\n")
        } else {
            text
        }
    });
    let h = Harness::new(HarnessOptions { workflows_dir: workflows.path().to_path_buf(), ..default_options() }).unwrap();
    let testbed = local_testbed();
    let artifact = format!("perf-baseline-{}", testbed.key);
    h.add_run(NIGHTLY_RUN, "perf-nightly.yml", "schedule", "success");
    h.store.lock().add_artifact(NIGHTLY_RUN, &artifact, &nightly_baseline_files(&testbed)).unwrap();
    let run = h.run("perf-pr.yml", &Event::pull_request(false)).expect("the harness runs perf-pr.yml");
    run.assert_no_job_failed();
    let job = run.assert_success("gate/gate");
    let gate = only_gate_call(job);
    assert_eq!(gate.arg_after("--fallback-against"), Some("HEAD^1"), "{gate:?}");
    assert!(!gate.has_arg("--against"), "{gate:?}");
    let log = &job.step("Perf gate").log;
    assert!(log.contains("check: would run baseline, concurrent on the local backend"), "{log}");
    assert!(!log.contains("A/B"), "a comparable nightly baseline: no A/B fallback\n{log}");
}

/// A copy of the workflows, each file's text through `edit`.
fn copy_workflows(to: &std::path::Path, edit: impl Fn(&str, String) -> String) {
    for entry in std::fs::read_dir(default_options().workflows_dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let text = std::fs::read_to_string(&path).unwrap();
        std::fs::write(to.join(&name), edit(&name, text)).unwrap();
    }
}

#[test]
fn a_fork_pull_request_before_any_nightly_runs_ab_and_still_uploads_its_results() {
    // A machine kind with no stored baseline of its testbed and no nightly yet.
    let h = Harness::new(HarnessOptions { stored_baselines: false, ..default_options() }).unwrap();
    let run = h.run("perf-pr.yml", &Event::pull_request(true)).expect("the harness runs perf-pr.yml");
    run.assert_no_job_failed();
    let job = run.assert_success("gate/gate");
    let gate = only_gate_call(job);
    assert!(gate.has_arg("--no-comment") && !gate.has_arg("--comment"), "a fork's token cannot comment: {gate:?}");
    let log = &job.step("Perf gate").log;
    assert!(log.contains("no nightly baseline: artifact `perf-baseline-"), "{log}");
    assert!(log.contains("would run A/B against HEAD^1"), "{log}");
    assert_eq!(job.step("Upload results").outcome, Outcome::Success);
    assert_api_calls_all_known(&h);
}

/// The harness clones as `actions/checkout` does: without `fetch-depth: 2` a pull request's
/// checkout has no `HEAD^1`, and A/B cannot work. A copy of the workflows with
/// that one line changed must fail here.
#[test]
fn the_harness_catches_a_checkout_too_shallow_for_ab() {
    let workflows = tempfile::tempdir().unwrap();
    copy_workflows(workflows.path(), |name, text| {
        if name == "perf-gate.yml" {
            assert!(text.contains("fetch-depth: 2"), "perf-gate.yml checks out two commits");
            text.replace("fetch-depth: 2", "fetch-depth: 1")
        } else {
            text
        }
    });
    let h = Harness::new(HarnessOptions { workflows_dir: workflows.path().to_path_buf(), stored_baselines: false, ..default_options() })
        .unwrap();
    let run = h.run("perf-pr.yml", &Event::pull_request(true)).expect("the harness runs perf-pr.yml");
    let job = run.job("gate/gate");
    assert_eq!(job.result, JobResult::Failure);
    let log = &job.step("Perf gate").log;
    assert!(log.contains("`HEAD^1` is not a commit"), "{log}");
}

// ---------------------------------------------------------------------------------------------
// perf-comment.yml

/// The fork's perf-pr run the `workflow_run` event is about.
const FORK_PR_RUN: u64 = 30_450_001;
const REPORT: &str = "## Performance gate: PASS\n\nNo regression. All 48 SLOs hold.\n";

/// A harness where the fork's run uploaded `results` as `perf-results`, and, when
/// `nightly_binary`, last night's nightly uploaded `perf-gate-bin`.
fn comment_scenario(results: &[(&str, &str)], nightly_binary: bool) -> (Harness, Event) {
    let h = harness();
    let event = Event::workflow_run_fork("success");
    assert_eq!(event.payload["workflow_run"]["id"], json!(FORK_PR_RUN));
    h.github.set_pull_head(event.payload["workflow_run"]["head_sha"].as_str().unwrap());
    h.add_run(NIGHTLY_RUN, "perf-nightly.yml", "schedule", "success");
    if nightly_binary {
        h.store.lock().add_artifact(NIGHTLY_RUN, "perf-gate-bin", &[("cargo-perf".into(), Content::File(cargo_perf()))]).unwrap();
    }
    h.add_run(FORK_PR_RUN, "perf-pr.yml", "pull_request", "success");
    let files: Vec<(String, Content)> = results.iter().map(|(name, text)| (name.to_string(), Content::from(*text))).collect();
    h.store.lock().add_artifact(FORK_PR_RUN, "perf-results", &files).unwrap();
    (h, event)
}

/// Runs perf-comment.yml and returns the one comment posted to pull request #7.
fn post_fork_comment(h: &Harness, event: &Event) -> (Run, String) {
    let run = h.run("perf-comment.yml", event).expect("the harness runs perf-comment.yml");
    run.assert_no_job_failed();
    run.assert_success("comment/comment");
    let comments = h.github.comments();
    assert_eq!(comments.len(), 1, "one comment: {comments:#?}");
    assert_eq!((comments[0].issue, comments[0].updated), (Some(7), None), "a new comment on #7");
    assert_api_calls_all_known(h);
    (run, comments[0].body.clone())
}

#[test]
fn a_fork_gets_its_report_as_a_comment_posted_by_last_nights_binary() {
    let (h, event) = comment_scenario(&[("report.md", REPORT), ("pr-number", "7\n")], true);
    let (run, body) = post_fork_comment(&h, &event);
    assert!(body.starts_with(perf::github::COMMENT_MARKER) && body.contains(REPORT), "{body}");
    let job = run.job("comment/comment");
    assert_eq!(job.step("Find the nightly's binary").outputs["run-id"], json!(NIGHTLY_RUN.to_string()));
    assert_eq!(job.step("Install the gate").outcome, Outcome::Skipped, "nothing is built when the nightly's binary exists");
}

#[test]
fn a_fork_whose_gate_stopped_early_gets_a_comment_saying_so() {
    let (h, event) = comment_scenario(&[("pr-number", "7\n")], true);
    let (_, body) = post_fork_comment(&h, &event);
    assert!(
        body.contains("stopped before writing its report") && body.contains("https://github.com/acme/shop/actions/runs/30450001"),
        "{body}"
    );
}

#[test]
fn before_any_nightly_the_comment_job_installs_the_gate_from_the_default_branch() {
    let (h, event) = comment_scenario(&[("report.md", REPORT), ("pr-number", "7\n")], false);
    let (run, body) = post_fork_comment(&h, &event);
    assert!(body.contains(REPORT), "{body}");
    let job = run.job("comment/comment");
    assert_eq!(job.step("Find the nightly's binary").outputs["run-id"], json!(""));
    let install =
        job.shim_calls.iter().find(|c| c.tool == "cargo" && c.args.first().is_some_and(|a| a == "install")).expect("cargo install");
    assert!(
        install.arg_after("--root").is_some_and(|r| r.ends_with("/perf-gate")) && install.arg_after("--path") == Some("perf"),
        "{install:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// The expression evaluator

fn eval_with(src: &str, contexts: &Map<String, Value>) -> anyhow::Result<Value> {
    expr::evaluate(src, &Scope { contexts, status: Status::OK })
}

#[test]
fn expressions_follow_githubs_semantics() {
    let contexts = |suites: &str| -> Map<String, Value> {
        json!({
            "inputs": { "suites": suites, "refresh-baseline": false, "rounds": 3 },
            "github": { "repository": "acme/shop", "event": { "pull_request": { "head": { "repo": { "full_name": "Acme/Shop" } } } } },
            "steps": { "run": { "outputs": { "testbed": "local-2cpu-epyc-24g" } } },
        })
        .as_object()
        .unwrap()
        .clone()
    };
    let (unset, set) = (contexts(""), contexts("spike"));
    // `||` is the first truthy operand itself: the default idiom.
    assert_eq!(eval_with("inputs.suites || 'all'", &unset).unwrap(), json!("all"));
    assert_eq!(eval_with("inputs.suites || 'all'", &set).unwrap(), json!("spike"));
    assert_eq!(eval_with("inputs.missing || inputs.rounds", &set).unwrap(), json!(3), "a missing property is null");
    // `&&` is the first falsy operand, or the last; it binds tighter than `||`.
    assert_eq!(eval_with("inputs.suites && 'x'", &unset).unwrap(), json!(""));
    assert_eq!(eval_with("inputs.suites && 'x'", &set).unwrap(), json!("x"));
    assert_eq!(eval_with("inputs.suites && false || 'fallback'", &set).unwrap(), json!("fallback"));
    assert_eq!(eval_with("false && (false || true)", &set).unwrap(), json!(false));
    // `==` ignores case on strings; `!=` is its negation; mixed types compare as numbers.
    assert_eq!(eval_with("github.event.pull_request.head.repo.full_name == github.repository", &set).unwrap(), json!(true));
    assert_eq!(eval_with("github.event.pull_request.head.repo.full_name != 'mallory/shop'", &set).unwrap(), json!(true));
    assert_eq!(eval_with("inputs.suites == 0 && !inputs.refresh-baseline", &unset).unwrap(), json!(true), "'' == 0");
    assert_eq!(eval_with("inputs['refresh-baseline'] == false", &set).unwrap(), json!(true));
    assert_eq!(eval_with("0xff == 255 && 2e3 == 2000 && -1.5 < 0 && 'it''s' == 'IT''S'", &set).unwrap(), json!(true));
    // Functions.
    assert_eq!(
        eval_with("format('perf-{0}-{1}', 'baseline', steps.run.outputs.testbed)", &set).unwrap(),
        json!("perf-baseline-local-2cpu-epyc-24g")
    );
    assert_eq!(
        eval_with("startsWith(steps.run.outputs.testbed, 'LOCAL-') && contains(steps.run.outputs.testbed, 'epyc')", &set).unwrap(),
        json!(true)
    );
    assert_eq!(eval_with("hashFiles('**/Cargo.lock')", &set).unwrap(), json!(expr::FAKE_HASH));
    // A template keeps a lone expression's type; text around it makes a string.
    let scope = Scope { contexts: &set, status: Status::OK };
    assert_eq!(template::render(&json!("${{ inputs.rounds }}"), &scope).unwrap(), json!(3));
    assert_eq!(template::render(&json!("perf-${{ inputs.suites }}-${{ inputs.missing }}"), &scope).unwrap(), json!("perf-spike-"));
    // `if:`: success() is implied unless a status function is called.
    let failed = Scope { contexts: &set, status: Status { success: false, failure: true } };
    assert!(!template::condition(Some(&json!("inputs.suites != ''")), &failed).unwrap());
    assert!(template::condition(Some(&json!("${{ always() }}")), &failed).unwrap());
    assert!(template::condition(Some(&json!("failure() && inputs.suites == 'SPIKE'")), &failed).unwrap());
    // Unknown syntax is an error, never a value.
    for bad in
        ["frobnicate(inputs.suites)", "input.suites", "inputs.suites = 'a'", "inputs.*.x", "'unterminated", "inputs.suites &&", "1 + 2"]
    {
        let error = eval_with(bad, &set).expect_err(bad);
        assert!(error.to_string().contains(bad), "the error names the expression: {error:#}");
    }
    assert!(format!("{:#}", eval_with("frobnicate(1)", &set).unwrap_err()).contains("unknown function `frobnicate()`"));
    assert!(
        template::condition(Some(&json!("${{ inputs.suites }} == 'spike'")), &scope).is_err(),
        "text after `}}` makes an always-true string on GitHub"
    );
}

//! The published contract: a real summary, produced by running a small suite against a local
//! server, validates against `schema/summary.schema.json`; the schema rejects a summary with a
//! required field removed, a field of the wrong type, or an unknown field.

use std::path::Path;
use std::time::Duration;

use crate::engine_support::{compile, run, start};
use perf::summary::{self, RunContext, Summary};
use serde_json::Value;

fn schema() -> jsonschema::Validator {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../schema/summary.schema.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let schema: Value = serde_json::from_str(&text).expect("the schema is JSON");
    jsonschema::draft202012::meta::validate(&schema).expect("the schema is a valid draft 2020-12 schema");
    jsonschema::draft202012::new(&schema).expect("the schema compiles")
}

fn errors(v: &jsonschema::Validator, instance: &Value) -> Vec<String> {
    v.iter_errors(instance).map(|e| format!("{} at {}", e, e.instance_path())).collect()
}

async fn real_summary() -> Summary {
    let server = start().await;
    let compiled = compile(
        r#"
[requests.login]
method = "POST"
path = "/login"
capture = { token = "/token" }
tags = ["auth"]
[requests.create]
method = "POST"
path = "/items"
headers = { authorization = "Bearer {{token}}" }
body = { name = "x" }
capture = { id = "/id" }
[requests.read]
path = "/items/{{id}}"
headers = { authorization = "Bearer {{token}}" }
[requests.broken]
path = "/status/503"
[workflows.w]
steps = [{ request = "login" }, { request = "create" }, { request = "read", think = "5ms" }]
[suites.s]
warmup = "500ms"
setup = [{ request = "login" }]
[suites.s.scenarios.users]
executor = "constant-vus"
vus = 2
duration = "2s"
workflow = "w"
[suites.s.scenarios.rate]
executor = "constant-arrival-rate"
rate = 20
duration = "2s"
request = "broken"
[suites.s.slo]
"*" = { p99 = "500ms", error_rate = 0.01 }
read = { min_rps = 1 }
"#,
    );
    let result = run(&compiled, &server.url, Duration::from_secs(20)).await;
    let ctx = RunContext {
        git: summary::git_info(Path::new(env!("CARGO_MANIFEST_DIR"))),
        backend: perf::plan::BackendKind::External,
        host: summary::host_info(),
        plan_hash: "0".repeat(64),
        testbed: Some(summary::testbed("external", true, None)),
        quick: true,
        tags: vec!["auth".into()],
        tool_version: perf::TOOL_VERSION.into(),
    };
    summary::build(&result, &ctx)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_summary_validates_and_damaged_ones_do_not() {
    let v = schema();
    let s = real_summary().await;
    let json = serde_json::to_value(&s).unwrap();
    assert_eq!(errors(&v, &json), Vec::<String>::new());

    // What the run should have put in it, so that the document is not trivially small.
    assert_eq!(s.endpoints.keys().collect::<Vec<_>>(), ["broken", "create", "login", "read"]);
    assert!(s.endpoints["read"].requests > 5);
    assert_eq!(s.endpoints["broken"].errors.by_status.get("503"), Some(&s.endpoints["broken"].requests));
    assert!(s.slo.iter().any(|r| r.endpoint == "broken" && r.metric == "error_rate" && !r.passed));
    assert!(s.slo.iter().any(|r| r.endpoint == "read" && r.metric == "min_rps" && r.passed));
    let h = summary::hist::decode(&s.endpoints["read"].histogram).unwrap();
    assert_eq!(h.len(), s.endpoints["read"].requests);

    let damaged = |f: &dyn Fn(&mut Value)| {
        let mut d = json.clone();
        f(&mut d);
        d
    };
    let removed = [
        damaged(&|d| {
            d.as_object_mut().unwrap().remove("schema_version");
        }),
        damaged(&|d| {
            d["run"].as_object_mut().unwrap().remove("plan_hash");
        }),
        damaged(&|d| {
            d["endpoints"]["read"].as_object_mut().unwrap().remove("histogram");
        }),
        damaged(&|d| {
            d["slo"][0].as_object_mut().unwrap().remove("passed");
        }),
        damaged(&|d| {
            d["windows"][0].as_object_mut().unwrap().remove("active_vus");
        }),
    ];
    for (i, d) in removed.iter().enumerate() {
        assert!(!errors(&v, d).is_empty(), "removed field #{i} was not noticed");
    }
    let wrong_type = damaged(&|d| d["endpoints"]["read"]["requests"] = Value::from("many"));
    assert!(!errors(&v, &wrong_type).is_empty());
    let unknown = damaged(&|d| d["run"]["surprise"] = Value::from(1));
    assert!(!errors(&v, &unknown).is_empty());
    let bad_kind = damaged(&|d| d["endpoints"]["broken"]["errors"]["by_kind"]["oops"] = Value::from(1));
    assert!(!errors(&v, &bad_kind).is_empty());

    // Written atomically and read back validated, it is the same summary.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("results").join("s.json");
    summary::write_atomic(&path, &s).unwrap();
    assert_eq!(summary::read(&path).unwrap(), s);
    let names: Vec<_> = std::fs::read_dir(path.parent().unwrap()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(names, ["s.json"], "no temporary file is left behind");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_shards_merged_by_the_merge_command_validate_and_add_up() {
    let v = schema();
    let dir = tempfile::tempdir().unwrap();
    let mut shards = Vec::new();
    for index in 1..=2 {
        let mut s = real_summary().await;
        s.run.shard = Some(summary::Shard { index, count: 2 });
        let folder = dir.path().join(format!("shard-{index}"));
        summary::write_atomic(&folder.join("s.json"), &s).unwrap();
        // Other tools' files beside the summaries are left alone.
        std::fs::write(folder.join("bmf.json"), "{}").unwrap();
        shards.push((folder, s));
    }
    let out = dir.path().join("merged");
    let args = |dirs: Vec<std::path::PathBuf>| perf::cli::merge::MergeArgs { dirs, out: out.clone() };
    let code = perf::cli::merge::run(args(shards.iter().map(|(d, _)| d.clone()).collect())).unwrap();
    assert_eq!(code, std::process::ExitCode::SUCCESS);
    let merged = summary::read(&out.join("s.json")).unwrap();
    assert_eq!(errors(&v, &serde_json::to_value(&merged).unwrap()), Vec::<String>::new());
    for (name, e) in &merged.endpoints {
        let parts: u64 = shards.iter().map(|(_, s)| s.endpoints[name].requests).sum();
        assert_eq!(e.requests, parts, "{name}");
        assert_eq!(
            summary::hist::decode(&e.histogram).unwrap().len(),
            e.requests - e.errors.total + e.errors.by_kind.get("status").copied().unwrap_or(0),
            "{name}"
        );
    }
    assert_eq!(merged.run.merged_from.len(), 2);
    assert!(merged.slo.iter().any(|r| r.endpoint == "broken" && r.metric == "error_rate" && !r.passed));

    // One shard alone: the merge is written but invalid, and the command says so (exit 2).
    let code = perf::cli::merge::run(args(vec![shards[1].0.clone()])).unwrap();
    assert_eq!(code, std::process::ExitCode::from(2));
    let alone = summary::read(&out.join("s.json")).unwrap();
    assert!(!alone.valid && alone.invalid_reasons.iter().any(|r| r.contains("shard 1/2 is missing")), "{:?}", alone.invalid_reasons);
}

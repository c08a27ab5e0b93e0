//! Plan parsing, validation and compilation on literal inputs.

use std::path::Path;
use std::time::Duration;

use super::compiled::{Exec, Shape};
use super::{CompileOptions, LoadedPlan, PlanError, parse};

const MINIMAL: &str = r#"
version = 1

[app.local]
command = ["app"]

[variables]
pid = { int = [1, 5] }

[requests.list]
path = "/items"
tags = ["read"]

[requests.login]
method = "POST"
path = "/login"
body = { user = "u{{pid}}", id = "{{pid}}", fixed = [1, "two"] }
capture = { token = "/token" }
tags = ["auth"]

[requests.get]
path = "/items/{{pid}}?x=1"
headers = { Authorization = "Bearer {{token}}" }
tags = ["read"]

[workflows.flow]
steps = [{ request = "login" }, { request = "get", think = ["1s", "2s"] }]

[suites.smoke]
warmup = "5s"
[suites.smoke.scenarios.a]
executor = "constant-arrival-rate"
rate = 10
duration = "20s"
request = "list"
[suites.smoke.scenarios.b]
executor = "ramping-vus"
stages = [{ duration = "10s", target = 4 }, { duration = "50s", target = 4 }]
workflow = "flow"
[suites.smoke.slo]
"*" = { p99 = "100ms", error_rate = 0.01 }
list = { p50 = "5ms" }
"#;

fn load(text: &str) -> Result<LoadedPlan, PlanError> {
    parse(Path::new("plan.toml"), text.to_string())
}

fn compile_err(text: &str, opts: &CompileOptions) -> PlanError {
    match load(text) {
        Ok(lp) => lp.compile(opts).expect_err("the plan should be rejected"),
        Err(e) => e,
    }
}

/// Line and column (1-based) of the first occurrence of `needle` in `text`.
fn pos_of(text: &str, needle: &str) -> (usize, usize) {
    let at = text.find(needle).expect("needle in text");
    super::position(text, at)
}

#[test]
fn repository_plan_compiles_with_every_suite() {
    let text = include_str!("../../../perf.toml");
    let lp = load(text).unwrap();
    let all: Vec<String> = lp.plan.suites.keys().cloned().collect();
    let c = lp.compile(&CompileOptions { suites: all.clone(), ..Default::default() }).unwrap();
    assert_eq!(c.suites.iter().map(|s| s.name.clone()).collect::<Vec<_>>(), all);
    let default = lp.compile(&CompileOptions::default()).unwrap();
    assert_eq!(default.suites.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(), ["baseline", "concurrent"]);
    let quick = lp.compile(&CompileOptions { quick: true, ..Default::default() }).unwrap();
    for s in &quick.suites {
        let t = super::scale::timeline(s);
        assert!(t <= Duration::from_secs(30) + Duration::from_millis(1), "{} lasts {t:?}", s.name);
        assert!(s.warmup < t);
    }
}

#[test]
fn minimal_plan_compiles_to_the_expected_shapes() {
    let c = load(MINIMAL).unwrap().compile(&CompileOptions::default()).unwrap();
    let s = &c.suites[0];
    assert_eq!(s.warmup, Duration::from_secs(5));
    assert_eq!(s.scenarios.len(), 2);
    assert!(matches!(s.scenarios[0].shape, Shape::ConstantArrivalRate { rate, duration, .. } if rate == 10.0 && duration == Duration::from_secs(20)));
    assert!(matches!(&s.scenarios[1].exec, Exec::Workflow(steps) if steps.len() == 2 && steps[1].think.unwrap().max == Duration::from_secs(2)));
    assert_eq!(s.slo.len(), 2);
    assert_eq!(s.slo[0].0, None);
    assert_eq!(s.slo[1].0.as_deref(), Some("list"));
}

#[test]
fn renders_paths_headers_and_typed_bodies() {
    let c = load(MINIMAL).unwrap().compile(&CompileOptions::default()).unwrap();
    let shared = c.new_shared_vars();
    let mut vu = super::compiled::VuVars::new(shared, 3);
    vu.begin_iteration();
    let login = c.request("login").unwrap().render(&mut vu).unwrap();
    let body: serde_json::Value = serde_json::from_slice(login.body.as_ref().unwrap()).unwrap();
    let id = body["id"].as_i64().expect("a sole {{pid}} keeps the integer type");
    assert!((1..=5).contains(&id));
    assert_eq!(body["user"], format!("u{id}"), "the same draw within one iteration");
    assert_eq!(body["fixed"], serde_json::json!([1, "two"]));
    assert!(login.headers.iter().any(|(n, v)| n == "content-type" && v == "application/json"));

    let get = c.request("get").unwrap();
    assert_eq!(get.render(&mut vu).unwrap_err(), super::compiled::RenderError::MissingCapture("token".into()));
    c.request("login").unwrap().capture(br#"{"token":"abc"}"#, &mut vu).unwrap();
    let r = get.render(&mut vu).unwrap();
    assert_eq!(r.path_and_query, format!("/items/{id}?x=1"));
    assert!(r.headers.iter().any(|(n, v)| n == "authorization" && v == "Bearer abc"));
    assert!(matches!(
        c.request("login").unwrap().capture(br#"{"nope":1}"#, &mut vu),
        Err(super::compiled::CaptureError::Missing { .. })
    ));
}

#[test]
fn unknown_key_names_line_column_and_field() {
    let text = MINIMAL.replace("tags = [\"auth\"]", "tags = [\"auth\"]\ntimeuot = \"1s\"");
    let e = load(&text).unwrap_err();
    assert_eq!((e.line, e.column), pos_of(&text, "timeuot"));
    assert!(e.message.contains("unknown field `timeuot`"), "{e}");
    assert!(e.field.starts_with("requests.login"), "{e}");
    assert!(e.to_string().starts_with(&format!("plan.toml:{}:", e.line)), "{e}");
}

#[test]
fn bad_duration_says_what_was_expected() {
    let text = MINIMAL.replace("warmup = \"5s\"", "warmup = \"5 parsecs\"");
    let e = load(&text).unwrap_err();
    assert_eq!(e.line, pos_of(&text, "5 parsecs").0);
    assert_eq!(e.field, "suites.smoke.warmup");
    assert!(e.message.contains("expected a number with a unit"), "{e}");
}

#[test]
fn undefined_variable_points_at_its_name() {
    let text = MINIMAL.replace("/items/{{pid}}?x=1", "/items/{{ pidd }}?x=1");
    let e = compile_err(&text, &CompileOptions::default());
    assert_eq!((e.line, e.column), pos_of(&text, "pidd"));
    assert_eq!(e.field, "requests.get.path");
    assert!(e.message.contains("undefined variable `pidd`") && e.message.contains("pid, token"), "{e}");

    let text = MINIMAL.replace("id = \"{{pid}}\"", "id = \"{{nope}}\"");
    let e = compile_err(&text, &CompileOptions::default());
    assert_eq!((e.line, e.column), pos_of(&text, "nope"));
    assert_eq!(e.field, "requests.login.body.id");
}

#[test]
fn unclosed_template_is_a_syntax_error() {
    let text = MINIMAL.replace("/items/{{pid}}?x=1", "/items/{{pid?x=1");
    let e = compile_err(&text, &CompileOptions::default());
    assert!(e.message.contains("not closed"), "{e}");
    assert_eq!(e.line, pos_of(&text, "/items/{{pid?").0);
}

#[test]
fn executor_fields_are_checked() {
    let text = MINIMAL.replace("rate = 10\nduration = \"20s\"", "duration = \"20s\"");
    let e = compile_err(&text, &CompileOptions::default());
    assert_eq!(e.field, "suites.smoke.scenarios.a.rate");
    assert!(e.message.contains("needs `rate`"), "{e}");
    assert_eq!(e.line, pos_of(&text, "executor = \"constant-arrival-rate\"").0);

    let text = MINIMAL.replace("executor = \"ramping-vus\"", "executor = \"ramping-vus\"\nvus = 3");
    let e = compile_err(&text, &CompileOptions::default());
    assert!(e.message.contains("`vus` does not apply to the ramping-vus executor"), "{e}");

    let text = MINIMAL.replace("executor = \"ramping-vus\"", "executor = \"ramping-users\"");
    let e = load(&text).unwrap_err();
    assert!(e.message.contains("ramping-users") && e.message.contains("ramping-vus"), "{e}");

    let text = MINIMAL.replace("workflow = \"flow\"", "workflow = \"flow\"\nrequest = \"list\"");
    let e = compile_err(&text, &CompileOptions::default());
    assert!(e.message.contains("exactly one of"), "{e}");
}

#[test]
fn references_to_unknown_names_are_errors() {
    let text = MINIMAL.replace("{ request = \"get\", think", "{ request = \"gett\", think");
    let e = compile_err(&text, &CompileOptions::default());
    assert_eq!(e.field, "workflows.flow.steps[1].request");
    assert_eq!((e.line, e.column), pos_of(&text, "\"gett\""));

    let text = MINIMAL.replace("list = { p50 = \"5ms\" }", "lst = { p50 = \"5ms\" }");
    let e = compile_err(&text, &CompileOptions::default());
    assert_eq!(e.field, "suites.smoke.slo.lst");
    assert!(e.message.contains("unknown request `lst`"), "{e}");

    let e = compile_err(MINIMAL, &CompileOptions { suites: vec!["nightly".into()], ..Default::default() });
    assert_eq!(e.field, "--suite");
    assert!(e.message.contains("unknown suite `nightly`") && e.message.contains("smoke"), "{e}");
}

#[test]
fn warmup_must_leave_something_to_measure() {
    let text = MINIMAL.replace("warmup = \"5s\"", "warmup = \"60s\"");
    let e = compile_err(&text, &CompileOptions::default());
    assert_eq!(e.field, "suites.smoke.warmup");
    assert!(e.message.contains("leaves nothing to measure"), "{e}");
}

#[test]
fn tags_select_requests_and_keep_workflows_whole() {
    let lp = load(MINIMAL).unwrap();
    let c = lp.compile(&CompileOptions { tags: vec!["auth".into()], ..Default::default() }).unwrap();
    let s = &c.suites[0];
    assert_eq!(s.scenarios.len(), 1, "only the workflow has an auth request");
    assert!(matches!(&s.scenarios[0].exec, Exec::Workflow(steps) if steps.len() == 2));
    assert_eq!(s.slo.len(), 1, "the SLO of the dropped `list` endpoint goes with it");

    let e = lp.compile(&CompileOptions { tags: vec!["writ".into()], ..Default::default() }).unwrap_err();
    assert_eq!(e.field, "--tags");
    assert!(e.message.contains("auth, read"), "{e}");
}

#[test]
fn quick_scales_every_span_by_one_factor() {
    let lp = load(MINIMAL).unwrap();
    let c = lp.compile(&CompileOptions { quick: true, ..Default::default() }).unwrap();
    let s = &c.suites[0];
    // 60 s timeline → 30 s: every span halves.
    assert_eq!(s.warmup, Duration::from_millis(2500));
    assert!(matches!(s.scenarios[0].shape, Shape::ConstantArrivalRate { duration, .. } if duration == Duration::from_secs(10)));
    assert!(matches!(&s.scenarios[1].shape, Shape::RampingVus { stages, .. } if stages[0].0 == Duration::from_secs(5) && stages[1].0 == Duration::from_secs(25)));
    assert!(s.scenarios.iter().all(|sc| sc.graceful_stop <= Duration::from_secs(5)));

    let c = lp.compile(&CompileOptions { users: Some(10), duration: Some(Duration::from_secs(120)), ..Default::default() }).unwrap();
    let s = &c.suites[0];
    assert!(matches!(&s.scenarios[1].shape, Shape::RampingVus { stages, .. } if stages[0].1 == 10.0 && stages[1].0 == Duration::from_secs(100)));
}

#[test]
fn app_environment_names_are_checked() {
    let text = MINIMAL.replace("[app.local]", "[app.env]\nDB = \"{{postgres.uri}}\"\n\n[app.local]");
    let e = compile_err(&text, &CompileOptions::default());
    assert_eq!(e.field, "app.env.DB");
    assert_eq!((e.line, e.column), pos_of(&text, "postgres.uri"));
    assert!(e.message.contains("postgres.url"), "{e}");
}

#[test]
fn unreadable_file_names_the_file() {
    let e = super::load(Path::new("/nonexistent/perf.toml")).unwrap_err();
    assert_eq!(e.line, 0);
    assert!(e.to_string().starts_with("/nonexistent/perf.toml: cannot read the plan"), "{e}");
}


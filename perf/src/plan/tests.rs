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
    for (name, kind) in [
        ("spike", "spike"),
        ("stress", "stress"),
        ("soak", "soak"),
        ("chaos_db", "chaos"),
        ("chaos_redis", "chaos"),
        ("write_race", "chaos"),
    ] {
        let s = c.suites.iter().find(|s| s.name == name).unwrap_or_else(|| panic!("perf.toml has no suite {name}"));
        assert_eq!(s.kind.name(), kind, "{name}");
        assert!(s.special.is_some(), "{name}");
    }
    let quick = lp.compile(&CompileOptions { quick: true, suites: all.clone(), ..Default::default() }).unwrap();
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
    assert!(
        matches!(s.scenarios[0].shape, Shape::ConstantArrivalRate { rate, duration, .. } if rate == 10.0 && duration == Duration::from_secs(20))
    );
    assert!(
        matches!(&s.scenarios[1].exec, Exec::Workflow(steps) if steps.len() == 2 && steps[1].think.unwrap().max == Duration::from_secs(2))
    );
    assert_eq!(s.slo.len(), 2);
    assert_eq!(s.slo[0].0, None);
    assert_eq!(s.slo[1].0.as_deref(), Some("list"));
}

#[test]
fn the_app_tables_are_needed_only_by_the_backends_that_start_the_app() {
    // A plan for --backend external: no [app], no [environment].
    let text = MINIMAL.replace("[app.local]\ncommand = [\"app\"]\n", "");
    let c = load(&text).unwrap().compile(&CompileOptions::default()).unwrap();
    assert_eq!(c.setup.app.local, None);
    assert_eq!(c.setup.app.docker, None);
    assert_eq!(c.setup.app.health, None, "no health path: any answer at / will do");
    // Present, [app.local] is still checked.
    let e = load(&MINIMAL.replace("command = [\"app\"]", "command = []")).unwrap().compile(&CompileOptions::default()).unwrap_err();
    assert_eq!(e.field, "app.local.command");
}

#[test]
fn values_no_one_means_are_refused_unless_the_plan_raises_its_limits() {
    let plan = |scenario: &str, limits: &str| {
        format!("version = 1\n{limits}\n[requests.home]\npath = \"/\"\n[suites.s.scenarios.one]\n{scenario}\nrequest = \"home\"\n")
    };
    let opts = CompileOptions::default();
    let vus = plan("executor = \"constant-vus\"\nvus = 100000000\nduration = \"10s\"", "");
    let e = compile_err(&vus, &opts);
    assert_eq!((e.field.as_str(), e.line), ("suites.s.scenarios.one.vus", pos_of(&vus, "executor").0), "{e}");
    assert!(e.message.contains("100000000 virtual users") && e.message.contains("[limits] max_vus = 100000000"), "{e}");

    let long = plan("executor = \"constant-vus\"\nvus = 2\nduration = \"999999h\"", "");
    let e = compile_err(&long, &opts);
    assert_eq!(e.field, "suites.s.scenarios.one.duration", "{e}");
    assert!(e.message.contains("longer than the limit of 1day") && e.message.contains("[limits] max_duration"), "{e}");

    let rate = plan("executor = \"constant-arrival-rate\"\nrate = 5000000\nduration = \"10s\"", "");
    let e = compile_err(&rate, &opts);
    assert_eq!(e.field, "suites.s.scenarios.one.rate", "{e}");

    // --duration is checked too: the suite as it would run.
    let ok = plan("executor = \"constant-vus\"\nvus = 2\nduration = \"10s\"", "");
    let stretched = CompileOptions { duration: Some(Duration::from_secs(30 * 24 * 3600)), ..Default::default() };
    assert_eq!(compile_err(&ok, &stretched).field, "suites.s.scenarios.one.duration");

    // Raised on purpose: accepted.
    let raised = plan("executor = \"constant-vus\"\nvus = 20000\nduration = \"48h\"", "[limits]\nmax_vus = 20000\nmax_duration = \"48h\"");
    load(&raised).unwrap().compile(&opts).unwrap();
    // A high rate's default VU headroom stays within the limit instead of tripping it.
    let fast = plan("executor = \"constant-arrival-rate\"\nrate = 90000\nduration = \"10s\"", "");
    let c = load(&fast).unwrap().compile(&opts).unwrap();
    assert!(matches!(c.suites[0].scenarios[0].shape, Shape::ConstantArrivalRate { max_vus: 10_000, .. }));
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
    assert!(matches!(c.request("login").unwrap().capture(br#"{"nope":1}"#, &mut vu), Err(super::compiled::CaptureError::Missing { .. })));
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
    assert!(
        matches!(&s.scenarios[1].shape, Shape::RampingVus { stages, .. } if stages[0].0 == Duration::from_secs(5) && stages[1].0 == Duration::from_secs(25))
    );
    assert!(s.scenarios.iter().all(|sc| sc.graceful_stop <= Duration::from_secs(5)));

    let c = lp.compile(&CompileOptions { users: Some(10), duration: Some(Duration::from_secs(120)), ..Default::default() }).unwrap();
    let s = &c.suites[0];
    assert!(
        matches!(&s.scenarios[1].shape, Shape::RampingVus { stages, .. } if stages[0].1 == 10.0 && stages[1].0 == Duration::from_secs(100))
    );
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
fn app_environment_may_name_the_parts_of_the_addresses() {
    let env = "[app.env]\n\
               ASYNC_URL = \"postgresql+asyncpg://{{postgres.user}}:{{postgres.password}}@{{postgres.host}}:{{postgres.port}}/{{postgres.database}}\"\n\
               CACHE = \"{{redis.host}}:{{redis.port}}\"\n\n[app.local]";
    let text = MINIMAL.replace("[app.local]", env);
    let c = load(&text).unwrap().compile(&CompileOptions::default()).unwrap();
    assert!(c.setup.app.env["ASYNC_URL"].contains("{{postgres.password}}"), "kept as a template for the backend");
    // The command may name them too; an unknown part is refused with its place and the names.
    let ok = MINIMAL.replace("command = [\"app\"]", "command = [\"app\", \"--db-host={{postgres.host}}\"]");
    assert!(load(&ok).unwrap().compile(&CompileOptions::default()).is_ok());
    let bad = MINIMAL.replace("[app.local]", "[app.env]\nDB_NAME = \"{{postgres.name}}\"\n\n[app.local]");
    let e = compile_err(&bad, &CompileOptions::default());
    assert_eq!(e.field, "app.env.DB_NAME");
    assert_eq!((e.line, e.column), pos_of(&bad, "postgres.name"));
    assert!(e.message.contains("postgres.database") && e.message.contains("redis.port"), "{e}");
}

#[test]
fn a_plan_starts_the_databases_it_has_a_table_for_or_names() {
    use super::compiled::Service;
    let setup = |text: &str| {
        let lp = load(text).unwrap();
        let compiled = lp.compile(&CompileOptions::default()).unwrap().setup;
        assert_eq!(lp.setup().unwrap(), compiled, "`cargo perf up` starts what the gate starts");
        compiled
    };
    // Neither a table nor a template naming one: only the app.
    let none = setup(MINIMAL);
    assert_eq!((&none.environment.postgres, &none.environment.redis), (&None, &None));
    assert_eq!(none.environment.services(), [Service::App]);
    let listen = setup(&MINIMAL.replace("[app.local]", "[app.env]\nLISTEN = \"{{app.listen}}:{{app.port}}\"\n\n[app.local]"));
    assert_eq!(listen.environment.services(), [Service::App], "the app's own names start nothing");
    // A table, even empty, starts its service with the table's defaults.
    let pg = setup(&format!("{MINIMAL}\n[environment.postgres]\n"));
    assert_eq!(pg.environment.services(), [Service::App, Service::Postgres]);
    let p = pg.environment.postgres.clone().unwrap();
    assert_eq!((p.image.as_str(), p.database.as_str(), p.user.as_str(), p.password), ("postgres:15.8-bookworm", "perf", "perf", None));
    let redis = setup(&format!("{MINIMAL}\n[environment.redis]\nimage = \"redis:7\"\n"));
    assert_eq!(redis.environment.services(), [Service::App, Service::Redis]);
    assert_eq!(redis.environment.redis.unwrap().image, "redis:7");
    // No table, but a template names it (plans written before the tables were optional): the
    // defaults, as a table would give them.
    let named = setup(&MINIMAL.replace("[app.local]", "[app.env]\nDB_HOST = \"{{ postgres.host }}\"\n\n[app.local]"));
    assert_eq!(named.environment.postgres, pg.environment.postgres);
    assert!(!named.environment.starts(Service::Redis));
    let in_command = setup(&MINIMAL.replace("command = [\"app\"]", "command = [\"app\", \"--cache={{redis.url}}\"]"));
    assert_eq!(in_command.environment.services(), [Service::App, Service::Redis]);
    // The repository's plan has both tables; the adopter's (fixtures/adopter) has none and
    // names Redis only.
    let repo = setup(include_str!("../../../perf.toml"));
    assert_eq!(repo.environment.services(), Service::ALL);
    assert_eq!(repo.environment.postgres.unwrap().database, "booking");
    let adopter = setup(include_str!("../../../fixtures/adopter/perf.toml"));
    assert_eq!(adopter.environment.services(), [Service::App, Service::Redis]);
}

#[test]
fn suites_that_act_on_a_database_the_plan_does_not_start_are_refused() {
    // With PostgreSQL only, the soak suite judges Redis's memory: refused at its entry, naming
    // the field (suites are checked in name order: `long` before `netfaults`).
    let text = format!("{MINIMAL}{SPECIAL}\n[environment.postgres]\n");
    let e = special_err(&text);
    assert_eq!(e.field, "suites.long.soak.services[1]", "{e}");
    assert_eq!(e.line, pos_of(&text, "services = [\"app\", \"redis\"]").0, "{e}");
    assert!(e.message.starts_with("redis is not started: the plan has no [environment.redis] table"), "{e}");
    assert!(e.message.contains("{{redis.*}}") && e.message.contains("leave it out of `services`"), "{e}");
    // With Redis, the chaos suite that stops PostgreSQL: refused at the action, as written.
    let text = format!("{MINIMAL}{SPECIAL}\n[environment.redis]\n");
    let e = special_err(&text);
    assert_eq!(e.field, "suites.dbdown.chaos.actions[0].stop", "{e}");
    assert_eq!(e.line, pos_of(&text, "chaos = { actions = [{ at = \"10s\", stop = \"postgres\" }").0, "{e}");
    assert!(e.message.contains("postgres is not started") && e.message.contains("add an [environment.postgres] table"), "{e}");
    assert!(e.to_string().starts_with(&format!("plan.toml:{}:", e.line)), "{e}");
    // With PostgreSQL only: the network fault on Redis, the second action as written.
    let text = format!("{MINIMAL}{SPECIAL}\n[environment.postgres]\n")
        .replace("services = [\"app\", \"redis\"]", "services = [\"app\", \"postgres\"]");
    let e = special_err(&text);
    assert_eq!(e.field, "suites.netfaults.chaos.actions[1].loss", "{e}");
    assert_eq!(e.line, pos_of(&text, "{ at = \"10s\", loss = \"redis\"").0, "{e}");
    // A suite not selected is checked too: a broken suite is a broken plan.
    let lp = load(&text).unwrap();
    let e = lp.compile(&CompileOptions { suites: vec!["smoke".into()], ..Default::default() }).unwrap_err();
    assert_eq!(e.field, "suites.netfaults.chaos.actions[1].loss", "{e}");
    // A template naming PostgreSQL starts it, and Redis's table starts Redis: the plan compiles.
    let text =
        format!("{MINIMAL}{SPECIAL}\n[environment.redis]\n").replace("[app.local]", "[app.env]\nDB = \"{{postgres.url}}\"\n\n[app.local]");
    assert!(load(&text).unwrap().compile(&all_suites(&text)).is_ok());
}

#[test]
fn a_template_added_for_a_database_the_plan_does_not_start_is_refused_before_anything_starts() {
    use super::BackendKind;
    let lp = load(MINIMAL).unwrap();
    let mut setup = lp.compile(&CompileOptions::default()).unwrap().setup;
    assert_eq!(BackendKind::Local.check_setup(&setup), Ok(()));
    // As `--app-env DATABASE_URL={{postgres.url}}` adds it, after the plan decided.
    setup.app.env.insert("DATABASE_URL".into(), "{{postgres.url}}".into());
    let why = BackendKind::Local.check_setup(&setup).unwrap_err();
    assert!(why.starts_with("app.env.DATABASE_URL: `{{postgres.url}}` names postgres, which this run does not start"), "{why}");
    assert!(why.contains("[environment.postgres]"), "{why}");
    assert_eq!(BackendKind::External.check_setup(&setup), Ok(()), "the external backend renders no template");
    // The command's templates are the plan's own: naming a database there starts it.
    let lp = load(&MINIMAL.replace("command = [\"app\"]", "command = [\"app\", \"--db={{postgres.url}}\"]")).unwrap();
    assert_eq!(BackendKind::Local.check_setup(&lp.setup().unwrap()), Ok(()));
}

#[test]
fn app_command_templates_are_checked() {
    let ok = MINIMAL.replace("command = [\"app\"]", "command = [\"{{cargo.target_dir}}/debug/app\", \"--port={{app.port}}\"]\nbuild = [\"cargo\", \"build\", \"--target-dir={{cargo.target_dir}}\"]");
    assert!(load(&ok).unwrap().compile(&CompileOptions::default()).is_ok());
    let bad = MINIMAL.replace("command = [\"app\"]", "command = [\"app\", \"{{cargo.target}}\"]");
    let e = compile_err(&bad, &CompileOptions::default());
    assert_eq!(e.field, "app.local.command[1]");
    assert!(e.message.contains("cargo.target_dir"), "{e}");
    let bad = MINIMAL.replace("command = [\"app\"]", "command = [\"app\"]\nbuild = [\"make\", \"{{app.port}}\"]");
    let e = compile_err(&bad, &CompileOptions::default());
    assert_eq!(e.field, "app.local.build[1]");
}

/// The hash that decides whether a baseline still describes a suite: its own table, the
/// requests and workflows it uses, defaults and compare rules, and the command line's
/// reshaping; not the rest of the file, not comments.
#[test]
fn a_suites_hash_covers_its_own_definition_only() {
    let hash = |text: &str, opts: &CompileOptions| load(text).unwrap().compile(opts).unwrap().suites[0].definition_hash.clone();
    let plain = CompileOptions::default();
    let base = hash(MINIMAL, &plain);
    assert_eq!(base.len(), 64);
    let another_suite =
        format!("{MINIMAL}\n[suites.other.scenarios.x]\nexecutor = \"constant-vus\"\nvus = 1\nduration = \"5s\"\nrequest = \"list\"\n");
    let only_smoke = CompileOptions { suites: vec!["smoke".into()], ..Default::default() };
    assert_eq!(hash(&another_suite, &only_smoke), base, "a suite added elsewhere changes nothing");
    assert_eq!(hash(&MINIMAL.replace("[variables]", "# a comment\n[variables]"), &plain), base, "comments are not data");
    assert_eq!(
        hash(&MINIMAL.replace("[requests.list]", "[requests.unused]\npath = \"/u\"\n\n[requests.list]"), &plain),
        base,
        "an unused request"
    );
    let changed = [
        MINIMAL.replace("path = \"/items\"", "path = \"/items?all=1\""),
        MINIMAL.replace("think = [\"1s\", \"2s\"]", "think = [\"1s\", \"3s\"]"),
        MINIMAL.replace("pid = { int = [1, 5] }", "pid = { int = [1, 50] }"),
        MINIMAL.replace("rate = 10", "rate = 11"),
        format!("{MINIMAL}\n[compare]\nthreshold = 0.3\n"),
        format!("{MINIMAL}\n[defaults]\ntimeout = \"1s\"\n"),
    ];
    for text in &changed {
        assert_ne!(hash(text, &plain), base, "{text}");
    }
    assert_ne!(hash(MINIMAL, &CompileOptions { quick: true, ..Default::default() }), base);
    assert_ne!(hash(MINIMAL, &CompileOptions { duration: Some(Duration::from_secs(30)), ..Default::default() }), base);
    assert_ne!(hash(MINIMAL, &CompileOptions { users: Some(2), ..Default::default() }), base);
}

#[test]
fn unreadable_file_names_the_file() {
    let e = super::load(Path::new("/nonexistent/perf.toml")).unwrap_err();
    assert_eq!(e.line, 0);
    assert!(e.to_string().starts_with("/nonexistent/perf.toml: cannot read the plan"), "{e}");
}

#[test]
fn compare_rules_refuse_what_the_comparison_cannot_use() {
    use super::{CompareRules, MetricThresholds};
    let rules = |threshold: f64, alpha: f64, points: f64, endpoints: Vec<(String, MetricThresholds)>| {
        CompareRules::new(threshold, None, points, 100, alpha, endpoints, &["list"])
    };
    assert_eq!(rules(0.2, 0.05, 1.0, Vec::new()).unwrap(), CompareRules::default());
    for (threshold, alpha, points, field) in [
        (0.0, 0.05, 1.0, "compare.threshold"),
        (-0.1, 0.05, 1.0, "compare.threshold"),
        (f64::NAN, 0.05, 1.0, "compare.threshold"),
        (f64::INFINITY, 0.05, 1.0, "compare.threshold"),
        (0.2, 0.0, 1.0, "compare.alpha"),
        (0.2, 1.0, 1.0, "compare.alpha"),
        (0.2, 0.05, -1.0, "compare.error_rate_points"),
    ] {
        let e = rules(threshold, alpha, points, Vec::new()).unwrap_err();
        assert_eq!((e.field.as_str(), e.endpoint.as_deref()), (field, None), "{e}");
    }
    let e = rules(0.0, 0.05, 1.0, Vec::new()).unwrap_err();
    assert_eq!(e.to_string(), "compare.threshold: 0 is not a relative change: expected a number > 0 (0.2 is 20%)");
    // Overrides: for a request of the plan, each threshold ≥ 0.
    let p95 = |v: f64| MetricThresholds { p95: Some(v), ..Default::default() };
    let e = rules(0.2, 0.05, 1.0, vec![("nope".into(), p95(0.5))]).unwrap_err();
    assert_eq!((e.field.as_str(), e.endpoint.as_deref()), ("compare.endpoints.nope", Some("nope")));
    assert_eq!(e.message, "unknown request `nope` (the plan defines: list)");
    let e = rules(0.2, 0.05, 1.0, vec![("list".into(), p95(-0.5))]).unwrap_err();
    assert_eq!((e.field.as_str(), e.endpoint.as_deref()), ("compare.endpoints.list.p95", Some("list")));
    assert_eq!(rules(0.2, 0.05, 1.0, vec![("list".into(), p95(0.5))]).unwrap().endpoints["list"].p95, Some(0.5));
}

#[test]
fn compare_errors_are_the_same_for_the_gate_and_for_history() {
    // `compile` (the gate) and `compare_rules` (`cargo perf history`) give one error: a rule's
    // value by file and field, a per-endpoint override at its entry in the file.
    for threshold in ["0", "-0.5"] {
        let text = format!("{MINIMAL}\n[compare]\nthreshold = {threshold}\n");
        let lp = load(&text).unwrap();
        let e = lp.compile(&CompileOptions::default()).unwrap_err();
        assert_eq!(
            e.to_string(),
            format!("plan.toml: compare.threshold: {threshold} is not a relative change: expected a number > 0 (0.2 is 20%)")
        );
        assert_eq!(lp.compare_rules().unwrap_err(), e);
    }
    let text = format!("{MINIMAL}\n[compare.endpoints]\nlist = {{ p95 = -0.1 }}\n");
    let lp = load(&text).unwrap();
    let e = lp.compile(&CompileOptions::default()).unwrap_err();
    let (line, column) = pos_of(&text, "{ p95 = -0.1 }");
    assert_eq!(
        e.to_string(),
        format!("plan.toml:{line}:{column}: compare.endpoints.list.p95: -0.1 is not a threshold: expected a number ≥ 0")
    );
    assert_eq!(lp.compare_rules().unwrap_err(), e);
    let good = load(&format!("{MINIMAL}\n[compare]\nthreshold = 0.3\n")).unwrap().compare_rules().unwrap();
    assert_eq!(good.threshold, 0.3);
    assert_eq!(good.shared_shift, 0.10, "the default");
    // The shared shift: a share of the latency, 0 turning it off.
    let lp = load(&format!("{MINIMAL}\n[compare]\nshared_shift = 1.5\n")).unwrap();
    let e = lp.compile(&CompileOptions::default()).unwrap_err();
    assert_eq!(
        e.to_string(),
        "plan.toml: compare.shared_shift: 1.5 is not a share of the latency: expected 0 <= shared_shift < 1 (0.1 is 10%, 0 turns it off)"
    );
    assert_eq!(lp.compare_rules().unwrap_err(), e);
    let off = load(&format!("{MINIMAL}\n[compare]\nshared_shift = 0\n")).unwrap().compare_rules().unwrap();
    assert_eq!(off.shared_shift, 0.0);
}

const SPECIAL: &str = r#"
[suites.spiky]
kind = "spike"
warmup = "5s"
spike = { start = "20s", end = "30s", max_error_rate = 0.01, max_recovery = "10s" }
[suites.spiky.scenarios.r]
executor = "ramping-arrival-rate"
start_rate = 10
stages = [{ duration = "20s", target = 10 }, { duration = "10s", target = 100 }, { duration = "30s", target = 10 }]
request = "list"

[suites.steps]
kind = "stress"
stress = { slo_p95 = "100ms", max_error_rate = 0.01, min_breaking_rate = 50.0 }
[suites.steps.scenarios.r]
executor = "ramping-arrival-rate"
stages = [{ duration = "1s", target = 50 }, { duration = "9s", target = 50 }, { duration = "1s", target = 100 }, { duration = "9s", target = 100 }]
request = "list"

[suites.long]
kind = "soak"
soak = { max_memory_growth = 0.2, max_p95_growth = 0.3, services = ["app", "redis"] }
[suites.long.scenarios.r]
executor = "constant-arrival-rate"
rate = 5
duration = "2m"
request = "list"

[suites.dbdown]
kind = "chaos"
chaos = { actions = [{ at = "10s", stop = "postgres" }, { at = "20s", start = "postgres" }], expect = ["no_5xx_except_503", "errors_stop_within:5s", "breaker_cycle", "one_winner_per_slot:3"] }
[suites.dbdown.scenarios.r]
executor = "constant-arrival-rate"
rate = 5
duration = "40s"
request = "list"

[suites.netfaults]
kind = "chaos"
chaos = { actions = [
  { at = "5s", latency = "postgres", delay = "100ms", jitter = "20ms" },
  { at = "10s", loss = "redis", rate = 0.25 },
  { at = "15s", reset = "postgres" },
  { at = "20s", blackhole = "postgres" },
  { at = "25s", heal = "postgres" },
  { at = "26s", heal = "redis" },
], expect = ["timeouts_hold:2s", "breaker_cycle", "errors_stop_within:5s", "cache_recovers"] }
[suites.netfaults.scenarios.r]
executor = "constant-arrival-rate"
rate = 5
duration = "30s"
request = "list"
"#;

/// The databases the special suites act on and judge: without them, the plan starts neither.
const DATABASES: &str = "\n[environment.postgres]\n[environment.redis]\n";

/// MINIMAL with the special suites, both databases started.
fn special_plan() -> String {
    format!("{MINIMAL}{SPECIAL}{DATABASES}")
}

fn all_suites(text: &str) -> CompileOptions {
    let lp = load(text).unwrap();
    CompileOptions { suites: lp.plan.suites.keys().cloned().collect(), ..Default::default() }
}

#[test]
fn special_tables_compile_to_their_specs() {
    use super::compiled::{ChaosAction, ChaosVerb, Expectation, Fault, Service, Special};
    use super::values::SuiteKind;
    let text = special_plan();
    let c = load(&text).unwrap().compile(&all_suites(&text)).unwrap();
    let by = |n: &str| c.suites.iter().find(|s| s.name == n).unwrap();
    assert!(by("smoke").special.is_none());
    assert_eq!(by("spiky").kind, SuiteKind::Spike);
    let Some(Special::Spike(sp)) = &by("spiky").special else { panic!() };
    assert_eq!(
        (sp.start, sp.end, sp.max_recovery, sp.recovery_tolerance),
        (Duration::from_secs(20), Duration::from_secs(30), Duration::from_secs(10), 0.2)
    );
    let Some(Special::Stress(st)) = &by("steps").special else { panic!() };
    assert_eq!((st.slo_p95, st.min_breaking_rate), (Duration::from_millis(100), 50.0));
    assert_eq!((st.max_rate, st.capacity), (None, None));
    let Some(Special::Soak(so)) = &by("long").special else { panic!() };
    assert_eq!(so.services, ["app", "redis"]);
    assert_eq!(so.max_p95_growth, 0.3);
    let Some(Special::Chaos(ch)) = &by("dbdown").special else { panic!() };
    assert_eq!(
        ch.actions,
        [
            ChaosAction { at: Duration::from_secs(10), service: Service::Postgres, verb: ChaosVerb::Stop },
            ChaosAction { at: Duration::from_secs(20), service: Service::Postgres, verb: ChaosVerb::Start }
        ]
    );
    assert_eq!(ch.actions[0].what(), "stop postgres");
    assert_eq!(
        ch.expect,
        [
            Expectation::No5xxExcept503,
            Expectation::ErrorsStopWithin(Duration::from_secs(5)),
            Expectation::BreakerCycle,
            Expectation::OneWinnerPerSlot(3)
        ]
    );
    assert_eq!(ch.expect[1].name(), "errors_stop_within:5s");
    assert!(!ch.needs_proxy());

    let Some(Special::Chaos(net)) = &by("netfaults").special else { panic!() };
    assert!(net.needs_proxy());
    let ms = Duration::from_millis;
    let verbs: Vec<(u64, Service, ChaosVerb)> = net.actions.iter().map(|a| (a.at.as_secs(), a.service, a.verb)).collect();
    assert_eq!(
        verbs,
        [
            (5, Service::Postgres, ChaosVerb::Fault(Fault::Latency { delay: ms(100), jitter: ms(20) })),
            (10, Service::Redis, ChaosVerb::Fault(Fault::Loss { rate: 0.25 })),
            (15, Service::Postgres, ChaosVerb::Fault(Fault::Reset)),
            (20, Service::Postgres, ChaosVerb::Fault(Fault::Blackhole)),
            (25, Service::Postgres, ChaosVerb::Heal),
            (26, Service::Redis, ChaosVerb::Heal),
        ]
    );
    let what: Vec<String> = net.actions.iter().map(|a| a.what()).collect();
    assert_eq!(what[..2], ["latency postgres 100ms ± 20ms", "loss redis 25%"]);
    assert_eq!(what[3..], ["blackhole postgres", "heal postgres", "heal redis"]);
    assert_eq!(
        net.expect,
        [
            Expectation::TimeoutsHold(Duration::from_secs(2)),
            Expectation::BreakerCycle,
            Expectation::ErrorsStopWithin(Duration::from_secs(5)),
            Expectation::CacheRecovers
        ]
    );
}

/// Compiles `text` with every suite selected and expects an error.
fn special_err(text: &str) -> PlanError {
    match load(text) {
        Ok(lp) => {
            let opts = CompileOptions { suites: lp.plan.suites.keys().cloned().collect(), ..Default::default() };
            lp.compile(&opts).expect_err("the plan should be rejected")
        }
        Err(e) => e,
    }
}

#[test]
fn kind_tables_must_match_the_kind() {
    // A spike table on a load suite: the error points at the table.
    let text = special_plan().replace(
        "[suites.smoke]\n",
        "[suites.smoke]\nspike = { start = \"1s\", end = \"2s\", max_error_rate = 0.1, max_recovery = \"1s\" }\n",
    );
    let e = special_err(&text);
    assert_eq!(e.field, "suites.smoke.spike");
    assert_eq!((e.line, e.column), pos_of(&text, "{ start = \"1s\""));
    assert!(e.message.contains("kind = \"spike\"") && e.message.contains("\"load\""), "{e}");

    // A spike suite without its table: the error points at the kind.
    let text = special_plan().replace("spike = { start = \"20s\", end = \"30s\", max_error_rate = 0.01, max_recovery = \"10s\" }\n", "");
    let e = special_err(&text);
    assert_eq!(e.field, "suites.spiky.spike");
    assert_eq!((e.line, e.column), pos_of(&text, "\"spike\""));
    assert!(e.message.contains("needs a `spike` table"), "{e}");

    // A stress table on the soak suite.
    let text = special_plan()
        .replace("kind = \"soak\"", "kind = \"soak\"\nstress = { slo_p95 = \"1s\", max_error_rate = 0.1, min_breaking_rate = 1.0 }");
    let e = special_err(&text);
    assert_eq!(e.field, "suites.long.stress");

    // Unknown keys in a kind table are parse errors with their position.
    let text = special_plan().replace("max_recovery = \"10s\" }", "max_recovery = \"10s\", max_recovry = \"1s\" }");
    let e = load(&text).unwrap_err();
    assert!(e.message.contains("unknown field `max_recovry`"), "{e}");
    assert_eq!(e.line, pos_of(&text, "max_recovry").0);
    assert!(e.field.starts_with("suites.spiky.spike"), "{e}");

    let e = load(&special_plan().replace("kind = \"soak\"", "kind = \"sock\"")).unwrap_err();
    assert!(e.message.contains("sock") && e.message.contains("soak"), "{e}");
}

#[test]
fn stress_ceiling_and_capacity_target_compile_and_are_checked() {
    let table = "stress = { slo_p95 = \"100ms\", max_error_rate = 0.01, min_breaking_rate = 50.0 }";
    let with = |extra: &str| special_plan().replace(table, &table.replace(" }", &format!(", {extra} }}")));
    let lp = load(&with("max_rate = 800.0, capacity = { target_rps = 5000.0 }")).unwrap();
    let c = lp.compile(&CompileOptions { suites: vec!["steps".into()], ..Default::default() }).unwrap();
    let Some(super::compiled::Special::Stress(st)) = &c.suites[0].special else { panic!() };
    assert_eq!(st.max_rate, Some(800.0));
    // The headroom defaults to 30%.
    assert_eq!(st.capacity, Some(crate::plan::compiled::CapacityTarget { target_rps: 5000.0, headroom: 0.3 }));

    // Each bad value names its field and points at the stress table.
    for (extra, field, words) in [
        ("max_rate = 60.0", "suites.steps.stress.max_rate", "highest step (100/s)"),
        ("capacity = { target_rps = 0.0 }", "suites.steps.stress.capacity.target_rps", "> 0"),
        ("capacity = { target_rps = -5.0, headroom = 0.3 }", "suites.steps.stress.capacity.target_rps", "> 0"),
        ("capacity = { target_rps = 100.0, headroom = 1.0 }", "suites.steps.stress.capacity.headroom", "0 ≤ headroom < 1"),
        ("capacity = { target_rps = 100.0, headroom = -0.1 }", "suites.steps.stress.capacity.headroom", "0 ≤ headroom < 1"),
    ] {
        let text = with(extra);
        let e = special_err(&text);
        assert_eq!(e.field, field, "{extra}: {e}");
        assert!(e.message.contains(words), "{extra}: {e}");
        assert_eq!((e.line, e.column), pos_of(&text, "{ slo_p95 = \"100ms\""), "{extra}: {e}");
    }
    // A misspelt key of the capacity table is a parse error at its place.
    let text = with("capacity = { target_rps = 100.0, headrom = 0.2 }");
    let e = load(&text).unwrap_err();
    assert!(e.message.contains("unknown field `headrom`"), "{e}");
    assert_eq!(e.line, pos_of(&text, "headrom").0);
}

#[test]
fn kind_tables_are_checked_against_the_timeline() {
    let text = special_plan().replace("start = \"20s\", end = \"30s\"", "start = \"3s\", end = \"30s\"");
    let e = special_err(&text);
    assert_eq!(e.field, "suites.spiky.spike.start");
    assert!(e.message.contains("warm-up"), "{e}");
    assert_eq!(e.line, pos_of(&text, "start = \"3s\"").0);

    let e = special_err(&special_plan().replace("end = \"30s\"", "end = \"60s\""));
    assert_eq!(e.field, "suites.spiky.spike.end");

    let e = special_err(&special_plan().replace("max_error_rate = 0.01, max_recovery", "max_error_rate = 2.0, max_recovery"));
    assert_eq!(e.field, "suites.spiky.spike.max_error_rate");

    // A stress suite needs steps (holds) in a ramping-arrival-rate scenario.
    let text = special_plan().replace(
        "{ duration = \"9s\", target = 50 }, { duration = \"1s\", target = 100 }, { duration = \"9s\", target = 100 }",
        "{ duration = \"9s\", target = 100 }",
    );
    let e = special_err(&text);
    assert_eq!(e.field, "suites.steps.scenarios");
    assert!(e.message.contains("hold"), "{e}");

    let text = special_plan().replace("services = [\"app\", \"redis\"]", "services = [\"app\", \"mysql\"]");
    let e = special_err(&text);
    assert_eq!(e.field, "suites.long.soak.services[1]");
    assert_eq!((e.line, e.column), pos_of(&text, "\"mysql\""));
}

#[test]
fn a_kind_selects_every_suite_of_that_kind_unless_a_suite_has_its_name() {
    let text = special_plan();
    let lp = load(&text).unwrap();
    let names = |suites: &[&str]| -> Vec<String> {
        let opts = CompileOptions { suites: suites.iter().map(|s| s.to_string()).collect(), ..Default::default() };
        lp.compile(&opts).unwrap().suites.iter().map(|s| s.name.clone()).collect()
    };
    assert_eq!(names(&["chaos"]), ["dbdown", "netfaults"]);
    // Named suites first, no suite twice.
    assert_eq!(names(&["netfaults", "chaos", "stress"]), ["netfaults", "dbdown", "steps"]);
    // A suite named like a kind is that suite only.
    let renamed = text.replace("[suites.dbdown]", "[suites.chaos]").replace("suites.dbdown.", "suites.chaos.");
    let lp = load(&renamed).unwrap();
    let opts = CompileOptions { suites: vec!["chaos".into()], ..Default::default() };
    let picked: Vec<String> = lp.compile(&opts).unwrap().suites.iter().map(|s| s.name.clone()).collect();
    assert_eq!(picked, ["chaos"]);
    // A kind no suite has is still an unknown suite.
    let e =
        load(&text).unwrap().compile(&CompileOptions { suites: vec!["soak".into(), "load2".into()], ..Default::default() }).unwrap_err();
    assert!(e.field == "--suite" && e.message.contains("unknown suite `load2`"), "{e}");
}

/// Each case edits the special plan (`from` → `to`) and expects an error on `field`, at the
/// first `at` of the edited text, whose message contains `message`.
fn assert_special_errors(cases: &[(&str, &str, &str, &str, &str)]) {
    for &(from, to, at, field, message) in cases {
        let text = special_plan().replace(from, to);
        assert_ne!(text, special_plan(), "{from}");
        let e = special_err(&text);
        assert_eq!(e.field, field, "{e}");
        assert_eq!((e.line, e.column), pos_of(&text, at), "{e}");
        assert!(e.message.contains(message), "{e}");
    }
}

#[test]
fn chaos_actions_need_one_verb_on_a_known_service_within_the_suite() {
    assert_special_errors(&[
        (
            "stop = \"postgres\" }",
            "stop = \"mysql\" }",
            "{ at = \"10s\", stop = \"mysql\"",
            "suites.dbdown.chaos.actions[0].stop",
            "unknown service `mysql`",
        ),
        ("{ at = \"20s\", start", "{ at = \"45s\", start", "{ at = \"45s\"", "suites.dbdown.chaos.actions[1].at", "not within the suite"),
        (
            "start = \"postgres\" }",
            "start = \"redis\" }",
            "{ at = \"20s\", start = \"redis\"",
            "suites.dbdown.chaos.actions[1]",
            "redis is not stopped",
        ),
        (
            "{ at = \"10s\", stop = \"postgres\" }",
            "{ at = \"10s\", stop = \"postgres\", start = \"redis\" }",
            "{ at = \"10s\", stop",
            "suites.dbdown.chaos.actions[0]",
            "exactly one of",
        ),
    ]);
    // Stopping a stopped service.
    let text = special_plan().replace("{ at = \"20s\", start = \"postgres\" }", "{ at = \"20s\", stop = \"postgres\" }");
    let e = special_err(&text);
    assert!(e.message.contains("already stopped"), "{e}");
    // Actions are taken in time order whatever the order written.
    let text = special_plan().replace(
        "actions = [{ at = \"10s\", stop = \"postgres\" }, { at = \"20s\", start = \"postgres\" }]",
        "actions = [{ at = \"20s\", start = \"postgres\" }, { at = \"10s\", stop = \"postgres\" }]",
    );
    load(&text).unwrap().compile(&all_suites(&text)).unwrap();
}

#[test]
fn chaos_expectations_parse_and_need_the_actions_they_judge() {
    assert_special_errors(&[
        ("\"breaker_cycle\"", "\"breaker_cylce\"", "\"breaker_cylce\"", "suites.dbdown.chaos.expect[2]", "unknown expectation"),
        (
            "\"errors_stop_within:5s\"",
            "\"errors_stop_within:soon\"",
            "\"errors_stop_within:soon\"",
            "suites.dbdown.chaos.expect[1]",
            "invalid duration",
        ),
        (
            "\"one_winner_per_slot:3\"",
            "\"one_winner_per_slot:0\"",
            "\"one_winner_per_slot:0\"",
            "suites.dbdown.chaos.expect[3]",
            "number of slots",
        ),
        (
            "\"no_5xx_except_503\"",
            "\"cache_recovers\"",
            "\"cache_recovers\"",
            "suites.dbdown.chaos.expect[0]",
            "needs redis to be started again",
        ),
    ]);
    // Latency alone never cuts postgres off: the breaker cannot be expected to open.
    let text =
        special_plan().replace("{ at = \"15s\", reset = \"postgres\" },", "").replace("{ at = \"20s\", blackhole = \"postgres\" },", "");
    let e = special_err(&text);
    assert!(e.field == "suites.netfaults.chaos.expect[1]" && e.message.contains("cut off by a loss, reset or blackhole"), "{e}");
}

#[test]
fn network_faults_take_their_own_parameters_and_heal_follows_a_fault() {
    assert_special_errors(&[
        (
            "delay = \"100ms\", jitter",
            "jitter",
            "{ at = \"5s\", latency",
            "suites.netfaults.chaos.actions[0].delay",
            "`latency` needs `delay`",
        ),
        ("rate = 0.25", "rate = 1.5", "{ at = \"10s\", loss", "suites.netfaults.chaos.actions[1].rate", "not a probability"),
        (
            "rate = 0.25",
            "rate = 0.25, delay = \"1s\"",
            "{ at = \"10s\", loss",
            "suites.netfaults.chaos.actions[1].delay",
            "only goes with `latency`",
        ),
        (
            "{ at = \"15s\", reset = \"postgres\" }",
            "{ at = \"15s\", reset = \"postgres\", rate = 0.5 }",
            "{ at = \"15s\", reset",
            "suites.netfaults.chaos.actions[2].rate",
            "only goes with `loss`",
        ),
        (
            "{ at = \"26s\", heal = \"redis\" }",
            "{ at = \"26s\", heal = \"redis\" }, { at = \"27s\", heal = \"redis\" }",
            "{ at = \"27s\", heal",
            "suites.netfaults.chaos.actions[6]",
            "no fault is set on redis",
        ),
        (
            "blackhole = \"postgres\"",
            "blackhole = \"mongo\"",
            "{ at = \"20s\", blackhole",
            "suites.netfaults.chaos.actions[3].blackhole",
            "unknown service `mongo`",
        ),
    ]);
}

#[test]
fn quick_scales_special_times_but_not_limits() {
    use super::compiled::{Expectation, Special};
    let text = special_plan();
    let lp = load(&text).unwrap();
    let c = lp.compile(&CompileOptions { quick: true, ..all_suites(&text) }).unwrap();
    let by = |n: &str| c.suites.iter().find(|s| s.name == n).unwrap();
    // spiky: 60 s → 30 s, every time halves; max_recovery stays.
    let Some(Special::Spike(sp)) = &by("spiky").special else { panic!() };
    assert_eq!((sp.start, sp.end, sp.max_recovery), (Duration::from_secs(10), Duration::from_secs(15), Duration::from_secs(10)));
    // dbdown: 40 s → 30 s.
    let Some(Special::Chaos(ch)) = &by("dbdown").special else { panic!() };
    assert_eq!(ch.actions.iter().map(|a| a.at).collect::<Vec<_>>(), [Duration::from_millis(7500), Duration::from_secs(15)]);
    assert_eq!(ch.expect[1], Expectation::ErrorsStopWithin(Duration::from_secs(5)));

    let c = lp.compile(&CompileOptions { duration: Some(Duration::from_secs(120)), ..all_suites(&text) }).unwrap();
    let Some(Special::Spike(sp)) = &c.suites.iter().find(|s| s.name == "spiky").unwrap().special else { panic!() };
    assert_eq!((sp.start, sp.end), (Duration::from_secs(40), Duration::from_secs(60)));
}

/// MINIMAL with a WebSocket request `live` and a workflow `watch` of `steps`, run by suite
/// `smoke`'s scenario `b` instead of `flow`.
fn ws_plan(steps: &str) -> String {
    MINIMAL
        .replace(
            "[workflows.flow]",
            &format!("[requests.live]\nws = \"/live?p={{{{pid}}}}\"\n\n[workflows.watch]\nsteps = [{steps}]\n\n[workflows.flow]"),
        )
        .replace("workflow = \"flow\"", "workflow = \"watch\"")
}

#[test]
fn websocket_steps_compile_to_actions_with_a_message_endpoint() {
    use super::compiled::{Action, Protocol, WsScope};
    let text = ws_plan(
        r#"{ ws_connect = "live" }, { request = "login" }, { ws_send = "live", body = { hi = "{{pid}}" } },
           { ws_expect = "live", match = { "/token" = "{{token}}" }, timeout = "2s" }, { ws_close = "live" }"#,
    )
    .replace("list = { p50 = \"5ms\" }", "list = { p50 = \"5ms\" }\n\"live.message\" = { p95 = \"100ms\" }");
    let c = load(&text).unwrap().compile(&CompileOptions::default()).unwrap();
    let live = c.requests.iter().position(|r| r.name == "live").unwrap();
    let message = c.requests.iter().position(|r| r.name == "live.message").unwrap();
    assert_eq!(c.requests[live].protocol, Protocol::WsConnect { scope: WsScope::Iteration, message });
    assert_eq!(c.requests[message].protocol, Protocol::WsMessage { connect: live });
    let Exec::Workflow(steps) = &c.suites[0].scenarios[1].exec else { panic!("a workflow") };
    assert!(matches!(steps[0].action, Action::WsConnect(id) if id == live));
    let Action::WsExpect(e) = &steps[3].action else { panic!("{:?}", steps[3].action) };
    assert_eq!((e.ws, e.message, e.timeout), (live, message, Duration::from_secs(2)));
    // The summary lists the connection and its messages (not `ws_send`/`ws_close`).
    let exercised = c.suites[0].exercised();
    assert!(exercised.contains(&live) && exercised.contains(&message));
}

#[test]
fn websocket_mistakes_name_file_line_and_field() {
    let cases: &[(String, &str, &str, &str)] = &[
        // (plan, field, text the position points at, words in the message)
        (
            ws_plan(r#"{ ws_expect = "live", match = { "/x" = "1" } }"#),
            "workflows.watch.steps[0].ws_expect",
            "\"live\", match",
            "before any `ws_connect",
        ),
        (
            ws_plan(r#"{ ws_connect = "live" }, { request = "live" }"#),
            "workflows.watch.steps[1].request",
            "\"live\" }]",
            "is a WebSocket request",
        ),
        (ws_plan(r#"{ ws_connect = "list" }"#), "workflows.watch.steps[0].ws_connect", "\"list\" }]", "not a WebSocket request"),
        (ws_plan(r#"{ ws_connect = "live", ws_close = "live" }"#), "workflows.watch.steps[0].ws_close", "\"live\" }]", "does one thing"),
        (ws_plan(r#"{ ws_connect = "live" }, { ws_expect = "live" }"#), "workflows.watch.steps[1].match", "\"live\" }]", "needs `match`"),
        (
            ws_plan(r#"{ ws_connect = "live" }, { ws_expect = "live", match = { "x" = "1" } }"#),
            "workflows.watch.steps[1].match.x",
            "\"1\" } }]",
            "not a JSON pointer",
        ),
        (
            ws_plan(r#"{ ws_connect = "live" }, { ws_expect = "live", match = { "/x" = "{{nope}}" } }"#),
            "workflows.watch.steps[1].match./x",
            "nope",
            "nope",
        ),
        (ws_plan(r#"{ ws_connect = "live" }, { ws_send = "live" }"#), "workflows.watch.steps[1].body", "\"live\" }]", "needs a `body`"),
        (ws_plan(r#"{ ws_connect = "live", body = { a = 1 } }"#), "workflows.watch.steps[0].body", "\"live\", body", "does not apply"),
        (
            ws_plan(r#"{ ws_connect = "live" }"#).replace("ws = \"/live", "scope = \"forever\"\nws = \"/live"),
            "requests.live.scope",
            "\"forever\"",
            "expected \"iteration\" or \"vu\"",
        ),
        (
            ws_plan(r#"{ ws_connect = "live" }"#).replace("ws = \"/live", "path = \"/x\"\nws = \"/live"),
            "requests.live.ws",
            "\"/live",
            "not both",
        ),
        (
            ws_plan(r#"{ ws_connect = "live" }"#).replace("ws = \"/live", "body = { a = 1 }\nws = \"/live"),
            "requests.live.body",
            "\"/live",
            "ws_send",
        ),
        (
            ws_plan(r#"{ ws_connect = "live" }"#).replace("request = \"list\"", "request = \"live\""),
            "suites.smoke.scenarios.a.request",
            "\"live\"\n[suites.smoke.scenarios.b]",
            "use it in a workflow",
        ),
        (
            ws_plan(r#"{ ws_connect = "live" }"#).replace("[suites.smoke]", "[suites.smoke]\nsetup = [{ ws_connect = \"live\" }]"),
            "suites.smoke.setup[0].ws_connect",
            "\"live\" }]\nwarmup",
            "setup steps send HTTP requests only",
        ),
        (
            ws_plan(r#"{ ws_connect = "live" }"#).replace("[requests.get]", "[requests.\"live.message\"]\npath = \"/m\"\n\n[requests.get]"),
            "requests.live.message",
            "\"live.message\"]",
            "rename this request",
        ),
        (ws_plan(r#"{ ws_connect = "live" }"#).replace("ws = \"/live?p={{pid}}\"", "tags = []"), "requests.live", "live]", "needs `path`"),
    ];
    for (text, field, at, words) in cases {
        let e = compile_err(text, &CompileOptions::default());
        assert_eq!(&e.field, field, "{e}");
        assert_eq!((e.line, e.column), pos_of(text, at), "{field}: {e}");
        assert!(e.message.contains(words), "{field}: {e}");
        assert_eq!(e.file, "plan.toml");
    }
}

#[test]
fn fine_durations_read_decimals_and_microseconds() {
    use super::parse_fine_duration as fine;
    assert_eq!(fine("0.5ms"), Ok(Duration::from_micros(500)));
    assert_eq!(fine("500us"), Ok(Duration::from_micros(500)));
    assert_eq!(fine(" 500µs "), Ok(Duration::from_micros(500)));
    assert_eq!(fine("1.25ms"), Ok(Duration::from_micros(1250)));
    assert_eq!(fine("0.1ms"), Ok(Duration::from_micros(100)));
    assert_eq!(fine("2s"), Ok(Duration::from_secs(2)));
    assert_eq!(fine("1m30s"), Ok(Duration::from_secs(90)), "humantime's forms still read");
    for bad in [".5ms", "5.ms", "1.2.3ms", "half a ms", "ms"] {
        assert!(fine(bad).is_err(), "{bad}");
    }
}

#[test]
fn a_link_to_the_databases_is_read_into_the_setup() {
    use super::Link;
    let text = format!("{MINIMAL}\n[environment]\nlink_latency = \"0.5ms\"\nlink_jitter = \"100us\"\n");
    let lp = load(&text).unwrap();
    let link = Link { latency: Duration::from_micros(500), jitter: Duration::from_micros(100) };
    assert_eq!(lp.compile(&CompileOptions::default()).unwrap().setup.environment.link, Some(link));
    assert_eq!(lp.setup().unwrap().environment.link, Some(link), "`cargo perf up` reads it too");
    assert_eq!(link.describe(), "0.5 ms ± 0.1 ms each way");
    let text = format!("{MINIMAL}\n[environment]\nlink_latency = \"1ms\"\n");
    let link = load(&text).unwrap().setup().unwrap().environment.link.unwrap();
    assert_eq!((link.latency, link.jitter), (Duration::from_millis(1), Duration::ZERO));
    assert_eq!(link.describe(), "1 ms each way");
    assert_eq!(load(MINIMAL).unwrap().setup().unwrap().environment.link, None, "no link: direct connections");
    assert_eq!(
        [500, 1000, 1500, 100_000].map(|us| Link::key_part(Duration::from_micros(us))),
        ["500us", "1ms", "1500us", "100ms"].map(String::from)
    );
}

#[test]
fn a_link_out_of_bounds_is_refused_with_its_place_and_field() {
    let cases = [
        ("link_latency = \"0ms\"", "\"0ms\"", "environment.link_latency", "a link of 0 is no link"),
        ("link_latency = \"5us\"", "\"5us\"", "environment.link_latency", "less than the loopback itself costs: expected at least 10us"),
        ("link_latency = \"150ms\"", "\"150ms\"", "environment.link_latency", "an outage: expected at most 100ms"),
        ("link_latency = \"1.0005ms\"", "\"1.0005ms\"", "environment.link_latency", "finer than a microsecond"),
        ("link_jitter = \"0.1ms\"", "\"0.1ms\"", "environment.link_jitter", "set both"),
        ("link_latency = \"0.5ms\"\nlink_jitter = \"1ms\"", "\"1ms\"", "environment.link_jitter", "1ms is more than link_latency (0.5ms)"),
    ];
    for (lines, value, field, says) in cases {
        let text = format!("{MINIMAL}\n[environment]\n{lines}\n");
        let e = compile_err(&text, &CompileOptions::default());
        assert_eq!(e.field, field, "{e}");
        assert!(e.message.contains(says), "{e}");
        assert_eq!((e.line, e.column), pos_of(&text, value), "{e}");
        assert_eq!(load(&text).unwrap().setup().unwrap_err(), e, "`cargo perf up` refuses it too");
    }
    let e = compile_err(&format!("{MINIMAL}\n[environment]\nlink_latency = \"half a ms\"\n"), &CompileOptions::default());
    assert_eq!(e.field, "environment.link_latency", "{e}");
    assert!(e.message.contains("invalid duration \"half a ms\""), "{e}");
}

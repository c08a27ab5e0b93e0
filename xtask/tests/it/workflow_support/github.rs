//! A fake GitHub: the REST routes the workflows and the gate call, served by wiremock from the
//! real payloads in `fixtures/github/` (see its README), filled in from the harness's store.
//!
//! | route | answer |
//! | --- | --- |
//! | `GET /repos/acme/shop` | `repository.json` (default branch `main`) |
//! | `GET …/actions/workflows/{file}/runs` | the store's completed runs of that workflow, newest first, filtered by `branch`, `event` and `status`, each shaped like `workflow_runs.json`'s |
//! | `GET …/actions/runs/{id}/artifacts` | that run's artifacts, shaped like `run_artifacts.json`'s |
//! | `GET …/actions/artifacts/{id}/zip` | a redirect to the blob store, which serves the zip |
//! | `GET …/pulls/{n}` | `pull_request.json`, at the head commit the scenario says |
//! | `GET …/issues/{n}/comments` | `issue_comments_page1.json` (no perf comment yet) |
//! | `POST …/issues/{n}/comments` | `issue_comment_created.json`; the body is recorded |
//! | `POST`/`PATCH …/issues/comments/{id}` | `issue_comment_updated.json`; recorded |
//!
//! Every `/repos/` route wants the job's token (`Authorization: Bearer …` or `token …`), as a
//! private repository would: a step that forgets `GITHUB_TOKEN` gets GitHub's 401. Anything
//! else is a 404 with GitHub's body, and is recorded: a scenario asserts there was none.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};
use wiremock::matchers::any;
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

use super::store::SharedStore;

pub const OWNER: &str = "acme";
pub const REPO: &str = "acme/shop";
/// `GITHUB_TOKEN` / `github.token` of every job: shaped like an installation token.
pub const TOKEN: &str = "ghs_HarnessFakeToken0123456789abcdefABCDEF";

pub fn fixture_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fixtures/github").join(name)
}

pub fn fixture_json(name: &str) -> Value {
    let text = std::fs::read_to_string(fixture_path(name)).unwrap_or_else(|e| panic!("fixture {name}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("fixture {name}: {e}"))
}

/// A comment the fake GitHub received.
#[derive(Debug, Clone)]
pub struct PostedComment {
    /// The pull request (issue) number, for a new comment.
    pub issue: Option<u64>,
    /// The comment id, for an update.
    pub updated: Option<u64>,
    pub body: String,
}

#[derive(Debug, Default)]
struct ApiState {
    base_url: String,
    /// `head.sha` of `GET /pulls/{n}`.
    pull_head_sha: Option<String>,
    comments: Vec<PostedComment>,
    unexpected: Vec<String>,
}

/// The fake API; dropped with the scenario.
pub struct FakeGithub {
    server: MockServer,
    state: Arc<Mutex<ApiState>>,
    // Kept for the server's lifetime: wiremock's server runs on its own thread, but starting
    // it and mounting routes are async.
    _runtime: tokio::runtime::Runtime,
}

impl FakeGithub {
    pub fn start(store: SharedStore) -> FakeGithub {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a tokio runtime");
        let server = runtime.block_on(MockServer::builder().start());
        let state = Arc::new(Mutex::new(ApiState { base_url: server.uri(), ..ApiState::default() }));
        let api = Api { store, state: state.clone() };
        runtime.block_on(Mock::given(any()).respond_with(api).mount(&server));
        FakeGithub { server, state, _runtime: runtime }
    }

    pub fn url(&self) -> String {
        self.server.uri()
    }

    /// Makes `GET /pulls/{n}` answer with this head commit.
    pub fn set_pull_head(&self, sha: &str) {
        self.state.lock().unwrap().pull_head_sha = Some(sha.to_string());
    }

    pub fn comments(&self) -> Vec<PostedComment> {
        self.state.lock().unwrap().comments.clone()
    }

    /// Requests no route answers: `METHOD path (why)`.
    pub fn unexpected(&self) -> Vec<String> {
        self.state.lock().unwrap().unexpected.clone()
    }
}

struct Api {
    store: SharedStore,
    state: Arc<Mutex<ApiState>>,
}

fn json_response(status: u16, body: &Value) -> ResponseTemplate {
    ResponseTemplate::new(status).set_body_raw(serde_json::to_vec(body).expect("json"), "application/json; charset=utf-8")
}

impl Respond for Api {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let method = request.method.as_str().to_string();
        let path = request.url.path().to_string();
        let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
        let response = match segments.as_slice() {
            ["blob-store", "artifacts", file] => self.blob(file),
            ["repos", owner, name, rest @ ..] if format!("{owner}/{name}") == REPO => {
                if !authorized(request) {
                    return json_response(
                        401,
                        &json!({"message": "Bad credentials", "documentation_url": "https://docs.github.com/rest", "status": "401"}),
                    );
                }
                self.repo_route(&method, rest, request)
            }
            _ => None,
        };
        response.unwrap_or_else(|| {
            self.state.lock().unwrap().unexpected.push(format!("{method} {path}"));
            json_response(404, &fixture_json("error_404.json"))
        })
    }
}

fn authorized(request: &Request) -> bool {
    let header = request.headers.get("authorization").and_then(|v| v.to_str().ok()).unwrap_or("");
    header == format!("Bearer {TOKEN}") || header == format!("token {TOKEN}")
}

fn query(request: &Request, key: &str) -> Option<String> {
    request.url.query_pairs().find(|(k, _)| k == key).map(|(_, v)| v.into_owned())
}

impl Api {
    fn repo_route(&self, method: &str, rest: &[&str], request: &Request) -> Option<ResponseTemplate> {
        let number = |s: &str| s.parse::<u64>().ok();
        match (method, rest) {
            ("GET", []) => Some(json_response(200, &fixture_json("repository.json"))),
            ("GET", ["actions", "workflows", file, "runs"]) => Some(self.runs(file, request)),
            ("GET", ["actions", "runs", id, "artifacts"]) => Some(self.run_artifacts(number(id)?)),
            ("GET", ["actions", "artifacts", id, "zip"]) => {
                let id = number(id)?;
                self.store.lock().by_id(id)?;
                let location = format!("{}/blob-store/artifacts/{id}.zip", self.state.lock().unwrap().base_url);
                Some(ResponseTemplate::new(302).insert_header("location", location.as_str()))
            }
            ("GET", ["pulls", n]) => Some(self.pull(number(n)?)),
            ("GET", ["issues", _, "comments"]) => Some(json_response(200, &fixture_json("issue_comments_page1.json"))),
            ("POST", ["issues", n, "comments"]) => {
                self.record_comment(request, Some(number(n)?), None);
                Some(json_response(201, &fixture_json("issue_comment_created.json")))
            }
            ("POST" | "PATCH", ["issues", "comments", id]) => {
                self.record_comment(request, None, Some(number(id)?));
                Some(json_response(200, &fixture_json("issue_comment_updated.json")))
            }
            _ => None,
        }
    }

    /// The store's runs of `file`, filtered as GitHub filters them.
    fn runs(&self, file: &str, request: &Request) -> ResponseTemplate {
        let template = &fixture_json("workflow_runs.json")["workflow_runs"][0];
        let (branch, event, status) = (query(request, "branch"), query(request, "event"), query(request, "status"));
        let mut runs: Vec<_> = self
            .store
            .lock()
            .runs
            .iter()
            .filter(|r| r.workflow == file)
            .filter(|r| branch.as_ref().is_none_or(|b| *b == r.branch))
            .filter(|r| event.as_ref().is_none_or(|e| *e == r.event))
            .filter(|r| status.as_ref().is_none_or(|s| *s == r.conclusion || s == "completed"))
            .cloned()
            .collect();
        runs.sort_by_key(|r| std::cmp::Reverse(r.id));
        let items: Vec<Value> = runs
            .iter()
            .map(|r| {
                let mut v = template.clone();
                v["id"] = json!(r.id);
                v["event"] = json!(r.event);
                v["head_branch"] = json!(r.branch);
                v["head_sha"] = json!(r.head_sha);
                v["status"] = json!("completed");
                v["conclusion"] = json!(r.conclusion);
                v["path"] = json!(format!(".github/workflows/{}", r.workflow));
                v
            })
            .collect();
        json_response(200, &json!({ "total_count": items.len(), "workflow_runs": items }))
    }

    fn run_artifacts(&self, run_id: u64) -> ResponseTemplate {
        let template = &fixture_json("run_artifacts.json")["artifacts"][0];
        let base = self.state.lock().unwrap().base_url.clone();
        let store = self.store.lock();
        let items: Vec<Value> = store
            .of_run(run_id)
            .into_iter()
            .map(|a| {
                let mut v = template.clone();
                v["id"] = json!(a.id);
                v["name"] = json!(a.name);
                v["size_in_bytes"] = json!(a.size());
                v["expired"] = json!(a.expired);
                v["url"] = json!(format!("{base}/repos/{REPO}/actions/artifacts/{}", a.id));
                v["archive_download_url"] = json!(format!("{base}/repos/{REPO}/actions/artifacts/{}/zip", a.id));
                v["workflow_run"]["id"] = json!(a.run_id);
                v
            })
            .collect();
        json_response(200, &json!({ "total_count": items.len(), "artifacts": items }))
    }

    fn blob(&self, file: &str) -> Option<ResponseTemplate> {
        let id: u64 = file.strip_suffix(".zip")?.parse().ok()?;
        let zip = self.store.lock().by_id(id)?.zip().ok()?;
        Some(ResponseTemplate::new(200).set_body_raw(zip, "application/zip"))
    }

    fn pull(&self, number: u64) -> ResponseTemplate {
        let mut pull = fixture_json("pull_request.json");
        pull["number"] = json!(number);
        if let Some(sha) = &self.state.lock().unwrap().pull_head_sha {
            pull["head"]["sha"] = json!(sha);
        }
        json_response(200, &pull)
    }

    fn record_comment(&self, request: &Request, issue: Option<u64>, updated: Option<u64>) {
        let body: Value = serde_json::from_slice(&request.body).unwrap_or(Value::Null);
        let body = body["body"].as_str().unwrap_or_default().to_string();
        self.state.lock().unwrap().comments.push(PostedComment { issue, updated, body });
    }
}

// ---------------------------------------------------------------------------------------------
// Events: what triggers a run, with the payload GitHub would write to GITHUB_EVENT_PATH.

/// A triggering event.
#[derive(Debug, Clone)]
pub struct Event {
    /// `schedule`, `workflow_dispatch`, `pull_request`, `workflow_run`.
    pub name: String,
    pub payload: Value,
    /// `github.ref`.
    pub git_ref: String,
    /// `workflow_dispatch` inputs as typed values (`github.event.inputs` holds them as text).
    pub inputs: serde_json::Map<String, Value>,
}

impl Event {
    /// The nightly cron on the default branch (`event_schedule.json`).
    pub fn schedule() -> Event {
        Event {
            name: "schedule".into(),
            payload: fixture_json("event_schedule.json"),
            git_ref: "refs/heads/main".into(),
            inputs: Default::default(),
        }
    }

    /// A scheduled run whose payload has no `repository` (GitHub sends some that way): only
    /// `schedule`, `workflow` and `sender` are left.
    pub fn schedule_without_repository() -> Event {
        let mut event = Event::schedule();
        event.payload.as_object_mut().expect("a payload is an object").remove("repository");
        event
    }

    /// A perf-nightly run completed (`workflow_run`, from `event_workflow_run_same_repo.json`):
    /// run `run_id`, started by `event` on `main` at `head_sha`, with `conclusion`.
    pub fn workflow_run_nightly(run_id: u64, event: &str, conclusion: &str, head_sha: &str) -> Event {
        let mut payload = fixture_json("event_workflow_run_same_repo.json");
        let run = &mut payload["workflow_run"];
        run["id"] = json!(run_id);
        run["name"] = json!("perf-nightly");
        run["event"] = json!(event);
        run["head_branch"] = json!("main");
        run["head_sha"] = json!(head_sha);
        run["conclusion"] = json!(conclusion);
        run["path"] = json!(".github/workflows/perf-nightly.yml");
        run["html_url"] = json!(format!("https://github.com/{REPO}/actions/runs/{run_id}"));
        run["pull_requests"] = json!([]);
        payload["workflow"]["name"] = json!("perf-nightly");
        payload["workflow"]["path"] = json!(".github/workflows/perf-nightly.yml");
        Event { name: "workflow_run".into(), payload, git_ref: "refs/heads/main".into(), inputs: Default::default() }
    }

    /// "Run workflow" on the default branch with these inputs.
    pub fn dispatch(workflow_file: &str, inputs: &[(&str, Value)]) -> Event {
        let schedule = fixture_json("event_schedule.json");
        let inputs: serde_json::Map<String, Value> = inputs.iter().map(|(k, v)| (k.to_string(), v.clone())).collect();
        let as_text: serde_json::Map<String, Value> = inputs.iter().map(|(k, v)| (k.clone(), json!(super::expr::to_text(v)))).collect();
        let payload = json!({
            "inputs": as_text,
            "ref": "refs/heads/main",
            "repository": schedule["repository"],
            "sender": fixture_json("event_pull_request.json")["sender"],
            "workflow": format!(".github/workflows/{workflow_file}"),
        });
        Event { name: "workflow_dispatch".into(), payload, git_ref: "refs/heads/main".into(), inputs }
    }

    /// Pull request #7 (`event_pull_request.json`), from this repository or from a fork.
    pub fn pull_request(from_fork: bool) -> Event {
        let mut payload = fixture_json("event_pull_request.json");
        if from_fork {
            let head_repo = &mut payload["pull_request"]["head"]["repo"];
            head_repo["full_name"] = json!("mallory/shop");
            head_repo["fork"] = json!(true);
            head_repo["owner"]["login"] = json!("mallory");
        }
        Event { name: "pull_request".into(), payload, git_ref: "refs/pull/7/merge".into(), inputs: Default::default() }
    }

    /// A fork's perf-pr run completed (`event_workflow_run_fork.json`) with `conclusion`.
    pub fn workflow_run_fork(conclusion: &str) -> Event {
        let mut payload = fixture_json("event_workflow_run_fork.json");
        payload["workflow_run"]["conclusion"] = json!(conclusion);
        Event { name: "workflow_run".into(), payload, git_ref: "refs/heads/main".into(), inputs: Default::default() }
    }

    /// `github.ref_name`: `main`, or `7/merge` for a pull request.
    pub fn ref_name(&self) -> String {
        let r = &self.git_ref;
        r.strip_prefix("refs/heads/")
            .or_else(|| r.strip_prefix("refs/pull/"))
            .or_else(|| r.strip_prefix("refs/tags/"))
            .unwrap_or(r)
            .to_string()
    }
}

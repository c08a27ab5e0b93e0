//! What GitHub Actions tells a job about itself, read once from the environment.
//!
//! [`GithubContext::from_env`] takes a lookup function instead of reading the process
//! environment, so tests build contexts from literal maps and nothing global is touched.
//! Only values that are *present and malformed* are errors here; absent values become `None`
//! and the operation that needs them reports [`GithubError::MissingEnv`]. That way a laptop run
//! (no `GITHUB_*` at all) can still do `--comment --dry-run`.

use std::path::{Path, PathBuf};

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde::de::IgnoredAny;

use super::error::GithubError;
use super::retry::{RetryContext, RetryPolicy};

/// The public API host; `GITHUB_API_URL` overrides it (GitHub Enterprise, tests).
pub const DEFAULT_API_URL: &str = "https://api.github.com";

/// `owner/name` of the repository the job runs in, validated so it is safe in a URL path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepoSlug {
    pub owner: String,
    pub name: String,
}

impl std::fmt::Display for RepoSlug {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.owner, self.name)
    }
}

impl RepoSlug {
    /// Parses `owner/name`; GitHub allows ASCII letters, digits, `-`, `_` and `.` in both.
    pub fn parse(value: &str) -> Result<RepoSlug, GithubError> {
        let invalid = |reason: &str| GithubError::InvalidEnv { name: "GITHUB_REPOSITORY", reason: format!("{value:?}: {reason}") };
        let (owner, name) = value.split_once('/').ok_or_else(|| invalid("expected owner/name"))?;
        let ok = |part: &str| {
            !part.is_empty() && part != "." && part != ".." && part.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
        };
        if !ok(owner) || !ok(name) {
            return Err(invalid("expected owner/name made of letters, digits, '-', '_' and '.'"));
        }
        Ok(RepoSlug { owner: owner.to_owned(), name: name.to_owned() })
    }
}

/// Everything the GitHub operations need, taken from the `GITHUB_*` variables of a job.
///
/// `Debug` is safe to print: the token sits in a [`SecretString`], which shows `[REDACTED]`.
#[derive(Debug, Clone)]
pub struct GithubContext {
    /// REST API base, without a trailing slash (`https://api.github.com`, or
    /// `https://ghe.example.com/api/v3` on GitHub Enterprise Server).
    pub api_url: String,
    /// The GraphQL endpoint: `GITHUB_GRAPHQL_URL` (Actions sets it), else the one beside
    /// `api_url` (`https://api.github.com/graphql`, `https://ghe.example.com/api/graphql`).
    pub graphql_url: String,
    /// `GITHUB_REPOSITORY`, when set.
    pub repository: Option<RepoSlug>,
    /// `GITHUB_TOKEN`; never printed, see [`GithubContext::redact`].
    token: Option<SecretString>,
    /// `GITHUB_EVENT_NAME` (`pull_request`, `workflow_run`, `schedule`...).
    pub event_name: Option<String>,
    /// `GITHUB_EVENT_PATH`, when set.
    pub event_path: Option<PathBuf>,
    /// The pull request this job is about, when the event names one.
    pub pr_number: Option<u64>,
    /// The commit the event is about: the pull request's head, or the `workflow_run`'s head.
    pub head_sha: Option<String>,
    /// `GITHUB_STEP_SUMMARY`: the job summary file to append Markdown to.
    pub step_summary: Option<PathBuf>,
    /// `GITHUB_OUTPUT`: the step's outputs file (`name=value` lines).
    pub step_output: Option<PathBuf>,
    /// `GITHUB_ACTIONS=true`.
    pub in_actions: bool,
    /// How API calls are retried; tests shorten it.
    pub retry: RetryPolicy,
}

impl GithubContext {
    /// Reads the context through `get` (usually `|k| std::env::var(k).ok()`).
    ///
    /// Errors when a variable is present but malformed: `GITHUB_REPOSITORY` not `owner/name`,
    /// `GITHUB_API_URL` not an http(s) URL, or an event payload that is unreadable or not the
    /// shape its `GITHUB_EVENT_NAME` promises (the error names the file, line and field).
    pub fn from_env(get: impl Fn(&str) -> Option<String>) -> Result<GithubContext, GithubError> {
        let get = |k: &str| get(k).filter(|v| !v.trim().is_empty());
        let api_url = match get("GITHUB_API_URL") {
            Some(raw) => parse_api_url("GITHUB_API_URL", &raw)?,
            None => DEFAULT_API_URL.to_owned(),
        };
        let graphql_url = match get("GITHUB_GRAPHQL_URL") {
            Some(raw) => parse_api_url("GITHUB_GRAPHQL_URL", &raw)?,
            None => graphql_beside(&api_url),
        };
        let repository = get("GITHUB_REPOSITORY").map(|r| RepoSlug::parse(r.trim())).transpose()?;
        let token = get("GITHUB_TOKEN").map(|t| t.trim().to_owned());
        // octocrab panics on a header value it cannot build; refuse such a token here instead
        // (without quoting it).
        if token.as_ref().is_some_and(|t| !t.bytes().all(|b| b.is_ascii_graphic())) {
            return Err(GithubError::InvalidEnv {
                name: "GITHUB_TOKEN",
                reason: "contains spaces or characters not allowed in an HTTP header".into(),
            });
        }
        let token = token.map(SecretString::from);
        let event_name = get("GITHUB_EVENT_NAME");
        let event_path = get("GITHUB_EVENT_PATH").map(PathBuf::from);
        let facts = match &event_path {
            Some(path) => read_event(path, event_name.as_deref())?,
            None => EventFacts::default(),
        };
        Ok(GithubContext {
            api_url,
            graphql_url,
            repository,
            token,
            event_name,
            event_path,
            pr_number: facts.pr_number,
            head_sha: facts.head_sha,
            step_summary: get("GITHUB_STEP_SUMMARY").map(PathBuf::from),
            step_output: get("GITHUB_OUTPUT").map(PathBuf::from),
            in_actions: get("GITHUB_ACTIONS").is_some_and(|v| v == "true"),
            retry: RetryPolicy::default(),
        })
    }

    /// Reads the context from this process's environment.
    pub fn from_process_env() -> Result<GithubContext, GithubError> {
        GithubContext::from_env(|k| std::env::var(k).ok())
    }

    /// Sets the step output `name` (one line, so `value` must hold no newline): appended to
    /// `GITHUB_OUTPUT`. Does nothing outside Actions.
    pub fn set_output(&self, name: &str, value: &str) -> Result<(), GithubError> {
        let Some(path) = &self.step_output else { return Ok(()) };
        if value.contains(['\n', '\r']) || name.contains(['=', '\n', '\r']) {
            return Err(GithubError::InvalidEnv { name: "GITHUB_OUTPUT", reason: format!("output `{name}` must be one line") });
        }
        use std::io::Write;
        let mut f =
            std::fs::OpenOptions::new().create(true).append(true).open(path).map_err(|e| GithubError::io("cannot open", path, e))?;
        writeln!(f, "{name}={value}").map_err(|e| GithubError::io("cannot write", path, e))
    }

    /// True when a token is available.
    pub fn has_token(&self) -> bool {
        self.token.is_some()
    }

    /// True when the job runs for a `pull_request` event.
    pub fn is_pull_request_event(&self) -> bool {
        self.event_name.as_deref() == Some("pull_request")
    }

    /// Replaces every occurrence of the token in `text` with `***`: a last line of defence for
    /// messages that embed text we did not write (GitHub's error messages).
    pub fn redact(&self, text: &str) -> String {
        match &self.token {
            Some(token) if !token.expose_secret().is_empty() => text.replace(token.expose_secret(), "***"),
            _ => text.to_owned(),
        }
    }

    pub(crate) fn token(&self, needed_for: &'static str) -> Result<&SecretString, GithubError> {
        self.token.as_ref().ok_or(GithubError::MissingEnv { name: "GITHUB_TOKEN", needed_for })
    }

    pub(crate) fn repo(&self, needed_for: &'static str) -> Result<&RepoSlug, GithubError> {
        self.repository.as_ref().ok_or(GithubError::MissingEnv { name: "GITHUB_REPOSITORY", needed_for })
    }
}

/// The GraphQL endpoint of the REST API at `api_url`: GitHub Enterprise Server serves REST
/// under `/api/v3` and GraphQL at `/api/graphql`; github.com (and a test's fake) at `/graphql`.
fn graphql_beside(api_url: &str) -> String {
    match api_url.strip_suffix("/api/v3") {
        Some(host) => format!("{host}/api/graphql"),
        None => format!("{api_url}/graphql"),
    }
}

/// Checks a URL read from the variable `name` and drops its trailing slash.
fn parse_api_url(name: &'static str, raw: &str) -> Result<String, GithubError> {
    let invalid = |reason: String| GithubError::InvalidEnv { name, reason };
    let url = url::Url::parse(raw.trim()).map_err(|e| invalid(format!("{raw:?}: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(invalid(format!("{raw:?}: expected an http or https URL")));
    }
    if !url.username().is_empty() || url.password().is_some() || url.query().is_some() {
        return Err(invalid(format!("{raw:?}: expected a URL without credentials or query")));
    }
    Ok(url.as_str().trim_end_matches('/').to_owned())
}

/// What we take from an event payload.
#[derive(Debug, Default, PartialEq, Eq)]
struct EventFacts {
    pr_number: Option<u64>,
    head_sha: Option<String>,
}

// The payload shapes we read, as in GitHub's webhook documentation. Unknown fields are ignored;
// the fields listed are required for their event, so a truncated payload is an error, not a
// silent "no pull request".

#[derive(Deserialize)]
struct PullRequestEvent {
    pull_request: PullRequestRef,
}

#[derive(Deserialize)]
struct PullRequestRef {
    number: u64,
    head: HeadRef,
}

#[derive(Deserialize)]
struct HeadRef {
    sha: String,
}

#[derive(Deserialize)]
struct IssueCommentEvent {
    issue: IssueRef,
}

#[derive(Deserialize)]
struct IssueRef {
    number: u64,
    /// Present only when the issue is a pull request.
    #[serde(default)]
    pull_request: Option<IgnoredAny>,
}

#[derive(Deserialize)]
struct WorkflowRunEvent {
    workflow_run: WorkflowRunRef,
}

#[derive(Deserialize)]
struct WorkflowRunRef {
    head_sha: String,
    /// Empty for pull requests from forks: their number then comes from the artifact.
    #[serde(default)]
    pull_requests: Vec<NumberRef>,
}

#[derive(Deserialize)]
struct NumberRef {
    number: u64,
}

fn read_event(path: &Path, event_name: Option<&str>) -> Result<EventFacts, GithubError> {
    let text = std::fs::read_to_string(path).map_err(|source| GithubError::EventRead { path: path.to_owned(), source })?;
    parse_event(path, &text, event_name)
}

/// Parses an event payload. `path` is only used in error messages.
fn parse_event(path: &Path, text: &str, event_name: Option<&str>) -> Result<EventFacts, GithubError> {
    let facts = match event_name {
        Some("pull_request") => {
            let e: PullRequestEvent = deserialize(path, text)?;
            EventFacts { pr_number: Some(e.pull_request.number), head_sha: Some(e.pull_request.head.sha) }
        }
        Some("issue_comment") => {
            let e: IssueCommentEvent = deserialize(path, text)?;
            EventFacts { pr_number: e.issue.pull_request.map(|_| e.issue.number), head_sha: None }
        }
        Some("workflow_run") => {
            let e: WorkflowRunEvent = deserialize(path, text)?;
            EventFacts { pr_number: e.workflow_run.pull_requests.first().map(|p| p.number), head_sha: Some(e.workflow_run.head_sha) }
        }
        // Other events (push, schedule, workflow_dispatch) name no pull request; the file must
        // still be JSON, so a corrupt runner environment does not pass unnoticed.
        _ => {
            let _: IgnoredAny = deserialize(path, text)?;
            EventFacts::default()
        }
    };
    if facts.pr_number == Some(0) {
        return Err(GithubError::EventPayload {
            path: path.to_owned(),
            line: 0,
            column: 0,
            field: "number".into(),
            message: "expected a positive pull request number, found 0".into(),
        });
    }
    Ok(facts)
}

/// Deserializes with the path of the failing field, and serde_json's line and column.
fn deserialize<T: serde::de::DeserializeOwned>(path: &Path, text: &str) -> Result<T, GithubError> {
    let error = |field: String, inner: &serde_json::Error| GithubError::EventPayload {
        path: path.to_owned(),
        line: inner.line(),
        column: inner.column(),
        field: if field == "." || field.is_empty() { "(document)".into() } else { field },
        message: strip_position(&inner.to_string()),
    };
    let mut de = serde_json::Deserializer::from_str(text);
    let value: T = serde_path_to_error::deserialize(&mut de).map_err(|e| error(e.path().to_string(), e.inner()))?;
    // Trailing garbage after the document is an error too.
    de.end().map_err(|e| error(String::new(), &e))?;
    Ok(value)
}

/// serde_json appends " at line L column C" to its messages; we report those separately.
fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(i) => message[..i].to_owned(),
        None => message.to_owned(),
    }
}

impl RetryContext for GithubContext {
    fn retry_policy(&self) -> &RetryPolicy {
        &self.retry
    }

    fn redact(&self, text: &str) -> String {
        GithubContext::redact(self, text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repo_slug_accepts_owner_name_and_rejects_paths() {
        assert_eq!(RepoSlug::parse("acme/shop.rs").unwrap().to_string(), "acme/shop.rs");
        for bad in ["acme", "acme/", "/shop", "acme/shop/x", "acme/..", "ac me/shop", "acme/shop?x"] {
            assert!(RepoSlug::parse(bad).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn api_url_keeps_enterprise_path_and_drops_trailing_slash() {
        let parse = |raw| parse_api_url("GITHUB_API_URL", raw);
        assert_eq!(parse("https://ghe.example.com/api/v3/").unwrap(), "https://ghe.example.com/api/v3");
        assert_eq!(parse("http://127.0.0.1:8080").unwrap(), "http://127.0.0.1:8080");
        assert!(parse("ftp://x").is_err());
        assert!(parse("https://user:pw@x").is_err());
        assert!(parse("not a url").is_err());
    }

    #[test]
    fn the_graphql_endpoint_is_the_one_actions_names_or_the_one_beside_the_api() {
        let ctx = |pairs: &[(&str, &str)]| {
            let env: std::collections::HashMap<String, String> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
            GithubContext::from_env(|k| env.get(k).cloned()).unwrap().graphql_url
        };
        assert_eq!(ctx(&[]), "https://api.github.com/graphql");
        assert_eq!(ctx(&[("GITHUB_API_URL", "https://ghe.example.com/api/v3/")]), "https://ghe.example.com/api/graphql");
        assert_eq!(ctx(&[("GITHUB_API_URL", "http://127.0.0.1:8080")]), "http://127.0.0.1:8080/graphql");
        let named = [("GITHUB_API_URL", "https://ghe.example.com/api/v3"), ("GITHUB_GRAPHQL_URL", "https://gql.example.com/api/graphql/")];
        assert_eq!(ctx(&named), "https://gql.example.com/api/graphql");
        let env: std::collections::HashMap<String, String> = [("GITHUB_GRAPHQL_URL".to_string(), "not a url".to_string())].into();
        let err = GithubContext::from_env(|k| env.get(k).cloned()).unwrap_err().to_string();
        assert!(err.starts_with("GITHUB_GRAPHQL_URL is invalid"), "{err}");
    }

    #[test]
    fn issue_comment_on_a_plain_issue_names_no_pull_request() {
        let facts = parse_event(Path::new("e.json"), r#"{"issue":{"number":3}}"#, Some("issue_comment")).unwrap();
        assert_eq!(facts, EventFacts::default());
        let facts = parse_event(Path::new("e.json"), r#"{"issue":{"number":3,"pull_request":{}}}"#, Some("issue_comment")).unwrap();
        assert_eq!(facts.pr_number, Some(3));
    }

    #[test]
    fn zero_is_not_a_pull_request_number() {
        let err =
            parse_event(Path::new("e.json"), r#"{"pull_request":{"number":0,"head":{"sha":"a"}}}"#, Some("pull_request")).unwrap_err();
        assert!(err.to_string().contains("found 0"), "{err}");
    }

    #[test]
    fn unknown_events_need_only_valid_json() {
        assert_eq!(parse_event(Path::new("e.json"), "{}", Some("schedule")).unwrap(), EventFacts::default());
        let err = parse_event(Path::new("e.json"), "{} x", Some("push")).unwrap_err();
        assert!(err.to_string().contains("line 1"), "{err}");
    }
}

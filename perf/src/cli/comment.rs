//! `cargo perf comment` / `cargo xtask comment`: post a report saved by another job as the sticky pull-request comment.
//!
//! A pull request from a fork runs the gate with a read-only token, so it cannot comment. Its
//! results (with `report.md` and `pr-number`) are uploaded as an artifact; the trusted
//! `perf-comment` workflow (`workflow_run`, `pull-requests: write`) downloads them and runs this
//! command. Everything in that folder was written by the pull request's code, so it is treated
//! as data: the report is only ever posted as text, the number is parsed strictly, and when the
//! event is a `workflow_run` the pull request must point at the very commit that run built.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use crate::github::{
    CommentOutcome, GithubContext, PR_NUMBER_FILE, comment_body, parse_pr_number, pull_request_head_sha, read_pr_number, upsert_comment,
};
use anyhow::{Context, bail};

/// Largest report accepted; GitHub keeps 65,536 characters of it anyway.
const MAX_REPORT_BYTES: u64 = 4 * 1024 * 1024;

#[derive(clap::Args, Debug)]
pub struct CommentArgs {
    /// Folder holding report.md (and pr-number unless --pr is given), e.g. a downloaded artifact
    #[arg(long, value_name = "DIR")]
    pub report: PathBuf,
    /// Pull request to comment on [default: DIR/pr-number, else the event's pull request]
    #[arg(long, value_name = "N")]
    pub pr: Option<String>,
    /// Print the comment body instead of posting it
    #[arg(long)]
    pub dry_run: bool,
    /// The gate's run, linked from the comment when it wrote no report
    #[arg(long, value_name = "URL")]
    pub run_url: Option<String>,
}

pub async fn run(args: CommentArgs) -> anyhow::Result<ExitCode> {
    let ctx = GithubContext::from_process_env().context("cannot read the GitHub Actions environment")?;
    run_with(&args, &ctx).await
}

async fn run_with(args: &CommentArgs, ctx: &GithubContext) -> anyhow::Result<ExitCode> {
    // The run failed before the gate started (toolchain, build): it uploaded nothing, not
    // even the pull request's number, and a fork's workflow_run event does not carry it.
    if args.pr.is_none() && std::fs::symlink_metadata(&args.report).is_err() && ctx.pr_number.is_none() {
        eprintln!(
            "no results in {}: the pull request's run stopped before the gate started, so there is nothing to comment on; see its log{}",
            args.report.display(),
            args.run_url.as_deref().map(|u| format!(" ({u})")).unwrap_or_default()
        );
        return Ok(ExitCode::SUCCESS);
    }
    let markdown = read_report_or_notice(&args.report.join("report.md"), args.run_url.as_deref())?;
    let pr = resolve_pr(args, ctx)?;

    if args.dry_run {
        match pr {
            Some(pr) => eprintln!("dry run: this comment would go to pull request #{pr}"),
            None => eprintln!("dry run: no pull request number known"),
        }
        print!("{}", comment_body(&markdown));
        return Ok(ExitCode::SUCCESS);
    }
    let Some(pr) = pr else {
        bail!("no pull request to comment on: pass --pr, or put {PR_NUMBER_FILE} in {}", args.report.display());
    };
    if ctx.event_name.as_deref() == Some("workflow_run") {
        check_head(ctx, pr).await?;
    }
    let outcome = upsert_comment(ctx, pr, &markdown).await.with_context(|| format!("cannot comment on pull request #{pr}"))?;
    match outcome {
        CommentOutcome::Created { url, .. } => println!("created the perf comment: {url}"),
        CommentOutcome::Updated { url, .. } => println!("updated the perf comment: {url}"),
    }
    Ok(ExitCode::SUCCESS)
}

/// `--pr`, else `DIR/pr-number`, else the event's pull request. When the artifact and the
/// event both name one, they must agree.
fn resolve_pr(args: &CommentArgs, ctx: &GithubContext) -> anyhow::Result<Option<u64>> {
    if let Some(value) = &args.pr {
        return Ok(Some(parse_pr_number(value, "--pr")?));
    }
    let file = args.report.join(PR_NUMBER_FILE);
    if std::fs::symlink_metadata(&file).is_err() {
        return Ok(ctx.pr_number);
    }
    let from_file = read_pr_number(&args.report)?;
    if let Some(from_event) = ctx.pr_number
        && from_event != from_file
    {
        bail!("{} says pull request #{from_file} but the event says #{from_event}: refusing to guess", file.display());
    }
    Ok(Some(from_file))
}

/// Refuses to comment unless pull request `pr` is at the commit the triggering run built.
async fn check_head(ctx: &GithubContext, pr: u64) -> anyhow::Result<()> {
    let Some(expected) = &ctx.head_sha else {
        return Ok(());
    };
    let actual = pull_request_head_sha(ctx, pr).await.with_context(|| format!("cannot check pull request #{pr}"))?;
    if &actual != expected {
        bail!(
            "pull request #{pr} is at {actual} but the run that wrote this report built {expected}: \
             not commenting (the number does not belong to that run, or the pull request moved on)"
        );
    }
    Ok(())
}

/// The report, or, when the gate stopped before writing one, a short comment saying so (a
/// comment that silently stays on the last run's verdict would mislead).
fn read_report_or_notice(path: &Path, run_url: Option<&str>) -> anyhow::Result<String> {
    match std::fs::symlink_metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let log = match run_url {
                Some(url) if url.starts_with("https://") || url.starts_with("http://") => format!("[the run's log]({url})"),
                _ => "the run's log".to_string(),
            };
            Ok(format!(
                "## Performance gate: no report\n\nThe perf gate stopped before writing its report, so there is no verdict for this commit. See {log}.\n"
            ))
        }
        _ => read_report(path),
    }
}

/// Reads the report: a regular file, UTF-8, at most [`MAX_REPORT_BYTES`].
fn read_report(path: &Path) -> anyhow::Result<String> {
    let meta = std::fs::symlink_metadata(path).with_context(|| format!("cannot read {}", path.display()))?;
    if !meta.file_type().is_file() {
        bail!("{} is not a regular file", path.display());
    }
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(MAX_REPORT_BYTES + 1).read_to_end(&mut bytes))
        .with_context(|| format!("cannot read {}", path.display()))?;
    if bytes.len() as u64 > MAX_REPORT_BYTES {
        bail!("{} is larger than {MAX_REPORT_BYTES} bytes", path.display());
    }
    String::from_utf8(bytes).with_context(|| format!("{} is not UTF-8 text", path.display()))
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use wiremock::matchers::{method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    use super::*;

    fn fixture(name: &str) -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fixtures/github").join(name)
    }

    /// The environment of the trusted `workflow_run` job, for the event fixture `event`.
    fn ctx(api: &str, event: &str) -> GithubContext {
        let env: HashMap<&str, String> = HashMap::from([
            ("GITHUB_TOKEN", "ghs_testtoken".to_owned()),
            ("GITHUB_REPOSITORY", "acme/shop".to_owned()),
            ("GITHUB_API_URL", api.to_owned()),
            ("GITHUB_EVENT_NAME", "workflow_run".to_owned()),
            ("GITHUB_EVENT_PATH", fixture(event).display().to_string()),
        ]);
        let mut ctx = GithubContext::from_env(|k| env.get(k).cloned()).unwrap();
        ctx.retry.initial_backoff = std::time::Duration::from_millis(10);
        ctx
    }

    fn artifact(pr_number: Option<&str>) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("report.md"), "## Perf gate: pass\n").unwrap();
        if let Some(n) = pr_number {
            std::fs::write(dir.path().join(PR_NUMBER_FILE), n).unwrap();
        }
        dir
    }

    #[test]
    fn a_missing_report_becomes_a_notice_but_a_bad_one_stays_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let md = read_report_or_notice(&dir.path().join("report.md"), Some("https://github.com/acme/shop/actions/runs/1")).unwrap();
        assert!(md.contains("stopped before writing its report") && md.contains("(https://github.com/acme/shop/actions/runs/1)"), "{md}");
        let md = read_report_or_notice(&dir.path().join("report.md"), Some("javascript:alert(1)")).unwrap();
        assert!(!md.contains("javascript"), "only web links are linked: {md}");
        std::fs::create_dir(dir.path().join("report.md")).unwrap();
        assert!(read_report_or_notice(&dir.path().join("report.md"), None).is_err(), "a folder is not a report");
    }

    fn args(dir: &Path, pr: Option<&str>) -> CommentArgs {
        CommentArgs { report: dir.to_owned(), pr: pr.map(str::to_owned), dry_run: false, run_url: None }
    }

    fn json(status: u16, name: &str) -> ResponseTemplate {
        ResponseTemplate::new(status).set_body_raw(std::fs::read(fixture(name)).unwrap(), "application/json")
    }

    async fn mount_pr_and_comments(server: &MockServer, posts: u64) {
        Mock::given(method("GET"))
            .and(path("/repos/acme/shop/pulls/7"))
            .respond_with(json(200, "pull_request.json"))
            .expect(1)
            .mount(server)
            .await;
        Mock::given(method("GET"))
            .and(path("/repos/acme/shop/issues/7/comments"))
            .respond_with(json(200, "issue_comments_page1.json"))
            .mount(server)
            .await;
        Mock::given(method("POST"))
            .and(path("/repos/acme/shop/issues/7/comments"))
            .respond_with(json(201, "issue_comment_created.json"))
            .expect(posts)
            .mount(server)
            .await;
    }

    #[tokio::test]
    async fn comments_when_the_pull_request_is_at_the_built_commit() {
        let server = MockServer::start().await;
        mount_pr_and_comments(&server, 1).await;
        let dir = artifact(Some("7\n"));
        let code = run_with(&args(dir.path(), None), &ctx(&server.uri(), "event_workflow_run_same_repo.json")).await;
        assert_eq!(code.unwrap(), ExitCode::SUCCESS);
    }

    /// A fork's run that failed before the gate (a build error) uploaded nothing: there is no
    /// pull request to name, and that is not the comment job's failure.
    #[tokio::test]
    async fn no_results_at_all_is_a_notice_not_a_failure() {
        let server = MockServer::start().await;
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("perf-results");
        let code = run_with(&args(&missing, None), &ctx(&server.uri(), "event_workflow_run_fork.json")).await;
        assert_eq!(code.unwrap(), ExitCode::SUCCESS);
        assert!(server.received_requests().await.unwrap().is_empty(), "nothing was posted");
        // With a folder that has a report but no number, it is still an error.
        std::fs::create_dir(&missing).unwrap();
        std::fs::write(missing.join("report.md"), "## Performance gate: pass\n").unwrap();
        assert!(run_with(&args(&missing, None), &ctx(&server.uri(), "event_workflow_run_fork.json")).await.is_err());
    }

    #[tokio::test]
    async fn refuses_a_number_whose_pull_request_is_at_another_commit() {
        let server = MockServer::start().await;
        mount_pr_and_comments(&server, 0).await;
        let dir = artifact(Some("7"));
        let err = run_with(&args(dir.path(), None), &ctx(&server.uri(), "event_workflow_run_fork.json")).await.unwrap_err();
        assert!(err.to_string().contains("not commenting"), "{err}");
    }

    #[test]
    fn pr_sources_are_checked_and_must_agree() {
        let api = "http://127.0.0.1:9";
        let fork = ctx(api, "event_workflow_run_fork.json");
        let same = ctx(api, "event_workflow_run_same_repo.json");
        let dir = artifact(Some("8"));
        assert!(resolve_pr(&args(dir.path(), None), &same).unwrap_err().to_string().contains("refusing to guess"));
        assert_eq!(resolve_pr(&args(dir.path(), None), &fork).unwrap(), Some(8));
        assert_eq!(resolve_pr(&args(dir.path(), Some("9")), &same).unwrap(), Some(9));
        assert!(resolve_pr(&args(dir.path(), Some("9 ")), &same).is_err());
        let none = artifact(None);
        assert_eq!(resolve_pr(&args(none.path(), None), &same).unwrap(), Some(7));
        assert_eq!(resolve_pr(&args(none.path(), None), &fork).unwrap(), None);
    }

    #[test]
    fn report_must_be_a_regular_utf8_file() {
        let dir = tempfile::tempdir().unwrap();
        let report = dir.path().join("report.md");
        std::fs::write(&report, [0xff, 0xfe]).unwrap();
        assert!(read_report(&report).unwrap_err().to_string().contains("not UTF-8"));
        std::fs::remove_file(&report).unwrap();
        std::os::unix::fs::symlink("/etc/hostname", &report).unwrap();
        assert!(read_report(&report).unwrap_err().to_string().contains("not a regular file"));
    }
}

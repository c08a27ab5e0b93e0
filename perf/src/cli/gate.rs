//! `cargo perf` / `cargo xtask perf`: the gate. Validates the plan and the baseline, brings the environment
//! up, runs the suites, writes `<out>/<suite>.json`, compares each with its baseline, prints the
//! verdict, writes `<out>/report.md`, `<out>/report.html` and the results for other tools
//! (`crate::export`), and publishes to GitHub when asked.
//!
//! Exit status: 0 pass, 1 regression or SLO breach, 2 invalid run or bad input, 130 Ctrl-C.
//! The work is in `crate::run::gate`, the one owner of a run; this module turns flags into
//! options, prints what the run returns and publishes it to GitHub.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use crate::engine::ProgressMode;
use crate::env::BackendChoice;
use crate::github::{BASELINE_ARTIFACT, CommentStatus, GithubContext, NIGHTLY_WORKFLOW, PublishOptions, publish, write_pr_number};
use crate::plan::CompileOptions;
use crate::render::{self, TerminalOptions};
use crate::run::{BaselineChoice, GateError, GateOptions, GateOutcome, JudgedRun, Mode};
use crate::verdict::{BaselineSource, Headline};
use clap::{Args, ValueEnum};
use tokio_util::sync::CancellationToken;

#[derive(Args, Debug)]
pub struct PerfArgs {
    /// Suite to run (repeatable, or comma-separated); `all` runs every suite of the plan
    /// [default: the plan's default_suites]
    #[arg(long = "suite", value_name = "NAME", value_delimiter = ',', env = "PERF_SUITES")]
    suites: Vec<String>,
    /// Where the app and its services come from: `auto` uses Docker when an engine answers
    /// and local processes otherwise; `external` starts nothing and uses --app-url
    #[arg(long, value_enum, default_value_t = BackendChoice::Auto, env = "PERF_BACKEND")]
    backend: BackendChoice,
    /// The app's base URL for --backend external
    #[arg(long, value_name = "URL")]
    app_url: Option<String>,
    /// Shrink every suite to at most 30 s (CI smoke runs)
    #[arg(long)]
    quick: bool,
    /// Only send requests carrying one of these tags (repeatable, or comma-separated)
    #[arg(long = "tags", value_name = "TAG", value_delimiter = ',')]
    tags: Vec<String>,
    /// Stretch or shrink every selected suite to this length, e.g. 5m
    #[arg(long, value_name = "DURATION", env = "PERF_DURATION", value_parser = parse_duration)]
    duration: Option<std::time::Duration>,
    /// Peak virtual users of closed-model scenarios
    #[arg(long, value_name = "N", env = "PERF_USERS")]
    users: Option<u32>,
    /// The plan file [default: perf.toml in this folder or the nearest parent that has one]
    #[arg(long, value_name = "PATH")]
    plan: Option<PathBuf>,
    /// Results folder: <suite>.json, report.md, report.html, logs/, and the same results for other tools (<suite>_stats.csv, _stats_history.csv, _failures.csv, junit.xml, bmf.json, benchmark.json) [default: results/ next to the plan]
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Baseline folder (<testbed>/<suite>.json, or <suite>.json) or file [default:
    /// results/baseline/ next to the plan]
    #[arg(long, value_name = "PATH", conflicts_with = "no_baseline")]
    baseline: Option<PathBuf>,
    /// Compare with the closest baseline even when it was recorded on another testbed
    /// (backend, host class, --quick) or with another suite definition; the report marks it
    #[arg(long)]
    baseline_any_testbed: bool,
    /// Compare with the artifact NAME-<testbed> of the newest successful scheduled nightly run
    /// on the default branch; without one, with the stored baseline
    #[arg(long, value_name = "NAME", num_args = 0..=1, default_missing_value = BASELINE_ARTIFACT)]
    baseline_from_artifact: Option<String>,
    /// The nightly workflow whose scheduled runs carry the baseline artifact
    #[arg(long, value_name = "FILE", env = "PERF_NIGHTLY_WORKFLOW", default_value = NIGHTLY_WORKFLOW)]
    nightly_workflow: String,
    /// Do not compare with any baseline
    #[arg(long)]
    no_baseline: bool,
    /// Write this run's summaries as the stored baseline (valid runs only)
    #[arg(long)]
    update_baseline: bool,
    /// Run each load suite a second time (an A/A): the suite's summary is both runs (a baseline
    /// of twice the requests), and how far the same code moved is written as
    /// <suite>.noise.json beside it (and beside the stored baseline with --update-baseline):
    /// this testbed's noise, the floor of later comparisons with this run as their baseline
    /// where the plan sets none. The nightly passes it
    #[arg(long, conflicts_with_all = ["ab", "from_summaries", "shard"])]
    measure_noise: bool,
    /// A/B mode, the pull request's verdict: the app at this git ref (built once per commit in
    /// a worktree, sharing the head's compiled dependencies) and the working tree run side by
    /// side on this machine, each suite in short segments taken in turns, compared pair by
    /// pair. The stored baseline (or --baseline-from-artifact) is reported as a second opinion
    #[arg(long, value_name = "REF", group = "ab", conflicts_with = "update_baseline")]
    against: Option<String>,
    /// Compare with the stored baseline, and A/B against this git ref when some suite has no
    /// comparable one (no baseline of this testbed and suite definition): the pull-request
    /// workflow's `compare: stored`, for dedicated runners
    #[arg(long, value_name = "REF", group = "ab", conflicts_with = "update_baseline")]
    fallback_against: Option<String>,
    /// Check everything (flags, plan, baseline, artifact, git refs), say what would run, and
    /// stop before anything starts: exit 0 when the run could go ahead (PERF_CHECK=1 does the
    /// same, so that a workflow's own command line can be dry-run as written)
    #[arg(long, env = "PERF_CHECK", value_parser = clap::builder::BoolishValueParser::new(), default_value_t = false, num_args = 0, default_missing_value = "true")]
    check: bool,
    /// Do not re-run a regressed suite to confirm the regression
    #[arg(long)]
    no_confirm: bool,
    /// Create or update the pull request's sticky comment (the default in a pull_request job)
    #[arg(long, conflicts_with = "no_comment")]
    comment: bool,
    /// Never comment, even in a pull_request job
    #[arg(long)]
    no_comment: bool,
    /// With --comment: print the comment instead of posting it
    #[arg(long)]
    dry_run: bool,
    /// Progress display: auto (bar on a terminal, plain lines otherwise), bar, plain, off
    #[arg(long, value_enum, default_value_t = Progress::Auto)]
    progress: Progress,
    /// Seed of the virtual users' random draws
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Send part K of N of every suite's load (one of N machines; load suites only): arrival
    /// rates start every N-th iteration of the schedule, users and sequence values are split.
    /// No baseline comparison: merge the shards' results (`merge`) and gate the merged run
    #[arg(long, value_name = "K/N", env = "PERF_SHARD", conflicts_with_all = ["update_baseline", "ab"])]
    shard: Option<crate::plan::Shard>,
    /// Start the load at this time (RFC 3339, or +30s from now), so that shards started at
    /// different moments send together
    #[arg(long, value_name = "TIME", value_parser = parse_start_at)]
    start_at: Option<std::time::SystemTime>,
    /// Judge results measured elsewhere and start nothing: the summaries in DIR (shards merged
    /// by `merge`, or any results folder) are compared with the baseline of their testbed,
    /// reported and commented like a run's. Give the plan and the --quick, --duration, --users
    /// and --tags the run had [default suites: those in DIR]
    #[arg(long, value_name = "DIR", conflicts_with_all = ["shard", "ab", "start_at", "app_url", "app_env"])]
    from_summaries: Option<PathBuf>,
    /// Extra environment for the app, KEY=VALUE (repeatable), e.g. REFAPP_DELAY=provider:10
    #[arg(long = "app-env", value_name = "KEY=VALUE", value_parser = parse_key_value)]
    app_env: Vec<(String, String)>,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum Progress {
    Auto,
    Bar,
    Plain,
    Off,
}

fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
    humantime::parse_duration(s.trim()).map_err(|e| format!("`{s}` is not a duration (e.g. 90s, 5m): {e}"))
}

/// `--start-at`: RFC 3339, or `+DURATION` from now.
fn parse_start_at(s: &str) -> Result<std::time::SystemTime, String> {
    if let Some(rel) = s.strip_prefix('+') {
        return Ok(std::time::SystemTime::now() + parse_duration(rel)?);
    }
    let ts: jiff::Timestamp =
        s.parse().map_err(|e| format!("{s:?} is not a time: expected RFC 3339 (2026-12-01T10:00:00Z) or +30s ({e})"))?;
    Ok(std::time::SystemTime::from(ts))
}

fn parse_key_value(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_string(), v.to_string())),
        _ => Err(format!("`{s}` is not KEY=VALUE")),
    }
}

pub async fn run(args: PerfArgs, cancel: CancellationToken) -> anyhow::Result<ExitCode> {
    let plan_path = match super::args::plan_path(args.plan.as_deref()) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("error: {e}");
            return Ok(ExitCode::from(2));
        }
    };
    if matches!(args.backend, BackendChoice::External) && args.app_url.is_none() {
        eprintln!("error: --backend external needs --app-url URL");
        return Ok(ExitCode::from(2));
    }
    let root = super::args::project_root(&plan_path);
    let out_dir = args.out.clone().unwrap_or_else(|| root.join("results"));
    let github = match GithubContext::from_process_env() {
        Ok(ctx) => Some(ctx),
        Err(e) if args.comment || args.baseline_from_artifact.is_some() => {
            eprintln!("error: cannot read the GitHub Actions environment: {e}");
            return Ok(ExitCode::from(2));
        }
        Err(e) => {
            eprintln!("warning: ignoring the GitHub Actions environment: {e}");
            None
        }
    };
    // First, so that a fork's comment job knows the pull request even when the gate stops
    // before writing its report.
    if let Some(ctx) = &github
        && !args.check
        && let Err(e) = write_pr_number(&out_dir, ctx)
    {
        eprintln!("warning: {e}");
    }
    let opts = options(&args, plan_path, &root, out_dir.clone(), github.clone(), cancel);

    let judged = match crate::run::gate(opts).await {
        Ok(GateOutcome::Checked) => return Ok(ExitCode::SUCCESS),
        Ok(GateOutcome::Judged(j)) => j,
        Err(e) => return Ok(fail(&e)),
    };
    print_report(&judged, &out_dir)?;
    if let Some(ctx) = &github {
        publish_to_github(ctx, &args, &judged.reports.markdown).await;
    }
    let code = judged.exit_code();
    eprintln!("verdict: {} (exit {code})", Headline::of(&judged.report).words());
    Ok(ExitCode::from(code))
}

/// The gate's options from the flags.
fn options(
    args: &PerfArgs,
    plan_path: PathBuf,
    root: &Path,
    out_dir: PathBuf,
    github: Option<GithubContext>,
    cancel: CancellationToken,
) -> GateOptions {
    // One folder per testbed inside (see crate::run::baseline): a quick run, a Docker run or
    // another host class each find their own.
    let stored = root.join("results").join("baseline");
    let baseline = if args.no_baseline {
        BaselineChoice::None
    } else if let Some(path) = &args.baseline {
        BaselineChoice::Path { path: path.clone(), source: BaselineSource::Committed { path: path.display().to_string() } }
    } else if let Some(name) = &args.baseline_from_artifact {
        BaselineChoice::Artifact { name: name.clone(), workflow: args.nightly_workflow.clone(), fallback: stored.clone() }
    } else {
        BaselineChoice::Path { path: stored.clone(), source: BaselineSource::Committed { path: String::new() } }
    };
    let mode = match (&args.from_summaries, &args.against) {
        (Some(dir), _) => Mode::Measured { dir: dir.clone() },
        (None, Some(git_ref)) => Mode::Ab { git_ref: git_ref.clone() },
        (None, None) => Mode::Stored { fallback_against: args.fallback_against.clone() },
    };
    let mut opts = GateOptions::new(plan_path, out_dir);
    opts.compile = CompileOptions {
        suites: args.suites.iter().map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect(),
        quick: args.quick,
        tags: args.tags.clone(),
        duration: args.duration,
        users: args.users,
        shard: args.shard,
    };
    opts.backend = args.backend;
    opts.app_url = args.app_url.clone();
    opts.baseline = baseline;
    opts.mode = mode;
    opts.confirm = !args.no_confirm;
    opts.any_testbed = args.baseline_any_testbed;
    opts.progress = match args.progress {
        Progress::Auto => ProgressMode::Auto,
        Progress::Bar => ProgressMode::Bar,
        Progress::Plain => ProgressMode::Plain,
        Progress::Off => ProgressMode::Off,
    };
    opts.cancel = cancel;
    opts.seed = args.seed;
    opts.start_at = args.start_at;
    opts.app_env = args.app_env.clone();
    opts.notes = crate::run::Notes::stderr();
    opts.check = args.check;
    opts.update_baseline = args.update_baseline.then(|| args.baseline.clone().unwrap_or(stored));
    opts.measure_noise = args.measure_noise;
    opts.github = github;
    opts.full_report_hint = Some("the `perf-results` artifact (report.html)".into());
    opts
}

/// The tables and the verdict on stdout; the files written on stderr.
fn print_report(judged: &JudgedRun, out_dir: &Path) -> anyhow::Result<()> {
    let stdout = std::io::stdout();
    let color = stdout.is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let text = render::terminal(&judged.report, TerminalOptions { color, width: None });
    {
        let mut out = stdout.lock();
        writeln!(out)?;
        write!(out, "{text}")?;
        if !text.ends_with('\n') {
            writeln!(out)?;
        }
        out.flush()?;
    }
    for f in &judged.written {
        eprintln!("wrote {}", display(f));
    }
    let reports = &judged.reports;
    eprintln!("wrote {} and {}", display(&reports.markdown_path), display(&reports.html_path));
    eprintln!("wrote {} files for other tools in {}", reports.exported.len(), display(out_dir));
    match &judged.baseline_update {
        Some(Ok(files)) => files.iter().for_each(|f| eprintln!("stored baseline updated: {}", display(f))),
        Some(Err(e)) => eprintln!("error: {e}"),
        None => {}
    }
    Ok(())
}

/// The job summary always (in Actions), the sticky comment when asked or by default on pull
/// requests. Nothing here changes the verdict.
async fn publish_to_github(ctx: &GithubContext, args: &PerfArgs, markdown: &str) {
    let comment = args.comment || args.dry_run || (ctx.in_actions && ctx.is_pull_request_event() && !args.no_comment);
    if ctx.step_summary.is_none() && !comment {
        return;
    }
    let published = publish(ctx, markdown, PublishOptions { comment: comment && !args.no_comment, dry_run: args.dry_run }).await;
    for w in &published.warnings {
        eprintln!("warning: {w}");
    }
    match &published.comment {
        CommentStatus::DryRun { body } => {
            eprintln!("dry run: this is the comment that would be posted");
            println!("{body}");
        }
        CommentStatus::Posted(outcome) => eprintln!("pull request comment: {}", outcome.url()),
        _ => {}
    }
}

fn fail(e: &GateError) -> ExitCode {
    match e {
        GateError::Interrupted => eprintln!("interrupted: everything that was started has been stopped"),
        GateError::Input(m) => eprintln!("error: {m}"),
        GateError::Environment(m) | GateError::Io(m) => eprintln!("error: {m}"),
    }
    ExitCode::from(e.exit_code())
}

fn display(path: &Path) -> String {
    crate::util::display_path(path)
}

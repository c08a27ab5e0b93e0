//! `cargo perf` / `cargo xtask perf`: the gate. Validates the plan and the baseline, brings the environment
//! up, runs the suites, writes `<out>/<suite>.json`, compares each with its baseline, prints the
//! verdict, writes `<out>/report.md`, `<out>/report.html` and the results for other tools
//! (`crate::export`), and publishes to GitHub when asked.
//!
//! Exit status: 0 pass, 1 regression or SLO breach, 2 invalid run or bad input, 130 Ctrl-C.
//! The work is in `crate::run`; this module turns flags into options and prints.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use crate::engine::ProgressMode;
use crate::env::{BackendChoice, BackendKind};
use crate::github::{
    BASELINE_ARTIFACT, CommentStatus, GithubContext, NIGHTLY_WORKFLOW, PublishOptions, download_baseline_artifact, publish, write_pr_number,
};
use crate::plan::CompileOptions;
use crate::render::{self, BaselineSource, Headline, MarkdownOptions, TerminalOptions};
use crate::run::measured::Measured;
use crate::run::{BaselineChoice, GateError, GateOptions, Pick};
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
    /// A/B mode: build the app at this git ref in a worktree and compare it with the working
    /// tree, running the suites alternately in the same job (local backend)
    #[arg(long, value_name = "REF", group = "ab", conflicts_with_all = ["baseline", "baseline_from_artifact", "update_baseline"])]
    against: Option<String>,
    /// A/B against this git ref when some suite has no comparable baseline (no baseline of
    /// this testbed and suite definition); the pull-request workflow passes the base branch
    #[arg(long, value_name = "REF", group = "ab", conflicts_with = "update_baseline")]
    fallback_against: Option<String>,
    /// A/B mode: rounds per side
    #[arg(long, value_name = "N", default_value_t = 3, requires = "ab")]
    rounds: u32,
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
    let plan_path = match super::plan_path(args.plan.as_deref()) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("error: {e}");
            return Ok(ExitCode::from(2));
        }
    };
    let root = super::project_root(&plan_path);
    let out_dir = args.out.clone().unwrap_or_else(|| root.join("results"));
    // One folder per testbed inside (see crate::run::baseline): a quick run, a Docker run or
    // another host class each find their own.
    let committed = root.join("results").join("baseline");

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

    let mut opts = GateOptions {
        plan_path,
        compile: CompileOptions {
            suites: args.suites.iter().map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect(),
            quick: args.quick,
            tags: args.tags.clone(),
            duration: args.duration,
            users: args.users,
            shard: args.shard,
        },
        backend: args.backend,
        app_url: args.app_url.clone(),
        out_dir: out_dir.clone(),
        baseline: BaselineChoice::None,
        confirm: !args.no_confirm,
        any_testbed: args.baseline_any_testbed,
        progress: match args.progress {
            Progress::Auto => ProgressMode::Auto,
            Progress::Bar => ProgressMode::Bar,
            Progress::Plain => ProgressMode::Plain,
            Progress::Off => ProgressMode::Off,
        },
        cancel,
        seed: args.seed,
        start_at: args.start_at,
        app_env: args.app_env.clone(),
        notes: crate::run::Notes::stderr(),
    };
    if matches!(opts.backend, BackendChoice::External) && opts.app_url.is_none() {
        eprintln!("error: --backend external needs --app-url URL");
        return Ok(ExitCode::from(2));
    }

    // 1. Everything the user gave us is checked before anything starts. The testbed comes
    //    first: which baseline (and which nightly artifact) fits depends on it.
    //    Results measured elsewhere (--from-summaries) bring their own testbed.
    let measured = match args.from_summaries.as_deref().map(Measured::read).transpose() {
        Ok(m) => m,
        Err(e) => return Ok(fail(&e)),
    };
    let (backend, testbed) = match &measured {
        Some(m) => {
            if opts.compile.suites.is_empty() {
                opts.compile.suites = m.suites();
            }
            match m.testbed() {
                Ok(t) => (BackendKind::External, t),
                Err(e) => return Ok(fail(&e)),
            }
        }
        None => crate::run::resolve_testbed(&opts).await,
    };
    if let Some(shard) = args.shard {
        opts.notes.say(format!(
            "shard {shard}: part of the load, compared with no baseline; merge the shards' results (`merge`) and gate the merged run"
        ));
    }
    opts.baseline = if args.no_baseline || args.against.is_some() || args.shard.is_some() {
        BaselineChoice::None
    } else if let Some(path) = &args.baseline {
        BaselineChoice::Path { path: path.clone(), source: BaselineSource::Committed { path: path.display().to_string() } }
    } else if let Some(name) = &args.baseline_from_artifact {
        let name = format!("{name}-{}", testbed.key);
        artifact_baseline(github.as_ref(), &name, &args.nightly_workflow, &out_dir, &committed).await
    } else {
        BaselineChoice::Path { path: committed.clone(), source: BaselineSource::Committed { path: String::new() } }
    };
    let prepared = match crate::run::prepare_on(&opts, backend, testbed) {
        Ok(p) => p,
        Err(e) => return Ok(fail(&e)),
    };
    let measured = match measured.map(|m| m.for_suites(&prepared, &opts.plan_path)).transpose() {
        Ok(m) => m,
        Err(e) => return Ok(fail(&e)),
    };
    if let Some(ctx) = &github
        && let Err(e) = ctx.set_output("testbed", &prepared.testbed.key)
    {
        eprintln!("warning: {e}");
    }
    let names: Vec<&str> = prepared.compiled.suites.iter().map(|s| s.name.as_str()).collect();
    eprintln!(
        "perf gate: plan {}, suites {}{}",
        display(&opts.plan_path),
        names.join(", "),
        if opts.compile.quick { " (--quick)" } else { "" }
    );
    eprintln!("  testbed: {}", prepared.testbed.key);
    if let Some(dir) = &args.from_summaries {
        eprintln!("  judging the results in {}: nothing is started", display(dir));
    }
    for name in names.iter().filter(|_| args.against.is_none()) {
        match prepared.baselines.pick(name) {
            Some(Pick::Found { path, across: None, .. }) => eprintln!("  {name}: baseline {}", display(path)),
            Some(Pick::Found { path, across: Some(why), .. }) => {
                eprintln!("  {name}: baseline {} (forced across testbeds: {why})", display(path))
            }
            Some(Pick::NotComparable { why, .. }) => eprintln!("  {name}: not comparable, no verdict on regressions ({why})"),
            None => eprintln!("  {name}: no baseline (nothing to compare with)"),
        }
    }

    // A/B: asked for, or the fallback when a suite has no comparable baseline.
    let uncompared = prepared.uncompared_suites();
    let against = match (&args.against, &args.fallback_against) {
        (Some(r), _) => Some(r.clone()),
        (None, Some(r)) if !uncompared.is_empty() => {
            eprintln!(
                "  no comparable baseline for {}: comparing with {r} on this machine instead (A/B, {} rounds each)",
                uncompared.join(", "),
                args.rounds
            );
            Some(r.clone())
        }
        _ => None,
    };
    let ab = match &against {
        Some(git_ref) => match crate::run::ab::resolve(&opts, &prepared, git_ref, args.rounds) {
            Ok(t) => Some(t),
            Err(e) => return Ok(fail(&e)),
        },
        None => None,
    };
    if args.check {
        match &ab {
            Some(t) => {
                eprintln!("check: would run A/B against {} ({}), {} rounds each", t.git_ref, &t.sha[..t.sha.len().min(12)], t.rounds)
            }
            None if measured.is_some() => eprintln!("check: would judge {} from the results given", names.join(", ")),
            None => eprintln!("check: would run {} on the {} backend", names.join(", "), prepared.backend),
        }
        eprintln!("check: everything is valid; nothing was started");
        return Ok(ExitCode::SUCCESS);
    }

    // 2-5. Environment, load, summaries, comparison.
    let gate = match (&ab, measured) {
        (_, Some(summaries)) => crate::run::measured::gate(&opts, &prepared, summaries).await,
        (Some(target), None) => crate::run::ab::run(&opts, &prepared, target).await,
        (None, None) => crate::run::run(&opts, &prepared).await,
    };
    let gate = match gate {
        Ok(g) => g,
        Err(e) => return Ok(fail(&e)),
    };
    let report = gate.report;

    // Reports.
    let stdout = std::io::stdout();
    let color = stdout.is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let text = render::terminal(&report, TerminalOptions { color, width: None });
    let md_options = MarkdownOptions { full_report_hint: Some("the `perf-results` artifact (report.html)".into()), ..Default::default() };
    let reports = match crate::run::outputs::write_reports(&report, &prepared.compiled, &out_dir, &md_options) {
        Ok(r) => r,
        Err(e) => return Ok(fail(&e)),
    };
    {
        let mut out = stdout.lock();
        writeln!(out)?;
        write!(out, "{text}")?;
        if !text.ends_with('\n') {
            writeln!(out)?;
        }
        out.flush()?;
    }
    for f in &gate.written {
        eprintln!("wrote {}", display(f));
    }
    eprintln!("wrote {} and {}", display(&reports.markdown_path), display(&reports.html_path));
    eprintln!("wrote {} files for other tools in {}", reports.exported.len(), display(&out_dir));

    let mut code = render::exit_code(&report);

    if args.update_baseline {
        match crate::run::outputs::update_baseline(&report, args.baseline.as_deref().unwrap_or(&committed), &prepared.testbed.key) {
            Ok(files) => {
                for f in files {
                    eprintln!("baseline updated: {}", display(&f));
                }
            }
            Err(e) => {
                eprintln!("error: {e}");
                code = code.max(2);
            }
        }
    }

    // GitHub: job summary always (when in Actions), the comment when asked or by default on
    // pull requests. Nothing here changes the verdict.
    if let Some(ctx) = &github {
        let comment = args.comment || args.dry_run || (ctx.in_actions && ctx.is_pull_request_event() && !args.no_comment);
        if ctx.step_summary.is_some() || comment {
            let published =
                publish(ctx, &reports.markdown, PublishOptions { comment: comment && !args.no_comment, dry_run: args.dry_run }).await;
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
    }

    let headline = Headline::of(&report);
    eprintln!("verdict: {} (exit {code})", headline.words());
    Ok(ExitCode::from(code.clamp(0, 255) as u8))
}

/// Downloads the nightly baseline artifact `name` (its testbed in the name); on any failure,
/// says why and uses the stored baseline (whose own testbed check still applies).
async fn artifact_baseline(github: Option<&GithubContext>, name: &str, workflow: &str, out_dir: &Path, committed: &Path) -> BaselineChoice {
    let fallback = |why: String| {
        eprintln!("  no nightly baseline: artifact `{name}`: {why}; using the stored baseline");
        BaselineChoice::Path { path: committed.to_path_buf(), source: BaselineSource::Committed { path: String::new() } }
    };
    let Some(ctx) = github else {
        return fallback("no GitHub environment".into());
    };
    let dest = out_dir.join("baseline-artifact");
    match download_baseline_artifact(ctx, name, workflow, &dest).await {
        Ok(dir) => {
            eprintln!("  baseline: artifact `{name}` of the newest successful scheduled {workflow} run");
            BaselineChoice::Path { path: dir, source: BaselineSource::Artifact { name: name.to_string() } }
        }
        Err(e) => fallback(ctx.redact(&e.to_string())),
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
    crate::run::display_path(path)
}

//! `cargo xtask experiment`: measures the gate's verdict quality on this machine (see
//! `perf::run::experiment`): copies of the reference app with known slowdowns on one route,
//! judged against the base trial after trial. Prints each trial's verdicts on stderr, then a
//! table of how often each slowdown was called a regression, and writes
//! `<out>/experiment-<mode>.json` (`--rejudge`: `<out>/experiment-<mode>-rejudged.json`).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, ValueEnum};
use perf::env::BackendChoice;
use perf::plan::CompileOptions;
use perf::run::GateOptions;
use perf::run::experiment::{Comparison, ExperimentOptions, ExperimentReport, run as run_experiment};
use tokio_util::sync::CancellationToken;

#[derive(Clone, Copy, Debug, ValueEnum)]
enum Mode {
    /// Base and copies interleaved in segments, compared pair by pair (`--against`)
    Ab,
    /// The base and one copy at a time loaded at the same moments, compared pair by pair
    Duet,
    /// The base's whole run as the stored baseline, each copy judged against it
    Stored,
}

#[derive(Args, Debug)]
pub struct ExperimentArgs {
    /// How each trial compares
    #[arg(long, value_enum, default_value_t = Mode::Ab)]
    mode: Mode,
    /// Trials: each copy is judged once per trial
    #[arg(long, default_value_t = 20)]
    trials: u32,
    /// Route (and request name) that the slowed copies slow down: a typical endpoint
    #[arg(long, default_value = "slots")]
    route: String,
    /// Suite each trial runs
    #[arg(long, default_value = "baseline")]
    suite: String,
    /// Shrink the suite to at most 30 s, as --quick does
    #[arg(long)]
    quick: bool,
    /// Other thresholds to judge the same measurements with (fractions)
    #[arg(long, value_delimiter = ',', default_value = "0.05")]
    thresholds: Vec<f64>,
    /// The plan file [default: perf.toml at the workspace root]
    #[arg(long)]
    plan: Option<PathBuf>,
    /// Where the report and logs go [default: results/experiment]
    #[arg(long)]
    out: Option<PathBuf>,
    /// Where the copies run: local processes or Docker containers
    #[arg(long, default_value = "local", value_parser = perf::cli::backend_among(&[BackendChoice::Local, BackendChoice::Docker]))]
    backend: BackendChoice,
    /// Add --trials trials to the experiment kept in --out (its copies as calibrated then), so
    /// that twenty trials can be taken over several sittings
    #[arg(long, conflicts_with = "rejudge")]
    more: bool,
    /// Judge the trials kept in --out again with today's rule (no load): the same
    /// measurements, e.g. after changing the rule
    #[arg(long)]
    rejudge: bool,
}

pub async fn run(args: ExperimentArgs, cancel: CancellationToken) -> anyhow::Result<ExitCode> {
    let root = crate::workspace_root();
    let out_dir = args.out.clone().unwrap_or_else(|| root.join("results").join("experiment"));
    let mut opts = GateOptions::new(args.plan.clone().unwrap_or_else(|| root.join("perf.toml")), out_dir.clone());
    opts.compile = CompileOptions { suites: vec![args.suite.clone()], quick: args.quick, ..Default::default() };
    opts.backend = args.backend;
    opts.cancel = cancel;
    opts.notes = perf::run::Notes::stderr();
    let prepared = match perf::run::prepare(&opts, None).await {
        Ok(p) => p,
        Err(e) => {
            eprintln!("error: {e}");
            return Ok(ExitCode::from(e.exit_code()));
        }
    };
    let comparison = match args.mode {
        Mode::Ab => Comparison::Ab,
        Mode::Duet => Comparison::Duet,
        Mode::Stored => Comparison::Stored,
    };
    let name = match args.mode {
        Mode::Ab => "ab",
        Mode::Duet => "duet",
        Mode::Stored => "stored",
    };
    // The plan's threshold first, then each other one once (`--thresholds 0.2,0.05` with the
    // plan's 20% judges each trial twice, not three times).
    let mut thresholds = vec![prepared.compiled.compare.threshold];
    for t in &args.thresholds {
        if !thresholds.iter().any(|k| (k - t).abs() < 1e-9) {
            thresholds.push(*t);
        }
    }
    let kept = || -> anyhow::Result<ExperimentReport> {
        let file = out_dir.join("trials").join("report.json");
        let text =
            std::fs::read_to_string(&file).with_context(|| format!("reading {} (no experiment kept in this --out?)", file.display()))?;
        serde_json::from_str(&text).with_context(|| format!("{}", file.display()))
    };
    if args.rejudge {
        let mut report = kept()?;
        report.trials = match perf::run::experiment::rejudge(&out_dir, &report, &prepared.compiled.compare, &thresholds) {
            Ok(t) => t,
            Err(e) => {
                eprintln!("error: {e}");
                return Ok(ExitCode::from(2));
            }
        };
        println!("verdict quality, judged again with today's rule: {name} mode, route {}", report.route);
        if std::env::var_os("PERF_EXPERIMENT_DETAIL").is_some() {
            for t in &report.trials {
                let regressed = if t.regressed.is_empty() { String::new() } else { format!(" (regressed: {})", t.regressed.join(", ")) };
                println!("  trial {} {} at {:.0}%{regressed}: {}", t.trial, t.arm, t.threshold * 100.0, t.reasons.join(" | "));
            }
        }
        print!("{}", table(&report, &thresholds));
        // Beside the measured report, never over it: that one says what the rule of its day said.
        write(&out_dir.join(format!("experiment-{name}-rejudged.json")), &report)?;
        return Ok(if meets_goals(&report, thresholds[0]) { ExitCode::SUCCESS } else { ExitCode::from(1) });
    }
    let more = if args.more { Some(kept()?) } else { None };
    let exp =
        ExperimentOptions { trials: args.trials, route: args.route.clone(), comparison, more_thresholds: thresholds[1..].to_vec(), more };
    let started = std::time::Instant::now();
    let report = match run_experiment(&opts, &prepared, &exp).await {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e}");
            return Ok(ExitCode::from(e.exit_code()));
        }
    };
    println!(
        "verdict quality: {} mode, suite {}{}, route {} (p50 {:.2} ms, p95 {:.2} ms), {} trials, testbed {}, {:.0?} ({:.0} s a trial)",
        name,
        report.suite,
        if args.quick { " --quick" } else { "" },
        report.route,
        report.intrinsic_p50_ms,
        report.intrinsic_p95_ms,
        report.trials.iter().map(|t| t.trial).max().unwrap_or(0),
        prepared.testbed.key,
        started.elapsed(),
        report.trial_seconds
    );
    print!("{}", table(&report, &thresholds));
    write(&out_dir.join(format!("experiment-{name}.json")), &report)?;
    Ok(if meets_goals(&report, thresholds[0]) { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

/// The report as JSON, written atomically, and where it went.
fn write(file: &Path, report: &ExperimentReport) -> anyhow::Result<()> {
    let json = serde_json::to_vec_pretty(report).context("serializing the experiment")?;
    perf::util::write_atomic(file, &json).with_context(|| format!("writing {}", file.display()))?;
    println!("wrote {}", file.display());
    Ok(())
}

/// One row per copy: the realised change of the route, and how often it was called a
/// regression under each threshold.
fn table(r: &ExperimentReport, thresholds: &[f64]) -> String {
    let mut out = String::from("  copy       realised p50   p95  spread ");
    for t in thresholds {
        out.push_str(&format!("| called at {:>3.0}% ", t * 100.0));
    }
    out.push('\n');
    for arm in &r.arms {
        let ratio = |p95| r.median_ratio(&arm.name, p95).map_or("-".to_string(), |x| format!("{:+.1}%", (x - 1.0) * 100.0));
        let spread = r.spread(&arm.name, true, thresholds[0]).map_or("-".to_string(), |s| format!("±{:.0}%", s * 100.0));
        out.push_str(&format!("  {:<10} {:>8} {:>8} {spread:>6} ", arm.name, ratio(false), ratio(true)));
        for t in thresholds {
            let (n, of) = r.called(&arm.name, *t);
            let (twice, _) = r.count(&arm.name, *t, |t| t.passes > 1);
            let twice = if twice > 0 { format!("({twice} twice)") } else { String::new() };
            out.push_str(&format!("| {n:>2}/{of:<2} {twice:<11}"));
        }
        out.push('\n');
    }
    out.push_str("  (realised: the route's median change over the trials; spread: how much its p95 reading varies from\n");
    out.push_str("   trial to trial (standard deviation of the log ratio): a threshold on that reading catches a change 19\n");
    out.push_str("   times in 20 and +10% almost never only when the two stand about 3.6 spreads apart (1.645 + 1.96);\n");
    out.push_str("   same: any endpoint called regressed is a false fail; the others: the slowed route called regressed;\n");
    out.push_str(if r.comparison == Comparison::Stored {
        "   twice: trials whose verdict rested on the confirming re-run a regression against a stored baseline gets)\n"
    } else {
        "   twice: trials whose verdict needed the second pass of pairs `--against` measures when the first leaves a change undecided)\n"
    });
    out
}

/// The goals: the same code fails at most 1 in 20, +10% never, +30% on p50 and on p95 at
/// least 19 in 20, with the plan's threshold.
fn meets_goals(r: &ExperimentReport, threshold: f64) -> bool {
    let rate = |arm: &str| {
        let (n, of) = r.called(arm, threshold);
        if of == 0 { 0.0 } else { n as f64 / of as f64 }
    };
    rate("same") <= 0.05 && rate("p50+10%") == 0.0 && rate("p50+30%") >= 0.95 && rate("p95+30%") >= 0.95
}

//! `cargo xtask experiment`: measures the gate's verdict quality on this machine (see
//! `perf::run::experiment`). Prints per-pair verdicts on stderr, then the three figures:
//! same code passing, a 25% slowdown detected and named, a 10% slowdown never called a
//! regression. Writes `<out>/experiment.json`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;
use perf::env::BackendChoice;
use perf::plan::CompileOptions;
use perf::run::GateOptions;
use perf::run::experiment::{ExperimentOptions, run as run_experiment};
use tokio_util::sync::CancellationToken;

#[derive(Args, Debug)]
pub struct ExperimentArgs {
    /// Number of pairs per condition
    #[arg(long, default_value_t = 20)]
    pairs: u32,
    /// Route (and request name) that the slowed copies delay
    #[arg(long, default_value = "provider")]
    route: String,
    /// Delay added to the route on every copy, ms
    #[arg(long, default_value_t = 40)]
    base_delay_ms: u64,
    /// Suite each run executes
    #[arg(long, default_value = "baseline")]
    suite: String,
    /// Length of each run (warm-up included)
    #[arg(long, default_value = "20s", value_parser = |s: &str| humantime::parse_duration(s).map_err(|e| e.to_string()))]
    duration: std::time::Duration,
    /// The plan file [default: perf.toml at the workspace root]
    #[arg(long)]
    plan: Option<PathBuf>,
    /// Where experiment.json and logs go [default: results/experiment]
    #[arg(long)]
    out: Option<PathBuf>,
    /// Where the three copies run: local processes or Docker containers (the two backends
    /// users run the gate on; their noise differs)
    #[arg(long, default_value = "local", value_parser = perf::cli::backend_among(&[BackendChoice::Local, BackendChoice::Docker]))]
    backend: BackendChoice,
}

pub async fn run(args: ExperimentArgs, cancel: CancellationToken) -> anyhow::Result<ExitCode> {
    let root = crate::workspace_root();
    let out_dir = args.out.clone().unwrap_or_else(|| root.join("results").join("experiment"));
    let mut opts = GateOptions::new(args.plan.clone().unwrap_or_else(|| root.join("perf.toml")), out_dir.clone());
    opts.compile = CompileOptions { suites: vec![args.suite.clone()], duration: Some(args.duration), ..Default::default() };
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
    let exp = ExperimentOptions { pairs: args.pairs, route: args.route.clone(), base_delay_ms: args.base_delay_ms };
    let started = std::time::Instant::now();
    let report = match run_experiment(&opts, &prepared, &exp).await {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e}");
            return Ok(ExitCode::from(e.exit_code()));
        }
    };
    let file = out_dir.join("experiment.json");
    let json = serde_json::to_vec_pretty(&report).context("serializing the experiment")?;
    perf::util::write_atomic(&file, &json).with_context(|| format!("writing {}", file.display()))?;

    let (same, n_same) = report.same_passed();
    let (det, n_det) = report.slow25_detected();
    let (flag10, n10) = report.slow10_flagged();
    let median = |cond: &str| {
        let mut r: Vec<f64> = report.trials.iter().filter(|t| t.condition == cond).filter_map(|t| t.p50_ratio).collect();
        r.sort_by(f64::total_cmp);
        r.get(r.len() / 2).copied().unwrap_or(f64::NAN)
    };
    println!(
        "verdict quality: suite {}, route {}, {} pairs, backend {}, {:.0?}",
        report.suite,
        report.route,
        args.pairs,
        prepared.testbed.key,
        started.elapsed()
    );
    println!("  same code, passed:                 {same}/{n_same}   (goal: at least 19 of 20)");
    println!(
        "  {} +25% (median p50 x{:.3}), failed naming it: {det}/{n_det}   (goal: at least 19 of 20)",
        report.route,
        median("slower-25%")
    );
    println!("  {} +10% (median p50 x{:.3}), called regression: {flag10}/{n10}   (goal: never)", report.route, median("slower-10%"));
    println!("  runs where another endpoint was called regressed: {}", report.other_endpoints_flagged());
    println!(
        "  delays (ms): base {}, +10% {}, +25% {}; {} without delay: {:.2} ms",
        report.delays_ms[0], report.delays_ms[1], report.delays_ms[2], report.route, report.intrinsic_p50_ms
    );
    println!("wrote {}", file.display());
    let ok = same * 20 >= 19 * n_same && det * 20 >= 19 * n_det && flag10 == 0;
    Ok(if ok { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

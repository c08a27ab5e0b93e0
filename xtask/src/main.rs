//! `cargo xtask`: the perf gate's command line. This file only dispatches; each subcommand
//! is a module.

mod bench_engine;
mod bench_proxy;
mod bench_server;
mod comment;
mod experiment;
mod perf;
mod signals;
mod up;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "cargo xtask", about = "CI-native performance gate for web services", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the gate: start the environment, run the suites, compare with the baseline, report
    Perf(Box<perf::PerfArgs>),
    /// Start PostgreSQL, Redis and the app, print their URLs, run until Ctrl-C
    Up(up::UpArgs),
    /// Benchmark the load engine against wrk on a trivial local server.
    BenchEngine(bench_engine::BenchEngineArgs),
    /// Benchmark the fault proxy (no fault, then 1 ms latency) against Redis directly.
    BenchProxy(bench_proxy::BenchProxyArgs),
    /// The trivial server bench-engine drives (internal).
    #[command(hide = true)]
    BenchServer {
        #[arg(long, default_value = "127.0.0.1:0")]
        listen: String,
    },
    /// The engine side of bench-engine (internal).
    #[command(hide = true)]
    BenchClient(bench_engine::BenchClientArgs),
    /// Measure the gate's verdict quality: same code twice, a 10% and a 25% slowdown
    Experiment(experiment::ExperimentArgs),
    /// Post a saved report as the pull request's sticky comment (fork pull requests)
    Comment(comment::CommentArgs),
}

fn main() -> ExitCode {
    // More than one TLS backend sits in the dependency tree; pick one before anything
    // (bollard, octocrab, reqwest) opens a TLS connection.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("PERF_LOG").unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    // Benchmark helpers pick their own runtime: they are measured, and run pinned to a core.
    let cli = match cli.command {
        Command::BenchServer { listen } => return exit(bench_server::run(&listen)),
        Command::BenchClient(args) => return exit(bench_engine::client(args)),
        command => Cli { command },
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(2);
        }
    };
    let result: anyhow::Result<ExitCode> = runtime.block_on(async move {
        let cancel = signals::cancel_on_signals()?;
        match cli.command {
            Command::Perf(args) => perf::run(*args, cancel).await,
            Command::Up(args) => up::run(args, cancel).await,
            Command::Experiment(args) => experiment::run(args, cancel).await,
            Command::BenchEngine(args) => bench_engine::run(args, cancel).await.map(|()| ExitCode::SUCCESS),
            Command::BenchProxy(args) => bench_proxy::run(args, cancel).await.map(|()| ExitCode::SUCCESS),
            Command::BenchServer { .. } | Command::BenchClient(_) => unreachable!("dispatched before the runtime"),
            Command::Comment(args) => comment::run(args).await,
        }
    });
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn exit(result: anyhow::Result<()>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

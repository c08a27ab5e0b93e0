//! `cargo xtask`: this repository's command line. This file only dispatches: the gate's own
//! subcommands (`perf`, `up`, `comment`) are the library's [`perf::cli`], the same that
//! `cargo perf` runs in other repositories; the benchmarks and the verdict-quality experiment
//! are modules here.

mod bench_engine;
mod bench_proxy;
mod bench_server;
mod experiment;

use std::path::{Path, PathBuf};
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
    #[command(flatten)]
    Gate(perf::cli::Command),
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
    /// Measure the gate's verdict quality: the same code twice, and one route 10–30% slower
    Experiment(experiment::ExperimentArgs),
}

fn main() -> ExitCode {
    perf::cli::prepare_process();
    let cli = Cli::parse();
    match cli.command {
        // Benchmark helpers pick their own runtime: they are measured, and run pinned to a core.
        Command::BenchServer { listen } => exit(bench_server::run(&listen)),
        Command::BenchClient(args) => exit(bench_engine::client(args)),
        Command::Gate(command) => perf::cli::block_on(|cancel| perf::cli::run(command, cancel)),
        Command::Experiment(args) => perf::cli::block_on(|cancel| experiment::run(args, cancel)),
        Command::BenchEngine(args) => {
            perf::cli::block_on(|cancel| async move { bench_engine::run(args, cancel).await.map(|()| ExitCode::SUCCESS) })
        }
        Command::BenchProxy(args) => {
            perf::cli::block_on(|cancel| async move { bench_proxy::run(args, cancel).await.map(|()| ExitCode::SUCCESS) })
        }
    }
}

/// This repository's root: the parent of this crate's folder (the dev tools' results go there).
pub fn workspace_root() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().unwrap_or(manifest).to_path_buf()
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

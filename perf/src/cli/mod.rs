//! The command line, as a library: what `cargo perf` (the `cargo-perf` binary) and this
//! repository's `cargo xtask` both run, so that another repository gets the same gate by
//! `cargo install` or by calling [`main`] from its own xtask.
//!
//! One module per subcommand: [`gate`] (`perf`, the gate itself), [`up`] (start the
//! environment and wait), [`comment`] (post a saved report as the sticky comment), [`history`] (nightly records →
//! trends and a static site), [`merge`] (shards' summaries → one per suite). Paths are
//! found from where the command runs, never from where it was compiled: the plan is `--plan`,
//! else `perf.toml` in the current folder or the nearest parent folder that has one, and
//! `results/` sits next to the plan.

mod args;
pub mod comment;
pub mod gate;
pub mod history;
pub mod merge;
pub mod signals;
pub mod up;

use std::ffi::OsString;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use tokio_util::sync::CancellationToken;

pub use args::{backend_among, plan_path, project_root};

/// The user-facing subcommands. `cargo xtask` flattens them next to its own.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the gate: start the environment, run the suites, compare with the baseline, report
    Perf(Box<gate::PerfArgs>),
    /// Start PostgreSQL, Redis and the app, print their URLs, run until Ctrl-C
    Up(up::UpArgs),
    /// Post a saved report as the pull request's sticky comment (fork pull requests)
    Comment(comment::CommentArgs),
    /// Performance over time: per-endpoint trends of the nightly records, and a static site
    History(history::HistoryArgs),
    /// Merge the summaries of a run's shards (--shard K/N) into one summary per suite
    Merge(merge::MergeArgs),
}

/// `cargo perf [FLAGS]` runs the gate; `cargo perf up` and `cargo perf comment` the others.
#[derive(Parser, Debug)]
#[command(
    name = "cargo perf",
    bin_name = "cargo perf",
    about = "CI-native performance gate for web services",
    version,
    args_conflicts_with_subcommands = true
)]
struct CargoPerf {
    #[command(subcommand)]
    command: Option<CargoPerfCommand>,
    #[command(flatten)]
    gate: gate::PerfArgs,
}

#[derive(Subcommand, Debug)]
enum CargoPerfCommand {
    /// Start PostgreSQL, Redis and the app, print their URLs, run until Ctrl-C
    Up(up::UpArgs),
    /// Post a saved report as the pull request's sticky comment (fork pull requests)
    Comment(comment::CommentArgs),
    /// Performance over time: per-endpoint trends of the nightly records, and a static site
    History(history::HistoryArgs),
    /// Merge the summaries of a run's shards (--shard K/N) into one summary per suite
    Merge(merge::MergeArgs),
}

/// The `cargo-perf` binary: `cargo perf …` (cargo passes `perf` as the first argument) or
/// `cargo-perf …`.
pub fn main() -> ExitCode {
    let mut args: Vec<OsString> = std::env::args_os().collect();
    if args.get(1).is_some_and(|a| a == "perf") {
        args.remove(1);
    }
    prepare_process();
    let cli = CargoPerf::parse_from(args);
    let command = match cli.command {
        Some(CargoPerfCommand::Up(a)) => Command::Up(a),
        Some(CargoPerfCommand::Comment(a)) => Command::Comment(a),
        Some(CargoPerfCommand::History(a)) => Command::History(a),
        Some(CargoPerfCommand::Merge(a)) => Command::Merge(a),
        None => Command::Perf(Box::new(cli.gate)),
    };
    block_on(|cancel| run(command, cancel))
}

/// What every entry point does before parsing arguments: empty `PERF_*` variables are unset
/// (a workflow passes `PERF_DURATION: ${{ inputs.duration }}`, empty on a schedule), one TLS
/// provider is chosen, and logs go to stderr under `PERF_LOG`.
pub fn prepare_process() {
    drop_empty_perf_vars();
    // More than one TLS backend sits in the dependency tree; pick one before anything
    // (bollard, octocrab, reqwest) opens a TLS connection.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_env("PERF_LOG").unwrap_or_else(|_| "warn".into()))
        .with_writer(std::io::stderr)
        .try_init();
}

/// Removes every `PERF_*` variable whose value is empty, so that it means "not set".
fn drop_empty_perf_vars() {
    let empty: Vec<OsString> =
        std::env::vars_os().filter(|(k, v)| k.to_string_lossy().starts_with("PERF_") && v.is_empty()).map(|(k, _)| k).collect();
    for key in empty {
        // SAFETY: called at the start of `main`, before any thread (the async runtime is
        // started afterwards), so nothing reads the environment concurrently.
        unsafe { std::env::remove_var(key) };
    }
}

/// Runs one user-facing command.
pub async fn run(command: Command, cancel: CancellationToken) -> anyhow::Result<ExitCode> {
    match command {
        Command::Perf(args) => gate::run(*args, cancel).await,
        Command::Up(args) => up::run(args, cancel).await,
        Command::Comment(args) => comment::run(args).await,
        Command::History(args) => history::run(args).map(|()| ExitCode::SUCCESS),
        Command::Merge(args) => merge::run(args),
    }
}

/// Starts a multi-threaded runtime, a cancellation token for Ctrl-C and SIGTERM, runs `f` and
/// turns an error into exit 2 with its message.
pub fn block_on<F, Fut>(f: F) -> ExitCode
where
    F: FnOnce(CancellationToken) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<ExitCode>>,
{
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(2);
        }
    };
    let result = runtime.block_on(async move {
        let cancel = signals::cancel_on_signals()?;
        f(cancel).await
    });
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cargo_perf_runs_the_gate_by_default_and_knows_its_subcommands() {
        let cli = CargoPerf::try_parse_from(["cargo perf", "--quick", "--suite", "baseline"]).unwrap();
        assert!(cli.command.is_none());
        let cli = CargoPerf::try_parse_from(["cargo perf", "up", "--backend", "local"]).unwrap();
        assert!(matches!(cli.command, Some(CargoPerfCommand::Up(_))));
        assert!(CargoPerf::try_parse_from(["cargo perf", "--quick", "up"]).is_err(), "flags belong to the gate");
    }
}

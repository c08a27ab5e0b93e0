//! `cargo xtask`: the perf gate's command line. This file only dispatches; each subcommand
//! is a module.

mod comment;
mod signals;

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
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(2);
        }
    };
    let result: anyhow::Result<ExitCode> = runtime.block_on(async move {
        let cancel = signals::cancel_on_signals()?;
        let _ = &cancel;
        match cli.command {
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

//! `cargo perf up` / `cargo xtask up`: brings up the plan's environment (PostgreSQL, Redis and the app) and
//! keeps it running until Ctrl-C or SIGTERM, then tears it down.
//!
//! Prints one line per service started, app first, then `ready: press Ctrl-C to stop`:
//! ```text
//! app: http://127.0.0.1:PORT
//! postgres: postgres://USER@127.0.0.1:PORT/DB
//! redis: redis://127.0.0.1:PORT
//! ready: press Ctrl-C to stop
//! ```
//! A database the plan does not ask for (`plan::EnvironmentSetup::starts`) has no line on
//! stdout, so every line there is an address; stderr says it was not started, and why.
//! Progress and errors go to stderr; exit 0 after a clean teardown, 2 when the plan is bad
//! or the environment does not come up. The local backend keeps everything in one temporary
//! directory under `PERF_TMPDIR` (default: the system's); `PERF_LOG=perf=debug` prints its
//! path and every process it starts.

use std::path::PathBuf;
use std::process::ExitCode;

use crate::env::{BackendChoice, BackendKind, Environment, Service, StartOptions};
use anyhow::Context;
use clap::Args;
use tokio_util::sync::CancellationToken;

#[derive(Args, Debug)]
pub struct UpArgs {
    /// Where PostgreSQL, Redis and the app come from: `auto` uses Docker when an engine
    /// answers and local processes otherwise.
    #[arg(long, default_value = "auto", value_parser = super::args::backend_among(&[BackendChoice::Auto, BackendChoice::Local, BackendChoice::Docker]))]
    backend: BackendChoice,
    /// The plan file [default: perf.toml in this folder or the nearest parent that has one]
    #[arg(long, value_name = "PATH")]
    plan: Option<PathBuf>,
}

pub async fn run(args: UpArgs, cancel: CancellationToken) -> anyhow::Result<ExitCode> {
    let path = super::args::plan_path(args.plan.as_deref())?;
    let mut setup = crate::plan::load(&path)?.setup()?;
    let backend = args.backend.resolve().await;
    if backend == BackendKind::Docker {
        crate::env::docker::apply_image_overrides(&mut setup, |k| std::env::var(k).ok());
    }
    let plan_dir = crate::run::plan_dir(&path)?;
    let opts = StartOptions {
        logs_dir: plan_dir.join("results").join("logs"),
        plan_dir,
        app_url: None,
        cancel: cancel.clone(),
        fault_proxies: false,
        build_env: Vec::new(),
        notes: crate::util::Notes::stderr(),
    };
    eprintln!("starting the environment of {} (backend: {backend})", path.display());
    let build = setup.app.local.as_ref().map(|l| l.build.clone()).unwrap_or_default();
    if backend == BackendKind::Local && !build.is_empty() {
        eprintln!("the local backend first builds the app with `{}` (minutes on a fresh clone)", build.join(" "));
    }
    let env = Environment::start(backend, &setup, &opts).await.context("the environment did not come up")?;
    for s in [Service::Postgres, Service::Redis].into_iter().filter(|s| !setup.environment.starts(*s)) {
        eprintln!("{}", crate::plan::not_started(s));
    }
    for s in env.services() {
        println!("{}: {}", s.service.as_str(), s.url);
    }
    println!("ready: press Ctrl-C to stop");
    use std::io::Write;
    std::io::stdout().flush().context("writing to stdout")?;

    cancel.cancelled().await;
    eprintln!("stopping the {} environment", env.kind());
    env.shutdown().await.context("stopping the environment")?;
    eprintln!("stopped");
    Ok(ExitCode::SUCCESS)
}

//! The one owner of environments' lifetime. The gate (one environment, or two when chaos
//! suites need the fault proxies), A/B mode (base and head side by side) and the experiment
//! (three copies of the app) all start what they measure through [`with_environments`]: it
//! starts them in order, hands them to the work, and stops every one it started — after the
//! work, after its error, after Ctrl-C, and when a later one fails to start.
//!
//! A start that fails because the run was cancelled is [`GateError::Interrupted`]; any other
//! is [`GateError::Environment`] naming which environment did not come up. When both the work
//! and a stop fail, the work's error decides the outcome and the stop's is said as a warning.

use crate::env::{BackendKind, Environment, StartOptions};
use crate::plan::Setup;

use tokio_util::sync::CancellationToken;

use crate::util::Notes;

use super::options::GateError;

/// One environment to start.
pub struct Spec {
    /// How errors and warnings name it: `"base"`, `"the app slowed by 10 ms"`; empty for the
    /// gate's single environment.
    pub name: String,
    pub backend: BackendKind,
    pub setup: Setup,
    pub start: StartOptions,
}

/// Starts `specs` in order, runs `work` on them (same order) and stops all of them, whatever
/// happened.
pub async fn with_environments<T>(
    notes: &Notes,
    cancel: &CancellationToken,
    specs: Vec<Spec>,
    work: impl AsyncFnOnce(&mut [Environment]) -> Result<T, GateError>,
) -> Result<T, GateError> {
    let mut envs = Vec::with_capacity(specs.len());
    let mut names = Vec::with_capacity(specs.len());
    for spec in specs {
        match Environment::start(spec.backend, &spec.setup, &spec.start).await {
            Ok(env) => {
                envs.push(env);
                names.push(spec.name);
            }
            Err(e) => {
                let err = if cancel.is_cancelled() {
                    GateError::Interrupted
                } else {
                    GateError::Environment(format!("{} did not come up: {e}", the_environment(&spec.name)))
                };
                stop_all(notes, envs, &names, true).await;
                return Err(err);
            }
        }
    }
    let result = work(envs.as_mut_slice()).await;
    stop_all(notes, envs, &names, result.is_err()).await;
    result
}

/// [`with_environments`] for one environment.
pub async fn with_environment<T>(
    notes: &Notes,
    cancel: &CancellationToken,
    spec: Spec,
    work: impl AsyncFnOnce(&mut Environment) -> Result<T, GateError>,
) -> Result<T, GateError> {
    with_environments(notes, cancel, vec![spec], async |envs: &mut [Environment]| work(&mut envs[0]).await).await
}

/// Stops in reverse order of starting; a failure to stop is a warning, never the outcome.
async fn stop_all(notes: &Notes, envs: Vec<Environment>, names: &[String], after_failure: bool) {
    for (env, name) in envs.into_iter().zip(names).rev() {
        if let Err(e) = env.shutdown().await {
            let when = if after_failure { " after the failure" } else { "" };
            notes.say(format!("warning: stopping {}{when}: {e}", the_environment(name)));
        }
    }
}

fn the_environment(name: &str) -> String {
    if name.is_empty() { "the environment".to_string() } else { format!("the {name} environment") }
}

//! The environment layer's error, and how a failed start points at the services' logs.

use std::path::{Path, PathBuf};
use std::time::Duration;

/// Errors of the environment layer. Messages name the service and include the tail of its
/// log where there is one.
#[derive(Debug, thiserror::Error)]
pub enum EnvError {
    /// A program the backend needs is not installed.
    #[error("{program} not found: {hint}")]
    MissingProgram { program: String, hint: String },
    /// A service did not become ready in time.
    #[error("{service} did not become ready within {timeout:?}: {detail}{tail}", tail = tail_block(.log_tail))]
    NotReady { service: &'static str, timeout: Duration, detail: String, log_tail: String },
    /// A service exited on its own.
    #[error("{service} exited unexpectedly ({status}){tail}", tail = tail_block(.log_tail))]
    Exited { service: &'static str, status: String, log_tail: String },
    #[error("building the app failed: {0}")]
    Build(String),
    #[error("docker: {0}")]
    Docker(String),
    #[error("interrupted")]
    Interrupted,
    #[error("{context}: {source}")]
    Io { context: String, source: std::io::Error },
    #[error("{0}")]
    Other(String),
}

/// The end of a service's log under the message, without terminal escape sequences (a
/// container's log tail comes raw from the engine).
fn tail_block(tail: &str) -> String {
    let tail = crate::util::strip_ansi(tail);
    if tail.trim().is_empty() { String::new() } else { format!("\n--- last lines of its log ---\n{}", tail.trim_end()) }
}

/// Copies the existing files among `logs` into `logs_dir` and appends where they went to
/// the error's message. An error while copying is mentioned instead.
pub(crate) fn copy_logs_noting(err: EnvError, logs: &[PathBuf], logs_dir: &Path) -> EnvError {
    let existing: Vec<&PathBuf> = logs.iter().filter(|p| p.is_file()).collect();
    if existing.is_empty() || matches!(err, EnvError::Interrupted) {
        return err;
    }
    let copied = std::fs::create_dir_all(logs_dir).and_then(|()| {
        for p in &existing {
            let name = p.file_name().unwrap_or_default();
            std::fs::copy(p, logs_dir.join(name))?;
        }
        Ok(())
    });
    let already = format!("logs copied to {}", logs_dir.display());
    if err.to_string().contains(&already) {
        return err; // a service's start already copied its logs and said so
    }
    let note = match copied {
        Ok(()) => format!("logs copied to {}", logs_dir.display()),
        Err(e) => format!("copying the logs to {} failed: {e}", logs_dir.display()),
    };
    match err {
        EnvError::NotReady { service, timeout, detail, log_tail } => {
            EnvError::NotReady { service, timeout, detail: format!("{detail} ({note})"), log_tail }
        }
        EnvError::Exited { service, status, log_tail } => EnvError::Exited { service, status: format!("{status}; {note}"), log_tail },
        EnvError::Build(msg) => EnvError::Build(format!("{msg}\n({note})")),
        EnvError::Other(msg) => EnvError::Other(format!("{msg} ({note})")),
        EnvError::MissingProgram { program, hint } => EnvError::MissingProgram { program, hint: format!("{hint} ({note})") },
        EnvError::Io { context, source } => EnvError::Io { context: format!("{context} ({note})"), source },
        other => other,
    }
}

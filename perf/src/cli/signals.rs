//! Ctrl-C and SIGTERM: the first one cancels the run, which then stops everything it
//! started and exits; later ones only say that clean-up is under way.

use tokio::signal::unix::{SignalKind, signal};
use tokio_util::sync::CancellationToken;

/// A token cancelled on the first SIGINT or SIGTERM.
pub fn cancel_on_signals() -> anyhow::Result<CancellationToken> {
    let token = CancellationToken::new();
    let mut int = signal(SignalKind::interrupt())?;
    let mut term = signal(SignalKind::terminate())?;
    let t = token.clone();
    tokio::spawn(async move {
        loop {
            let name = tokio::select! {
                _ = int.recv() => "interrupt",
                _ = term.recv() => "terminate signal",
            };
            if t.is_cancelled() {
                eprintln!("{name} received again: still stopping what was started, please wait");
            } else {
                eprintln!("{name} received: stopping everything that was started");
                t.cancel();
            }
        }
    });
    Ok(token)
}

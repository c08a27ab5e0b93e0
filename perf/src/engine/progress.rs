//! What a person watching a run sees: an indicatif bar on a terminal, a plain line every few
//! seconds otherwise (CI logs), nothing in tests. Fed once per second by the run's ticker.

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

/// How a run shows its progress.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ProgressMode {
    /// A bar when stderr is a terminal, plain lines otherwise.
    #[default]
    Auto,
    Bar,
    /// One line every [`PLAIN_EVERY`] on stderr.
    Plain,
    Off,
}

/// Interval of plain progress lines.
pub const PLAIN_EVERY: Duration = Duration::from_secs(5);

/// One second's view of the run.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Tick {
    pub warmup: bool,
    pub elapsed: Duration,
    pub rps: f64,
    pub errors: u64,
    pub active: u32,
}

pub(crate) enum Progress {
    Bar(ProgressBar),
    Plain { suite: String, total: Duration, last: Option<Duration> },
    Off,
}

impl Progress {
    pub fn new(mode: ProgressMode, suite: &str, total: Duration) -> Progress {
        let mode = match mode {
            ProgressMode::Auto if std::io::stderr().is_terminal() => ProgressMode::Bar,
            ProgressMode::Auto => ProgressMode::Plain,
            m => m,
        };
        match mode {
            ProgressMode::Bar => {
                let bar = ProgressBar::new(total.as_millis() as u64);
                let style =
                    ProgressStyle::with_template("{prefix:.bold} {wide_bar} {msg}").unwrap_or_else(|_| ProgressStyle::default_bar());
                bar.set_style(style);
                bar.set_prefix(suite.to_string());
                Progress::Bar(bar)
            }
            ProgressMode::Plain => Progress::Plain { suite: suite.to_string(), total, last: None },
            _ => Progress::Off,
        }
    }

    pub fn tick(&mut self, t: Tick) {
        match self {
            Progress::Bar(bar) => {
                bar.set_position(t.elapsed.as_millis() as u64);
                let total = Duration::from_millis(bar.length().unwrap_or(0));
                bar.set_message(line(&t, total));
            }
            Progress::Plain { suite, total, last } => {
                if plain_due(*last, t.elapsed) {
                    *last = Some(t.elapsed);
                    eprintln!("[{suite}] {}", line(&t, *total));
                }
            }
            Progress::Off => {}
        }
    }

    pub fn finish(&mut self, note: &str) {
        match self {
            Progress::Bar(bar) => bar.finish_with_message(note.to_string()),
            Progress::Plain { suite, .. } => eprintln!("[{suite}] {note}"),
            Progress::Off => {}
        }
    }
}

/// Whether a plain line is due: the first tick, then every [`PLAIN_EVERY`].
fn plain_due(last: Option<Duration>, elapsed: Duration) -> bool {
    last.is_none_or(|l| elapsed >= l + PLAIN_EVERY)
}

fn line(t: &Tick, total: Duration) -> String {
    format!(
        "{} {:>4}s/{}s  {:.0} req/s  {} errors  {} users",
        if t.warmup { "warm-up" } else { "measure" },
        t.elapsed.as_secs(),
        total.as_secs(),
        t.rps,
        t.errors,
        t.active
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_lines_say_phase_progress_rate_errors_and_users() {
        let t = Tick { warmup: true, elapsed: Duration::from_millis(3500), rps: 123.4, errors: 2, active: 7 };
        assert_eq!(line(&t, Duration::from_secs(60)), "warm-up    3s/60s  123 req/s  2 errors  7 users");
        let t = Tick { warmup: false, ..t };
        assert!(line(&t, Duration::from_secs(60)).starts_with("measure "));
    }

    #[test]
    fn plain_lines_come_every_five_seconds() {
        let s = Duration::from_secs;
        assert!(plain_due(None, s(1)));
        assert!(!plain_due(Some(s(1)), s(5)));
        assert!(plain_due(Some(s(1)), s(6)));
    }
}

//! The judged run: what a gate run decided, as plain data, before anyone renders it.
//!
//! The orchestration (`run`) builds one [`Report`] per invocation: per suite the current
//! summary, the comparison (if any), where the baseline came from and whether a re-run
//! confirmed a regression; plus run-level facts. [`Headline`] derives the verdict once and
//! [`Outcome::exit_code`] maps it to the process exit code, so that the terminal, Markdown,
//! HTML, JUnit renderers and the exit status all agree.
//!
//! Pure, and below every presentation: `render` and `export` read it, `run` writes it, and
//! nothing here knows how it will be shown.

mod headline;
mod report;

pub use headline::{Headline, MovedTogether, NotCompared, Outcome, Regression, exit_code};
pub use report::{BaselineSource, Confirmation, Report, RunFacts, StoredOpinion, SuiteReport};

//! Reports for people: terminal table, Markdown (report.md, the PR comment), HTML with charts.
//! Pure: each renderer takes a [`Report`](crate::verdict::Report) and returns a `String`;
//! writing files and printing belong to the orchestration. What the run decided (the report's
//! model and its [`Headline`](crate::verdict::Headline)) is `crate::verdict`'s: every renderer
//! shows the same verdict.

pub(crate) mod charts;
pub(crate) mod format;
pub(crate) mod html;
mod markdown;
mod profile;
mod sections;
pub(crate) mod table;
mod terminal;
mod underneath;

#[cfg(test)]
mod tests;

pub use html::html;
pub use markdown::{MarkdownOptions, markdown};
pub use profile::{flame_graph_file, flame_graphs};
pub use terminal::{TerminalOptions, terminal};

//! History: performance over time, night after night.
//!
//! A nightly run's summaries live in a CI artifact for a few weeks and are gone. The history
//! keeps a compact [`NightRecord`] of each night (per suite and endpoint: the figures and the
//! HDR histogram, keyed by commit, date and testbed) in a folder, one JSON file per night, so
//! that it can live on a branch or in a Pages artifact; finds where each endpoint changed with
//! the gate's own rule ([`trends`]); and shows it in the terminal ([`terminal`]) and as a
//! static site ([`site`]).
//!
//! - [`record`](NightRecord): the record and its size;
//! - `store`: the only I/O: [`load`], [`append`], [`write_site`];
//! - `trend`: series and change points ([`trends`]: the method and why it does not cry wolf);
//! - `site`: the static site (index and one page per endpoint, charts in the report's style);
//! - `terminal`: the trends as a table.

mod record;
mod site;
mod store;
mod terminal;
mod trend;

#[cfg(test)]
mod tests;

pub use record::{EndpointRecord, NightRecord, RECORD_VERSION, RecordError, SuiteRecord};
pub use site::{Page, SiteOptions, page_path, site};
pub use store::{Appended, HistoryError, append, load, parse, read_summaries, write_site};
pub use terminal::terminal;
pub use trend::{CONFIRM_NIGHTS, ChangePoint, Direction, MetricMove, NightPoint, Pending, REFERENCE_NIGHTS, Trend, trends};

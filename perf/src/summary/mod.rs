//! Summaries: the versioned JSON each suite run writes.

pub mod model;

pub use model::*;

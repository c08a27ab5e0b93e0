//! The load engine: executors, HTTP, statistics, progress.

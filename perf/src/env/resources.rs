//! Resource sampling: CPU seconds and memory of processes (from /proc) and containers.

//! xtask's integration tests, as one test binary (a file per binary would link the whole gate
//! six times on a fresh CI machine). A module per subject; `workflow_support` is the harness
//! that runs the workflows' steps against a fake GitHub. The runs that send measured load
//! (`perf_local`, `perf_docker`, `perf_chaos`) are one test group in `.config/nextest.toml`;
//! select one by module: `cargo nextest run -p xtask -E 'test(/^perf_local::/)'`.

mod workflow_support;

mod docker_up;
mod perf_chaos;
mod perf_docker;
mod perf_local;
mod perf_shards;
mod up_local;
mod workflows;

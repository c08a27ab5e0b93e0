//! perf's integration tests, as one test binary: each file under `tests/` would be a crate of
//! its own, linking its own copy of the library and every dependency (18 links of the same
//! code on a fresh CI machine). A module per former file; the shared helpers are the
//! `*_support` modules. Filter as before by module: `cargo nextest run -p perf -E
//! 'test(/^engine_open::/)'`.

mod docker_support;
mod engine_support;
mod github_support;
mod local_support;

mod adoption;
mod browser;
mod committed_baselines;
mod docker_env;
mod docker_interrupt;
mod engine_closed;
mod engine_open;
mod engine_protocols;
mod engine_shard;
mod engine_workflow;
mod engine_ws;
mod gate_merged;
mod github_artifact;
mod github_comment;
mod github_event;
mod github_publish;
mod github_token;
mod layering;
mod local_bare;
mod local_env;
mod local_failures;
mod local_procs;
mod local_profile;
mod local_services;
mod schema_summary;

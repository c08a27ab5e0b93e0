//! `cargo perf`: the perf gate for the repository it is run in (`cargo install` puts it on
//! `PATH`; cargo runs it for `cargo perf`). Everything is in [`perf::cli`].

fn main() -> std::process::ExitCode {
    perf::cli::main()
}

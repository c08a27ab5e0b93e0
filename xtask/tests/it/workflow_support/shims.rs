//! Stand-ins for the runner's tools, first on every `run:` step's `PATH`.
//!
//! | tool | what the shim does |
//! | --- | --- |
//! | `cargo xtask ARGS` | runs the built gate (`CARGO_BIN_EXE_xtask`, or another given one) with ARGS, from a checked-out workspace; the job's `PERF_CHECK=1` makes it validate and stop; then, when the scenario gave stand-in summaries ([`Harness::set_gate_results`](super::runner::Harness::set_gate_results)), copies them into the gate's `--out`, where a measured run would have written its own |
//! | `cargo metadata …` | the real cargo, with `CARGO_TARGET_DIR` at the folder the binaries were built in (the cargo cache's `target` would be there on GitHub) |
//! | `cargo build …` | nothing: the binaries are built |
//! | `cargo install …` | puts the built `cargo-perf` in `--root DIR/bin`, else `$CARGO_HOME/bin`; `--path P` must be a crate in the working directory |
//! | `cargo NAME …` | `cargo-NAME` from `PATH`, as cargo runs external subcommands |
//! | `sudo apt-get …` | nothing (the machine running the test has the packages); other `sudo CMD` runs CMD |
//! | `rustup …` | nothing |
//! | `gh auth setup-git` | nothing: the checked-out repository's `origin` is a local one |
//! | `gh …` (anything else) | fails: the harness has no fake for the GitHub CLI |
//!
//! Every call is appended to a log (arguments and the `PERF_*` variables it saw, NUL-separated
//! so any text survives) that the scenarios assert on.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

/// The programs the shims hand over to.
#[derive(Debug, Clone)]
pub struct Tools {
    /// `cargo xtask` runs this.
    pub gate: PathBuf,
    /// What `cargo install` installs.
    pub cargo_perf: PathBuf,
    /// The real cargo, for `cargo metadata`.
    pub cargo: PathBuf,
    /// Where the binaries were built (`target/`).
    pub target_dir: PathBuf,
}

/// One call of a shim.
#[derive(Debug, Clone)]
pub struct ShimCall {
    pub tool: String,
    pub args: Vec<String>,
    /// The `PERF_*` variables set for the call (empty ones included).
    pub env: BTreeMap<String, String>,
}

impl ShimCall {
    /// `cargo xtask perf …` or `cargo perf …`: a gate run.
    pub fn is_gate(&self) -> bool {
        let args: Vec<&str> = self.args.iter().map(String::as_str).collect();
        self.tool == "cargo" && matches!(args.as_slice(), ["xtask", "perf", ..] | ["perf", ..])
    }

    /// The gate only checked (`PERF_CHECK` set to a true value, or `--check`).
    pub fn checked_only(&self) -> bool {
        let env = self.env.get("PERF_CHECK").map(|v| v.to_ascii_lowercase());
        matches!(env.as_deref(), Some("1" | "true" | "yes" | "on")) || self.args.iter().any(|a| a == "--check")
    }

    pub fn has_arg(&self, arg: &str) -> bool {
        self.args.iter().any(|a| a == arg)
    }

    /// The value after `flag`.
    pub fn arg_after(&self, flag: &str) -> Option<&str> {
        self.args.iter().position(|a| a == flag).and_then(|i| self.args.get(i + 1)).map(String::as_str)
    }
}

/// Functions every shim starts with: `record TOOL ARGS…` appends one call to the log.
const PRELUDE: &str = r#"#!/usr/bin/env bash
set -euo pipefail
record() {
    local tool="$1"; shift
    {
        printf '%s\0' CALL "$tool" "$#"
        if [ "$#" -gt 0 ]; then printf '%s\0' "$@"; fi
        env -0 | grep -z '^PERF_' || true
        printf '%s\0' END
    } >> @LOG@
}
"#;

const CARGO: &str = r#"
sub="${1:-}"
case "$sub" in
    xtask)
        record cargo "$@"
        # `cargo xtask` is an alias of the workspace: it needs the checkout.
        dir="$PWD"
        while [ ! -f "$dir/Cargo.toml" ]; do
            if [ "$dir" = / ]; then echo "error: could not find \`Cargo.toml\` in \`$PWD\` or any parent directory" >&2; exit 101; fi
            dir="$(dirname "$dir")"
        done
        shift
        status=0
        @GATE@ "$@" || status=$?
        # The gate only checked, so it wrote no summaries: the scenario's stand-ins, if it
        # gave some, take the place of what a measured run would have left in `--out`.
        if [ "$status" -eq 0 ] && [ "${1:-}" = perf ] && [ -n "$(ls -A @RESULTS@ 2>/dev/null)" ]; then
            out="" prev=""
            for arg in "$@"; do
                if [ "$prev" = --out ]; then out="$arg"; fi
                prev="$arg"
            done
            if [ -n "$out" ]; then
                mkdir -p "$out"
                cp @RESULTS@/* "$out/"
                echo "harness: the gate only checked; the scenario's stand-in summaries are in $out: $(ls @RESULTS@ | paste -sd ' ')" >&2
            fi
        fi
        exit "$status" ;;
    metadata)
        record cargo "$@"
        CARGO_TARGET_DIR=@TARGET@ exec @CARGO@ "$@" ;;
    build)
        record cargo "$@"
        echo "harness: skipped \`cargo $*\`: the binaries are built" >&2 ;;
    install)
        record cargo "$@"
        shift
        root="${CARGO_HOME:?CARGO_HOME is not set}"
        while [ "$#" -gt 0 ]; do
            case "$1" in
                --root) root="$2"; shift 2 ;;
                --path)
                    if [ ! -f "$2/Cargo.toml" ]; then echo "error: \`$2/Cargo.toml\` does not exist (in $PWD)" >&2; exit 101; fi
                    shift 2 ;;
                *) shift ;;
            esac
        done
        mkdir -p "$root/bin"
        cp @CARGO_PERF@ "$root/bin/cargo-perf"
        echo "  Installed package \`perf\` (executable \`cargo-perf\`) into $root/bin (harness: the built one)" >&2 ;;
    *)
        if [ -n "$sub" ] && external="$(command -v "cargo-$sub")"; then
            record cargo "$@"
            exec "$external" "$@"
        fi
        echo "harness: \`cargo $*\` is not something the harness can run" >&2
        exit 101 ;;
esac
"#;

const SUDO: &str = r#"
case "${1:-}" in
    apt-get) record sudo "$@"; echo "harness: skipped \`sudo $*\`" >&2 ;;
    ""|-*) echo "harness: \`sudo $*\` is not supported" >&2; exit 1 ;;
    *) record sudo "$@"; exec "$@" ;;
esac
"#;

const RUSTUP: &str = r#"
record rustup "$@"
echo "harness: skipped \`rustup $*\`" >&2
"#;

const GH: &str = r#"
record gh "$@"
if [ "$*" = "auth setup-git" ]; then
    echo "harness: skipped \`gh auth setup-git\`: the harness's origin is a local repository, no credentials needed" >&2
    exit 0
fi
echo "harness: the GitHub CLI is not faked: \`gh $*\`" >&2
exit 1
"#;

/// Writes the shims into `dir`; calls go to `log`. The files in `stand_in_results`, when
/// there are any, are what a check-only `cargo xtask perf … --out DIR` leaves in DIR.
pub fn install(dir: &Path, log: &Path, tools: &Tools, stand_in_results: &Path) -> Result<()> {
    std::fs::create_dir_all(dir)?;
    std::fs::write(log, "")?;
    let fill = |body: &str| {
        (PRELUDE.to_string() + body)
            .replace("@LOG@", &quote(log))
            .replace("@GATE@", &quote(&tools.gate))
            .replace("@CARGO_PERF@", &quote(&tools.cargo_perf))
            .replace("@CARGO@", &quote(&tools.cargo))
            .replace("@TARGET@", &quote(&tools.target_dir))
            .replace("@RESULTS@", &quote(stand_in_results))
    };
    for (name, body) in [("cargo", CARGO), ("sudo", SUDO), ("rustup", RUSTUP), ("gh", GH)] {
        let path = dir.join(name);
        std::fs::write(&path, fill(body))?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))?;
    }
    Ok(())
}

/// A path as a single-quoted shell word.
fn quote(path: &Path) -> String {
    format!("'{}'", path.display().to_string().replace('\'', r"'\''"))
}

/// Reads the calls recorded in `log`.
pub fn read_log(log: &Path) -> Result<Vec<ShimCall>> {
    let bytes = std::fs::read(log).with_context(|| format!("reading {}", log.display()))?;
    let mut fields = bytes.split(|b| *b == 0).map(|f| String::from_utf8_lossy(f).into_owned());
    let mut calls = Vec::new();
    while let Some(marker) = fields.next() {
        if marker.is_empty() {
            break; // after the last NUL
        }
        if marker != "CALL" {
            bail!("shim log {}: expected CALL, found {marker:?}", log.display());
        }
        let tool = fields.next().unwrap_or_default();
        let count: usize = fields.next().unwrap_or_default().parse().context("shim log: argument count")?;
        let args: Vec<String> = fields.by_ref().take(count).collect();
        let mut env = BTreeMap::new();
        for field in fields.by_ref() {
            if field == "END" {
                break;
            }
            let (k, v) = field.split_once('=').unwrap_or((&field, ""));
            env.insert(k.to_string(), v.to_string());
        }
        calls.push(ShimCall { tool, args, env });
    }
    Ok(calls)
}

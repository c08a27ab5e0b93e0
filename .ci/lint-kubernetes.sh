#!/usr/bin/env bash
# Validates the Kubernetes manifests in deploy/kubernetes with kubernetes-validate: every object
# against the JSON schemas of Kubernetes 1.30, strictly (an unknown or misspelled field, such as
# `completionMod`, is an error, not ignored). Fails on any finding.
#
# kubernetes-validate comes from PyPI into a virtualenv under .work/ (git-ignored) and bundles
# the schemas, so it validates offline: the only thing needed is python3 and pip's index.
#
#   .ci/lint-kubernetes.sh          # this repository's deploy/kubernetes
#   .ci/lint-kubernetes.sh DIR      # the manifests in DIR
#
# kustomization.yaml is kustomize's, not a Kubernetes object: it is skipped.
set -euo pipefail

KUBERNETES_VALIDATE_VERSION=1.37.0
KUBERNETES_VERSION=1.30.0

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dir="$(cd "${1:-$root/deploy/kubernetes}" && pwd)"
cd "$root"
venv="$root/.work/lint-k8s-venv"

if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
fi

if [ "$("$venv/bin/kubernetes-validate" --version 2>/dev/null || true)" != "$KUBERNETES_VALIDATE_VERSION" ]; then
    echo "lint-kubernetes: installing kubernetes-validate $KUBERNETES_VALIDATE_VERSION"
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --only-binary :all: \
        "kubernetes-validate==$KUBERNETES_VALIDATE_VERSION"
fi

shopt -s nullglob
manifests=()
for file in "$dir"/*.yaml "$dir"/*.yml; do
    case "$(basename "$file")" in
        kustomization.yaml | kustomization.yml) ;;
        *) manifests+=("$file") ;;
    esac
done
if [ "${#manifests[@]}" -eq 0 ]; then
    echo "lint-kubernetes: no manifests in $dir" >&2
    exit 1
fi

echo "lint-kubernetes: kubernetes-validate $KUBERNETES_VALIDATE_VERSION, Kubernetes $KUBERNETES_VERSION (strict), ${#manifests[@]} files"
# Warnings (such as a kind the bundled schemas do not know) are findings too: they are printed,
# and they fail the lint.
status=0
output="$("$venv/bin/kubernetes-validate" --strict --kubernetes-version "$KUBERNETES_VERSION" "${manifests[@]}" 2>&1)" || status=1
printf '%s\n' "$output"
if grep -qiE '^(WARN|ERROR)' <<<"$output"; then
    status=1
fi

if [ "$status" -ne 0 ]; then
    echo "lint-kubernetes: findings above" >&2
else
    echo "lint-kubernetes: clean"
fi
exit "$status"

#!/usr/bin/env bash
# The execution environment's build context in OUT (default dist/ee): the collection built from this checkout
# (OUT/dist/weddingflo-wfops.tar.gz, the name execution-environment.yml installs), then `ansible-builder create`
# into OUT/context. Building the image from it needs podman or docker (make ee).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
out="$(mkdir -p "${1:-$root/dist/ee}" && cd "${1:-$root/dist/ee}" && pwd)"
bin="${WFOPS_BIN:-$root/.venv/bin}"
rm -rf "$out/dist" "$out/context"
mkdir -p "$out/dist"
cp "$root/execution-environment.yml" "$out/execution-environment.yml"
"$bin/ansible-galaxy" collection build --output-path "$out/dist" "$root" >/dev/null
mv "$out"/dist/weddingflo-wfops-*.tar.gz "$out/dist/weddingflo-wfops.tar.gz"
"$bin/ansible-builder" create -f "$out/execution-environment.yml" -c "$out/context" --output-filename Containerfile

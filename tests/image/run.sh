#!/usr/bin/env bash
# The image tests `make test` runs (the registry + chart part runs in the e2e suite, which has
# an API server: tests/image/registry.sh):
#
#   1. `make image` twice: the same digest and the same archive bytes;
#   2. the archive against the Containerfile and the chart (tests/image/metadata_check.py);
#   3. the image in runc, in the box the chart describes (tests/image/runc_box.py).
#
# Installs runc from Debian when missing (needs root, as runc does).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"

if ! command -v runc >/dev/null 2>&1; then
  if [[ "$(id -u)" == 0 ]] && command -v apt-get >/dev/null 2>&1; then
    echo "installing runc (Debian package)..."
    apt-get install -y -qq runc >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq runc >/dev/null; }
  else
    echo "tests/image/run.sh: runc is needed (Debian: apt-get install runc), and root to run it" >&2
    exit 2
  fi
fi

TOOLS_DIR="$(bash "$ROOT/tools/build.sh" | tail -n 1)"
BIN_DIR="$(bash "$ROOT/tests/controlplane/build.sh" --print-bin-dir)"

echo "== make image, twice"
out="$(bash "$ROOT/image/build.sh")"
printf '%s\n' "$out"
first="$(tail -n 1 <<<"$out")"
sum1="$(sha256sum "$first" | cut -d' ' -f1)"
digest1="$(cat "${first%.oci.tar}.digest")"
second="$(bash "$ROOT/image/build.sh" | tail -n 1)"
sum2="$(sha256sum "$second" | cut -d' ' -f1)"
digest2="$(cat "${second%.oci.tar}.digest")"
if [[ "$first" == "$second" && "$digest1" == "$digest2" && "$sum1" == "$sum2" ]]; then
  echo "ok   deterministic: image $digest1, archive sha256:$sum1, both builds"
else
  echo "FAIL two builds differ: $digest1 / $digest2, archive $sum1 / $sum2" >&2
  exit 1
fi

echo "== the archive, the Containerfile and the chart"
python3 "$HERE/metadata_check.py" "$first"

echo "== runc"
python3 "$HERE/runc_box.py" "$first" --helm "$BIN_DIR/helm" --seccomp-tool "$TOOLS_DIR/runtime-default-seccomp"

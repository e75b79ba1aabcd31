#!/usr/bin/env bash
# Builds promtool (Prometheus' rule checker) from the Go module proxy at the version go.mod
# beside this script pins, once, outside git:
#   ${OPENCLAW_CACHE:-$HOME/.cache/openclaw-admission}/bin/promtool-<v>/promtool
# and prints that path last. Concurrent runs wait on one lock.
#
# Usage: tests/promtool/build.sh [--print-path]   (--print-path: the path only, builds nothing)
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
VERSION="$(awk '$1 == "github.com/prometheus/prometheus" && $2 ~ /^v/ { print $2; exit }' "$HERE/go.mod")"
[[ -n "$VERSION" ]] || { echo "build.sh: cannot read the prometheus version from $HERE/go.mod" >&2; exit 1; }
CACHE="${OPENCLAW_CACHE:-$HOME/.cache/openclaw-admission}"
DIR="$CACHE/bin/promtool-$VERSION"
BIN="$DIR/promtool"

case "${1:-}" in
  --print-path) echo "$BIN"; exit 0 ;;
  "") ;;
  *) echo "usage: $0 [--print-path]" >&2; exit 64 ;;
esac

if [[ ! -x "$BIN" ]]; then
  command -v go >/dev/null 2>&1 || { echo "build.sh: Go is needed to build promtool (tests/promtool)" >&2; exit 2; }
  mkdir -p "$CACHE/bin"
  exec 9>"$CACHE/bin/.promtool.lock"
  flock 9
  if [[ ! -x "$BIN" ]]; then
    start=$(date +%s)
    echo "build.sh: building promtool $VERSION from the Go module proxy (first run only)" >&2
    mkdir -p "$DIR"
    # remove_all_sd: Prometheus' own build tag leaving out every service-discovery plugin
    # (cloud SDKs, client-go); rule checks and rule unit tests need none of them, and the
    # build is several times smaller.
    (cd "$HERE" && CGO_ENABLED=0 go build -mod=mod -trimpath -tags remove_all_sd -ldflags "-s -w" \
      -o "$BIN.tmp" github.com/prometheus/prometheus/cmd/promtool)
    mv "$BIN.tmp" "$BIN"
    echo "build.sh: promtool built in $(( $(date +%s) - start ))s" >&2
  fi
fi
echo "$BIN"

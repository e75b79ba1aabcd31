#!/usr/bin/env bash
# Builds agent-sandbox's own controller (sigs.k8s.io/agent-sandbox/cmd/agent-sandbox-controller)
# from the Go module proxy, at the version pinned in controller/go.mod beside this script (the
# version tests/agent-sandbox/fetch.sh takes the CRDs from; checked below), once, outside git:
#   ${OPENCLAW_CACHE:-$HOME/.cache/openclaw-admission}/bin/agent-sandbox-<v>/agent-sandbox-controller
# and prints that path last. The e2e suite runs it against the project's control plane, so
# Sandbox Pods reach the webhook as the real controller makes them.
#
# Usage: tests/agent-sandbox/build.sh [--print-path|--print-dir]
#   --print-path: the binary's path only, --print-dir: its directory only; neither builds.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
MODULE=sigs.k8s.io/agent-sandbox
VERSION="$(awk -v m="$MODULE" '$1 == m && $2 ~ /^v/ { print $2; exit } $1 == "require" && $2 == m { print $3; exit }' "$HERE/controller/go.mod")"
[[ -n "$VERSION" ]] || { echo "build.sh: $MODULE is not required in $HERE/controller/go.mod" >&2; exit 1; }
FETCHED="$(sed -n 's/^VERSION=//p' "$HERE/fetch.sh")"
[[ "$VERSION" == "$FETCHED" ]] || {
  echo "build.sh: controller/go.mod pins $MODULE $VERSION but fetch.sh takes the CRDs from $FETCHED; pin one version in both" >&2
  exit 1
}

CACHE="${OPENCLAW_CACHE:-$HOME/.cache/openclaw-admission}"
OUT_DIR="$CACHE/bin/agent-sandbox-$VERSION"
OUT="$OUT_DIR/agent-sandbox-controller"

case "${1:-}" in
  --print-path) echo "$OUT"; exit 0 ;;
  --print-dir) echo "$OUT_DIR"; exit 0 ;;
  "") ;;
  *) echo "usage: $0 [--print-path|--print-dir]" >&2; exit 64 ;;
esac

if [[ ! -x "$OUT" ]]; then
  command -v go >/dev/null 2>&1 || { echo "build.sh: Go is needed to build $MODULE $VERSION's controller from the module proxy" >&2; exit 2; }
  mkdir -p "$OUT_DIR"
  # Two runs at once (a developer and a test script) must not build twice.
  exec 9>"$OUT_DIR/.build.lock"
  flock 9
  if [[ ! -x "$OUT" ]]; then
    start=$SECONDS
    echo "building agent-sandbox-controller $VERSION (first run: about 22 minutes on 2 cores, then a relink of seconds)..." >&2
    # Exactly the committed go.mod/go.sum (-mod=readonly checks every module's hash), never a
    # go.work above us, never a downloaded toolchain; a static binary needs no C compiler.
    (cd "$HERE/controller" && GOWORK=off GOFLAGS=-mod=readonly GOTOOLCHAIN=local CGO_ENABLED=0 \
      go build -p 2 -trimpath -ldflags "-s -w -X $MODULE/internal/version.gitVersion=$VERSION" -o "$OUT.partial.$$" "$MODULE/cmd/agent-sandbox-controller")
    mv -f "$OUT.partial.$$" "$OUT"
    echo "built agent-sandbox-controller $VERSION in $((SECONDS - start))s" >&2
  fi
fi
echo "$OUT"

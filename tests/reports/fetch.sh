#!/usr/bin/env bash
# Fetches the CRDs of the two policy report APIs that `audit --write-reports` writes, as their
# owners publish them, from the Go module proxy at the versions pinned below, each checked
# against its pinned module hash, once, outside git:
#   - OpenReports (openreports.io/v1alpha1 Report and ClusterReport): module
#     github.com/openreports/reports-api, directory config/crd/;
#   - the policy working group's API (wgpolicyk8s.io/v1alpha2 PolicyReport and
#     ClusterPolicyReport) as Kyverno ships it: module github.com/kyverno/kyverno, directory
#     config/crds/policyreport/.
# They land in
#   ${OPENCLAW_CACHE:-$HOME/.cache/openclaw-admission}/reports/<openreports>-<kyverno>/{openreports,wgpolicyk8s}/
# and that directory is printed last. The e2e suite and `make bench-audit` install these CRDs,
# so the reports they write are validated by the upstream schemas.
#
# Usage: tests/reports/fetch.sh [--print-dir]   (--print-dir: the directory only)
set -euo pipefail

# Versions and the hashes `go mod download -json` reports for them (the go.sum lines of a
# module that requires them).
OPENREPORTS_MODULE=github.com/openreports/reports-api
OPENREPORTS_VERSION=v0.2.1
OPENREPORTS_SUM='h1:g9KS3yle9Y1elmww4TK9EkD1rl6inIaiIJPX6e+u680='
KYVERNO_MODULE=github.com/kyverno/kyverno
KYVERNO_VERSION=v1.19.1
KYVERNO_SUM='h1:/MkgFii3/VlQfKR1JpC9tVwNNVNQTt2S4U6qCsafsTU='

CACHE="${OPENCLAW_CACHE:-$HOME/.cache/openclaw-admission}"
DIR="$CACHE/reports/openreports-$OPENREPORTS_VERSION-kyverno-$KYVERNO_VERSION"

case "${1:-}" in
  --print-dir) echo "$DIR"; exit 0 ;;
  "") ;;
  *) echo "usage: $0 [--print-dir]" >&2; exit 64 ;;
esac

# Downloads one module version into the Go module cache, checks its hash and prints the
# directory it was unpacked into.
download() {
  local module="$1" version="$2" want="$3" json src sum
  json="$(cd "$mod" && GOWORK=off GOFLAGS=-mod=mod GOTOOLCHAIN=local go mod download -json "$module@$version")"
  src="$(printf '%s\n' "$json" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p')"
  sum="$(printf '%s\n' "$json" | sed -n 's/^[[:space:]]*"Sum": "\(.*\)",\{0,1\}$/\1/p')"
  [[ "$sum" == "$want" ]] || { echo "fetch.sh: $module $version hashes to '$sum', pinned '$want'" >&2; exit 1; }
  [[ -d "$src" ]] || { echo "fetch.sh: go mod download gave no directory for $module $version" >&2; exit 1; }
  printf '%s\n' "$src"
}

# Copies the named files of one directory of a module, failing on any that is missing.
copy() {
  local from="$1" to="$2" what="$3"
  shift 3
  mkdir -p "$to"
  for f in "$@"; do
    [[ -f "$from/$f" ]] || { echo "fetch.sh: $what has no $f" >&2; exit 1; }
    cp "$from/$f" "$to/$f"
  done
}

if [[ ! -e "$DIR/.complete" ]]; then
  command -v go >/dev/null 2>&1 || { echo "fetch.sh: Go is needed to fetch the report CRDs from the module proxy" >&2; exit 2; }
  mkdir -p "$CACHE/reports"
  exec 9>"$CACHE/reports/.fetch.lock"
  flock 9
  if [[ ! -e "$DIR/.complete" ]]; then
    # `go mod download` needs a module to run in; an empty one outside the repository will do.
    mod="$(mktemp -d)"
    trap 'rm -rf "$mod"' EXIT
    printf 'module openclaw-admission/reports-fetch\n\ngo 1.22\n' >"$mod/go.mod"
    openreports="$(download "$OPENREPORTS_MODULE" "$OPENREPORTS_VERSION" "$OPENREPORTS_SUM")"
    kyverno="$(download "$KYVERNO_MODULE" "$KYVERNO_VERSION" "$KYVERNO_SUM")"
    tmp="$DIR.partial.$$"
    rm -rf "$tmp"
    copy "$openreports/config/crd" "$tmp/openreports" "$OPENREPORTS_MODULE $OPENREPORTS_VERSION config/crd" \
      openreports.io_reports.yaml openreports.io_clusterreports.yaml
    copy "$kyverno/config/crds/policyreport" "$tmp/wgpolicyk8s" "$KYVERNO_MODULE $KYVERNO_VERSION config/crds/policyreport" \
      wgpolicyk8s.io_policyreports.yaml wgpolicyk8s.io_clusterpolicyreports.yaml
    chmod -R u+w "$tmp"
    echo "$OPENREPORTS_VERSION $KYVERNO_VERSION" >"$tmp/.complete"
    rm -rf "$DIR"
    mv "$tmp" "$DIR"
    echo "fetch.sh: report CRDs in $DIR/{openreports,wgpolicyk8s}" >&2
  fi
fi
echo "$DIR"

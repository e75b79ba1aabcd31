#!/usr/bin/env bash
# Fetches Kubernetes' own Pod Security fixtures (test/testdata/{baseline,restricted}/v<minor>/
# {fail,pass}/*.yaml of k8s.io/pod-security-admission) from the Go module proxy, at the
# version the control plane pins (tests/controlplane/kubernetes/go.mod: the module kube-apiserver
# itself runs), checked against that go.sum, once, outside git:
#   ${OPENCLAW_CACHE:-$HOME/.cache/openclaw-admission}/psa/pod-security-admission-<v>/
# holding baseline/ and restricted/ for the one Kubernetes minor (v0.37.x -> v1.37), and prints
# that directory last. tests/psa_fixtures.rs runs every check on every fixture.
#
# Usage: tests/psa/fetch.sh [--print-dir]   (--print-dir: the directory only, fetches nothing)
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
KMOD="$HERE/../controlplane/kubernetes"
MODULE=k8s.io/pod-security-admission
# The control plane's go.mod maps the staging module to its published version.
VERSION="$(awk -v m="$MODULE" '$1 == m && $2 == "=>" { print $4; exit }' "$KMOD/go.mod")"
[[ "$VERSION" =~ ^v0\.([0-9]+)\.[0-9]+$ ]] || {
  echo "fetch.sh: cannot read the $MODULE version from $KMOD/go.mod (got '${VERSION}')" >&2
  exit 1
}
MINOR="v1.${BASH_REMATCH[1]}"
CACHE="${OPENCLAW_CACHE:-$HOME/.cache/openclaw-admission}"
DIR="$CACHE/psa/pod-security-admission-$VERSION"

case "${1:-}" in
  --print-dir) echo "$DIR"; exit 0 ;;
  "") ;;
  *) echo "usage: $0 [--print-dir]" >&2; exit 64 ;;
esac

if [[ ! -e "$DIR/.complete" ]]; then
  command -v go >/dev/null 2>&1 || { echo "fetch.sh: Go is needed to fetch $MODULE $VERSION from the module proxy" >&2; exit 2; }
  mkdir -p "$CACHE/psa"
  exec 9>"$CACHE/psa/.fetch.lock"
  flock 9
  if [[ ! -e "$DIR/.complete" ]]; then
    want="$(awk -v m="$MODULE" -v v="$VERSION" '$1 == m && $2 == v { print $3; exit }' "$KMOD/go.sum")"
    [[ -n "$want" ]] || { echo "fetch.sh: $KMOD/go.sum has no hash for $MODULE $VERSION" >&2; exit 1; }
    json="$(cd "$KMOD" && GOWORK=off GOFLAGS=-mod=mod GOTOOLCHAIN=local go mod download -json "$MODULE@$VERSION")"
    src="$(printf '%s\n' "$json" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p')"
    sum="$(printf '%s\n' "$json" | sed -n 's/^[[:space:]]*"Sum": "\(.*\)",\{0,1\}$/\1/p')"
    [[ "$sum" == "$want" ]] || { echo "fetch.sh: $MODULE $VERSION hashes to '$sum', go.sum says '$want'" >&2; exit 1; }
    tmp="$DIR.partial.$$"
    rm -rf "$tmp"
    for level in baseline restricted; do
      from="$src/test/testdata/$level/$MINOR"
      [[ -d "$from/fail" && -d "$from/pass" ]] || { echo "fetch.sh: $MODULE $VERSION has no $level/$MINOR fixtures" >&2; exit 1; }
      mkdir -p "$tmp/$level/$MINOR"
      cp -R "$from/fail" "$from/pass" "$tmp/$level/$MINOR/"
    done
    chmod -R u+w "$tmp"
    echo "$MINOR" >"$tmp/.complete"
    rm -rf "$DIR"
    mv "$tmp" "$DIR"
    echo "fetch.sh: $MODULE $VERSION fixtures for $MINOR in $DIR" >&2
  fi
fi
echo "$DIR"

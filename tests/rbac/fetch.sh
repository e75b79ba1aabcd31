#!/usr/bin/env bash
# Fetches Kubernetes' own built-in ClusterRoles, the ones every API server creates at start
# (plugin/pkg/auth/authorizer/rbac/bootstrappolicy/testdata/{cluster-roles,controller-roles}.yaml
# of k8s.io/kubernetes: the roles `admin`, `edit`, `view` and `system:*`, with their
# aggregation), from the Go module proxy at the version the control plane pins
# (tests/controlplane/kubernetes/go.mod), checked against that go.sum, once, outside git:
#   ${OPENCLAW_CACHE:-$HOME/.cache/openclaw-admission}/rbac/kubernetes-<v>/
# and prints that directory last. build.rs embeds the two files, so `check` judges bindings
# to these roles by their rules, as `serve` does from the cluster's own copies.
#
# Usage: tests/rbac/fetch.sh [--print-dir]   (--print-dir: the directory only, fetches nothing)
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
KMOD="$HERE/../controlplane/kubernetes"
MODULE=k8s.io/kubernetes
VERSION="$(awk -v m="$MODULE" '$1 == m && $2 ~ /^v1\./ { print $2; exit }' "$KMOD/go.mod")"
[[ "$VERSION" =~ ^v1\.[0-9]+\.[0-9]+$ ]] || {
  echo "fetch.sh: cannot read the $MODULE version from $KMOD/go.mod (got '${VERSION}')" >&2
  exit 1
}
CACHE="${OPENCLAW_CACHE:-$HOME/.cache/openclaw-admission}"
DIR="$CACHE/rbac/kubernetes-$VERSION"
FILES=(cluster-roles.yaml controller-roles.yaml)

case "${1:-}" in
  --print-dir) echo "$DIR"; exit 0 ;;
  "") ;;
  *) echo "usage: $0 [--print-dir]" >&2; exit 64 ;;
esac

if [[ ! -e "$DIR/.complete" ]]; then
  command -v go >/dev/null 2>&1 || { echo "fetch.sh: Go is needed to fetch $MODULE $VERSION from the module proxy" >&2; exit 2; }
  mkdir -p "$CACHE/rbac"
  exec 9>"$CACHE/rbac/.fetch.lock"
  flock 9
  if [[ ! -e "$DIR/.complete" ]]; then
    want="$(awk -v m="$MODULE" -v v="$VERSION" '$1 == m && $2 == v { print $3; exit }' "$KMOD/go.sum")"
    [[ -n "$want" ]] || { echo "fetch.sh: $KMOD/go.sum has no hash for $MODULE $VERSION" >&2; exit 1; }
    # The control-plane build downloads the same module; after it this is a cache hit.
    json="$(cd "$KMOD" && GOWORK=off GOFLAGS=-mod=mod GOTOOLCHAIN=local go mod download -json "$MODULE@$VERSION")"
    src="$(printf '%s\n' "$json" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p')"
    sum="$(printf '%s\n' "$json" | sed -n 's/^[[:space:]]*"Sum": "\(.*\)",\{0,1\}$/\1/p')"
    [[ "$sum" == "$want" ]] || { echo "fetch.sh: $MODULE $VERSION hashes to '$sum', go.sum says '$want'" >&2; exit 1; }
    from="$src/plugin/pkg/auth/authorizer/rbac/bootstrappolicy/testdata"
    tmp="$DIR.partial.$$"
    rm -rf "$tmp"
    mkdir -p "$tmp"
    for f in "${FILES[@]}"; do
      [[ -f "$from/$f" ]] || { echo "fetch.sh: $MODULE $VERSION has no $from/$f" >&2; exit 1; }
      cp "$from/$f" "$tmp/$f"
    done
    chmod -R u+w "$tmp"
    echo "$VERSION" >"$tmp/.complete"
    rm -rf "$DIR"
    mv "$tmp" "$DIR"
    echo "fetch.sh: $MODULE $VERSION built-in ClusterRoles in $DIR" >&2
  fi
fi
echo "$DIR"

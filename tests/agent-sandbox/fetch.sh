#!/usr/bin/env bash
# Fetches the CRDs of SIG Apps' agent-sandbox (module sigs.k8s.io/agent-sandbox, directory
# k8s/crds/: Sandbox, SandboxTemplate, SandboxWarmPool, SandboxClaim), its controller's identity
# and RBAC (k8s/: see RBAC below) and its OpenClaw example (examples/openclaw-gvisor-sandbox/)
# from the Go module proxy, at the version pinned below and checked against the pinned module
# hash, once, outside git:
#   ${OPENCLAW_CACHE:-$HOME/.cache/openclaw-admission}/agent-sandbox/<version>/{crds,rbac,examples}/
# and prints that directory last. The e2e suite installs these CRDs into its control plane, so
# the objects it applies are validated by agent-sandbox's own schemas, and runs the controller
# (tests/agent-sandbox/build.sh) as the ServiceAccount and with the ClusterRoles of rbac/.
#
# Usage: tests/agent-sandbox/fetch.sh [--print-dir]   (--print-dir: the directory only)
set -euo pipefail

MODULE=sigs.k8s.io/agent-sandbox
# The only version on the proxy when this was pinned (proxy.golang.org/.../@v/list), and the
# hash `go mod download` reports for it (the go.sum line of a module that requires it).
VERSION=v1.0.1
SUM='h1:AZA1kFurdKIdNL04j9RhGZXb3kL2/O80eiXaTC/oXjM='

CACHE="${OPENCLAW_CACHE:-$HOME/.cache/openclaw-admission}"
DIR="$CACHE/agent-sandbox/$VERSION"
CRDS=(
  agents.x-k8s.io_sandboxes.yaml
  extensions.agents.x-k8s.io_sandboxtemplates.yaml
  extensions.agents.x-k8s.io_sandboxwarmpools.yaml
  extensions.agents.x-k8s.io_sandboxclaims.yaml
)
# The controller's Namespace, ServiceAccount, ClusterRoles and ClusterRoleBindings, core and
# extensions, as upstream's plain (not Helm-templated) k8s/ manifests declare them. The
# ClusterRoles come whole; controller.yaml and extensions.yaml also declare the controller's
# Deployment and Service (an image this project does not run), so only their documents of the
# kinds below are kept, in rbac/identity.yaml.
ROLES=(rbac.generated.yaml extensions-rbac.generated.yaml)
IDENTITY=(controller.yaml extensions.yaml)
IDENTITY_KINDS='Namespace ServiceAccount ClusterRoleBinding'
EXAMPLE=examples/openclaw-gvisor-sandbox
EXAMPLES=(openclaw-template.yaml openclaw-warmpool.yaml openclaw-claim.yaml)

case "${1:-}" in
  --print-dir) echo "$DIR"; exit 0 ;;
  "") ;;
  *) echo "usage: $0 [--print-dir]" >&2; exit 64 ;;
esac

# A cache made before rbac/ was fetched is fetched again.
if [[ ! -e "$DIR/.complete" || ! -e "$DIR/rbac/identity.yaml" ]]; then
  command -v go >/dev/null 2>&1 || { echo "fetch.sh: Go is needed to fetch $MODULE $VERSION from the module proxy" >&2; exit 2; }
  mkdir -p "$CACHE/agent-sandbox"
  exec 9>"$CACHE/agent-sandbox/.fetch.lock"
  flock 9
  if [[ ! -e "$DIR/.complete" || ! -e "$DIR/rbac/identity.yaml" ]]; then
    # `go mod download` needs a module to run in; an empty one outside the repository will do.
    mod="$(mktemp -d)"
    trap 'rm -rf "$mod"' EXIT
    printf 'module openclaw-admission/agent-sandbox-fetch\n\ngo 1.22\n' >"$mod/go.mod"
    json="$(cd "$mod" && GOWORK=off GOFLAGS=-mod=mod GOTOOLCHAIN=local go mod download -json "$MODULE@$VERSION")"
    src="$(printf '%s\n' "$json" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p')"
    sum="$(printf '%s\n' "$json" | sed -n 's/^[[:space:]]*"Sum": "\(.*\)",\{0,1\}$/\1/p')"
    [[ "$sum" == "$SUM" ]] || { echo "fetch.sh: $MODULE $VERSION hashes to '$sum', pinned '$SUM'" >&2; exit 1; }
    tmp="$DIR.partial.$$"
    rm -rf "$tmp"
    mkdir -p "$tmp/crds" "$tmp/rbac" "$tmp/examples"
    for f in "${CRDS[@]}"; do
      [[ -f "$src/k8s/crds/$f" ]] || { echo "fetch.sh: $MODULE $VERSION has no k8s/crds/$f" >&2; exit 1; }
      cp "$src/k8s/crds/$f" "$tmp/crds/$f"
    done
    for f in "${ROLES[@]}"; do
      [[ -f "$src/k8s/$f" ]] || { echo "fetch.sh: $MODULE $VERSION has no k8s/$f" >&2; exit 1; }
      cp "$src/k8s/$f" "$tmp/rbac/$f"
    done
    # Documents split at `---` lines; a document is kept when its top-level `kind:` is one of
    # IDENTITY_KINDS (upstream's generated manifests put it at column 0, nested ones indent).
    for f in "${IDENTITY[@]}"; do
      [[ -f "$src/k8s/$f" ]] || { echo "fetch.sh: $MODULE $VERSION has no k8s/$f" >&2; exit 1; }
      awk -v kinds="$IDENTITY_KINDS" -v from="k8s/$f" '
        function flush() { if (keep && doc != "") printf "---\n# from %s\n%s", from, doc; doc = ""; keep = 0 }
        BEGIN { n = split(kinds, k, " "); for (i = 1; i <= n; i++) want[k[i]] = 1 }
        /^---/ { flush(); next }
        /^kind:[[:space:]]/ { if ($2 in want) keep = 1 }
        { doc = doc $0 "\n" }
        END { flush() }
      ' "$src/k8s/$f" >>"$tmp/rbac/identity.yaml"
    done
    for kind in $IDENTITY_KINDS; do
      grep -q "^kind: $kind\$" "$tmp/rbac/identity.yaml" || {
        echo "fetch.sh: $MODULE $VERSION declares no $kind in k8s/{${IDENTITY[*]}}" >&2; exit 1; }
    done
    for f in "${EXAMPLES[@]}"; do
      [[ -f "$src/$EXAMPLE/$f" ]] || { echo "fetch.sh: $MODULE $VERSION has no $EXAMPLE/$f" >&2; exit 1; }
      cp "$src/$EXAMPLE/$f" "$tmp/examples/$f"
    done
    chmod -R u+w "$tmp"
    echo "$VERSION" >"$tmp/.complete"
    rm -rf "$DIR"
    mv "$tmp" "$DIR"
    echo "fetch.sh: $MODULE $VERSION CRDs in $DIR/crds, the controller's RBAC in $DIR/rbac" >&2
  fi
fi
echo "$DIR"

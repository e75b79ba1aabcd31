#!/usr/bin/env bash
# Builds the real control-plane binaries used by the end-to-end tests
# (kube-apiserver, kube-controller-manager, kubectl, etcd, helm) from the Go module proxy, at the
# versions pinned in the go.mod/go.sum files beside this script.
#
# Binaries land outside git, keyed by version:
#   ${OPENCLAW_CACHE:-$HOME/.cache/openclaw-admission}/bin/k8s-<v>/{kube-apiserver,kube-controller-manager,kubectl}
#   .../bin/etcd-<v>/etcd
#   .../bin/helm-<v>/helm
# plus one directory of symlinks holding all five (the "bin dir"), which is
# what other scripts put on PATH:
#   .../bin/k8s-<v>_etcd-<v>_helm-<v>/
#
# Usage:
#   tests/controlplane/build.sh                  build what is missing, print the bin dir last
#   tests/controlplane/build.sh --print-bin-dir  print the bin dir only (builds nothing, needs no Go)
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

# The version a go.mod requires for a module: the single source of truth.
modver() {
  awk -v m="$2" '
    $1 == "require" && $2 == m { print $3; exit }
    $1 == m && $2 ~ /^v/       { print $2; exit }
  ' "$HERE/$1/go.mod"
}

K8S_VERSION="$(modver kubernetes k8s.io/kubernetes)"
ETCD_VERSION="$(modver etcd go.etcd.io/etcd/server/v3)"
HELM_VERSION="$(modver helm helm.sh/helm/v3)"
for v in K8S_VERSION ETCD_VERSION HELM_VERSION; do
  [[ -n "${!v}" ]] || { echo "build.sh: cannot read $v from the go.mod files in $HERE" >&2; exit 1; }
done

CACHE="${OPENCLAW_CACHE:-$HOME/.cache/openclaw-admission}"
BIN_ROOT="$CACHE/bin"
K8S_DIR="$BIN_ROOT/k8s-$K8S_VERSION"
ETCD_DIR="$BIN_ROOT/etcd-$ETCD_VERSION"
HELM_DIR="$BIN_ROOT/helm-$HELM_VERSION"
BIN_DIR="$BIN_ROOT/k8s-${K8S_VERSION}_etcd-${ETCD_VERSION}_helm-${HELM_VERSION}"

case "${1:-}" in
  --print-bin-dir) echo "$BIN_DIR"; exit 0 ;;
  "") ;;
  *) echo "usage: $0 [--print-bin-dir]" >&2; exit 64 ;;
esac

need_go() {
  local gov
  if command -v go >/dev/null 2>&1 && gov="$(go env GOVERSION 2>/dev/null)"; then
    if [[ "$gov" =~ ^go([0-9]+)\.([0-9]+) ]]; then
      if (( BASH_REMATCH[1] > 1 || (BASH_REMATCH[1] == 1 && BASH_REMATCH[2] >= 26) )); then
        return 0
      fi
    else
      return 0 # devel toolchain: trust it
    fi
  fi
  echo "build.sh: Go >= 1.26 is required to build the control-plane binaries (found: ${gov:-no 'go' on PATH}); install Go >= 1.26 and re-run" >&2
  exit 2
}

mkdir -p "$K8S_DIR" "$ETCD_DIR" "$HELM_DIR" "$BIN_DIR"

# Two runs at once (a developer and a test script) must not build twice.
if command -v flock >/dev/null 2>&1; then
  exec 9>"$BIN_ROOT/.build.lock"
  flock 9
fi

GO_CHECKED=""
go_env() {
  if [[ -z "$GO_CHECKED" ]]; then
    need_go
    GO_CHECKED=1
    # Use exactly the committed go.mod/go.sum, never a go.work above us, never
    # a silently downloaded toolchain; static binaries need no C compiler.
    export GOWORK=off GOFLAGS=-mod=readonly GOTOOLCHAIN=local CGO_ENABLED=0
  fi
}

# build NAME VERSION MODULE_DIR PACKAGE OUT_DIR LDFLAGS
build() {
  local name="$1" version="$2" moddir="$3" pkg="$4" outdir="$5" ldflags="$6"
  local out="$outdir/$name" start=$SECONDS
  echo "building $name $version (first run: several minutes)..."
  (cd "$HERE/$moddir" && go build -p 2 -trimpath -ldflags "$ldflags" -o "$out.partial.$$" "$pkg")
  mv -f "$out.partial.$$" "$out"
  echo "built $name $version in $((SECONDS - start))s: $out"
}

# Kubernetes: stamp the version the way hack/lib/version.sh does, so that
# `kubectl version` and the API server's /version report it.
k8s_ldflags() {
  local major minor date ld="-s -w" p
  [[ "$K8S_VERSION" =~ ^v([0-9]+)\.([0-9]+)\. ]] || { echo "build.sh: odd k8s version $K8S_VERSION" >&2; exit 1; }
  major="${BASH_REMATCH[1]}" minor="${BASH_REMATCH[2]}"
  # The release's own timestamp keeps the build reproducible.
  date="$(cd "$HERE/kubernetes" && go list -m -f '{{.Time.UTC.Format "2006-01-02T15:04:05Z"}}' k8s.io/kubernetes)"
  for p in k8s.io/client-go/pkg/version k8s.io/component-base/version; do
    ld+=" -X $p.gitVersion=$K8S_VERSION -X $p.gitMajor=$major -X $p.gitMinor=$minor"
    ld+=" -X $p.gitTreeState=archive -X $p.buildDate=$date"
  done
  echo "$ld"
}

helm_ldflags() {
  local cg major minor p ld="-s -w -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION"
  # Like helm's Makefile: default .Capabilities.KubeVersion from its client-go (v0.X.Y -> v1.X).
  cg="$(cd "$HERE/helm" && go list -m -f '{{.Version}}' k8s.io/client-go)"
  [[ "$cg" =~ ^v0\.([0-9]+)\. ]] || { echo "build.sh: odd client-go version $cg" >&2; exit 1; }
  major=1 minor="${BASH_REMATCH[1]}"
  for p in helm.sh/helm/v3/pkg/lint/rules helm.sh/helm/v3/pkg/chartutil; do
    ld+=" -X $p.k8sVersionMajor=$major -X $p.k8sVersionMinor=$minor"
  done
  echo "$ld"
}

KLD=""
for name in kube-apiserver kube-controller-manager kubectl etcd helm; do
  case "$name" in
    kube-apiserver|kube-controller-manager|kubectl) dir="$K8S_DIR" ;;
    etcd) dir="$ETCD_DIR" ;;
    helm) dir="$HELM_DIR" ;;
  esac
  if [[ -x "$dir/$name" ]]; then
    echo "cached: $dir/$name"
  else
    go_env
    case "$name" in
      kube-apiserver|kube-controller-manager|kubectl)
        [[ -n "$KLD" ]] || KLD="$(k8s_ldflags)"
        build "$name" "$K8S_VERSION" kubernetes "k8s.io/kubernetes/cmd/$name" "$dir" "$KLD" ;;
      etcd)
        build etcd "$ETCD_VERSION" etcd go.etcd.io/etcd/server/v3 "$dir" "-s -w" ;;
      helm)
        build helm "$HELM_VERSION" helm helm.sh/helm/v3/cmd/helm "$dir" "$(helm_ldflags)" ;;
    esac
  fi
  ln -sfn "../$(basename "$dir")/$name" "$BIN_DIR/$name"
done

echo "$BIN_DIR"

#!/usr/bin/env bash
# Builds the image tools `make image` and the image tests use, at pinned versions, into a cache
# outside git (like tests/controlplane/build.sh does for the control plane):
#
#   crane            go-containerregistry, from the Go module proxy (version: crane/go.mod):
#                    assembles the OCI image and serves the loopback test registry
#   cargo-cyclonedx  from crates.io: the image's SBOM (CycloneDX) from Cargo.lock
#   cargo-deny       from crates.io: license and ban checks on Cargo.lock (deny.toml)
#   runtime-default-seccomp
#                    tools/seccomp: Docker's default seccomp profile (moby/profiles, Go module
#                    proxy) in runtime-spec form, for the runc test
#
# Each lands in ${OPENCLAW_CACHE:-$HOME/.cache/openclaw-admission}/tools/<name>-<version>/ and
# is linked into one directory, the "tools dir", which callers put on PATH.
#
# Usage:
#   tools/build.sh                    build what is missing, print the tools dir last
#   tools/build.sh --print-tools-dir  print the tools dir only (builds nothing)
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

# The single sources of truth for the versions.
modver() { # modver DIR MODULE: the version DIR/go.mod requires
  awk -v m="$2" '$1 == "require" && $2 == m { print $3; exit } $1 == m && $2 ~ /^v/ { print $2; exit }' "$HERE/$1/go.mod"
}
CRANE_VERSION="$(modver crane github.com/google/go-containerregistry)"
SECCOMP_VERSION="$(modver seccomp github.com/moby/profiles/seccomp)"
CYCLONEDX_VERSION=0.5.9
DENY_VERSION=0.20.2
[[ -n "$CRANE_VERSION" && -n "$SECCOMP_VERSION" ]] || { echo "tools/build.sh: cannot read the versions from $HERE/{crane,seccomp}/go.mod" >&2; exit 1; }

CACHE="${OPENCLAW_CACHE:-$HOME/.cache/openclaw-admission}"
ROOT_DIR="$CACHE/tools"
TOOLS_DIR="$ROOT_DIR/crane-${CRANE_VERSION}_seccomp-${SECCOMP_VERSION}_cyclonedx-${CYCLONEDX_VERSION}_deny-${DENY_VERSION}"

case "${1:-}" in
  --print-tools-dir) echo "$TOOLS_DIR"; exit 0 ;;
  "") ;;
  *) echo "usage: $0 [--print-tools-dir]" >&2; exit 64 ;;
esac

mkdir -p "$ROOT_DIR" "$TOOLS_DIR"
# Two runs at once (make image and a test script) must not build twice.
if command -v flock >/dev/null 2>&1; then
  exec 9>"$ROOT_DIR/.build.lock"
  flock 9
fi

# go_tool NAME VERSION MODULE_DIR PACKAGE
go_tool() {
  local name="$1" version="$2" moddir="$3" pkg="$4"
  local dir="$ROOT_DIR/$name-$version" start=$SECONDS
  if [[ -x "$dir/$name" ]]; then echo "cached: $dir/$name"; return; fi
  command -v go >/dev/null 2>&1 || { echo "tools/build.sh: Go is needed to build $name $version" >&2; exit 2; }
  echo "building $name $version from the Go module proxy (first run: about a minute)..."
  mkdir -p "$dir"
  # Exactly the committed go.mod/go.sum; a static binary, no C compiler.
  (cd "$HERE/$moddir" && GOWORK=off GOFLAGS=-mod=readonly GOTOOLCHAIN=local CGO_ENABLED=0 \
    go build -p 2 -trimpath -ldflags "-s -w" -o "$dir/$name.partial.$$" "$pkg")
  mv -f "$dir/$name.partial.$$" "$dir/$name"
  echo "built $name $version in $((SECONDS - start))s: $dir/$name"
}

# cargo_tool CRATE VERSION BINARY [cargo install args]
cargo_tool() {
  local crate="$1" version="$2" bin="$3"; shift 3
  local dir="$ROOT_DIR/$crate-$version" start=$SECONDS
  if [[ -x "$dir/bin/$bin" ]]; then echo "cached: $dir/bin/$bin"; return; fi
  echo "installing $crate $version from crates.io (first run: a few minutes)..."
  # --locked: the dependency versions the tool's authors released with. A private target dir
  # keeps this build out of the project's target/.
  local tmp
  tmp="$(mktemp -d -t openclaw-tool.XXXXXX)"
  CARGO_TARGET_DIR="$tmp" cargo install --quiet --locked --version "=$version" --root "$dir.partial.$$" "$@" "$crate" \
    || { rm -rf "$tmp" "$dir.partial.$$"; exit 1; }
  rm -rf "$tmp" "$dir"
  mv "$dir.partial.$$" "$dir"
  echo "installed $crate $version in $((SECONDS - start))s: $dir/bin/$bin"
}

go_tool crane "$CRANE_VERSION" crane github.com/google/go-containerregistry/cmd/crane
ln -sfn "../crane-$CRANE_VERSION/crane" "$TOOLS_DIR/crane"
go_tool runtime-default-seccomp "$SECCOMP_VERSION" seccomp .
ln -sfn "../runtime-default-seccomp-$SECCOMP_VERSION/runtime-default-seccomp" "$TOOLS_DIR/runtime-default-seccomp"
cargo_tool cargo-cyclonedx "$CYCLONEDX_VERSION" cargo-cyclonedx
ln -sfn "../cargo-cyclonedx-$CYCLONEDX_VERSION/bin/cargo-cyclonedx" "$TOOLS_DIR/cargo-cyclonedx"
cargo_tool cargo-deny "$DENY_VERSION" cargo-deny
ln -sfn "../cargo-deny-$DENY_VERSION/bin/cargo-deny" "$TOOLS_DIR/cargo-deny"

echo "$TOOLS_DIR"

#!/usr/bin/env bash
# The image's binary alone: a static release build of openclaw-admission for this machine's
# gnu target (`+crt-static`), with the paths of this checkout and of cargo's home remapped out
# of it. image/build.sh puts it in the image; the resilience tests (tests/resilience) run it as
# the process the chart runs, and reuse this build when `make test` has made it already.
# The last line printed is the binary's path.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
CARGO="${CARGO:-cargo}"

# Run from a cargo test, this script inherits what cargo sets for the test process. Build
# scripts (ring's) watch some of those names, and seeing them set would rebuild the release
# binary from scratch; they describe the caller, not this build.
while IFS= read -r v; do unset "$v"; done < <(compgen -e | grep -E '^(CARGO_PKG_|CARGO_MANIFEST_|CARGO_CRATE_NAME$|CARGO_BIN_|CARGO_PRIMARY_PACKAGE$|CARGO_TARGET_TMPDIR$|OUT_DIR$)')

case "$(uname -m)" in
  x86_64 | aarch64) ;;
  *) echo "image/binary.sh: unsupported machine $(uname -m): only x86_64 and aarch64 are built" >&2; exit 1 ;;
esac
TARGET="$(uname -m)-unknown-linux-gnu"
# With --target, RUSTFLAGS reach only the target's code, not build scripts and proc macros,
# which must stay dynamic. The path remaps keep this machine's paths out of the binary.
RUSTFLAGS="-C target-feature=+crt-static --remap-path-prefix=$ROOT=/src --remap-path-prefix=${CARGO_HOME:-$HOME/.cargo}=/cargo" \
  CARGO_PROFILE_RELEASE_STRIP=symbols \
  "$CARGO" build --release --locked --target "$TARGET" --bin openclaw-admission >&2
echo "${CARGO_TARGET_DIR:-$ROOT/target}/$TARGET/release/openclaw-admission"

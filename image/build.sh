#!/usr/bin/env bash
# `make image`: the webhook's OCI image, built without a container engine. Same content as the
# top-level Containerfile's final stage: one statically linked binary, /etc/passwd and
# /etc/group naming the non-root user, nothing else (no shell, no libc, no package manager).
#
#   1. cargo builds a static release binary (`+crt-static` on the gnu target); `file` and
#      `ldd` must both call it static;
#   2. the root filesystem goes into one tar layer with sorted names, fixed owner, modes and
#      times (SOURCE_DATE_EPOCH, default: the HEAD commit's time);
#   3. crane (tools/build.sh) appends the layer to an empty OCI image, sets the config (user,
#      entrypoint, cmd, labels, platform) and writes an OCI image layout; crane's mutate works on
#      a registry, so a throwaway crane registry on loopback holds the image meanwhile;
#   4. the layout is packed into an oci-archive tar (again sorted, fixed owner and times) and an
#      SBOM (CycloneDX JSON, cargo-cyclonedx from Cargo.lock) is written beside it.
#
# The same commit gives the same image digest and the same archive bytes (tests/image/run.sh
# builds twice and compares). The last line printed is the archive's path.
#
# Environment:
#   SOURCE_DATE_EPOCH   timestamp for every file in the image and the archive
#   IMAGE_REPOSITORY    image name (default: the chart's image.repository)
#   OPENCLAW_CACHE      where tools/build.sh caches crane and cargo-cyclonedx
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
CARGO="${CARGO:-cargo}"
OUT="$ROOT/target/image"

# Run from a cargo test (the e2e suite), this script inherits what cargo sets for the test
# process. Build scripts (ring's) watch some of those names, and seeing them set would rebuild
# the release binary from scratch; they describe the caller, not this build.
while IFS= read -r v; do unset "$v"; done < <(compgen -e | grep -E '^(CARGO_PKG_|CARGO_MANIFEST_|CARGO_CRATE_NAME$|CARGO_BIN_|CARGO_PRIMARY_PACKAGE$|CARGO_TARGET_TMPDIR$|OUT_DIR$)')

say() { printf 'image: %s\n' "$*"; }
die() { printf 'image/build.sh: %s\n' "$*" >&2; exit 1; }

command -v python3 >/dev/null 2>&1 || die "python3 is required"
python3 -c 'import yaml' 2>/dev/null || die "python3 with PyYAML is required (make toolchain installs it)"
TOOLS_DIR="$(bash "$ROOT/tools/build.sh" | tail -n 1)"
CRANE="$TOOLS_DIR/crane"
[[ -x "$CRANE" ]] || die "no crane at $CRANE after tools/build.sh"

# --- what to build ---------------------------------------------------------------------------
VERSION="$("$CARGO" metadata --no-deps --format-version 1 --offline 2>/dev/null | python3 -c '
import json, sys
print(next(p["version"] for p in json.load(sys.stdin)["packages"] if p["name"] == "openclaw-admission"))')" \
  || die "cannot read the crate version with cargo metadata"
# The chart's default image is the image built here (tests/image/metadata_check.py keeps the
# chart's appVersion equal to the crate version).
IMAGE_REPOSITORY="${IMAGE_REPOSITORY:-$(python3 -c '
import sys, yaml
print(yaml.safe_load(open(sys.argv[1]))["image"]["repository"])' charts/openclaw-admission/values.yaml)}"
case "$(uname -m)" in
  x86_64) ARCH=amd64 ;;
  aarch64) ARCH=arm64 ;;
  *) die "unsupported machine $(uname -m): only x86_64 and aarch64 are built" ;;
esac
TARGET="$(uname -m)-unknown-linux-gnu"
REVISION="$(git rev-parse HEAD 2>/dev/null || echo unknown)"
if [[ -z "${SOURCE_DATE_EPOCH:-}" ]]; then
  SOURCE_DATE_EPOCH="$(git log -1 --format=%ct 2>/dev/null || echo 0)"
fi
[[ "$SOURCE_DATE_EPOCH" =~ ^[0-9]+$ ]] || die "SOURCE_DATE_EPOCH must be whole seconds since 1970, got '$SOURCE_DATE_EPOCH'"
SOURCE="$(python3 -c '
import sys, yaml
print(yaml.safe_load(open(sys.argv[1]))["sources"][0])' charts/openclaw-admission/Chart.yaml)"
NAME="openclaw-admission_${VERSION}_linux-${ARCH}"
ARCHIVE="$OUT/$NAME.oci.tar"
# The image config, shared with the Containerfile (tests/image/metadata_check.py compares them).
USER_ID=65532
ENTRYPOINT=/usr/local/bin/openclaw-admission
LABELS=(
  "org.opencontainers.image.title=openclaw-admission"
  "org.opencontainers.image.description=Admission webhook that keeps OpenClaw AI-agent pods in a locked box"
  "org.opencontainers.image.source=$SOURCE"
  "org.opencontainers.image.version=$VERSION"
  "org.opencontainers.image.revision=$REVISION"
  "org.opencontainers.image.licenses=Apache-2.0"
)

# --- 1: the static binary --------------------------------------------------------------------
say "building $IMAGE_REPOSITORY:$VERSION for linux/$ARCH (static $TARGET binary, commit ${REVISION:0:12})"
BIN="$(bash "$ROOT/image/binary.sh" | tail -n 1)"
file_out="$(file -b "$BIN")"
ldd_out="$(ldd "$BIN" 2>&1 || true)"
[[ "$file_out" == *"static-pie linked"* || "$file_out" == *"statically linked"* ]] \
  || die "$BIN is not statically linked: file says: $file_out"
[[ "$ldd_out" == *"statically linked"* || "$ldd_out" == *"not a dynamic executable"* ]] \
  || die "$BIN is not statically linked: ldd says: $ldd_out"
say "binary: $(stat -c %s "$BIN") bytes; file: ${file_out%%,*}, ${file_out#*, }" | cut -c1-200
say "ldd: $ldd_out"

# --- 2: the layer ----------------------------------------------------------------------------
WORK="$(mktemp -d -t openclaw-image.XXXXXX)"
# shellcheck source=../tools/crane-registry.sh
source "$ROOT/tools/crane-registry.sh"
cleanup() {
  crane_registry_stop
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

rootfs="$WORK/rootfs"
mkdir -p "$rootfs/etc" "$rootfs/usr/local/bin"
install -m 0755 "$BIN" "$rootfs$ENTRYPOINT"
# Names for the ids, for tools that look them up; no home directory, no login shell.
printf 'root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:%s:%s:nonroot:/:/sbin/nologin\n' "$USER_ID" "$USER_ID" >"$rootfs/etc/passwd"
printf 'root:x:0:\nnonroot:x:%s:\n' "$USER_ID" >"$rootfs/etc/group"
chmod 0644 "$rootfs/etc/passwd" "$rootfs/etc/group"
find "$rootfs" -type d -exec chmod 0755 {} +
# reproducible_tar DIR OUT ENTRY...: sorted names, root-owned, one fixed time, no atime/ctime.
reproducible_tar() {
  local dir="$1" out="$2"; shift 2
  tar --create --file "$out" --directory "$dir" --sort=name --format=posix \
    --pax-option='exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime' \
    --mtime="@$SOURCE_DATE_EPOCH" --owner=0 --group=0 --numeric-owner "$@"
}
reproducible_tar "$rootfs" "$WORK/layer.tar" etc usr

# --- 3: the image, via a throwaway loopback registry -----------------------------------------
crane_registry_start "$CRANE" "$WORK/registry.log" || die "cannot start the build registry"
scratch="127.0.0.1:$REG_PORT/openclaw-admission"
"$CRANE" append --oci-empty-base --new_layer "$WORK/layer.tar" --new_tag "$scratch:build" >/dev/null 2>"$WORK/crane.log" \
  || die "crane append failed: $(cat "$WORK/crane.log")"
label_args=()
for l in "${LABELS[@]}"; do label_args+=(--label "$l"); done
ref="$("$CRANE" mutate "$scratch:build" --tag "$scratch:$VERSION" \
  --set-platform "linux/$ARCH" --user "$USER_ID:$USER_ID" --workdir / \
  --entrypoint "$ENTRYPOINT" --cmd serve --env PATH=/usr/local/bin --exposed-ports 8443/tcp \
  "${label_args[@]}" 2>"$WORK/crane.log")" || die "crane mutate failed: $(cat "$WORK/crane.log")"
"$CRANE" pull --format oci "$ref" "$WORK/layout" 2>"$WORK/crane.log" || die "crane pull failed: $(cat "$WORK/crane.log")"
crane_registry_stop

# crane pull names the image in index.json at most by the loopback reference it was pulled
# from; the archive carries its real name instead (what `--annotate-ref` writes, with the
# chart's repository), so `podman load` and `skopeo copy oci-archive:` know it.
DIGEST="$(python3 - "$WORK/layout/index.json" "$IMAGE_REPOSITORY:$VERSION" <<'PY'
import json, sys
path, name = sys.argv[1], sys.argv[2]
index = json.load(open(path))
assert len(index["manifests"]) == 1, index
desc = index["manifests"][0]
desc["annotations"] = {"org.opencontainers.image.ref.name": name}
# ggcr copies the config's media type into the descriptor as artifactType; that field is for
# artifacts, and this is a plain image.
desc.pop("artifactType", None)
with open(path, "w") as f:
    json.dump(index, f, separators=(",", ":"), sort_keys=True)
print(index["manifests"][0]["digest"])
PY
)"
[[ "$ref" == *"@$DIGEST" ]] || die "crane pushed $ref but the layout holds $DIGEST"

# --- 4: the archive and the SBOM -------------------------------------------------------------
mkdir -p "$OUT"
find "$WORK/layout" -type d -exec chmod 0755 {} +
find "$WORK/layout" -type f -exec chmod 0644 {} +
reproducible_tar "$WORK/layout" "$ARCHIVE.partial" oci-layout index.json blobs
mv -f "$ARCHIVE.partial" "$ARCHIVE"
printf '%s\n' "$DIGEST" >"$OUT/$NAME.digest"

SBOM="$OUT/$NAME.cdx.json"
# cargo-cyclonedx writes beside Cargo.toml under the name given; move it next to the archive.
# Normal dependencies of the shipped target only: build tools and dev-dependencies are not in
# the image.
sbom_name="openclaw-admission.sbom-$$"
"$TOOLS_DIR/cargo-cyclonedx" cyclonedx --format json --spec-version 1.5 \
  --target "$TARGET" --no-build-deps --override-filename "$sbom_name" >"$WORK/sbom.log" 2>&1 \
  || { rm -f "$ROOT/$sbom_name.json"; die "cargo-cyclonedx failed: $(cat "$WORK/sbom.log")"; }
mv -f "$ROOT/$sbom_name.json" "$SBOM"

read -r layer_size unpacked_size < <(python3 - "$WORK/layout" "$DIGEST" <<'PY'
import gzip, json, os, sys
layout, digest = sys.argv[1], sys.argv[2]
blob = lambda d: os.path.join(layout, "blobs", *d.split(":"))
manifest = json.load(open(blob(digest)))
unpacked = 0
for layer in manifest["layers"]:
    with gzip.open(blob(layer["digest"])) as f:
        while chunk := f.read(1 << 20):
            unpacked += len(chunk)
print(sum(l["size"] for l in manifest["layers"]), unpacked)
PY
)
say "$IMAGE_REPOSITORY:$VERSION linux/$ARCH digest $DIGEST"
say "size: $layer_size bytes compressed (a pull), $unpacked_size bytes unpacked (on disk); binary $(stat -c %s "$BIN") bytes; archive $(stat -c %s "$ARCHIVE") bytes"
say "sbom: $SBOM ($(python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1])).get("components", [])))' "$SBOM") components)"
echo "$ARCHIVE"

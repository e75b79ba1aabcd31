#!/usr/bin/env bash
# The image through a real OCI registry and into the cluster by the chart (run by the e2e case
# image_pushed_to_a_loopback_registry_is_installed_by_the_chart, against its API server):
#
#   1. a crane registry (go-containerregistry's registry, tools/build.sh) on 127.0.0.1, random port;
#   2. the `make image` archive pushed to it, pulled back by digest: same digest, same config;
#      the config names the non-root user, the entrypoint, `serve`, and the OCI labels with the
#      chart's appVersion;
#   3. `helm install` with image.repository / image.digest pointing at that registry: the API
#      server accepts every object and stores the Deployment with exactly that image reference;
#      then `helm uninstall`.
#
# Environment:
#   KUBECONFIG      required: a disposable test cluster (the e2e suite's)
#   HELM, KUBECTL   binaries (default: tests/controlplane/build.sh --print-bin-dir)
#   IMAGE_ARCHIVE   the oci-archive (default: image/build.sh builds it, its last line)
# The registry, the release and the namespace are removed on exit, on failure too.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
CHART="$ROOT/charts/openclaw-admission"
BIN_DIR="$(bash "$ROOT/tests/controlplane/build.sh" --print-bin-dir)"
HELM="${HELM:-$BIN_DIR/helm}"
KUBECTL="${KUBECTL:-$BIN_DIR/kubectl}"
[[ -n "${KUBECONFIG:-}" ]] || { echo "registry.sh: KUBECONFIG must point at a disposable test cluster" >&2; exit 2; }
TOOLS_DIR="$(bash "$ROOT/tools/build.sh" | tail -n 1)"
CRANE="$TOOLS_DIR/crane"
ARCHIVE="${IMAGE_ARCHIVE:-$(bash "$ROOT/image/build.sh" | tail -n 1)}"
[[ -f "$ARCHIVE" ]] || { echo "registry.sh: no image archive at $ARCHIVE" >&2; exit 2; }
NS=openclaw-image-check
RELEASE=openclaw-image
K=("$KUBECTL" --request-timeout=30s)

FAILED=0
ok() { printf 'ok   %s\n' "$*"; }
fail() { printf 'FAIL %s\n' "$*" >&2; FAILED=1; }

WORK="$(mktemp -d -t openclaw-registry.XXXXXX)"
# shellcheck source=../../tools/crane-registry.sh
source "$ROOT/tools/crane-registry.sh"
cleanup() {
  "$HELM" uninstall "$RELEASE" --namespace "$NS" >/dev/null 2>&1 || true
  "${K[@]}" delete namespace "$NS" --ignore-not-found --wait=false >/dev/null 2>&1 || true
  crane_registry_stop
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- 1: the registry --------------------------------------------------------------------------
crane_registry_start "$CRANE" "$WORK/registry.log" || exit 1
REPO="127.0.0.1:$REG_PORT/openclaw/openclaw-admission"
ok "crane registry on 127.0.0.1:$REG_PORT (pid $REG_PID)"

# --- 2: push, pull back by digest, check the config ------------------------------------------
mkdir "$WORK/layout"
tar -xf "$ARCHIVE" -C "$WORK/layout"
read -r DIGEST REFNAME < <(python3 -c '
import json, sys
m = json.load(open(sys.argv[1]))["manifests"][0]
print(m["digest"], m.get("annotations", {}).get("org.opencontainers.image.ref.name", "-"))' "$WORK/layout/index.json")
APP_VERSION="$(python3 -c 'import sys, yaml; print(yaml.safe_load(open(sys.argv[1]))["appVersion"])' "$CHART/Chart.yaml")"
DEFAULT_REPO="$(python3 -c 'import sys, yaml; print(yaml.safe_load(open(sys.argv[1]))["image"]["repository"])' "$CHART/values.yaml")"
if [[ "$REFNAME" == "$DEFAULT_REPO:$APP_VERSION" ]]; then
  ok "the archive is the chart's default image $REFNAME"
else
  fail "the archive is named $REFNAME, the chart's default image is $DEFAULT_REPO:$APP_VERSION"
fi

pushed="$("$CRANE" push "$WORK/layout" "$REPO:$APP_VERSION" 2>"$WORK/crane.log")" || { cat "$WORK/crane.log" >&2; exit 1; }
if [[ "$pushed" == "$REPO@$DIGEST" ]]; then ok "pushed $pushed"; else fail "push printed $pushed, expected $REPO@$DIGEST"; fi
tag_digest="$("$CRANE" digest "$REPO:$APP_VERSION")"
if [[ "$tag_digest" == "$DIGEST" ]]; then ok "tag $APP_VERSION resolves to $DIGEST"; else fail "tag resolves to $tag_digest"; fi

"$CRANE" pull --format oci "$REPO@$DIGEST" "$WORK/pulled" 2>"$WORK/crane.log" || { cat "$WORK/crane.log" >&2; exit 1; }
pulled_digest="$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["manifests"][0]["digest"])' "$WORK/pulled/index.json")"
if [[ "$pulled_digest" == "$DIGEST" ]] && cmp -s "$WORK/layout/blobs/sha256/${DIGEST#sha256:}" "$WORK/pulled/blobs/sha256/${DIGEST#sha256:}"; then
  ok "pulled back by digest: the same manifest"
else
  fail "pulled back $pulled_digest, pushed $DIGEST"
fi
case "$(uname -m)" in x86_64) ARCH=amd64 ;; aarch64) ARCH=arm64 ;; *) ARCH="$(uname -m)" ;; esac
if "$CRANE" config "$REPO@$DIGEST" >"$WORK/config.json" && python3 - "$WORK/config.json" "$APP_VERSION" "$ARCH" <<'PY'
import json, sys
cfg, version, arch = json.load(open(sys.argv[1])), sys.argv[2], sys.argv[3]
c = cfg["config"]
labels = c.get("Labels") or {}
bad = []
def want(what, got, expected):
    print(("ok   " if got == expected else "FAIL ") + f"config {what}: {got!r}")
    if got != expected:
        bad.append(what)
want("user", c.get("User"), "65532:65532")
want("entrypoint", c.get("Entrypoint"), ["/usr/local/bin/openclaw-admission"])
want("cmd", c.get("Cmd"), ["serve"])
want("platform", f"{cfg.get('os')}/{cfg.get('architecture')}", f"linux/{arch}")
want("label version", labels.get("org.opencontainers.image.version"), version)
want("label licenses", labels.get("org.opencontainers.image.licenses"), "Apache-2.0")
want("label source", labels.get("org.opencontainers.image.source"), "https://github.com/openclaw/openclaw-admission")
sys.exit(1 if bad else 0)
PY
then :; else fail "the pulled config does not match"; fi

# --- 3: helm install from that registry -------------------------------------------------------
"${K[@]}" create namespace "$NS" >/dev/null
# A selector no pod carries: the fail-closed webhook configuration this installs must not
# affect anything else on the test API server while it exists.
ISOLATE=(--set-json 'agentSelectors=[{"matchLabels":{"openclaw.io/image-check":"never-matches"}}]')
if out="$("$HELM" install "$RELEASE" "$CHART" --namespace "$NS" "${ISOLATE[@]}" \
  --set "image.repository=$REPO" --set "image.digest=$DIGEST" 2>&1)"; then
  ok "helm install with image.repository=$REPO image.digest=$DIGEST"
  image="$("${K[@]}" get deployment --namespace "$NS" -l "app.kubernetes.io/instance=$RELEASE" \
    -o jsonpath='{.items[0].spec.template.spec.containers[0].image}')"
  if [[ "$image" == "$REPO@$DIGEST" ]]; then
    ok "the API server stored the Deployment with image $image"
  else
    fail "the stored Deployment runs '$image', expected $REPO@$DIGEST"
  fi
  # What a kubelet would pull: the reference resolves in the registry.
  if [[ "$("$CRANE" digest "$image" 2>&1)" == "$DIGEST" ]]; then
    ok "the Deployment's image reference resolves in the registry"
  else
    fail "the Deployment's image reference does not resolve in the registry"
  fi
  if out="$("$HELM" uninstall "$RELEASE" --namespace "$NS" --wait 2>&1)"; then ok "helm uninstall"; else fail "helm uninstall: $out"; fi
else
  fail "helm install: $out"
fi

if [[ "$FAILED" != 0 ]]; then echo "registry check FAILED" >&2; exit 1; fi
echo "registry check passed"

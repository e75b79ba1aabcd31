#!/usr/bin/env bash
# The demo (`make demo`): a real kube-apiserver and etcd on loopback, the webhook in front of
# them, and the two example agents. The unhardened one (shaped like the published OpenClaw
# manifests) is refused with its reasons; the hardened one is stored with what the webhook
# injected. Everything started here is stopped on exit, also on Ctrl-C.
#
# With --sandbox (`make demo-sandbox`), a second act: SIG Apps' agent-sandbox controller, built
# from the Go module proxy (tests/agent-sandbox/build.sh; about 22 minutes the first time, then
# cached), runs as its own ServiceAccount; the hardened SandboxTemplate, warm pool and claim of
# examples/agent-sandbox/ give a Pod, made by that controller through the webhook, and what was
# injected into it is printed.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"

SANDBOX=0
case "${1:-}" in
  --sandbox) SANDBOX=1 ;;
  "") ;;
  *) echo "usage: $0 [--sandbox]" >&2; exit 64 ;;
esac

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "building what is missing (control plane from the Go module proxy, then the webhook)"
bash tests/controlplane/build.sh
if [[ $SANDBOX == 1 ]]; then
  bash tests/agent-sandbox/fetch.sh >/dev/null
  CONTROLLER="$(bash tests/agent-sandbox/build.sh)"
fi
cargo build --release --quiet --bin openclaw-admission
BIN="${CARGO_TARGET_DIR:-$ROOT/target}/release/openclaw-admission"

DIR="$(mktemp -d "${TMPDIR:-/tmp}/openclaw-demo.XXXXXX")"
WEBHOOK_PID=""
CONTROLLER_PID=""
cleanup() {
  local rc=$?
  step "stopping everything the demo started"
  [[ -n "$CONTROLLER_PID" ]] && kill "$CONTROLLER_PID" 2>/dev/null && wait "$CONTROLLER_PID" 2>/dev/null || true
  [[ -n "$WEBHOOK_PID" ]] && kill "$WEBHOOK_PID" 2>/dev/null && wait "$WEBHOOK_PID" 2>/dev/null || true
  bash tests/controlplane/down.sh "$DIR/cp" || rc=1
  rm -rf "$DIR"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

step "starting etcd and kube-apiserver on loopback"
mkdir -p "$DIR/cp"
OPENCLAW_CP_OWNER_PID=$$ bash tests/controlplane/up.sh "$DIR/cp"
# shellcheck disable=SC1091
. "$DIR/cp/env"
export KUBECONFIG
K="$BIN_DIR/kubectl"
"$K" version 2>/dev/null | sed 's/^/  /'

if [[ $SANDBOX == 1 ]]; then
  # agent-sandbox's install order: its CRDs, its controller (act two), then the webhook, which
  # then watches SandboxTemplates from its start (it would otherwise find them at its next
  # discovery, and judge what comes before without them).
  step "installing agent-sandbox's CRDs (for act two)"
  CRDS="$(bash tests/agent-sandbox/fetch.sh --print-dir)/crds"
  "$K" apply -f "$CRDS" | sed 's/^/  /'
  "$K" wait --for=condition=established --timeout=30s -f "$CRDS" >/dev/null
fi

step "starting the webhook (serving certificate from \`openclaw-admission certs\`)"
CA_BUNDLE="$("$BIN" certs --out-dir "$DIR/certs" --ip 127.0.0.1 --dns localhost 2>/dev/null)"
PORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
setpriv --pdeathsig TERM -- "$BIN" serve --tls-cert "$DIR/certs/tls.crt" --tls-key "$DIR/certs/tls.key" \
  --listen "127.0.0.1:$PORT" --kubeconfig "$KUBECONFIG" >"$DIR/webhook.log" 2>&1 &
WEBHOOK_PID=$!
for _ in $(seq 1 120); do
  if curl -sf --cacert "$DIR/certs/ca.crt" "https://127.0.0.1:$PORT/readyz" >/dev/null 2>&1; then break; fi
  kill -0 "$WEBHOOK_PID" 2>/dev/null || { echo "the webhook exited:"; cat "$DIR/webhook.log"; exit 1; }
  sleep 0.25
done
echo "  webhook ready on https://127.0.0.1:$PORT (caches synced)"
if [[ $SANDBOX == 1 ]] && ! curl -sf --cacert "$DIR/certs/ca.crt" "https://127.0.0.1:$PORT/metrics" \
    | grep -q '^openclaw_admission_cache_served{kind="SandboxTemplate"} 1'; then
  echo "UNEXPECTED: the webhook does not watch SandboxTemplates"; exit 1
fi
for f in validating mutating; do
  sed -e "s|\${CA_BUNDLE}|$CA_BUNDLE|" -e "s|\${WEBHOOK_HOST}|127.0.0.1:$PORT|" "webhook-config/url/$f.yaml" | "$K" apply -f - | sed 's/^/  /'
done

# The ServiceAccount controller gives each namespace its `default` ServiceAccount, which the
# ServiceAccount admission plugin needs for pods that name none: wait for it.
for ns in openclaw-unhardened openclaw-hardened; do
  "$K" create namespace "$ns" --dry-run=client -o yaml | "$K" apply -f - >/dev/null
  for _ in $(seq 1 100); do "$K" -n "$ns" get serviceaccount default >/dev/null 2>&1 && break; sleep 0.2; done
done

step "kubectl apply -f examples/unhardened/   (writable root, root user, default ServiceAccount, a literal API key, no egress policy)"
if "$K" apply -f examples/unhardened/ 2>&1 | sed 's/^/  /'; then :; fi
if "$K" -n openclaw-unhardened get pod openclaw >/dev/null 2>&1; then
  echo "UNEXPECTED: the unhardened agent was stored"; exit 1
fi
echo "  -> refused: no pod stored"

step "kubectl apply -f examples/hardened/   (namespace, ServiceAccount, NetworkPolicy and the agent as a Deployment)"
"$K" apply -f examples/hardened/namespace.yaml -f examples/hardened/serviceaccount.yaml \
  -f examples/hardened/networkpolicy.yaml -f examples/hardened/deployment.yaml 2>&1 | sed 's/^/  /'

step "the ReplicaSet controller creates the agent's Pod, through the webhook"
POD=""
for _ in $(seq 1 100); do
  POD="$("$K" -n openclaw-hardened get pods -l agent=research -o name 2>/dev/null | head -n 1)"
  [[ -n "$POD" ]] && break
  sleep 0.2
done
[[ -n "$POD" ]] || { echo "UNEXPECTED: no Pod from the Deployment"; "$K" -n openclaw-hardened get events; exit 1; }
echo "  $POD, created by $("$K" -n openclaw-hardened get "$POD" -o jsonpath='{.metadata.ownerReferences[0].kind}/{.metadata.ownerReferences[0].name}')"

step "what the webhook injected into the controller's Pod (excerpt of kubectl get pod -o yaml)"
"$K" -n openclaw-hardened get "$POD" -o json | python3 tests/demo/excerpt.py

if [[ $SANDBOX == 0 ]]; then
  echo
  echo "demo done: one refusal with its reasons, one agent Deployment whose Pod carries what was injected"
  exit 0
fi

step "act two: agent-sandbox's controller, as system:serviceaccount:agent-sandbox-system:agent-sandbox-controller"
# Its Namespace, ServiceAccount and ClusterRoles as upstream declares them, and a kubeconfig
# with a token of that ServiceAccount: the user the webhook sees, as in a cluster.
bash tests/agent-sandbox/identity.sh "$K" "$DIR/controller.kubeconfig" 1h >/dev/null
HEALTH="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
setpriv --pdeathsig TERM -- "$CONTROLLER" --kubeconfig "$DIR/controller.kubeconfig" --extensions \
  --leader-elect=false --metrics-bind-address=0 --health-probe-bind-address="127.0.0.1:$HEALTH" \
  --zap-encoder=console >"$DIR/controller.log" 2>&1 &
CONTROLLER_PID=$!
for _ in $(seq 1 120); do
  if curl -sf "http://127.0.0.1:$HEALTH/healthz" >/dev/null 2>&1; then break; fi
  kill -0 "$CONTROLLER_PID" 2>/dev/null || { echo "the controller exited:"; cat "$DIR/controller.log"; exit 1; }
  sleep 0.25
done
echo "  agent-sandbox-controller running, its own ClusterRoles, no leader election (no kubelet here: its Pods are stored, never run)"

step "kubectl apply -f examples/agent-sandbox/   (a hardened SandboxTemplate, a warm pool of one, a claim)"
"$K" apply -f examples/agent-sandbox/namespace.yaml | sed 's/^/  /'
# The template's pod template asks for gVisor; the RuntimeClass admission plugin wants the class.
printf 'apiVersion: node.k8s.io/v1\nkind: RuntimeClass\nmetadata:\n  name: gvisor\nhandler: runsc\n' \
  | "$K" apply -f - | sed 's/^/  /'
for _ in $(seq 1 100); do "$K" -n openclaw-sandbox get serviceaccount default >/dev/null 2>&1 && break; sleep 0.2; done
"$K" apply -f examples/agent-sandbox/sandboxtemplate.yaml | sed 's/^/  /'
# The webhook judges a pool and a claim against the template, which it learns by watch a moment
# after it is stored: until then the claim is warned of a missing template, so try again.
out=""
for _ in $(seq 1 40); do
  out="$("$K" apply -f examples/agent-sandbox/warmpool-and-claim.yaml 2>&1)" || true
  grep -q 'does not exist' <<<"$out" || break
  sleep 0.25
done
sed 's/^/  /' <<<"$out"

step "the controller makes the pool's Sandbox and the claim's, and their Pods, through the webhook"
# Without a kubelet no warm Sandbox reports an IP, so after 2 s the claim gets a Sandbox of its
# own from the template (agent-sandbox's cold start), named after the claim.
SB=""
for _ in $(seq 1 150); do
  SB="$("$K" -n openclaw-sandbox get sandboxclaim research -o jsonpath='{.status.sandbox.name}' 2>/dev/null || true)"
  [[ -n "$SB" ]] && "$K" -n openclaw-sandbox get pod "$SB" >/dev/null 2>&1 && break
  sleep 0.2
done
"$K" -n openclaw-sandbox get sandboxes,pods 2>/dev/null | sed 's/^/  /'
if [[ -z "$SB" ]] || ! "$K" -n openclaw-sandbox get pod "$SB" >/dev/null 2>&1; then
  echo "UNEXPECTED: the claim got no Pod; the controller's log:"; tail -n 30 "$DIR/controller.log"; exit 1
fi
echo "  claim research -> Sandbox $SB -> pod/$SB, created by $("$K" -n openclaw-sandbox get pod "$SB" -o jsonpath='{.metadata.ownerReferences[0].kind}/{.metadata.ownerReferences[0].name}')"

step "what the webhook injected into the controller's Pod (excerpt of kubectl get pod -o yaml)"
"$K" -n openclaw-sandbox get pod "$SB" -o json | python3 tests/demo/excerpt.py
if [[ -z "$("$K" -n openclaw-sandbox get pod "$SB" -o jsonpath='{.metadata.annotations.openclaw\.io/injected}')" ]]; then
  echo "UNEXPECTED: the webhook injected nothing into the controller's Pod"; exit 1
fi
echo
echo "demo done: one refusal with its reasons, one agent Deployment and one agent-sandbox claim whose Pods carry what was injected"

#!/usr/bin/env bash
# Gives agent-sandbox's controller the identity its own manifests give it in a cluster, on the
# cluster of $KUBECONFIG (an admin's): the Namespace agent-sandbox-system, the ServiceAccount
# agent-sandbox-controller there, and its ClusterRoles and ClusterRoleBindings (core and
# extensions), all as upstream declares them (tests/agent-sandbox/fetch.sh's rbac/); then mints
# a token for that ServiceAccount (`kubectl create token`, TokenRequest) and writes OUT, a
# kubeconfig with the same server and CA as $KUBECONFIG and that token, mode 0600.
#
# A controller run with OUT authenticates as
# system:serviceaccount:agent-sandbox-system:agent-sandbox-controller, the user the webhook
# sees in a cluster where the controller runs in its Deployment, and is allowed what its
# ClusterRoles allow, no more. The token is never printed.
#
# Usage: KUBECONFIG=admin.kubeconfig tests/agent-sandbox/identity.sh KUBECTL OUT [DURATION]
#   DURATION: the token's lifetime (default 1h; the e2e suite asks for its longest run).
set -euo pipefail

[[ $# -eq 2 || $# -eq 3 ]] || { echo "usage: KUBECONFIG=... $0 KUBECTL OUT [DURATION]" >&2; exit 64; }
K="$1"
OUT="$2"
DURATION="${3:-1h}"
[[ -n "${KUBECONFIG:-}" ]] || { echo "identity.sh: KUBECONFIG (an admin's) is not set" >&2; exit 64; }
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
NS=agent-sandbox-system
SA=agent-sandbox-controller

DIR="$(bash "$HERE/fetch.sh" --print-dir)"
[[ -e "$DIR/rbac/identity.yaml" ]] || { echo "identity.sh: agent-sandbox's RBAC is not fetched: run \`make agent-sandbox\`" >&2; exit 2; }

# Namespace first (identity.yaml lists it before the ServiceAccount), then roles and bindings.
"$K" apply -f "$DIR/rbac/identity.yaml" -f "$DIR/rbac/rbac.generated.yaml" \
  -f "$DIR/rbac/extensions-rbac.generated.yaml" >/dev/null

server="$("$K" config view --raw --minify -o jsonpath='{.clusters[0].cluster.server}')"
ca="$("$K" config view --raw --minify -o jsonpath='{.clusters[0].cluster.certificate-authority-data}')"
[[ -n "$server" && -n "$ca" ]] || {
  echo "identity.sh: $KUBECONFIG names no server with certificate-authority-data" >&2; exit 1; }
token="$("$K" -n "$NS" create token "$SA" --duration="$DURATION")"
[[ -n "$token" ]] || { echo "identity.sh: kubectl create token gave no token" >&2; exit 1; }

# Written by the shell, not by `kubectl config set-credentials --token`, so that the token is
# on no command line.
umask 077
tmp="$OUT.partial.$$"
cat >"$tmp" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: cluster
  cluster:
    server: $server
    certificate-authority-data: $ca
users:
- name: system:serviceaccount:$NS:$SA
  user:
    token: $token
contexts:
- name: $SA
  context: {cluster: cluster, user: "system:serviceaccount:$NS:$SA"}
current-context: $SA
EOF
mv -f "$tmp" "$OUT"

# The API server's own word on who OUT is.
who="$("$K" --kubeconfig "$OUT" auth whoami -o jsonpath='{.status.userInfo.username}')"
[[ "$who" == "system:serviceaccount:$NS:$SA" ]] || {
  echo "identity.sh: $OUT authenticates as '$who', not system:serviceaccount:$NS:$SA" >&2; exit 1; }
echo "$OUT"

#!/usr/bin/env bash
# Starts a real, kubelet-less Kubernetes control plane on loopback: etcd,
# kube-apiserver (RBAC, admission webhooks, audit log) and kube-controller-manager
# (so workloads get their Pods from controllers, through admission, as in a real
# cluster), with state in DIR. One Node object is registered (no kubelet behind
# it) so the DaemonSet controller has somewhere to place Pods.
#
#   tests/controlplane/up.sh DIR      # returns once /readyz is ok
#   KUBECONFIG=DIR/kubeconfig kubectl get ns
#   tests/controlplane/down.sh DIR
#
# Writes DIR/kubeconfig (admin, O=system:masters), DIR/env (sourceable: ports,
# pids, paths), DIR/pki/ (CA cert+key, so a harness can sign a webhook serving
# cert), DIR/apiserver.log, DIR/controller-manager.log, DIR/etcd.log,
# DIR/audit.log, DIR/keeper.log.
#
# Ports are picked at random below the kernel's ephemeral range. etcd must answer before
# kube-apiserver starts; a start in which a process exits (a port taken after it was probed,
# say) is retried on new ports, up to three attempts, each failure's logs printed.
#
# Lifetime: a small keeper process owns the three processes; each runs under
# `setpriv --pdeathsig KILL`, so they die with the keeper whatever happens to it.
# The keeper stops everything when down.sh asks, when either process exits, or
# when the owner process exits: $OPENCLAW_CP_OWNER_PID, by default the process
# that ran up.sh (careful: inside $(...) that is a short-lived subshell);
# OPENCLAW_CP_OWNER_PID=1 keeps it until down.sh.
# OPENCLAW_CP_APISERVER_ARGS="--flag=v ..." appends kube-apiserver flags.
#
# OPENCLAW_CP_CONTROLLERS overrides kube-controller-manager's --controllers.
#
# OPENCLAW_CP_WEBHOOK_HOSTS="127.0.0.1:8443 ..." makes kube-apiserver present a client
# certificate to the webhooks at those hosts (host or host:port, as in their clientConfig):
# a client CA of its own and a certificate it signs go to DIR/pki/webhook-client-ca.crt and
# DIR/pki/webhook-client.{crt,key}; DIR/admission-config.yaml (AdmissionConfiguration) points
# both webhook admission plugins at DIR/webhook-admission.yaml (WebhookAdmissionConfiguration),
# whose kubeconfig DIR/webhook-client.kubeconfig names one user per host. A webhook started
# with `serve --client-ca-file DIR/pki/webhook-client-ca.crt` then answers this API server only.
#
# tests/controlplane/apiserver.sh DIR stop|start stops kube-apiserver alone (etcd
# and the controller manager keep running) and starts it again with the same
# flags and port, for tests of clients that lose the API server for a while.
#
# The ServiceAccount controller gives every namespace its `default`
# ServiceAccount a moment after the namespace is created; a harness that creates
# a Pod using it right away should wait for it (kubectl wait or a GET loop).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
[[ $# -eq 1 ]] || { echo "usage: $0 DIR" >&2; exit 64; }
mkdir -p "$1"
DIR="$(cd "$1" && pwd)"
OWNER_PID="${OPENCLAW_CP_OWNER_PID:-$PPID}"
READY_TIMEOUT="${OPENCLAW_CP_READY_TIMEOUT:-120}"

if [[ -f "$DIR/env" ]] && grep -q '^KEEPER_PID=' "$DIR/env"; then
  # shellcheck disable=SC1091
  prev="$(. "$DIR/env"; echo "${KEEPER_PID:-}")"
  if [[ -n "$prev" ]] && kill -0 "$prev" 2>/dev/null; then
    echo "up.sh: a control plane already runs in $DIR (keeper pid $prev); run down.sh first" >&2
    exit 1
  fi
fi
for tool in openssl curl; do
  command -v "$tool" >/dev/null || { echo "up.sh: '$tool' is required" >&2; exit 2; }
done

BIN_DIR="$("$HERE/build.sh" --print-bin-dir)"
for b in etcd kube-apiserver kube-controller-manager kubectl; do
  [[ -x "$BIN_DIR/$b" ]] || { "$HERE/build.sh" >&2; break; }
done

PDEATH=()
if command -v setpriv >/dev/null && setpriv --pdeathsig KILL -- true 2>/dev/null; then
  PDEATH=(setpriv --pdeathsig KILL --)
else
  echo "up.sh: warning: no 'setpriv --pdeathsig'; children will not die with the keeper if it is SIGKILLed" >&2
fi

log() { echo "up.sh: $*" >&2; }

# --- ports -------------------------------------------------------------------
port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
declare -A TAKEN=()
# Ports come from below the kernel's ephemeral range: a port above it can be the local end of
# some client's connection, which a connect probe does not see and which makes bind fail
# ("address already in use") a moment later.
EPHEMERAL_LOW="$(awk '{print $1}' /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || echo 32768)"
(( EPHEMERAL_LOW > 12000 )) || EPHEMERAL_LOW=32768
# Sets PORT. Not `$(free_port)`: a command substitution is a subshell, whose TAKEN is lost,
# and the four ports of one start could then be the same port twice.
free_port() {
  local p i
  for i in $(seq 1 200); do
    p=$(( 10000 + (RANDOM * 32768 + RANDOM) % (EPHEMERAL_LOW - 10000) ))
    [[ -z "${TAKEN[$p]:-}" ]] || continue
    if ! port_in_use "$p"; then TAKEN[$p]=1; PORT=$p; return 0; fi
  done
  echo "up.sh: no free port found" >&2; return 1
}
# Each start attempt (see the end) takes four ports no earlier attempt took.
pick_ports() {
  free_port; ETCD_PORT=$PORT
  free_port; ETCD_PEER_PORT=$PORT
  free_port; APISERVER_PORT=$PORT
  free_port; KCM_PORT=$PORT
}

# --- certificates ----------------------------------------------------------------
PKI="$DIR/pki"
rm -rf "$PKI" "$DIR/etcd-data"
mkdir -p "$PKI"
: >"$DIR/audit.log"
SERVICE_CIDR=10.0.0.0/24   # first address (10.0.0.1) is the `kubernetes` Service
(
  cd "$PKI"
  umask 077
  eckey() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }
  serial() { echo "0x$(openssl rand -hex 16)"; }
  sign() { # name subject extensions...
    local name="$1" subj="$2"; shift 2
    eckey "$name.key"
    openssl req -new -key "$name.key" -subj "$subj" -out "$name.csr" 2>/dev/null
    printf '%s\n' "basicConstraints=critical,CA:FALSE" "keyUsage=critical,digitalSignature" "$@" >"$name.ext"
    openssl x509 -req -in "$name.csr" -CA ca.crt -CAkey ca.key -set_serial "$(serial)" \
      -days 365 -sha256 -extfile "$name.ext" -out "$name.crt" 2>/dev/null
    rm -f "$name.csr" "$name.ext"
  }
  eckey ca.key
  openssl req -x509 -new -key ca.key -subj "/CN=openclaw-admission-test-ca" -days 3650 -sha256 \
    -set_serial "$(serial)" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
    -out ca.crt 2>/dev/null
  sign apiserver "/CN=kube-apiserver" "extendedKeyUsage=serverAuth" \
    "subjectAltName=IP:127.0.0.1,DNS:localhost,IP:10.0.0.1,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local"
  sign admin "/O=system:masters/CN=openclaw-admin" "extendedKeyUsage=clientAuth"
  # The identity the bootstrap RBAC policy grants kube-controller-manager.
  sign controller-manager "/CN=system:kube-controller-manager" "extendedKeyUsage=clientAuth"
  if [[ -n "${OPENCLAW_CP_WEBHOOK_HOSTS:-}" ]]; then
    # A CA for webhook clients alone: the webhook must not take the admin's or the controller
    # manager's certificate (signed by ca.crt) for the API server's.
    eckey webhook-client-ca.key
    openssl req -x509 -new -key webhook-client-ca.key -subj "/CN=openclaw-admission-test-webhook-client-ca" \
      -days 3650 -sha256 -set_serial "$(serial)" \
      -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
      -out webhook-client-ca.crt 2>/dev/null
    eckey webhook-client.key
    openssl req -new -key webhook-client.key -subj "/CN=kube-apiserver-webhook-client" -out webhook-client.csr 2>/dev/null
    printf '%s\n' "basicConstraints=critical,CA:FALSE" "keyUsage=critical,digitalSignature" \
      "extendedKeyUsage=clientAuth" "subjectAltName=DNS:kube-apiserver-webhook-client" >webhook-client.ext
    openssl x509 -req -in webhook-client.csr -CA webhook-client-ca.crt -CAkey webhook-client-ca.key \
      -set_serial "$(serial)" -days 365 -sha256 -extfile webhook-client.ext -out webhook-client.crt 2>/dev/null
    rm -f webhook-client.csr webhook-client.ext
  fi
  # ServiceAccount token signing key (RS256).
  openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out sa.key 2>/dev/null
  openssl pkey -in sa.key -pubout -out sa.pub 2>/dev/null
  chmod 644 ./*.crt sa.pub
)

# --- audit policy ------------------------------------------------------------------
cat >"$DIR/audit-policy.yaml" <<'EOF'
apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: ["RequestReceived"]
rules:
  # The API server's own informers watch pods constantly: noise.
  - level: None
    users: ["system:apiserver"]
  # Pods (and their subresources) at Metadata: admission webhooks' audit
  # annotations and warnings land in these events.
  - level: Metadata
    resources:
      - group: ""
        resources: ["pods", "pods/*"]
  - level: None
EOF

# --- client certificate for webhooks --------------------------------------------------------
ADMISSION_ARGS=()
if [[ -n "${OPENCLAW_CP_WEBHOOK_HOSTS:-}" ]]; then
  {
    echo "# Written by tests/controlplane/up.sh: the client certificate kube-apiserver presents to"
    echo "# each webhook whose clientConfig host (and port) is a user's name."
    echo "apiVersion: v1"
    echo "kind: Config"
    echo "users:"
    for host in $OPENCLAW_CP_WEBHOOK_HOSTS; do
      echo "  - name: \"$host\""
      echo "    user:"
      echo "      client-certificate: $PKI/webhook-client.crt"
      echo "      client-key: $PKI/webhook-client.key"
    done
  } >"$DIR/webhook-client.kubeconfig"
  cat >"$DIR/webhook-admission.yaml" <<EOF
apiVersion: apiserver.config.k8s.io/v1
kind: WebhookAdmissionConfiguration
# Must be absolute.
kubeConfigFile: $DIR/webhook-client.kubeconfig
EOF
  cat >"$DIR/admission-config.yaml" <<EOF
apiVersion: apiserver.config.k8s.io/v1
kind: AdmissionConfiguration
plugins:
  - name: ValidatingAdmissionWebhook
    path: $DIR/webhook-admission.yaml
  - name: MutatingAdmissionWebhook
    path: $DIR/webhook-admission.yaml
EOF
  ADMISSION_ARGS=(--admission-control-config-file="$DIR/admission-config.yaml")
  WEBHOOK_CLIENT_CA="$PKI/webhook-client-ca.crt"
  WEBHOOK_CLIENT_CERT="$PKI/webhook-client.crt"
  WEBHOOK_CLIENT_KEY="$PKI/webhook-client.key"
else
  WEBHOOK_CLIENT_CA="" WEBHOOK_CLIENT_CERT="" WEBHOOK_CLIENT_KEY=""
fi

# --- process arguments ---------------------------------------------------------------
# Built for each start attempt: they name its ports.
set_args() {
  ETCD_ARGS=(
    --name=openclaw
    --data-dir="$DIR/etcd-data"
    --listen-client-urls="http://127.0.0.1:$ETCD_PORT"
    --advertise-client-urls="http://127.0.0.1:$ETCD_PORT"
    --listen-peer-urls="http://127.0.0.1:$ETCD_PEER_PORT"
    --initial-advertise-peer-urls="http://127.0.0.1:$ETCD_PEER_PORT"
    --initial-cluster="openclaw=http://127.0.0.1:$ETCD_PEER_PORT"
    --initial-cluster-state=new
    --unsafe-no-fsync
    --log-level=warn
  )
  APISERVER_ARGS=(
    --etcd-servers="http://127.0.0.1:$ETCD_PORT"
    --bind-address=127.0.0.1
    --advertise-address=127.0.0.1
    --secure-port="$APISERVER_PORT"
    --tls-cert-file="$PKI/apiserver.crt"
    --tls-private-key-file="$PKI/apiserver.key"
    --client-ca-file="$PKI/ca.crt"
    --authorization-mode=RBAC
    --enable-admission-plugins=MutatingAdmissionWebhook,ValidatingAdmissionWebhook
    --allow-privileged=true
    --service-account-issuer=https://kubernetes.default.svc.cluster.local
    --service-account-key-file="$PKI/sa.pub"
    --service-account-signing-key-file="$PKI/sa.key"
    --service-cluster-ip-range="$SERVICE_CIDR"
    --endpoint-reconciler-type=none
    --audit-policy-file="$DIR/audit-policy.yaml"
    --audit-log-path="$DIR/audit.log"
    --audit-log-mode=blocking
    --audit-log-maxsize=0
    --profiling=false
    "${ADMISSION_ARGS[@]}"
  )
  # Extra flags for a test that needs them (later flags win), space-separated.
  read -r -a EXTRA <<<"${OPENCLAW_CP_APISERVER_ARGS:-}"
  APISERVER_ARGS+=("${EXTRA[@]}")
  KCM_ARGS=(
    --kubeconfig="$DIR/controller-manager.kubeconfig"
    --authentication-kubeconfig="$DIR/controller-manager.kubeconfig"
    --authorization-kubeconfig="$DIR/controller-manager.kubeconfig"
    --bind-address=127.0.0.1
    --secure-port="$KCM_PORT"
    # One instance: no lease to wait for at start.
    --leader-elect=false
    # Each controller acts as its own ServiceAccount (as kubeadm sets it up), so the
    # requests a webhook sees name the controller that made the Pod.
    --use-service-account-credentials=true
    --service-account-private-key-file="$PKI/sa.key"
    --root-ca-file="$PKI/ca.crt"
    --cluster-signing-cert-file="$PKI/ca.crt"
    --cluster-signing-key-file="$PKI/ca.key"
    # No kubelet reports for the registered Node: the lifecycle controller would mark it
    # unreachable and taint it, and there is no cloud to allocate CIDRs from.
    --controllers="${OPENCLAW_CP_CONTROLLERS:-*,-nodelifecycle,-node-ipam-controller,-taint-eviction-controller}"
    --profiling=false
  )
}

# --- keeper ----------------------------------------------------------------------------
keeper() {
  local etcd_pid="" api_pid="" kcm_pid="" why="" api_stopped=""
  stop() {
    local pid i
    trap - TERM INT HUP
    echo "keeper: stopping ($why)"
    for pid in $kcm_pid $api_pid $etcd_pid; do
      kill -TERM "$pid" 2>/dev/null || continue
      for i in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -KILL "$pid" 2>/dev/null && echo "keeper: pid $pid needed SIGKILL"
      wait "$pid" 2>/dev/null || true
    done
    echo "keeper: stopped"
    exit 0
  }
  # SIGUSR1 (apiserver.sh stop): kube-apiserver alone stops; SIGUSR2 (apiserver.sh start):
  # it starts again, same flags, same port, its log appended, its pid in DIR/env. The traps
  # only note the request (bash runs no trap while another one runs); the loop below acts.
  local want_api=""
  stop_apiserver() {
    local i
    echo "keeper: stopping kube-apiserver (pid $api_pid) on request"
    kill -TERM "$api_pid" 2>/dev/null || true
    for i in $(seq 1 30); do kill -0 "$api_pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$api_pid" 2>/dev/null && echo "keeper: pid $api_pid needed SIGKILL"
    wait "$api_pid" 2>/dev/null || true
    api_stopped=1
    echo "stopped" >"$DIR/.apiserver-state"
    echo "keeper: kube-apiserver stopped"
  }
  start_apiserver() {
    "${PDEATH[@]}" "$BIN_DIR/kube-apiserver" "${APISERVER_ARGS[@]}" </dev/null >>"$DIR/apiserver.log" 2>&1 &
    api_pid=$!
    api_stopped=""
    sed -i -e "s/^APISERVER_PID=.*/APISERVER_PID=$api_pid/" \
      -e "s/^APISERVER_START=.*/APISERVER_START=$(sed 's/^.*) //' "/proc/$api_pid/stat" | awk '{print $20}')/" "$DIR/env"
    echo "running $api_pid" >"$DIR/.apiserver-state"
    echo "keeper: kube-apiserver started again (pid $api_pid)"
  }
  trap 'why="signal"; stop' TERM INT HUP
  trap 'want_api=stop' USR1
  trap 'want_api=start' USR2
  "${PDEATH[@]}" "$BIN_DIR/etcd" "${ETCD_ARGS[@]}" </dev/null >"$DIR/etcd.log" 2>&1 &
  etcd_pid=$!
  # kube-apiserver starts once etcd answers, so that an etcd that cannot start (say its port
  # was taken between the probe and its bind) shows as etcd's exit, with etcd's words in
  # etcd.log, and not as an API server that retries a closed port until the timeout.
  local waited=0
  until [[ "$(curl -sS --max-time 2 "http://127.0.0.1:$ETCD_PORT/health" 2>/dev/null || true)" == *'"health":"true"'* ]]; do
    kill -0 "$etcd_pid" 2>/dev/null || { why="etcd exited during startup"; stop; }
    (( waited++ < 600 )) || { why="etcd not healthy after 60s"; stop; }
    sleep 0.1
  done
  "${PDEATH[@]}" "$BIN_DIR/kube-apiserver" "${APISERVER_ARGS[@]}" </dev/null >"$DIR/apiserver.log" 2>&1 &
  api_pid=$!
  # The controller manager gives up if the API server is not there within its own
  # timeout: start it once /readyz answers (bash execs it, keeping pid and pdeathsig).
  "${PDEATH[@]}" bash -c 'until [[ "$(curl -sS --max-time 2 --cacert "$1" "$2/readyz" 2>/dev/null)" == ok ]]; do sleep 0.3; done; shift 2; exec "$@"' \
    _ "$PKI/ca.crt" "https://127.0.0.1:$APISERVER_PORT" "$BIN_DIR/kube-controller-manager" "${KCM_ARGS[@]}" \
    </dev/null >"$DIR/controller-manager.log" 2>&1 &
  kcm_pid=$!
  echo "$etcd_pid $api_pid $kcm_pid" >"$DIR/.pids.tmp" && mv "$DIR/.pids.tmp" "$DIR/.pids"
  echo "keeper: etcd pid $etcd_pid, kube-apiserver pid $api_pid, kube-controller-manager pid $kcm_pid, owner pid $OWNER_PID"
  while true; do
    kill -0 "$OWNER_PID" 2>/dev/null || { why="owner pid $OWNER_PID exited"; stop; }
    kill -0 "$etcd_pid" 2>/dev/null || { why="etcd exited"; stop; }
    case "$want_api" in
      stop) want_api=""; [[ -n "$api_stopped" ]] || stop_apiserver ;;
      start) want_api=""; [[ -z "$api_stopped" ]] || start_apiserver ;;
    esac
    [[ -n "$api_stopped" ]] || kill -0 "$api_pid" 2>/dev/null || { why="kube-apiserver exited"; stop; }
    kill -0 "$kcm_pid" 2>/dev/null || { why="kube-controller-manager exited"; stop; }
    sleep 1 & wait $! || true
  done
}

b64() { base64 <"$1" | tr -d '\n'; }
kubeconfig() { # user-cert-name out-file
  cat >"$2" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: openclaw
  cluster:
    server: https://127.0.0.1:$APISERVER_PORT
    certificate-authority-data: $(b64 "$PKI/ca.crt")
users:
- name: $1
  user:
    client-certificate-data: $(b64 "$PKI/$1.crt")
    client-key-data: $(b64 "$PKI/$1.key")
contexts:
- name: openclaw
  context: {cluster: openclaw, user: $1}
current-context: openclaw
EOF
}
# Start times let down.sh tell our processes from a later one reusing the pid.
starttime() { [[ -z "$1" ]] || sed 's/^.*) //' "/proc/$1/stat" 2>/dev/null | awk '{print $20}'; }

write_env() {
  cat >"$DIR/env" <<EOF
# Written by tests/controlplane/up.sh; source it.
OPENCLAW_CP_DIR='$DIR'
BIN_DIR='$BIN_DIR'
KUBECONFIG='$DIR/kubeconfig'
APISERVER_URL='https://127.0.0.1:$APISERVER_PORT'
APISERVER_PORT=$APISERVER_PORT
KCM_PORT=$KCM_PORT
ETCD_PORT=$ETCD_PORT
ETCD_PEER_PORT=$ETCD_PEER_PORT
CA_CERT='$PKI/ca.crt'
CA_KEY='$PKI/ca.key'
AUDIT_LOG='$DIR/audit.log'
WEBHOOK_CLIENT_CA='$WEBHOOK_CLIENT_CA'
WEBHOOK_CLIENT_CERT='$WEBHOOK_CLIENT_CERT'
WEBHOOK_CLIENT_KEY='$WEBHOOK_CLIENT_KEY'
APISERVER_LOG='$DIR/apiserver.log'
CONTROLLER_MANAGER_LOG='$DIR/controller-manager.log'
KEEPER_PID=$KEEPER_PID
KCM_PID=$KCM_PID
ETCD_PID=$ETCD_PID
APISERVER_PID=$APISERVER_PID
KEEPER_START=$(starttime "$KEEPER_PID")
ETCD_START=$(starttime "$ETCD_PID")
APISERVER_START=$(starttime "$APISERVER_PID")
KCM_START=$(starttime "$KCM_PID")
EOF
}

# What went wrong, with each process's last words. The reason comes last, as the line a
# reader of a CI log (often shown its end alone) sees first; kube-apiserver's retries of a
# closed etcd port, one line each, are counted instead of shown.
tails() {
  local closed
  log "--- tail of $DIR/apiserver.log"
  closed="$(grep -c 'createTransport failed to connect' "$DIR/apiserver.log" 2>/dev/null || true)"
  grep -v 'createTransport failed to connect' "$DIR/apiserver.log" 2>/dev/null | tail -n 25 >&2 || true
  [[ "${closed:-0}" == 0 ]] || log "($closed lines of kube-apiserver failing to reach etcd at 127.0.0.1:$ETCD_PORT left out)"
  log "--- tail of $DIR/controller-manager.log"; tail -n 15 "$DIR/controller-manager.log" >&2 2>/dev/null || true
  log "--- tail of $DIR/etcd.log"; tail -n 15 "$DIR/etcd.log" >&2 2>/dev/null || true
  log "--- $DIR/keeper.log"; tail -n 10 "$DIR/keeper.log" >&2 2>/dev/null || true
}
fail() {
  tails
  "$HERE/down.sh" "$DIR" >&2 || true
  log "FAILED: $*"
  exit 1
}

CURL=(curl -sS --max-time 5 --cacert "$PKI/ca.crt" --cert "$PKI/admin.crt" --key "$PKI/admin.key")
# Up to three attempts, each on four new ports: a port found free can be taken by another
# process before etcd or kube-apiserver binds it, and a process that exits during startup
# is retried (its logs shown) rather than failing the whole run. A start that hangs is not:
# READY_TIMEOUT covers all attempts together.
START=$SECONDS
ATTEMPTS=3
attempt=1
while true; do
  pick_ports
  set_args
  umask_old="$(umask)"; umask 077
  kubeconfig admin "$DIR/kubeconfig"
  kubeconfig controller-manager "$DIR/controller-manager.kubeconfig"
  umask "$umask_old"
  rm -rf "$DIR/etcd-data" "$DIR/.pids" "$DIR/.pids.tmp"
  keeper </dev/null >"$DIR/keeper.log" 2>&1 &
  KEEPER_PID=$!
  ETCD_PID="" APISERVER_PID="" KCM_PID=""
  # The keeper alone until it has started the three (down.sh stops it, and it them).
  write_env
  outcome=timeout
  while (( SECONDS - START < READY_TIMEOUT )); do
    if [[ -z "$ETCD_PID" && -s "$DIR/.pids" ]]; then
      read -r ETCD_PID APISERVER_PID KCM_PID <"$DIR/.pids"
      rm -f "$DIR/.pids"
      write_env
    fi
    kill -0 "$KEEPER_PID" 2>/dev/null || { outcome=exited; break; }
    if [[ -n "$ETCD_PID" && "$("${CURL[@]}" "https://127.0.0.1:$APISERVER_PORT/readyz" 2>/dev/null || true)" == ok ]]; then
      outcome=ready; break
    fi
    sleep 0.3
  done
  [[ "$outcome" != ready ]] || break
  why="$(sed -n 's/^keeper: stopping (\(.*\))$/\1/p' "$DIR/keeper.log" 2>/dev/null | tail -n 1)"
  [[ "$outcome" == exited ]] || fail "kube-apiserver not ready after ${READY_TIMEOUT}s"
  (( attempt < ATTEMPTS )) || fail "the control plane exited during startup, $ATTEMPTS times; last: ${why:-see $DIR/keeper.log}"
  tails
  log "attempt $attempt of $ATTEMPTS: the control plane exited during startup (${why:-see $DIR/keeper.log}); trying again on other ports"
  "$HERE/down.sh" "$DIR" >&2 || true
  attempt=$(( attempt + 1 ))
done
READY_SECS=$(( SECONDS - START ))

KUBECTL=("$BIN_DIR/kubectl" --kubeconfig "$DIR/kubeconfig")
# One Node for the DaemonSet controller to place Pods on; no kubelet answers for it.
"${KUBECTL[@]}" apply -f - >/dev/null <<'NODE' || fail "could not register the Node"
apiVersion: v1
kind: Node
metadata:
  name: openclaw-node-0
  labels: {kubernetes.io/hostname: openclaw-node-0, kubernetes.io/os: linux}
NODE
# The API server taints a new Node not-ready (TaintNodesByCondition), which DaemonSet Pods
# do not tolerate for NoSchedule; no kubelet will ever report it ready, and the lifecycle
# controller that would taint it again is off.
"${KUBECTL[@]}" taint node openclaw-node-0 node.kubernetes.io/not-ready:NoSchedule- >/dev/null 2>&1 || true
# The controllers are up once the ServiceAccount controller has made default/default.
ctl=""
while (( SECONDS - START < READY_TIMEOUT )); do
  kill -0 "$KEEPER_PID" 2>/dev/null || fail "the control plane exited during startup (see $DIR/keeper.log)"
  if "${KUBECTL[@]}" -n default get serviceaccount default >/dev/null 2>&1; then ctl=1; break; fi
  sleep 0.3
done
[[ -n "$ctl" ]] || fail "kube-controller-manager made no default ServiceAccount within ${READY_TIMEOUT}s"

VERSION="$("${CURL[@]}" "https://127.0.0.1:$APISERVER_PORT/version" | sed -n 's/.*"gitVersion": *"\([^"]*\)".*/\1/p')"
echo "READY_SECS=$READY_SECS" >>"$DIR/env"
log "kube-apiserver $VERSION ready at https://127.0.0.1:$APISERVER_PORT in ${READY_SECS}s (etcd 127.0.0.1:$ETCD_PORT), controllers up in $(( SECONDS - START ))s"
log "export KUBECONFIG=$DIR/kubeconfig   # stop with: $HERE/down.sh $DIR"

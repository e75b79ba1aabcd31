#!/usr/bin/env bash
# Stops or starts kube-apiserver alone in a control plane that `up.sh DIR` started; etcd and
# kube-controller-manager keep running. For tests of clients that lose the API server for a
# while (the webhook's caches and watches).
#
#   tests/controlplane/apiserver.sh DIR stop    # returns once its port is closed
#   tests/controlplane/apiserver.sh DIR start   # returns once /readyz is ok again
#
# The keeper does the work (SIGUSR1 stops, SIGUSR2 starts, with the flags and port up.sh
# chose) and keeps owning the process, so down.sh still stops everything. Stopping is
# SIGTERM, then SIGKILL after 3 s: the port closes at once either way.
set -euo pipefail

[[ $# -eq 2 && ( "$2" == stop || "$2" == start ) ]] || { echo "usage: $0 DIR stop|start" >&2; exit 64; }
DIR="$(cd "$1" && pwd)"
[[ -f "$DIR/env" ]] || { echo "apiserver.sh: $DIR/env not found; run up.sh first" >&2; exit 1; }
KEEPER_PID="" APISERVER_PORT="" CA_CERT=""
# shellcheck disable=SC1091
. "$DIR/env"
kill -0 "$KEEPER_PID" 2>/dev/null || { echo "apiserver.sh: no keeper (pid $KEEPER_PID) runs for $DIR" >&2; exit 1; }
TIMEOUT="${OPENCLAW_CP_READY_TIMEOUT:-120}"
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$APISERVER_PORT") 2>/dev/null; }

START=$SECONDS
STATE="$DIR/.apiserver-state"
rm -f "$STATE"
if [[ "$2" == stop ]]; then
  kill -USR1 "$KEEPER_PID"
  # The keeper writes `stopped` once the process is gone (SIGTERM, SIGKILL after 3 s).
  until [[ "$(cat "$STATE" 2>/dev/null)" == stopped ]] && ! port_open; do
    kill -0 "$KEEPER_PID" 2>/dev/null || { echo "apiserver.sh: the control plane stopped (see $DIR/keeper.log)" >&2; exit 1; }
    (( SECONDS - START < TIMEOUT )) || { echo "apiserver.sh: kube-apiserver not stopped after ${TIMEOUT}s" >&2; exit 1; }
    sleep 0.1
  done
  echo "apiserver.sh: kube-apiserver stopped in $(( SECONDS - START ))s (etcd and the controllers still run)"
else
  kill -USR2 "$KEEPER_PID"
  until [[ "$(curl -sS --max-time 2 --cacert "$CA_CERT" --cert "$DIR/pki/admin.crt" --key "$DIR/pki/admin.key" \
      "https://127.0.0.1:$APISERVER_PORT/readyz" 2>/dev/null || true)" == ok ]]; do
    kill -0 "$KEEPER_PID" 2>/dev/null || { echo "apiserver.sh: the control plane stopped (see $DIR/keeper.log)" >&2; exit 1; }
    (( SECONDS - START < TIMEOUT )) || { echo "apiserver.sh: kube-apiserver not ready after ${TIMEOUT}s" >&2; exit 1; }
    sleep 0.3
  done
  echo "apiserver.sh: kube-apiserver ready again in $(( SECONDS - START ))s"
fi

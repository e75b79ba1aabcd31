#!/usr/bin/env bash
# Stops the control plane that `up.sh DIR` started and checks that nothing is
# left: no process of it and no listening port. Exits 1 if something remains.
# Safe to run twice. Keeps DIR (logs, audit log) for inspection.
set -euo pipefail

[[ $# -eq 1 ]] || { echo "usage: $0 DIR" >&2; exit 64; }
[[ -d "$1" ]] || { echo "down.sh: no such directory $1" >&2; exit 1; }
DIR="$(cd "$1" && pwd)"
if [[ ! -f "$DIR/env" ]]; then
  echo "down.sh: $DIR/env not found: nothing to stop"
  exit 0
fi
KEEPER_PID="" ETCD_PID="" APISERVER_PID="" KCM_PID="" ETCD_PORT="" ETCD_PEER_PORT="" APISERVER_PORT="" KCM_PORT=""
KEEPER_START="" ETCD_START="" APISERVER_START="" KCM_START=""
# shellcheck disable=SC1091
. "$DIR/env"

# A pid counts as ours only while its start time is the one up.sh recorded
# (guards against pid reuse).
starttime() { sed 's/^.*) //' "/proc/$1/stat" 2>/dev/null | awk '{print $20}'; }
state() { sed 's/^.*) //' "/proc/$1/stat" 2>/dev/null | awk '{print $1}'; }
alive() { # pid recorded-start-time; a zombie is not alive
  [[ -n "$1" ]] && kill -0 "$1" 2>/dev/null && [[ "$(state "$1")" != Z ]] &&
    [[ -z "$2" || "$(starttime "$1")" == "$2" ]]
}
wait_gone() { # pid start seconds
  local i
  for i in $(seq 1 $(( $3 * 10 ))); do alive "$1" "$2" || return 0; sleep 0.1; done
  return 1
}

# The keeper stops kube-controller-manager, kube-apiserver, then etcd, gracefully.
if alive "$KEEPER_PID" "$KEEPER_START"; then
  kill -TERM "$KEEPER_PID" 2>/dev/null || true
  wait_gone "$KEEPER_PID" "$KEEPER_START" 30 || { echo "down.sh: keeper $KEEPER_PID did not stop; SIGKILL" >&2; kill -KILL "$KEEPER_PID" 2>/dev/null || true; }
fi
for ps in "$KCM_PID:$KCM_START" "$APISERVER_PID:$APISERVER_START" "$ETCD_PID:$ETCD_START"; do
  pid="${ps%%:*}" st="${ps#*:}"
  if alive "$pid" "$st"; then
    kill -TERM "$pid" 2>/dev/null || true
    wait_gone "$pid" "$st" 10 || kill -KILL "$pid" 2>/dev/null || true
    wait_gone "$pid" "$st" 5 || true
  fi
done

left=""
for ps in "$KEEPER_PID:$KEEPER_START" "$KCM_PID:$KCM_START" "$APISERVER_PID:$APISERVER_START" "$ETCD_PID:$ETCD_START"; do
  alive "${ps%%:*}" "${ps#*:}" && left+=" pid ${ps%%:*}"
done
# Any other etcd or kube-apiserver working on DIR (their arguments name it).
for f in /proc/[0-9]*/cmdline; do
  case "$(tr '\0' ' ' 2>/dev/null <"$f")" in
    *"--data-dir=$DIR/etcd-data"*|*"--audit-policy-file=$DIR/audit-policy.yaml"*|*"--kubeconfig=$DIR/controller-manager.kubeconfig"*)
      pid="${f#/proc/}"; left+=" pid ${pid%/cmdline}" ;;
  esac
done
for p in $APISERVER_PORT $KCM_PORT $ETCD_PORT $ETCD_PEER_PORT; do
  for _ in $(seq 1 20); do
    (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null || continue 2
    sleep 0.1
  done
  left+=" port $p"
done

if [[ -n "$left" ]]; then
  echo "down.sh: still present after stop:$left" >&2
  exit 1
fi
echo "down.sh: stopped control plane in $DIR (no process or port left)"

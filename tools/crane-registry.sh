# Sourced by image/build.sh and tests/image/registry.sh: a crane registry
# (go-containerregistry's, in memory) on 127.0.0.1 at a port the kernel picks.
#
#   crane_registry_start CRANE LOGFILE   sets REG_PID and REG_PORT, or returns 1 with the reason
#   crane_registry_stop                  stops it (a no-op when none runs); for the EXIT trap
#
# setpriv --pdeathsig: the registry also goes when the sourcing script is killed outright.

crane_registry_start() {
  local crane="$1" log="$2"
  REG_PORT=""
  setpriv --pdeathsig TERM -- "$crane" registry serve --address 127.0.0.1:0 2>"$log" &
  REG_PID=$!
  for _ in $(seq 1 100); do
    REG_PORT="$(sed -n 's/.*serving on port \([0-9][0-9]*\).*/\1/p' "$log")"
    [[ -n "$REG_PORT" ]] && return 0
    kill -0 "$REG_PID" 2>/dev/null || { echo "crane registry exited: $(cat "$log")" >&2; REG_PID=""; return 1; }
    sleep 0.1
  done
  echo "crane registry did not report its port within 10 s: $(cat "$log")" >&2
  return 1
}

crane_registry_stop() {
  if [[ -n "${REG_PID:-}" ]]; then
    kill "$REG_PID" 2>/dev/null || true
    wait "$REG_PID" 2>/dev/null || true
    REG_PID=""
  fi
}

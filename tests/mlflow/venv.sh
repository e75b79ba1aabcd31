#!/usr/bin/env bash
# Creates (once) the virtual environment holding MLflow and the OpenTelemetry Python SDK at the
# versions pinned in requirements.txt beside this script, outside git and keyed by the file's
# hash:
#   ${OPENCLAW_CACHE:-$HOME/.cache/openclaw-admission}/venv/mlflow-<hash>/
# and prints that directory last. A second run with the same requirements does nothing.
# Concurrent runs wait on one lock, so two test processes never install into the same place.
#
# Usage:
#   tests/mlflow/venv.sh               install what is missing, print the venv's directory last
#   tests/mlflow/venv.sh --print-path  print the directory only (installs nothing; the venv is
#                                      complete once it holds .complete)
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REQ="$HERE/requirements.txt"
CACHE="${OPENCLAW_CACHE:-$HOME/.cache/openclaw-admission}"
HASH="$(sha256sum "$REQ" | cut -c1-12)"
VENV="$CACHE/venv/mlflow-$HASH"
PYTHON="${PYTHON:-python3}"

case "${1:-}" in
  --print-path) echo "$VENV"; exit 0 ;;
  "") ;;
  *) echo "usage: $0 [--print-path]" >&2; exit 64 ;;
esac

if [[ -f "$VENV/.complete" ]]; then
  echo "$VENV"
  exit 0
fi
mkdir -p "$CACHE/venv"
exec 9>"$CACHE/venv/.lock"
flock 9
if [[ ! -f "$VENV/.complete" ]]; then
  command -v "$PYTHON" >/dev/null || { echo "venv.sh: $PYTHON (>= 3.10) is needed for the MLflow tests" >&2; exit 2; }
  "$PYTHON" -c 'import venv, ensurepip' 2>/dev/null \
    || { echo "venv.sh: $PYTHON cannot create virtual environments (Debian/Ubuntu: apt-get install python3-venv)" >&2; exit 2; }
  rm -rf "$VENV"
  start=$(date +%s)
  echo "venv.sh: installing $(grep -vc "^#" "$REQ") pinned packages (requirements.txt) into $VENV (first run only)" >&2
  "$PYTHON" -m venv "$VENV" >&2
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --no-input -r "$REQ" >&2
  touch "$VENV/.complete"
  echo "venv.sh: done in $(( $(date +%s) - start ))s ($(du -sh "$VENV" | cut -f1))" >&2
fi
echo "$VENV"

#!/usr/bin/env bash
# The chart's alert rules (charts/openclaw-admission/files/alerts.yaml, rendered verbatim into
# the PrometheusRule) checked and unit-tested with promtool: `promtool check rules`, then
# `promtool test rules alerts_test.yaml`, which fires each alert on the series it is about.
# Closes with an `N passed, N failed` line (one per test group) that .ci/run adds up.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
PROMTOOL="$(bash "$HERE/build.sh")"
groups="$(grep -c '^  - name:' "$HERE/alerts_test.yaml")"
"$PROMTOOL" check rules "$ROOT/charts/openclaw-admission/files/alerts.yaml"
cd "$HERE"
if "$PROMTOOL" test rules alerts_test.yaml; then
  echo "$groups passed, 0 failed"
else
  echo "0 passed, $groups failed"
  exit 1
fi

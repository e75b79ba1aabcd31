#!/usr/bin/env bash
# The chart's alert rules (charts/openclaw-admission/files/alerts.yaml, rendered verbatim into
# the PrometheusRule) checked and unit-tested with promtool: `promtool check rules`, then
# `promtool test rules alerts_test.yaml`, which fires each alert on the series it is about; then
# every PromQL expression of the Grafana dashboard (charts/openclaw-admission/files/dashboard.json)
# through `promtool check rules`, as recording rules (check-dashboard.py).
# Closes with an `N passed, N failed` line (one per test group, plus one for the dashboard) that
# .ci/run adds up.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
PROMTOOL="$(bash "$HERE/build.sh")"
groups="$(grep -c '^  - name:' "$HERE/alerts_test.yaml")"
"$PROMTOOL" check rules "$ROOT/charts/openclaw-admission/files/alerts.yaml"
rules="$(mktemp -t openclaw-dashboard-rules.XXXXXX)"
trap 'rm -f "$rules"' EXIT
dashboard=0
if exprs="$(python3 "$HERE/check-dashboard.py" "$ROOT/charts/openclaw-admission/files/dashboard.json" "$rules")" &&
  "$PROMTOOL" check rules "$rules"; then
  echo "dashboard: $exprs PromQL expressions checked"
  dashboard=1
fi
cd "$HERE"
if "$PROMTOOL" test rules alerts_test.yaml; then
  passed=$groups failed=0
else
  passed=0 failed=$groups
fi
echo "$((passed + dashboard)) passed, $((failed + 1 - dashboard)) failed"
[[ $failed -eq 0 && $dashboard -eq 1 ]]

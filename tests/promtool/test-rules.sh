#!/usr/bin/env bash
# The chart's alert rules (charts/openclaw-admission/files/alerts.yaml, rendered verbatim into
# the PrometheusRule) checked and unit-tested with promtool: `promtool check rules`, then
# `promtool test rules alerts_test.yaml`, which fires each alert on the series it is about.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
PROMTOOL="$(bash "$HERE/build.sh")"
"$PROMTOOL" check rules "$ROOT/charts/openclaw-admission/files/alerts.yaml"
cd "$HERE"
"$PROMTOOL" test rules alerts_test.yaml

#!/usr/bin/env python3
"""Turns every PromQL expression of the chart's Grafana dashboard into a recording rule, so
that `promtool check rules` parses and checks each one as Prometheus would.

Grafana replaces its interval variables before a query reaches Prometheus; they are replaced
here by durations of the same kind. Any other `$` in an expression is refused: promtool could
not check it, and the dashboard is meant to work with the data source variable alone.

Usage: check-dashboard.py DASHBOARD.json OUT-RULES.yaml   (prints the count of expressions)
"""
import json
import re
import sys

# What Grafana substitutes, by a value of the same type (a range duration).
GRAFANA_VARS = {"$__rate_interval": "5m", "$__interval": "1m", "$__range": "1h"}


def panels(node):
    for p in node.get("panels", []):
        yield p
        yield from panels(p)


def main():
    dashboard_path, out_path = sys.argv[1], sys.argv[2]
    with open(dashboard_path) as f:
        dashboard = json.load(f)
    rules, errors = [], []
    for p in panels(dashboard):
        for t in p.get("targets", []):
            where = f"panel {p.get('id')} ({p.get('title')!r}) target {t.get('refId')}"
            expr = t.get("expr")
            if not isinstance(expr, str) or not expr.strip():
                errors.append(f"{where}: no expr")
                continue
            checked = expr
            for var, value in GRAFANA_VARS.items():
                checked = checked.replace(var, value)
            left = re.findall(r"\$\{?\w+\}?", checked)
            if left:
                errors.append(f"{where}: variables promtool cannot check: {', '.join(left)}")
                continue
            rules.append({"record": f"dashboard:panel_{p['id']}:{t['refId'].lower()}",
                          "expr": checked})
    if errors:
        for e in errors:
            print(f"check-dashboard: {dashboard_path}: {e}", file=sys.stderr)
        sys.exit(1)
    if not rules:
        print(f"check-dashboard: {dashboard_path}: no expressions", file=sys.stderr)
        sys.exit(1)
    # JSON is YAML: promtool reads this rule file as it reads alerts.yaml.
    with open(out_path, "w") as f:
        json.dump({"groups": [{"name": "dashboard", "rules": rules}]}, f, indent=1)
    print(len(rules))


main()

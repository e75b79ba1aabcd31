//! The chart's Grafana dashboard against the real webhook: the scan figures `serve` reads
//! from the reports `audit --write-reports` wrote (OpenReports here, and followed when a scan
//! writes them again), and every metric the dashboard's expressions name among the sample lines of the
//! webhook's `/metrics`.

use crate::support::*;
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::ffi::OsStr;

const NS: &str = "e2e-dashboard";

fn expect(cond: bool, what: impl FnOnce() -> String) -> Result<(), String> {
    if cond { Ok(()) } else { Err(what()) }
}

fn audit_write_reports(env: &Env) -> Result<(), String> {
    let out = std::process::Command::new(BIN)
        .args(["audit", "--kubeconfig"])
        .arg(&env.kubeconfig)
        .args([
            "--policy",
            &format!("{ROOT}/tests/e2e/policy.yaml"),
            "-n",
            NS,
            "--write-reports",
        ])
        .output()
        .map_err(|e| format!("cannot run audit: {e}"))?;
    // Exit 1 means violations were found, which this namespace has on the first run.
    expect(matches!(out.status.code(), Some(0 | 1)), || {
        format!(
            "audit --write-reports failed ({}): {}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

/// The sample values of `name` by their `result` label, for `object_namespace="<ns>"`.
fn scan_gauges(text: &str, ns: &str) -> Vec<(String, u64)> {
    let prefix = "openclaw_admission_scan_results{";
    let mut out = Vec::new();
    for line in text.lines() {
        let Some(rest) = line.strip_prefix(prefix) else {
            continue;
        };
        if !rest.contains(&format!("object_namespace=\"{ns}\"")) {
            continue;
        }
        let result = rest
            .split("result=\"")
            .nth(1)
            .and_then(|r| r.split('"').next())
            .unwrap_or("")
            .to_string();
        let value = line
            .rsplit(' ')
            .next()
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(-1.0);
        out.push((result, value as u64));
    }
    out.sort();
    out
}

/// The report's `summary` as `(result, count)` pairs, sorted, as the gauges should show it.
fn summary_pairs(report: &Value) -> Vec<(String, u64)> {
    let mut out: Vec<(String, u64)> = ["pass", "fail", "warn", "error", "skip"]
        .iter()
        .map(|r| (r.to_string(), report["summary"][*r].as_u64().unwrap_or(0)))
        .collect();
    out.sort();
    out
}

fn report(env: &Env) -> Result<Value, String> {
    env.kubectl_json(&[
        "get",
        "reports.openreports.io",
        "-n",
        NS,
        "openclaw-admission",
        "-o",
        "json",
    ])
}

/// The gauges for [`NS`] come to match the namespace's report (and nothing else in it).
fn gauges_follow(env: &Env, want: &[(String, u64)]) -> Result<(), String> {
    env.eventually(30, || {
        let text = env.webhook_get("/metrics")?;
        let got = scan_gauges(&text, NS);
        if got == want {
            Ok(())
        } else {
            Err(format!("scan gauges for {NS}: {got:?}, want {want:?}"))
        }
    })
}

pub fn scan_figures_follow_the_reports_and_every_dashboard_metric_exists(
    env: &Env,
) -> Result<(), String> {
    crate::workloads::apply_upstream_report_crds(env)?;
    env.restart_webhook(
        None,
        &[OsStr::new("--scan-reports-interval"), OsStr::new("1s")],
    )?;
    let result = (|| {
        // A namespace in audit mode: one hardened agent and one with a writable root.
        env.apply_docs(&[
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS, "labels": {"openclaw.io/mode": "audit"}}}),
            json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": AGENT_SA, "namespace": NS}}),
            deny_egress_policy(NS),
        ])?;
        env.wait_for_default_service_account(NS)?;
        let mut good = hardened_pod(NS, "dash-good");
        good["spec"]["automountServiceAccountToken"] = json!(false);
        let mut bad = hardened_pod(NS, "dash-writable");
        bad["spec"]["automountServiceAccountToken"] = json!(false);
        bad["spec"]["containers"][0]["securityContext"]["readOnlyRootFilesystem"] = json!(false);
        for p in [&good, &bad] {
            let out = env.apply(p, &[]);
            expect(out.ok, || out.all())?;
        }
        // A report in the same namespace that the scan did not write: never counted.
        let stranger = json!({
            "apiVersion": "openreports.io/v1alpha1", "kind": "Report",
            "metadata": {"name": "someone-else", "namespace": NS},
            "summary": {"pass": 0, "fail": 100, "warn": 0, "error": 0, "skip": 0},
            "results": []
        });
        env.apply_docs(&[stranger])?;

        audit_write_reports(env)?;
        let first = summary_pairs(&report(env)?);
        let failing: u64 = first
            .iter()
            .filter(|(r, _)| r == "fail" || r == "warn")
            .map(|(_, n)| n)
            .sum();
        expect(failing > 0, || {
            format!("the writable-root pod left no fail or warn: {first:?}")
        })?;
        gauges_follow(env, &first)?;

        // The violation fixed, the next scan rewrites the report; the gauges follow.
        let out = env.kubectl(&["delete", "pod", "-n", NS, "dash-writable", "--wait=false"]);
        expect(out.ok, || out.all())?;
        env.eventually(30, || {
            if env.pod_exists(NS, "dash-writable") {
                Err("dash-writable still exists".into())
            } else {
                Ok(())
            }
        })?;
        audit_write_reports(env)?;
        let second = summary_pairs(&report(env)?);
        expect(second != first, || {
            format!("the report did not change once the violation was gone: {second:?}")
        })?;
        gauges_follow(env, &second)?;
        let text = env.webhook_get("/metrics")?;
        let last_run = text
            .lines()
            .find_map(|l| l.strip_prefix("openclaw_admission_scan_last_run_timestamp_seconds "))
            .and_then(|v| v.parse::<f64>().ok());
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_err(|e| e.to_string())?
            .as_secs_f64();
        expect(last_run.is_some_and(|t| (now - t).abs() < 120.0), || {
            format!("scan_last_run_timestamp_seconds {last_run:?}, now {now}")
        })?;

        // A refusal, so that the refusal counter has a sample for its namespace.
        let mut refused = hardened_pod(NS_ENFORCE, "dash-refused");
        refused["spec"]["containers"][0]["securityContext"]["runAsNonRoot"] = json!(false);
        let out = env.apply(&refused, &["--dry-run=server"]);
        expect(!out.ok, || {
            format!("dash-refused was stored: {}", out.all())
        })?;
        let text = env.webhook_get("/metrics")?;
        expect(
            text.lines().any(|l| {
                l.starts_with("openclaw_admission_refusals_total{")
                    && l.contains(&format!("object_namespace=\"{NS_ENFORCE}\""))
            }),
            || format!("no refusal counted for {NS_ENFORCE}:\n{text}"),
        )?;
        every_dashboard_metric_is_exposed(&text)
    })();
    // Whatever happened, the suite's webhook comes back with its usual flags.
    env.restart_webhook(None, &[])?;
    result
}

/// Every metric name in the dashboard's expressions is the name of a sample line in `text`.
fn every_dashboard_metric_is_exposed(text: &str) -> Result<(), String> {
    let dashboard: Value = serde_json::from_str(
        &std::fs::read_to_string(format!(
            "{ROOT}/charts/openclaw-admission/files/dashboard.json"
        ))
        .map_err(|e| e.to_string())?,
    )
    .map_err(|e| e.to_string())?;
    let mut named = BTreeSet::new();
    for panel in dashboard["panels"].as_array().into_iter().flatten() {
        for target in panel["targets"].as_array().into_iter().flatten() {
            let expr = target["expr"].as_str().unwrap_or("");
            for (i, _) in expr.match_indices("openclaw_admission_") {
                let name: String = expr[i..]
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                named.insert(name);
            }
        }
    }
    expect(named.len() >= 8, || {
        format!("the dashboard names too few metrics: {named:?}")
    })?;
    let exposed: BTreeSet<&str> = text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| l.split(['{', ' ']).next().unwrap_or(""))
        .collect();
    let missing: Vec<&String> = named
        .iter()
        .filter(|n| !exposed.contains(n.as_str()))
        .collect();
    expect(missing.is_empty(), || {
        format!("metrics the dashboard names but /metrics has no sample of: {missing:?}")
    })
}

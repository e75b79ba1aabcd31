//! Observability cases against the suite's real MLflow: the webhook's decision spans found by
//! their attributes, an agent's own trace sent under the env the webhook injected, and MLflow
//! going away mid-suite costing spans (counted), never an answer.

use crate::support::*;
use serde_json::{Value, json};
use std::collections::BTreeMap;

fn expect(cond: bool, what: impl FnOnce() -> String) -> Result<(), String> {
    if cond { Ok(()) } else { Err(what()) }
}

/// Every span MLflow holds, each with its trace's tags (the OTel resource).
fn spans(env: &Env) -> Result<Vec<(Value, Value)>, String> {
    Ok(env
        .mlflow
        .traces()?
        .into_iter()
        .flat_map(|t| {
            let tags = t["tags"].clone();
            t["spans"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .into_iter()
                .map(move |s| (tags.clone(), s))
        })
        .collect())
}

/// The decision span of `name` at `endpoint` (`validate` or `mutate`), once MLflow has it.
fn decision_span(env: &Env, name: &str, endpoint: &str) -> Result<(Value, Value), String> {
    env.eventually(30, || {
        spans(env)?
            .into_iter()
            .find(|(_, s)| {
                s["attributes"]["openclaw.review.name"] == name
                    && s["attributes"]["openclaw.review.endpoint"] == endpoint
            })
            .ok_or_else(|| format!("MLflow has no {endpoint} span for {name}"))
    })
}

pub fn decision_spans_reach_mlflow(env: &Env) -> Result<(), String> {
    let refused = "mlflow-refused";
    let accepted = "mlflow-accepted";
    let mut bad = hardened_pod(NS_ENFORCE, refused);
    bad["spec"]["containers"][0]["securityContext"]["runAsNonRoot"] = json!(false);
    let out = env.apply(&bad, &[]);
    expect(!out.ok, || format!("{refused} was stored: {}", out.all()))?;
    let out = env.apply(&hardened_pod(NS_ENFORCE, accepted), &[]);
    expect(out.ok, || format!("{accepted} was refused: {}", out.all()))?;

    let (tags, span) = decision_span(env, refused, "validate")?;
    let a = &span["attributes"];
    expect(tags["service.name"] == "openclaw-admission", || {
        format!("service.name of the webhook's trace: {tags}")
    })?;
    expect(a["openclaw.decision"] == "denied", || format!("{span}"))?;
    expect(a["openclaw.mode"] == "enforce", || format!("{span}"))?;
    expect(a["k8s.namespace.name"] == NS_ENFORCE, || format!("{span}"))?;
    expect(a["openclaw.review.operation"] == "CREATE", || {
        format!("{span}")
    })?;
    expect(a["openclaw.agent.service_account"] == AGENT_SA, || {
        format!("{span}")
    })?;
    // kubectl's client certificate (CN) from the suite's kubeconfig, as the API server saw it.
    expect(a["openclaw.review.user"] == "openclaw-admin", || {
        format!("{span}")
    })?;
    let violations = a["openclaw.violations"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let tiers = a["openclaw.violation_tiers"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    expect(violations.contains(&json!("run-as-non-root")), || {
        format!("{span}")
    })?;
    expect(
        tiers.len() == violations.len() && tiers.contains(&json!("high")),
        || format!("one tier per violation: {span}"),
    )?;

    let (_, span) = decision_span(env, accepted, "validate")?;
    expect(span["attributes"]["openclaw.decision"] == "allowed", || {
        format!("{span}")
    })?;
    let (_, span) = decision_span(env, accepted, "mutate")?;
    let a = &span["attributes"];
    expect(a["openclaw.mutated"] == true, || format!("{span}"))?;
    let injected = a["openclaw.injected"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    expect(injected.contains(&json!("otel-env")), || format!("{span}"))?;

    // The pod carried a secret reference and env values; none of them is in MLflow.
    let all = serde_json::to_string(&env.mlflow.traces()?).unwrap_or_default();
    expect(!all.contains("/workspace"), || {
        "an env value reached MLflow".into()
    })?;
    Ok(())
}

/// Resolves a container's env as the kubelet does: downward-API fields from the pod, and
/// `$(VAR)` references to variables defined earlier in the list (`$$` is a literal `$`,
/// unknown references stay as written). Variables from Secrets or ConfigMaps are left out:
/// the OTel ones never come from there.
fn resolve_env(pod: &Value, container: &Value) -> Result<BTreeMap<String, String>, String> {
    let mut out: BTreeMap<String, String> = BTreeMap::new();
    for var in container["env"].as_array().cloned().unwrap_or_default() {
        let name = var["name"]
            .as_str()
            .ok_or("env entry without a name")?
            .to_string();
        let value = if let Some(v) = var["value"].as_str() {
            expand(v, &out)
        } else if let Some(path) = var["valueFrom"]["fieldRef"]["fieldPath"].as_str() {
            let field = match path {
                "metadata.name" => &pod["metadata"]["name"],
                "metadata.namespace" => &pod["metadata"]["namespace"],
                "metadata.uid" => &pod["metadata"]["uid"],
                "spec.nodeName" => &pod["spec"]["nodeName"],
                "spec.serviceAccountName" => &pod["spec"]["serviceAccountName"],
                other => return Err(format!("{name}: fieldRef {other} is not resolved here")),
            };
            field.as_str().unwrap_or("").to_string()
        } else if var.get("valueFrom").is_some() {
            continue;
        } else {
            String::new()
        };
        out.insert(name, value);
    }
    Ok(out)
}

/// Kubernetes' `$(VAR)` expansion over the variables defined so far.
fn expand(s: &str, defined: &BTreeMap<String, String>) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            out.push('$');
            rest = tail;
        } else if let Some(body) = after.strip_prefix('(') {
            match body.find(')') {
                Some(end) => {
                    let key = &body[..end];
                    match defined.get(key) {
                        Some(v) => out.push_str(v),
                        None => out.push_str(&format!("$({key})")),
                    }
                    rest = &body[end + 1..];
                }
                None => {
                    out.push_str(&rest[i..]);
                    rest = "";
                }
            }
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

pub fn injected_env_sends_an_agent_trace_to_mlflow(env: &Env) -> Result<(), String> {
    let name = "otel-agent";
    let mut pod = hardened_pod(NS_ENFORCE, name);
    // Bound to a node by name (no scheduler runs here), so spec.nodeName has a value.
    pod["spec"]["nodeName"] = json!("node-e2e");
    let out = env.apply(&pod, &[]);
    expect(out.ok, || format!("{name} was refused: {}", out.all()))?;
    let stored = env.get_pod(NS_ENFORCE, name)?;
    let agent = stored["spec"]["containers"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["name"] == "agent"))
        .ok_or("stored pod has no agent container")?;
    let mut vars = resolve_env(&stored, agent)?;
    for k in [
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "OTEL_SERVICE_NAME",
        "OTEL_RESOURCE_ATTRIBUTES",
    ] {
        expect(vars.contains_key(k), || {
            format!("the stored pod lacks {k}: {vars:?}")
        })?;
    }
    let service_name = vars["OTEL_SERVICE_NAME"].clone();
    // The collector the env names would forward to MLflow; the test sends there directly,
    // with the experiment header MLflow asks for.
    vars.insert("OTEL_EXPORTER_OTLP_ENDPOINT".into(), env.mlflow.uri());
    vars.insert(
        "OTEL_EXPORTER_OTLP_HEADERS".into(),
        format!("x-mlflow-experiment-id={}", env.mlflow.experiment_id),
    );
    vars.insert("PATH".into(), "/usr/bin:/bin".into());
    let probe = "injected-env-probe";
    env.mlflow.run_agent(&vars, probe)?;

    let (tags, span) = env.eventually(30, || {
        spans(env)?
            .into_iter()
            .find(|(_, s)| s["attributes"]["probe"] == probe)
            .ok_or_else(|| "MLflow has no trace from the agent program".to_string())
    })?;
    expect(span["name"] == "agent step", || format!("{span}"))?;
    expect(
        !service_name.is_empty() && tags["service.name"] == service_name.as_str(),
        || format!("service.name {service_name:?} expected: {tags}"),
    )?;
    expect(tags["k8s.pod.name"] == name, || {
        format!("k8s.pod.name: {tags}")
    })?;
    expect(tags["k8s.namespace.name"] == NS_ENFORCE, || {
        format!("k8s.namespace.name: {tags}")
    })?;
    expect(tags["k8s.node.name"] == "node-e2e", || {
        format!("k8s.node.name: {tags}")
    })?;
    expect(tags["k8s.container.name"] == "agent", || {
        format!("k8s.container.name: {tags}")
    })?;
    Ok(())
}

/// A counter's value in the webhook's `/metrics`.
fn metric(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

pub fn stopping_mlflow_costs_spans_never_answers(env: &Env) -> Result<(), String> {
    let failed = r#"openclaw_admission_spans_dropped_total{reason="export_failed"}"#;
    let before = metric(&env.webhook_get("/metrics")?, failed).unwrap_or(0.0);
    env.mlflow.stop();
    for i in 0..5 {
        let name = format!("after-mlflow-{i}");
        let out = env.apply(&hardened_pod(NS_ENFORCE, &name), &["--dry-run=server"]);
        expect(out.ok, || {
            format!("{name} was not answered as before: {}", out.all())
        })?;
        let mut bad = hardened_pod(NS_ENFORCE, &name);
        bad["spec"]["containers"][0]["securityContext"]["runAsNonRoot"] = json!(false);
        let out = env.apply(&bad, &["--dry-run=server"]);
        expect(!out.ok && out.all().contains("run-as-non-root"), || {
            format!("{name} was not refused as before: {}", out.all())
        })?;
    }
    // 20 reviews (validate and mutate for each of 10 applies) whose spans cannot leave.
    env.eventually(30, || {
        let text = env.webhook_get("/metrics")?;
        let now = metric(&text, failed).unwrap_or(0.0);
        if now - before >= 20.0 {
            Ok(())
        } else {
            Err(format!(
                "spans dropped after MLflow stopped: {} (want >= 20)",
                now - before
            ))
        }
    })?;
    env.webhook_get("/readyz").map(|_| ())
}

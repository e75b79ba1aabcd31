//! Issue 28 on the real control plane: `sandboxed-runtime`, `user-namespace` and
//! `resource-limits` with a RuntimeClass present, missing for a Pod, and missing for a
//! Deployment's template. The suite's policy turns these checks off (its agents are the box
//! without a sandbox); this case turns them on by a live policy change and restores it.

use crate::support::*;
use crate::workloads::policy_file;
use serde_json::{Value, json};

pub fn all() -> Vec<(&'static str, crate::cases::Case)> {
    vec![(
        "isolation_checks_see_runtime_classes_present_and_missing_and_warn_at_low",
        isolation,
    )]
}

fn expect(cond: bool, what: impl FnOnce() -> String) -> Result<(), String> {
    if cond { Ok(()) } else { Err(what()) }
}

/// The hardened agent, isolated: under `class`, in a user namespace, with limits.
fn isolated(ns: &str, name: &str, class: &str) -> Value {
    let mut p = hardened_pod(ns, name);
    p["spec"]["runtimeClassName"] = json!(class);
    p["spec"]["hostUsers"] = json!(false);
    for list in ["initContainers", "containers"] {
        p["spec"][list][0]["resources"] = json!({"limits": {"cpu": "500m", "memory": "512Mi"}});
    }
    p
}

fn deployment(ns: &str, name: &str, pod: &Value) -> Value {
    json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "namespace": ns},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "openclaw", "e2e-workload": name}},
            "template": {"metadata": {"labels": {"app": "openclaw", "e2e-workload": name},
                "annotations": pod["metadata"]["annotations"]},
                "spec": pod["spec"]}}})
}

fn isolation(env: &Env) -> Result<(), String> {
    let ns = "e2e-isolation";
    env.apply_docs(&[
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}),
        json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": AGENT_SA, "namespace": ns}}),
        deny_egress_policy(ns),
        json!({"apiVersion": "node.k8s.io/v1", "kind": "RuntimeClass",
            "metadata": {"name": "gvisor"}, "handler": "runsc"}),
    ])?;
    let original = std::fs::read_to_string(policy_file(env)).map_err(|e| e.to_string())?;
    let on = original.replace(
        "disabledChecks: [sandboxed-runtime, user-namespace, resource-limits]",
        "disabledChecks: []",
    );
    expect(on != original, || {
        "the suite's policy no longer disables the isolation checks".into()
    })?;
    let result = (|| {
        std::fs::write(policy_file(env), &on).map_err(|e| e.to_string())?;
        // The plain hardened agent: stored, with the three warnings (tier low) once the policy
        // is in force.
        env.eventually(20, || {
            let name = "plain";
            let out = env.apply(&hardened_pod(ns, name), &[]);
            let text = out.all();
            let _ = env.kubectl(&["-n", ns, "delete", "pod", name, "--wait=false"]);
            if out.ok
                && ["sandboxed-runtime", "user-namespace", "resource-limits"]
                    .iter()
                    .all(|id| text.contains(id))
                && text.contains("Warning:")
            {
                Ok(())
            } else {
                Err(format!(
                    "plain hardened agent: expected stored with three warnings: {text}"
                ))
            }
        })?;

        // Isolated under a RuntimeClass that exists: stored, no isolation warning.
        let out = env.apply(&isolated(ns, "sandboxed", "gvisor"), &[]);
        let text = out.all();
        expect(out.ok && !text.contains("Warning:"), || {
            format!("isolated agent under gvisor: {text}")
        })?;

        // A Pod naming a RuntimeClass that does not exist: the API server refuses it.
        let out = env.apply(&isolated(ns, "no-class", "kata-missing"), &[]);
        expect(!out.ok && out.all().contains("kata-missing"), || {
            format!(
                "a Pod under a missing RuntimeClass was not refused: {}",
                out.all()
            )
        })?;

        // A Deployment naming it: the API server stores it and its controller would make no
        // Pods; the webhook says so at apply.
        let d = deployment(ns, "no-class", &isolated(ns, "x", "kata-missing"));
        let out = env.apply(&d, &[]);
        let text = out.all();
        expect(
            out.ok
                && text.contains("Warning:")
                && text.contains("sandboxed-runtime")
                && text.contains("RuntimeClass kata-missing does not exist in the cluster")
                && text.contains("create no Pods"),
            || format!("Deployment under a missing RuntimeClass: {text}"),
        )
    })();
    let _ = std::fs::write(policy_file(env), &original);
    result
}

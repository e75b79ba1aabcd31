//! Issue 26, item 1: changes to what a running agent's verdict rests on are judged. A tenant
//! (`mallory`, acting with `--as`) cannot delete or widen the egress policy of a running agent,
//! nor bind its ServiceAccount to `pods/exec`; once the agent is gone the same change passes.
//! Uninstalling an agent keeps working: `helm uninstall` of an agent chart, `kubectl delete -f`
//! of the whole set, and deleting its namespace.

use crate::support::*;
use serde_json::{Value, json};

fn expect(cond: bool, what: impl FnOnce() -> String) -> Result<(), String> {
    if cond { Ok(()) } else { Err(what()) }
}

/// A namespace with `mallory` bound to `role` (`edit` or `admin`) there.
fn tenant_namespace(env: &Env, ns: &str, role: &str) -> Result<(), String> {
    env.apply_docs(&[
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}),
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
            "metadata": {"name": "e2e-tenant", "namespace": ns},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
            "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "mallory"}]}),
    ])?;
    env.wait_for_default_service_account(ns)
}

/// A tenant namespace with the agent ServiceAccount and default-deny egress.
fn agent_namespace(env: &Env, ns: &str, role: &str) -> Result<(), String> {
    tenant_namespace(env, ns, role)?;
    env.apply_docs(&[
        json!({"apiVersion": "v1", "kind": "ServiceAccount",
            "metadata": {"name": AGENT_SA, "namespace": ns}}),
        deny_egress_policy(ns),
    ])
}

fn as_mallory<'a>(args: &[&'a str]) -> Vec<&'a str> {
    let mut all = args.to_vec();
    all.extend_from_slice(&AS_USER);
    all
}

/// Deleting the egress policy as `mallory` (a server dry run: the webhook answers it like the
/// real thing) is refused naming `agent`, once the webhook knows the agent runs.
fn policy_delete_refused_naming(env: &Env, ns: &str, agent: &str) -> Result<String, String> {
    env.eventually(20, || {
        let out = env.kubectl(&as_mallory(&[
            "-n",
            ns,
            "delete",
            "networkpolicy",
            "default-deny-egress",
            "--dry-run=server",
        ]));
        let text = out.all();
        if !out.ok && text.contains(&format!("running agent pod {ns}/{agent}")) {
            Ok(text)
        } else {
            Err(format!(
                "deleting the egress policy was not refused naming {agent}: {text}"
            ))
        }
    })
}

pub fn egress_policy_held_while_the_agent_runs(env: &Env) -> Result<(), String> {
    let ns = "e2e-held-egress";
    agent_namespace(env, ns, "edit")?;
    let applied = env.apply(&hardened_pod(ns, "claw"), &[]);
    expect(applied.ok, || {
        format!("the agent was not stored: {}", applied.all())
    })?;

    let refused = policy_delete_refused_naming(env, ns, "claw")?;
    expect(refused.contains("refused NetworkPolicy"), || {
        refused.clone()
    })?;
    let deleted = env.kubectl(&as_mallory(&[
        "-n",
        ns,
        "delete",
        "networkpolicy",
        "default-deny-egress",
    ]));
    expect(
        !deleted.ok
            && deleted
                .all()
                .contains(&format!("running agent pod {ns}/claw")),
        || format!("the delete went through: {}", deleted.all()),
    )?;

    let mut wide = deny_egress_policy(ns);
    wide["spec"]["egress"] = json!([{}]);
    let widened = env.kubectl_stdin(&as_mallory(&["apply", "-f", "-"]), &wide.to_string());
    expect(
        !widened.ok
            && widened
                .all()
                .contains(&format!("running agent pod {ns}/claw"))
            && widened.all().contains("default-deny-egress"),
        || format!("widening egress went through: {}", widened.all()),
    )?;
    let still = env.kubectl_json(&[
        "-n",
        ns,
        "get",
        "networkpolicy",
        "default-deny-egress",
        "-o",
        "json",
    ])?;
    expect(
        still["spec"]["egress"] == deny_egress_policy(ns)["spec"]["egress"],
        || format!("the stored policy changed: {still}"),
    )?;

    // The agent leaves; the same tenant may now remove the policy.
    let gone = env.kubectl(&["-n", ns, "delete", "pod", "claw"]);
    expect(gone.ok, || {
        format!("deleting the agent failed: {}", gone.all())
    })?;
    env.eventually(20, || {
        let out = env.kubectl(&as_mallory(&[
            "-n",
            ns,
            "delete",
            "networkpolicy",
            "default-deny-egress",
        ]));
        if out.ok {
            Ok(())
        } else {
            Err(format!("still refused with the agent gone: {}", out.all()))
        }
    })?;
    let _ = env.kubectl(&["delete", "namespace", ns, "--wait=false"]);
    Ok(())
}

pub fn exec_binding_for_an_agent_is_refused(env: &Env) -> Result<(), String> {
    let ns = "e2e-held-rbac";
    // `admin` may write RoleBindings (for what it holds itself, pods/exec included); `edit` may not.
    agent_namespace(env, ns, "admin")?;
    let applied = env.apply(&hardened_pod(ns, "claw"), &[]);
    expect(applied.ok, || {
        format!("the agent was not stored: {}", applied.all())
    })?;
    let role = json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
        "metadata": {"name": "shell", "namespace": ns},
        "rules": [{"apiGroups": [""], "resources": ["pods/exec"], "verbs": ["create", "get"]}]});
    let made = env.kubectl_stdin(&as_mallory(&["apply", "-f", "-"]), &role.to_string());
    expect(made.ok, || {
        format!("a role bound to nobody was refused: {}", made.all())
    })?;
    let binding = |sa: &str| -> Value {
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
            "metadata": {"name": format!("shell-{sa}"), "namespace": ns},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "shell"},
            "subjects": [{"kind": "ServiceAccount", "name": sa, "namespace": ns}]})
    };
    let refused = env.eventually(20, || {
        let out = env.kubectl_stdin(
            &as_mallory(&["apply", "-f", "-"]),
            &binding(AGENT_SA).to_string(),
        );
        let text = out.all();
        if !out.ok && text.contains(&format!("running agent pod {ns}/claw")) {
            Ok(text)
        } else {
            if out.ok {
                let _ = env.kubectl(&[
                    "-n",
                    ns,
                    "delete",
                    "rolebinding",
                    &format!("shell-{AGENT_SA}"),
                ]);
            }
            Err(format!(
                "binding the agent to pods/exec was not refused: {text}"
            ))
        }
    })?;
    expect(
        refused.contains("least-privilege-rbac") && refused.contains("pods/exec"),
        || format!("the refusal does not name the check and the power: {refused}"),
    )?;
    // Another ServiceAccount concerns no agent.
    let other = env.kubectl_stdin(
        &as_mallory(&["apply", "-f", "-"]),
        &binding("ci").to_string(),
    );
    expect(other.ok, || {
        format!(
            "binding a non-agent ServiceAccount was refused: {}",
            other.all()
        )
    })?;
    let _ = env.kubectl(&["delete", "namespace", ns, "--wait=false"]);
    Ok(())
}

/// Waits for a Pod of a workload, made by its controller through admission.
fn wait_for_pod(env: &Env, ns: &str) -> Result<String, String> {
    env.eventually(60, || {
        let pods = env.kubectl_json(&["-n", ns, "get", "pods", "-o", "json"])?;
        pods["items"]
            .as_array()
            .and_then(|a| a.first())
            .and_then(|p| p["metadata"]["name"].as_str())
            .map(String::from)
            .ok_or_else(|| format!("no pod yet in {ns}"))
    })
}

fn gone(env: &Env, what: &[&str]) -> Result<(), String> {
    env.eventually(90, || {
        let mut args = vec!["get"];
        args.extend_from_slice(what);
        args.extend(["--ignore-not-found", "-o", "name"]);
        let out = env.kubectl(&args);
        if out.ok && out.stdout.trim().is_empty() {
            Ok(())
        } else {
            Err(format!("{} still there: {}", what.join(" "), out.all()))
        }
    })
}

pub fn uninstalling_an_agent_keeps_working(env: &Env) -> Result<(), String> {
    // 1. `helm uninstall` of an agent chart: the Deployment goes, and its Pods a moment later.
    let ns = "e2e-uninstall-helm";
    tenant_namespace(env, ns, "edit")?;
    let helm = |args: &[&str]| {
        std::process::Command::new(&env.helm)
            .args(args)
            .env("KUBECONFIG", &env.kubeconfig)
            .output()
            .map_err(|e| format!("helm: {e}"))
    };
    let chart = format!("{ROOT}/examples/helm/openclaw-agent");
    let installed = helm(&["install", "claw", &chart, "-n", ns])?;
    expect(installed.status.success(), || {
        format!(
            "helm install failed: {}",
            String::from_utf8_lossy(&installed.stderr)
        )
    })?;
    let agent = wait_for_pod(env, ns)?;
    let policy = env.kubectl_json(&["-n", ns, "get", "networkpolicy", "-o", "json"])?;
    let policy_name = policy["items"][0]["metadata"]["name"]
        .as_str()
        .unwrap_or("")
        .to_string();
    // While the agent runs, its policy is held (so the uninstall below passes on purpose).
    env.eventually(20, || {
        let out = env.kubectl(&as_mallory(&[
            "-n",
            ns,
            "delete",
            "networkpolicy",
            &policy_name,
            "--dry-run=server",
        ]));
        if !out.ok && out.all().contains(&agent) {
            Ok(())
        } else {
            Err(format!(
                "the chart's policy was not held for {agent}: {}",
                out.all()
            ))
        }
    })?;
    let uninstalled = helm(&["uninstall", "claw", "-n", ns])?;
    expect(uninstalled.status.success(), || {
        format!(
            "helm uninstall failed: {}{}",
            String::from_utf8_lossy(&uninstalled.stdout),
            String::from_utf8_lossy(&uninstalled.stderr)
        )
    })?;
    gone(env, &["-n", ns, "networkpolicy", &policy_name])?;

    // 2. `kubectl delete -f` of the whole set: the workloads first, then the policy, the
    // ServiceAccount and the namespace (the order that leans on the workloads being seen as
    // leaving; with the namespace first, its deletion alone would let the rest through).
    let file = |f: &str| format!("{ROOT}/examples/hardened/{f}");
    let files: Vec<String> = [
        "namespace.yaml",
        "serviceaccount.yaml",
        "networkpolicy.yaml",
        "deployment.yaml",
        "agent.yaml",
    ]
    .iter()
    .map(|f| file(f))
    .collect();
    fn with_files<'a>(verb: &'a str, order: &[&'a String]) -> Vec<&'a str> {
        let mut args = vec![verb];
        for f in order {
            args.extend(["-f", f.as_str()]);
        }
        args
    }
    let forward: Vec<&String> = files.iter().collect();
    let applied = env.kubectl(&with_files("apply", &forward));
    expect(applied.ok, || {
        format!(
            "kubectl apply of examples/hardened failed: {}",
            applied.all()
        )
    })?;
    let ns = "openclaw-hardened";
    wait_for_pod(env, ns)?;
    env.eventually(20, || {
        let out = env.kubectl(&[
            "-n",
            ns,
            "delete",
            "networkpolicy",
            "--all",
            "--dry-run=server",
        ]);
        if !out.ok && out.all().contains(&format!("running agent pod {ns}/")) {
            Ok(())
        } else {
            Err(format!("the example's policy was not held: {}", out.all()))
        }
    })?;
    let mut backward = forward.clone();
    backward.reverse();
    let mut args = with_files("delete", &backward);
    args.push("--wait=false");
    let deleted = env.kubectl(&args);
    expect(deleted.ok, || {
        format!(
            "kubectl delete -f of examples/hardened failed: {}",
            deleted.all()
        )
    })?;
    gone(env, &["namespace", ns])?;

    // 3. Deleting the agent's namespace.
    let ns = "e2e-uninstall-namespace";
    agent_namespace(env, ns, "edit")?;
    let applied = env.apply(&hardened_pod(ns, "claw"), &[]);
    expect(applied.ok, || {
        format!("the agent was not stored: {}", applied.all())
    })?;
    policy_delete_refused_naming(env, ns, "claw")?;
    let deleted = env.kubectl(&["delete", "namespace", ns, "--wait=false"]);
    expect(deleted.ok, || {
        format!("deleting the namespace failed: {}", deleted.all())
    })?;
    gone(env, &["namespace", ns])
}

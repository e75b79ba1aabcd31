//! The doors a tenant with `edit` rights tries (issue 24): each case makes the request as
//! `mallory` (bound to `edit` by a RoleBinding, not an approver) with the exact kubectl
//! command, expects the webhook's refusal naming the check, and, where the door is meant to
//! stay open for an approver, makes the same request as `bob` in the approver group.

use crate::support::*;
use crate::workloads::{
    audit_log_has, carries_the_box, register_catch_all, remove_catch_all, wait_for_pods,
};
use serde_json::{Value, json};

/// The door cases, in the order they run (registered in `cases::all`).
pub fn all() -> Vec<(&'static str, crate::cases::Case)> {
    vec![
        (
            "door_relabel_a_running_agent_is_refused_to_a_tenant_and_open_to_an_approver",
            relabel,
        ),
        (
            "door_proxy_and_debug_into_an_agent_are_refused_to_a_tenant_and_open_to_an_approver",
            proxy_and_debug,
        ),
        (
            "door_a_copy_of_the_image_under_another_name_is_an_agent_with_exec_and_relabel_rules",
            catch_all_copy,
        ),
        (
            "replication_controller_with_an_agent_template_is_refused_at_apply_for_a_tenant",
            replication_controllers,
        ),
        (
            "rbac_escape_manifest_is_refused_at_apply_with_each_power_named",
            rbac_escape,
        ),
    ]
}

/// examples/rbac-escape as a user applies it: the RBAC is stored, the agent Pod is refused
/// by `least-privilege-rbac` with each escape power named (the webhook reads the roles from
/// the cluster, not from the file).
fn rbac_escape(env: &Env) -> Result<(), String> {
    let dir = format!("{ROOT}/examples/rbac-escape");
    let ns = env.kubectl(&["apply", "-f", &format!("{dir}/namespace.yaml")]);
    expect(ns.ok, || ns.all())?;
    let outcome = (|| {
        // Everything but the Pod first (a dry run would not create the ServiceAccount the
        // Pod needs); the roles reach the webhook through its watches: ask with a dry run of
        // the whole set until they have, then apply it.
        let path = format!("{dir}/escape.yaml");
        let text = std::fs::read_to_string(&path).map_err(|e| format!("{path}: {e}"))?;
        let rbac: Vec<Value> = openclaw_admission::yaml::read_stream(
            &text,
            openclaw_admission::yaml::Duplicates::Refuse,
        )
        .map_err(|e| format!("{path}: {e}"))?
        .into_iter()
        .map(|d| d.value)
        .filter(|o| o["kind"] != "Pod")
        .collect();
        env.apply_docs(&rbac)?;
        env.eventually(30, || {
            let out = env.kubectl(&["apply", "--dry-run=server", "-f", &dir]);
            let text = out.all();
            if !out.ok
                && text.contains("(read Secrets beyond named ones)")
                && text.contains("(change admission webhooks or policies)")
            {
                Ok(())
            } else {
                Err(format!("not yet refused with the powers named: {text}"))
            }
        })?;
        let out = env.kubectl(&["apply", "-f", &dir]);
        let text = out.all();
        refused(&out, "validate.openclaw.io", "least-privilege-rbac")?;
        for power in [
            "(create pods)",
            "(create or change workloads)",
            "(exec, attach or port-forward into pods)",
            "(proxy to pods, Services or nodes)",
            "(add ephemeral containers to pods)",
            "(change network policies)",
            "(mint ServiceAccount tokens)",
            "(change admission webhooks or policies)",
            "(read Secrets beyond named ones)",
        ] {
            expect(text.contains(power), || {
                format!("{power} not named: {text}")
            })?;
        }
        expect(
            text.contains("Role agent-helper")
                && text.contains("ClusterRole openclaw-escape-agent-helper"),
            || format!("roles not named: {text}"),
        )?;
        let pod = env.kubectl(&["-n", "openclaw-escape", "get", "pod", "openclaw"]);
        expect(!pod.ok, || format!("the agent was stored: {}", pod.all()))
    })();
    let _ = env.kubectl(&[
        "delete",
        "--ignore-not-found",
        "--wait=false",
        "clusterrolebinding/openclaw-escape-agent-helper",
        "clusterrole/openclaw-escape-agent-helper",
        "namespace/openclaw-escape",
    ]);
    outcome
}

fn expect(cond: bool, what: impl FnOnce() -> String) -> Result<(), String> {
    if cond { Ok(()) } else { Err(what()) }
}

/// A namespace as a platform team hands it to a tenant: the agent's ServiceAccount, a
/// default-deny egress policy, `bob` and `mallory` bound to `edit`, and (so that `kubectl
/// debug` is the webhook's to refuse, not RBAC's: `edit` does not grant it) a Role for
/// `pods/ephemeralcontainers`.
fn tenant_namespace(env: &Env, ns: &str) -> Result<(), String> {
    env.apply_docs(&[
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}),
        json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": AGENT_SA, "namespace": ns}}),
        deny_egress_policy(ns),
    ])?;
    editors(env, ns)?;
    debuggers(env, ns)?;
    env.wait_for_default_service_account(ns)
}

/// `kubectl -n <ns> <who> <args>`.
fn as_who(env: &Env, ns: &str, who: &[&str], args: &[&str]) -> Output {
    // Global flags first: after `--` they would be the exec'd command's.
    let mut all = vec!["-n", ns];
    all.extend_from_slice(who);
    all.extend_from_slice(args);
    env.kubectl(&all)
}

/// Refused by the webhook `entry`, naming `check`.
fn refused(out: &Output, entry: &str, check: &str) -> Result<(), String> {
    let text = out.all();
    expect(
        !out.ok && text.contains(entry) && text.contains(check),
        || format!("expected a refusal by {entry} naming {check}: {text}"),
    )
}

/// Stores `pod` as the tenant, retrying while the watches catch up with a new namespace.
fn store_as_tenant(env: &Env, pod: &Value) -> Result<(), String> {
    env.eventually(20, || {
        let out = env.apply(pod, &AS_USER);
        if out.ok {
            Ok(())
        } else {
            Err(format!("tenant's hardened agent refused: {}", out.all()))
        }
    })
}

fn relabel(env: &Env) -> Result<(), String> {
    let ns = "e2e-door-relabel";
    tenant_namespace(env, ns)?;
    store_as_tenant(env, &hardened_pod(ns, "agent"))?;

    // Dropping the label, or changing it: refused to the tenant.
    let out = as_who(env, ns, &AS_USER, &["label", "pod", "agent", "app-"]);
    refused(&out, "validate.openclaw.io", "relabel-requires-approval")?;
    expect(out.all().contains("metadata.labels.app"), || {
        format!("the refusal does not name the label: {}", out.all())
    })?;
    let out = as_who(
        env,
        ns,
        &AS_USER,
        &["label", "pod", "agent", "app=gateway", "--overwrite"],
    );
    refused(&out, "validate.openclaw.io", "relabel-requires-approval")?;
    // Other labels stay the tenant's.
    let out = as_who(
        env,
        ns,
        &AS_USER,
        &["label", "pod", "agent", "team=research"],
    );
    expect(out.ok, || {
        format!("a free label was refused: {}", out.all())
    })?;

    // A privileged hostPID pod the webhook never judged does not become an agent by a label.
    let plain = json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "plain", "namespace": ns, "labels": {"app": "web"}},
        "spec": {"hostPID": true, "containers": [{"name": "web", "image": "nginx:1.27",
            "securityContext": {"privileged": true}}]}});
    let out = env.apply(&plain, &AS_USER);
    expect(out.ok, || format!("non-agent pod refused: {}", out.all()))?;
    let out = as_who(
        env,
        ns,
        &AS_USER,
        &["label", "pod", "plain", "app=openclaw", "--overwrite"],
    );
    refused(&out, "validate.openclaw.io", "no-host-access")?;

    // The approver may relabel (the pod then leaves the box on purpose).
    let out = as_who(env, ns, &AS_APPROVER, &["label", "pod", "agent", "app-"]);
    expect(out.ok, || {
        format!("approver's relabel refused: {}", out.all())
    })?;
    let labels = env.get_pod(ns, "agent")?["metadata"]["labels"].clone();
    expect(labels.get("app").is_none(), || {
        format!("label still there: {labels}")
    })
}

fn proxy_and_debug(env: &Env) -> Result<(), String> {
    let ns = "e2e-door-proxy";
    tenant_namespace(env, ns)?;
    store_as_tenant(env, &hardened_pod(ns, "agent"))?;
    let service = json!({"apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "gateway", "namespace": ns},
        "spec": {"selector": {"app": "openclaw"}, "ports": [{"port": 18789}]}});
    let out = env.apply(&service, &AS_USER);
    expect(out.ok, || format!("service refused: {}", out.all()))?;

    // pods/proxy and services/proxy, as `kubectl proxy` would forward them.
    for path in [
        format!("/api/v1/namespaces/{ns}/pods/agent:18789/proxy/"),
        format!("/api/v1/namespaces/{ns}/pods/https:agent:18789/proxy/healthz"),
        format!("/api/v1/namespaces/{ns}/services/gateway:18789/proxy/"),
    ] {
        let out = env.kubectl(&["get", "--raw", &path, AS_USER[0]]);
        refused(&out, "validate-exec.openclaw.io", "exec-requires-approval")
            .map_err(|e| format!("{path}: {e}"))?;
        // The approver passes admission; the API server then finds no kubelet or endpoint
        // to forward to here, an error of its own.
        let mut args = vec!["get", "--raw", path.as_str()];
        args.extend_from_slice(&AS_APPROVER);
        let out = env.kubectl(&args);
        expect(!out.all().contains("exec-requires-approval"), || {
            format!("{path}: approver refused by the webhook: {}", out.all())
        })?;
    }

    // `kubectl debug --target=agent`, hardened in every way the checks ask, reading the
    // agent's environment: what kubectl sends is this patch of the ephemeralcontainers
    // subresource.
    let debug = |name: &str, who: &[&str]| {
        let patch = json!({"spec": {"ephemeralContainers": [{"name": name, "image": "busybox",
            "targetContainerName": "agent", "command": ["cat", "/proc/1/environ"],
            "securityContext": {"runAsNonRoot": true, "runAsUser": 10001,
                "readOnlyRootFilesystem": true, "allowPrivilegeEscalation": false,
                "capabilities": {"drop": ["ALL"]}, "seccompProfile": {"type": "RuntimeDefault"}}}]}});
        as_who(
            env,
            ns,
            who,
            &[
                "patch",
                "pod",
                "agent",
                "--subresource=ephemeralcontainers",
                "--type=strategic",
                "-p",
                &patch.to_string(),
            ],
        )
    };
    let out = debug("peek", &AS_USER);
    refused(&out, "validate.openclaw.io", "exec-requires-approval")?;
    expect(
        out.all().contains("add a debug container to agent pod"),
        || format!("the refusal does not say what was refused: {}", out.all()),
    )?;
    let out = debug("approved", &AS_APPROVER);
    expect(out.ok, || {
        format!("approver's hardened debug container refused: {}", out.all())
    })
}

fn catch_all_copy(env: &Env) -> Result<(), String> {
    let ns = "e2e-door-copy";
    tenant_namespace(env, ns)?;
    register_catch_all(env)?;
    let result = (|| {
        // The OpenClaw image pushed under another name (the e2e policy lists
        // `*/agents/openclaw*`), with no agent label.
        let copy = |name: &str| {
            let mut p = hardened_pod(ns, name);
            p["metadata"]["labels"] = json!({"team": "research"});
            for list in ["initContainers", "containers"] {
                p["spec"][list][0]["image"] =
                    json!("registry.example:5000/agents/openclaw-custom:1");
            }
            p
        };
        let mut bad = copy("copy-bad");
        bad["spec"]["hostNetwork"] = json!(true);
        env.eventually(20, || {
            let out = env.apply(&bad, &AS_USER);
            if out.ok {
                let _ = env.kubectl(&["-n", ns, "delete", "pod", "copy-bad", "--wait=false"]);
                Err(format!("unhardened copy accepted: {}", out.all()))
            } else if out.all().contains("no-host-access") {
                Ok(())
            } else {
                Err(format!("refused for another reason: {}", out.all()))
            }
        })?;
        store_as_tenant(env, &copy("copy"))?;
        // The exec rule holds for it.
        let out = as_who(
            env,
            ns,
            &AS_USER,
            &["exec", "copy", "-c", "agent", "--", "cat", "/etc/hostname"],
        );
        refused(&out, "validate-exec.openclaw.io", "exec-requires-approval")?;
        let out = as_who(
            env,
            ns,
            &AS_APPROVER,
            &["exec", "copy", "-c", "agent", "--", "cat", "/etc/hostname"],
        );
        expect(!out.all().contains("exec-requires-approval"), || {
            format!("approver's exec refused: {}", out.all())
        })?;
        // Swapping the image for another is taking the agent's identity off it.
        let out = as_who(
            env,
            ns,
            &AS_USER,
            &[
                "set",
                "image",
                "pod/copy",
                "agent=nginx:1.27",
                "init-workspace=nginx:1.27",
            ],
        );
        refused(
            &out,
            "validate-catchall.openclaw.io",
            "relabel-requires-approval",
        )
    })();
    remove_catch_all(env);
    result
}

/// A ReplicationController named `name` around `pod`'s template: core/v1, its selector a
/// plain label map, its Pods found by the `e2e-workload` label as in tests/e2e/workloads.rs.
fn replication_controller(ns: &str, name: &str, pod: &Value) -> Value {
    let mut meta = pod["metadata"].clone();
    if let Some(m) = meta.as_object_mut() {
        m.remove("name");
        m.remove("namespace");
        m.entry("labels").or_insert(json!({}))["e2e-workload"] = name.into();
    }
    json!({"apiVersion": "v1", "kind": "ReplicationController",
        "metadata": {"name": name, "namespace": ns},
        "spec": {"replicas": 1, "selector": {"e2e-workload": name},
            "template": {"metadata": meta, "spec": pod["spec"]}}})
}

/// Door 6: `kubectl apply -f rc.yaml --as=mallory` of an agent ReplicationController is judged
/// at its template like a Deployment (it used to pass apply and have its Pods refused later,
/// one silent event at a time); a hardened one gets Pods from kube-controller-manager's
/// ReplicationController loop carrying the box; an approver's exemption stamped into its
/// template reaches those Pods, made as `replication-controller`.
fn replication_controllers(env: &Env) -> Result<(), String> {
    let ns = NS_ENFORCE;
    editors(env, ns)?;

    let mut escalating = hardened_pod(ns, "x");
    escalating["spec"]["containers"][0]["securityContext"]["allowPrivilegeEscalation"] =
        json!(true);
    let out = env.apply(
        &replication_controller(ns, "rc-escalating", &escalating),
        &AS_USER,
    );
    expect(!out.ok, || {
        format!("tenant's unhardened RC stored: {}", out.all())
    })?;
    expect(
        out.all().contains("no-privilege-escalation")
            && out
                .all()
                .contains("spec.template.spec.containers[0].securityContext"),
        || {
            format!(
                "refused without the check id and template path: {}",
                out.all()
            )
        },
    )?;
    expect(
        !env.kubectl(&["-n", ns, "get", "replicationcontroller", "rc-escalating"])
            .ok,
        || "the refused RC exists".into(),
    )?;

    let out = env.apply(
        &replication_controller(ns, "rc-hardened", &hardened_pod(ns, "x")),
        &AS_USER,
    );
    expect(out.ok, || {
        format!("tenant's hardened RC refused: {}", out.all())
    })?;
    for p in wait_for_pods(env, ns, "rc-hardened")? {
        carries_the_box(&p).map_err(|e| format!("RC rc-hardened: {e}"))?;
    }

    let mut writable = hardened_pod(ns, "x");
    writable["spec"]["containers"][0]["securityContext"]["readOnlyRootFilesystem"] = json!(false);
    writable["metadata"]["annotations"]["openclaw.io/exempt"] = "read-only-root-filesystem".into();
    let out = env.apply(
        &replication_controller(ns, "rc-approved", &writable),
        &AS_APPROVER,
    );
    expect(out.ok, || format!("approver's RC refused: {}", out.all()))?;
    let stored = env.kubectl_json(&[
        "-n",
        ns,
        "get",
        "replicationcontroller",
        "rc-approved",
        "-o",
        "json",
    ])?;
    let stamp = stored["spec"]["template"]["metadata"]["annotations"]["openclaw.io/approval"]
        .as_str()
        .unwrap_or_default();
    expect(
        stamp.contains("kind=ReplicationController;name=rc-approved"),
        || {
            format!(
                "no approval stamp for the RC: {}",
                stored["spec"]["template"]["metadata"]
            )
        },
    )?;
    carries_the_box(&wait_for_pods(env, ns, "rc-approved")?[0])?;
    expect(
        audit_log_has(
            env,
            &[
                "system:serviceaccount:kube-system:replication-controller",
                "openclaw-approval",
                "bob",
            ],
        ),
        || "no audit event of the RC controller's Pod naming the approval and bob".into(),
    )?;

    // The tenant's own exemption request on an RC is not honoured.
    let out = env.apply(
        &replication_controller(ns, "rc-self-approved", &writable),
        &AS_USER,
    );
    expect(!out.ok, || {
        format!("tenant's exemption on an RC honoured: {}", out.all())
    })?;
    expect(out.all().contains("read-only-root-filesystem"), || {
        out.all()
    })
}

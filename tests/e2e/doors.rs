//! The doors a tenant with `edit` rights tries (issue 24): each case makes the request as
//! `mallory` (bound to `edit` by a RoleBinding, not an approver) with the exact kubectl
//! command, expects the webhook's refusal naming the check, and, where the door is meant to
//! stay open for an approver, makes the same request as `bob` in the approver group.

use crate::support::*;
use crate::workloads::{audit_log_has, carries_the_box, wait_for_pods};
use serde_json::{Value, json};

fn expect(cond: bool, what: impl FnOnce() -> String) -> Result<(), String> {
    if cond { Ok(()) } else { Err(what()) }
}

/// The door cases, in the order they run (registered in `cases::all`).
pub fn all() -> Vec<(&'static str, crate::cases::Case)> {
    vec![(
        "replication_controller_with_an_agent_template_is_refused_at_apply_for_a_tenant",
        replication_controllers,
    )]
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

//! The Pods agent-sandbox's controller makes: agents by their `Sandbox` owner, mutated like
//! other agent Pods (named after the template they came from), and approvals that reach them
//! through the chain Pod -> Sandbox -> SandboxClaim or SandboxWarmPool -> SandboxTemplate.
//! Objects are shaped as agent-sandbox v1.0.1's controllers write them.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::approval::grant::APPROVAL_ANNOTATION;
use super::approval::stamp::APPROVAL_STAMP;
use super::checks::fixtures::{NS, hardened, hardened_view};
use super::mutations::otel_env::SERVICE_NAME;
use super::policy::{Policy, default_controller_users};
use super::review::{Review, Subject};
use super::review::{TEMPLATE_REF_HASH_LABEL, name_hash};
use super::view::{StaticView, VIEW_KINDS};
use super::{Decision, Skip, evaluate, mutate};
use crate::engine::pod::Pod;
use serde_json::{Value, json};
use std::sync::Arc;

const CONTROLLER: &str = "system:serviceaccount:agent-sandbox-system:agent-sandbox-controller";
const APPROVER: (&str, &[&str]) = ("bob", &["system:authenticated", "openclaw:approvers"]);
const TENANT: (&str, &[&str]) = ("mallory", &["system:authenticated"]);
const CONTROLLER_USER: (&str, &[&str]) = (
    CONTROLLER,
    &[
        "system:serviceaccounts",
        "system:serviceaccounts:agent-sandbox-system",
    ],
);
const EXEMPT: &str = "read-only-root-filesystem";
const TEMPLATE: &str = "openclaw-hardened";
const POOL: &str = "openclaw-pool";
const CLAIM: &str = "my-claim";
const NOW: i64 = 1_796_000_000;

fn review(kind: &str, op: &str, object: Value, user: (&str, &[&str])) -> Review {
    let subject = Subject::from_value(kind, object.clone()).unwrap();
    let api_version = match kind {
        "Pod" => "v1".to_string(),
        k => format!("{}/v1beta1", super::review::sandbox_group_of(k).unwrap()),
    };
    let name = object["metadata"]["name"].as_str().unwrap_or("");
    let mut r = Review::dry_run_create(kind, &api_version, NS, name, user.0, subject, NOW);
    r.user.groups = user.1.iter().map(|g| g.to_string()).collect();
    if op == "UPDATE" {
        r.operation = super::review::Operation::Update;
    }
    r
}

fn keyed_policy() -> Policy {
    Policy {
        approval_key: Some(Arc::new(super::policy::ApprovalKey::new(
            b"0123456789abcdef0123456789abcdef".to_vec(),
        ))),
        ..Default::default()
    }
}

/// The hardened fixture without the agent label (agent-sandbox's example labels its Pods
/// `sandbox: openclaw`, which no default selector knows); `writable` also asks for the
/// exemption it needs.
fn agent_pod(writable: bool) -> Pod {
    let mut p = hardened();
    if writable {
        p = p
            .annotation("openclaw.io/exempt", EXEMPT)
            .read_only_root_filesystem(false);
    }
    let mut pod = p.build();
    pod.metadata.labels = Some([("sandbox".to_string(), "openclaw".to_string())].into());
    pod
}

fn pod_template(pod: &Pod) -> Value {
    json!({"metadata": pod.metadata, "spec": pod.spec})
}

fn sandbox_template(name: &str, pod: &Pod) -> Value {
    json!({"apiVersion": "extensions.agents.x-k8s.io/v1beta1", "kind": "SandboxTemplate",
        "metadata": {"name": name, "namespace": NS},
        "spec": {"podTemplate": pod_template(pod), "networkPolicyManagement": "Unmanaged"}})
}

/// The template after the mutating webhook's patch for an approver.
fn stamped_template(name: &str, policy: &Policy) -> Value {
    let t = sandbox_template(name, &agent_pod(true));
    let d = mutate(
        &review("SandboxTemplate", "CREATE", t.clone(), APPROVER),
        policy,
        &hardened_view(),
    )
    .unwrap();
    assert_eq!(d.mutations, [APPROVAL_STAMP], "{d:?}");
    let mut doc = t;
    json_patch::patch(&mut doc, &d.patch.unwrap().to_json_patch()).unwrap();
    doc
}

/// A Sandbox as the warm pool (or, once adopted, the claim) controller makes it from
/// `template`: the template's pod template with the controller's labels and secure defaults.
fn sandbox_from(template: &Value, name: &str, owner_kind: &str, owner: &str) -> Value {
    let tname = template["metadata"]["name"].as_str().unwrap();
    let mut pt = template["spec"]["podTemplate"].clone();
    let labels = pt["metadata"]["labels"].as_object_mut().unwrap();
    labels.insert(
        "agents.x-k8s.io/warm-pool-sandbox".into(),
        name_hash(POOL).into(),
    );
    labels.insert(TEMPLATE_REF_HASH_LABEL.into(), name_hash(tname).into());
    labels.insert(
        "agents.x-k8s.io/sandbox-template-hash".into(),
        "5f4d".into(),
    );
    if owner_kind == "SandboxClaim" {
        labels.insert("agents.x-k8s.io/claim-uid".into(), "0d6c2a".into());
    }
    pt["spec"]["automountServiceAccountToken"] = false.into();
    json!({"apiVersion": "agents.x-k8s.io/v1beta1", "kind": "Sandbox",
        "metadata": {"name": name, "namespace": NS,
            "labels": {TEMPLATE_REF_HASH_LABEL: name_hash(tname)},
            "annotations": {"agents.x-k8s.io/sandbox-template-ref": tname},
            "ownerReferences": [{"apiVersion": "extensions.agents.x-k8s.io/v1beta1",
                "kind": owner_kind, "name": owner, "uid": "u-1", "controller": true}]},
        "spec": {"podTemplate": pt}})
}

/// The Pod agent-sandbox's Sandbox controller makes for `sandbox`: its pod template's
/// non-reserved labels and annotations, its own name-hash label, the template-ref hash
/// copied from the Sandbox, and the Sandbox as controller owner.
fn pod_from(sandbox: &Value) -> Value {
    let name = sandbox["metadata"]["name"].as_str().unwrap();
    let pt = &sandbox["spec"]["podTemplate"];
    // The template's keys but the reserved ones, which the controller never copies.
    let copied = |field: &str| -> serde_json::Map<String, Value> {
        pt["metadata"][field]
            .as_object()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .filter(|(k, _)| !k.starts_with("agents.x-k8s.io/"))
            .collect()
    };
    let mut labels = copied("labels");
    labels.insert(
        "agents.x-k8s.io/sandbox-name-hash".into(),
        name_hash(name).into(),
    );
    if let Some(h) = sandbox["metadata"]["labels"][TEMPLATE_REF_HASH_LABEL].as_str() {
        labels.insert(TEMPLATE_REF_HASH_LABEL.into(), h.into());
    }
    let annotations = copied("annotations");
    json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": NS, "labels": labels, "annotations": annotations,
            "ownerReferences": [{"apiVersion": "agents.x-k8s.io/v1beta1", "kind": "Sandbox",
                "name": name, "uid": "s-1", "controller": true, "blockOwnerDeletion": true}]},
        "spec": pt["spec"]})
}

/// The hardened view plus the template, the pool naming it and the claim naming the pool.
fn view_with_chain(template: &Value) -> StaticView {
    let mut v = hardened_view();
    assert!(!VIEW_KINDS.contains(&"SandboxTemplate"));
    v.add(template, NS).unwrap();
    v.add(
        &json!({"apiVersion": "extensions.agents.x-k8s.io/v1beta1", "kind": "SandboxWarmPool",
            "metadata": {"name": POOL, "namespace": NS},
            "spec": {"replicas": 1, "sandboxTemplateRef": {"name": template["metadata"]["name"]}}}),
        NS,
    )
    .unwrap();
    v.add(
        &json!({"apiVersion": "extensions.agents.x-k8s.io/v1beta1", "kind": "SandboxClaim",
            "metadata": {"name": CLAIM, "namespace": NS},
            "spec": {"warmPoolRef": {"name": POOL}}}),
        NS,
    )
    .unwrap();
    v
}

fn exempted(d: &Decision) -> Vec<&str> {
    d.exempted.iter().map(|(c, _)| c.as_str()).collect()
}

fn env_value(patched: &Value, name: &str) -> Option<String> {
    patched["spec"]["containers"][0]["env"]
        .as_array()?
        .iter()
        .find(|e| e["name"] == name)
        .and_then(|e| e["value"].as_str())
        .map(String::from)
}

fn mutated(pod: Value, view: &StaticView) -> Value {
    let mut policy = Policy::default();
    policy
        .mutations
        .secrets_store
        .namespace_defaults
        .insert(NS.to_string(), "vault-agent".to_string());
    let d = mutate(
        &review("Pod", "CREATE", pod.clone(), CONTROLLER_USER),
        &policy,
        view,
    )
    .unwrap();
    assert!(d.allowed, "{d:?}");
    let mut doc = pod;
    json_patch::patch(&mut doc, &d.patch.expect("a patch").to_json_patch()).unwrap();
    doc
}

#[test]
fn the_controllers_identity_is_a_default_controller_user() {
    assert!(default_controller_users().iter().any(|u| u == CONTROLLER));
}

#[test]
fn a_pod_a_sandbox_controls_is_an_agent_without_any_agent_label() {
    let t = sandbox_template(TEMPLATE, &agent_pod(false));
    let s = sandbox_from(&t, "openclaw-pool-x7k2p", "SandboxWarmPool", POOL);
    let mut unhardened = pod_from(&s);
    unhardened["spec"]["containers"][0]["securityContext"]["readOnlyRootFilesystem"] = false.into();
    let d = evaluate(
        &review("Pod", "CREATE", unhardened.clone(), CONTROLLER_USER),
        &Policy::default(),
        &hardened_view(),
    );
    assert!(!d.allowed, "{d:?}");
    assert!(
        d.violations.iter().any(|j| j.violation.check == EXEMPT),
        "{d:?}"
    );

    // The same Pod under another owner, or owned by a `Sandbox` of another group, is not.
    for (api_version, kind) in [
        ("agents.x-k8s.io/v1beta1", "SandboxWarmPool"),
        ("example.com/v1", "Sandbox"),
    ] {
        let mut other = unhardened.clone();
        other["metadata"]["ownerReferences"][0]["apiVersion"] = api_version.into();
        other["metadata"]["ownerReferences"][0]["kind"] = kind.into();
        let d = evaluate(
            &review("Pod", "CREATE", other, CONTROLLER_USER),
            &Policy::default(),
            &hardened_view(),
        );
        assert!(
            d.allowed && d.skipped == Some(Skip::NotAnAgent),
            "{kind}: {d:?}"
        );
    }

    // `agentSandbox.allAgents: false` leaves Sandboxes' Pods to the agent selectors; its
    // selector narrows them by the Pod's labels.
    let mut off = Policy::default();
    off.agent_sandbox.all_agents = false;
    let d = evaluate(
        &review("Pod", "CREATE", unhardened.clone(), CONTROLLER_USER),
        &off,
        &hardened_view(),
    );
    assert_eq!(d.skipped, Some(Skip::NotAnAgent), "{d:?}");
    let mut narrowed = Policy::default();
    narrowed.agent_sandbox.selector =
        Some(serde_json::from_value(json!({"matchLabels": {"sandbox": "other"}})).unwrap());
    let d = evaluate(
        &review("Pod", "CREATE", unhardened, CONTROLLER_USER),
        &narrowed,
        &hardened_view(),
    );
    assert_eq!(d.skipped, Some(Skip::NotAnAgent), "{d:?}");
}

#[test]
fn a_pools_pod_is_mutated_and_named_after_its_template_a_direct_sandboxs_after_itself() {
    let t = sandbox_template(TEMPLATE, &agent_pod(false));
    let view = view_with_chain(&t);
    let pool_pod = pod_from(&sandbox_from(
        &t,
        "openclaw-pool-x7k2p",
        "SandboxWarmPool",
        POOL,
    ));
    let patched = mutated(pool_pod, &view);
    assert_eq!(env_value(&patched, SERVICE_NAME).as_deref(), Some(TEMPLATE));
    let volumes = patched["spec"]["volumes"].as_array().unwrap();
    let token = volumes
        .iter()
        .find_map(|v| {
            v["projected"]["sources"]
                .as_array()?
                .iter()
                .find_map(|s| s["serviceAccountToken"]["expirationSeconds"].as_i64())
        })
        .expect("a projected token");
    assert!(token <= 3600, "{token}");
    assert!(
        volumes
            .iter()
            .any(|v| v["csi"]["driver"] == "secrets-store.csi.k8s.io"),
        "{volumes:?}"
    );

    // A Sandbox applied directly has no template: its Pod is named after the Sandbox.
    let direct = json!({"apiVersion": "agents.x-k8s.io/v1beta1", "kind": "Sandbox",
        "metadata": {"name": "direct-agent", "namespace": NS},
        "spec": {"podTemplate": pod_template(&agent_pod(false))}});
    let patched = mutated(pod_from(&direct), &view);
    assert_eq!(
        env_value(&patched, SERVICE_NAME).as_deref(),
        Some("direct-agent")
    );
}

#[test]
fn a_templates_approval_reaches_the_sandboxes_its_pool_and_claim_take_and_their_pods() {
    let policy = keyed_policy();
    let t = stamped_template(TEMPLATE, &policy);
    assert!(
        t["spec"]["podTemplate"]["metadata"]["annotations"][APPROVAL_ANNOTATION]
            .as_str()
            .unwrap()
            .contains("kind=SandboxTemplate;name=openclaw-hardened")
    );
    let view = view_with_chain(&t);

    // The pool's Sandbox, created by the controller.
    let pooled = sandbox_from(&t, "openclaw-pool-x7k2p", "SandboxWarmPool", POOL);
    let d = evaluate(
        &review("Sandbox", "CREATE", pooled.clone(), CONTROLLER_USER),
        &policy,
        &view,
    );
    assert!(d.allowed, "{d:?}");
    assert_eq!(exempted(&d), [EXEMPT]);

    // Adoption: the claim becomes the controller owner and adds its identity label.
    let adopted = sandbox_from(&t, "openclaw-pool-x7k2p", "SandboxClaim", CLAIM);
    let mut r = review("Sandbox", "UPDATE", adopted.clone(), CONTROLLER_USER);
    r.old_object = Subject::from_value("Sandbox", pooled).unwrap();
    let d = evaluate(&r, &policy, &view);
    assert!(d.allowed, "{d:?}");
    assert_eq!(exempted(&d), [EXEMPT]);

    // The Pod of either.
    let d = evaluate(
        &review("Pod", "CREATE", pod_from(&adopted), CONTROLLER_USER),
        &policy,
        &view,
    );
    assert!(d.allowed, "{d:?}");
    assert_eq!(exempted(&d), [EXEMPT]);
}

#[test]
fn a_templates_approval_reaches_nothing_else() {
    let policy = keyed_policy();
    let t = stamped_template(TEMPLATE, &policy);
    let view = view_with_chain(&t);
    let pooled = sandbox_from(&t, "openclaw-pool-x7k2p", "SandboxWarmPool", POOL);
    // Each is created by `user` and refused: the stamp does not hold for it.
    let refused = |what: &str, kind: &str, object: Value, user, view: &StaticView| {
        let d = evaluate(&review(kind, "CREATE", object, user), &policy, view);
        assert!(!d.allowed, "{what}: {d:?}");
    };

    // A tenant writing the controller's Sandbox, stamp and all.
    refused("tenant's Sandbox", "Sandbox", pooled.clone(), TENANT, &view);

    // The stamp copied onto another template: that template's Sandboxes and Pods. (The
    // copy on the template itself is the tenant's own request, judged without it.)
    let mut copy = t.clone();
    copy["metadata"]["name"] = "tenant-copy".into();
    refused(
        "copied template",
        "SandboxTemplate",
        copy.clone(),
        TENANT,
        &view,
    );
    let mut v2 = view_with_chain(&copy);
    v2.add(&t, NS).unwrap();
    let other = sandbox_from(&copy, "openclaw-pool-q9w8e", "SandboxWarmPool", POOL);
    refused(
        "copy's Sandbox",
        "Sandbox",
        other.clone(),
        CONTROLLER_USER,
        &v2,
    );
    refused("copy's Pod", "Pod", pod_from(&other), CONTROLLER_USER, &v2);

    // Content the approver did not sign: a Sandbox the controller made from the template but
    // with a claim's env added.
    let mut with_env = sandbox_from(&t, "my-claim", "SandboxClaim", CLAIM);
    with_env["spec"]["podTemplate"]["spec"]["containers"][0]["env"] =
        json!([{"name": "MODEL", "value": "large"}]);
    refused("claim's env", "Sandbox", with_env, CONTROLLER_USER, &view);

    // A Pod whose template label names another template, and one a person creates.
    let mut relabelled = pod_from(&pooled);
    relabelled["metadata"]["labels"][TEMPLATE_REF_HASH_LABEL] = name_hash("tenant-copy").into();
    refused(
        "other template's label",
        "Pod",
        relabelled,
        CONTROLLER_USER,
        &view,
    );
    refused("tenant's Pod", "Pod", pod_from(&pooled), TENANT, &view);

    // A claim the view does not hold: the chain is not followed.
    let unknown = sandbox_from(&t, "other-claim", "SandboxClaim", "not-held");
    refused("unknown claim", "Sandbox", unknown, CONTROLLER_USER, &view);
}

#[test]
fn a_sandboxs_own_approval_reaches_its_pod_only() {
    let policy = keyed_policy();
    let s = json!({"apiVersion": "agents.x-k8s.io/v1beta1", "kind": "Sandbox",
        "metadata": {"name": "direct-agent", "namespace": NS},
        "spec": {"podTemplate": pod_template(&agent_pod(true))}});
    let d = mutate(
        &review("Sandbox", "CREATE", s.clone(), APPROVER),
        &policy,
        &hardened_view(),
    )
    .unwrap();
    assert_eq!(d.mutations, [APPROVAL_STAMP], "{d:?}");
    let mut stamped = s;
    json_patch::patch(&mut stamped, &d.patch.unwrap().to_json_patch()).unwrap();
    let pod = pod_from(&stamped);
    let d = evaluate(
        &review("Pod", "CREATE", pod.clone(), CONTROLLER_USER),
        &policy,
        &hardened_view(),
    );
    assert!(d.allowed, "{d:?}");
    assert_eq!(exempted(&d), [EXEMPT]);
    // The same Pod under another Sandbox's name.
    let mut moved = pod;
    moved["metadata"]["ownerReferences"][0]["name"] = "other-agent".into();
    let d = evaluate(
        &review("Pod", "CREATE", moved, CONTROLLER_USER),
        &policy,
        &hardened_view(),
    );
    assert!(!d.allowed, "{d:?}");
}

#[test]
fn name_hash_is_agent_sandboxs_fnv_1a() {
    // Values printed by Go's hash/fnv New32a, as agent-sandbox's NameHash formats them.
    assert_eq!(name_hash("openclaw-hardened"), "7970da52");
    assert_eq!(name_hash(""), "811c9dc5");
    assert_eq!(name_hash("a"), "e40c292c");
    assert_eq!(name_hash("python-sandbox-template"), "d274c066");
}

#[test]
fn taking_the_sandbox_owner_off_its_pod_is_refused_to_a_tenant() {
    let t = sandbox_template(TEMPLATE, &agent_pod(false));
    let old = pod_from(&sandbox_from(
        &t,
        "openclaw-pool-x7k2p",
        "SandboxWarmPool",
        POOL,
    ));
    let mut new = old.clone();
    new["metadata"]
        .as_object_mut()
        .unwrap()
        .remove("ownerReferences");
    let update = |user| {
        let mut r = review("Pod", "UPDATE", new.clone(), user);
        r.old_object = Subject::from_value("Pod", old.clone()).unwrap();
        r
    };
    let d = evaluate(&update(TENANT), &Policy::default(), &hardened_view());
    assert!(!d.allowed, "{d:?}");
    let v = d
        .violations
        .iter()
        .find(|j| j.violation.check == "relabel-requires-approval")
        .expect("a relabel violation");
    assert_eq!(v.violation.path, "metadata.ownerReferences");
    assert!(
        v.violation.message.contains("Sandbox owner reference"),
        "{v:?}"
    );
    // The controller orphaning its own Pod is a controller's business.
    let d = evaluate(
        &update(CONTROLLER_USER),
        &Policy::default(),
        &hardened_view(),
    );
    assert!(
        !d.violations
            .iter()
            .any(|j| j.violation.check == "relabel-requires-approval"),
        "{d:?}"
    );
}

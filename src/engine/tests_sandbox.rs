//! agent-sandbox objects through `engine::evaluate`: `Sandbox` and `SandboxTemplate` judged at
//! `spec.podTemplate.spec`, a managed template's NetworkPolicy judged for egress, and claims
//! judged for what they add.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::checks::fixtures::{NS, hardened, hardened_view, pod};
use super::policy::Policy;
use super::review::{Review, Subject};
use super::view::{ClusterView, StaticView};
use super::{Decision, Skip, evaluate};
use serde_json::{Value, json};

const ADMIN: (&str, &[&str]) = ("alice", &["system:authenticated"]);
const APPROVER: (&str, &[&str]) = ("bob", &["system:authenticated", "openclaw:approvers"]);

fn review(kind: &str, object: Value, user: (&str, &[&str])) -> Review {
    let subject = Subject::from_value(kind, object).unwrap();
    let group = super::review::sandbox_group_of(kind).unwrap();
    let mut r = Review::dry_run_create(
        kind,
        &format!("{group}/v1beta1"),
        NS,
        "agent",
        user.0,
        subject,
        0,
    );
    r.user.groups = user.1.iter().map(|g| g.to_string()).collect();
    r
}

/// The hardened fixture pod as a pod template, its agent labels swapped for the label the
/// agent-sandbox examples use, so only the kind makes it an agent.
fn pod_template(hardened_pod: bool) -> Value {
    let p = if hardened_pod {
        hardened()
    } else {
        pod("agent").container("openclaw")
    }
    .build();
    let mut t = json!({"metadata": {"labels": {"sandbox": "openclaw"}}, "spec": p.spec});
    if !hardened_pod {
        t["spec"]["containers"][0]["image"] = json!("ghcr.io/openclaw/openclaw:2026.3.23");
    }
    t
}

fn sandbox(hardened_pod: bool) -> Value {
    json!({"apiVersion": "agents.x-k8s.io/v1beta1", "kind": "Sandbox",
        "metadata": {"name": "agent", "namespace": NS},
        "spec": {"podTemplate": pod_template(hardened_pod)}})
}

fn template(spec_extra: Value) -> Value {
    let mut spec = json!({"podTemplate": pod_template(true)});
    for (k, v) in spec_extra.as_object().unwrap() {
        spec[k] = v.clone();
    }
    json!({"apiVersion": "extensions.agents.x-k8s.io/v1beta1", "kind": "SandboxTemplate",
        "metadata": {"name": "openclaw", "namespace": NS}, "spec": spec})
}

/// `spec.networkPolicy` allowing DNS and HTTPS, the default allow-list.
fn dns_and_https() -> Value {
    json!({"egress": [
        {"ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}]},
        {"ports": [{"protocol": "TCP", "port": 443}]}
    ]})
}

fn paths(d: &Decision) -> Vec<&str> {
    d.violations
        .iter()
        .map(|j| j.violation.path.as_str())
        .collect()
}

fn checks(d: &Decision) -> Vec<&str> {
    d.violations.iter().map(|j| j.violation.check).collect()
}

#[test]
fn an_unhardened_sandbox_is_an_agent_by_its_kind_and_refused_at_its_pod_template() {
    let d = evaluate(
        &review("Sandbox", sandbox(false), ADMIN),
        &Policy::default(),
        &hardened_view(),
    );
    assert!(!d.allowed, "{d:?}");
    assert!(!paths(&d).is_empty());
    for p in paths(&d) {
        assert!(
            p.starts_with("spec.podTemplate.spec") || p.starts_with("spec.podTemplate.metadata"),
            "{p}"
        );
    }
    assert!(
        paths(&d).contains(
            &"spec.podTemplate.spec.containers[0].securityContext.readOnlyRootFilesystem"
        ),
        "{:?}",
        paths(&d)
    );
    let message = d.message.unwrap();
    assert!(
        message.contains("refused Sandbox agents/agent"),
        "{message}"
    );
}

#[test]
fn a_hardened_sandbox_passes_and_what_the_pod_mutation_adds_is_not_asked_of_it() {
    let mut s = sandbox(true);
    // The mutation replaces the token volume; a template without it is not refused for that.
    s["spec"]["podTemplate"]["spec"]["volumes"] = json!([{"name": "tmp", "emptyDir": {}}]);
    s["spec"]["podTemplate"]["spec"]["containers"][0]["volumeMounts"] =
        json!([{"name": "tmp", "mountPath": "/tmp"}]);
    let d = evaluate(
        &review("Sandbox", s, ADMIN),
        &Policy::default(),
        &hardened_view(),
    );
    assert!(d.allowed && d.violations.is_empty(), "{:?}", d.violations);
}

#[test]
fn the_policy_switch_turns_agents_by_kind_off_or_narrows_them_by_label() {
    let mut off = Policy::default();
    off.agent_sandbox.all_agents = false;
    let d = evaluate(
        &review("Sandbox", sandbox(false), ADMIN),
        &off,
        &hardened_view(),
    );
    assert_eq!(d.skipped, Some(Skip::NotAnAgent));

    let mut narrowed = Policy::default();
    narrowed.agent_sandbox.selector =
        Some(serde_json::from_value(json!({"matchLabels": {"sandbox": "other"}})).unwrap());
    let d = evaluate(
        &review("Sandbox", sandbox(false), ADMIN),
        &narrowed,
        &hardened_view(),
    );
    assert_eq!(d.skipped, Some(Skip::NotAnAgent));
    narrowed.agent_sandbox.selector =
        Some(serde_json::from_value(json!({"matchLabels": {"sandbox": "openclaw"}})).unwrap());
    let d = evaluate(
        &review("Sandbox", sandbox(false), ADMIN),
        &narrowed,
        &hardened_view(),
    );
    assert!(!d.allowed);
}

#[test]
fn a_managed_template_without_network_policy_is_refused_for_the_controllers_open_default() {
    // The namespace denies all egress, but the policy the controller writes opens it again.
    let d = evaluate(
        &review("SandboxTemplate", template(json!({})), ADMIN),
        &Policy::default(),
        &hardened_view(),
    );
    assert!(!d.allowed);
    assert_eq!(
        checks(&d),
        vec!["default-deny-egress"],
        "{:?}",
        d.violations
    );
    let v = &d.violations[0].violation;
    assert_eq!(v.path, "spec.networkPolicy");
    assert!(
        v.message.contains("openclaw-network-policy"),
        "{}",
        v.message
    );
    assert!(v.message.contains("0.0.0.0/0"), "{}", v.message);
    assert!(v.fix.contains("spec.networkPolicy"), "{}", v.fix);
    assert!(v.fix.contains("{protocol: TCP, port: 443}"), "{}", v.fix);
}

#[test]
fn a_managed_template_whose_egress_fits_the_allow_list_passes() {
    let d = evaluate(
        &review(
            "SandboxTemplate",
            template(json!({"networkPolicy": dns_and_https()})),
            ADMIN,
        ),
        &Policy::default(),
        &hardened_view(),
    );
    assert!(d.allowed && d.violations.is_empty(), "{:?}", d.violations);
    // `networkPolicy: {}` denies all egress: nothing to refuse either, even in a namespace
    // without a policy of its own.
    let d = evaluate(
        &review(
            "SandboxTemplate",
            template(json!({"networkPolicy": {}})),
            ADMIN,
        ),
        &Policy::default(),
        &StaticView::with_namespaces(&[NS]).tap_hardened(),
    );
    assert!(d.allowed && d.violations.is_empty(), "{:?}", d.violations);
}

#[test]
fn a_written_egress_rule_beyond_the_allow_list_is_reported_at_that_rule() {
    let mut np = dns_and_https();
    np["egress"]
        .as_array_mut()
        .unwrap()
        .push(json!({"ports": [{"protocol": "TCP", "port": 22}]}));
    let d = evaluate(
        &review(
            "SandboxTemplate",
            template(json!({"networkPolicy": np})),
            ADMIN,
        ),
        &Policy::default(),
        &hardened_view(),
    );
    assert_eq!(
        paths(&d),
        vec!["spec.networkPolicy.egress[2]"],
        "{:?}",
        d.violations
    );
}

#[test]
fn an_unmanaged_template_is_judged_by_the_namespaces_own_policies() {
    let t = template(json!({"networkPolicyManagement": "Unmanaged"}));
    let d = evaluate(
        &review("SandboxTemplate", t.clone(), ADMIN),
        &Policy::default(),
        &hardened_view(),
    );
    assert!(d.allowed && d.violations.is_empty(), "{:?}", d.violations);
    let d = evaluate(
        &review("SandboxTemplate", t, ADMIN),
        &Policy::default(),
        &StaticView::with_namespaces(&[NS]).tap_hardened(),
    );
    assert_eq!(checks(&d), vec!["default-deny-egress"]);
    assert_eq!(paths(&d), vec!["spec.podTemplate.metadata.labels"]);
}

fn claim(env: Value, labels: Value) -> Value {
    json!({"apiVersion": "extensions.agents.x-k8s.io/v1beta1", "kind": "SandboxClaim",
        "metadata": {"name": "c", "namespace": NS},
        "spec": {"warmPoolRef": {"name": "pool"}, "env": env,
                 "additionalPodMetadata": {"labels": labels}}})
}

fn view_with(template_injection: Option<&str>, pool: bool) -> StaticView {
    let mut v = hardened_view();
    let mut spec = json!({"podTemplate": pod_template(true)});
    if let Some(p) = template_injection {
        spec["envVarsInjectionPolicy"] = json!(p);
    }
    v.add(
        &json!({"apiVersion": "extensions.agents.x-k8s.io/v1beta1", "kind": "SandboxTemplate",
            "metadata": {"name": "openclaw", "namespace": NS}, "spec": spec}),
        NS,
    )
    .unwrap();
    if pool {
        v.add(
            &json!({"apiVersion": "extensions.agents.x-k8s.io/v1beta1", "kind": "SandboxWarmPool",
                "metadata": {"name": "pool", "namespace": NS},
                "spec": {"replicas": 1, "sandboxTemplateRef": {"name": "openclaw"}}}),
            NS,
        )
        .unwrap();
    }
    v
}

fn token_env() -> Value {
    json!([{"name": "HOME", "value": "/workspace"},
           {"name": "OPENCLAW_GATEWAY_TOKEN", "value": "k3j4h5g6f7d8s9a0q1w2e3r4t5y6u7i8"}])
}

#[test]
fn a_claims_literal_token_is_refused_when_its_template_lets_claims_inject_env() {
    let d = evaluate(
        &review("SandboxClaim", claim(token_env(), json!({})), ADMIN),
        &Policy::default(),
        &view_with(Some("Allowed"), true),
    );
    assert!(!d.allowed);
    assert_eq!(paths(&d), vec!["spec.env[1]"]);
    let v = &d.violations[0].violation;
    assert!(
        v.message.contains("OPENCLAW_GATEWAY_TOKEN"),
        "{}",
        v.message
    );
    assert!(
        !v.message.contains("k3j4h5"),
        "the value must never be shown: {}",
        v.message
    );
    assert!(
        d.message
            .unwrap()
            .contains("refused SandboxClaim agents/agent")
    );
}

#[test]
fn a_claims_env_is_not_judged_when_its_template_keeps_claims_env_out() {
    let d = evaluate(
        &review("SandboxClaim", claim(token_env(), json!({})), ADMIN),
        &Policy::default(),
        &view_with(None, true),
    );
    assert!(d.allowed && d.violations.is_empty(), "{:?}", d.violations);
}

#[test]
fn a_claims_env_is_judged_when_the_view_does_not_know_its_template() {
    let d = evaluate(
        &review("SandboxClaim", claim(token_env(), json!({})), ADMIN),
        &Policy::default(),
        &hardened_view(),
    );
    assert_eq!(paths(&d), vec!["spec.env[1]"]);
}

#[test]
fn a_claim_naming_a_missing_warm_pool_and_a_pool_naming_a_missing_template_are_reported() {
    let v = view_with(Some("Allowed"), false);
    let d = evaluate(
        &review("SandboxClaim", claim(json!([]), json!({})), ADMIN),
        &Policy::default(),
        &v,
    );
    assert!(d.allowed);
    assert_eq!(d.warnings.len(), 1, "{:?}", d.warnings);
    assert!(
        d.warnings[0].contains("SandboxWarmPool pool"),
        "{}",
        d.warnings[0]
    );

    let pool = json!({"apiVersion": "extensions.agents.x-k8s.io/v1beta1", "kind": "SandboxWarmPool",
        "metadata": {"name": "pool", "namespace": NS},
        "spec": {"sandboxTemplateRef": {"name": "gone"}}});
    let d = evaluate(
        &review("SandboxWarmPool", pool.clone(), ADMIN),
        &Policy::default(),
        &v,
    );
    assert!(d.allowed);
    assert!(
        d.warnings
            .iter()
            .any(|w| w.contains("SandboxTemplate gone")),
        "{:?}",
        d.warnings
    );
    // A view that holds no templates at all says nothing.
    assert_eq!(
        v.sandbox_template(NS, "openclaw").map(|t| t.is_some()),
        Some(true)
    );
    let d = evaluate(
        &review("SandboxWarmPool", pool, ADMIN),
        &Policy::default(),
        &hardened_view(),
    );
    assert!(d.warnings.is_empty(), "{:?}", d.warnings);
}

#[test]
fn a_claim_may_not_move_an_agent_label_unless_an_approver_asks() {
    let c = claim(json!([]), json!({"app": "not-openclaw", "team": "a"}));
    let d = evaluate(
        &review("SandboxClaim", c.clone(), ADMIN),
        &Policy::default(),
        &hardened_view(),
    );
    assert_eq!(checks(&d), vec!["relabel-requires-approval"]);
    assert_eq!(paths(&d), vec!["spec.additionalPodMetadata.labels.app"]);
    let d = evaluate(
        &review("SandboxClaim", c, APPROVER),
        &Policy::default(),
        &hardened_view(),
    );
    assert!(d.allowed && d.violations.is_empty(), "{:?}", d.violations);
}

#[test]
fn a_claims_exemption_annotation_counts_only_from_an_approver() {
    let mut c = claim(token_env(), json!({}));
    c["spec"]["additionalPodMetadata"]["annotations"] =
        json!({"openclaw.io/exempt": "no-plaintext-credentials"});
    let d = evaluate(
        &review("SandboxClaim", c.clone(), ADMIN),
        &Policy::default(),
        &hardened_view(),
    );
    assert!(!d.allowed);
    assert_eq!(d.exemptions_refused.len(), 1, "{:?}", d.exemptions_refused);
    let d = evaluate(
        &review("SandboxClaim", c, APPROVER),
        &Policy::default(),
        &hardened_view(),
    );
    assert!(d.allowed, "{:?}", d.violations);
    assert_eq!(d.exempted.len(), 1, "{:?}", d.exempted);
}

/// A view with only the namespace, plus what the hardened pod needs besides a NetworkPolicy.
trait TapHardened {
    fn tap_hardened(self) -> StaticView;
}
impl TapHardened for StaticView {
    fn tap_hardened(mut self) -> StaticView {
        for o in [
            json!({"apiVersion": "v1", "kind": "ServiceAccount",
                "metadata": {"name": super::checks::fixtures::SA, "namespace": NS}}),
            json!({"apiVersion": "node.k8s.io/v1", "kind": "RuntimeClass",
                "metadata": {"name": super::checks::fixtures::RUNTIME_CLASS}, "handler": "runsc"}),
        ] {
            self.add(&o, NS).unwrap();
        }
        self
    }
}

//! `default-deny-egress` (high): the agent reaches nothing on the network beyond the
//! policy's allow-list (DNS and HTTPS by default), with NetworkPolicy semantics as the API
//! defines them. A policy selects the pod by its `podSelector`; an absent `policyTypes`
//! includes Egress only when the policy has egress rules; the pod may send whatever the
//! union of the egress rules of every selecting Egress policy allows. So each rule is judged
//! on its own and reported on its own, naming the policy and the rule.
//!
//! The rules are judged in [`crate::engine::egress`]: NetworkPolicies as the API defines them
//! and, where their API is served, Cilium's policies; a pair one allow-list entry covers (or
//! a selecting Cilium `egressDeny` rule closes) is not open.
//!
//! Violations sit at the pod's `metadata.labels`: the labels are what policies select on,
//! and the NetworkPolicy itself is named in the message.

use super::check::{Check, Judge, PodInput, Read, always};
use crate::engine::egress::rule::AllowListText;
use crate::engine::egress::{cilium, network_policy};
use crate::engine::policy::EgressAllow;
use crate::engine::selector;
use crate::engine::violation::{Tier, Violation};

const ID: &str = "default-deny-egress";
const TIER: Tier = Tier::High;

pub static CHECK: Check = Check {
    id: ID,
    tier: TIER,
    judge: Judge::Pod(check),
    reads: &[
        Read::NamespaceLabels,
        Read::NetworkPolicies,
        Read::CiliumPolicies,
    ],
    applies: always,
};

fn check(input: &PodInput<'_>) -> Vec<Violation> {
    let t = &input.target;
    let ns = t.namespace;
    let labels = selector::labels_of(t.meta.labels.as_ref());
    let path = format!(
        "{}metadata.labels",
        t.spec_path.strip_suffix("spec").unwrap_or("")
    );
    let configured = &input.policy.checks.egress.allow;
    let allowed = AllowListText::new(configured);
    let own_labels = input.view.namespace_labels(ns);

    // Cilium's policies first: their egressDeny rules close what any allow rule opens, a
    // NetworkPolicy's included, so what they deny is covered like an allow-list entry.
    let cilium = input.view.cilium_policies(ns).map(|policies| {
        cilium::judge(
            &policies,
            ns,
            t.service_account().unwrap_or("default"),
            labels,
            own_labels.as_ref(),
            configured,
            &allowed,
        )
    });
    let with_denied: Vec<EgressAllow>;
    let allow: &[EgressAllow] = match &cilium {
        Some(c) if !c.denied.is_empty() => {
            with_denied = configured.iter().chain(&c.denied).cloned().collect();
            &with_denied
        }
        _ => configured,
    };

    let policies = network_policy::judge(
        &input.view.network_policies(ns),
        ns,
        labels,
        own_labels.as_ref(),
        allow,
        &allowed,
    );
    let mut selecting = policies.selecting;
    let mut open = policies.open;
    let cilium_served = cilium.is_some();
    if let Some(c) = cilium {
        selecting += c.default_deny;
        open.extend(c.open);
    }
    let mut out: Vec<Violation> = open
        .into_iter()
        .map(|f| Violation::new(ID, TIER, path.clone(), f.message, f.fix))
        .collect();
    if selecting == 0 {
        let (message, fix) = if cilium_served {
            (
                format!(
                    "no NetworkPolicy in namespace {ns} selects this pod for Egress, and no CiliumNetworkPolicy or CiliumClusterwideNetworkPolicy puts it in egress default-deny"
                ),
                format!(
                    "add a NetworkPolicy in {ns} whose podSelector matches this pod with policyTypes: [Egress], or a CiliumNetworkPolicy whose endpointSelector matches it with egress rules, allowing only {}",
                    allowed.get()
                ),
            )
        } else {
            (
                format!("no NetworkPolicy in namespace {ns} selects this pod for Egress"),
                format!(
                    "add a NetworkPolicy in {ns} whose podSelector matches this pod, with policyTypes: [Egress] and egress allowing only {}",
                    allowed.get()
                ),
            )
        };
        out.push(Violation::new(ID, TIER, path, message, fix));
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::engine::checks::fixtures::*;
    use crate::engine::policy::Policy;
    use crate::engine::view::StaticView;
    use serde_json::{Value, json};

    fn view(policies: &[Value]) -> StaticView {
        let mut all = vec![service_account_json(NS, SA)];
        all.extend_from_slice(policies);
        view_of(&all)
    }

    fn judge(policies: &[Value]) -> Vec<Violation> {
        run(&CHECK, &hardened_pod(), &Policy::default(), &view(policies))
    }

    fn np(name: &str, spec: Value) -> Value {
        network_policy_json(NS, name, spec)
    }

    fn dns_and_https() -> Value {
        np(
            "dns-https",
            json!({"podSelector": {"matchLabels": {"app": "openclaw"}}, "policyTypes": ["Egress"],
            "egress": [
                {"to": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}}}],
                 "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}]},
                {"ports": [{"port": 443}]}
            ]}),
        )
    }

    fn allow_web() -> Value {
        np(
            "allow-web",
            json!({"podSelector": {"matchLabels": {"app": "openclaw"}},
                "egress": [{"to": [{"ipBlock": {"cidr": "0.0.0.0/0", "except": ["10.0.0.0/8"]}}],
                            "ports": [{"protocol": "TCP", "port": 80}]}]}),
        )
    }

    fn messages(v: &[Violation]) -> Vec<&str> {
        v.iter().map(|x| x.message.as_str()).collect()
    }

    fn assert_no_egress_policy(v: &[Violation]) {
        assert_eq!(
            messages(v),
            [format!(
                "no NetworkPolicy in namespace {NS} selects this pod for Egress"
            )]
        );
        assert_eq!(paths(v), ["metadata.labels"]);
        assert_eq!(v[0].tier, Tier::High);
    }

    #[test]
    fn passes_deny_all_egress() {
        assert!(judge(&[deny_all_egress_json(NS)]).is_empty());
    }

    #[test]
    fn passes_dns_and_https_policy() {
        let v = judge(&[dns_and_https()]);
        assert!(v.is_empty(), "{v:?}");
    }

    #[test]
    fn rejects_namespace_without_policies() {
        assert_no_egress_policy(&judge(&[]));
    }

    #[test]
    fn rejects_when_policy_selects_other_pods_only() {
        let other = np(
            "db",
            json!({"podSelector": {"matchLabels": {"app": "postgres"}}, "policyTypes": ["Egress"]}),
        );
        assert_no_egress_policy(&judge(&[other]));
    }

    #[test]
    fn rejects_when_only_policy_is_ingress_only() {
        let implicit = np(
            "ingress",
            json!({"podSelector": {}, "ingress": [{"from": [{"podSelector": {}}]}]}),
        );
        assert_no_egress_policy(&judge(&[implicit]));
        // Egress rules of a policy whose policyTypes leave Egress out are ignored by the API.
        let explicit = np(
            "ingress-typed",
            json!({"podSelector": {}, "policyTypes": ["Ingress"], "egress": [{"ports": [{"port": 443}]}]}),
        );
        assert_no_egress_policy(&judge(&[explicit]));
    }

    #[test]
    fn policy_in_another_namespace_does_not_count() {
        assert_no_egress_policy(&judge(&[deny_all_egress_json("elsewhere")]));
    }

    #[test]
    fn rejects_policy_allowing_all_egress() {
        let v = judge(&[np("open", json!({"podSelector": {}, "egress": [{}]}))]);
        assert_eq!(
            messages(&v),
            [format!(
                "NetworkPolicy {NS}/open egress[0] allows all ports to anywhere"
            )]
        );
        assert!(v[0].fix.contains("UDP 53, TCP 53, TCP 443"), "{}", v[0].fix);
    }

    #[test]
    fn rejects_union_of_two_policies_that_breaks_the_allow_list() {
        let v = judge(&[deny_all_egress_json(NS), dns_and_https(), allow_web()]);
        assert_eq!(
            messages(&v),
            [format!(
                "NetworkPolicy {NS}/allow-web egress[0] allows TCP 80 to 0.0.0.0/0 (except 10.0.0.0/8)"
            )]
        );
        assert_eq!(paths(&v), ["metadata.labels"]);
    }

    #[test]
    fn reports_one_violation_per_uncovered_rule() {
        let p = np(
            "mixed",
            json!({"podSelector": {}, "policyTypes": ["Egress"], "egress": [
                {"ports": [{"protocol": "UDP"}]},
                {"ports": [{"port": 443}]},
                {"to": [{"namespaceSelector": {}, "podSelector": {"matchLabels": {"app": "redis"}}}],
                 "ports": [{"port": 6379}]}
            ]}),
        );
        let v = judge(&[p]);
        assert_eq!(
            messages(&v),
            [
                format!("NetworkPolicy {NS}/mixed egress[0] allows all UDP ports to anywhere"),
                format!(
                    "NetworkPolicy {NS}/mixed egress[2] allows TCP 6379 to pods app=redis in all namespaces"
                ),
            ]
        );
    }

    #[test]
    fn match_expressions_select_the_pod() {
        let with = |exprs: Value| {
            np(
                "exprs",
                json!({"podSelector": {"matchExpressions": exprs}, "policyTypes": ["Egress"]}),
            )
        };
        // The hardened pod carries app=openclaw and nothing else.
        for (exprs, selects) in [
            (
                json!([{"key": "app", "operator": "NotIn", "values": ["postgres"]}]),
                true,
            ),
            (
                json!([{"key": "app", "operator": "NotIn", "values": ["openclaw"]}]),
                false,
            ),
            (json!([{"key": "app", "operator": "Exists"}]), true),
            (json!([{"key": "tier", "operator": "Exists"}]), false),
            (json!([{"key": "tier", "operator": "DoesNotExist"}]), true),
            (json!([{"key": "app", "operator": "DoesNotExist"}]), false),
        ] {
            let v = judge(&[with(exprs.clone())]);
            assert_eq!(v.is_empty(), selects, "{exprs}: {v:?}");
        }
    }

    #[test]
    fn end_port_range_must_fit_inside_an_allowed_range() {
        let range = |hi: i32| {
            np(
                "range",
                json!({"podSelector": {}, "policyTypes": ["Egress"],
                "egress": [{"ports": [{"protocol": "TCP", "port": 443, "endPort": hi}]}]}),
            )
        };
        let v = judge(&[range(444)]);
        assert_eq!(
            messages(&v),
            [format!(
                "NetworkPolicy {NS}/range egress[0] allows TCP 443-444 to anywhere"
            )]
        );

        let mut policy = Policy::default();
        policy.checks.egress.allow.push(EgressAllow {
            name: "inference".into(),
            protocol: "TCP".into(),
            port: 400,
            end_port: Some(500),
            ..Default::default()
        });
        assert!(run(&CHECK, &hardened_pod(), &policy, &view(&[range(480)])).is_empty());
        assert_eq!(
            run(&CHECK, &hardened_pod(), &policy, &view(&[range(501)])).len(),
            1
        );
    }

    #[test]
    fn named_port_is_covered_only_by_an_entry_of_that_name() {
        let named = np(
            "named",
            json!({"podSelector": {}, "policyTypes": ["Egress"],
            "egress": [{"ports": [{"protocol": "TCP", "port": "https"}]}]}),
        );
        let v = judge(std::slice::from_ref(&named));
        assert_eq!(
            messages(&v),
            [format!(
                "NetworkPolicy {NS}/named egress[0] allows TCP port named \"https\" to anywhere"
            )]
        );
        let mut policy = Policy::default();
        policy.checks.egress.allow[2].name = "https".into();
        assert!(run(&CHECK, &hardened_pod(), &policy, &view(&[named])).is_empty());
    }

    #[test]
    fn protocol_defaults_to_tcp() {
        let udp = np(
            "udp",
            json!({"podSelector": {}, "policyTypes": ["Egress"],
            "egress": [{"ports": [{"protocol": "UDP", "port": 443}]}]}),
        );
        assert_eq!(judge(&[udp]).len(), 1);
    }

    #[test]
    fn namespace_restricted_entries_cover_only_peers_pinned_to_those_namespaces() {
        let mut policy = Policy::default();
        policy.checks.egress.allow.push(EgressAllow {
            name: "otel".into(),
            protocol: "TCP".into(),
            port: 4318,
            end_port: None,
            namespaces: vec!["observability".into(), NS.into()],
            ..Default::default()
        });
        let rule = |to: Value| {
            np(
                "otel",
                json!({"podSelector": {}, "policyTypes": ["Egress"],
                "egress": [{"to": to, "ports": [{"port": 4318}]}]}),
            )
        };
        let judge_with = |to: Value| run(&CHECK, &hardened_pod(), &policy, &view(&[rule(to)]));
        let by_label = json!([{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "observability"}}}]);
        let by_expr = json!([{"namespaceSelector": {"matchExpressions": [
            {"key": "kubernetes.io/metadata.name", "operator": "In", "values": ["observability", NS]}]}}]);
        let same_ns = json!([{"podSelector": {"matchLabels": {"app": "collector"}}}]);
        assert!(judge_with(by_label).is_empty());
        assert!(judge_with(by_expr).is_empty());
        assert!(judge_with(same_ns).is_empty());

        let v = judge_with(json!([{"namespaceSelector": {"matchLabels": {"team": "obs"}}}]));
        assert_eq!(
            messages(&v),
            [format!(
                "NetworkPolicy {NS}/otel egress[0] allows TCP 4318 to namespaces team=obs"
            )]
        );
        let v = judge_with(json!([{"ipBlock": {"cidr": "10.1.2.3/32"}}]));
        assert_eq!(
            messages(&v),
            [format!(
                "NetworkPolicy {NS}/otel egress[0] allows TCP 4318 to 10.1.2.3/32"
            )]
        );
        assert_eq!(judge_with(json!([])).len(), 1);
    }

    #[test]
    fn deployment_template_path_is_the_template_labels() {
        let v = run_on_deployment(&CHECK, &hardened_pod(), &Policy::default(), &view(&[]));
        assert_eq!(paths(&v), ["spec.template.metadata.labels"]);
    }

    fn https_rule(name: &str, to: Value) -> Value {
        np(
            name,
            json!({"podSelector": {}, "policyTypes": ["Egress"],
            "egress": [{"to": to, "ports": [{"protocol": "TCP", "port": 443}]}]}),
        )
    }

    fn internet_only() -> Policy {
        let mut policy = Policy::default();
        let https = &mut policy.checks.egress.allow[2];
        https.cidrs = vec!["0.0.0.0/0".into()];
        https.except = vec![
            "10.0.0.0/8".into(),
            "172.16.0.0/12".into(),
            "192.168.0.0/16".into(),
            "169.254.0.0/16".into(),
        ];
        policy
    }

    #[test]
    fn cidr_entries_honour_except_on_both_sides() {
        let policy = internet_only();
        let judge_with = |to: Value| {
            run(
                &CHECK,
                &hardened_pod(),
                &policy,
                &view(&[https_rule("web", to)]),
            )
        };
        // The example's policy: the internet minus private ranges and link-local.
        assert!(
            judge_with(json!([{"ipBlock": {"cidr": "0.0.0.0/0", "except": [
            "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "169.254.0.0/16"]}}]))
            .is_empty()
        );
        assert!(judge_with(json!([{"ipBlock": {"cidr": "203.0.113.0/24"}}])).is_empty());
        // Without its except, the same block reaches the cluster's private ranges.
        let v = judge_with(json!([{"ipBlock": {"cidr": "0.0.0.0/0", "except": ["10.0.0.0/8"]}}]));
        assert_eq!(
            messages(&v),
            [format!(
                "NetworkPolicy {NS}/web egress[0] allows TCP 443 to 0.0.0.0/0 (except 10.0.0.0/8)"
            )]
        );
        assert_eq!(
            judge_with(json!([{"ipBlock": {"cidr": "169.254.169.254/32"}}])).len(),
            1
        );
        // A pod peer is not an address the entry names, nor is a rule without `to`.
        assert_eq!(judge_with(json!([{"podSelector": {}}])).len(), 1);
        assert_eq!(
            run(
                &CHECK,
                &hardened_pod(),
                &policy,
                &view(&[np(
                    "any",
                    json!({"podSelector": {}, "policyTypes": ["Egress"],
                "egress": [{"ports": [{"protocol": "TCP", "port": 443}]}]})
                )])
            )
            .len(),
            1
        );
    }

    #[test]
    fn label_entries_cover_peers_by_namespace_and_pod_labels() {
        let mut policy = Policy::default();
        policy.checks.egress.allow.push(EgressAllow {
            name: "inference".into(),
            protocol: "TCP".into(),
            port: 8000,
            namespace_selector: Some(
                serde_json::from_value(json!({"matchLabels": {"team": "ml"}})).unwrap(),
            ),
            pod_selector: Some(
                serde_json::from_value(json!({"matchLabels": {"app": "vllm"}})).unwrap(),
            ),
            ..Default::default()
        });
        let rule = |to: Value| {
            np(
                "vllm",
                json!({"podSelector": {}, "policyTypes": ["Egress"],
                "egress": [{"to": to, "ports": [{"port": 8000}]}]}),
            )
        };
        let judge_with = |to: Value, extra: &[Value]| {
            let mut objects = vec![rule(to)];
            objects.extend_from_slice(extra);
            run(&CHECK, &hardened_pod(), &policy, &view(&objects))
        };
        let ml_vllm = json!([{"namespaceSelector": {"matchLabels": {"team": "ml", "env": "prod"}},
            "podSelector": {"matchLabels": {"app": "vllm", "tier": "gpu"}}}]);
        assert!(judge_with(ml_vllm, &[]).is_empty());
        // Every pod of those namespaces is more than the vLLM pods.
        let v = judge_with(
            json!([{"namespaceSelector": {"matchLabels": {"team": "ml"}}}]),
            &[],
        );
        assert_eq!(v.len(), 1, "{v:?}");
        assert!(
            v[0].fix
                .contains("TCP 8000 to namespaces team=ml pods app=vllm"),
            "{}",
            v[0].fix
        );
        // Another team's namespaces are not covered.
        assert_eq!(
            judge_with(json!([{"namespaceSelector": {"matchLabels": {"team": "web"}}, "podSelector": {"matchLabels": {"app": "vllm"}}}]), &[]).len(),
            1
        );
        // A podSelector-only peer is in the agent's own namespace: covered when its labels
        // match the entry's namespaceSelector.
        let same_ns = json!([{"podSelector": {"matchLabels": {"app": "vllm"}}}]);
        assert_eq!(judge_with(same_ns.clone(), &[]).len(), 1);
        let labelled_ns = json!({"apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": NS, "labels": {"team": "ml"}}});
        assert!(judge_with(same_ns, &[labelled_ns]).is_empty());
    }

    #[test]
    fn policy_refuses_bad_cidrs_and_except_without_cidrs() {
        let err = Policy::from_yaml(
            "checks:\n  egress:\n    allow:\n    - {protocol: TCP, port: 443, cidrs: [10.0.0.0/33]}\n",
            "p.yaml",
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("checks.egress.allow[0].cidrs[0]") && err.contains("/33"),
            "{err}"
        );
        let err = Policy::from_yaml(
            "checks:\n  egress:\n    allow:\n    - {protocol: TCP, port: 443, except: [10.0.0.0/8]}\n",
            "p.yaml",
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("except needs cidrs"), "{err}");
    }
}

//! NetworkPolicy (`networking.k8s.io/v1`) egress, with the semantics the API defines: a
//! policy selects the pod by its `podSelector`; an absent `policyTypes` includes Egress only
//! when the policy has egress rules; the pod may send whatever the union of the egress rules
//! of every selecting Egress policy allows. So each rule is judged on its own and reported on
//! its own, naming the policy and the rule.

use super::rule::{AllowListText, Dest, Finding, Ports, uncovered};
use crate::engine::policy::EgressAllow;
use crate::engine::selector;
use k8s_openapi::api::networking::v1::{NetworkPolicy, NetworkPolicyEgressRule, NetworkPolicySpec};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use std::sync::Arc;

/// What a namespace's NetworkPolicies say about one pod.
pub struct Outcome {
    /// Policies that select the pod for Egress (each puts it in default-deny).
    pub selecting: usize,
    /// Egress rules of those policies that open more than the allow-list.
    pub open: Vec<Finding>,
}

fn selects_for_egress(spec: &NetworkPolicySpec, labels: &selector::Labels) -> bool {
    let selected = spec
        .pod_selector
        .as_ref()
        .is_none_or(|s| selector::matches(s, labels));
    let egress = match spec.policy_types.as_deref() {
        Some(types) if !types.is_empty() => types.iter().any(|t| t == "Egress"),
        _ => spec.egress.as_ref().is_some_and(|e| !e.is_empty()),
    };
    selected && egress
}

fn ports_of(rule: &NetworkPolicyEgressRule) -> Vec<Ports<'_>> {
    let Some(ports) = rule.ports.as_deref().filter(|p| !p.is_empty()) else {
        return vec![Ports::Every];
    };
    ports
        .iter()
        .map(|p| {
            let protocol = p.protocol.as_deref().unwrap_or("TCP");
            match &p.port {
                None => Ports::Range {
                    protocol,
                    lo: 1,
                    hi: 65535,
                    numbered: false,
                },
                Some(IntOrString::Int(n)) => Ports::Range {
                    protocol,
                    lo: *n,
                    hi: p.end_port.unwrap_or(*n).max(*n),
                    numbered: true,
                },
                Some(IntOrString::String(name)) => Ports::Named { protocol, name },
            }
        })
        .collect()
}

fn dests_of(rule: &NetworkPolicyEgressRule) -> Vec<Dest<'_>> {
    match rule.to.as_deref().filter(|t| !t.is_empty()) {
        None => vec![Dest::Anywhere],
        Some(peers) => peers.iter().map(Dest::Peer).collect(),
    }
}

/// Judges every egress rule of the policies that select the pod (labels `labels`, namespace
/// `ns` with labels `ns_labels`) against `allow`.
pub fn judge(
    policies: &[Arc<NetworkPolicy>],
    ns: &str,
    labels: &selector::Labels,
    ns_labels: Option<&selector::Labels>,
    allow: &[EgressAllow],
    allowed: &AllowListText<'_>,
) -> Outcome {
    let mut out = Outcome {
        selecting: 0,
        open: Vec::new(),
    };
    for np in policies {
        let Some(spec) = np.spec.as_ref().filter(|s| selects_for_egress(s, labels)) else {
            continue;
        };
        out.selecting += 1;
        let name = np.metadata.name.as_deref().unwrap_or("");
        for (k, rule) in spec.egress.iter().flatten().enumerate() {
            let Some((open_ports, open_dests)) =
                uncovered(&ports_of(rule), &dests_of(rule), allow, ns, ns_labels)
            else {
                continue;
            };
            out.open.push(Finding {
                message: format!(
                    "NetworkPolicy {ns}/{name} egress[{k}] allows {open_ports} to {open_dests}"
                ),
                fix: format!(
                    "narrow egress[{k}] of NetworkPolicy {name} to the allow-list ({}), or add the destination to checks.egress.allow",
                    allowed.get()
                ),
            });
        }
    }
    out
}

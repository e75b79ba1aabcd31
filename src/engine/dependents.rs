//! Changes to what running agents' verdicts rest on. An agent Pod was admitted because the
//! NetworkPolicies (or Cilium policies) of its namespace closed its egress and because the
//! roles bound to its ServiceAccount granted nothing `least-privilege-rbac` forbids. A later
//! change to one of those objects is judged here by what it would open to the agents already
//! running: the same check runs on each agent against the cluster with the object as it was
//! and as it would be, and what appears only in the second answer is what the change exposes.
//!
//! - NetworkPolicy and Cilium policy CREATE, UPDATE and DELETE: `default-deny-egress`.
//! - Role, ClusterRole (its aggregation labels included), RoleBinding and ClusterRoleBinding
//!   CREATE and UPDATE: `least-privilege-rbac`. Deleting RBAC takes grants away and opens
//!   nothing.
//!
//! Which agents run is not known from memory: the view knows which namespaces may hold
//! agents (a cheap signal, [`ClusterView::may_hold_agents`]) and the caller looks up the Pods
//! of those namespaces for this request ([`ClusterView::running_agents`]). [`namespaces`] says
//! which namespaces a request needs looked up; a change that can expose no agent (a namespace
//! without agents, a role granting nothing forbidden) needs none and is answered from memory.
//!
//! What leaves is not protected: Pods being deleted, Pods whose workload is being deleted
//! (`helm uninstall` deletes the Deployment and the NetworkPolicy a moment apart), every Pod
//! of a namespace being deleted, and requests by the policy's `controllerUsers`.

use super::action;
use super::agent;
use super::checks::check::{Check, Judge, PodInput};
use super::checks::{default_deny_egress, least_privilege_rbac};
use super::decision::{self, Decision, Judged, Skip};
use super::egress::cilium_policy::CiliumPolicy;
use super::policy::{Mode, Policy};
use super::review::{Dependency, Operation, Review, Subject, Target};
use super::selector::Labels;
use super::view::{BoundRole, ClusterView, DefaultLimits, PodLookup, RunningAgents, ServiceFacts};
use super::violation::Violation;
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::api::rbac::v1::{PolicyRule, RoleRef, Subject as RbacSubject};
use std::sync::Arc;

/// The object a review changes, as it was (`old_object`) and as it would be (`object`;
/// `None` for a DELETE).
struct Change<'a> {
    namespace: &'a str,
    name: &'a str,
    /// The object's kind, from whichever side carries it.
    kind: &'a Dependency,
    before: Option<&'a Dependency>,
    after: Option<&'a Dependency>,
    /// A Cilium policy change, read: (before, after).
    cilium: (Option<CiliumPolicy>, Option<CiliumPolicy>),
}

/// A Cilium policy as sent; `None` when it is not one or does not read as one (then its change
/// is not judged here: the API server has already taken it by the CRD's schema).
fn cilium_of(d: Option<&Dependency>) -> Option<CiliumPolicy> {
    match d? {
        Dependency::Cilium(v) => CiliumPolicy::from_object(v).ok(),
        _ => None,
    }
}

fn dependency(s: &Subject) -> Option<&Dependency> {
    match s {
        Subject::Dependency(d) => Some(d),
        _ => None,
    }
}

/// The change a review makes to an object agents depend on, when it is one this module judges.
fn change_of<'a>(review: &'a Review, policy: &Policy) -> Option<Change<'a>> {
    // The kind first: every Pod review passes here, and pays two enum matches.
    let before = dependency(&review.old_object);
    let after = dependency(&review.object);
    let kind = after.or(before)?;
    if policy.controller_users.contains(&review.user.username) || review.sub_resource.is_some() {
        return None;
    }
    let rbac = !matches!(kind, Dependency::NetworkPolicy(_) | Dependency::Cilium(_));
    match review.operation {
        Operation::Create | Operation::Update => {}
        // Deleting a role or a binding takes grants away.
        Operation::Delete if !rbac => {}
        _ => return None,
    }
    let after = if review.operation == Operation::Delete {
        None
    } else {
        after
    };
    let cilium = (cilium_of(before), cilium_of(after));
    if matches!(kind, Dependency::Cilium(_)) && cilium.0.is_none() && cilium.1.is_none() {
        return None;
    }
    Some(Change {
        namespace: &review.namespace,
        name: &review.name,
        kind,
        before,
        after,
        cilium,
    })
}

/// The check that judges what a change of this kind exposes.
fn check_for(kind: &Dependency) -> &'static Check {
    match kind {
        Dependency::NetworkPolicy(_) | Dependency::Cilium(_) => &default_deny_egress::CHECK,
        _ => &least_privilege_rbac::CHECK,
    }
}

/// The namespaces whose Pods must be looked up before this review is judged: those the change
/// may reach that the view's signal says may hold agents. Empty when the change can expose no
/// agent, which is then answered from memory.
pub fn namespaces(review: &Review, policy: &Policy, view: &dyn ClusterView) -> Vec<String> {
    let Some(change) = change_of(review, policy) else {
        return Vec::new();
    };
    if !check_for(change.kind).enabled(policy) {
        return Vec::new();
    }
    let all = || view.namespaces_with_agents();
    // Agents the catch-all finds by image carry no agent label, so the signal (a watch by
    // label) never reports them: with the catch-all on, a change in one namespace is looked
    // up there whatever the signal says. A change that reaches every namespace still goes by
    // the signal (docs/policy-reference.md says so).
    let unlabelled = policy.catch_all.enabled;
    let one = |ns: &str| {
        if !ns.is_empty() && (unlabelled || view.may_hold_agents(ns)) {
            vec![ns.to_string()]
        } else {
            Vec::new()
        }
    };
    let settings = &policy.checks.rbac;
    let forbidden = |kind: &str, name: &str, rules: Option<Arc<Vec<PolicyRule>>>, wide: bool| {
        least_privilege_rbac::grants_forbidden(
            &BoundRole {
                binding: String::new(),
                cluster_wide: wide,
                via: String::new(),
                role_kind: kind.to_string(),
                role_name: name.to_string(),
                rules,
            },
            settings,
        )
    };
    let after = change.after;
    match change.kind {
        Dependency::NetworkPolicy(_) => one(change.namespace),
        Dependency::Cilium(_) => {
            let clusterwide = change.cilium.0.as_ref().or(change.cilium.1.as_ref());
            if clusterwide.is_some_and(|p| p.clusterwide) {
                all()
            } else {
                one(change.namespace)
            }
        }
        Dependency::Role(_) | Dependency::ClusterRole(_) => {
            let (kind, rules, wide) = match after {
                Some(Dependency::Role(r)) => ("Role", r.rules.clone(), false),
                Some(Dependency::ClusterRole(r)) => ("ClusterRole", r.rules.clone(), true),
                _ => return Vec::new(),
            };
            // A role may be bound from any namespace: only a role granting something
            // forbidden is worth looking for agents.
            if forbidden(
                kind,
                change.name,
                Some(Arc::new(rules.unwrap_or_default())),
                wide,
            ) {
                all()
            } else {
                Vec::new()
            }
        }
        Dependency::RoleBinding(_) | Dependency::ClusterRoleBinding(_) => {
            let (role_ref, subjects, binding_ns) = match after {
                Some(Dependency::RoleBinding(b)) => (&b.role_ref, &b.subjects, change.namespace),
                Some(Dependency::ClusterRoleBinding(b)) => (&b.role_ref, &b.subjects, ""),
                _ => return Vec::new(),
            };
            let rules = view.role_rules(binding_ns, role_ref);
            if !forbidden(&role_ref.kind, &role_ref.name, rules, binding_ns.is_empty()) {
                return Vec::new();
            }
            let mut out = Vec::new();
            for s in subjects.iter().flatten() {
                match subject_namespace(s, binding_ns) {
                    Some(ns) => out.extend(one(&ns)),
                    None => return all(),
                }
            }
            out.sort();
            out.dedup();
            out
        }
    }
}

/// The namespace whose ServiceAccounts a binding subject reaches: `Some("")` for a subject no
/// ServiceAccount is (a person), `None` for every namespace.
fn subject_namespace(s: &RbacSubject, binding_ns: &str) -> Option<String> {
    match s.kind.as_str() {
        "ServiceAccount" => Some(
            s.namespace
                .clone()
                .filter(|n| !n.is_empty())
                .unwrap_or_else(|| binding_ns.to_string()),
        ),
        "User" => Some(
            s.name
                .strip_prefix("system:serviceaccount:")
                .and_then(|rest| rest.split_once(':'))
                .map(|(ns, _)| ns.to_string())
                .unwrap_or_default(),
        ),
        "Group" => match s.name.as_str() {
            "system:serviceaccounts" | "system:authenticated" => None,
            g => Some(
                g.strip_prefix("system:serviceaccounts:")
                    .unwrap_or_default()
                    .to_string(),
            ),
        },
        _ => Some(String::new()),
    }
}

/// Judges a change to an object agents depend on: refused (enforce), warned (warn) or
/// recorded (audit) when it would expose a running agent, each exposure naming the agent.
/// `None` when the review is not such a change.
pub fn judge(review: &Review, policy: &Policy, view: &dyn ClusterView) -> Option<Decision> {
    let change = change_of(review, policy)?;
    let check = check_for(change.kind);
    let namespaces = namespaces(review, policy, view);
    let before = WhatIf {
        base: view,
        change: &change,
        object: change.before,
        cilium: change.cilium.0.as_ref(),
    };
    let after = WhatIf {
        base: view,
        change: &change,
        object: change.after,
        cilium: change.cilium.1.as_ref(),
    };
    let mut judged = Vec::new();
    let mut agents = 0;
    for ns in &namespaces {
        let mode = policy.mode_for(view.namespace_labels(ns).as_ref());
        let Some(running) = view.running_agents(ns) else {
            // The lookup failed: the agents there cannot be vouched for.
            judged.push(judged_at(
                policy,
                mode,
                None,
                Violation::new(
                    check.id,
                    check.tier,
                    format!("namespace {ns}"),
                    format!(
                        "namespace {ns} holds agent pods, and they could not be listed to tell what this change would expose"
                    ),
                    "retry; if it persists, check the webhook's access to the API server (it lists the Pods of the namespace)",
                ),
            ));
            continue;
        };
        for (pod, how) in running_agents(&running, ns, policy) {
            agents += 1;
            let target = Target::of_pod(pod, ns);
            let was = run(check, target, policy, &before);
            let name = pod.metadata.name.as_deref().unwrap_or_default();
            for v in run(check, target, policy, &after) {
                if was.contains(&v) {
                    continue;
                }
                let exposed = Violation::new(
                    v.check,
                    v.tier,
                    format!("pod {ns}/{name}"),
                    format!("would expose running agent pod {ns}/{name}: {}", v.message),
                    format!(
                        "keep the agent's box closed ({}), or remove the agent first",
                        v.fix
                    ),
                );
                judged.push(judged_at(policy, mode, how.action(), exposed));
            }
        }
    }
    if judged.is_empty() && agents == 0 {
        return Some(Decision::allow(Skip::NotAnAgent));
    }
    let mode = policy.mode_for(view.namespace_labels(change.namespace).as_ref());
    Some(decision::judged(
        review,
        mode,
        judged,
        Vec::new(),
        Vec::new(),
        None,
    ))
}

fn judged_at(
    policy: &Policy,
    mode: Mode,
    catch_all: Option<super::policy::Action>,
    v: Violation,
) -> Judged {
    let tier = policy.tier_of(v.check, v.tier);
    Judged {
        action: action::for_violation(policy, mode, tier, catch_all),
        in_enforce: action::for_violation(policy, Mode::Enforce, tier, catch_all),
        violation: Violation { tier, ..v },
    }
}

/// The agents of a namespace that stay: not being deleted, not in a workload being deleted,
/// not in a namespace being deleted.
fn running_agents<'r>(
    running: &'r RunningAgents,
    ns: &'r str,
    policy: &'r Policy,
) -> impl Iterator<Item = (&'r super::pod::Pod, agent::Match)> + 'r {
    running
        .pods
        .iter()
        .filter(move |_| !running.namespace_deleting)
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .filter(|p| {
            !running
                .leaving
                .contains(p.metadata.name.as_deref().unwrap_or_default())
        })
        .filter_map(move |p| agent::of(policy, &Target::of_pod(p, ns)).map(|m| (p, m)))
}

fn run(
    check: &'static Check,
    target: Target<'_>,
    policy: &Policy,
    view: &dyn ClusterView,
) -> Vec<Violation> {
    match check.judge {
        Judge::Pod(f) => f(&PodInput {
            target,
            policy,
            view,
        }),
        Judge::Connect(_) | Judge::Update(_) => Vec::new(),
    }
}

/// The cluster as the view sees it, with the changed object as `object` (absent when `None`).
struct WhatIf<'a> {
    base: &'a dyn ClusterView,
    change: &'a Change<'a>,
    object: Option<&'a Dependency>,
    /// `object` read, when it is a Cilium policy.
    cilium: Option<&'a CiliumPolicy>,
}

impl WhatIf<'_> {
    fn is_key(&self, namespace: &str, name: &str) -> bool {
        namespace == self.change.namespace && name == self.change.name
    }

    /// The role rules a new or changed binding grants, `None` for a role not known yet (it is
    /// judged when it comes).
    fn bound(&self, namespace: &str, sa: &str) -> Option<BoundRole> {
        let (role_ref, subjects, binding_ns, binding) = match self.object? {
            Dependency::RoleBinding(b) => (
                &b.role_ref,
                &b.subjects,
                self.change.namespace,
                format!("RoleBinding {}/{}", self.change.namespace, self.change.name),
            ),
            Dependency::ClusterRoleBinding(b) => (
                &b.role_ref,
                &b.subjects,
                "",
                format!("ClusterRoleBinding {}", self.change.name),
            ),
            _ => return None,
        };
        let via = subjects
            .iter()
            .flatten()
            .find_map(|s| reaches(s, binding_ns, namespace, sa))?;
        let rules = self.base.role_rules(binding_ns, role_ref);
        let named = policy_forbidden_name(role_ref);
        if rules.is_none() && !named {
            return None;
        }
        Some(BoundRole {
            binding,
            cluster_wide: binding_ns.is_empty(),
            via,
            role_kind: role_ref.kind.clone(),
            role_name: role_ref.name.clone(),
            rules,
        })
    }
}

/// Built-in roles are judged by name when their rules are not known (as the check does).
fn policy_forbidden_name(role_ref: &RoleRef) -> bool {
    least_privilege_rbac::built_in(&role_ref.kind, &role_ref.name)
}

/// How a binding subject reaches ServiceAccount `namespace/sa`, in the words the view uses.
fn reaches(s: &RbacSubject, binding_ns: &str, namespace: &str, sa: &str) -> Option<String> {
    let user = format!("system:serviceaccount:{namespace}:{sa}");
    let group = format!("system:serviceaccounts:{namespace}");
    match s.kind.as_str() {
        "ServiceAccount" => {
            let ns = s
                .namespace
                .as_deref()
                .filter(|n| !n.is_empty())
                .unwrap_or(binding_ns);
            (ns == namespace && s.name == sa).then(|| "ServiceAccount".to_string())
        }
        "User" => (s.name == user).then(|| format!("User {user}")),
        "Group" => (s.name == "system:serviceaccounts"
            || s.name == "system:authenticated"
            || s.name == group)
            .then(|| format!("Group {}", s.name)),
        _ => None,
    }
}

fn rules_of(d: &Dependency) -> Arc<Vec<PolicyRule>> {
    Arc::new(match d {
        Dependency::Role(r) => r.rules.clone().unwrap_or_default(),
        Dependency::ClusterRole(r) => r.rules.clone().unwrap_or_default(),
        _ => Vec::new(),
    })
}

fn labels_of(d: &Dependency) -> Labels {
    match d {
        Dependency::ClusterRole(r) => r.metadata.labels.clone().unwrap_or_default(),
        _ => Labels::new(),
    }
}

impl ClusterView for WhatIf<'_> {
    fn namespace_labels(&self, namespace: &str) -> Option<Labels> {
        self.base.namespace_labels(namespace)
    }
    fn service_account_exists(&self, namespace: &str, name: &str) -> bool {
        self.base.service_account_exists(namespace, name)
    }
    fn service_account_automount(&self, namespace: &str, name: &str) -> Option<bool> {
        self.base.service_account_automount(namespace, name)
    }

    fn bound_roles(&self, namespace: &str, service_account: &str) -> Vec<BoundRole> {
        let mut roles = self.base.bound_roles(namespace, service_account);
        match self.change.kind {
            Dependency::RoleBinding(_) | Dependency::ClusterRoleBinding(_) => {
                let label = if matches!(self.change.kind, Dependency::RoleBinding(_)) {
                    format!("RoleBinding {}/{}", self.change.namespace, self.change.name)
                } else {
                    format!("ClusterRoleBinding {}", self.change.name)
                };
                roles.retain(|r| r.binding != label);
                roles.extend(self.bound(namespace, service_account));
            }
            Dependency::Role(_) => {
                let prefix = format!("RoleBinding {}/", self.change.namespace);
                let rules = self.object.map(rules_of);
                for r in roles.iter_mut().filter(|r| {
                    r.role_kind == "Role"
                        && r.role_name == self.change.name
                        && r.binding.starts_with(&prefix)
                }) {
                    r.rules = rules.clone();
                }
            }
            Dependency::ClusterRole(_) => {
                let rules = self.object.map(rules_of);
                let aggregating = self
                    .object
                    .map(|o| self.base.aggregating_roles(&labels_of(o)))
                    .unwrap_or_default();
                for r in roles.iter_mut().filter(|r| r.role_kind == "ClusterRole") {
                    if r.role_name == self.change.name {
                        r.rules = rules.clone();
                    } else if aggregating.contains(&r.role_name)
                        && let Some(added) = &rules
                    {
                        // The aggregation controller will copy the new rules into the
                        // aggregated role: judge them there now.
                        let mut all: Vec<PolicyRule> =
                            r.rules.as_deref().cloned().unwrap_or_default();
                        all.extend(added.iter().cloned());
                        r.rules = Some(Arc::new(all));
                    }
                }
            }
            Dependency::NetworkPolicy(_) | Dependency::Cilium(_) => {}
        }
        roles
    }

    fn network_policies(&self, namespace: &str) -> Vec<Arc<NetworkPolicy>> {
        let mut out = self.base.network_policies(namespace);
        if let Dependency::NetworkPolicy(_) = self.change.kind {
            out.retain(|p| {
                !self.is_key(
                    p.metadata.namespace.as_deref().unwrap_or(namespace),
                    p.metadata.name.as_deref().unwrap_or_default(),
                )
            });
            if let Some(Dependency::NetworkPolicy(p)) = self.object
                && namespace == self.change.namespace
            {
                let mut p = p.clone();
                p.metadata.namespace = Some(namespace.to_string());
                out.push(Arc::new(p));
            }
        }
        out
    }

    fn cilium_policies(&self, namespace: &str) -> Option<Vec<Arc<CiliumPolicy>>> {
        let base = self.base.cilium_policies(namespace);
        let Dependency::Cilium(_) = self.change.kind else {
            return base;
        };
        let Some(changed) = self
            .change
            .cilium
            .0
            .as_ref()
            .or(self.change.cilium.1.as_ref())
        else {
            return base;
        };
        // A request about a Cilium policy means its API is served.
        let mut out = base.unwrap_or_default();
        out.retain(|p| {
            !(p.clusterwide == changed.clusterwide
                && p.name == changed.name
                && (p.clusterwide || p.namespace == changed.namespace))
        });
        if let Some(p) = self.cilium
            && (p.clusterwide || p.namespace == namespace)
        {
            out.push(Arc::new(p.clone()));
        }
        Some(out)
    }

    fn is_legacy_token_secret(&self, namespace: &str, name: &str) -> bool {
        self.base.is_legacy_token_secret(namespace, name)
    }
    fn pod(&self, namespace: &str, name: &str) -> PodLookup {
        self.base.pod(namespace, name)
    }
    fn service_pods(&self, namespace: &str, name: &str) -> PodLookup {
        self.base.service_pods(namespace, name)
    }
    fn secret_provider_class(&self, namespace: &str, name: &str) -> Option<bool> {
        self.base.secret_provider_class(namespace, name)
    }
    fn runtime_class(&self, name: &str) -> Option<bool> {
        self.base.runtime_class(name)
    }
    fn limit_range_defaults(&self, namespace: &str) -> DefaultLimits {
        self.base.limit_range_defaults(namespace)
    }
    fn config_map_keys(&self, namespace: &str, name: &str) -> Option<Arc<[String]>> {
        self.base.config_map_keys(namespace, name)
    }
    fn service(&self, namespace: &str, name: &str) -> Option<ServiceFacts> {
        self.base.service(namespace, name)
    }
    fn role_rules(
        &self,
        binding_namespace: &str,
        role_ref: &RoleRef,
    ) -> Option<Arc<Vec<PolicyRule>>> {
        self.base.role_rules(binding_namespace, role_ref)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::engine::checks::fixtures::{
        NS, SA, deny_all_egress_json, hardened_pod, network_policy_json, service_account_json,
        view_of,
    };
    use crate::engine::policy::Action;
    use crate::engine::review::{GroupVersionKind, GroupVersionResource, User};
    use crate::engine::view::StaticView;
    use serde_json::{Value, json};
    use std::collections::BTreeSet;

    fn review(
        kind: &str,
        op: Operation,
        name: &str,
        object: Option<Value>,
        old: Option<Value>,
    ) -> Review {
        let subject = |v: Option<Value>| {
            v.map(|v| Subject::from_value(kind, v).unwrap())
                .unwrap_or(Subject::None)
        };
        let cluster = kind.starts_with("Cluster");
        Review {
            uid: "u".into(),
            kind: GroupVersionKind::gvk("", "v1", kind),
            resource: GroupVersionResource::gvr("", "v1", "x"),
            sub_resource: None,
            operation: op,
            namespace: if cluster { String::new() } else { NS.into() },
            name: name.into(),
            user: User {
                username: "mallory".into(),
                groups: vec![],
            },
            dry_run: false,
            object: subject(object),
            old_object: subject(old),
            now: 0,
        }
    }

    /// The hardened agent running in [`NS`], its namespace known to hold agents.
    fn with_agent(mut view: StaticView, running: RunningAgents) -> StaticView {
        view.index.apply_agent_signal(0, NS, "agent");
        view.index.apply_running_agents(NS, running);
        view
    }

    fn agent_running() -> RunningAgents {
        RunningAgents {
            pods: vec![hardened_pod()],
            ..Default::default()
        }
    }

    fn egress_view(running: RunningAgents) -> StaticView {
        with_agent(
            view_of(&[service_account_json(NS, SA), deny_all_egress_json(NS)]),
            running,
        )
    }

    fn delete_deny() -> Review {
        review(
            "NetworkPolicy",
            Operation::Delete,
            "default-deny-egress",
            None,
            Some(deny_all_egress_json(NS)),
        )
    }

    #[test]
    fn deleting_the_egress_policy_of_a_running_agent_is_refused_naming_it() {
        let view = egress_view(agent_running());
        let d = judge(&delete_deny(), &Policy::default(), &view).unwrap();
        assert!(!d.allowed);
        let msg = d.message.unwrap();
        assert!(
            msg.contains("refused NetworkPolicy agents/default-deny-egress"),
            "{msg}"
        );
        assert!(msg.contains("running agent pod agents/agent"), "{msg}");
        assert_eq!(d.violations[0].violation.check, "default-deny-egress");
    }

    #[test]
    fn widening_the_egress_policy_is_refused_and_narrowing_it_is_not() {
        let view = egress_view(agent_running());
        let open = network_policy_json(
            NS,
            "default-deny-egress",
            json!({"podSelector": {}, "policyTypes": ["Egress"], "egress": [{}]}),
        );
        let widen = review(
            "NetworkPolicy",
            Operation::Update,
            "default-deny-egress",
            Some(open.clone()),
            Some(deny_all_egress_json(NS)),
        );
        let d = judge(&widen, &Policy::default(), &view).unwrap();
        assert!(!d.allowed, "{d:?}");
        let narrow = review(
            "NetworkPolicy",
            Operation::Update,
            "default-deny-egress",
            Some(deny_all_egress_json(NS)),
            Some(open),
        );
        assert!(judge(&narrow, &Policy::default(), &view).unwrap().allowed);
    }

    #[test]
    fn an_allow_all_policy_created_beside_it_widens_egress_too() {
        let view = egress_view(agent_running());
        let open = network_policy_json(
            NS,
            "open",
            json!({"podSelector": {}, "policyTypes": ["Egress"], "egress": [{}]}),
        );
        let create = review("NetworkPolicy", Operation::Create, "open", Some(open), None);
        assert!(!judge(&create, &Policy::default(), &view).unwrap().allowed);
    }

    #[test]
    fn leaving_agents_do_not_hold_their_policy() {
        let policy = Policy::default();
        let mut terminating = hardened_pod();
        terminating.metadata.deletion_timestamp = Some(
            k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(Default::default()),
        );
        let cases = [
            RunningAgents::default(),
            RunningAgents {
                pods: vec![terminating],
                ..Default::default()
            },
            RunningAgents {
                namespace_deleting: true,
                ..agent_running()
            },
            RunningAgents {
                leaving: BTreeSet::from(["agent".to_string()]),
                ..agent_running()
            },
        ];
        for running in cases {
            let d = judge(&delete_deny(), &policy, &egress_view(running.clone())).unwrap();
            assert!(d.allowed, "{running:?}");
        }
    }

    #[test]
    fn controller_users_and_namespaces_without_agents_are_answered_from_memory() {
        let policy = Policy::default();
        let mut by_controller = delete_deny();
        by_controller.user.username = policy.controller_users[0].clone();
        let view = egress_view(agent_running());
        assert!(namespaces(&by_controller, &policy, &view).is_empty());
        assert!(judge(&by_controller, &policy, &view).is_none());

        let empty = view_of(&[deny_all_egress_json(NS)]);
        assert!(namespaces(&delete_deny(), &policy, &empty).is_empty());
        assert!(judge(&delete_deny(), &policy, &empty).unwrap().allowed);
        assert_eq!(namespaces(&delete_deny(), &policy, &view), [NS]);
    }

    #[test]
    fn with_the_catch_all_on_a_change_is_looked_up_where_no_labelled_agent_runs() {
        let mut policy = Policy::default();
        let empty = view_of(&[deny_all_egress_json(NS)]);
        assert!(namespaces(&delete_deny(), &policy, &empty).is_empty());
        policy.catch_all.enabled = true;
        assert_eq!(namespaces(&delete_deny(), &policy, &empty), [NS]);
    }

    #[test]
    fn agents_that_could_not_be_listed_are_not_vouched_for() {
        let mut view = view_of(&[deny_all_egress_json(NS)]);
        view.index.apply_agent_signal(0, NS, "agent");
        let d = judge(&delete_deny(), &Policy::default(), &view).unwrap();
        assert!(!d.allowed);
        assert!(d.message.unwrap().contains("could not be listed"));
    }

    #[test]
    fn warn_and_audit_modes_let_the_change_through_and_say_so() {
        let view = egress_view(agent_running());
        for (mode, warned) in [(Mode::Warn, true), (Mode::Audit, false)] {
            let policy = Policy {
                mode,
                ..Policy::default()
            };
            let d = judge(&delete_deny(), &policy, &view).unwrap();
            assert!(d.allowed);
            assert_eq!(
                d.violations[0].action,
                if warned { Action::Warn } else { Action::Audit }
            );
            assert_eq!(!d.warnings.is_empty(), warned);
            assert!(d.audit_annotations["openclaw-violations"].contains("agents/agent"));
        }
    }

    #[test]
    fn deleting_the_cilium_policy_that_closes_an_agent_is_refused() {
        let closed = json!({"apiVersion": "cilium.io/v2", "kind": "CiliumNetworkPolicy",
            "metadata": {"name": "closed", "namespace": NS},
            "spec": {"endpointSelector": {}, "egress": [{"toPorts": [{"ports": [{"port": "443", "protocol": "TCP"}]}]}]}});
        let view = with_agent(
            view_of(&[service_account_json(NS, SA), closed.clone()]),
            agent_running(),
        );
        let delete = review(
            "CiliumNetworkPolicy",
            Operation::Delete,
            "closed",
            None,
            Some(closed),
        );
        let d = judge(&delete, &Policy::default(), &view).unwrap();
        assert!(!d.allowed, "{d:?}");
        assert!(
            d.message
                .unwrap()
                .contains("running agent pod agents/agent")
        );
    }

    fn exec_role() -> Value {
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
            "metadata": {"name": "shell", "namespace": NS},
            "rules": [{"apiGroups": [""], "resources": ["pods/exec"], "verbs": ["create"]}]})
    }

    fn reader_role() -> Value {
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
            "metadata": {"name": "shell", "namespace": NS},
            "rules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get"], "resourceNames": ["cfg"]}]})
    }

    fn binding_to(sa: &str) -> Value {
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
            "metadata": {"name": "agent-shell", "namespace": NS},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "shell"},
            "subjects": [{"kind": "ServiceAccount", "name": sa, "namespace": NS}]})
    }

    #[test]
    fn a_binding_giving_the_agents_service_account_exec_is_refused() {
        let view = with_agent(
            view_of(&[service_account_json(NS, SA), exec_role()]),
            agent_running(),
        );
        let create = review(
            "RoleBinding",
            Operation::Create,
            "agent-shell",
            Some(binding_to(SA)),
            None,
        );
        let d = judge(&create, &Policy::default(), &view).unwrap();
        assert!(!d.allowed);
        let msg = d.message.unwrap();
        assert!(msg.contains("least-privilege-rbac"), "{msg}");
        assert!(
            msg.contains("agents/agent") && msg.contains("pods/exec"),
            "{msg}"
        );
        // Binding another ServiceAccount concerns no agent.
        let other = review(
            "RoleBinding",
            Operation::Create,
            "agent-shell",
            Some(binding_to("ci")),
            None,
        );
        assert!(judge(&other, &Policy::default(), &view).unwrap().allowed);
    }

    #[test]
    fn widening_a_bound_role_is_refused_and_a_harmless_role_needs_no_lookup() {
        let view = with_agent(
            view_of(&[service_account_json(NS, SA), reader_role(), binding_to(SA)]),
            agent_running(),
        );
        let widen = review(
            "Role",
            Operation::Update,
            "shell",
            Some(exec_role()),
            Some(reader_role()),
        );
        assert!(!judge(&widen, &Policy::default(), &view).unwrap().allowed);
        let harmless = review(
            "Role",
            Operation::Update,
            "shell",
            Some(reader_role()),
            Some(exec_role()),
        );
        assert!(namespaces(&harmless, &Policy::default(), &view).is_empty());
        assert!(judge(&harmless, &Policy::default(), &view).unwrap().allowed);
        // Deleting RBAC takes grants away.
        let delete = review(
            "Role",
            Operation::Delete,
            "shell",
            None,
            Some(reader_role()),
        );
        assert!(judge(&delete, &Policy::default(), &view).is_none());
    }

    #[test]
    fn a_cluster_role_labelled_into_an_aggregated_role_the_agent_holds_is_refused() {
        let aggregated = json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
            "metadata": {"name": "agent-base"},
            "aggregationRule": {"clusterRoleSelectors": [{"matchLabels": {"example.com/aggregate-to-agent": "true"}}]},
            "rules": []});
        let bind = json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
            "metadata": {"name": "agent-base", "namespace": NS},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "agent-base"},
            "subjects": [{"kind": "ServiceAccount", "name": SA, "namespace": NS}]});
        let view = with_agent(
            view_of(&[service_account_json(NS, SA), aggregated, bind]),
            agent_running(),
        );
        let labelled = json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
            "metadata": {"name": "extra", "labels": {"example.com/aggregate-to-agent": "true"}},
            "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["create"]}]});
        let create = review(
            "ClusterRole",
            Operation::Create,
            "extra",
            Some(labelled.clone()),
            None,
        );
        let d = judge(&create, &Policy::default(), &view).unwrap();
        assert!(!d.allowed, "{d:?}");
        let msg = d.message.unwrap();
        assert!(msg.contains("agent-base"), "{msg}");
        assert!(
            msg.contains("refused ClusterRole extra: 1 violation"),
            "{msg}"
        );
        let mut unlabelled = labelled;
        unlabelled["metadata"]["labels"] = json!({});
        let create = review(
            "ClusterRole",
            Operation::Create,
            "extra",
            Some(unlabelled),
            None,
        );
        assert!(judge(&create, &Policy::default(), &view).unwrap().allowed);
    }

    #[test]
    fn a_cluster_binding_to_every_service_account_looks_in_every_agent_namespace() {
        let mut view = view_of(&[]);
        view.index.apply_agent_signal(0, "a", "x");
        view.index.apply_agent_signal(0, "b", "y");
        let crb = json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
            "metadata": {"name": "all"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin"},
            "subjects": [{"kind": "Group", "name": "system:serviceaccounts"}]});
        let r = review(
            "ClusterRoleBinding",
            Operation::Create,
            "all",
            Some(crb),
            None,
        );
        assert_eq!(namespaces(&r, &Policy::default(), &view), ["a", "b"]);
    }
}

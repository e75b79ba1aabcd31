//! `least-privilege-rbac` (high): the agent's ServiceAccount, the identity a hijacked agent
//! would use against the API, holds no broad role. Every binding reaching it counts: direct,
//! through its `system:serviceaccount:<ns>:<name>` user, and through the
//! `system:serviceaccounts[:<ns>]` and `system:authenticated` groups. A pod without a
//! ServiceAccount runs as `default`, which is judged the same way.
//!
//! Rules are read as the RBAC authorizer reads them: an aggregated ClusterRole grants the
//! rules of every ClusterRole its selectors match (the view keeps that union current as
//! labels change); a `nonResourceURLs` rule grants nothing on resources; `resourceNames`
//! narrows a rule to the named objects. A binding to a role the cluster does not have (yet)
//! is reported: whatever that role grants once created applies at once, unjudged.

use super::check::{Check, Judge, PodInput, Read, always};
use crate::engine::policy::RbacSettings;
use crate::engine::view::BoundRole;
use crate::engine::violation::{Tier, Violation};
use k8s_openapi::api::rbac::v1::PolicyRule;

const ID: &str = "least-privilege-rbac";
const TIER: Tier = Tier::High;

pub static CHECK: Check = Check {
    id: ID,
    tier: TIER,
    judge: Judge::Pod(check),
    reads: &[Read::BoundRoles],
    applies: always,
};

const READ_VERBS: &[&str] = &["get", "list", "watch", "*"];

fn has(list: &[String], item: &str) -> bool {
    list.iter().any(|x| x == item)
}

/// ClusterRoles every cluster has, judged by name (`forbiddenRoles`) when they are not in
/// the view (`check` reads manifests, which do not carry them).
fn built_in(role_kind: &str, name: &str) -> bool {
    role_kind == "ClusterRole"
        && (matches!(name, "cluster-admin" | "admin" | "edit" | "view")
            || name.starts_with("system:"))
}

/// Why one rule is too broad, in short phrases.
fn rule_problems(rule: &PolicyRule, cluster_wide: bool, s: &RbacSettings, out: &mut Vec<String>) {
    let verbs = &rule.verbs;
    let resources = rule.resources.as_deref().unwrap_or(&[]);
    let groups = rule.api_groups.as_deref().unwrap_or(&[]);
    let urls = rule.non_resource_urls.as_deref().unwrap_or(&[]);
    let named = rule
        .resource_names
        .as_deref()
        .is_some_and(|n| !n.is_empty());
    if resources.is_empty() {
        // Only non-resource URLs (`/healthz`, `/metrics`): the authorizer applies such a rule
        // to nothing else, and no forbidden verb means anything there. Only all of them with
        // all verbs is as broad as cluster-admin's.
        if s.forbid_wildcards && has(verbs, "*") && urls.iter().any(|u| u == "*" || u == "/*") {
            out.push("grants * verbs on every non-resource URL".into());
        }
        return;
    }
    if s.forbid_wildcards {
        if has(verbs, "*") {
            out.push("grants * verbs".into());
        }
        if has(resources, "*") {
            out.push("grants * resources".into());
        }
    }
    // `resourceNames` limits a read to the named Secrets, not the cluster's.
    if s.forbid_cluster_secret_read
        && cluster_wide
        && !named
        && (has(groups, "") || has(groups, "*"))
        && (has(resources, "secrets") || has(resources, "*"))
        && verbs.iter().any(|v| READ_VERBS.contains(&v.as_str()))
    {
        out.push("reads Secrets across the cluster".into());
    }
    for f in &s.forbidden_verbs {
        // `*` includes every forbidden verb, which matters when wildcards are allowed.
        if has(verbs, f) || (!s.forbid_wildcards && has(verbs, "*")) {
            out.push(format!("grants {f}"));
        }
    }
}

fn problems(b: &BoundRole, s: &RbacSettings) -> Vec<String> {
    let mut out = Vec::new();
    // Built-in roles are ClusterRoles, but a Role reusing a forbidden name is meant the same way.
    if has(&s.forbidden_roles, &b.role_name) {
        out.push("forbidden role".into());
    } else if b.rules.is_none() && !built_in(&b.role_kind, &b.role_name) {
        out.push(format!(
            "the {} does not exist (yet), so what it will grant cannot be judged; whatever it grants once created applies at once",
            b.role_kind
        ));
    }
    for rule in b.rules.iter().flat_map(|r| r.iter()) {
        rule_problems(rule, b.cluster_wide, s, &mut out);
    }
    let mut seen = Vec::new();
    out.retain(|p| {
        let fresh = !seen.contains(p);
        if fresh {
            seen.push(p.clone());
        }
        fresh
    });
    out
}

fn check(input: &PodInput<'_>) -> Vec<Violation> {
    let t = &input.target;
    let sa = t.service_account().unwrap_or("default");
    let settings = &input.policy.checks.rbac;
    let path = t.path("serviceAccountName");
    input
        .view
        .bound_roles(t.namespace, sa)
        .iter()
        .filter_map(|b| {
            let why = problems(b, settings);
            if why.is_empty() {
                return None;
            }
            Some(Violation::new(
                ID,
                TIER,
                path.clone(),
                format!(
                    "ServiceAccount {}/{sa} gets {} {} through {} (subject {}): {}",
                    t.namespace,
                    b.role_kind,
                    b.role_name,
                    b.binding,
                    b.via,
                    why.join(", ")
                ),
                if b.rules.is_none() && !has(&settings.forbidden_roles, &b.role_name) {
                    format!(
                        "create the {} {} (narrow) before the binding, or remove {}",
                        b.role_kind, b.role_name, b.binding
                    )
                } else {
                    format!(
                        "remove {} from the agent's ServiceAccount and bind a Role granting only the verbs and resources it needs",
                        b.binding
                    )
                },
            ))
        })
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::engine::checks::fixtures::*;
    use crate::engine::policy::Policy;
    use serde_json::{Value, json};

    fn binding(kind: &str, name: &str, role_kind: &str, role: &str, subject: Value) -> Value {
        let mut b = json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": kind,
            "metadata": {"name": name},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": role_kind, "name": role},
            "subjects": [subject]});
        if kind == "RoleBinding" {
            b["metadata"]["namespace"] = json!(NS);
        }
        b
    }
    fn sa_subject() -> Value {
        json!({"kind": "ServiceAccount", "name": SA, "namespace": NS})
    }
    fn role(kind: &str, name: &str, rules: Value) -> Value {
        let mut r = json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": kind,
            "metadata": {"name": name}, "rules": rules});
        if kind == "Role" {
            r["metadata"]["namespace"] = json!(NS);
        }
        r
    }

    fn judge(objects: &[Value]) -> Vec<Violation> {
        let mut all = vec![service_account_json(NS, SA)];
        all.extend_from_slice(objects);
        run(&CHECK, &hardened_pod(), &Policy::default(), &view_of(&all))
    }

    #[test]
    fn passes_narrow_role() {
        let v = judge(&[
            role(
                "Role",
                "read-config",
                json!([{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get"]}]),
            ),
            binding(
                "RoleBinding",
                "agent-config",
                "Role",
                "read-config",
                sa_subject(),
            ),
        ]);
        assert!(v.is_empty(), "{v:?}");
    }

    #[test]
    fn passes_namespaced_secret_read() {
        let v = judge(&[
            role(
                "Role",
                "read-secrets",
                json!([{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]}]),
            ),
            binding(
                "RoleBinding",
                "agent-secrets",
                "Role",
                "read-secrets",
                sa_subject(),
            ),
        ]);
        assert!(v.is_empty(), "{v:?}");
    }

    #[test]
    fn rejects_cluster_admin_binding() {
        let v = judge(&[binding(
            "ClusterRoleBinding",
            "agent-root",
            "ClusterRole",
            "cluster-admin",
            sa_subject(),
        )]);
        assert_eq!(paths(&v), ["spec.serviceAccountName"]);
        assert_eq!(v[0].tier, Tier::High);
        assert!(
            v[0].message.contains("ClusterRoleBinding agent-root"),
            "{}",
            v[0].message
        );
        assert!(v[0].message.contains("cluster-admin"));
    }

    #[test]
    fn rejects_binding_to_edit_through_namespace_group() {
        let group = json!({"kind": "Group", "name": format!("system:serviceaccounts:{NS}")});
        let v = judge(&[binding(
            "RoleBinding",
            "everyone-edits",
            "ClusterRole",
            "edit",
            group,
        )]);
        assert_eq!(v.len(), 1);
        let m = &v[0].message;
        assert!(m.contains("ClusterRole edit"), "{m}");
        assert!(
            m.contains(&format!("RoleBinding {NS}/everyone-edits")),
            "{m}"
        );
        assert!(
            m.contains(&format!("Group system:serviceaccounts:{NS}")),
            "{m}"
        );
    }

    #[test]
    fn rejects_wildcard_verbs_and_resources() {
        let v = judge(&[
            role(
                "Role",
                "wide",
                json!([{"apiGroups": ["apps"], "resources": ["*"], "verbs": ["*"]}]),
            ),
            binding("RoleBinding", "agent-wide", "Role", "wide", sa_subject()),
        ]);
        assert_eq!(v.len(), 1);
        assert!(
            v[0].message.contains("* verbs") && v[0].message.contains("* resources"),
            "{}",
            v[0].message
        );
    }

    #[test]
    fn rejects_secret_read_across_the_cluster_only_through_cluster_binding() {
        let reader = role(
            "ClusterRole",
            "secret-reader",
            json!([{"apiGroups": [""], "resources": ["secrets"], "verbs": ["list"]}]),
        );
        let v = judge(&[
            reader.clone(),
            binding(
                "ClusterRoleBinding",
                "agent-secrets",
                "ClusterRole",
                "secret-reader",
                sa_subject(),
            ),
        ]);
        assert_eq!(v.len(), 1);
        assert!(
            v[0].message.contains("reads Secrets across the cluster"),
            "{}",
            v[0].message
        );
        // The same ClusterRole bound in one namespace is a namespaced grant.
        let v = judge(&[
            reader,
            binding(
                "RoleBinding",
                "agent-secrets",
                "ClusterRole",
                "secret-reader",
                sa_subject(),
            ),
        ]);
        assert!(v.is_empty(), "{v:?}");
    }

    #[test]
    fn rejects_forbidden_verbs() {
        let v = judge(&[
            role(
                "Role",
                "imp",
                json!([{"apiGroups": [""], "resources": ["users"], "verbs": ["impersonate"]}]),
            ),
            binding("RoleBinding", "agent-imp", "Role", "imp", sa_subject()),
        ]);
        assert_eq!(v.len(), 1);
        assert!(v[0].message.contains("grants impersonate"));
    }

    #[test]
    fn judges_default_account_when_pod_names_none() {
        let p = pod("a").container("agent").build();
        let view = view_of(&[binding(
            "RoleBinding",
            "default-admin",
            "ClusterRole",
            "admin",
            json!({"kind": "ServiceAccount", "name": "default", "namespace": NS}),
        )]);
        let v = run(&CHECK, &p, &Policy::default(), &view);
        assert_eq!(v.len(), 1);
        assert!(v[0].message.contains(&format!("{NS}/default")));
    }

    #[test]
    fn aggregated_cluster_role_grants_what_its_selectors_match_as_labels_change() {
        let aggregate = json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
            "metadata": {"name": "agent-aggregate"},
            "aggregationRule": {"clusterRoleSelectors": [{"matchLabels": {"openclaw.io/aggregate-to-agent": "true"}}]},
            "rules": []});
        let reader = |labelled: bool| {
            let mut r = role(
                "ClusterRole",
                "secret-reader",
                json!([{"apiGroups": [""], "resources": ["secrets"], "verbs": ["list"]}]),
            );
            if labelled {
                r["metadata"]["labels"] = json!({"openclaw.io/aggregate-to-agent": "true"});
            }
            r
        };
        let bind = binding(
            "ClusterRoleBinding",
            "agent-aggregate",
            "ClusterRole",
            "agent-aggregate",
            sa_subject(),
        );
        let v = judge(&[aggregate.clone(), reader(true), bind.clone()]);
        assert_eq!(v.len(), 1, "{v:?}");
        assert!(
            v[0].message.contains("ClusterRole agent-aggregate")
                && v[0].message.contains("reads Secrets across the cluster"),
            "{}",
            v[0].message
        );
        // The label removed (a watch event in a live cluster): the aggregate grants nothing.
        let mut view = view_of(&[service_account_json(NS, SA), aggregate, reader(true), bind]);
        view.add(&reader(false), NS).unwrap();
        assert!(run(&CHECK, &hardened_pod(), &Policy::default(), &view).is_empty());
        // And back.
        view.add(&reader(true), NS).unwrap();
        assert_eq!(
            run(&CHECK, &hardened_pod(), &Policy::default(), &view).len(),
            1
        );
    }

    #[test]
    fn non_resource_urls_and_resource_names_narrow_a_rule() {
        let v = judge(&[
            role(
                "ClusterRole",
                "probe",
                json!([
                    {"nonResourceURLs": ["/healthz", "/metrics"], "verbs": ["*"]},
                    {"apiGroups": [""], "resources": ["secrets"], "resourceNames": ["openclaw-llm"], "verbs": ["get"]}
                ]),
            ),
            binding(
                "ClusterRoleBinding",
                "agent-probe",
                "ClusterRole",
                "probe",
                sa_subject(),
            ),
        ]);
        assert!(v.is_empty(), "{v:?}");
        let v = judge(&[
            role(
                "ClusterRole",
                "urls",
                json!([{"nonResourceURLs": ["*"], "verbs": ["*"]}]),
            ),
            binding(
                "ClusterRoleBinding",
                "agent-urls",
                "ClusterRole",
                "urls",
                sa_subject(),
            ),
        ]);
        assert_eq!(v.len(), 1);
        assert!(
            v[0].message.contains("every non-resource URL"),
            "{}",
            v[0].message
        );
    }

    #[test]
    fn binding_to_a_missing_role_is_reported_as_such() {
        let v = judge(&[binding(
            "RoleBinding",
            "agent-later",
            "Role",
            "not-yet",
            sa_subject(),
        )]);
        assert_eq!(v.len(), 1, "{v:?}");
        assert!(
            v[0].message.contains("Role not-yet") && v[0].message.contains("does not exist (yet)"),
            "{}",
            v[0].message
        );
        assert!(v[0].fix.contains("create the Role not-yet"), "{}", v[0].fix);
        // Built-in ClusterRoles are not in manifests; they are judged by name.
        let v = judge(&[binding(
            "RoleBinding",
            "agent-view",
            "ClusterRole",
            "view",
            sa_subject(),
        )]);
        assert!(v.is_empty(), "{v:?}");
    }

    #[test]
    fn forbidden_list_comes_from_the_policy() {
        let mut policy = Policy::default();
        policy.checks.rbac.forbidden_roles.retain(|r| r != "edit");
        let view = view_of(&[
            service_account_json(NS, SA),
            binding("RoleBinding", "e", "ClusterRole", "edit", sa_subject()),
        ]);
        assert!(run(&CHECK, &hardened_pod(), &policy, &view).is_empty());
    }
}

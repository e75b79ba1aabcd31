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
//!
//! Beyond broad roles, every rule is read as an attacker would read it: the policy's escape
//! powers (creating pods, exec, proxies, ephemeral containers, changing network policies or
//! admission webhooks, minting tokens, reading unnamed Secrets) are reported by role, rule
//! number and the verbs and resources that grant them.

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
pub(crate) fn built_in(role_kind: &str, name: &str) -> bool {
    role_kind == "ClusterRole"
        && (matches!(name, "cluster-admin" | "admin" | "edit" | "view")
            || name.starts_with("system:"))
}

/// Whether a rule's resource entry covers `wanted` as the RBAC authorizer reads it: `*` is
/// every resource and subresource, `pods/*` every subresource of pods, `*/exec` the `exec`
/// subresource of everything.
fn resource_covers(rule_resource: &str, wanted: &str) -> bool {
    if rule_resource == "*" || rule_resource == wanted {
        return true;
    }
    let Some((resource, sub)) = wanted.split_once('/') else {
        return false;
    };
    rule_resource.strip_suffix("/*") == Some(resource)
        || rule_resource.strip_prefix("*/") == Some(sub)
}

/// The escape powers one rule grants, each as `rule N grants <verbs> on <resources> (<power>)`
/// in the rule's own words, so the reader finds the line to remove.
fn escape_powers(rule: &PolicyRule, n: usize, s: &RbacSettings, out: &mut Vec<String>) {
    let verbs = &rule.verbs;
    let resources = rule.resources.as_deref().unwrap_or(&[]);
    let groups = rule.api_groups.as_deref().unwrap_or(&[]);
    let named = rule
        .resource_names
        .as_deref()
        .is_some_and(|n| !n.is_empty());
    // Everything on everything is already said ("grants * verbs, grants * resources").
    if s.forbid_wildcards && has(verbs, "*") && has(resources, "*") {
        return;
    }
    for power in &s.escape_powers {
        if named && power.unless_resource_names {
            continue;
        }
        if !groups
            .iter()
            .any(|g| g == "*" || power.api_groups.contains(g))
        {
            continue;
        }
        let granted_verbs: Vec<&str> = verbs
            .iter()
            .filter(|v| *v == "*" || power.verbs.contains(v))
            .map(String::as_str)
            .collect();
        let granted_resources: Vec<&str> = resources
            .iter()
            .filter(|r| power.resources.iter().any(|w| resource_covers(r, w)))
            .map(String::as_str)
            .collect();
        if granted_verbs.is_empty() || granted_resources.is_empty() {
            continue;
        }
        out.push(format!(
            "rule {n} grants {} on {} ({})",
            granted_verbs.join(", "),
            granted_resources.join(", "),
            power.name
        ));
    }
}

/// Why one rule is too broad, in short phrases. `n` numbers the rule from 1 in the role.
fn rule_problems(
    rule: &PolicyRule,
    n: usize,
    cluster_wide: bool,
    s: &RbacSettings,
    out: &mut Vec<String>,
) {
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
    escape_powers(rule, n, s, out);
}

fn problems(b: &BoundRole, s: &RbacSettings) -> Vec<String> {
    let mut out = Vec::new();
    // Built-in roles are ClusterRoles, but a Role reusing a forbidden name is meant the same
    // way. A forbidden role is refused by name; listing its every power would bury that.
    if has(&s.forbidden_roles, &b.role_name) {
        return vec!["forbidden role".into()];
    }
    if b.rules.is_none() && !built_in(&b.role_kind, &b.role_name) {
        out.push(format!(
            "the {} does not exist (yet), so what it will grant cannot be judged; whatever it grants once created applies at once",
            b.role_kind
        ));
    }
    for (i, rule) in b.rules.iter().flat_map(|r| r.iter()).enumerate() {
        rule_problems(rule, i + 1, b.cluster_wide, s, &mut out);
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

/// Whether a grant gives what this check forbids, leaving aside a role not known yet (that
/// role is judged when it comes): `engine::dependents` asks it to answer a change that grants
/// nothing forbidden without looking for agents.
pub fn grants_forbidden(b: &BoundRole, s: &RbacSettings) -> bool {
    if has(&s.forbidden_roles, &b.role_name) {
        return true;
    }
    let Some(rules) = &b.rules else {
        return false;
    };
    let mut out = Vec::new();
    for (i, rule) in rules.iter().enumerate() {
        rule_problems(rule, i + 1, b.cluster_wide, s, &mut out);
    }
    !out.is_empty()
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

    /// The agent's ServiceAccount bound to a Role with these rules.
    fn judge_rules(rules: Value) -> Vec<Violation> {
        judge(&[
            role("Role", "agent-role", rules),
            binding(
                "RoleBinding",
                "agent-role",
                "Role",
                "agent-role",
                sa_subject(),
            ),
        ])
    }

    /// The one message of a single violation.
    fn only_message(v: &[Violation]) -> &str {
        assert_eq!(v.len(), 1, "{v:?}");
        &v[0].message
    }

    #[test]
    fn passes_named_secret_read_in_the_namespace() {
        let v = judge_rules(json!([{"apiGroups": [""], "resources": ["secrets"],
            "resourceNames": ["openclaw-llm"], "verbs": ["get"]}]));
        assert!(v.is_empty(), "{v:?}");
    }

    #[test]
    fn rejects_secret_read_beyond_named_ones_in_the_namespace() {
        let v = judge_rules(
            json!([{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get", "list"]}]),
        );
        let m = only_message(&v);
        assert!(
            m.contains("Role agent-role")
                && m.contains(
                    "rule 1 grants get, list on secrets (read Secrets beyond named ones)"
                ),
            "{m}"
        );
    }

    #[test]
    fn rejects_pod_creation_naming_role_rule_and_verb() {
        let v = judge_rules(json!([
            {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get"]},
            {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "create"]}
        ]));
        let m = only_message(&v);
        assert!(
            m.contains("Role agent-role")
                && m.contains("rule 2 grants create on pods (create pods)"),
            "{m}"
        );
        // Reading pods is no way out.
        assert!(
            judge_rules(json!([{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch"]}]))
                .is_empty()
        );
    }

    #[test]
    fn rejects_workload_changes_in_each_group() {
        for (group, resource) in [
            ("apps", "deployments"),
            ("apps", "statefulsets"),
            ("batch", "cronjobs"),
            ("", "replicationcontrollers"),
        ] {
            let v = judge_rules(
                json!([{"apiGroups": [group], "resources": [resource], "verbs": ["patch"]}]),
            );
            let m = only_message(&v);
            assert!(
                m.contains(&format!(
                    "rule 1 grants patch on {resource} (create or change workloads)"
                )),
                "{m}"
            );
        }
        // The same name in a group that does not serve it grants nothing.
        assert!(
            judge_rules(
                json!([{"apiGroups": [""], "resources": ["deployments"], "verbs": ["create"]}])
            )
            .is_empty()
        );
    }

    #[test]
    fn rejects_exec_attach_and_port_forward_by_create_or_get() {
        for (resource, verb) in [
            ("pods/exec", "create"),
            ("pods/exec", "get"),
            ("pods/attach", "create"),
            ("pods/portforward", "create"),
        ] {
            let v =
                judge_rules(json!([{"apiGroups": [""], "resources": [resource], "verbs": [verb]}]));
            let m = only_message(&v);
            assert!(
                m.contains(&format!(
                    "rule 1 grants {verb} on {resource} (exec, attach or port-forward into pods)"
                )),
                "{m}"
            );
        }
        // Exec into a named pod is still exec.
        let v = judge_rules(json!([{"apiGroups": [""], "resources": ["pods/exec"],
            "resourceNames": ["helper"], "verbs": ["create"]}]));
        assert_eq!(v.len(), 1, "{v:?}");
    }

    #[test]
    fn rejects_proxies_of_pods_services_and_nodes() {
        for resource in ["pods/proxy", "services/proxy", "nodes/proxy"] {
            let v = judge_rules(
                json!([{"apiGroups": [""], "resources": [resource], "verbs": ["get"]}]),
            );
            let m = only_message(&v);
            assert!(
                m.contains(&format!(
                    "rule 1 grants get on {resource} (proxy to pods, Services or nodes)"
                )),
                "{m}"
            );
        }
    }

    #[test]
    fn rejects_ephemeral_containers() {
        let v = judge_rules(
            json!([{"apiGroups": [""], "resources": ["pods/ephemeralcontainers"],
            "verbs": ["patch"]}]),
        );
        assert!(
            only_message(&v).contains(
                "rule 1 grants patch on pods/ephemeralcontainers (add ephemeral containers to pods)"
            ),
            "{v:?}"
        );
    }

    #[test]
    fn subresource_wildcards_cover_the_subresources() {
        let v =
            judge_rules(json!([{"apiGroups": [""], "resources": ["pods/*"], "verbs": ["create"]}]));
        let m = only_message(&v);
        assert!(
            m.contains("rule 1 grants create on pods/* (exec, attach or port-forward into pods)"),
            "{m}"
        );
        let v =
            judge_rules(json!([{"apiGroups": [""], "resources": ["*/proxy"], "verbs": ["get"]}]));
        assert!(
            only_message(&v).contains("(proxy to pods, Services or nodes)"),
            "{v:?}"
        );
        // `pods/*` is not `pods`.
        let v =
            judge_rules(json!([{"apiGroups": [""], "resources": ["pods/*"], "verbs": ["create"]}]));
        assert!(!only_message(&v).contains("(create pods)"), "{v:?}");
    }

    #[test]
    fn rejects_network_policy_changes_of_both_flavours() {
        for (group, resource, verb) in [
            ("networking.k8s.io", "networkpolicies", "delete"),
            ("networking.k8s.io", "networkpolicies", "create"),
            ("cilium.io", "ciliumnetworkpolicies", "update"),
            (
                "cilium.io",
                "ciliumclusterwidenetworkpolicies",
                "deletecollection",
            ),
        ] {
            let v = judge_rules(
                json!([{"apiGroups": [group], "resources": [resource], "verbs": [verb]}]),
            );
            assert!(
                only_message(&v).contains(&format!(
                    "rule 1 grants {verb} on {resource} (change network policies)"
                )),
                "{v:?}"
            );
        }
        assert!(
            judge_rules(
                json!([{"apiGroups": ["networking.k8s.io"], "resources": ["networkpolicies"],
                "verbs": ["get", "list", "watch"]}])
            )
            .is_empty()
        );
    }

    #[test]
    fn rejects_minting_service_account_tokens() {
        let v = judge_rules(
            json!([{"apiGroups": [""], "resources": ["serviceaccounts/token"],
            "verbs": ["create"]}]),
        );
        assert!(
            only_message(&v).contains(
                "rule 1 grants create on serviceaccounts/token (mint ServiceAccount tokens)"
            ),
            "{v:?}"
        );
    }

    #[test]
    fn rejects_changing_webhooks_and_admission_policies() {
        for resource in [
            "validatingwebhookconfigurations",
            "mutatingwebhookconfigurations",
            "validatingadmissionpolicies",
            "validatingadmissionpolicybindings",
        ] {
            let v = judge_rules(json!([{"apiGroups": ["admissionregistration.k8s.io"],
                "resources": [resource], "verbs": ["delete"]}]));
            assert!(
                only_message(&v).contains(&format!(
                    "rule 1 grants delete on {resource} (change admission webhooks or policies)"
                )),
                "{v:?}"
            );
        }
    }

    #[test]
    fn wildcard_verbs_on_one_resource_name_the_power_too() {
        let v =
            judge_rules(json!([{"apiGroups": ["*"], "resources": ["pods/exec"], "verbs": ["*"]}]));
        let m = only_message(&v);
        assert!(
            m.contains("grants * verbs")
                && m.contains(
                    "rule 1 grants * on pods/exec (exec, attach or port-forward into pods)"
                ),
            "{m}"
        );
    }

    #[test]
    fn escape_powers_come_from_the_policy() {
        let rules = json!([{"apiGroups": [""], "resources": ["pods"], "verbs": ["create"]}]);
        let mut policy = Policy::default();
        policy
            .checks
            .rbac
            .escape_powers
            .retain(|p| p.name != "create pods");
        let view = view_of(&[
            service_account_json(NS, SA),
            role("Role", "r", rules.clone()),
            binding("RoleBinding", "r", "Role", "r", sa_subject()),
        ]);
        assert!(run(&CHECK, &hardened_pod(), &policy, &view).is_empty());
        // And a power the defaults do not name.
        policy.checks.rbac.escape_powers = vec![crate::engine::policy::EscapePower {
            name: "read configuration".into(),
            api_groups: vec!["".into()],
            resources: vec!["configmaps".into()],
            verbs: vec!["get".into()],
            unless_resource_names: false,
        }];
        let view = view_of(&[
            service_account_json(NS, SA),
            role(
                "Role",
                "r",
                json!([{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get"]}]),
            ),
            binding("RoleBinding", "r", "Role", "r", sa_subject()),
        ]);
        let v = run(&CHECK, &hardened_pod(), &policy, &view);
        assert!(
            only_message(&v).contains("rule 1 grants get on configmaps (read configuration)"),
            "{v:?}"
        );
    }

    #[test]
    fn the_escape_manifest_is_refused_with_every_power_named() {
        // examples/rbac-escape, its RBAC moved into the fixtures' namespace.
        let text = include_str!("../../../examples/rbac-escape/escape.yaml")
            .replace("openclaw-escape", NS);
        let objects: Vec<Value> = crate::yaml::read_stream(&text, crate::yaml::Duplicates::Refuse)
            .unwrap()
            .into_iter()
            .map(|d| d.value)
            .filter(|o| {
                o["apiVersion"]
                    .as_str()
                    .is_some_and(|a| a.starts_with("rbac."))
            })
            .collect();
        assert_eq!(objects.len(), 4);
        let v = judge(&objects);
        let all: String = v
            .iter()
            .map(|v| v.message.as_str())
            .collect::<Vec<_>>()
            .join("\n");
        for power in Policy::default().checks.rbac.escape_powers {
            assert!(
                all.contains(&format!("({})", power.name)),
                "{} missing: {all}",
                power.name
            );
        }
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
        // The same ClusterRole bound in one namespace is a namespaced grant: still more
        // Secrets than named ones, but not the cluster's.
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
        let m = only_message(&v);
        assert!(
            !m.contains("across the cluster") && m.contains("(read Secrets beyond named ones)"),
            "{m}"
        );
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

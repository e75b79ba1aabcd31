//! `dedicated-service-account` (medium): the agent runs as its own ServiceAccount, so its
//! API rights can be granted and revoked without touching anything else in the namespace.
//! The ServiceAccount must exist: a pod naming a missing one would be refused by the API
//! server at creation anyway, and a workload template would fail silently in its ReplicaSet.

use super::check::{Check, Judge, PodInput, Read, always};
use crate::engine::violation::{Tier, Violation};

const ID: &str = "dedicated-service-account";
const TIER: Tier = Tier::Medium;

pub static CHECK: Check = Check {
    id: ID,
    tier: TIER,
    judge: Judge::Pod(check),
    reads: &[Read::ServiceAccounts],
    applies: always,
};

fn check(input: &PodInput<'_>) -> Vec<Violation> {
    let t = &input.target;
    // The deprecated field counts only when the current one is not set, as in the API.
    let field = if t
        .spec
        .service_account_name
        .as_deref()
        .is_some_and(|s| !s.is_empty())
    {
        "serviceAccountName"
    } else if t
        .spec
        .service_account
        .as_deref()
        .is_some_and(|s| !s.is_empty())
    {
        "serviceAccount"
    } else {
        "serviceAccountName"
    };
    let path = t.path(field);
    let v =
        |message: String, fix: String| vec![Violation::new(ID, TIER, path.clone(), message, fix)];
    match t.service_account() {
        None => v(
            "no serviceAccountName: the pod runs as the namespace's default ServiceAccount".into(),
            "create a ServiceAccount for the agent and set spec.serviceAccountName to it".into(),
        ),
        Some("default") => v(
            "the pod runs as the namespace's default ServiceAccount".into(),
            "create a ServiceAccount for the agent and set spec.serviceAccountName to it".into(),
        ),
        Some(sa) if !input.view.service_account_exists(t.namespace, sa) => v(
            format!(
                "ServiceAccount {sa} does not exist in namespace {}",
                t.namespace
            ),
            format!(
                "create ServiceAccount {sa} in namespace {} (or fix the name)",
                t.namespace
            ),
        ),
        Some(_) => Vec::new(),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::engine::checks::fixtures::*;

    #[test]
    fn passes_hardened_pod_whose_account_exists() {
        assert!(run_default(&CHECK, &hardened_pod()).is_empty());
    }

    #[test]
    fn rejects_pod_without_service_account() {
        let p = pod("a").container("agent").build();
        let v = run_default(&CHECK, &p);
        assert_eq!(paths(&v), ["spec.serviceAccountName"]);
        assert_eq!(v[0].tier, Tier::Medium);
    }

    #[test]
    fn rejects_default_service_account() {
        let p = hardened().service_account("default").build();
        let v = run_default(&CHECK, &p);
        assert_eq!(paths(&v), ["spec.serviceAccountName"]);
        assert!(v[0].message.contains("default"));
    }

    #[test]
    fn rejects_service_account_missing_from_namespace() {
        let p = hardened().service_account("ghost").build();
        let v = run_default(&CHECK, &p);
        assert_eq!(paths(&v), ["spec.serviceAccountName"]);
        assert!(
            v[0].message.contains("ghost") && v[0].message.contains(NS),
            "{}",
            v[0].message
        );
    }

    #[test]
    fn account_in_another_namespace_does_not_count() {
        let p = hardened().build();
        let view = view_of(&[service_account_json("elsewhere", SA)]);
        let v = run(&CHECK, &p, &Default::default(), &view);
        assert_eq!(v.len(), 1);
    }

    #[test]
    fn deprecated_service_account_field_is_judged_at_its_own_path() {
        let p = pod("a")
            .spec(|s| s.service_account = Some("default".into()))
            .container("agent")
            .build();
        let v = run_default(&CHECK, &p);
        assert_eq!(paths(&v), ["spec.serviceAccount"]);
    }
}

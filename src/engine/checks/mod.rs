//! The registry: every check, in report order, each described once in its own file (the
//! pod-security-admission model: a newcomer finds a rule by its id and reads it in one
//! screen). Adding a check is one new file and one line in [`CHECKS`]; the ids a policy
//! accepts, what the live view confirms and the report order all come from this list.

pub mod apparmor_profile;
pub mod check;
pub mod dedicated_service_account;
pub mod default_deny_egress;
pub mod drop_all_capabilities;
pub mod exec_requires_approval;
pub mod host_probes;
pub mod in_cluster_inference;
pub mod least_privilege_rbac;
pub mod no_host_access;
pub mod no_plaintext_credentials;
pub mod no_privilege_escalation;
pub mod proc_mount;
pub mod read_only_root_filesystem;
pub mod relabel_requires_approval;
pub mod resource_limits;
pub mod run_as_non_root;
pub mod safe_sysctls;
pub mod sandboxed_runtime;
pub mod seccomp_profile;
pub mod secret_provider_class;
pub mod selinux_options;
pub mod short_lived_token;
pub mod user_namespace;
pub mod volume_types;

#[cfg(test)]
pub(crate) mod fixtures;

use crate::engine::policy::Policy;
use crate::engine::view::Reads;
use crate::engine::violation::Violation;
use check::{Check, Judge, PodInput, UpdateInput};

/// Every check, in report order.
pub static CHECKS: &[&Check] = &[
    &run_as_non_root::CHECK,
    &read_only_root_filesystem::CHECK,
    &drop_all_capabilities::CHECK,
    &no_privilege_escalation::CHECK,
    &seccomp_profile::CHECK,
    &apparmor_profile::CHECK,
    &selinux_options::CHECK,
    &proc_mount::CHECK,
    &safe_sysctls::CHECK,
    &no_host_access::CHECK,
    &host_probes::CHECK,
    &volume_types::CHECK,
    &dedicated_service_account::CHECK,
    &least_privilege_rbac::CHECK,
    &default_deny_egress::CHECK,
    &no_plaintext_credentials::CHECK,
    &short_lived_token::CHECK,
    &in_cluster_inference::CHECK,
    &exec_requires_approval::CHECK,
    &relabel_requires_approval::CHECK,
    &secret_provider_class::CHECK,
    &sandboxed_runtime::CHECK,
    &user_namespace::CHECK,
    &resource_limits::CHECK,
];

/// The check with this id.
pub fn by_id(id: &str) -> Option<&'static Check> {
    CHECKS.iter().copied().find(|c| c.id == id)
}

/// Every id, in report order, for messages that list them.
pub fn ids() -> impl Iterator<Item = &'static str> {
    CHECKS.iter().map(|c| c.id)
}

/// The checks of one kind (pod, CONNECT or UPDATE) the policy runs.
pub fn enabled<'p>(
    policy: &'p Policy,
    kind: fn(&Check) -> bool,
) -> impl Iterator<Item = &'static Check> + 'p {
    CHECKS
        .iter()
        .copied()
        .filter(move |c| kind(c) && c.enabled(policy))
}

/// What the enabled checks of one kind read, together.
pub fn reads(policy: &Policy, kind: fn(&Check) -> bool) -> Reads {
    enabled(policy, kind).fold(Reads::NONE, |acc, c| acc.union(c.reads()))
}

/// Runs every pod check the policy enables.
pub fn run_pod_checks(input: &PodInput<'_>) -> Vec<Violation> {
    let mut out = Vec::new();
    for c in CHECKS {
        if let Judge::Pod(run) = c.judge
            && c.enabled(input.policy)
        {
            out.extend(run(input));
        }
    }
    out
}

/// Runs every UPDATE check the policy enables.
pub fn run_update_checks(input: &UpdateInput<'_>) -> Vec<Violation> {
    let mut out = Vec::new();
    for c in CHECKS {
        if let Judge::Update(run) = c.judge
            && c.enabled(input.policy)
        {
            out.extend(run(input));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    /// Ids that appear more than once, each once.
    fn duplicates<'a>(ids: impl IntoIterator<Item = &'a str>) -> Vec<&'a str> {
        let mut seen = BTreeSet::new();
        let mut twice: Vec<&str> = ids.into_iter().filter(|id| !seen.insert(*id)).collect();
        twice.dedup();
        twice
    }

    #[test]
    fn no_two_checks_share_an_id() {
        assert_eq!(duplicates(ids()), Vec::<&str>::new());
        assert_eq!(
            duplicates(["a-check", "b-check", "a-check"]),
            ["a-check"],
            "the duplicate finder must see a duplicate"
        );
    }

    #[test]
    fn ids_are_lower_case_words_joined_by_dashes() {
        for id in ids() {
            assert!(
                !id.is_empty()
                    && id.split('-').all(|w| !w.is_empty()
                        && w.bytes()
                            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())),
                "{id:?}"
            );
        }
    }

    #[test]
    fn each_kind_has_its_checks() {
        let policy = Policy::default();
        assert!(enabled(&policy, Check::judges_pods).count() >= 12);
        assert_eq!(
            enabled(&policy, Check::judges_connects)
                .map(|c| c.id)
                .collect::<Vec<_>>(),
            [exec_requires_approval::CHECK.id]
        );
        assert_eq!(
            enabled(&policy, Check::judges_updates)
                .map(|c| c.id)
                .collect::<Vec<_>>(),
            [relabel_requires_approval::CHECK.id]
        );
    }
}

//! `user-namespace` (low by default; raise it with `checkTiers`): the agent runs in a user
//! namespace of its own (`hostUsers: false`, GA since Kubernetes 1.36), so a UID inside the
//! container, root included, maps to an unprivileged UID on the node: an escape lands as no
//! one. The other checks keep asking for a non-root user as well (Pod Security relaxes
//! `runAsNonRoot` under `hostUsers: false`; this project does not).

use super::check::{Check, Judge, PodInput, always};
use crate::engine::violation::{Tier, Violation};

const ID: &str = "user-namespace";
const TIER: Tier = Tier::Low;

pub static CHECK: Check = Check {
    id: ID,
    tier: TIER,
    judge: Judge::Pod(check),
    reads: &[],
    applies: always,
};

fn check(input: &PodInput<'_>) -> Vec<Violation> {
    let t = &input.target;
    // The API server forbids hostUsers on a Windows pod.
    if t.spec.host_users == Some(false) || t.spec.is_windows() {
        return Vec::new();
    }
    let now = match t.spec.host_users {
        Some(true) => "hostUsers: true",
        _ => "hostUsers unset",
    };
    vec![Violation::new(
        ID,
        TIER,
        t.path("hostUsers"),
        format!(
            "the agent shares the node's user namespace ({now}): a UID in the container is the \
             same UID on the node"
        ),
        "set hostUsers: false (the node needs Kubernetes 1.36+ and a runtime with user namespace \
         support)",
    )]
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::engine::checks::fixtures::hardened_view;
    use crate::engine::checks::fixtures::{hardened, run_default, run_on_deployment};
    use crate::engine::policy::Policy;

    #[test]
    fn only_host_users_false_passes() {
        assert!(run_default(&CHECK, &hardened().host_users(false).build()).is_empty());
        let v = run_default(&CHECK, &hardened().host_users(true).build());
        assert_eq!(v.len(), 1);
        assert_eq!(v[0].path, "spec.hostUsers");
        assert!(v[0].message.contains("hostUsers: true"), "{}", v[0].message);
        let v = run_on_deployment(
            &CHECK,
            &hardened().spec(|s| s.host_users = None).build(),
            &Policy::default(),
            &hardened_view(),
        );
        assert_eq!(v[0].path, "spec.template.spec.hostUsers");
        assert!(v[0].message.contains("hostUsers unset"), "{}", v[0].message);
    }
}

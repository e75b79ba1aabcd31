//! `no-privilege-escalation` (high): no process in the pod can gain more privileges than it
//! started with (setuid binaries, file capabilities), and no container is privileged. Pod
//! Security `restricted: allowPrivilegeEscalation` (not asked of a Windows pod, which cannot
//! set it) and `baseline: privileged`.

use super::check::{Check, Judge, PodInput, always};
use crate::engine::containers::containers;
use crate::engine::violation::{Tier, Violation};

const ID: &str = "no-privilege-escalation";
const TIER: Tier = Tier::High;
const PSA_ESCALATION: &str = "(Pod Security restricted: allowPrivilegeEscalation)";
const PSA_PRIVILEGED: &str = "(Pod Security baseline: privileged)";

pub static CHECK: Check = Check {
    id: ID,
    tier: TIER,
    judge: Judge::Pod(check),
    reads: &[],
    applies: always,
};

fn check(input: &PodInput<'_>) -> Vec<Violation> {
    let t = &input.target;
    let mut out = Vec::new();
    let windows = t.spec.is_windows();
    for c in containers(t.spec, t.spec_path) {
        let sc = c.security_context();
        // Unset means true for most runtimes, so only an explicit false passes.
        if !windows && sc.and_then(|s| s.allow_privilege_escalation) != Some(false) {
            out.push(Violation::new(
                ID,
                TIER,
                format!("{}.securityContext.allowPrivilegeEscalation", c.path),
                format!(
                    "container {} may escalate privileges {PSA_ESCALATION}",
                    c.name()
                ),
                "set securityContext.allowPrivilegeEscalation: false",
            ));
        }
        if sc.and_then(|s| s.privileged) == Some(true) {
            out.push(Violation::new(
                ID,
                TIER,
                format!("{}.securityContext.privileged", c.path),
                format!("container {} is privileged {PSA_PRIVILEGED}", c.name()),
                "remove securityContext.privileged (or set it to false)",
            ));
        }
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::engine::checks::fixtures::*;

    #[test]
    fn passes_hardened_pod() {
        assert!(run_default(&CHECK, &hardened_pod()).is_empty());
    }

    #[test]
    fn rejects_container_that_leaves_escalation_unset() {
        let p = pod("a").container("agent").build();
        let v = run_default(&CHECK, &p);
        assert_eq!(
            paths(&v),
            ["spec.containers[0].securityContext.allowPrivilegeEscalation"]
        );
        assert_eq!(v[0].tier, Tier::High);
    }

    #[test]
    fn rejects_privileged_container_even_without_escalation() {
        let p = hardened().with_container("agent").privileged(true).build();
        let v = run_default(&CHECK, &p);
        assert_eq!(paths(&v), ["spec.containers[0].securityContext.privileged"]);
    }

    #[test]
    fn rejects_unhardened_init_container_in_otherwise_clean_pod() {
        let p = hardened()
            .init_container("setup")
            .allow_privilege_escalation(true)
            .build();
        let v = run_default(&CHECK, &p);
        assert_eq!(
            paths(&v),
            ["spec.initContainers[0].securityContext.allowPrivilegeEscalation"]
        );
    }

    #[test]
    fn rejects_privileged_ephemeral_container() {
        let p = hardened()
            .ephemeral_container("debug")
            .hardened()
            .privileged(true)
            .build();
        let v = run_default(&CHECK, &p);
        assert_eq!(
            paths(&v),
            ["spec.ephemeralContainers[0].securityContext.privileged"]
        );
    }

    #[test]
    fn findings_name_the_pod_security_rule_they_break() {
        let p = pod("a").container("agent").privileged(true).build();
        let v = run_default(&CHECK, &p);
        assert!(v[0].message.ends_with(PSA_ESCALATION), "{}", v[0].message);
        assert!(v[1].message.ends_with(PSA_PRIVILEGED), "{}", v[1].message);
    }
}

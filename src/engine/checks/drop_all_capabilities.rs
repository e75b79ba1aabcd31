//! `drop-all-capabilities` (high): every container drops every Linux capability and adds
//! back only what the policy allows (default `NET_BIND_SERVICE`). Names match exactly, as the
//! container runtime reads them: `all` is not `ALL`, and `CAP_NET_BIND_SERVICE` is not an
//! allowed name even though some runtimes accept the prefix. Pod Security `restricted:
//! capabilities_restricted` (drop `ALL`, add only `NET_BIND_SERVICE`) and, for a capability
//! outside the runtime's default set, `baseline: capabilities_baseline`. A Windows pod cannot
//! set capabilities and is not asked to.

use super::check::{Check, Judge, PodInput, always};
use crate::engine::containers::containers;
use crate::engine::violation::{Tier, Violation};

const ID: &str = "drop-all-capabilities";
const TIER: Tier = Tier::High;
const PSA_RESTRICTED: &str = "(Pod Security restricted: capabilities_restricted)";
const PSA_BASELINE: &str = "(Pod Security baseline: capabilities_baseline)";
/// What Pod Security `baseline` lets a container add: the container runtime's default set.
const BASELINE_ADD: &[&str] = &[
    "AUDIT_WRITE",
    "CHOWN",
    "DAC_OVERRIDE",
    "FOWNER",
    "FSETID",
    "KILL",
    "MKNOD",
    "NET_BIND_SERVICE",
    "SETFCAP",
    "SETGID",
    "SETPCAP",
    "SETUID",
    "SYS_CHROOT",
];

pub static CHECK: Check = Check {
    id: ID,
    tier: TIER,
    judge: Judge::Pod(check),
    reads: &[],
    applies: always,
};

fn check(input: &PodInput<'_>) -> Vec<Violation> {
    let t = &input.target;
    let allowed = &input.policy.checks.capabilities.allowed_add;
    let mut out = Vec::new();
    if t.spec.is_windows() {
        return out;
    }
    for c in containers(t.spec, t.spec_path) {
        let caps = c.security_context().and_then(|s| s.capabilities.as_ref());
        let drop = caps.and_then(|k| k.drop.as_deref()).unwrap_or(&[]);
        if !drop.iter().any(|d| d == "ALL") {
            let near = drop
                .iter()
                .find(|d| d.eq_ignore_ascii_case("ALL") || d.eq_ignore_ascii_case("CAP_ALL"));
            let message = match near {
                Some(d) => format!(
                    "container {} drops {d:?}, not the literal ALL {PSA_RESTRICTED}",
                    c.name()
                ),
                None => format!(
                    "container {} does not drop ALL capabilities {PSA_RESTRICTED}",
                    c.name()
                ),
            };
            out.push(Violation::new(
                ID,
                TIER,
                format!("{}.securityContext.capabilities.drop", c.path),
                message,
                "set securityContext.capabilities.drop: [\"ALL\"] (upper case)",
            ));
        }
        for (i, cap) in caps
            .and_then(|k| k.add.as_deref())
            .unwrap_or(&[])
            .iter()
            .enumerate()
        {
            if allowed.iter().any(|a| a == cap) {
                continue;
            }
            let bare = cap.strip_prefix("CAP_").unwrap_or(cap);
            let fix = if bare != cap && allowed.iter().any(|a| a == bare) {
                format!("write {bare} without the CAP_ prefix")
            } else {
                format!(
                    "remove it; only {} may be added back",
                    list_or_none(allowed)
                )
            };
            out.push(Violation::new(
                ID,
                TIER,
                format!("{}.securityContext.capabilities.add[{i}]", c.path),
                format!(
                    "container {} adds capability {cap:?}, which is not allowed {}",
                    c.name(),
                    if !BASELINE_ADD.contains(&cap.as_str()) {
                        PSA_BASELINE
                    } else if cap != "NET_BIND_SERVICE" {
                        PSA_RESTRICTED
                    } else {
                        "(checks.capabilities.allowedAdd, beyond Pod Security)"
                    }
                ),
                fix,
            ));
        }
    }
    out
}

fn list_or_none(allowed: &[String]) -> String {
    if allowed.is_empty() {
        "none".to_string()
    } else {
        allowed.join(", ")
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::engine::checks::fixtures::*;
    use crate::engine::policy::Policy;

    #[test]
    fn passes_hardened_pod_and_allowed_add() {
        assert!(run_default(&CHECK, &hardened_pod()).is_empty());
        let p = hardened()
            .with_container("agent")
            .add_caps(&["NET_BIND_SERVICE"])
            .build();
        assert!(run_default(&CHECK, &p).is_empty());
    }

    #[test]
    fn rejects_container_without_drop() {
        let p = pod("a").container("agent").build();
        let v = run_default(&CHECK, &p);
        assert_eq!(
            paths(&v),
            ["spec.containers[0].securityContext.capabilities.drop"]
        );
        assert_eq!(v[0].tier, Tier::High);
    }

    #[test]
    fn rejects_all_in_lower_case() {
        let p = hardened()
            .with_container("agent")
            .drop_caps(&["all"])
            .build();
        let v = run_default(&CHECK, &p);
        assert_eq!(
            paths(&v),
            ["spec.containers[0].securityContext.capabilities.drop"]
        );
        assert!(v[0].message.contains("\"all\""), "{}", v[0].message);
    }

    #[test]
    fn rejects_cap_net_bind_service_spelled_with_prefix() {
        let p = hardened()
            .with_container("agent")
            .add_caps(&["CAP_NET_BIND_SERVICE"])
            .build();
        let v = run_default(&CHECK, &p);
        assert_eq!(
            paths(&v),
            ["spec.containers[0].securityContext.capabilities.add[0]"]
        );
        assert!(v[0].fix.contains("without the CAP_ prefix"), "{}", v[0].fix);
    }

    #[test]
    fn rejects_capability_outside_the_allow_list() {
        let p = hardened()
            .with_container("agent")
            .add_caps(&["NET_BIND_SERVICE", "SYS_ADMIN"])
            .build();
        let v = run_default(&CHECK, &p);
        assert_eq!(
            paths(&v),
            ["spec.containers[0].securityContext.capabilities.add[1]"]
        );
        assert!(v[0].message.contains("SYS_ADMIN"));
    }

    #[test]
    fn allow_list_comes_from_the_policy() {
        let mut policy = Policy::default();
        policy.checks.capabilities.allowed_add = vec!["NET_RAW".into()];
        let p = hardened()
            .with_container("agent")
            .add_caps(&["NET_RAW", "NET_BIND_SERVICE"])
            .build();
        let v = run(&CHECK, &p, &policy, &hardened_view());
        assert_eq!(
            paths(&v),
            ["spec.containers[0].securityContext.capabilities.add[1]"]
        );
    }

    #[test]
    fn rejects_unhardened_init_and_ephemeral_containers() {
        let p = hardened()
            .init_container("setup")
            .ephemeral_container("debug")
            .build();
        let v = run_default(&CHECK, &p);
        assert_eq!(
            paths(&v),
            [
                "spec.initContainers[0].securityContext.capabilities.drop",
                "spec.ephemeralContainers[0].securityContext.capabilities.drop"
            ]
        );
    }

    #[test]
    fn findings_name_the_pod_security_rule_they_break() {
        let p = hardened()
            .with_container("agent")
            .add_caps(&["SYS_ADMIN", "CHOWN"])
            .init_container("setup")
            .build();
        let v = run_default(&CHECK, &p);
        let by_path = |path: &str| v.iter().find(|v| v.path == path).unwrap();
        assert!(
            by_path("spec.containers[0].securityContext.capabilities.add[0]")
                .message
                .ends_with(PSA_BASELINE)
        );
        assert!(
            by_path("spec.containers[0].securityContext.capabilities.add[1]")
                .message
                .ends_with(PSA_RESTRICTED)
        );
        assert!(
            by_path("spec.initContainers[0].securityContext.capabilities.drop")
                .message
                .ends_with(PSA_RESTRICTED)
        );
        // A policy stricter than Pod Security says so rather than naming a rule.
        let mut policy = Policy::default();
        policy.checks.capabilities.allowed_add = Vec::new();
        let p = hardened()
            .with_container("agent")
            .add_caps(&["NET_BIND_SERVICE"])
            .build();
        let v = run(&CHECK, &p, &policy, &hardened_view());
        assert!(
            v[0].message.contains("beyond Pod Security"),
            "{}",
            v[0].message
        );
    }
}

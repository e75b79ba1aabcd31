//! `safe-sysctls` (high): the pod sets only the sysctls Kubernetes counts as safe: namespaced
//! to the pod and isolated from the node and the other pods. Pod Security `baseline:
//! sysctls` at v1.37: `kernel.shm_rmid_forced`, `net.ipv4.ip_local_port_range`,
//! `net.ipv4.ip_local_reserved_ports`, `net.ipv4.tcp_syncookies`,
//! `net.ipv4.ping_group_range`, `net.ipv4.ip_unprivileged_port_start`, the TCP keepalive and
//! buffer knobs listed in [`SAFE`]. Any other one (`kernel.*`, `vm.*`, most of `net.*`) can
//! change the node for everyone, or switch off a protection.

use super::check::{Check, Judge, PodInput, always};
use crate::engine::violation::{Tier, Violation};

const ID: &str = "safe-sysctls";
const TIER: Tier = Tier::High;
const PSA: &str = "(Pod Security baseline: sysctls)";
/// Pod Security's allow-list as of v1.37.
const SAFE: &[&str] = &[
    "kernel.shm_rmid_forced",
    "net.ipv4.ip_local_port_range",
    "net.ipv4.tcp_syncookies",
    "net.ipv4.ping_group_range",
    "net.ipv4.ip_unprivileged_port_start",
    "net.ipv4.ip_local_reserved_ports",
    "net.ipv4.tcp_keepalive_time",
    "net.ipv4.tcp_fin_timeout",
    "net.ipv4.tcp_keepalive_intvl",
    "net.ipv4.tcp_keepalive_probes",
    "net.ipv4.tcp_rmem",
    "net.ipv4.tcp_wmem",
    "net.ipv4.tcp_slow_start_after_idle",
    "net.ipv4.tcp_notsent_lowat",
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
    let sysctls = t
        .spec
        .security_context
        .as_ref()
        .and_then(|s| s.sysctls.as_deref())
        .unwrap_or(&[]);
    sysctls
        .iter()
        .enumerate()
        .filter(|(_, s)| !SAFE.contains(&s.name.as_str()))
        .map(|(i, s)| {
            Violation::new(
                ID,
                TIER,
                t.path(&format!("securityContext.sysctls[{i}].name")),
                format!("the pod sets the unsafe sysctl {} {PSA}", s.name),
                "remove it; only the safe sysctls of Pod Security baseline may be set \
                 (docs/policy-reference.md#safe-sysctls)",
            )
        })
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::engine::checks::fixtures::*;
    use k8s_openapi::api::core::v1::Sysctl;

    fn with_sysctls(names: &[&str]) -> PodBuilder {
        let list = names
            .iter()
            .map(|n| Sysctl {
                name: (*n).into(),
                value: "1".into(),
            })
            .collect();
        hardened().spec(|s| s.security_context.as_mut().unwrap().sysctls = Some(list))
    }

    #[test]
    fn passes_hardened_pod_and_safe_sysctls() {
        assert!(run_default(&CHECK, &hardened_pod()).is_empty());
        assert!(run_default(&CHECK, &with_sysctls(SAFE).build()).is_empty());
    }

    #[test]
    fn rejects_each_unsafe_sysctl_at_its_index() {
        let p = with_sysctls(&[
            "net.ipv4.tcp_syncookies",
            "kernel.msgmax",
            "vm.overcommit_memory",
        ])
        .build();
        let v = run_default(&CHECK, &p);
        assert_eq!(
            paths(&v),
            [
                "spec.securityContext.sysctls[1].name",
                "spec.securityContext.sysctls[2].name"
            ]
        );
        assert!(v[0].message.contains("kernel.msgmax") && v[0].message.ends_with(PSA));
        assert_eq!(v[0].tier, Tier::High);
    }
}

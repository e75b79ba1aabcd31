//! `selinux-options` (high): no container picks an SELinux label that lifts its
//! confinement. Pod Security `baseline: seLinuxOptions`: `seLinuxOptions.type` (pod or
//! container) is unset or one of `container_t`, `container_init_t`, `container_kvm_t`,
//! `container_engine_t`, and `user` and `role` are unset. `spc_t` (a "super privileged
//! container") runs unconfined by SELinux: on an SELinux node it is what keeps a container
//! out of the node's files.

use super::check::{Check, Judge, PodInput, always};
use crate::engine::containers::containers;
use crate::engine::violation::{Tier, Violation};
use k8s_openapi::api::core::v1::SELinuxOptions;

const ID: &str = "selinux-options";
const TIER: Tier = Tier::High;
const PSA: &str = "(Pod Security baseline: seLinuxOptions)";
/// The types Pod Security `baseline` allows from Kubernetes 1.31 on (the empty one: unset).
const ALLOWED_TYPES: &[&str] = &[
    "",
    "container_t",
    "container_init_t",
    "container_kvm_t",
    "container_engine_t",
];

pub static CHECK: Check = Check {
    id: ID,
    tier: TIER,
    judge: Judge::Pod(check),
    reads: &[],
    applies: always,
};

/// Each forbidden part of the options: (field, what is wrong, the fix).
fn problems(o: &SELinuxOptions) -> Vec<(&'static str, String, &'static str)> {
    let mut out = Vec::new();
    let type_ = o.type_.as_deref().unwrap_or("");
    if !ALLOWED_TYPES.contains(&type_) {
        out.push((
            "type",
            format!("type {type_:?}"),
            "remove seLinuxOptions.type (or use container_t)",
        ));
    }
    for (field, v) in [("user", &o.user), ("role", &o.role)] {
        if let Some(v) = v.as_deref().filter(|v| !v.is_empty()) {
            out.push((
                field,
                format!("{field} {v:?}"),
                if field == "user" {
                    "remove seLinuxOptions.user"
                } else {
                    "remove seLinuxOptions.role"
                },
            ));
        }
    }
    out
}

fn check(input: &PodInput<'_>) -> Vec<Violation> {
    let t = &input.target;
    let mut out = Vec::new();
    if let Some(o) = t
        .spec
        .security_context
        .as_ref()
        .and_then(|s| s.se_linux_options.as_ref())
    {
        for (field, what, fix) in problems(o) {
            out.push(Violation::new(
                ID,
                TIER,
                t.path(&format!("securityContext.seLinuxOptions.{field}")),
                format!("the pod sets the SELinux {what} {PSA}"),
                fix,
            ));
        }
    }
    for c in containers(t.spec, t.spec_path) {
        if let Some(o) = c
            .security_context()
            .and_then(|s| s.se_linux_options.as_ref())
        {
            for (field, what, fix) in problems(o) {
                out.push(Violation::new(
                    ID,
                    TIER,
                    format!("{}.securityContext.seLinuxOptions.{field}", c.path),
                    format!("container {} sets the SELinux {what} {PSA}", c.name()),
                    fix,
                ));
            }
        }
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::engine::checks::fixtures::*;

    fn opts(type_: Option<&str>, user: Option<&str>, role: Option<&str>) -> Option<SELinuxOptions> {
        Some(SELinuxOptions {
            type_: type_.map(Into::into),
            user: user.map(Into::into),
            role: role.map(Into::into),
            level: Some("s0:c123,c456".into()),
        })
    }

    #[test]
    fn passes_hardened_pod_allowed_types_and_a_level() {
        assert!(run_default(&CHECK, &hardened_pod()).is_empty());
        let p = hardened()
            .spec(|s| {
                s.security_context.as_mut().unwrap().se_linux_options =
                    opts(Some("container_t"), Some(""), None)
            })
            .with_container("agent")
            .edit(|c| {
                c.security_context.as_mut().unwrap().se_linux_options =
                    opts(Some("container_engine_t"), None, None)
            })
            .build();
        assert!(run_default(&CHECK, &p).is_empty());
    }

    #[test]
    fn rejects_spc_t_and_user_and_role() {
        let p = hardened()
            .spec(|s| {
                s.security_context.as_mut().unwrap().se_linux_options =
                    opts(Some("spc_t"), None, None)
            })
            .ephemeral_container("debug")
            .hardened()
            .edit(|c| {
                c.security_context.as_mut().unwrap().se_linux_options =
                    opts(None, Some("sysadm_u"), Some("sysadm_r"))
            })
            .build();
        let v = run_default(&CHECK, &p);
        assert_eq!(
            paths(&v),
            [
                "spec.securityContext.seLinuxOptions.type",
                "spec.ephemeralContainers[0].securityContext.seLinuxOptions.user",
                "spec.ephemeralContainers[0].securityContext.seLinuxOptions.role",
            ]
        );
        assert!(v[0].message.contains("\"spc_t\""), "{}", v[0].message);
        assert!(v.iter().all(|v| v.message.ends_with(PSA)));
        assert_eq!(v[0].tier, Tier::High);
    }
}

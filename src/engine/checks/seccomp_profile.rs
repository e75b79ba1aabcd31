//! `seccomp-profile` (medium): every container runs under a seccomp filter, `RuntimeDefault`
//! or a `Localhost` profile. A pod-level profile covers containers that set none; an
//! explicit `Unconfined` anywhere fails, as in Pod Security Admission `restricted`
//! (`seccompProfile_restricted`; an `Unconfined` or unknown type is `baseline:
//! seccompProfile_baseline`). A Windows pod cannot set a profile and is not asked for one.

use super::check::{Check, Judge, PodInput, always};
use crate::engine::containers::containers;
use crate::engine::violation::{Tier, Violation};
use k8s_openapi::api::core::v1::SeccompProfile;

const ID: &str = "seccomp-profile";
const TIER: Tier = Tier::Medium;

pub static CHECK: Check = Check {
    id: ID,
    tier: TIER,
    judge: Judge::Pod(check),
    reads: &[],
    applies: always,
};
const PSA_BASELINE: &str = "(Pod Security baseline: seccompProfile_baseline)";
const PSA_RESTRICTED: &str = "(Pod Security restricted: seccompProfile_restricted)";
const FIX: &str =
    "set securityContext.seccompProfile.type: RuntimeDefault (or Localhost with localhostProfile)";

/// What is wrong with a profile that is set, if anything: (path suffix, message).
fn problem(p: &SeccompProfile) -> Option<(&'static str, String)> {
    match p.type_.as_str() {
        "RuntimeDefault" => None,
        "Localhost"
            if p.localhost_profile
                .as_deref()
                .is_some_and(|s| !s.is_empty()) =>
        {
            None
        }
        // The API server refuses this one too; Pod Security lets it through to validation.
        "Localhost" => Some((
            "seccompProfile.localhostProfile",
            "is Localhost without a localhostProfile".into(),
        )),
        "Unconfined" => Some((
            "seccompProfile.type",
            format!("is Unconfined {PSA_BASELINE}"),
        )),
        other => Some((
            "seccompProfile.type",
            format!("has unknown type {other:?} {PSA_BASELINE}"),
        )),
    }
}

fn check(input: &PodInput<'_>) -> Vec<Violation> {
    let t = &input.target;
    let mut out = Vec::new();
    if t.spec.is_windows() {
        return out;
    }
    let pod_profile = t
        .spec
        .security_context
        .as_ref()
        .and_then(|s| s.seccomp_profile.as_ref());
    if let Some((suffix, what)) = pod_profile.and_then(problem) {
        out.push(Violation::new(
            ID,
            TIER,
            t.path(&format!("securityContext.{suffix}")),
            format!("the pod's seccomp profile {what}"),
            FIX,
        ));
    }
    for c in containers(t.spec, t.spec_path) {
        match c.security_context().and_then(|s| s.seccomp_profile.as_ref()) {
            Some(p) => {
                if let Some((suffix, what)) = problem(p) {
                    out.push(Violation::new(
                        ID,
                        TIER,
                        format!("{}.securityContext.{suffix}", c.path),
                        format!("container {}'s seccomp profile {what}", c.name()),
                        FIX,
                    ));
                }
            }
            // A bad pod-level profile is reported once, at the pod, where the fix goes.
            None if pod_profile.is_none() => out.push(Violation::new(
                ID,
                TIER,
                format!("{}.securityContext.seccompProfile", c.path),
                format!(
                    "container {} runs without a seccomp profile and the pod sets none {PSA_RESTRICTED}",
                    c.name()
                ),
                "set securityContext.seccompProfile.type: RuntimeDefault at pod level",
            )),
            None => {}
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
    fn pod_level_profile_covers_containers_that_set_none() {
        let p = pod("a")
            .pod_seccomp("RuntimeDefault")
            .container("one")
            .init_container("two")
            .build();
        assert!(run_default(&CHECK, &p).is_empty());
    }

    #[test]
    fn container_profiles_pass_without_pod_level() {
        let p = pod("a")
            .container("one")
            .seccomp("RuntimeDefault")
            .container("two")
            .seccomp_localhost(Some("agent.json"))
            .build();
        assert!(run_default(&CHECK, &p).is_empty());
    }

    #[test]
    fn rejects_container_without_profile_when_pod_sets_none() {
        let p = pod("a").container("agent").build();
        let v = run_default(&CHECK, &p);
        assert_eq!(
            paths(&v),
            ["spec.containers[0].securityContext.seccompProfile"]
        );
        assert_eq!(v[0].tier, Tier::Medium);
    }

    #[test]
    fn rejects_unconfined_container_under_runtime_default_pod() {
        let p = hardened()
            .with_container("agent")
            .seccomp("Unconfined")
            .build();
        let v = run_default(&CHECK, &p);
        assert_eq!(
            paths(&v),
            ["spec.containers[0].securityContext.seccompProfile.type"]
        );
    }

    #[test]
    fn rejects_unconfined_pod_once_at_pod_level() {
        let p = pod("a")
            .pod_seccomp("Unconfined")
            .container("agent")
            .build();
        let v = run_default(&CHECK, &p);
        assert_eq!(paths(&v), ["spec.securityContext.seccompProfile.type"]);
    }

    #[test]
    fn rejects_localhost_without_profile_name() {
        let p = hardened()
            .with_container("agent")
            .seccomp_localhost(None)
            .build();
        let v = run_default(&CHECK, &p);
        assert_eq!(
            paths(&v),
            ["spec.containers[0].securityContext.seccompProfile.localhostProfile"]
        );
    }

    #[test]
    fn rejects_unconfined_init_and_ephemeral_containers() {
        let p = hardened()
            .init_container("setup")
            .seccomp("Unconfined")
            .ephemeral_container("debug")
            .seccomp("Unconfined")
            .build();
        let v = run_default(&CHECK, &p);
        assert_eq!(
            paths(&v),
            [
                "spec.initContainers[0].securityContext.seccompProfile.type",
                "spec.ephemeralContainers[0].securityContext.seccompProfile.type"
            ]
        );
    }

    #[test]
    fn findings_name_the_pod_security_rule_and_windows_pods_are_not_asked() {
        let p = pod("a")
            .pod_seccomp("Unconfined")
            .container("agent")
            .build();
        assert!(run_default(&CHECK, &p)[0].message.ends_with(PSA_BASELINE));
        let p = pod("a").container("agent").build();
        assert!(run_default(&CHECK, &p)[0].message.ends_with(PSA_RESTRICTED));
        let p = pod("a")
            .container("agent")
            .spec(|s| {
                s.os = Some(k8s_openapi::api::core::v1::PodOS {
                    name: "windows".into(),
                })
            })
            .build();
        assert!(run_default(&CHECK, &p).is_empty());
    }
}

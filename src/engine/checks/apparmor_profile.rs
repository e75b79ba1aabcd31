//! `apparmor-profile` (high): no container runs outside an AppArmor profile. Pod Security
//! `baseline: appArmorProfile`: `appArmorProfile.type` (pod or container) is `RuntimeDefault`,
//! `Localhost` or unset, and the deprecated annotation
//! `container.apparmor.security.beta.kubernetes.io/<container>` is `runtime/default`,
//! `localhost/<profile>` or empty. Unset is fine: the runtime applies its default profile.
//! `Unconfined` switches off the mandatory access control that stands between a process
//! that has broken out of its other confinements and the node's files.

use super::check::{Check, Judge, PodInput, always};
use crate::engine::containers::containers;
use crate::engine::violation::{Tier, Violation};
use k8s_openapi::api::core::v1::AppArmorProfile;

const ID: &str = "apparmor-profile";
const TIER: Tier = Tier::High;
const PSA: &str = "(Pod Security baseline: appArmorProfile)";
const ANNOTATION_PREFIX: &str = "container.apparmor.security.beta.kubernetes.io/";

pub static CHECK: Check = Check {
    id: ID,
    tier: TIER,
    judge: Judge::Pod(check),
    reads: &[],
    applies: always,
};

fn allowed_type(p: &AppArmorProfile) -> bool {
    matches!(p.type_.as_str(), "RuntimeDefault" | "Localhost")
}

fn allowed_annotation(v: &str) -> bool {
    v.is_empty() || v == "runtime/default" || v.starts_with("localhost/")
}

fn check(input: &PodInput<'_>) -> Vec<Violation> {
    let t = &input.target;
    let mut out = Vec::new();
    let fix = "set securityContext.appArmorProfile.type: RuntimeDefault (or Localhost with \
               localhostProfile), or remove it";
    if let Some(p) = t
        .spec
        .security_context
        .as_ref()
        .and_then(|s| s.app_armor_profile.as_ref())
        .filter(|p| !allowed_type(p))
    {
        out.push(Violation::new(
            ID,
            TIER,
            t.path("securityContext.appArmorProfile.type"),
            format!("the pod's AppArmor profile is {:?} {PSA}", p.type_),
            fix,
        ));
    }
    for c in containers(t.spec, t.spec_path) {
        if let Some(p) = c
            .security_context()
            .and_then(|s| s.app_armor_profile.as_ref())
            .filter(|p| !allowed_type(p))
        {
            out.push(Violation::new(
                ID,
                TIER,
                format!("{}.securityContext.appArmorProfile.type", c.path),
                format!(
                    "container {}'s AppArmor profile is {:?} {PSA}",
                    c.name(),
                    p.type_
                ),
                fix,
            ));
        }
    }
    for (k, v) in t.meta.annotations.iter().flatten() {
        if let Some(container) = k.strip_prefix(ANNOTATION_PREFIX)
            && !allowed_annotation(v)
        {
            out.push(Violation::new(
                ID,
                TIER,
                t.meta_path(&format!("annotations[{k}]")),
                format!(
                    "the annotation gives container {container} the AppArmor profile {v:?} {PSA}"
                ),
                "remove the annotation, or set it to runtime/default or localhost/<profile> \
                 (better: securityContext.appArmorProfile)",
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
    use crate::engine::policy::Policy;

    fn profile(type_: &str) -> Option<AppArmorProfile> {
        Some(AppArmorProfile {
            type_: type_.into(),
            localhost_profile: (type_ == "Localhost").then(|| "agent".into()),
        })
    }

    #[test]
    fn passes_hardened_pod_and_allowed_profiles() {
        assert!(run_default(&CHECK, &hardened_pod()).is_empty());
        let p = hardened()
            .spec(|s| {
                s.security_context.as_mut().unwrap().app_armor_profile = profile("RuntimeDefault")
            })
            .with_container("agent")
            .edit(|c| c.security_context.as_mut().unwrap().app_armor_profile = profile("Localhost"))
            .annotation(&format!("{ANNOTATION_PREFIX}agent"), "localhost/agent")
            .annotation(&format!("{ANNOTATION_PREFIX}other"), "runtime/default")
            .build();
        assert!(run_default(&CHECK, &p).is_empty());
    }

    #[test]
    fn rejects_unconfined_at_pod_container_and_annotation() {
        let p = hardened()
            .spec(|s| {
                s.security_context.as_mut().unwrap().app_armor_profile = profile("Unconfined")
            })
            .init_container("setup")
            .hardened()
            .edit(|c| {
                c.security_context.as_mut().unwrap().app_armor_profile = profile("Unconfined")
            })
            .annotation(&format!("{ANNOTATION_PREFIX}agent"), "unconfined")
            .build();
        let v = run_default(&CHECK, &p);
        assert_eq!(
            paths(&v),
            [
                "spec.securityContext.appArmorProfile.type",
                "spec.initContainers[0].securityContext.appArmorProfile.type",
                "metadata.annotations[container.apparmor.security.beta.kubernetes.io/agent]",
            ]
        );
        assert!(v.iter().all(|v| v.message.ends_with(PSA)), "{v:?}");
        assert_eq!(v[0].tier, Tier::High);
    }

    #[test]
    fn template_annotation_path_is_the_templates() {
        let p = hardened()
            .annotation(&format!("{ANNOTATION_PREFIX}agent"), "unconfined")
            .build();
        let v = run_on_deployment(&CHECK, &p, &Policy::default(), &hardened_view());
        assert_eq!(
            paths(&v),
            [
                "spec.template.metadata.annotations[container.apparmor.security.beta.kubernetes.io/agent]"
            ]
        );
    }
}

//! `secret-provider-class-exists` (low): the SecretProviderClass an agent's Secrets Store CSI
//! volume names, or the one its opt-in annotation asks the `secrets-store` mutation for,
//! exists in the pod's namespace. Without it the CSI driver cannot mount the volume and the
//! Pod waits in ContainerCreating with nothing said at apply; a typo in a class name is the
//! usual cause.
//!
//! Judged only where the view knows SecretProviderClasses (the `secrets-store.csi.x-k8s.io`
//! API is served, or `check` was given a SecretProviderClass); otherwise nothing is said.
//! Low tier (warn by default): the pod is no less safe for it, and the class may legitimately
//! arrive a moment later (the driver retries the mount), so a refusal would be too strong.

use super::check::{Check, Judge, PodInput, Read, always};
use crate::engine::mutations::secrets_store::DRIVER;
use crate::engine::violation::{Tier, Violation};

const ID: &str = "secret-provider-class-exists";
const TIER: Tier = Tier::Low;

pub static CHECK: Check = Check {
    id: ID,
    tier: TIER,
    judge: Judge::Pod(check),
    reads: &[Read::SecretProviderClasses],
    applies: always,
};

/// The volume attribute naming the class.
pub const CLASS_ATTRIBUTE: &str = "secretProviderClass";

fn check(input: &PodInput<'_>) -> Vec<Violation> {
    let t = &input.target;
    let ns = t.namespace;
    let missing = |class: &str| input.view.secret_provider_class(ns, class) == Some(false);
    let fix = |class: &str| {
        format!(
            "create SecretProviderClass {class} in namespace {ns}, or name one that exists (kubectl get secretproviderclasses -n {ns})"
        )
    };
    let mut out = Vec::new();
    let settings = &input.policy.mutations.secrets_store;
    if settings.enabled
        && let Some(class) = t
            .meta
            .annotations
            .as_ref()
            .and_then(|a| a.get(&settings.annotation))
            .map(|s| s.trim())
            .filter(|s| !s.is_empty() && missing(s))
    {
        let meta_path = format!(
            "{}metadata.annotations[{}]",
            t.spec_path.strip_suffix("spec").unwrap_or(""),
            settings.annotation
        );
        out.push(Violation::new(
            ID,
            TIER,
            meta_path,
            format!(
                "annotation {} names SecretProviderClass {class}, which does not exist in namespace {ns}: no secrets volume is injected",
                settings.annotation
            ),
            fix(class),
        ));
    }
    for (i, v) in t.spec.volumes.iter().flatten().enumerate() {
        let Some(csi) = v.csi.as_ref().filter(|c| c.driver == DRIVER) else {
            continue;
        };
        let Some(class) = csi
            .volume_attributes
            .as_ref()
            .and_then(|a| a.get(CLASS_ATTRIBUTE))
            .map(|s| s.trim())
        else {
            continue;
        };
        if class.is_empty() || !missing(class) {
            continue;
        }
        out.push(Violation::new(
            ID,
            TIER,
            t.path(&format!("volumes[{i}].csi.volumeAttributes.{CLASS_ATTRIBUTE}")),
            format!(
                "CSI volume {} names SecretProviderClass {class}, which does not exist in namespace {ns}: the pod would wait in ContainerCreating",
                v.name
            ),
            fix(class),
        ));
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::engine::checks::fixtures::*;
    use crate::engine::pod::Volume;
    use crate::engine::policy::Policy;
    use crate::engine::view::StaticView;
    use k8s_openapi::api::core::v1::CSIVolumeSource;
    use serde_json::json;
    use std::collections::BTreeMap;

    fn class(ns: &str, name: &str) -> serde_json::Value {
        json!({"apiVersion": "secrets-store.csi.x-k8s.io/v1", "kind": "SecretProviderClass",
            "metadata": {"name": name, "namespace": ns}, "spec": {"provider": "vault"}})
    }

    fn csi(name: &str, class: &str) -> Volume {
        Volume {
            name: name.into(),
            csi: Some(CSIVolumeSource {
                driver: DRIVER.into(),
                volume_attributes: Some(BTreeMap::from([(CLASS_ATTRIBUTE.into(), class.into())])),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn names_the_missing_class_of_a_csi_volume_and_of_the_annotation() {
        let view = view_of(&[class(NS, "vault-keys"), class("other", "agent-keys")]);
        let p = hardened()
            .annotation("openclaw.io/secret-provider-class", "agent-keys")
            .volume(csi("keys", "agent-keys"))
            .volume(csi("ok", "vault-keys"))
            .build();
        let v = run(&CHECK, &p, &Policy::default(), &view);
        assert_eq!(
            paths(&v),
            [
                "metadata.annotations[openclaw.io/secret-provider-class]",
                "spec.volumes[2].csi.volumeAttributes.secretProviderClass"
            ]
        );
        assert!(
            v[1].message
                .contains("CSI volume keys names SecretProviderClass agent-keys, which does not exist in namespace agents"),
            "{}",
            v[1].message
        );
        assert!(
            v[0].fix
                .contains("create SecretProviderClass agent-keys in namespace agents")
        );
        assert_eq!(v[0].tier, Tier::Low);
    }

    #[test]
    fn says_nothing_where_secret_provider_classes_are_not_known() {
        let p = hardened()
            .annotation("openclaw.io/secret-provider-class", "agent-keys")
            .volume(csi("keys", "agent-keys"))
            .build();
        assert!(run(&CHECK, &p, &Policy::default(), &StaticView::new()).is_empty());
    }

    #[test]
    fn an_existing_class_passes_and_other_drivers_are_not_looked_at() {
        let view = view_of(&[class(NS, "agent-keys")]);
        let mut other = csi("other", "nope");
        other.csi.as_mut().unwrap().driver = "example.csi.k8s.io".into();
        let p = hardened()
            .annotation("openclaw.io/secret-provider-class", "agent-keys")
            .volume(csi("keys", "agent-keys"))
            .volume(other)
            .build();
        assert!(run(&CHECK, &p, &Policy::default(), &view).is_empty());
    }

    #[test]
    fn the_annotation_is_not_judged_when_the_mutation_is_off() {
        let view = view_of(&[class(NS, "vault-keys")]);
        let mut policy = Policy::default();
        policy.mutations.secrets_store.enabled = false;
        let p = hardened()
            .annotation("openclaw.io/secret-provider-class", "agent-keys")
            .build();
        assert!(run(&CHECK, &p, &policy, &view).is_empty());
    }

    #[test]
    fn a_template_reports_at_its_own_paths() {
        let view = view_of(&[class(NS, "vault-keys")]);
        let p = hardened()
            .annotation("openclaw.io/secret-provider-class", "typo")
            .build();
        let v = run_on_deployment(&CHECK, &p, &Policy::default(), &view);
        assert_eq!(
            paths(&v),
            ["spec.template.metadata.annotations[openclaw.io/secret-provider-class]"]
        );
    }
}

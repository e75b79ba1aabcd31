//! Mutation `secrets-store`: mounts the Secrets Store CSI volume so the agent reads its
//! credentials from files the driver fetches from the external store, rather than from env
//! vars or Kubernetes Secrets. It acts only when a SecretProviderClass is known, from the pod
//! annotation or the namespace's default in the policy; otherwise the pod is left as it is.
//! Where the view knows SecretProviderClasses (their API is served), the class must also
//! exist in the pod's namespace: a volume naming a missing class would keep the Pod in
//! ContainerCreating, so none is injected and `secret-provider-class-exists` says why.

use super::draft::PodDraft;
use super::mutation::{MutationInput, mount_where_free, upsert_volume};
use crate::engine::pod::Volume;
use k8s_openapi::api::core::v1::CSIVolumeSource;
use std::collections::BTreeMap;

pub const NAME: &str = "secrets-store";

pub const DRIVER: &str = "secrets-store.csi.k8s.io";

pub fn apply(draft: &mut PodDraft<'_>, input: &MutationInput<'_>) -> bool {
    let settings = &input.policy.mutations.secrets_store;
    let pod = draft.original();
    let from_annotation = pod
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(&settings.annotation))
        .map(|s| s.trim())
        .filter(|s| !s.is_empty());
    let namespace = if input.namespace.is_empty() {
        pod.metadata.namespace.as_deref().unwrap_or_default()
    } else {
        input.namespace
    };
    let Some(class) = from_annotation
        .or_else(|| {
            settings
                .namespace_defaults
                .get(namespace)
                .map(String::as_str)
        })
        .map(str::to_string)
    else {
        return false;
    };
    if input.view.secret_provider_class(namespace, &class) == Some(false) {
        return false;
    }
    if !draft.has_spec() {
        return false;
    }
    let volume = Volume {
        name: settings.volume_name.clone(),
        csi: Some(CSIVolumeSource {
            driver: DRIVER.into(),
            read_only: Some(true),
            volume_attributes: Some(BTreeMap::from([("secretProviderClass".to_string(), class)])),
            ..Default::default()
        }),
        ..Default::default()
    };
    let mut changed = upsert_volume(draft, volume);
    changed |= mount_where_free(draft, &settings.volume_name, &settings.mount_path);
    changed
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::engine::pod::Pod;
    use crate::engine::policy::Policy;
    use crate::engine::view::StaticView;
    use serde_json::json;

    fn pod(annotations: serde_json::Value) -> Pod {
        serde_json::from_value(json!({
            "metadata": {"name": "agent", "annotations": annotations},
            "spec": {
                "initContainers": [{"name": "setup"}],
                "containers": [{"name": "agent"}, {"name": "reader",
                    "volumeMounts": [{"name": "mine", "mountPath": "/mnt/secrets-store"}]}],
                "volumes": [{"name": "mine", "emptyDir": {}}]
            }
        }))
        .unwrap()
    }

    fn run(pod: &mut Pod, policy: &Policy, ns: &str) -> bool {
        run_in(pod, policy, ns, &StaticView::new())
    }

    fn run_in(pod: &mut Pod, policy: &Policy, ns: &str, view: &StaticView) -> bool {
        super::super::run_on(
            pod,
            apply,
            &MutationInput {
                policy,
                namespace: ns,
                service_account_automount: None,
                view,
            },
        )
    }

    fn classes(list: &[(&str, &str)]) -> StaticView {
        let mut v = StaticView::new();
        for (ns, name) in list {
            v.add(
                &json!({"apiVersion": "secrets-store.csi.x-k8s.io/v1", "kind": "SecretProviderClass",
                    "metadata": {"name": name, "namespace": ns}, "spec": {"provider": "vault"}}),
                "default",
            )
            .unwrap();
        }
        v
    }

    #[test]
    fn where_classes_are_known_only_an_existing_class_of_the_namespace_is_mounted() {
        let policy = Policy::default();
        let view = classes(&[("agents", "agent-keys"), ("other", "typo")]);
        let mut p = pod(json!({"openclaw.io/secret-provider-class": "agent-keys"}));
        assert!(run_in(&mut p, &policy, "agents", &view));

        let mut typo = pod(json!({"openclaw.io/secret-provider-class": "typo"}));
        let before = typo.clone();
        assert!(!run_in(&mut typo, &policy, "agents", &view));
        assert_eq!(typo, before, "a class of another namespace does not count");
    }

    #[test]
    fn mounts_the_class_named_by_the_pod_annotation_read_only() {
        let policy = Policy::default();
        let mut p = pod(json!({"openclaw.io/secret-provider-class": "agent-keys"}));
        assert!(run(&mut p, &policy, "agents"));
        let v = serde_json::to_value(&p).unwrap();
        assert_eq!(
            v["spec"]["volumes"][1],
            json!({"name": "openclaw-secrets-store", "csi": {"driver": DRIVER, "readOnly": true,
                "volumeAttributes": {"secretProviderClass": "agent-keys"}}})
        );
        let want = json!({"name": "openclaw-secrets-store", "mountPath": "/mnt/secrets-store", "readOnly": true});
        assert_eq!(v["spec"]["initContainers"][0]["volumeMounts"][0], want);
        assert_eq!(v["spec"]["containers"][0]["volumeMounts"][0], want);
    }

    #[test]
    fn leaves_alone_a_container_that_already_mounts_the_path() {
        let policy = Policy::default();
        let mut p = pod(json!({"openclaw.io/secret-provider-class": "agent-keys"}));
        run(&mut p, &policy, "agents");
        let mounts = p.spec.as_ref().unwrap().containers[1]
            .volume_mounts
            .as_ref()
            .unwrap();
        assert_eq!(mounts.len(), 1);
        assert_eq!(mounts[0].name, "mine");
    }

    #[test]
    fn falls_back_to_the_namespace_default_class() {
        let mut policy = Policy::default();
        policy
            .mutations
            .secrets_store
            .namespace_defaults
            .insert("agents".into(), "team-keys".into());
        let mut p = pod(json!({}));
        assert!(run(&mut p, &policy, "agents"));
        let vol = &p.spec.as_ref().unwrap().volumes.as_ref().unwrap()[1];
        let attrs = vol
            .csi
            .as_ref()
            .unwrap()
            .volume_attributes
            .as_ref()
            .unwrap();
        assert_eq!(attrs["secretProviderClass"], "team-keys");
    }

    #[test]
    fn the_annotation_wins_over_the_namespace_default() {
        let mut policy = Policy::default();
        policy
            .mutations
            .secrets_store
            .namespace_defaults
            .insert("agents".into(), "team-keys".into());
        let mut p = pod(json!({"openclaw.io/secret-provider-class": "agent-keys"}));
        run(&mut p, &policy, "agents");
        let vol = &p.spec.as_ref().unwrap().volumes.as_ref().unwrap()[1];
        assert_eq!(
            vol.csi
                .as_ref()
                .unwrap()
                .volume_attributes
                .as_ref()
                .unwrap()["secretProviderClass"],
            "agent-keys"
        );
    }

    #[test]
    fn does_nothing_without_a_known_class() {
        let mut policy = Policy::default();
        policy
            .mutations
            .secrets_store
            .namespace_defaults
            .insert("other".into(), "team-keys".into());
        let mut p = pod(json!({"openclaw.io/secret-provider-class": " "}));
        let before = p.clone();
        assert!(!run(&mut p, &policy, "agents"));
        assert_eq!(p, before);
    }

    #[test]
    fn second_run_on_own_output_changes_nothing() {
        let policy = Policy::default();
        let mut p = pod(json!({"openclaw.io/secret-provider-class": "agent-keys"}));
        assert!(run(&mut p, &policy, "agents"));
        let once = p.clone();
        assert!(!run(&mut p, &policy, "agents"));
        assert_eq!(p, once);
    }
}

//! Mutation `short-lived-token`: swaps the ServiceAccount token the API server would mount
//! (`kube-api-access-*`, a token it may extend to a year) for a projected token that lives at
//! most the policy's lifetime, mounted read-only at the standard path so that client
//! libraries find it where they always look.
//!
//! The pod's own `automountServiceAccountToken: false` is respected: a pod that asked for no
//! token gets none from us either (injecting one would widen what the agent can do). So is
//! the ServiceAccount's, for a pod that leaves the field unset: the ServiceAccount admission
//! plugin mounts no token then, and neither do we. Once our volume is in place the field is
//! `false` because we set it, and reinvocation keeps going.
//!
//! The mutation never claims a token it did not make effective: when no init or regular
//! container would read our token (each mounts something of its own at or below the token
//! path, a legacy token Secret say), it changes nothing, adds no volume that nothing mounts,
//! and so is not recorded in `openclaw.io/injected`; the validator judges those mounts.

use super::draft::PodDraft;
use super::mutation::{MutationInput, mount_where_free, upsert_volume};
use crate::engine::pod::Volume;
use crate::engine::policy::{SA_TOKEN_MOUNT_PATH, TokenMutation};
use k8s_openapi::api::core::v1::{
    ConfigMapProjection, DownwardAPIProjection, DownwardAPIVolumeFile, KeyToPath,
    ObjectFieldSelector, ProjectedVolumeSource, ServiceAccountTokenProjection, VolumeProjection,
};

pub const NAME: &str = "short-lived-token";

/// The prefix of the volume the ServiceAccount admission plugin adds.
pub const PLUGIN_VOLUME_PREFIX: &str = "kube-api-access-";

/// The file mode the API server defaults projected volumes to; set here so that the defaulted
/// pod seen on reinvocation equals what we wrote.
const DEFAULT_MODE: i32 = 0o644;

pub fn apply(pod: &mut PodDraft<'_>, input: &MutationInput<'_>) -> bool {
    let settings = &input.policy.mutations.token;
    if !pod.has_spec() {
        return false;
    }
    let ours_present = pod.volumes().iter().any(|v| v.name == settings.volume_name);
    let opted_out = match pod.automount() {
        Some(own) => !own,
        None => input.service_account_automount == Some(false),
    };
    if opted_out && !ours_present {
        return false;
    }
    if !someone_takes_ours(pod, &settings.volume_name) {
        return false;
    }
    let mut changed = false;
    if pod.automount() != Some(false) {
        pod.set_automount(Some(false));
        changed = true;
    }
    changed |= remove_plugin_volume(pod);
    changed |= upsert_volume(pod, token_volume(settings));
    changed |= mount_where_free(pod, &settings.volume_name, SA_TOKEN_MOUNT_PATH);
    changed
}

/// Whether some init or regular container would read its token from our volume: it mounts
/// ours at the token path already, or mounts nothing at or below that path but the plugin's
/// volume (which is removed).
fn someone_takes_ours(pod: &PodDraft<'_>, ours: &str) -> bool {
    let token_dir = |p: &str| {
        let p = p.trim_end_matches('/');
        p == SA_TOKEN_MOUNT_PATH
            || p.strip_prefix(SA_TOKEN_MOUNT_PATH)
                .is_some_and(|rest| rest.starts_with('/'))
    };
    pod.app_containers().any(|c| {
        let mounts = pod.volume_mounts(c);
        mounts
            .iter()
            .any(|m| m.name == ours && token_dir(&m.mount_path))
            || mounts
                .iter()
                .filter(|m| token_dir(&m.mount_path))
                .all(|m| m.name.starts_with(PLUGIN_VOLUME_PREFIX))
    })
}

/// Removes the `kube-api-access-*` volumes and every mount of them, in all three container
/// lists (a mount left behind would name a volume that no longer exists).
fn remove_plugin_volume(pod: &mut PodDraft<'_>) -> bool {
    let gone: Vec<String> = pod
        .volumes()
        .iter()
        .filter(|v| v.name.starts_with(PLUGIN_VOLUME_PREFIX))
        .map(|v| v.name.clone())
        .collect();
    if gone.is_empty() {
        return false;
    }
    if let Some(volumes) = pod.volumes_mut() {
        volumes.retain(|v| !gone.contains(&v.name));
    }
    let containers: Vec<_> = pod
        .app_containers()
        .chain(pod.ephemeral_containers())
        .collect();
    for c in containers {
        if !pod.volume_mounts(c).iter().any(|m| gone.contains(&m.name)) {
            continue;
        }
        if let Some(Some(mounts)) = pod.volume_mounts_mut(c) {
            mounts.retain(|m| !gone.contains(&m.name));
        }
    }
    true
}

/// The projected volume: token, cluster CA and namespace, the three files of the standard
/// layout, with every field the API server would default already set.
pub fn token_volume(settings: &TokenMutation) -> Volume {
    let audience = Some(settings.audience.clone()).filter(|a| !a.is_empty());
    let sources = vec![
        VolumeProjection {
            service_account_token: Some(ServiceAccountTokenProjection {
                audience,
                expiration_seconds: Some(settings.expiration_seconds),
                path: "token".into(),
                ..Default::default()
            }),
            ..Default::default()
        },
        VolumeProjection {
            config_map: Some(ConfigMapProjection {
                name: "kube-root-ca.crt".into(),
                items: Some(vec![KeyToPath {
                    key: "ca.crt".into(),
                    path: "ca.crt".into(),
                    ..Default::default()
                }]),
                ..Default::default()
            }),
            ..Default::default()
        },
        VolumeProjection {
            downward_api: Some(DownwardAPIProjection {
                items: Some(vec![DownwardAPIVolumeFile {
                    path: "namespace".into(),
                    field_ref: Some(ObjectFieldSelector {
                        api_version: Some("v1".into()),
                        field_path: "metadata.namespace".into(),
                    }),
                    ..Default::default()
                }]),
            }),
            ..Default::default()
        },
    ];
    Volume {
        name: settings.volume_name.clone(),
        projected: Some(ProjectedVolumeSource {
            default_mode: Some(DEFAULT_MODE),
            sources: Some(sources),
            ..Default::default()
        }),
        ..Default::default()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::engine::mutations::PodDraft;
    use crate::engine::pod::Pod;
    use crate::engine::policy::Policy;
    use serde_json::json;

    /// An agent pod as the API server hands it to webhooks: the ServiceAccount plugin has
    /// already added its volume and mounted it in every container.
    fn admitted_pod() -> Pod {
        let mount = json!({"name": "kube-api-access-abcde", "mountPath": SA_TOKEN_MOUNT_PATH, "readOnly": true});
        serde_json::from_value(json!({
            "metadata": {"name": "agent", "namespace": "agents", "labels": {"app": "openclaw"}},
            "spec": {
                "serviceAccountName": "claw",
                "initContainers": [{"name": "setup", "image": "busybox", "volumeMounts": [mount.clone()]}],
                "containers": [
                    {"name": "agent", "image": "openclaw", "volumeMounts": [
                        {"name": "data", "mountPath": "/data"}, mount.clone()]},
                    {"name": "sidecar", "image": "proxy", "volumeMounts": [mount]}
                ],
                "volumes": [
                    {"name": "data", "emptyDir": {}},
                    {"name": "kube-api-access-abcde", "projected": {"defaultMode": 420, "sources": [
                        {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
                        {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
                        {"downwardAPI": {"items": [{"path": "namespace",
                            "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}}]}}
                    ]}}
                ]
            }
        }))
        .unwrap()
    }

    fn run(pod: &mut Pod, policy: &Policy) -> bool {
        super::super::run_on(
            pod,
            apply,
            &MutationInput {
                policy,
                namespace: "agents",
                service_account_automount: None,
                view: &crate::engine::view::StaticView::new(),
            },
        )
    }

    fn mounts_of(pod: &Pod, container: usize) -> Vec<(String, String)> {
        let spec = pod.spec.as_ref().unwrap();
        let c = spec
            .init_containers
            .iter()
            .flatten()
            .chain(spec.containers.iter())
            .nth(container)
            .unwrap();
        c.volume_mounts
            .iter()
            .flatten()
            .map(|m| (m.name.clone(), m.mount_path.clone()))
            .collect()
    }

    #[test]
    fn replaces_plugin_token_with_short_lived_projected_token_in_every_container() {
        let policy = Policy::default();
        let mut pod = admitted_pod();
        assert!(run(&mut pod, &policy));
        let spec = pod.spec.as_ref().unwrap();
        assert_eq!(spec.automount_service_account_token, Some(false));
        let names: Vec<&str> = spec
            .volumes
            .iter()
            .flatten()
            .map(|v| v.name.as_str())
            .collect();
        assert_eq!(names, ["data", "openclaw-sa-token"]);
        for i in 0..3 {
            let mounts = mounts_of(&pod, i);
            assert!(
                mounts
                    .iter()
                    .all(|(n, _)| !n.starts_with(PLUGIN_VOLUME_PREFIX)),
                "{mounts:?}"
            );
            assert!(
                mounts.contains(&("openclaw-sa-token".into(), SA_TOKEN_MOUNT_PATH.into())),
                "{mounts:?}"
            );
        }
        assert!(mounts_of(&pod, 1).contains(&("data".into(), "/data".into())));
    }

    #[test]
    fn projected_token_lives_as_long_as_policy_says_and_names_the_audience() {
        let mut policy = Policy::default();
        policy.mutations.token.expiration_seconds = 1800;
        policy.mutations.token.audience = "openclaw".into();
        let mut pod = admitted_pod();
        run(&mut pod, &policy);
        let v = serde_json::to_value(&pod).unwrap();
        let vol = &v["spec"]["volumes"][1];
        assert_eq!(
            vol["projected"]["sources"][0]["serviceAccountToken"],
            json!({"audience": "openclaw", "expirationSeconds": 1800, "path": "token"})
        );
        assert_eq!(
            vol["projected"]["sources"][1]["configMap"]["name"],
            "kube-root-ca.crt"
        );
        assert_eq!(
            vol["projected"]["sources"][2]["downwardAPI"]["items"][0]["fieldRef"]["fieldPath"],
            "metadata.namespace"
        );
        let mount = &v["spec"]["containers"][0]["volumeMounts"][1];
        assert_eq!(mount["readOnly"], true);
    }

    #[test]
    fn omits_the_audience_when_policy_leaves_it_empty() {
        let vol = serde_json::to_value(token_volume(&Policy::default().mutations.token)).unwrap();
        let token = &vol["projected"]["sources"][0]["serviceAccountToken"];
        assert!(token.get("audience").is_none(), "{token}");
        assert_eq!(token["expirationSeconds"], 3600);
    }

    #[test]
    fn second_run_on_own_output_changes_nothing() {
        let policy = Policy::default();
        let mut pod = admitted_pod();
        assert!(run(&mut pod, &policy));
        let once = pod.clone();
        assert!(!run(&mut pod, &policy));
        assert_eq!(pod, once);
    }

    #[test]
    fn leaves_alone_a_container_that_already_mounts_the_token_path() {
        let policy = Policy::default();
        let mut pod = admitted_pod();
        let spec = pod.spec.as_mut().unwrap();
        spec.volumes.as_mut().unwrap().push(
            serde_json::from_value(json!({"name": "own-token", "secret": {"secretName": "t"}}))
                .unwrap(),
        );
        spec.containers[1].volume_mounts = Some(vec![
            serde_json::from_value(
                json!({"name": "own-token", "mountPath": format!("{SA_TOKEN_MOUNT_PATH}/")}),
            )
            .unwrap(),
        ]);
        run(&mut pod, &policy);
        assert_eq!(
            mounts_of(&pod, 2),
            [("own-token".to_string(), format!("{SA_TOKEN_MOUNT_PATH}/"))]
        );
        assert!(
            mounts_of(&pod, 1)
                .iter()
                .any(|(n, _)| n == "openclaw-sa-token")
        );
    }

    #[test]
    fn removes_plugin_mounts_from_ephemeral_containers_but_adds_none_there() {
        let policy = Policy::default();
        let mut pod = admitted_pod();
        pod.spec.as_mut().unwrap().ephemeral_containers = Some(vec![
            serde_json::from_value(json!({
            "name": "debug", "image": "busybox",
            "volumeMounts": [{"name": "kube-api-access-abcde", "mountPath": SA_TOKEN_MOUNT_PATH}]}))
            .unwrap(),
        ]);
        run(&mut pod, &policy);
        let eph = &pod
            .spec
            .as_ref()
            .unwrap()
            .ephemeral_containers
            .as_ref()
            .unwrap()[0];
        assert_eq!(eph.volume_mounts.as_deref(), Some(&[][..]));
    }

    #[test]
    fn respects_a_pod_that_opted_out_of_any_token() {
        let policy = Policy::default();
        let mut pod: Pod = serde_json::from_value(json!({
            "metadata": {"name": "agent"},
            "spec": {"automountServiceAccountToken": false, "containers": [{"name": "agent"}]}
        }))
        .unwrap();
        let before = pod.clone();
        assert!(!run(&mut pod, &policy));
        assert_eq!(pod, before);
    }

    /// The shape of public AdmissionReview samples: a legacy token Secret mounted at the
    /// token path in every container, automount left on.
    fn legacy_pod() -> Pod {
        serde_json::from_value(json!({
            "metadata": {"name": "agent", "namespace": "agents"},
            "spec": {
                "containers": [
                    {"name": "agent", "volumeMounts": [
                        {"name": "default-token-abcde", "mountPath": SA_TOKEN_MOUNT_PATH, "readOnly": true}]},
                    {"name": "sidecar", "volumeMounts": [
                        {"name": "default-token-abcde", "mountPath": format!("{SA_TOKEN_MOUNT_PATH}/token"), "subPath": "token"}]}
                ],
                "volumes": [{"name": "default-token-abcde", "secret": {"secretName": "default-token-abcde"}}]
            }
        }))
        .unwrap()
    }

    #[test]
    fn claims_no_token_where_every_container_keeps_its_own() {
        let policy = Policy::default();
        let mut pod = legacy_pod();
        let before = pod.clone();
        assert!(!run(&mut pod, &policy));
        assert_eq!(pod, before);
        // Through the registry: no patch, and no `openclaw.io/injected` claim.
        let original = legacy_pod();
        let mut draft = PodDraft::new(&original);
        let input = MutationInput {
            policy: &policy,
            namespace: "agents",
            service_account_automount: None,
            view: &crate::engine::view::StaticView::new(),
        };
        let applied = super::super::apply_all(&mut draft, &input);
        assert!(!applied.contains(&NAME), "{applied:?}");
        let annotations = draft.to_pod().metadata.annotations.unwrap_or_default();
        assert!(
            !annotations
                .get(super::super::INJECTED_ANNOTATION)
                .is_some_and(|v| v.contains(NAME)),
            "{annotations:?}"
        );
    }

    #[test]
    fn injects_where_one_container_is_free_and_leaves_the_others_to_the_validator() {
        let policy = Policy::default();
        let mut pod = legacy_pod();
        pod.spec
            .as_mut()
            .unwrap()
            .containers
            .push(serde_json::from_value(json!({"name": "free"})).unwrap());
        assert!(run(&mut pod, &policy));
        assert_eq!(
            mounts_of(&pod, 2),
            [(
                "openclaw-sa-token".to_string(),
                SA_TOKEN_MOUNT_PATH.to_string()
            )]
        );
        assert_eq!(
            mounts_of(&pod, 0),
            [(
                "default-token-abcde".to_string(),
                SA_TOKEN_MOUNT_PATH.to_string()
            )]
        );
    }

    #[test]
    fn repairs_our_volume_when_its_content_drifted() {
        let mut policy = Policy::default();
        let mut pod = admitted_pod();
        run(&mut pod, &policy);
        policy.mutations.token.expiration_seconds = 900;
        assert!(run(&mut pod, &policy));
        let v = serde_json::to_value(&pod).unwrap();
        assert_eq!(
            v["spec"]["volumes"][1]["projected"]["sources"][0]["serviceAccountToken"]["expirationSeconds"],
            900
        );
    }
}

//! What a mutation is ([`Mutation`]: a name, when the policy turns it on, its function),
//! what it receives ([`MutationInput`]), and the two edits several of them make (mount a
//! volume where the path is free, put a volume in place).

use super::draft::PodDraft;
use crate::engine::pod::Volume;
use crate::engine::policy::Policy;
use crate::engine::view::ClusterView;
use k8s_openapi::api::core::v1::VolumeMount;

/// What every mutation receives besides the pod.
pub struct MutationInput<'a> {
    pub policy: &'a Policy,
    pub namespace: &'a str,
    /// The pod's ServiceAccount's own `automountServiceAccountToken`, when known and set.
    pub service_account_automount: Option<bool>,
    /// Cluster state a mutation consults (`secrets-store`: whether the class exists).
    pub view: &'a dyn ClusterView,
}

/// A registered mutation.
pub struct Mutation {
    pub name: &'static str,
    pub enabled: fn(&Policy) -> bool,
    pub apply: fn(&mut PodDraft<'_>, &MutationInput<'_>) -> bool,
}

/// Mounts `volume` read-only at `path` in every init and regular container that mounts
/// nothing there yet (a container that already does is the validator's to judge). True when
/// a mount was added.
pub fn mount_where_free(pod: &mut PodDraft<'_>, volume: &str, path: &str) -> bool {
    let mut changed = false;
    for c in pod.app_containers() {
        if pod
            .volume_mounts(c)
            .iter()
            .any(|m| same_path(&m.mount_path, path))
        {
            continue;
        }
        let Some(mounts) = pod.volume_mounts_mut(c) else {
            continue;
        };
        mounts.get_or_insert_with(Vec::new).push(VolumeMount {
            name: volume.to_string(),
            mount_path: path.to_string(),
            read_only: Some(true),
            ..Default::default()
        });
        changed = true;
    }
    changed
}

/// Mount paths compared as the kubelet sees them: a trailing slash names the same directory.
fn same_path(a: &str, b: &str) -> bool {
    a.trim_end_matches('/') == b.trim_end_matches('/')
}

/// Puts `volume` among the pod's volumes: appended when no volume has its name, replaced when
/// one does with other content. True when the volumes changed.
pub fn upsert_volume(pod: &mut PodDraft<'_>, volume: Volume) -> bool {
    match pod.volumes().iter().position(|v| v.name == volume.name) {
        Some(i) if pod.volumes()[i] == volume => false,
        Some(i) => {
            if let Some(volumes) = pod.volumes_mut() {
                volumes[i] = volume;
            }
            true
        }
        None => {
            pod.volumes_mut().get_or_insert_with(Vec::new).push(volume);
            true
        }
    }
}

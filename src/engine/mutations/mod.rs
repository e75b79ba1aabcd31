//! One mutation per file: `fn apply(&mut PodDraft, &MutationInput) -> bool`, true when it
//! changed the pod. Each reads the original pod and writes through the draft (`draft.rs`),
//! which turns what was written into the JSON Patch. Each is idempotent by content: applied
//! to its own output it changes nothing, so reinvocation yields no second patch.

use super::policy::Policy;
use super::view::ClusterView;
use crate::engine::pod::Volume;
pub use draft::PodDraft;
use k8s_openapi::api::core::v1::VolumeMount;

pub mod draft;
pub mod otel_env;
#[cfg(test)]
mod proptests;
pub mod secrets_store;
pub mod short_lived_token;

/// The annotation recording what was injected, a comma-separated list of mutation names.
pub const INJECTED_ANNOTATION: &str = "openclaw.io/injected";

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

pub static MUTATIONS: &[Mutation] = &[
    Mutation {
        name: short_lived_token::NAME,
        enabled: |p| p.mutations.token.enabled,
        apply: short_lived_token::apply,
    },
    Mutation {
        name: secrets_store::NAME,
        enabled: |p| p.mutations.secrets_store.enabled,
        apply: secrets_store::apply,
    },
    Mutation {
        name: otel_env::NAME,
        enabled: |p| p.mutations.otel.enabled,
        apply: otel_env::apply,
    },
];

/// Applies every enabled mutation and records them in [`INJECTED_ANNOTATION`]. Returns the
/// names of the mutations that changed the pod in this call.
pub fn apply_all(pod: &mut PodDraft<'_>, input: &MutationInput<'_>) -> Vec<&'static str> {
    let mut applied = Vec::new();
    for m in MUTATIONS {
        if (m.enabled)(input.policy) && (m.apply)(pod, input) {
            applied.push(m.name);
        }
    }
    if !applied.is_empty() {
        record(pod, &applied);
    }
    applied
}

/// Merges `applied` into the annotation, keeping earlier entries, sorted and deduplicated,
/// so that a reinvocation that applies nothing new leaves it byte-equal.
fn record(pod: &mut PodDraft<'_>, applied: &[&str]) {
    let annotations = pod.annotations_mut().get_or_insert_with(Default::default);
    let mut names: Vec<String> = annotations
        .get(INJECTED_ANNOTATION)
        .map(|v| {
            v.split(',')
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect()
        })
        .unwrap_or_default();
    names.extend(applied.iter().map(|s| s.to_string()));
    names.sort();
    names.dedup();
    annotations.insert(INJECTED_ANNOTATION.to_string(), names.join(","));
}

/// Mounts `volume` read-only at `path` in every init and regular container that mounts
/// nothing there yet (a container that already does is the validator's to judge). True when
/// a mount was added.
pub(crate) fn mount_where_free(pod: &mut PodDraft<'_>, volume: &str, path: &str) -> bool {
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
pub(crate) fn upsert_volume(pod: &mut PodDraft<'_>, volume: Volume) -> bool {
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

/// Runs one mutation on `pod` through a draft and puts the result back, as the unit tests
/// of each mutation want it; on the way, checks that the draft's patch applied to the
/// original's JSON gives exactly the typed result.
#[cfg(test)]
#[allow(clippy::expect_used)]
pub(crate) fn run_on(
    pod: &mut crate::engine::pod::Pod,
    apply: fn(&mut PodDraft<'_>, &MutationInput<'_>) -> bool,
    input: &MutationInput<'_>,
) -> bool {
    let original = pod.clone();
    let mut draft = PodDraft::new(&original);
    let changed = apply(&mut draft, input);
    let ops = draft.patch().expect("patch serializes");
    *pod = draft.to_pod();
    let mut doc = serde_json::to_value(&original).expect("pod serializes");
    json_patch::patch(&mut doc, &crate::engine::patch::json_patch_of(&ops))
        .expect("patch applies to the original");
    assert_eq!(
        doc,
        serde_json::to_value(&*pod).expect("pod serializes"),
        "the patch and the typed result differ"
    );
    assert_eq!(changed, !ops.is_empty(), "changed flag and patch disagree");
    changed
}

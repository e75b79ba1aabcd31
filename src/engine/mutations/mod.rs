//! One mutation per file: `fn apply(&mut Pod, &MutationInput) -> bool`, true when it
//! changed the pod. Each is idempotent by content: applied to its own output it changes
//! nothing, so reinvocation yields no second patch.

use super::policy::Policy;
use super::view::ClusterView;
use k8s_openapi::api::core::v1::{Container, Pod, PodSpec, Volume, VolumeMount};

pub mod otel_env;
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
    pub apply: fn(&mut Pod, &MutationInput<'_>) -> bool,
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
pub fn apply_all(pod: &mut Pod, input: &MutationInput<'_>) -> Vec<&'static str> {
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
fn record(pod: &mut Pod, applied: &[&str]) {
    let annotations = pod
        .metadata
        .annotations
        .get_or_insert_with(Default::default);
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

/// Init and regular containers: the ones that exist at Pod CREATE and so receive injected
/// mounts and env. Ephemeral containers arrive later through their own subresource.
pub(crate) fn app_containers(spec: &mut PodSpec) -> impl Iterator<Item = &mut Container> {
    spec.init_containers
        .iter_mut()
        .flatten()
        .chain(spec.containers.iter_mut())
}

/// Mounts `volume` read-only at `path` in every init and regular container that mounts
/// nothing there yet (a container that already does is the validator's to judge). True when
/// a mount was added.
pub(crate) fn mount_where_free(spec: &mut PodSpec, volume: &str, path: &str) -> bool {
    let mut changed = false;
    for c in app_containers(spec) {
        let mounts = c.volume_mounts.get_or_insert_with(Vec::new);
        if mounts.iter().any(|m| same_path(&m.mount_path, path)) {
            continue;
        }
        mounts.push(VolumeMount {
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
pub(crate) fn upsert_volume(spec: &mut PodSpec, volume: Volume) -> bool {
    let volumes = spec.volumes.get_or_insert_with(Vec::new);
    match volumes.iter_mut().find(|v| v.name == volume.name) {
        Some(existing) if *existing == volume => false,
        Some(existing) => {
            *existing = volume;
            true
        }
        None => {
            volumes.push(volume);
            true
        }
    }
}

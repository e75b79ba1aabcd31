//! One mutation per file: `fn apply(&mut PodDraft, &MutationInput) -> bool`, true when it
//! changed the pod. Each reads the original pod and writes through the draft (`draft.rs`),
//! which turns what was written into the JSON Patch. Each is idempotent by content: applied
//! to its own output it changes nothing, so reinvocation yields no second patch.

pub use draft::PodDraft;
pub use mutation::{Mutation, MutationInput};

pub mod draft;
pub mod mutation;
pub mod otel_env;
#[cfg(test)]
mod proptests;
pub mod secrets_store;
pub mod short_lived_token;

/// The annotation recording what was injected, a comma-separated list of mutation names.
pub const INJECTED_ANNOTATION: &str = "openclaw.io/injected";

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

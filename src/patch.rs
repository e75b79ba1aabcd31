//! Typed diff to JSON Patch. The patch always comes from comparing the typed original with
//! the typed mutated pod, never raw request JSON against a typed round-trip (which would
//! invent `remove` ops for fields the types do not know).

use k8s_openapi::api::core::v1::Pod;

/// The JSON Patch turning `original` into `mutated`; `None` when they serialize equal.
pub fn diff(original: &Pod, mutated: &Pod) -> Result<Option<json_patch::Patch>, serde_json::Error> {
    let a = serde_json::to_value(original)?;
    let b = serde_json::to_value(mutated)?;
    let patch = json_patch::diff(&a, &b);
    Ok(if patch.0.is_empty() { None } else { Some(patch) })
}

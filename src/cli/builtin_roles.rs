//! Kubernetes' built-in ClusterRoles for the offline `check`: `admin`, `edit`, `view`, the
//! `system:*` roles and the aggregation that fills the first three. Manifests never carry
//! them, yet every cluster has them; `serve` reads the cluster's own copies. build.rs embeds
//! the pinned Kubernetes module's bootstrap policy (tests/rbac/fetch.sh fetches it).

use serde_json::Value;

const TEXT: &str = include_str!(concat!(env!("OUT_DIR"), "/builtin-roles.yaml"));

/// The embedded ClusterRoles, empty when the build found none to embed.
pub fn cluster_roles() -> Result<Vec<Value>, String> {
    let docs = crate::yaml::read_stream(TEXT, crate::yaml::Duplicates::Refuse)
        .map_err(|e| format!("built-in ClusterRoles: {e}"))?;
    let mut out = Vec::new();
    for doc in docs {
        let items = match doc.value.get("items") {
            Some(Value::Array(items)) => items.clone(),
            _ => vec![doc.value],
        };
        out.extend(
            items
                .into_iter()
                .filter(|o| o.get("kind").and_then(Value::as_str) == Some("ClusterRole")),
        );
    }
    Ok(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    /// Fails when the build embedded none (run `make roles`), so CI cannot pass without them.
    #[test]
    fn builtin_roles_are_embedded() {
        let roles = cluster_roles().unwrap();
        let names: Vec<&str> = roles
            .iter()
            .filter_map(|r| r["metadata"]["name"].as_str())
            .collect();
        for want in [
            "admin",
            "edit",
            "view",
            "cluster-admin",
            "system:aggregate-to-edit",
            "system:node",
            "system:controller:replicaset-controller",
        ] {
            assert!(
                names.contains(&want),
                "built-in ClusterRole {want} not embedded: run `make roles` (tests/rbac/fetch.sh, seconds once) and build again; embedded: {names:?}"
            );
        }
    }
}

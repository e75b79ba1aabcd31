//! Embeds Kubernetes' built-in ClusterRoles (`admin`, `edit`, `view`, `system:*`) for the
//! offline `check`, which reads manifests that never carry them. They come from the pinned
//! Kubernetes module's bootstrap policy, fetched by tests/rbac/fetch.sh into a cache outside
//! git (`make roles`; `make unit` and `make test` run it). Without the fetched files the
//! build goes on with none embedded and says so: `check` then judges those roles by name
//! alone, as it did before, and a unit test (`builtin_roles_are_embedded`) fails.

use std::path::PathBuf;

const FILES: &[&str] = &["cluster-roles.yaml", "controller-roles.yaml"];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=tests/controlplane/kubernetes/go.mod");
    println!("cargo:rerun-if-env-changed=OPENCLAW_CACHE");
    println!("cargo:rerun-if-env-changed=OPENCLAW_BUILTIN_ROLES");
    let out =
        PathBuf::from(std::env::var_os("OUT_DIR").ok_or("cargo sets OUT_DIR for build scripts")?);
    let mut text = String::new();
    match roles_dir() {
        Some(dir) => {
            for f in FILES {
                let path = dir.join(f);
                println!("cargo:rerun-if-changed={}", path.display());
                match std::fs::read_to_string(&path) {
                    Ok(t) => {
                        // One YAML stream of the files' documents.
                        text.push_str("---\n");
                        text.push_str(&t);
                    }
                    Err(e) => {
                        println!(
                            "cargo:warning=built-in ClusterRoles not embedded: cannot read {}: {e}; run `make roles` (tests/rbac/fetch.sh)",
                            path.display()
                        );
                        text.clear();
                        break;
                    }
                }
            }
        }
        None => println!(
            "cargo:warning=built-in ClusterRoles not embedded: no cache directory (set OPENCLAW_BUILTIN_ROLES or HOME); run `make roles`"
        ),
    }
    std::fs::write(out.join("builtin-roles.yaml"), text)?;
    Ok(())
}

/// Where tests/rbac/fetch.sh puts the files: `OPENCLAW_BUILTIN_ROLES` when set, else the
/// cache directory for the Kubernetes version the control plane pins.
fn roles_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("OPENCLAW_BUILTIN_ROLES") {
        return Some(PathBuf::from(dir));
    }
    let gomod = std::fs::read_to_string("tests/controlplane/kubernetes/go.mod").ok()?;
    let version = gomod.lines().find_map(|l| {
        let mut w = l.split_whitespace();
        (w.next() == Some("k8s.io/kubernetes"))
            .then(|| w.next())
            .flatten()
            .filter(|v| v.starts_with("v1."))
            .map(str::to_string)
    })?;
    let cache = match std::env::var_os("OPENCLAW_CACHE") {
        Some(c) => PathBuf::from(c),
        None => PathBuf::from(std::env::var_os("HOME")?).join(".cache/openclaw-admission"),
    };
    Some(cache.join("rbac").join(format!("kubernetes-{version}")))
}

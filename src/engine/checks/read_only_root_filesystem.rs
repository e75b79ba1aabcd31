//! `read-only-root-filesystem` (medium): an agent that writes code must not be able to
//! change its own image; every container mounts its root filesystem read-only and writes
//! only to volumes it declares. Not asked of a Windows pod (`spec.os.name: windows`), which
//! the API server forbids to set it. Beyond Pod Security, which does not ask for it.

use super::check::{Check, Judge, PodInput, always};
use crate::engine::containers::containers;
use crate::engine::violation::{Tier, Violation};

const ID: &str = "read-only-root-filesystem";
const TIER: Tier = Tier::Medium;

pub static CHECK: Check = Check {
    id: ID,
    tier: TIER,
    judge: Judge::Pod(check),
    reads: &[],
    applies: always,
};

fn check(input: &PodInput<'_>) -> Vec<Violation> {
    let t = &input.target;
    if t.spec.is_windows() {
        return Vec::new();
    }
    containers(t.spec, t.spec_path)
        .filter(|c| c.security_context().and_then(|s| s.read_only_root_filesystem) != Some(true))
        .map(|c| {
            Violation::new(
                ID,
                TIER,
                format!("{}.securityContext.readOnlyRootFilesystem", c.path),
                format!("container {} has a writable root filesystem", c.name()),
                "set securityContext.readOnlyRootFilesystem: true and mount an emptyDir for writable paths",
            )
        })
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::engine::checks::fixtures::*;

    #[test]
    fn passes_hardened_pod() {
        assert!(run_default(&CHECK, &hardened_pod()).is_empty());
    }

    #[test]
    fn rejects_container_with_explicit_false() {
        let p = hardened()
            .with_container("agent")
            .read_only_root_filesystem(false)
            .build();
        let v = run_default(&CHECK, &p);
        assert_eq!(
            paths(&v),
            ["spec.containers[0].securityContext.readOnlyRootFilesystem"]
        );
        assert_eq!(v[0].tier, Tier::Medium);
    }

    #[test]
    fn rejects_unhardened_init_container_in_otherwise_clean_pod() {
        let p = hardened().init_container("setup").build();
        let v = run_default(&CHECK, &p);
        assert_eq!(
            paths(&v),
            ["spec.initContainers[0].securityContext.readOnlyRootFilesystem"]
        );
    }

    #[test]
    fn rejects_ephemeral_debug_container() {
        let p = hardened().ephemeral_container("debug").build();
        let v = run_default(&CHECK, &p);
        assert_eq!(
            paths(&v),
            ["spec.ephemeralContainers[0].securityContext.readOnlyRootFilesystem"]
        );
    }
}

//! `volume-types` (high): every volume is of a kind the pod owns, not one the node mounts for
//! it. Pod Security `restricted: restrictedVolumes`: `configMap`, `csi`, `downwardAPI`,
//! `emptyDir`, `ephemeral`, `image`, `persistentVolumeClaim`, `projected` and `secret`
//! only. The others are mounted by the node from a network server or a disk named in the pod
//! (`nfs`, `iscsi`, `rbd`, `cephfs`, `glusterfs`, `fc`, the cloud disks: traffic that no
//! egress policy of the pod sees, to storage the pod's RBAC never granted), or filled by a
//! program the node runs as root (`gitRepo`, `flexVolume`). `hostPath` is reported by
//! `no-host-access`, not twice here.

use super::check::{Check, Judge, PodInput, always};
use crate::engine::violation::{Tier, Violation};

const ID: &str = "volume-types";
const TIER: Tier = Tier::High;
const PSA: &str = "(Pod Security restricted: restrictedVolumes)";

pub static CHECK: Check = Check {
    id: ID,
    tier: TIER,
    judge: Judge::Pod(check),
    reads: &[],
    applies: always,
};

fn check(input: &PodInput<'_>) -> Vec<Violation> {
    let t = &input.target;
    let mut out = Vec::new();
    for (i, v) in t.spec.volumes.iter().flatten().enumerate() {
        let Some(source) = v.restricted_source().filter(|s| *s != "hostPath") else {
            continue;
        };
        let fix = if source == "gitRepo" {
            "clone the repository in an init container into an emptyDir"
        } else {
            "use a persistentVolumeClaim (or csi, ephemeral, emptyDir, configMap, secret, \
             projected, downwardAPI, image)"
        };
        out.push(Violation::new(
            ID,
            TIER,
            t.path(&format!("volumes[{i}].{source}")),
            format!(
                "volume {} is a {source} volume, mounted by the node outside the pod's policies {PSA}",
                v.name
            ),
            fix,
        ));
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::engine::checks::fixtures::*;
    use crate::engine::pod::{Volume, VolumeSource};

    #[test]
    fn passes_hardened_pod_a_claim_and_a_sourceless_volume() {
        assert!(run_default(&CHECK, &hardened_pod()).is_empty());
        let p = hardened()
            .volume(Volume::of_source(
                "data",
                VolumeSource::PersistentVolumeClaim,
            ))
            .volume(Volume {
                name: "defaulted".into(),
                ..Default::default()
            })
            .host_path_volume("h", "/")
            .build();
        assert!(
            run_default(&CHECK, &p).is_empty(),
            "hostPath: no-host-access's"
        );
    }

    #[test]
    fn rejects_nfs_and_git_repo() {
        let p = hardened()
            .volume(Volume::of_source("share", VolumeSource::Nfs))
            .volume(Volume::of_source("src", VolumeSource::GitRepo))
            .build();
        let v = run_default(&CHECK, &p);
        // hardened() declares two volumes first.
        assert_eq!(
            paths(&v),
            ["spec.volumes[2].nfs", "spec.volumes[3].gitRepo"]
        );
        assert!(v[0].message.contains("share") && v[0].message.ends_with(PSA));
        assert!(v[1].fix.contains("init container"), "{}", v[1].fix);
        assert_eq!(v[0].tier, Tier::High);
    }
}

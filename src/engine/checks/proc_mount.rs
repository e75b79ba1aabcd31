//! `proc-mount` (high): every container sees `/proc` masked as the runtime masks it
//! (`procMount` unset or `Default`). `Unmasked` exposes the node's kernel knobs under
//! `/proc` (`/proc/sys`, `/proc/sysrq-trigger`, ...) to the container. Pod Security
//! `baseline: procMount`, which allows any value in a user namespace (`hostUsers: false`), and
//! `restricted: procMount_restricted`, which does not; this check follows `restricted`
//! whatever the pod's `hostUsers`.

use super::check::{Check, Judge, PodInput, always};
use crate::engine::containers::containers;
use crate::engine::violation::{Tier, Violation};

const ID: &str = "proc-mount";
const TIER: Tier = Tier::High;
const PSA_BASELINE: &str = "(Pod Security baseline: procMount)";
const PSA_RESTRICTED: &str = "(Pod Security restricted: procMount_restricted)";

pub static CHECK: Check = Check {
    id: ID,
    tier: TIER,
    judge: Judge::Pod(check),
    reads: &[],
    applies: always,
};

fn check(input: &PodInput<'_>) -> Vec<Violation> {
    let t = &input.target;
    // In a user namespace only `restricted` forbids it.
    let psa = if t.spec.host_users == Some(false) {
        PSA_RESTRICTED
    } else {
        PSA_BASELINE
    };
    containers(t.spec, t.spec_path)
        .filter_map(|c| {
            let mount = c.security_context().and_then(|s| s.proc_mount.as_deref())?;
            (mount != "Default").then(|| {
                Violation::new(
                    ID,
                    TIER,
                    format!("{}.securityContext.procMount", c.path),
                    format!("container {} sets procMount: {mount} {psa}", c.name()),
                    "remove securityContext.procMount (or set it to Default)",
                )
            })
        })
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::engine::checks::fixtures::*;

    fn proc_mount(b: PodBuilder, v: &str) -> PodBuilder {
        b.edit(|c| c.security_context.as_mut().unwrap().proc_mount = Some(v.into()))
    }

    #[test]
    fn passes_hardened_pod_and_default() {
        assert!(run_default(&CHECK, &hardened_pod()).is_empty());
        let p = proc_mount(hardened().with_container("agent"), "Default").build();
        assert!(run_default(&CHECK, &p).is_empty());
    }

    #[test]
    fn rejects_unmasked_even_in_a_user_namespace() {
        let p = proc_mount(hardened().init_container("setup").hardened(), "Unmasked").build();
        let v = run_default(&CHECK, &p);
        assert_eq!(
            paths(&v),
            ["spec.initContainers[0].securityContext.procMount"]
        );
        assert!(v[0].message.ends_with(PSA_RESTRICTED), "{}", v[0].message);
        let p = proc_mount(
            hardened().host_users(true).with_container("agent"),
            "Unmasked",
        )
        .build();
        let v = run_default(&CHECK, &p);
        assert!(v[0].message.ends_with(PSA_BASELINE), "{}", v[0].message);
        assert_eq!(v[0].tier, Tier::High);
    }
}

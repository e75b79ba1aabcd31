//! `run-as-non-root` (high): the pod's processes never run as root, with Pod Security
//! Admission `restricted` semantics: `runAsNonRoot: true` at pod level or on every container,
//! an explicit container `false` overrides the pod's `true` and fails, and `runAsUser: 0`
//! fails wherever it is set (the kubelet would refuse it anyway, but only at start time).
//! Pod Security `restricted: runAsNonRoot` and `restricted: runAsUser`; Pod Security relaxes
//! both for a pod in its own user namespace (`hostUsers: false`), this check does not: such
//! findings say they go beyond Pod Security.

use super::check::{Check, Judge, PodInput, always};
use crate::engine::containers::containers;
use crate::engine::violation::{Tier, Violation};

const ID: &str = "run-as-non-root";
const TIER: Tier = Tier::High;
const PSA_NON_ROOT: &str = "(Pod Security restricted: runAsNonRoot)";
const PSA_USER: &str = "(Pod Security restricted: runAsUser)";
const BEYOND: &str = "(beyond Pod Security restricted, which allows it under hostUsers: false)";

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
    let pod_sc = t.spec.security_context.as_ref();
    let userns = t.spec.host_users == Some(false);
    let (psa_non_root, psa_user) = if userns {
        (BEYOND, BEYOND)
    } else {
        (PSA_NON_ROOT, PSA_USER)
    };
    let pod_non_root = pod_sc.and_then(|s| s.run_as_non_root);
    if pod_non_root == Some(false) {
        out.push(Violation::new(
            ID,
            TIER,
            t.path("securityContext.runAsNonRoot"),
            format!("the pod sets runAsNonRoot: false {psa_non_root}"),
            "set securityContext.runAsNonRoot: true",
        ));
    }
    if pod_sc.and_then(|s| s.run_as_user) == Some(0) {
        out.push(Violation::new(
            ID,
            TIER,
            t.path("securityContext.runAsUser"),
            format!("the pod sets runAsUser: 0 (root) {psa_user}"),
            "set securityContext.runAsUser to a non-zero UID, e.g. 1000",
        ));
    }
    for c in containers(t.spec, t.spec_path) {
        let sc = c.security_context();
        match sc.and_then(|s| s.run_as_non_root) {
            Some(true) => {}
            Some(false) => out.push(Violation::new(
                ID,
                TIER,
                format!("{}.securityContext.runAsNonRoot", c.path),
                format!(
                    "container {} sets runAsNonRoot: false {psa_non_root}",
                    c.name()
                ),
                "set runAsNonRoot: true on the container, or remove it to inherit the pod's true",
            )),
            None if pod_non_root != Some(true) => {
                // A non-zero runAsUser looks safe but is not enforced: the kubelet refuses a
                // root UID only when runAsNonRoot is true.
                let pinned = match (
                    sc.and_then(|s| s.run_as_user),
                    pod_sc.and_then(|s| s.run_as_user),
                ) {
                    (Some(uid), _) if uid != 0 => Some((uid, "on the container")),
                    (None, Some(uid)) if uid != 0 => Some((uid, "on the pod")),
                    _ => None,
                };
                let message = match pinned {
                    Some((uid, place)) => format!(
                        "container {} is pinned to UID {uid} (runAsUser {place}) but runAsNonRoot: true is missing: the kubelet enforces non-root only with runAsNonRoot, so nothing stops a change of runAsUser (or of the image) from running it as root {psa_non_root}",
                        c.name()
                    ),
                    None => format!(
                        "container {} may run as root: runAsNonRoot: true is set neither on it nor on the pod {psa_non_root}",
                        c.name()
                    ),
                };
                out.push(Violation::new(
                    ID,
                    TIER,
                    format!("{}.securityContext.runAsNonRoot", c.path),
                    message,
                    "set securityContext.runAsNonRoot: true at pod level (or on every container)",
                ));
            }
            None => {}
        }
        if sc.and_then(|s| s.run_as_user) == Some(0) {
            out.push(Violation::new(
                ID,
                TIER,
                format!("{}.securityContext.runAsUser", c.path),
                format!("container {} sets runAsUser: 0 (root) {psa_user}", c.name()),
                "set runAsUser to a non-zero UID, e.g. 1000, or remove it",
            ));
        }
    }
    out
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
    fn passes_when_every_container_sets_it_without_pod_level() {
        let p = pod("a")
            .container("one")
            .run_as_non_root(true)
            .init_container("two")
            .run_as_non_root(true)
            .build();
        assert!(run_default(&CHECK, &p).is_empty());
    }

    #[test]
    fn rejects_pod_that_sets_nothing() {
        let p = pod("a").container("agent").build();
        let v = run_default(&CHECK, &p);
        assert_eq!(
            paths(&v),
            ["spec.containers[0].securityContext.runAsNonRoot"]
        );
        assert_eq!(v[0].tier, Tier::High);
    }

    #[test]
    fn non_zero_run_as_user_without_run_as_non_root_says_what_is_missing() {
        let p = pod("a")
            .container("agent")
            .edit(|c| {
                c.security_context
                    .get_or_insert_with(Default::default)
                    .run_as_user = Some(10001)
            })
            .container("sidecar")
            .build();
        let v = run_default(&CHECK, &p);
        assert_eq!(v.len(), 2, "{v:?}");
        assert!(
            v[0].message
                .contains("pinned to UID 10001 (runAsUser on the container)")
                && v[0].message.contains("runAsNonRoot: true is missing")
                && v[0]
                    .message
                    .contains("kubelet enforces non-root only with runAsNonRoot"),
            "{}",
            v[0].message
        );
        assert!(v[1].message.contains("may run as root"), "{}", v[1].message);
    }

    #[test]
    fn rejects_container_false_overriding_pod_true() {
        let p = hardened()
            .with_container("agent")
            .run_as_non_root(false)
            .build();
        let v = run_default(&CHECK, &p);
        assert_eq!(
            paths(&v),
            ["spec.containers[0].securityContext.runAsNonRoot"]
        );
        assert!(v[0].message.contains("false"), "{}", v[0].message);
    }

    #[test]
    fn rejects_pod_level_false() {
        let p = hardened().pod_run_as_non_root(false).build();
        let v = run_default(&CHECK, &p);
        assert_eq!(paths(&v), ["spec.securityContext.runAsNonRoot"]);
    }

    #[test]
    fn rejects_run_as_user_zero_at_pod_and_container_level_even_with_non_root_true() {
        let p = hardened()
            .pod_run_as_user(0)
            .with_container("agent")
            .run_as_user(0)
            .build();
        let v = run_default(&CHECK, &p);
        assert_eq!(
            paths(&v),
            [
                "spec.securityContext.runAsUser",
                "spec.containers[0].securityContext.runAsUser"
            ]
        );
    }

    #[test]
    fn rejects_pod_whose_init_container_runs_as_root() {
        let p = hardened()
            .init_container("setup")
            .hardened()
            .run_as_non_root(false)
            .build();
        let v = run_default(&CHECK, &p);
        assert_eq!(
            paths(&v),
            ["spec.initContainers[0].securityContext.runAsNonRoot"]
        );
    }

    #[test]
    fn rejects_ephemeral_container_running_as_root() {
        let p = pod("a")
            .container("agent")
            .run_as_non_root(true)
            .ephemeral_container("debug")
            .run_as_user(0)
            .build();
        let v = run_default(&CHECK, &p);
        assert_eq!(
            paths(&v),
            [
                "spec.ephemeralContainers[0].securityContext.runAsNonRoot",
                "spec.ephemeralContainers[0].securityContext.runAsUser"
            ]
        );
    }

    #[test]
    fn deployment_template_paths_start_at_the_template_spec() {
        let p = pod("a").container("agent").build();
        let v = run_on_deployment(&CHECK, &p, &Default::default(), &hardened_view());
        assert_eq!(
            paths(&v),
            ["spec.template.spec.containers[0].securityContext.runAsNonRoot"]
        );
    }

    #[test]
    fn kept_under_host_users_false_and_said_to_go_beyond_pod_security() {
        let p = pod("a").container("agent").run_as_user(0).build();
        let v = run_default(&CHECK, &p);
        assert!(v[0].message.ends_with(PSA_NON_ROOT), "{}", v[0].message);
        assert!(v[1].message.ends_with(PSA_USER), "{}", v[1].message);
        let p = pod("a")
            .host_users(false)
            .container("agent")
            .run_as_user(0)
            .build();
        let v = run_default(&CHECK, &p);
        assert_eq!(v.len(), 2);
        assert!(v.iter().all(|v| v.message.ends_with(BEYOND)), "{v:?}");
    }
}

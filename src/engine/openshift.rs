//! What OpenShift's SecurityContextConstraints fill in where a Pod is silent, so that verdicts
//! match such a cluster (the policy's `assumeOpenShift`, and `check --assume-openshift`).
//!
//! The SCC admission plugin picks one SCC per Pod, fills in from it, and records its name in
//! the Pod's `openshift.io/scc` annotation before any webhook sees the Pod. What it fills
//! differs a lot between SCCs: `restricted-v2` makes a silent container non-root, without
//! privilege escalation, without capabilities and under `RuntimeDefault` seccomp; `anyuid`
//! lets it run as root and fills in next to nothing. So `serve` fills a Pod in only when its
//! annotation names an SCC the policy lists (`openShiftSccs`), and with exactly what that SCC
//! sets: a Pod admitted under anything else is judged as written. Only at creation: that is
//! the one time the SCC admission changes a Pod.
//!
//! A workload's pod template is never seen by the SCC admission, and carries no annotation of
//! its own; its Pods will, in the usual case, land under `restricted-v2`, so templates (and the
//! manifests `check --assume-openshift` reads, which carry no annotation either) are filled in
//! as `restricted-v2` would fill their Pods. Explicit settings are always kept: the checks
//! still judge them as written.
//!
//! Only what the checks read is filled in (user, non-root marker, escalation, capabilities,
//! seccomp); SELinux labels and groups are left alone.

use super::pod::PodSpec;
use super::review::{Operation, Review, Subject};
use k8s_openapi::api::core::v1::{Capabilities, SeccompProfile, SecurityContext};

/// The annotation the SCC admission plugin writes on every Pod it admits: the name of the SCC
/// the Pod was admitted under. The plugin overwrites whatever a user put there, so on
/// OpenShift it says what was filled in.
pub const SCC_ANNOTATION: &str = "openshift.io/scc";

/// The SCC the engine assumes for what carries no annotation (templates, manifests), and the
/// policy's default list.
pub const RESTRICTED_V2: &str = "restricted-v2";

/// A UID from the range OpenShift gives a new project (`openshift.io/sa.scc.uid-range`).
/// `MustRunAsRange` fills in the first UID of the project's range; which one does not matter
/// to the checks, only that it is not 0.
const OPENSHIFT_UID: i64 = 1_000_680_000;

/// How an SCC's `runAsUser` strategy fills in a container that names no user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunAsUser {
    /// `MustRunAsRange`: a UID from the project's range, so `runAsNonRoot: true` follows.
    Range,
    /// `MustRunAsNonRoot`: no UID, but `runAsNonRoot: true` (the kubelet then refuses an
    /// image that would run as root).
    NonRoot,
    /// `RunAsAny`: nothing; the image's user, root included.
    Any,
}

/// What one SCC fills in, as OpenShift's SCC admission applies it (the provider in
/// openshift/apiserver-library-go, `sccmatching`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scc {
    pub name: &'static str,
    pub run_as_user: RunAsUser,
    /// `allowPrivilegeEscalation: false` on the SCC: set to false where a container is silent.
    pub no_privilege_escalation: bool,
    /// `requiredDropCapabilities`: added to every container's `drop`.
    pub required_drop: &'static [&'static str],
    /// The first of `seccompProfiles`, set at pod level when the Pod names none.
    pub seccomp: Option<&'static str>,
}

/// The SCCs OpenShift ships that fill in something the checks read. A policy may list only
/// these: for any other, the engine cannot know what was filled in.
pub const KNOWN: &[Scc] = &[
    // The default for authenticated users since OpenShift 4.11.
    Scc {
        name: RESTRICTED_V2,
        run_as_user: RunAsUser::Range,
        no_privilege_escalation: true,
        required_drop: &["ALL"],
        seccomp: Some("RuntimeDefault"),
    },
    // The pre-4.11 default: escalation allowed, four capabilities dropped, no seccomp.
    Scc {
        name: "restricted",
        run_as_user: RunAsUser::Range,
        no_privilege_escalation: false,
        required_drop: &["KILL", "MKNOD", "SETUID", "SETGID"],
        seccomp: None,
    },
    Scc {
        name: "nonroot-v2",
        run_as_user: RunAsUser::NonRoot,
        no_privilege_escalation: true,
        required_drop: &["ALL"],
        seccomp: Some("RuntimeDefault"),
    },
    Scc {
        name: "nonroot",
        run_as_user: RunAsUser::NonRoot,
        no_privilege_escalation: false,
        required_drop: &["KILL", "MKNOD", "SETUID", "SETGID"],
        seccomp: None,
    },
    // Any UID, root included: listing it fills in only the MKNOD drop.
    Scc {
        name: "anyuid",
        run_as_user: RunAsUser::Any,
        no_privilege_escalation: false,
        required_drop: &["MKNOD"],
        seccomp: None,
    },
];

/// The SCC of that name, if the engine knows what it fills in.
pub fn by_name(name: &str) -> Option<&'static Scc> {
    KNOWN.iter().find(|s| s.name == name)
}

/// The names of [`KNOWN`], for error messages.
pub fn known_names() -> impl Iterator<Item = &'static str> {
    KNOWN.iter().map(|s| s.name)
}

/// The policy's default `openShiftSccs`: `restricted-v2` alone, the one SCC whose fill-in
/// makes a silent Pod a box.
pub fn default_fill_sccs() -> Vec<String> {
    vec![RESTRICTED_V2.to_string()]
}

fn restricted_v2() -> &'static Scc {
    // KNOWN starts with it; a test keeps it that way.
    &KNOWN[0]
}

/// `serve`'s fill-in (`assumeOpenShift`), on the object and old object of `review`:
/// - a Pod CREATE as the SCC named by the Pod's `openshift.io/scc` annotation filled it in,
///   when `fill_sccs` lists that SCC, else as written;
/// - any other Pod request as sent: the SCC admission mutates a Pod only when it is created
///   (an UPDATE must pass unchanged, and the stored Pod already carries what was filled in at
///   creation), and it skips subresources altogether, so a `kubectl debug` container is never
///   filled in;
/// - a workload's template, in either object, as `restricted-v2` will fill its Pods.
pub fn fill(review: &mut Review, fill_sccs: &[String]) {
    let pod_create = review.operation == Operation::Create && review.sub_resource.is_none();
    for subject in [&mut review.object, &mut review.old_object] {
        match subject {
            Subject::Pod(_) if !pod_create => {}
            subject => fill_subject(subject, fill_sccs),
        }
    }
}

fn fill_subject(subject: &mut Subject, fill_sccs: &[String]) {
    match subject {
        Subject::Pod(p) => {
            let scc = p
                .metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get(SCC_ANNOTATION))
                .filter(|name| fill_sccs.iter().any(|s| s == *name))
                .and_then(|name| by_name(name));
            if let Some(scc) = scc {
                fill_spec(scc, p.spec.get_or_insert_with(Default::default));
            }
        }
        Subject::Template(t) => fill_spec(
            restricted_v2(),
            t.template.spec.get_or_insert_with(Default::default),
        ),
        Subject::None
        | Subject::Other
        | Subject::SandboxRef(_)
        | Subject::Connect(_)
        | Subject::Dependency(_) => {}
    }
}

/// `check --assume-openshift`: manifests carry no SCC annotation (the SCC admission writes it
/// at creation), so Pods and templates alike are filled in as `restricted-v2` would.
pub fn fill_as_restricted_v2(subject: &mut Subject) {
    match subject {
        Subject::Pod(p) => fill_spec(restricted_v2(), p.spec.get_or_insert_with(Default::default)),
        Subject::Template(t) => fill_spec(
            restricted_v2(),
            t.template.spec.get_or_insert_with(Default::default),
        ),
        Subject::None
        | Subject::Other
        | Subject::SandboxRef(_)
        | Subject::Connect(_)
        | Subject::Dependency(_) => {}
    }
}

/// Fills `spec` in as `scc` does where it is silent, field by field as the SCC admission does.
pub fn fill_spec(scc: &Scc, spec: &mut PodSpec) {
    let pod = spec.security_context.get_or_insert_with(Default::default);
    if let Some(profile) = scc.seccomp
        && pod.seccomp_profile.is_none()
    {
        // Generated at pod level only; containers inherit it.
        pod.seccomp_profile = Some(SeccompProfile {
            type_: profile.into(),
            localhost_profile: None,
        });
    }
    let (pod_uid, pod_non_root) = (pod.run_as_user, pod.run_as_non_root);
    let contexts = spec
        .init_containers
        .iter_mut()
        .flatten()
        .map(|c| &mut c.security_context)
        .chain(spec.containers.iter_mut().map(|c| &mut c.security_context))
        .chain(
            spec.ephemeral_containers
                .iter_mut()
                .flatten()
                .map(|c| &mut c.security_context),
        );
    for sc in contexts {
        let sc: &mut SecurityContext = sc.get_or_insert_with(Default::default);
        if scc.run_as_user == RunAsUser::Range && sc.run_as_user.is_none() && pod_uid.is_none() {
            sc.run_as_user = Some(OPENSHIFT_UID);
        }
        // The SCC marks a container non-root when nothing says otherwise and it either runs
        // as a non-zero UID (now, perhaps filled in above) or the SCC demands a non-root one.
        // An explicit false, on the container or the pod, is kept.
        if sc.run_as_non_root.is_none() && pod_non_root.is_none() {
            let non_root = match sc.run_as_user.or(pod_uid) {
                Some(uid) => uid > 0,
                None => scc.run_as_user == RunAsUser::NonRoot,
            };
            if non_root {
                sc.run_as_non_root = Some(true);
            }
        }
        if !scc.required_drop.is_empty() {
            let caps = sc.capabilities.get_or_insert_with(Capabilities::default);
            let drop = caps.drop.get_or_insert_with(Vec::new);
            for cap in scc.required_drop {
                if !drop.iter().any(|c| c == cap) {
                    drop.push((*cap).into());
                }
            }
        }
        if scc.no_privilege_escalation {
            sc.allow_privilege_escalation.get_or_insert(false);
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn spec(v: serde_json::Value) -> PodSpec {
        serde_json::from_value(v).unwrap()
    }

    fn silent() -> PodSpec {
        spec(serde_json::json!({"containers": [{"name": "a"}]}))
    }

    #[test]
    fn the_default_is_restricted_v2_and_it_is_known() {
        assert_eq!(restricted_v2().name, RESTRICTED_V2);
        assert_eq!(default_fill_sccs(), [RESTRICTED_V2]);
        assert!(by_name("anyuid").is_some() && by_name("privileged").is_none());
    }

    #[test]
    fn restricted_v2_fills_only_what_is_missing() {
        let mut s = spec(serde_json::json!({
            "containers": [{"name": "a", "securityContext": {"runAsNonRoot": false}}]
        }));
        fill_spec(restricted_v2(), &mut s);
        let sc = s.containers[0].security_context.as_ref().unwrap();
        assert_eq!(sc.run_as_non_root, Some(false));
        assert_eq!(sc.allow_privilege_escalation, Some(false));
        assert_eq!(sc.run_as_user, Some(OPENSHIFT_UID));
        assert_eq!(
            sc.capabilities.as_ref().unwrap().drop.as_deref(),
            Some(&["ALL".to_string()][..])
        );
        let pod = s.security_context.as_ref().unwrap();
        assert_eq!(
            pod.seccomp_profile.as_ref().unwrap().type_,
            "RuntimeDefault"
        );
    }

    #[test]
    fn restricted_v1_allows_escalation_drops_four_capabilities_and_sets_no_seccomp() {
        let mut s = silent();
        fill_spec(by_name("restricted").unwrap(), &mut s);
        let sc = s.containers[0].security_context.as_ref().unwrap();
        assert_eq!(sc.run_as_user, Some(OPENSHIFT_UID));
        assert_eq!(sc.run_as_non_root, Some(true));
        assert_eq!(sc.allow_privilege_escalation, None);
        assert_eq!(
            sc.capabilities.as_ref().unwrap().drop.as_deref().unwrap(),
            ["KILL", "MKNOD", "SETUID", "SETGID"]
        );
        assert!(s.security_context.unwrap().seccomp_profile.is_none());
    }

    #[test]
    fn nonroot_v2_marks_non_root_without_choosing_a_user() {
        let mut s = silent();
        fill_spec(by_name("nonroot-v2").unwrap(), &mut s);
        let sc = s.containers[0].security_context.as_ref().unwrap();
        assert_eq!(sc.run_as_user, None);
        assert_eq!(sc.run_as_non_root, Some(true));
        assert_eq!(sc.allow_privilege_escalation, Some(false));
    }

    #[test]
    fn anyuid_leaves_root_as_root() {
        let mut s = spec(serde_json::json!({
            "containers": [{"name": "a", "securityContext": {"runAsUser": 0}}]
        }));
        fill_spec(by_name("anyuid").unwrap(), &mut s);
        let sc = s.containers[0].security_context.as_ref().unwrap();
        assert_eq!(sc.run_as_user, Some(0));
        assert_eq!(sc.run_as_non_root, None);
        assert_eq!(sc.allow_privilege_escalation, None);
        assert_eq!(
            sc.capabilities.as_ref().unwrap().drop.as_deref().unwrap(),
            ["MKNOD"]
        );
    }

    #[test]
    fn a_pod_level_choice_is_what_the_containers_inherit() {
        // A pod-level UID is kept (no container UID is added), and a pod-level
        // runAsNonRoot: false is not overridden on the containers.
        let mut s = spec(serde_json::json!({
            "securityContext": {"runAsUser": 2000, "runAsNonRoot": false},
            "containers": [{"name": "a"}]
        }));
        fill_spec(restricted_v2(), &mut s);
        let sc = s.containers[0].security_context.as_ref().unwrap();
        assert_eq!(sc.run_as_user, None);
        assert_eq!(sc.run_as_non_root, None);
    }
}

//! What OpenShift's `restricted-v2` SCC admission fills in where a manifest is silent, so
//! that verdicts match such a cluster. The SCC admission mutates Pods before webhooks see
//! them, but never a workload's pod template; judging a template as its Pods will be (the
//! policy's `assumeOpenShift`, and `check --assume-openshift`) keeps `serve` from refusing a
//! Deployment whose Pods would pass. Explicit settings are kept: the checks still judge them
//! as written.

use super::pod::PodSpec;
use super::review::Subject;
use k8s_openapi::api::core::v1::{Capabilities, SeccompProfile, SecurityContext};

/// A UID from the range OpenShift gives a new project (`openshift.io/sa.scc.uid-range`).
const OPENSHIFT_UID: i64 = 1_000_680_000;

/// Fills the Pod's or the template's spec in place.
pub fn fill(subject: &mut Subject) {
    match subject {
        Subject::Pod(p) => fill_spec(p.spec.get_or_insert_with(Default::default)),
        Subject::Template(t) => fill_spec(t.template.spec.get_or_insert_with(Default::default)),
        Subject::None | Subject::Other | Subject::Connect(_) => {}
    }
}

pub fn fill_spec(spec: &mut PodSpec) {
    let pod = spec.security_context.get_or_insert_with(Default::default);
    if pod.seccomp_profile.is_none() {
        pod.seccomp_profile = Some(SeccompProfile {
            type_: "RuntimeDefault".into(),
            localhost_profile: None,
        });
    }
    let pod_uid = pod.run_as_user;
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
        let caps = sc.capabilities.get_or_insert_with(Capabilities::default);
        let drop = caps.drop.get_or_insert_with(Vec::new);
        if !drop.iter().any(|c| c == "ALL") {
            drop.push("ALL".into());
        }
        sc.allow_privilege_escalation.get_or_insert(false);
        if sc.run_as_user.is_none() && pod_uid.is_none() {
            sc.run_as_user = Some(OPENSHIFT_UID);
        }
        sc.run_as_non_root.get_or_insert(true);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn openshift_defaults_fill_only_what_is_missing() {
        let mut spec: PodSpec = serde_json::from_value(serde_json::json!({
            "containers": [{"name": "a", "securityContext": {"runAsNonRoot": false}}]
        }))
        .unwrap();
        fill_spec(&mut spec);
        let sc = spec.containers[0].security_context.as_ref().unwrap();
        assert_eq!(sc.run_as_non_root, Some(false));
        assert_eq!(sc.allow_privilege_escalation, Some(false));
        assert_eq!(sc.run_as_user, Some(OPENSHIFT_UID));
        assert_eq!(
            sc.capabilities.as_ref().unwrap().drop.as_deref(),
            Some(&["ALL".to_string()][..])
        );
        let pod = spec.security_context.as_ref().unwrap();
        assert_eq!(
            pod.seccomp_profile.as_ref().unwrap().type_,
            "RuntimeDefault"
        );
    }
}

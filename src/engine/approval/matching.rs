//! Whether an approval stamp holds for the object under review and its requester: the
//! signed workload itself (sent by an approver, or changed without touching its template's
//! spec), or an object a controller made from it (see the module above for the chain).

use super::grant::{APPROVAL_ANNOTATION, Grant};
use crate::engine::policy::Policy;
use crate::engine::review::{
    Operation, POD_TEMPLATE_HASH_LABEL, Review, Subject, Target, Template, cronjob_of_job,
    workload_of,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

/// The approval stamp on the object under review, when it holds for this object and this
/// requester (the `approval` module explains when, and why).
pub fn grant_for(review: &Review, policy: &Policy, target: &Target<'_>) -> Option<Grant> {
    let value = target.meta.annotations.as_ref()?.get(APPROVAL_ANNOTATION)?;
    let key = policy.approval_key.as_deref().map(Vec::as_slice);
    let grant = Grant::verify(value, key).ok()?;
    if grant.namespace != review.namespace || grant.expired(review.now) {
        return None;
    }
    let controller = policy
        .controller_users
        .iter()
        .any(|u| u == &review.user.username);
    let holds = match &review.object {
        Subject::Template(t) => {
            let own_name = t.metadata.name.as_deref().unwrap_or(review.name.as_str());
            if t.kind == grant.kind && own_name == grant.name {
                // The signed workload itself: its approver, or a change that leaves the
                // template's spec as the approver signed it.
                policy.is_approver(&review.user)
                    || (review.operation == Operation::Update
                        && matches!(&review.old_object, Subject::Template(old)
                            if old.template.spec == t.template.spec))
            } else {
                controller && template_made_from(t, own_name, &grant)
            }
        }
        Subject::Pod(p) => controller && pod_made_from(&p.metadata, &grant),
        Subject::None | Subject::Other | Subject::Connect(_) => false,
    };
    holds.then_some(grant)
}

/// A ReplicaSet the Deployment controller made (`<deployment>-<pod-template-hash>`, owned by
/// the Deployment), or a Job the CronJob controller made (`<cronjob>-<digits>`).
fn template_made_from(t: &Template, own_name: &str, grant: &Grant) -> bool {
    match (t.kind.as_str(), grant.kind.as_str()) {
        ("ReplicaSet", "Deployment") => {
            let hash = t
                .metadata
                .labels
                .as_ref()
                .and_then(|l| l.get(POD_TEMPLATE_HASH_LABEL));
            let owned = t.metadata.owner_references.iter().flatten().any(|o| {
                o.controller == Some(true) && o.kind == "Deployment" && o.name == grant.name
            });
            owned && hash.is_some_and(|h| own_name == format!("{}-{h}", grant.name))
        }
        ("Job", "CronJob") => cronjob_of_job(own_name, &t.metadata) == Some(grant.name.as_str()),
        _ => false,
    }
}

/// A Pod whose controller owner is the signed workload, or (for a Deployment) its
/// ReplicaSet, or (for a CronJob) one of its runs.
fn pod_made_from(meta: &ObjectMeta, grant: &Grant) -> bool {
    let Some((kind, name)) = workload_of(meta) else {
        return false;
    };
    if kind == grant.kind && name == grant.name {
        return true;
    }
    grant.kind == "CronJob"
        && kind == "Job"
        && name.rsplit_once('-').is_some_and(|(base, run)| {
            base == grant.name && !run.is_empty() && run.bytes().all(|b| b.is_ascii_digit())
        })
}

//! Whether an approval stamp holds for the object under review and its requester: the
//! signed workload itself (sent by an approver, or changed without touching its template's
//! spec), or an object a controller made from it (see the module above for the chain).

use super::digest;
use super::grant::{APPROVAL_ANNOTATION, Grant, Keys, Verified};
use crate::engine::policy::Policy;
use crate::engine::review;
use crate::engine::review::{
    Operation, POD_TEMPLATE_HASH_LABEL, Review, Subject, Target, Template, cronjob_of_job,
    workload_of,
};
use crate::engine::view::ClusterView;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

/// The approval stamp on the object under review, when it holds for this object and this
/// requester (the `approval` module explains when, and why).
pub fn grant_for(
    review: &Review,
    policy: &Policy,
    target: &Target<'_>,
    view: &dyn ClusterView,
) -> Option<Verified> {
    let value = target.meta.annotations.as_ref()?.get(APPROVAL_ANNOTATION)?;
    let mut verified = Grant::verify(value, Keys::of(policy), review.now).ok()?;
    let grant = &verified.grant;
    let now = review.now;
    // An unknown clock (0) honours nothing that expires, and every grant does but legacy
    // ones without an expiry, which the grace period below bounds instead.
    let expired = grant
        .expires_at(policy.approvals.max_lifetime_secs())
        .is_some_and(|e| now <= 0 || now >= e);
    if grant.namespace != review.namespace || expired {
        return None;
    }
    if grant.is_legacy() {
        let until = policy.approvals.legacy_until_secs(policy.started);
        if now <= 0 || now >= until {
            return None;
        }
        verified.legacy_until = Some(until);
    }
    let grant = &verified.grant;
    let controller = policy
        .controller_users
        .iter()
        .any(|u| u == &review.user.username);
    let holds = match &review.object {
        Subject::Template(t) => {
            let own_name = t.metadata.name.as_deref().unwrap_or(review.name.as_str());
            if t.kind == grant.kind && own_name == grant.name {
                // The signed workload itself: its approver, or a non-approver's UPDATE that
                // keeps the stamp it had and the content it signs (a `kubectl rollout
                // restart`, a scale). A CREATE by anyone else is a replay of a saved stamp.
                policy.is_approver(&review.user)
                    || (review.operation == Operation::Update
                        && same_stamp(&review.old_object, value)
                        && content_holds(grant, t, own_name, &review.old_object))
            } else {
                controller
                    && template_made_from(t, own_name, grant, &review.namespace, view)
                    && content_holds(grant, t, own_name, &Subject::None)
            }
        }
        Subject::Pod(p) => controller && pod_made_from(&p.metadata, grant),
        Subject::None
        | Subject::Other
        | Subject::SandboxRef(_)
        | Subject::Connect(_)
        | Subject::Dependency(_) => false,
    };
    holds.then_some(verified)
}

/// Whether the template is what the grant signed: its digest for a current stamp; for a
/// legacy stamp (no digest, honoured only during the upgrade's grace) the rule it was made
/// under: a spec unchanged from the old object's, and any object a controller made.
fn content_holds(grant: &Grant, t: &Template, own_name: &str, old: &Subject) -> bool {
    match &grant.digest {
        Some(signed) => digest::of_template(t, own_name).is_some_and(|d| &d == signed),
        None => match old {
            Subject::Template(old) => old.template.spec == t.template.spec,
            _ => true,
        },
    }
}

/// Whether the old object carried the very same stamp: a non-approver may keep a stamp, never
/// put one back in place of another.
fn same_stamp(old: &Subject, value: &str) -> bool {
    match old {
        Subject::Template(old) => old
            .template
            .metadata
            .as_ref()
            .and_then(|m| m.annotations.as_ref())
            .and_then(|a| a.get(APPROVAL_ANNOTATION))
            .is_some_and(|v| v == value),
        _ => false,
    }
}

/// A ReplicaSet the Deployment controller made (`<deployment>-<pod-template-hash>`, owned by
/// the Deployment), a Job the CronJob controller made (`<cronjob>-<digits>`), or a Sandbox
/// agent-sandbox's warm-pool or claim controller made from the signed `SandboxTemplate`
/// (its controller owner's spec reference leads there, through the view).
fn template_made_from(
    t: &Template,
    own_name: &str,
    grant: &Grant,
    namespace: &str,
    view: &dyn ClusterView,
) -> bool {
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
        ("Sandbox", "SandboxTemplate") => {
            template_of_sandbox(&t.metadata, namespace, view).as_deref()
                == Some(grant.name.as_str())
        }
        _ => false,
    }
}

/// The `SandboxTemplate` a Sandbox was made from, read through its controller owner and the
/// spec references the view caches: a `SandboxWarmPool` names its template, a `SandboxClaim`
/// names its warm pool (adoption moves a Sandbox's controller owner from the pool to the
/// claim; both lead to the same template). `None` for a Sandbox applied directly, an owner of
/// another kind or group, or a link the view does not hold.
fn template_of_sandbox(
    meta: &ObjectMeta,
    namespace: &str,
    view: &dyn ClusterView,
) -> Option<String> {
    let owner = meta
        .owner_references
        .iter()
        .flatten()
        .find(|o| o.controller == Some(true))?;
    let group = owner.api_version.split_once('/').map(|(g, _)| g);
    if group != Some(crate::engine::review::SANDBOX_EXTENSIONS_GROUP) {
        return None;
    }
    let pool = match owner.kind.as_str() {
        "SandboxWarmPool" => owner.name.clone(),
        "SandboxClaim" => view.sandbox_claim(namespace, &owner.name)??,
        _ => return None,
    };
    view.sandbox_warm_pool(namespace, &pool)?
}

/// A Pod whose controller owner is the signed workload, or (for a Deployment) its
/// ReplicaSet, or (for a CronJob) one of its runs, or (for a `SandboxTemplate`) a Sandbox
/// made from it.
///
/// A Sandbox's Pod does not name the Sandbox's own owner, so the link to a template is the
/// label agent-sandbox's controller copies from the Sandbox (the template name's hash). That
/// is enough here: a Sandbox that asks for the template's exemption exists only if it passed
/// its own admission with the stamp honoured, which takes agent-sandbox's controller making
/// it from that template with the signed content ([`template_made_from`]); a Sandbox anyone
/// else writes with a copied stamp is judged without it.
fn pod_made_from(meta: &ObjectMeta, grant: &Grant) -> bool {
    if let Some(sandbox) = review::sandbox_owner(meta) {
        return match grant.kind.as_str() {
            "Sandbox" => sandbox == grant.name,
            "SandboxTemplate" => meta
                .labels
                .as_ref()
                .and_then(|l| l.get(review::TEMPLATE_REF_HASH_LABEL))
                .is_some_and(|h| *h == review::name_hash(&grant.name)),
            _ => false,
        };
    }
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

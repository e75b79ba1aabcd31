//! Exemptions: a violation is dropped when a policy exemption covers its check for this
//! namespace and requester, when a valid approval stamp names its check, or when the object
//! asks for it by annotation and the requester is an approver. Every exemption honoured, and
//! every annotation that asked for one in vain, is returned with its reason for the audit
//! annotations.

use super::approval::grant::Grant;
use super::decision::Reasons;
use super::policy::Policy;
use super::review::{Review, Target};
use super::violation::Violation;
use std::collections::BTreeMap;

/// Drops violations covered by a policy exemption, an approved annotation or an approval
/// stamp. Returns the violations kept, the exemptions honoured and the annotation requests
/// refused, each with its reason.
pub fn apply(
    review: &Review,
    policy: &Policy,
    target: &Target<'_>,
    granted: Option<&Grant>,
    found: Vec<Violation>,
) -> (Vec<Violation>, Reasons, Reasons) {
    let user = &review.user;
    let mut exempt_all: Option<String> = None;
    let mut exempt: BTreeMap<String, String> = BTreeMap::new();
    for (i, ex) in policy.exemptions.iter().enumerate() {
        let ns_ok =
            ex.namespaces.is_empty() || ex.namespaces.iter().any(|n| n == &review.namespace);
        let who_ok = (ex.users.is_empty() && ex.groups.is_empty())
            || ex.users.iter().any(|u| u == &user.username)
            || ex.groups.iter().any(|g| user.groups.contains(g));
        if !(ns_ok && who_ok) {
            continue;
        }
        let why = if ex.reason.is_empty() {
            format!("policy exemptions[{i}]")
        } else {
            format!("policy: {}", ex.reason)
        };
        if ex.checks.is_empty() {
            exempt_all.get_or_insert(why);
        } else {
            for c in &ex.checks {
                exempt.entry(c.clone()).or_insert_with(|| why.clone());
            }
        }
    }
    if let Some(g) = granted {
        for c in &g.checks {
            exempt
                .entry(c.clone())
                .or_insert_with(|| format!("approved by {} on {} {}", g.approver, g.kind, g.name));
        }
    }
    let mut notes = Vec::new();
    if let Some(value) = target
        .meta
        .annotations
        .as_ref()
        .and_then(|a| a.get(&policy.exemption_annotation))
    {
        let approver = policy.is_approver(user);
        for c in value.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            if granted.is_some_and(|g| g.checks.iter().any(|x| x == c)) {
                continue;
            }
            if approver {
                exempt
                    .entry(c.to_string())
                    .or_insert_with(|| format!("annotation approved by {}", user.username));
            } else {
                notes.push((
                    c.to_string(),
                    format!(
                        "annotation ignored: {} is not in an approver group",
                        user.username
                    ),
                ));
            }
        }
    }
    let mut kept = Vec::new();
    let mut honoured: BTreeMap<String, String> = BTreeMap::new();
    for v in found {
        if let Some(why) = exempt_all.as_ref().or_else(|| exempt.get(v.check)) {
            honoured
                .entry(v.check.to_string())
                .or_insert_with(|| why.clone());
        } else {
            kept.push(v);
        }
    }
    (kept, honoured.into_iter().collect(), notes)
}

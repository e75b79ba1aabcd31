//! The mutation that stamps an approver's exemption into an agent workload's pod template
//! as a signed grant, on CREATE or UPDATE, in every mode (the stamp changes nothing about the
//! Pods until the exemption is needed, and audit mode must not lose it for later).

use super::grant::{APPROVAL_ANNOTATION, EXPIRY_ANNOTATION, Grant};
use crate::engine::date::parse_utc;
use crate::engine::patch;
use crate::engine::policy::Policy;
use crate::engine::review::{Review, Target, Template};

/// The mutation's name, in the decision's list of mutations.
pub const APPROVAL_STAMP: &str = "approval-stamp";

/// What stamping an agent workload's template came to.
#[derive(Debug)]
pub enum Stamp {
    /// Nothing to stamp: no exemption asked for, no key, not an approver, or the template
    /// already carries this grant.
    Nothing,
    /// Asked for by an approver but not stamped, and why (the approver is warned).
    Refused(String),
    /// The grant, and the patch that writes its stamp into the template.
    Stamped { grant: Grant, patch: patch::Patch },
}

/// Stamps a signed grant (the `approval` module) when an approver sends an agent workload
/// whose template asks for an exemption.
pub fn stamp(review: &Review, t: &Template, target: &Target<'_>, policy: &Policy) -> Stamp {
    let annotations = target.meta.annotations.as_ref();
    let Some(asked) = annotations.and_then(|a| a.get(&policy.exemption_annotation)) else {
        return Stamp::Nothing;
    };
    let Some(key) = policy.approval_key.as_deref() else {
        return Stamp::Nothing;
    };
    if !policy.is_approver(&review.user) {
        return Stamp::Nothing;
    }
    let checks: Vec<String> = asked
        .split(',')
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .map(String::from)
        .collect();
    let name = t.metadata.name.as_deref().unwrap_or(review.name.as_str());
    let expires = match annotations.and_then(|a| a.get(EXPIRY_ANNOTATION)) {
        None => None,
        Some(v) => match parse_utc(v) {
            Ok(e) => Some(e),
            Err(e) => {
                return Stamp::Refused(format!(
                    "openclaw-admission: {EXPIRY_ANNOTATION}: {e}; the exemption was not stamped for the workload's Pods"
                ));
            }
        },
    };
    if checks.is_empty() || name.is_empty() {
        return Stamp::Nothing;
    }
    let grant = Grant::new(
        &review.namespace,
        &t.kind,
        name,
        checks,
        &review.user.username,
        expires,
    );
    // Re-applying the same manifest keeps the stamp it has (whoever approved it): a new
    // one would change the template and start a rollout for nothing.
    let current = annotations
        .and_then(|a| a.get(APPROVAL_ANNOTATION))
        .and_then(|v| Grant::verify(v, Some(key.as_slice())).ok());
    if current.is_some_and(|c| {
        Grant {
            approver: grant.approver.clone(),
            ..c
        } == grant
    }) {
        return Stamp::Nothing;
    }
    let Some(stamp) = grant.stamp(key) else {
        return Stamp::Refused(
            "openclaw-admission: the approval cannot be stamped (a name holds ';' or '=')".into(),
        );
    };
    let path = format!(
        "/{}/metadata/annotations/{}",
        t.template_path.replace('.', "/"),
        APPROVAL_ANNOTATION.replace('~', "~0").replace('/', "~1")
    );
    // The path is built from constants; a parse failure would be a bug, never a reason to
    // send a patch at the document root.
    let Ok(path) = path.parse() else {
        return Stamp::Nothing;
    };
    let Ok(value) = patch::Json::of(&stamp) else {
        return Stamp::Nothing;
    };
    Stamp::Stamped {
        grant,
        patch: patch::Patch(vec![patch::Op::Add { path, value }]),
    }
}

//! The mutation that stamps an approver's exemption into an agent workload's pod template
//! as a signed grant, on CREATE or UPDATE, in every mode (the stamp changes nothing about the
//! Pods until the exemption is needed, and audit mode must not lose it for later).

use super::digest;
use super::grant::{APPROVAL_ANNOTATION, EXPIRY_ANNOTATION, Grant, Keys};
use crate::engine::date::parse_utc;
use crate::engine::patch;
use crate::engine::policy::{ApprovalKey, Policy};
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
    Stamped {
        grant: Box<Grant>,
        patch: patch::Patch,
    },
}

/// Stamps a signed grant (the `approval` module) when an approver sends an agent workload
/// whose template asks for an exemption.
pub fn stamp(review: &Review, t: &Template, target: &Target<'_>, policy: &Policy) -> Stamp {
    let annotations = target.meta.annotations.as_ref();
    let Some(asked) = annotations.and_then(|a| a.get(&policy.exemption_annotation)) else {
        return Stamp::Nothing;
    };
    let Some(key) = policy.approval_key.as_deref().map(ApprovalKey::bytes) else {
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
    let now = review.now;
    let cap = policy.approvals.max_lifetime_secs();
    // Every stamp expires: at the date asked for, and no later than the policy's maximum.
    let asked_until = match annotations.and_then(|a| a.get(EXPIRY_ANNOTATION)) {
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
    if now <= 0 {
        return Stamp::Refused(
            "openclaw-admission: the webhook does not know the time, so the exemption was not stamped for the workload's Pods".into(),
        );
    }
    let longest = now.saturating_add(cap);
    let expires = asked_until.map_or(longest, |a| a.min(longest));
    let Some(content) = digest::of_template(t, name) else {
        return Stamp::Nothing;
    };
    let grant = Grant::new(
        &review.namespace,
        &t.kind,
        name,
        checks,
        &review.user.username,
        now,
        expires,
        content,
    );
    // Re-applying the same manifest keeps the stamp it has (whoever approved it): a new
    // one would change the template and start a rollout for nothing. Kept only when it
    // is of the current format, under the current key, for the same content and checks,
    // and expires as asked; with no date asked (or one past the maximum), while more than
    // half the maximum is left, so that an approver's re-apply renews it in time.
    let current_key = Keys {
        current: Some(key),
        previous: None,
    };
    let current = annotations
        .and_then(|a| a.get(APPROVAL_ANNOTATION))
        .and_then(|v| Grant::verify(v, current_key, now).ok())
        .map(|v| v.grant);
    let keeps = current.is_some_and(|c| {
        let kept_until = c.expires_at(cap).unwrap_or(0);
        let same = Grant {
            approver: grant.approver.clone(),
            issued: grant.issued,
            expires: grant.expires,
            ..c
        } == grant;
        let in_time = match asked_until {
            Some(a) if a <= longest => kept_until == a,
            _ => kept_until <= longest && kept_until.saturating_sub(now) > cap / 2,
        };
        same && in_time
    });
    if keeps {
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
        grant: Box::new(grant),
        patch: patch::Patch(vec![patch::Op::Add { path, value }]),
    }
}

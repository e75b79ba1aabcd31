//! Exemptions: a violation is dropped when a policy exemption covers its check for this
//! namespace and requester, when a valid approval stamp names its check, or when the object
//! asks for it by annotation and the requester is an approver. Every exemption honoured, and
//! every annotation that asked for one in vain, is returned with its reason for the audit
//! annotations.
//!
//! A policy exemption with `expires` is honoured until that moment and ignored from then on;
//! [`in_force`] is the one place that decides, so the webhook, `check` and `audit` (which all
//! judge through [`apply`]) cannot disagree about it. An expired exemption that would have
//! covered a violation is returned too, so that callers can say so (a warning and an audit
//! annotation here; a log line and a counter in `serve`).

use super::approval::grant::Grant;
use super::date;
use super::decision::{Expired, Reasons};
use super::policy::{Exemption, Policy};
use super::review::{Review, Target};
use super::violation::Violation;
use std::collections::BTreeMap;

/// When a policy exemption stops being honoured, in seconds since the Unix epoch; `None` when
/// it never does. A date that does not read (only a policy built in code can hold one, as
/// the policy is validated at load) ends it at once: a typo must not make it last forever.
pub fn expires_at(ex: &Exemption) -> Option<i64> {
    ex.expires
        .as_deref()
        .map(|e| date::parse_utc(e).unwrap_or(i64::MIN))
}

/// Whether a policy exemption is honoured at `now` (seconds since the Unix epoch): it has no
/// expiry, or `now` is before it. As for approvals, an unknown clock (`0`) honours nothing
/// that expires.
pub fn in_force(ex: &Exemption, now: i64) -> bool {
    expires_at(ex).is_none_or(|until| now > 0 && now < until)
}

/// The policy exemptions (by place in the list) that expire before `horizon`, with when:
/// what `audit --expiring-within` lists, the expired ones included.
pub fn expiring_before(policy: &Policy, horizon: i64) -> Vec<(usize, i64)> {
    policy
        .exemptions
        .iter()
        .enumerate()
        .filter_map(|(i, ex)| expires_at(ex).map(|until| (i, until)))
        .filter(|(_, until)| *until <= horizon)
        .collect()
}

/// What [`apply`] leaves of the violations found, and why.
#[derive(Debug, Default)]
pub struct Applied {
    /// The violations still in force.
    pub kept: Vec<Violation>,
    /// Check ids exempted, with the reason.
    pub exempted: Reasons,
    /// Check ids an annotation asked for in vain, with the reason.
    pub refused: Reasons,
    /// Expired policy exemptions that would have covered a violation found.
    pub expired: Vec<Expired>,
}

/// Whether a policy exemption names this request's namespace and requester.
fn matches(ex: &Exemption, review: &Review) -> bool {
    let user = &review.user;
    let ns_ok = ex.namespaces.is_empty() || ex.namespaces.iter().any(|n| n == &review.namespace);
    let who_ok = (ex.users.is_empty() && ex.groups.is_empty())
        || ex.users.iter().any(|u| u == &user.username)
        || ex.groups.iter().any(|g| user.groups.contains(g));
    ns_ok && who_ok
}

/// Drops violations covered by a policy exemption in force, an approved annotation or an
/// approval stamp. Returns the violations kept, the exemptions honoured and the annotation
/// requests refused, each with its reason, and the expired exemptions that were ignored.
pub fn apply(
    review: &Review,
    policy: &Policy,
    target: &Target<'_>,
    granted: Option<&Grant>,
    found: Vec<Violation>,
) -> Applied {
    let user = &review.user;
    let mut exempt_all: Option<String> = None;
    let mut exempt: BTreeMap<String, String> = BTreeMap::new();
    let mut expired = Vec::new();
    for (i, ex) in policy.exemptions.iter().enumerate() {
        if !matches(ex, review) {
            continue;
        }
        if !in_force(ex, review.now) {
            let checks: Vec<String> = found
                .iter()
                .filter(|v| ex.checks.is_empty() || ex.checks.iter().any(|c| c == v.check))
                .map(|v| v.check.to_string())
                .collect::<std::collections::BTreeSet<_>>()
                .into_iter()
                .collect();
            if !checks.is_empty() {
                expired.push(Expired {
                    index: i,
                    reason: ex.reason.clone(),
                    expires: ex.expires.clone().unwrap_or_default(),
                    checks,
                });
            }
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
    Applied {
        kept,
        exempted: honoured.into_iter().collect(),
        refused: notes,
        expired,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn expiring(at: &str) -> Exemption {
        Exemption {
            namespaces: vec!["agents".into()],
            expires: Some(at.into()),
            ..Default::default()
        }
    }

    #[test]
    fn an_exemption_is_in_force_until_the_first_second_of_its_expiry() {
        // 2027-01-31 is 1_801_353_600; both formats end at the same second.
        let cases = [
            ("2027-01-31", 1_801_353_599, true),
            ("2027-01-31", 1_801_353_600, false),
            ("2027-01-31T00:00:00Z", 1_801_353_599, true),
            ("2027-01-31T00:00:00Z", 1_801_353_600, false),
            ("2027-01-31T12:00:00Z", 1_801_353_600 + 43_199, true),
            ("2027-01-31T12:00:00Z", 1_801_353_600 + 43_200, false),
            // An unknown clock honours nothing that expires, as for approvals.
            ("2999-12-31", 0, false),
        ];
        for (at, now, want) in cases {
            assert_eq!(in_force(&expiring(at), now), want, "{at} at {now}");
        }
        let forever = Exemption {
            namespaces: vec!["agents".into()],
            ..Default::default()
        };
        assert!(in_force(&forever, 0) && in_force(&forever, i64::MAX));
    }

    #[test]
    fn a_date_that_does_not_read_ends_the_exemption_at_once() {
        // Only a policy built in code can hold one: load refuses it.
        assert!(!in_force(&expiring("2027-02-30"), 1_000));
    }

    #[test]
    fn only_expiries_before_the_horizon_are_listed_in_order_of_the_list() {
        let policy = Policy {
            exemptions: vec![
                expiring("2027-03-01"),
                expiring("2027-01-01"),
                Exemption {
                    namespaces: vec!["x".into()],
                    ..Default::default()
                },
                expiring("2027-02-01"),
            ],
            ..Policy::default()
        };
        let horizon = date::parse_utc("2027-02-01").unwrap();
        let listed: Vec<usize> = expiring_before(&policy, horizon)
            .into_iter()
            .map(|(i, _)| i)
            .collect();
        assert_eq!(listed, vec![1, 3]);
    }
}

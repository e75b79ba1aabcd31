//! How a violation becomes an action, written once for every kind of check: the policy's
//! action for the violation's tier (or the catch-all's, for a pod only the catch-all caught),
//! then the mode of the namespace on top. `enforce` keeps the action, `warn` lets nothing be
//! denied, `audit` only records.

use super::policy::{Action, Mode, Policy};
use super::violation::Tier;

/// The action for a violation of `tier` under `mode`; `catch_all` caps the tier's action when
/// the pod was caught by its image rather than selected by its labels: `warn` turns its
/// refusals into warnings (a catch-all being rolled out), `deny` leaves each tier's action as
/// for a labelled agent (a low-tier warning stays a warning).
pub fn for_violation(policy: &Policy, mode: Mode, tier: Tier, catch_all: Option<Action>) -> Action {
    let tier_action = policy.tiers.for_tier(tier);
    // Deny < Warn < Audit: the greater is the more lenient.
    let by_tier = catch_all.map_or(tier_action, |cap| tier_action.max(cap));
    match mode {
        Mode::Enforce => by_tier,
        Mode::Warn => by_tier.max(Action::Warn),
        Mode::Audit => Action::Audit,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enforce_keeps_the_tier_action_warn_never_denies_audit_only_records() {
        let policy = Policy::default();
        let high = policy.tiers.for_tier(Tier::High);
        assert_eq!(
            for_violation(&policy, Mode::Enforce, Tier::High, None),
            high
        );
        assert_eq!(
            for_violation(&policy, Mode::Warn, Tier::High, None),
            high.max(Action::Warn)
        );
        assert_ne!(
            for_violation(&policy, Mode::Warn, Tier::High, None),
            Action::Deny
        );
        assert_eq!(
            for_violation(&policy, Mode::Audit, Tier::High, Some(Action::Deny)),
            Action::Audit
        );
        // The catch-all caps, never raises: a low-tier warning stays one under `deny`, and
        // `warn` lets a high-tier refusal through with a warning.
        assert_eq!(
            for_violation(&policy, Mode::Enforce, Tier::Low, Some(Action::Deny)),
            Action::Warn
        );
        assert_eq!(
            for_violation(&policy, Mode::Enforce, Tier::High, Some(Action::Deny)),
            Action::Deny
        );
        assert_eq!(
            for_violation(&policy, Mode::Enforce, Tier::High, Some(Action::Warn)),
            Action::Warn
        );
    }
}

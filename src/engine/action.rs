//! How a violation becomes an action, written once for every kind of check: the policy's
//! action for the violation's tier (or the catch-all's, for a pod only the catch-all caught),
//! then the mode of the namespace on top. `enforce` keeps the action, `warn` lets nothing be
//! denied, `audit` only records.

use super::policy::{Action, Mode, Policy};
use super::violation::Tier;

/// The action for a violation of `tier` under `mode`; `catch_all` overrides the tier's action
/// when the pod was caught by its image rather than selected by its labels.
pub fn for_violation(policy: &Policy, mode: Mode, tier: Tier, catch_all: Option<Action>) -> Action {
    let by_tier = catch_all.unwrap_or_else(|| policy.tiers.for_tier(tier));
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
        assert_eq!(
            for_violation(&policy, Mode::Enforce, Tier::Low, Some(Action::Deny)),
            Action::Deny
        );
    }
}

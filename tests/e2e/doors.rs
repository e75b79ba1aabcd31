//! The doors a tenant with `edit` rights tries (issue 24): each case makes the request as
//! `mallory` (bound to `edit` by a RoleBinding, not an approver) with the exact kubectl
//! command, expects the webhook's refusal naming the check, and, where the door is meant to
//! stay open for an approver, makes the same request as `bob` in the approver group.

/// The door cases, in the order they run (registered in `cases::all`).
pub fn all() -> Vec<(&'static str, crate::cases::Case)> {
    Vec::new()
}

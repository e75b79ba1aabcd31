//! What a check reports: one broken rule at one exact place in the object.

use serde::Serialize;
use std::fmt;

/// Risk tier of a check. The policy maps each tier to an action (deny, warn, audit),
/// which carries the three-tier risk model to admission.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Tier {
    High,
    Medium,
    Low,
}

impl Tier {
    pub fn as_str(self) -> &'static str {
        match self {
            Tier::High => "high",
            Tier::Medium => "medium",
            Tier::Low => "low",
        }
    }
}

impl fmt::Display for Tier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One broken rule. `path` is the exact object path (`spec.initContainers[1].securityContext`),
/// `message` says what is wrong and `fix` says what to change, in one line each.
/// None of them may ever carry a secret value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Violation {
    pub check: &'static str,
    pub tier: Tier,
    pub path: String,
    pub message: String,
    pub fix: String,
}

impl Violation {
    pub fn new(
        check: &'static str,
        tier: Tier,
        path: impl Into<String>,
        message: impl Into<String>,
        fix: impl Into<String>,
    ) -> Self {
        Violation {
            check,
            tier,
            path: path.into(),
            message: message.into(),
            fix: fix.into(),
        }
    }
}

impl fmt::Display for Violation {
    /// The form used in denial messages and warnings: `check-id: path: what is wrong (fix: ...)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: {}: {} (fix: {})",
            self.check, self.path, self.message, self.fix
        )
    }
}

//! One log line per expired policy exemption, not one per review: an exemption that ran out
//! matches every review it used to cover, and a line for each would bury everything else.
//! The count of reviews is `openclaw_admission_exemptions_expired_total`; the line says which
//! exemption it was, once, and again after the policy changes it (another place, reason or
//! date is another exemption).

use crate::admission::Summary;
use std::collections::BTreeSet;
use std::sync::Mutex;

/// Exemptions remembered at most. A policy holds a handful; the cap only keeps a policy
/// reloaded many times over from growing the set without bound (past it, lines repeat).
const MAX_REMEMBERED: usize = 1024;

/// The expired exemptions already logged.
#[derive(Debug, Default)]
pub struct ExpiredLog {
    logged: Mutex<BTreeSet<String>>,
}

impl ExpiredLog {
    pub fn new() -> Self {
        Self::default()
    }

    /// Logs each expired exemption of this review not logged before.
    pub fn observe(&self, s: &Summary) {
        for (identity, description) in &s.expired_exemptions {
            if self.first_time(identity) {
                tracing::warn!(
                    exemption = %description,
                    namespace = %s.namespace,
                    name = %s.name,
                    "a policy exemption has expired and is no longer honoured; renew its expires date or remove it"
                );
            }
        }
    }

    /// Whether `identity` was not seen before (and remembers it).
    fn first_time(&self, identity: &str) -> bool {
        let mut logged = self.logged.lock().unwrap_or_else(|e| e.into_inner());
        if logged.contains(identity) {
            return false;
        }
        if logged.len() >= MAX_REMEMBERED {
            logged.clear();
        }
        logged.insert(identity.to_string());
        true
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn each_expired_exemption_is_logged_once_and_again_when_it_changes() {
        let log = ExpiredLog::new();
        assert!(log.first_time("0\u{0}2026-01-01\u{0}legacy image"));
        assert!(!log.first_time("0\u{0}2026-01-01\u{0}legacy image"));
        assert!(log.first_time("0\u{0}2026-02-01\u{0}legacy image"));
        assert!(log.first_time("1\u{0}2026-01-01\u{0}legacy image"));
        assert!(!log.first_time("1\u{0}2026-01-01\u{0}legacy image"));
    }

    #[test]
    fn the_set_stays_bounded() {
        let log = ExpiredLog::new();
        for i in 0..(MAX_REMEMBERED * 3) {
            log.first_time(&i.to_string());
        }
        assert!(log.logged.lock().unwrap().len() <= MAX_REMEMBERED);
    }
}

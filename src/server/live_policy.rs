//! The policy, re-read when its file changes (a mounted ConfigMap is swapped by the kubelet
//! through a `..data` symlink, so the content is compared, not the modification time).
//! A valid new file takes effect for the next review, with no restart; an invalid one keeps
//! the policy in force, logs the error with its line and key, and counts a failed reload.
//!
//! What is read once at start stays as it was: the approval key (its own file), and which
//! kinds the live view watches (`checks.token.legacySecretCheck` needs a restart).

use super::metrics::Metrics;
use crate::engine::policy::Policy;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::Duration;

pub struct LivePolicy {
    current: RwLock<Arc<Policy>>,
    /// The file and the bytes last read from it; `None` for a policy with no file.
    source: Option<(PathBuf, Mutex<Vec<u8>>)>,
    metrics: Arc<Metrics>,
}

/// What one look at the file did.
#[derive(Debug, PartialEq, Eq)]
pub enum PolicyReload {
    Unchanged,
    Reloaded,
    /// The new content is not a valid policy; the old one stays.
    Refused,
}

impl LivePolicy {
    /// A policy that never changes (no file: the defaults, or tests).
    pub fn fixed(policy: Arc<Policy>, metrics: Arc<Metrics>) -> Self {
        LivePolicy {
            current: RwLock::new(policy),
            source: None,
            metrics,
        }
    }

    /// A policy loaded from `path`, whose `content` was what `policy` was parsed from.
    pub fn from_file(
        policy: Policy,
        path: PathBuf,
        content: Vec<u8>,
        metrics: Arc<Metrics>,
    ) -> Self {
        LivePolicy {
            current: RwLock::new(Arc::new(policy)),
            source: Some((path, Mutex::new(content))),
            metrics,
        }
    }

    /// The policy in force: one `Arc` clone per review.
    pub fn get(&self) -> Arc<Policy> {
        self.current
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Reads the file; when its content changed, parses it and swaps it in if valid.
    pub fn reload_if_changed(&self) -> PolicyReload {
        let Some((path, last)) = &self.source else {
            return PolicyReload::Unchanged;
        };
        let content = match std::fs::read(path) {
            Ok(c) => c,
            Err(e) => {
                // A ConfigMap swap can leave the path missing for a moment: keep the policy
                // and look again at the next tick, without counting a failure.
                tracing::debug!(path = %path.display(), error = %e, "policy file not readable; keeping the policy in force");
                return PolicyReload::Unchanged;
            }
        };
        let mut last = last.lock().unwrap_or_else(PoisonError::into_inner);
        if *last == content {
            return PolicyReload::Unchanged;
        }
        let text = String::from_utf8_lossy(&content);
        let origin = path.display().to_string();
        let outcome = match Policy::from_yaml(&text, &origin) {
            Ok(mut fresh) => {
                // What `serve` set from its flags and clock stays: the keys, and the start
                // that the default legacy grace counts from (a reload must not extend it).
                let old = self.get();
                fresh.approval_key = old.approval_key.clone();
                fresh.previous_approval_key = old.previous_approval_key.clone();
                fresh.started = old.started;
                *self.current.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(fresh);
                tracing::info!(path = %origin, "policy reloaded; in force for the next review");
                self.metrics.policy_reloaded(true);
                PolicyReload::Reloaded
            }
            Err(e) => {
                tracing::error!(path = %origin, error = %e, "policy not reloaded; the previous policy stays in force");
                self.metrics.policy_reloaded(false);
                PolicyReload::Refused
            }
        };
        // Remember the content either way: a bad file is reported once, not every tick.
        *last = content;
        outcome
    }

    /// Looks at the file every `interval` until `stop` resolves.
    pub async fn watch(
        self: Arc<Self>,
        interval: Duration,
        stop: impl std::future::Future<Output = ()>,
    ) {
        if self.source.is_none() {
            return;
        }
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tokio::pin!(stop);
        loop {
            tokio::select! {
                _ = &mut stop => return,
                _ = tick.tick() => {
                    let me = Arc::clone(&self);
                    let _ = tokio::task::spawn_blocking(move || me.reload_if_changed()).await;
                }
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::engine::policy::Mode;

    #[test]
    fn a_valid_change_takes_effect_and_a_bad_one_keeps_the_policy_in_force() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("policy.yaml");
        std::fs::write(&path, "mode: enforce\n").unwrap();
        let metrics = Arc::new(Metrics::new());
        let mut first = Policy::from_yaml("mode: enforce\n", "p").unwrap();
        first.approval_key = Some(Arc::new(crate::engine::policy::ApprovalKey::new(
            b"k".repeat(32),
        )));
        first.previous_approval_key = Some(Arc::new(crate::engine::policy::PreviousKey {
            key: b"p".repeat(32),
            until: 1_900_000_000,
        }));
        first.started = 1_800_000_000;
        let live = LivePolicy::from_file(
            first,
            path.clone(),
            b"mode: enforce\n".to_vec(),
            metrics.clone(),
        );
        assert_eq!(live.reload_if_changed(), PolicyReload::Unchanged);

        std::fs::write(&path, "mode: audit\n").unwrap();
        assert_eq!(live.reload_if_changed(), PolicyReload::Reloaded);
        assert_eq!(live.get().mode, Mode::Audit);
        assert!(
            live.get().approval_key.is_some(),
            "the key read at start is kept"
        );
        assert!(live.get().previous_approval_key.is_some());
        assert_eq!(
            live.get().started,
            1_800_000_000,
            "the legacy grace keeps its start"
        );

        std::fs::write(&path, "mode: audit\nchecks:\n  tokn: {}\n").unwrap();
        assert_eq!(live.reload_if_changed(), PolicyReload::Refused);
        assert_eq!(live.get().mode, Mode::Audit);
        assert_eq!(
            live.reload_if_changed(),
            PolicyReload::Unchanged,
            "reported once"
        );
        assert_eq!(metrics.policy_reload_failures(), 1);

        std::fs::remove_file(&path).unwrap();
        assert_eq!(live.reload_if_changed(), PolicyReload::Unchanged);
        assert_eq!(live.get().mode, Mode::Audit);
    }
}

//! How current the caches are, per watched kind, and how live confirmations went: counters the
//! watch tasks and the confirm step bump, and `/metrics` reads (src/server/metrics.rs).

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// One watched kind.
#[derive(Debug, Default)]
pub struct KindStats {
    /// Unix seconds of the last event (0: none yet).
    last_event: AtomicI64,
    /// Lists after the first one: each follows a broken watch or an expired resource version.
    relists: AtomicU64,
    lists: AtomicU64,
    watch_errors: AtomicU64,
    /// Set when discovery found the kind's API not served (optional APIs only).
    not_served: AtomicBool,
}

impl KindStats {
    pub fn last_event_unix(&self) -> i64 {
        self.last_event.load(Ordering::Relaxed)
    }
    pub fn relists(&self) -> u64 {
        self.relists.load(Ordering::Relaxed)
    }
    pub fn watch_errors(&self) -> u64 {
        self.watch_errors.load(Ordering::Relaxed)
    }
    /// Whether the API server serves the kind (always, for built-in kinds).
    pub fn served(&self) -> bool {
        !self.not_served.load(Ordering::Relaxed)
    }
    pub(crate) fn set_served(&self, served: bool) {
        self.not_served.store(!served, Ordering::Relaxed);
    }
    pub(crate) fn event(&self) {
        self.last_event.store(unix_now(), Ordering::Relaxed);
    }
    pub(crate) fn list_started(&self) {
        if self.lists.fetch_add(1, Ordering::Relaxed) > 0 {
            self.relists.fetch_add(1, Ordering::Relaxed);
        }
    }
    pub(crate) fn watch_error(&self) {
        self.watch_errors.fetch_add(1, Ordering::Relaxed);
    }
}

/// Live confirmation outcomes (src/cluster/confirm.rs).
#[derive(Debug, Default)]
pub struct LookupStats {
    fetched: AtomicU64,
    timed_out: AtomicU64,
    failed: AtomicU64,
}

impl LookupStats {
    /// `(outcome, count)`: `fetched` (answered in time), `timed_out` (judged from cache),
    /// `failed` (one API call of a confirmation failed; judged from cache for that part).
    pub fn outcomes(&self) -> [(&'static str, u64); 3] {
        [
            ("fetched", self.fetched.load(Ordering::Relaxed)),
            ("timed_out", self.timed_out.load(Ordering::Relaxed)),
            ("failed", self.failed.load(Ordering::Relaxed)),
        ]
    }
    pub(crate) fn fetched(&self) {
        self.fetched.fetch_add(1, Ordering::Relaxed);
    }
    pub(crate) fn timed_out(&self) {
        self.timed_out.fetch_add(1, Ordering::Relaxed);
    }
    pub(crate) fn failed(&self) {
        self.failed.fetch_add(1, Ordering::Relaxed);
    }
}

/// Everything the live view reports; one per process.
#[derive(Debug, Default)]
pub struct CacheStats {
    kinds: Vec<(&'static str, KindStats)>,
    pub lookups: LookupStats,
}

impl CacheStats {
    pub fn new(kinds: &[&'static str]) -> CacheStats {
        CacheStats {
            kinds: kinds.iter().map(|k| (*k, KindStats::default())).collect(),
            lookups: LookupStats::default(),
        }
    }
    /// Every watched kind with its figures, in watch order.
    pub fn kinds(&self) -> impl Iterator<Item = (&'static str, &KindStats)> {
        self.kinds.iter().map(|(k, s)| (*k, s))
    }
    pub(crate) fn kind(&self, kind: &str) -> Option<&KindStats> {
        self.kinds.iter().find(|(k, _)| *k == kind).map(|(_, s)| s)
    }
}

pub fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

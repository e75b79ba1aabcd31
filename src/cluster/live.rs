//! The live view: cluster state the watchers keep current in one shared [`Index`], read
//! under a lock by every review, and the readiness that says when every watch has listed once.

use super::stats::CacheStats;
use crate::engine::egress::cilium_policy::CiliumPolicy;
use crate::engine::selector::Labels;
use crate::engine::view::{
    BoundRole, ClusterView, DefaultLimits, Index, PodLookup, RunningAgents, SandboxFacts,
    ServiceFacts,
};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::api::rbac::v1::{PolicyRule, RoleRef};
use kube::Client;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, PoisonError, RwLock, RwLockReadGuard};
use tokio::sync::watch;

/// Cluster state kept current by watchers; implements [`ClusterView`].
pub struct LiveView {
    pub(super) index: Arc<RwLock<Index>>,
    /// `None` for a view with no API server behind it (tests): confirm steps do nothing.
    pub(super) client: Option<Client>,
    pub(super) stats: Arc<CacheStats>,
}

impl LiveView {
    /// A view over a fixed index, with no API server behind it.
    pub fn from_index(index: Index) -> LiveView {
        LiveView {
            index: Arc::new(RwLock::new(index)),
            client: None,
            stats: Arc::default(),
        }
    }

    /// Cache freshness per watched kind and live confirmation outcomes, for `/metrics`.
    pub fn stats(&self) -> Arc<CacheStats> {
        Arc::clone(&self.stats)
    }

    pub(super) fn read(&self) -> RwLockReadGuard<'_, Index> {
        // A panic while holding the lock leaves at worst one half-applied event, which the
        // next event or relist repairs; refusing every later request would be worse.
        self.index.read().unwrap_or_else(PoisonError::into_inner)
    }

    /// Objects held per kind, for readiness output and metrics.
    pub fn counts(&self) -> BTreeMap<&'static str, usize> {
        self.read().counts()
    }
}

impl ClusterView for LiveView {
    fn namespace_labels(&self, namespace: &str) -> Option<Labels> {
        self.read().namespace_labels(namespace)
    }
    fn service_account_exists(&self, namespace: &str, name: &str) -> bool {
        self.read().service_account_exists(namespace, name)
    }
    fn service_account_automount(&self, namespace: &str, name: &str) -> Option<bool> {
        self.read().service_account_automount(namespace, name)
    }
    fn bound_roles(&self, namespace: &str, service_account: &str) -> Vec<BoundRole> {
        self.read().bound_roles(namespace, service_account)
    }
    fn network_policies(&self, namespace: &str) -> Vec<Arc<NetworkPolicy>> {
        self.read().network_policies(namespace)
    }
    fn is_legacy_token_secret(&self, namespace: &str, name: &str) -> bool {
        self.read().is_legacy_token_secret(namespace, name)
    }
    fn pod(&self, namespace: &str, name: &str) -> PodLookup {
        self.read().pod(namespace, name)
    }
    fn service_pods(&self, namespace: &str, name: &str) -> PodLookup {
        self.read().service_pods(namespace, name)
    }
    fn secret_provider_class(&self, namespace: &str, name: &str) -> Option<bool> {
        self.read().secret_provider_class(namespace, name)
    }
    fn runtime_class(&self, name: &str) -> Option<bool> {
        self.read().runtime_class(name)
    }
    fn limit_range_defaults(&self, namespace: &str) -> DefaultLimits {
        self.read().limit_range_defaults(namespace)
    }
    fn cilium_policies(&self, namespace: &str) -> Option<Vec<Arc<CiliumPolicy>>> {
        self.read().cilium_policies(namespace)
    }
    fn config_map_keys(&self, namespace: &str, name: &str) -> Option<Arc<[String]>> {
        self.read().config_map_keys(namespace, name)
    }
    fn service(&self, namespace: &str, name: &str) -> Option<ServiceFacts> {
        self.read().service(namespace, name)
    }
    fn role_rules(
        &self,
        binding_namespace: &str,
        role_ref: &RoleRef,
    ) -> Option<Arc<Vec<PolicyRule>>> {
        self.read().role_rules(binding_namespace, role_ref)
    }
    fn aggregating_roles(&self, labels: &Labels) -> Vec<String> {
        self.read().aggregating_roles(labels)
    }
    fn may_hold_agents(&self, namespace: &str) -> bool {
        self.read().may_hold_agents(namespace)
    }
    fn namespaces_with_agents(&self) -> Vec<String> {
        self.read().namespaces_with_agents()
    }
    fn running_agents(&self, namespace: &str) -> Option<Arc<RunningAgents>> {
        self.read().running_agents(namespace)
    }
    fn sandbox_template(&self, namespace: &str, name: &str) -> Option<Option<SandboxFacts>> {
        self.read().sandbox_template(namespace, name)
    }
    fn sandbox_warm_pool(&self, namespace: &str, name: &str) -> Option<Option<String>> {
        self.read().sandbox_warm_pool(namespace, name)
    }
    fn sandbox_claim(&self, namespace: &str, name: &str) -> Option<Option<String>> {
        self.read().sandbox_claim(namespace, name)
    }
    fn sandbox_template_by_hash(&self, namespace: &str, hash: &str) -> Option<String> {
        self.read().sandbox_template_by_hash(namespace, hash)
    }
}

pub(super) struct ReadyState {
    /// Kinds whose first list has not completed yet.
    pending: Mutex<BTreeSet<&'static str>>,
    tx: watch::Sender<bool>,
}

impl ReadyState {
    pub(super) fn synced(&self, kind: &'static str) {
        let mut pending = self.pending.lock().unwrap_or_else(PoisonError::into_inner);
        if pending.remove(kind) {
            tracing::info!(kind, "initial list complete");
        }
        if pending.is_empty() {
            self.tx.send_replace(true);
        }
    }
}

/// Whether every watcher has completed its first list. Cheap to clone and to ask.
#[derive(Clone)]
pub struct Readiness {
    pub(super) state: Arc<ReadyState>,
}

impl Readiness {
    pub(super) fn new(kinds: impl IntoIterator<Item = &'static str>) -> Readiness {
        let pending: BTreeSet<_> = kinds.into_iter().collect();
        let (tx, _) = watch::channel(pending.is_empty());
        Readiness {
            state: Arc::new(ReadyState {
                pending: Mutex::new(pending),
                tx,
            }),
        }
    }

    /// Ready from the start: for `serve --no-cluster`, which judges against manifests only.
    pub fn always() -> Readiness {
        Readiness::new([])
    }

    pub fn is_ready(&self) -> bool {
        *self.state.tx.borrow()
    }

    /// Kinds still waiting for their first list (for `/readyz` bodies and logs).
    pub fn pending(&self) -> Vec<&'static str> {
        self.state
            .pending
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .copied()
            .collect()
    }

    /// Resolves once ready.
    pub async fn wait(&self) {
        let mut rx = self.state.tx.subscribe();
        // The sender lives in `self.state`, so the channel cannot close while we wait.
        let _ = rx.wait_for(|ready| *ready).await;
    }
}

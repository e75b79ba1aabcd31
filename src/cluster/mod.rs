//! The live cluster view behind `serve`: kube-runtime watchers keep an [`Index`] of the few
//! kinds the checks consult, and [`LiveView`] answers the engine's lookups from it under a
//! short read lock, so a lookup never goes to the API server on the hot path.
//!
//! - `feed`: how each watched kind lands in the index, including relists that replace a kind
//!   wholesale so objects deleted while the watch was down disappear.
//! - `confirm`: before judging an agent pod, a live GET for what the cache misses and may have
//!   been created a moment ago (namespace, ServiceAccount and NetworkPolicy in one apply).
//! - `dynamic`: kinds of optional APIs (SecretProviderClass, Cilium's policies), watched only
//!   where discovery finds them served.
//!
//! Readiness ([`Readiness`]) turns true once every watcher has finished its first list and
//! stays true afterwards: the webhook keeps serving from cache while the API server is away.
//!
//! # RBAC the webhook needs
//!
//! Read-only, cluster-wide; nothing else:
//!
//! ```yaml
//! apiVersion: rbac.authorization.k8s.io/v1
//! kind: ClusterRole
//! metadata:
//!   name: openclaw-admission
//! rules:
//!   - apiGroups: [""]
//!     resources: [namespaces, serviceaccounts, services]
//!     verbs: [get, list, watch]
//!   # The pods a CONNECT reaches (GET, or LIST by a Service's selector); the keys of agent
//!   # Pods (a metadata watch per agent selector); the Pods of a namespace whose egress
//!   # policies or RBAC change (LIST).
//!   - apiGroups: [""]
//!     resources: [pods]
//!     verbs: [get, list, watch]
//!   # Whether an agent's workload is being deleted (GET of each owner up its chain).
//!   - apiGroups: [""]
//!     resources: [replicationcontrollers]
//!     verbs: [get]
//!   - apiGroups: [apps]
//!     resources: [replicasets, deployments, statefulsets, daemonsets]
//!     verbs: [get]
//!   - apiGroups: [batch]
//!     resources: [jobs, cronjobs]
//!     verbs: [get]
//!   # The ConfigMaps an agent takes env from: a GET per review, key names kept only.
//!   - apiGroups: [""]
//!     resources: [configmaps]
//!     verbs: [get]
//!   - apiGroups: [networking.k8s.io]
//!     resources: [networkpolicies]
//!     verbs: [get, list, watch]
//!   - apiGroups: [rbac.authorization.k8s.io]
//!     resources: [roles, clusterroles, rolebindings, clusterrolebindings]
//!     verbs: [get, list, watch]
//!   # Only when policy checks.token.legacySecretCheck is true. The webhook watches Secret
//!   # metadata with the field selector type=kubernetes.io/service-account-token; it never
//!   # reads or keeps secret data, but list/watch on Secrets is still a privilege to grant
//!   # only when asked.
//!   # - apiGroups: [""]
//!   #   resources: [secrets]
//!   #   verbs: [list, watch]
//!   # Watched only where the API is served (src/cluster/dynamic.rs).
//!   - apiGroups: [secrets-store.csi.x-k8s.io]
//!     resources: [secretproviderclasses]
//!     verbs: [get, list, watch]
//!   - apiGroups: [cilium.io]
//!     resources: [ciliumnetworkpolicies, ciliumclusterwidenetworkpolicies]
//!     verbs: [get, list, watch]
//!   # agent-sandbox: what a SandboxClaim's warm pool and template say.
//!   - apiGroups: [extensions.agents.x-k8s.io]
//!     resources: [sandboxtemplates, sandboxwarmpools]
//!     verbs: [get, list, watch]
//! ```

pub mod agents;
mod confirm;
pub mod dynamic;
mod feed;
mod live;
pub mod reports;
pub mod stats;

pub use confirm::{CONFIRM_TIMEOUT, Confirm, Confirmed};
pub use live::{LiveView, Readiness};

use crate::engine::policy::Policy;
use crate::engine::view::Index;
use feed::Feed;
use k8s_openapi::api::core::v1::{LimitRange, Namespace, Secret, Service, ServiceAccount};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::api::node::v1::RuntimeClass;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};
use kube::api::{Api, ApiResource, DynamicObject, PartialObjectMeta};
use kube::runtime::watcher::{self, watcher};
use kube::{Client, Resource};
use std::path::Path;
use std::sync::{Arc, RwLock};

/// Field selector of the Secret watch: only legacy ServiceAccount token Secrets are listed.
const LEGACY_TOKEN_SELECTOR: &str = "type=kubernetes.io/service-account-token";

/// A client from `--kubeconfig PATH` when given, else the usual places (`KUBECONFIG`,
/// `~/.kube/config`, then the in-cluster service account).
pub async fn client(kubeconfig: Option<&Path>) -> Result<Client, kube::Error> {
    let Some(path) = kubeconfig else {
        return Client::try_default().await;
    };
    let kc = kube::config::Kubeconfig::read_from(path).map_err(kube::Error::InferKubeconfig)?;
    let config =
        kube::Config::from_custom_kubeconfig(kc, &kube::config::KubeConfigOptions::default())
            .await
            .map_err(kube::Error::InferKubeconfig)?;
    Client::try_from(config)
}

/// Starts the watchers (inside a tokio runtime) and returns the view they feed and its
/// readiness. The Secret watch runs only when the policy's legacy token check asks for it.
/// Optional APIs not served are looked for again every `discovery_interval`.
pub fn start(
    client: Client,
    policy: &Policy,
    discovery_interval: std::time::Duration,
) -> (Arc<LiveView>, Readiness) {
    let legacy = policy.checks.token.legacy_secret_check;
    let mut kinds = vec![
        feed::Namespaces::KIND,
        feed::ServiceAccounts::KIND,
        feed::NetworkPolicies::KIND,
        feed::Roles::KIND,
        feed::ClusterRoles::KIND,
        feed::RoleBindings::KIND,
        feed::ClusterRoleBindings::KIND,
        feed::RuntimeClasses::KIND,
        feed::LimitRanges::KIND,
        feed::Services::KIND,
    ];
    if legacy {
        kinds.push(feed::LegacyTokenSecrets::KIND);
    }
    kinds.push(agents::KIND);
    // Optional APIs: each waits for readiness only until discovery says it is not served.
    kinds.extend([
        dynamic::SECRET_PROVIDER_CLASSES.kind,
        dynamic::CILIUM_NETWORK_POLICIES.kind,
        dynamic::CILIUM_CLUSTERWIDE_NETWORK_POLICIES.kind,
        dynamic::SANDBOX_TEMPLATES.kind,
        dynamic::SANDBOX_WARM_POOLS.kind,
        dynamic::SANDBOX_CLAIMS.kind,
    ]);
    let stats = Arc::new(stats::CacheStats::new(&kinds));
    let ready = Readiness::new(kinds);
    let view = Arc::new(LiveView {
        index: Arc::new(RwLock::new(Index::new())),
        client: Some(client.clone()),
        stats,
    });

    // The cache may be a moment behind the API server, which the confirm step covers;
    // listing from the watch cache spares etcd on every (re)list.
    let cfg = || watcher::Config::default().any_semantic();
    let c = &client;
    feed::spawn::<feed::Namespaces, _>(watcher(metadata::<Namespace>(c), cfg()), &view, &ready);
    // Whole objects: `automountServiceAccountToken` is not metadata. A ServiceAccount is
    // small, and only its name and that field are kept.
    feed::spawn::<feed::ServiceAccounts, _>(
        watcher(dynamic::<ServiceAccount>(c), cfg()),
        &view,
        &ready,
    );
    feed::spawn::<feed::NetworkPolicies, _>(
        watcher(dynamic::<NetworkPolicy>(c), cfg()),
        &view,
        &ready,
    );
    feed::spawn::<feed::Roles, _>(watcher(dynamic::<Role>(c), cfg()), &view, &ready);
    feed::spawn::<feed::ClusterRoles, _>(watcher(dynamic::<ClusterRole>(c), cfg()), &view, &ready);
    feed::spawn::<feed::RoleBindings, _>(watcher(dynamic::<RoleBinding>(c), cfg()), &view, &ready);
    feed::spawn::<feed::ClusterRoleBindings, _>(
        watcher(dynamic::<ClusterRoleBinding>(c), cfg()),
        &view,
        &ready,
    );
    feed::spawn::<feed::RuntimeClasses, _>(
        watcher(metadata::<RuntimeClass>(c), cfg()),
        &view,
        &ready,
    );
    feed::spawn::<feed::LimitRanges, _>(watcher(dynamic::<LimitRange>(c), cfg()), &view, &ready);
    // Whole objects (the type is in the spec), parsed one by one; only the type and the
    // external name are kept: about 100 bytes a Service.
    feed::spawn::<feed::Services, _>(watcher(dynamic::<Service>(c), cfg()), &view, &ready);
    if legacy {
        // Metadata only: every object this selector yields is a legacy token, and no secret
        // data ever crosses the wire.
        let secrets = watcher(metadata::<Secret>(c), cfg().fields(LEGACY_TOKEN_SELECTOR));
        feed::spawn::<feed::LegacyTokenSecrets, _>(secrets, &view, &ready);
    }
    // Agent Pods' keys, by each agent selector: which namespaces hold agents.
    agents::spawn(c, policy, &view, &ready);
    dynamic::watch_when_served::<dynamic::SecretProviderClasses>(
        client.clone(),
        Arc::clone(&view),
        ready.clone(),
        discovery_interval,
    );
    dynamic::watch_when_served::<dynamic::CiliumNetworkPolicies>(
        client.clone(),
        Arc::clone(&view),
        ready.clone(),
        discovery_interval,
    );
    dynamic::watch_when_served::<dynamic::CiliumClusterwideNetworkPolicies>(
        client.clone(),
        Arc::clone(&view),
        ready.clone(),
        discovery_interval,
    );
    dynamic::watch_when_served::<dynamic::SandboxTemplates>(
        client.clone(),
        Arc::clone(&view),
        ready.clone(),
        discovery_interval,
    );
    dynamic::watch_when_served::<dynamic::SandboxWarmPools>(
        client.clone(),
        Arc::clone(&view),
        ready.clone(),
        discovery_interval,
    );
    dynamic::watch_when_served::<dynamic::SandboxClaims>(
        client.clone(),
        Arc::clone(&view),
        ready.clone(),
        discovery_interval,
    );
    (view, ready)
}

/// Kinds whose metadata is all the index needs are watched metadata-only: less to transfer
/// and hold, and for Secrets no data ever crosses the wire.
fn metadata<K: Resource<DynamicType = ()>>(client: &Client) -> Api<PartialObjectMeta<K>> {
    Api::all(client.clone())
}

/// Kinds with a spec the checks read are watched untyped and parsed one object at a time, so
/// one object that does not fit its schema is logged and skipped instead of failing the list.
fn dynamic<K: Resource<DynamicType = ()>>(client: &Client) -> Api<DynamicObject> {
    Api::all_with(client.clone(), &ApiResource::erase::<K>(&()))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn readiness_waits_for_the_first_list_of_every_kind() {
        let ready = Readiness::new(["Namespace", "Role"]);
        assert!(!ready.is_ready());
        ready.state.synced("Namespace");
        assert!(!ready.is_ready());
        assert_eq!(ready.pending(), ["Role"]);
        ready.state.synced("Role");
        assert!(ready.is_ready());
        assert!(ready.pending().is_empty());
        ready.wait().await;
    }

    #[test]
    fn a_view_without_a_cluster_is_ready_at_once() {
        assert!(Readiness::always().is_ready());
    }

    #[tokio::test]
    async fn client_comes_from_an_explicit_kubeconfig() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kubeconfig");
        std::fs::write(
            &path,
            "apiVersion: v1\nkind: Config\ncurrent-context: test\n\
             clusters: [{name: test, cluster: {server: 'https://127.0.0.1:6443', insecure-skip-tls-verify: true}}]\n\
             users: [{name: test, user: {token: abc}}]\n\
             contexts: [{name: test, context: {cluster: test, user: test}}]\n",
        )
        .unwrap();
        let c = client(Some(&path)).await.unwrap();
        assert_eq!(c.default_namespace(), "default");
        assert!(client(Some(&dir.path().join("missing"))).await.is_err());
    }
}

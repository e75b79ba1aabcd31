//! Live confirmation of cache misses before an agent pod is judged.
//!
//! A namespace, its ServiceAccount, its NetworkPolicy and the pod often arrive in one
//! `kubectl apply`; the pod's review can reach the webhook before the watches deliver the
//! others. Refusing then would be wrong, so when the cache misses one of them, a live GET or
//! LIST (bounded by [`CONFIRM_TIMEOUT`]) asks the API server. What it finds lives in a
//! per-request overlay ([`Confirmed`]), not in the shared index: an object read here could be
//! deleted before the watch catches up, and writing it into the index would then leave it
//! there until the next relist. The watch delivers it to the index anyway.
//!
//! Hot path: when the cache already knows the namespace, the ServiceAccount and at least one
//! NetworkPolicy of the namespace, nothing is fetched and nothing allocated beyond the checks.
//!
//! ConfigMaps are never watched: a pod that takes env from one (`envFrom.configMapRef`) has
//! it read here, once per review, for its key names alone (the values are dropped as soon as
//! the object is read). A watch would hold every ConfigMap of the cluster, often the largest
//! objects there are (dashboards, scripts, bundles up to 1 MiB each), and stream them again on
//! every relist, for the few agent pods that name one.

use super::dynamic;
use super::live::LiveView;
use super::stats::LookupStats;
use crate::engine;
use crate::engine::checks::{in_cluster_inference, secret_provider_class};
use crate::engine::egress::cilium_policy::CiliumPolicy;
use crate::engine::mutations::secrets_store;
use crate::engine::policy::Policy;
use crate::engine::review::{ConnectTarget, Operation, Review, Subject, Target};
use crate::engine::selector::Labels;
use crate::engine::view::{
    BoundRole, ClusterView, DefaultLimits, Index, PodFacts, PodLookup, Read, Reads, RunningAgents,
    SandboxFacts, ServiceFacts, StaticView,
};
use crate::engine::view::{CILIUM_NETWORK_POLICY, SECRET_PROVIDER_CLASS};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Pod, Service, ServiceAccount};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::api::rbac::v1::{ClusterRole, PolicyRule, Role, RoleBinding, RoleRef};
use kube::Client;
use kube::api::{Api, DynamicObject, ListParams};
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

/// How long a review may wait for the API server. Well inside the webhook's own timeout, so
/// a slow API server costs a cached answer, never a failed admission.
pub const CONFIRM_TIMEOUT: Duration = Duration::from_secs(2);

/// What the cache misses for one review.
#[derive(Debug, Default, PartialEq)]
struct Misses {
    namespace: bool,
    /// The ServiceAccount's name when the cache does not know it.
    service_account: Option<String>,
    /// No NetworkPolicy at all in the namespace (nor, where Cilium's API is served, any
    /// CiliumNetworkPolicy).
    network_policies: bool,
    /// Cilium's API is served: a miss of policies lists CiliumNetworkPolicies too.
    cilium: bool,
    /// SecretProviderClasses the pod names that the cache does not hold.
    secret_provider_classes: Vec<String>,
    /// ConfigMaps the pod takes env from (`envFrom.configMapRef`), for their key names.
    config_maps: Vec<String>,
    /// Services (namespace, name) the pod's LLM endpoints name that the cache does not know:
    /// an ExternalName Service applied with the pod must not pass for an in-cluster one.
    services: Vec<(String, String)>,
}

impl Misses {
    fn any(&self) -> bool {
        self.namespace
            || self.service_account.is_some()
            || self.network_policies
            || !self.secret_provider_classes.is_empty()
            || !self.config_maps.is_empty()
            || !self.services.is_empty()
    }
}

/// The ConfigMaps a pod takes env from, where a check reads their key names.
fn env_config_maps(index: &Index, target: &Target<'_>, reads: Reads) -> Vec<String> {
    if !reads.contains(Read::ConfigMaps) {
        return Vec::new();
    }
    let mut out: Vec<String> = engine::containers::containers(target.spec, target.spec_path)
        .flat_map(|c| c.env_from())
        .filter_map(|f| f.config_map_ref.as_ref())
        .map(|r| r.name.clone())
        .filter(|n| index.config_map_keys(target.namespace, n).is_none())
        .collect();
    out.sort();
    out.dedup();
    out
}

/// Classes the pod names that the cache says do not exist, where the cache knows
/// SecretProviderClasses at all: the mutation's (its annotation or the namespace's default)
/// when the mutation is on, and its CSI volumes' when a check reads them.
fn missing_classes(
    index: &Index,
    target: &Target<'_>,
    policy: &Policy,
    reads: Reads,
) -> Vec<String> {
    let ns = target.namespace;
    let settings = &policy.mutations.secrets_store;
    let mut named: Vec<&str> = Vec::new();
    if settings.enabled {
        named.extend(
            target
                .meta
                .annotations
                .as_ref()
                .and_then(|a| a.get(&settings.annotation))
                .map(|s| s.trim()),
        );
        named.extend(settings.namespace_defaults.get(ns).map(String::as_str));
    }
    if reads.contains(Read::SecretProviderClasses) {
        for v in target.spec.volumes.iter().flatten() {
            if let Some(csi) = v.csi.as_ref().filter(|c| c.driver == secrets_store::DRIVER) {
                named.extend(
                    csi.volume_attributes
                        .as_ref()
                        .and_then(|a| a.get(secret_provider_class::CLASS_ATTRIBUTE))
                        .map(|s| s.trim()),
                );
            }
        }
    }
    let mut out: Vec<String> = named
        .into_iter()
        .filter(|c| !c.is_empty() && index.secret_provider_class(ns, c) == Some(false))
        .map(String::from)
        .collect();
    out.sort();
    out.dedup();
    out
}

/// What the cache misses of what judging the review reads (`engine::reads`: the namespace,
/// and whatever the checks that will run declare).
fn misses(index: &Index, review: &Review, policy: &Policy) -> Misses {
    let ns = review.namespace.as_str();
    let target = match &review.object {
        Subject::Pod(pod) => Target::of_pod(pod, ns),
        Subject::Template(t) => Target::of_template(t, ns, ""),
        Subject::None
        | Subject::Other
        | Subject::SandboxRef(_)
        | Subject::Connect(_)
        | Subject::Dependency(_) => {
            return Misses::default();
        }
    };
    let reads = engine::reads(review, policy);
    let sa = target.service_account().unwrap_or("default");
    let cilium = index.cilium_policies(ns);
    let sa_read = reads.contains(Read::ServiceAccounts) || reads.contains(Read::BoundRoles);
    Misses {
        namespace: reads.contains(Read::NamespaceLabels) && index.namespace_labels(ns).is_none(),
        service_account: (sa_read && !index.service_account_exists(ns, sa)).then(|| sa.to_string()),
        network_policies: reads.contains(Read::NetworkPolicies)
            && index.network_policies(ns).is_empty()
            && cilium
                .as_ref()
                .is_none_or(|c| c.iter().all(|p| p.clusterwide)),
        cilium: reads.contains(Read::CiliumPolicies) && cilium.is_some(),
        secret_provider_classes: missing_classes(index, &target, policy, reads),
        config_maps: env_config_maps(index, &target, reads),
        services: if reads.contains(Read::Services) {
            in_cluster_inference::services_named(target.spec, target.spec_path, policy)
                .into_iter()
                .filter(|(ns, name)| index.service(ns, name).is_none())
                .collect()
        } else {
            Vec::new()
        },
    }
}

/// Whether a review may be about objects created a moment ago: creating or changing an agent
/// pod or workload (not a subresource such as `pods/status`).
fn worth_confirming(review: &Review, policy: &Policy) -> bool {
    matches!(review.operation, Operation::Create | Operation::Update)
        && review.sub_resource.is_none()
        && !review.namespace.is_empty()
        && engine::agent::is_agent(review, policy)
}

/// What a CONNECT (`kubectl exec`, `attach`, `port-forward`, a pod's or a Service's `proxy`)
/// reaches, when the policy judges it. Pods are not watched: a CONNECT is rare and human-paced,
/// so one GET of the pod (or of the Service, then one LIST of the pods it selects) per request
/// costs less than a cache of every pod held and streamed forever.
fn connect_target<'a>(review: &'a Review, policy: &Policy) -> Option<ConnectTarget<'a>> {
    (review.operation == Operation::Connect
        && matches!(review.object, Subject::Connect(_))
        && engine::reads(review, policy).contains(Read::Pods)
        && !review.name.is_empty())
    .then(|| review.connect_target())
}

/// The pods a CONNECT reaches (labels and images: the catch-all finds agents by image), within
/// [`CONFIRM_TIMEOUT`]. `None` when the API server did not answer: the engine then cannot
/// tell, and refuses what it cannot vouch for.
async fn lookup_connect(client: &Client, ns: &str, target: ConnectTarget<'_>) -> Option<Index> {
    let pods = Api::<Pod>::namespaced(client.clone(), ns);
    let lookup = async {
        let mut idx = Index::new();
        match target {
            ConnectTarget::Pod(name) => {
                let found = pods.get_opt(name).await?;
                idx.apply_pod(ns, name, found.as_ref().map(PodFacts::of));
            }
            ConnectTarget::Service(name) => {
                let service = Api::<Service>::namespaced(client.clone(), ns)
                    .get_opt(name)
                    .await?;
                let selected = match service {
                    None => None,
                    Some(service) => {
                        let selector = service.spec.and_then(|s| s.selector).unwrap_or_default();
                        // A Service without a selector reaches only the endpoints someone wrote
                        // by hand; `edit` cannot write those (docs/policy-reference.md, "Threat
                        // model"), so it reaches no pod this lookup could name.
                        if selector.is_empty() {
                            Some(Vec::new())
                        } else {
                            let query = selector
                                .iter()
                                .map(|(k, v)| format!("{k}={v}"))
                                .collect::<Vec<_>>()
                                .join(",");
                            let list = pods.list(&ListParams::default().labels(&query)).await?;
                            Some(list.items.iter().map(PodFacts::of).collect())
                        }
                    }
                };
                idx.apply_service_pods(ns, name, selected);
            }
        }
        Ok::<_, kube::Error>(idx)
    };
    let what = match target {
        ConnectTarget::Pod(name) => format!("pod {ns}/{name}"),
        ConnectTarget::Service(name) => format!("service {ns}/{name}"),
    };
    match tokio::time::timeout(CONFIRM_TIMEOUT, lookup).await {
        Ok(Ok(idx)) => Some(idx),
        Ok(Err(e)) => {
            tracing::warn!(target = %what, error = %e, "lookup for a CONNECT failed");
            None
        }
        Err(_) => {
            tracing::warn!(target = %what, "lookup for a CONNECT timed out");
            None
        }
    }
}

/// The live view plus, for one request, what a live confirmation found. Pass it to the engine
/// in place of the [`LiveView`].
pub struct Confirmed<'a> {
    live: &'a LiveView,
    extra: Option<Index>,
}

impl LiveView {
    /// Confirms with the API server what the cache misses for this review (see the module
    /// docs). Never fails: on error or timeout the cached answer stands, with a warning logged.
    pub async fn confirm(&self, review: &Review, policy: &Policy) -> Confirmed<'_> {
        let cached = Confirmed {
            live: self,
            extra: None,
        };
        let Some(client) = &self.client else {
            return cached;
        };
        if let Some(target) = connect_target(review, policy) {
            return Confirmed {
                live: self,
                extra: lookup_connect(client, &review.namespace, target).await,
            };
        }
        if matches!(review.object, Subject::Dependency(_))
            || matches!(review.old_object, Subject::Dependency(_))
        {
            // A change to what agents depend on: the Pods of the namespaces it may reach, when
            // the signal says any of them holds agents; otherwise nothing is asked.
            let namespaces = engine::dependents::namespaces(review, policy, self);
            if namespaces.is_empty() {
                return cached;
            }
            self.stats.lookups.fetched();
            return Confirmed {
                live: self,
                extra: Some(
                    super::agents::lookup(client, &namespaces, policy, CONFIRM_TIMEOUT).await,
                ),
            };
        }
        if !worth_confirming(review, policy) {
            return cached;
        }
        let missing = misses(&self.read(), review, policy);
        if !missing.any() {
            return cached;
        }
        let ns = review.namespace.as_str();
        let lookups = &self.stats.lookups;
        match tokio::time::timeout(CONFIRM_TIMEOUT, fetch(client, ns, &missing, lookups)).await {
            Ok(extra) => {
                lookups.fetched();
                Confirmed {
                    live: self,
                    extra: Some(extra),
                }
            }
            Err(_) => {
                lookups.timed_out();
                tracing::warn!(
                    namespace = ns,
                    ?missing,
                    "live confirmation timed out; judging from cache"
                );
                cached
            }
        }
    }
}

/// A view the server can ask to confirm cache misses before judging one review. The live view
/// asks the API server; a static view has nothing to confirm and answers as it is.
pub trait Confirm: ClusterView + Send + Sync + 'static {
    fn confirm<'a>(
        &'a self,
        review: &'a Review,
        policy: &'a Policy,
    ) -> impl Future<Output = impl ClusterView + Send + 'a> + Send + 'a;
}

impl Confirm for LiveView {
    fn confirm<'a>(
        &'a self,
        review: &'a Review,
        policy: &'a Policy,
    ) -> impl Future<Output = impl ClusterView + Send + 'a> + Send + 'a {
        LiveView::confirm(self, review, policy)
    }
}

impl Confirm for StaticView {
    fn confirm<'a>(
        &'a self,
        _review: &'a Review,
        _policy: &'a Policy,
    ) -> impl Future<Output = impl ClusterView + Send + 'a> + Send + 'a {
        std::future::ready(&self.index)
    }
}

/// Lets a borrowed index stand for a view (the static view's confirm answer).
impl ClusterView for &Index {
    fn namespace_labels(&self, namespace: &str) -> Option<Labels> {
        (**self).namespace_labels(namespace)
    }
    fn service_account_exists(&self, namespace: &str, name: &str) -> bool {
        (**self).service_account_exists(namespace, name)
    }
    fn service_account_automount(&self, namespace: &str, name: &str) -> Option<bool> {
        (**self).service_account_automount(namespace, name)
    }
    fn bound_roles(&self, namespace: &str, service_account: &str) -> Vec<BoundRole> {
        (**self).bound_roles(namespace, service_account)
    }
    fn network_policies(&self, namespace: &str) -> Vec<Arc<NetworkPolicy>> {
        (**self).network_policies(namespace)
    }
    fn is_legacy_token_secret(&self, namespace: &str, name: &str) -> bool {
        (**self).is_legacy_token_secret(namespace, name)
    }
    fn pod(&self, namespace: &str, name: &str) -> PodLookup {
        (**self).pod(namespace, name)
    }
    fn service_pods(&self, namespace: &str, name: &str) -> PodLookup {
        (**self).service_pods(namespace, name)
    }
    fn secret_provider_class(&self, namespace: &str, name: &str) -> Option<bool> {
        (**self).secret_provider_class(namespace, name)
    }
    fn cilium_policies(&self, namespace: &str) -> Option<Vec<Arc<CiliumPolicy>>> {
        (**self).cilium_policies(namespace)
    }
    fn runtime_class(&self, name: &str) -> Option<bool> {
        (**self).runtime_class(name)
    }
    fn limit_range_defaults(&self, namespace: &str) -> DefaultLimits {
        (**self).limit_range_defaults(namespace)
    }
    fn config_map_keys(&self, namespace: &str, name: &str) -> Option<Arc<[String]>> {
        (**self).config_map_keys(namespace, name)
    }
    fn service(&self, namespace: &str, name: &str) -> Option<ServiceFacts> {
        (**self).service(namespace, name)
    }
    fn role_rules(
        &self,
        binding_namespace: &str,
        role_ref: &RoleRef,
    ) -> Option<Arc<Vec<PolicyRule>>> {
        (**self).role_rules(binding_namespace, role_ref)
    }
    fn aggregating_roles(&self, labels: &Labels) -> Vec<String> {
        (**self).aggregating_roles(labels)
    }
    fn may_hold_agents(&self, namespace: &str) -> bool {
        (**self).may_hold_agents(namespace)
    }
    fn namespaces_with_agents(&self) -> Vec<String> {
        (**self).namespaces_with_agents()
    }
    fn running_agents(&self, namespace: &str) -> Option<Arc<RunningAgents>> {
        (**self).running_agents(namespace)
    }
    fn sandbox_template(&self, namespace: &str, name: &str) -> Option<Option<SandboxFacts>> {
        (**self).sandbox_template(namespace, name)
    }
    fn sandbox_warm_pool(&self, namespace: &str, name: &str) -> Option<Option<String>> {
        (**self).sandbox_warm_pool(namespace, name)
    }
    fn sandbox_claim(&self, namespace: &str, name: &str) -> Option<Option<String>> {
        (**self).sandbox_claim(namespace, name)
    }
    fn sandbox_template_by_hash(&self, namespace: &str, hash: &str) -> Option<String> {
        (**self).sandbox_template_by_hash(namespace, hash)
    }
}

async fn fetch(client: &Client, ns: &str, missing: &Misses, lookups: &LookupStats) -> Index {
    let namespace = async {
        if !missing.namespace {
            return None;
        }
        let meta = logged(
            Api::<Namespace>::all(client.clone())
                .get_metadata_opt(ns)
                .await,
            "Namespace",
            ns,
            lookups,
        )??;
        Some(Namespace {
            metadata: meta.metadata,
            ..Default::default()
        })
    };
    let rbac = async {
        let name = missing.service_account.as_deref()?;
        let api = Api::<ServiceAccount>::namespaced(client.clone(), ns);
        let sa = logged(api.get_opt(name).await, "ServiceAccount", ns, lookups)??;
        // A ServiceAccount that new may come with its bindings in the same apply.
        Some((
            name.to_string(),
            sa.automount_service_account_token,
            fetch_namespaced_rbac(client, ns, lookups).await,
        ))
    };
    let policies = async {
        if !missing.network_policies {
            return Vec::new();
        }
        let api = Api::<NetworkPolicy>::namespaced(client.clone(), ns);
        logged(
            api.list(&ListParams::default()).await,
            "NetworkPolicy",
            ns,
            lookups,
        )
        .map(|l| l.items)
        .unwrap_or_default()
    };
    let cilium = async {
        if !(missing.network_policies && missing.cilium) {
            return Vec::new();
        }
        let api = Api::<DynamicObject>::namespaced_with(
            client.clone(),
            ns,
            &dynamic::CILIUM_NETWORK_POLICIES.resource(),
        );
        let listed = logged(
            api.list(&ListParams::default()).await,
            CILIUM_NETWORK_POLICY,
            ns,
            lookups,
        )
        .map(|l| l.items)
        .unwrap_or_default();
        listed
            .into_iter()
            .filter_map(|o| {
                let mut v = serde_json::to_value(&o).ok()?;
                v["kind"] = CILIUM_NETWORK_POLICY.into();
                CiliumPolicy::from_object(&v).ok()
            })
            .collect()
    };
    let classes = async {
        let api = Api::<DynamicObject>::namespaced_with(
            client.clone(),
            ns,
            &dynamic::SECRET_PROVIDER_CLASSES.resource(),
        );
        let found = futures::future::join_all(
            missing
                .secret_provider_classes
                .iter()
                .map(|name| api.get_metadata_opt(name)),
        )
        .await;
        found
            .into_iter()
            .filter_map(|r| logged(r, SECRET_PROVIDER_CLASS, ns, lookups).flatten())
            .filter_map(|o| o.metadata.name)
            .collect::<Vec<String>>()
    };
    let config_maps = async {
        let api = Api::<ConfigMap>::namespaced(client.clone(), ns);
        let found =
            futures::future::join_all(missing.config_maps.iter().map(|name| api.get_opt(name)))
                .await;
        found
            .into_iter()
            .filter_map(|r| logged(r, "ConfigMap", ns, lookups).flatten())
            .map(|cm| {
                // Key names only; the values go out of scope here.
                let mut keys: Vec<String> =
                    cm.data.into_iter().flat_map(|d| d.into_keys()).collect();
                keys.extend(cm.binary_data.into_iter().flat_map(|d| d.into_keys()));
                (cm.metadata.name.unwrap_or_default(), keys)
            })
            .collect::<Vec<_>>()
    };
    let services = async {
        let found =
            futures::future::join_all(missing.services.iter().map(|(ns, name)| async move {
                let api = Api::<Service>::namespaced(client.clone(), ns);
                logged(api.get_opt(name).await, "Service", ns, lookups).flatten()
            }))
            .await;
        found.into_iter().flatten().collect::<Vec<Service>>()
    };
    let (namespace, rbac, policies, cilium, classes, config_maps, services) = futures::join!(
        namespace,
        rbac,
        policies,
        cilium,
        classes,
        config_maps,
        services
    );

    let mut extra = Index::new();
    if let Some(n) = namespace {
        extra.apply_namespace(&n);
    }
    if let Some((sa, automount, (bindings, roles, cluster_roles))) = rbac {
        extra.apply_service_account_name(ns, &sa, automount);
        roles.iter().for_each(|r| extra.apply_role(r));
        cluster_roles
            .iter()
            .for_each(|r| extra.apply_cluster_role(r));
        bindings.iter().for_each(|b| extra.apply_role_binding(b));
    }
    for p in policies {
        extra.apply_network_policy(p);
    }
    for p in cilium {
        extra.apply_cilium_policy(p);
    }
    for c in classes {
        extra.apply_secret_provider_class(ns, &c);
    }
    for s in services {
        let (sns, name) = (
            s.metadata.namespace.clone().unwrap_or_default(),
            s.metadata.name.clone().unwrap_or_default(),
        );
        extra.apply_service(&sns, &name, ServiceFacts::of(&s));
    }
    for (name, mut keys) in config_maps {
        keys.sort();
        keys.dedup();
        extra.apply_config_map_keys(ns, &name, keys);
    }
    extra
}

/// RoleBindings and Roles of the namespace, and the ClusterRoles those bindings name.
async fn fetch_namespaced_rbac(
    client: &Client,
    ns: &str,
    lookups: &LookupStats,
) -> (Vec<RoleBinding>, Vec<Role>, Vec<ClusterRole>) {
    let lp = ListParams::default();
    let bindings_api = Api::<RoleBinding>::namespaced(client.clone(), ns);
    let roles_api = Api::<Role>::namespaced(client.clone(), ns);
    let (bindings, roles) = futures::join!(bindings_api.list(&lp), roles_api.list(&lp));
    let bindings = logged(bindings, "RoleBinding", ns, lookups)
        .map(|l| l.items)
        .unwrap_or_default();
    let roles = logged(roles, "Role", ns, lookups)
        .map(|l| l.items)
        .unwrap_or_default();
    let wanted: BTreeSet<&str> = bindings
        .iter()
        .filter(|b| b.role_ref.kind == "ClusterRole")
        .map(|b| b.role_ref.name.as_str())
        .collect();
    let cluster_roles_api = Api::<ClusterRole>::all(client.clone());
    let found =
        futures::future::join_all(wanted.iter().map(|name| cluster_roles_api.get_opt(name))).await;
    let cluster_roles = found
        .into_iter()
        .filter_map(|r| logged(r, "ClusterRole", ns, lookups).flatten())
        .collect();
    (bindings, roles, cluster_roles)
}

fn logged<T>(
    result: Result<T, kube::Error>,
    kind: &str,
    namespace: &str,
    lookups: &LookupStats,
) -> Option<T> {
    result
        .inspect_err(|e| {
            lookups.failed();
            tracing::warn!(kind, namespace, error = %e, "live confirmation failed; judging from cache")
        })
        .ok()
}

impl ClusterView for Confirmed<'_> {
    fn namespace_labels(&self, namespace: &str) -> Option<Labels> {
        self.live
            .namespace_labels(namespace)
            .or_else(|| self.extra.as_ref()?.namespace_labels(namespace))
    }

    fn service_account_exists(&self, namespace: &str, name: &str) -> bool {
        self.live.service_account_exists(namespace, name)
            || self
                .extra
                .as_ref()
                .is_some_and(|x| x.service_account_exists(namespace, name))
    }

    fn service_account_automount(&self, namespace: &str, name: &str) -> Option<bool> {
        if self.live.service_account_exists(namespace, name) {
            return self.live.service_account_automount(namespace, name);
        }
        self.extra
            .as_ref()?
            .service_account_automount(namespace, name)
    }

    fn bound_roles(&self, namespace: &str, service_account: &str) -> Vec<BoundRole> {
        let mut roles = self.live.bound_roles(namespace, service_account);
        if let Some(extra) = &self.extra {
            let known: BTreeSet<String> = roles.iter().map(|r| r.binding.clone()).collect();
            let fresh: Vec<BoundRole> = extra
                .bound_roles(namespace, service_account)
                .into_iter()
                .filter(|r| !known.contains(&r.binding))
                .collect();
            roles.extend(fresh);
        }
        roles
    }

    fn network_policies(&self, namespace: &str) -> Vec<Arc<NetworkPolicy>> {
        let cached = self.live.network_policies(namespace);
        match &self.extra {
            Some(extra) if cached.is_empty() => extra.network_policies(namespace),
            _ => cached,
        }
    }

    fn is_legacy_token_secret(&self, namespace: &str, name: &str) -> bool {
        self.live.is_legacy_token_secret(namespace, name)
    }
    fn pod(&self, namespace: &str, name: &str) -> PodLookup {
        match self.extra.as_ref() {
            Some(extra) => extra.pod(namespace, name),
            None => self.live.pod(namespace, name),
        }
    }
    fn service_pods(&self, namespace: &str, name: &str) -> PodLookup {
        match self.extra.as_ref() {
            Some(extra) => extra.service_pods(namespace, name),
            None => self.live.service_pods(namespace, name),
        }
    }

    fn secret_provider_class(&self, namespace: &str, name: &str) -> Option<bool> {
        let cached = self.live.secret_provider_class(namespace, name)?;
        Some(
            cached
                || self
                    .extra
                    .as_ref()
                    .and_then(|x| x.secret_provider_class(namespace, name))
                    .unwrap_or(false),
        )
    }

    /// As for NetworkPolicies: the namespace's fetched policies stand in only where the
    /// cache has none of the namespace's own; clusterwide ones always come from the cache.
    fn cilium_policies(&self, namespace: &str) -> Option<Vec<Arc<CiliumPolicy>>> {
        let mut cached = self.live.cilium_policies(namespace)?;
        if cached.iter().all(|p| p.clusterwide)
            && let Some(fetched) = self
                .extra
                .as_ref()
                .and_then(|x| x.cilium_policies(namespace))
        {
            cached.extend(fetched.into_iter().filter(|p| !p.clusterwide));
        }
        Some(cached)
    }

    // A RuntimeClass or LimitRange made in the same apply as the pod reaches the cache a
    // moment later; both only feed low-tier checks (warnings), so the cached answer stands.
    fn runtime_class(&self, name: &str) -> Option<bool> {
        self.live.runtime_class(name)
    }
    fn limit_range_defaults(&self, namespace: &str) -> DefaultLimits {
        self.live.limit_range_defaults(namespace)
    }

    // ConfigMaps are not watched: their key names come from the GET of this request alone.
    fn config_map_keys(&self, namespace: &str, name: &str) -> Option<Arc<[String]>> {
        self.extra
            .as_ref()
            .and_then(|x| x.config_map_keys(namespace, name))
            .or_else(|| self.live.config_map_keys(namespace, name))
    }

    // A Service the watch has not delivered yet may come from this request's GET.
    fn service(&self, namespace: &str, name: &str) -> Option<ServiceFacts> {
        self.live
            .service(namespace, name)
            .or_else(|| self.extra.as_ref()?.service(namespace, name))
    }

    fn role_rules(
        &self,
        binding_namespace: &str,
        role_ref: &RoleRef,
    ) -> Option<Arc<Vec<PolicyRule>>> {
        self.live.role_rules(binding_namespace, role_ref)
    }
    fn aggregating_roles(&self, labels: &Labels) -> Vec<String> {
        self.live.aggregating_roles(labels)
    }
    fn may_hold_agents(&self, namespace: &str) -> bool {
        self.live.may_hold_agents(namespace)
    }
    fn namespaces_with_agents(&self) -> Vec<String> {
        self.live.namespaces_with_agents()
    }
    // Pods are never watched: they come from this request's lookup alone.
    fn running_agents(&self, namespace: &str) -> Option<Arc<RunningAgents>> {
        self.extra.as_ref()?.running_agents(namespace)
    }
    // agent-sandbox's templates, warm pools and claims come from the watches only.
    fn sandbox_template(&self, namespace: &str, name: &str) -> Option<Option<SandboxFacts>> {
        self.live.sandbox_template(namespace, name)
    }
    fn sandbox_warm_pool(&self, namespace: &str, name: &str) -> Option<Option<String>> {
        self.live.sandbox_warm_pool(namespace, name)
    }
    fn sandbox_claim(&self, namespace: &str, name: &str) -> Option<Option<String>> {
        self.live.sandbox_claim(namespace, name)
    }
    fn sandbox_template_by_hash(&self, namespace: &str, hash: &str) -> Option<String> {
        self.live.sandbox_template_by_hash(namespace, hash)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::engine::checks::fixtures::{NS, SA, hardened_pod, pod};
    use crate::engine::checks::{
        dedicated_service_account, default_deny_egress, least_privilege_rbac,
        no_plaintext_credentials,
    };
    use crate::engine::review::{GroupVersionKind, GroupVersionResource, User};
    use serde_json::json;

    fn review_of(p: crate::engine::pod::Pod) -> Review {
        Review {
            uid: "u".into(),
            kind: GroupVersionKind::gvk("", "v1", "Pod"),
            resource: GroupVersionResource::gvr("", "v1", "pods"),
            sub_resource: None,
            operation: Operation::Create,
            namespace: NS.into(),
            name: "agent".into(),
            user: User::default(),
            dry_run: false,
            object: Subject::Pod(Box::new(p)),
            old_object: Subject::None,
            now: 0,
        }
    }

    fn view(objects: serde_json::Value) -> Index {
        let mut v = StaticView::new();
        for o in objects.as_array().unwrap() {
            assert!(v.add(o, NS).unwrap());
        }
        v.index
    }

    fn complete_namespace() -> Index {
        view(json!([
            {"apiVersion":"v1","kind":"Namespace","metadata":{"name":NS}},
            {"apiVersion":"v1","kind":"ServiceAccount","metadata":{"name":SA,"namespace":NS}},
            {"apiVersion":"networking.k8s.io/v1","kind":"NetworkPolicy","metadata":{"name":"deny","namespace":NS},
                "spec":{"podSelector":{},"policyTypes":["Egress"]}}
        ]))
    }

    #[test]
    fn cached_namespace_service_account_and_policy_need_no_live_call() {
        let m = misses(
            &complete_namespace(),
            &review_of(hardened_pod()),
            &Policy::default(),
        );
        assert!(!m.any(), "{m:?}");
    }

    #[test]
    fn a_namespace_unknown_to_the_cache_misses_everything_the_pod_needs() {
        let m = misses(
            &Index::new(),
            &review_of(hardened_pod()),
            &Policy::default(),
        );
        assert_eq!(
            m,
            Misses {
                namespace: true,
                service_account: Some(SA.into()),
                network_policies: true,
                cilium: false,
                secret_provider_classes: Vec::new(),
                config_maps: Vec::new(),
                services: Vec::new(),
            }
        );
    }

    #[test]
    fn pod_without_service_account_confirms_the_default_one() {
        let p = pod("agent")
            .label("app", "openclaw")
            .container("agent")
            .build();
        let m = misses(&complete_namespace(), &review_of(p), &Policy::default());
        assert_eq!(m.service_account.as_deref(), Some("default"));
    }

    #[test]
    fn disabled_checks_ask_for_nothing() {
        let policy = Policy {
            disabled_checks: vec![
                default_deny_egress::CHECK.id.into(),
                dedicated_service_account::CHECK.id.into(),
                least_privilege_rbac::CHECK.id.into(),
            ],
            ..Policy::default()
        };
        let m = misses(&complete_namespace(), &review_of(hardened_pod()), &policy);
        assert!(!m.any());
    }

    #[test]
    fn non_agent_pods_deletes_and_subresources_are_not_confirmed() {
        let policy = Policy::default();
        let plain = pod("web").container("nginx").build();
        assert!(!worth_confirming(&review_of(plain), &policy));
        let mut delete = review_of(hardened_pod());
        delete.operation = Operation::Delete;
        assert!(!worth_confirming(&delete, &policy));
        let mut status = review_of(hardened_pod());
        status.operation = Operation::Update;
        status.sub_resource = Some("status".into());
        assert!(!worth_confirming(&status, &policy));
        assert!(worth_confirming(&review_of(hardened_pod()), &policy));
    }

    #[test]
    fn confirmed_view_answers_from_fetched_objects_where_the_cache_misses() {
        let live = LiveView::from_index(view(json!([
            {"apiVersion":"rbac.authorization.k8s.io/v1","kind":"RoleBinding","metadata":{"name":"read","namespace":NS},
                "roleRef":{"apiGroup":"rbac.authorization.k8s.io","kind":"ClusterRole","name":"view"},
                "subjects":[{"kind":"ServiceAccount","name":SA,"namespace":NS}]}
        ])));
        let fetched = view(json!([
            {"apiVersion":"v1","kind":"Namespace","metadata":{"name":NS,"labels":{"team":"ai"}}},
            {"apiVersion":"v1","kind":"ServiceAccount","metadata":{"name":SA,"namespace":NS}},
            {"apiVersion":"networking.k8s.io/v1","kind":"NetworkPolicy","metadata":{"name":"deny","namespace":NS},
                "spec":{"podSelector":{},"policyTypes":["Egress"]}},
            {"apiVersion":"rbac.authorization.k8s.io/v1","kind":"RoleBinding","metadata":{"name":"read","namespace":NS},
                "roleRef":{"apiGroup":"rbac.authorization.k8s.io","kind":"ClusterRole","name":"view"},
                "subjects":[{"kind":"ServiceAccount","name":SA,"namespace":NS}]},
            {"apiVersion":"rbac.authorization.k8s.io/v1","kind":"RoleBinding","metadata":{"name":"admin","namespace":NS},
                "roleRef":{"apiGroup":"rbac.authorization.k8s.io","kind":"ClusterRole","name":"cluster-admin"},
                "subjects":[{"kind":"ServiceAccount","name":SA,"namespace":NS}]}
        ]));
        let v = Confirmed {
            live: &live,
            extra: Some(fetched),
        };
        assert_eq!(
            v.namespace_labels(NS)
                .unwrap()
                .get("team")
                .map(String::as_str),
            Some("ai")
        );
        assert!(v.service_account_exists(NS, SA));
        assert_eq!(v.network_policies(NS).len(), 1);
        let mut bindings: Vec<String> = v
            .bound_roles(NS, SA)
            .into_iter()
            .map(|r| r.binding)
            .collect();
        bindings.sort();
        assert_eq!(
            bindings,
            [
                format!("RoleBinding {NS}/admin"),
                format!("RoleBinding {NS}/read")
            ]
        );
    }

    fn spc(name: &str) -> serde_json::Value {
        json!({"apiVersion":"secrets-store.csi.x-k8s.io/v1","kind":"SecretProviderClass",
            "metadata":{"name":name,"namespace":NS},"spec":{"provider":"vault"}})
    }

    #[test]
    fn classes_the_pod_names_and_the_cache_lacks_are_confirmed_only_where_classes_are_known() {
        let p = crate::engine::checks::fixtures::hardened()
            .annotation("openclaw.io/secret-provider-class", "fresh")
            .build();
        // The API is not served: nothing to confirm.
        let m = misses(
            &complete_namespace(),
            &review_of(p.clone()),
            &Policy::default(),
        );
        assert!(m.secret_provider_classes.is_empty());
        let mut index = complete_namespace();
        index.apply_secret_provider_class(NS, "old");
        let m = misses(&index, &review_of(p.clone()), &Policy::default());
        assert_eq!(m.secret_provider_classes, ["fresh"]);
        index.apply_secret_provider_class(NS, "fresh");
        assert!(!misses(&index, &review_of(p), &Policy::default()).any());
    }

    #[test]
    fn config_maps_a_pod_takes_env_from_are_read_for_each_review() {
        let p = crate::engine::checks::fixtures::hardened()
            .with_container("agent")
            .edit(|c| {
                c.env_from = Some(vec![
                    serde_json::from_value(json!({"configMapRef": {"name": "settings"}})).unwrap(),
                    serde_json::from_value(json!({"secretRef": {"name": "keys"}})).unwrap(),
                ])
            })
            .build();
        let m = misses(
            &complete_namespace(),
            &review_of(p.clone()),
            &Policy::default(),
        );
        assert_eq!(m.config_maps, ["settings"]);
        assert!(m.any());
        let policy = Policy {
            disabled_checks: vec![no_plaintext_credentials::CHECK.id.into()],
            ..Policy::default()
        };
        assert!(!misses(&complete_namespace(), &review_of(p), &policy).any());
        // The fetched keys stand for the request.
        let live = LiveView::from_index(complete_namespace());
        let v = Confirmed {
            live: &live,
            extra: Some(view(json!([{"apiVersion":"v1","kind":"ConfigMap",
                "metadata":{"name":"settings","namespace":NS},"data":{"OPENAI_API_KEY":"x"}}]))),
        };
        assert_eq!(
            v.config_map_keys(NS, "settings").as_deref(),
            Some(&["OPENAI_API_KEY".to_string()][..])
        );
        assert_eq!(v.config_map_keys(NS, "other"), None);
    }

    #[test]
    fn services_an_endpoint_names_are_confirmed_when_the_cache_does_not_know_them() {
        let mut policy = Policy::default();
        policy.checks.inference.allowed_hosts = vec!["gateway.example".into()];
        let p = crate::engine::checks::fixtures::hardened()
            .env("OPENAI_BASE_URL", "http://llm.models.svc/v1")
            .build();
        let m = misses(&complete_namespace(), &review_of(p.clone()), &policy);
        assert_eq!(m.services, [("models".to_string(), "llm".to_string())]);
        let mut index = complete_namespace();
        index.apply_service("models", "llm", ServiceFacts::default());
        assert!(!misses(&index, &review_of(p.clone()), &policy).any());
        // The check off (no allowed hosts): nothing asked.
        assert!(!misses(&complete_namespace(), &review_of(p), &Policy::default()).any());
        // A fetched ExternalName answers where the cache knows nothing.
        let live = LiveView::from_index(complete_namespace());
        let v = Confirmed {
            live: &live,
            extra: Some(view(json!([{"apiVersion":"v1","kind":"Service",
                "metadata":{"name":"llm","namespace":"models"},
                "spec":{"type":"ExternalName","externalName":"api.openai.com"}}]))),
        };
        assert_eq!(
            v.service("models", "llm").unwrap().external(),
            Some("api.openai.com")
        );
    }

    #[test]
    fn a_fetched_class_counts_where_the_cache_has_none() {
        let live = LiveView::from_index(view(json!([spc("old")])));
        let v = Confirmed {
            live: &live,
            extra: Some(view(json!([spc("fresh")]))),
        };
        assert_eq!(v.secret_provider_class(NS, "fresh"), Some(true));
        assert_eq!(v.secret_provider_class(NS, "old"), Some(true));
        assert_eq!(v.secret_provider_class(NS, "typo"), Some(false));
        // Where the API is not served, a fetched answer does not make it known.
        let unknown = LiveView::from_index(Index::new());
        let v = Confirmed {
            live: &unknown,
            extra: Some(view(json!([spc("fresh")]))),
        };
        assert_eq!(v.secret_provider_class(NS, "fresh"), None);
    }

    #[test]
    fn a_namespace_with_only_cilium_policies_needs_no_live_call_and_fetched_ones_fill_a_gap() {
        let cnp = json!({"apiVersion":"cilium.io/v2","kind":"CiliumNetworkPolicy",
            "metadata":{"name":"llm","namespace":NS},"spec":{"endpointSelector":{},"egress":[{}]}});
        let ccnp = json!({"apiVersion":"cilium.io/v2","kind":"CiliumClusterwideNetworkPolicy",
            "metadata":{"name":"base"},"spec":{"endpointSelector":{}}});
        let mut with_cnp = view(json!([
            {"apiVersion":"v1","kind":"Namespace","metadata":{"name":NS}},
            {"apiVersion":"v1","kind":"ServiceAccount","metadata":{"name":SA,"namespace":NS}},
            ccnp
        ]));
        let m = misses(&with_cnp, &review_of(hardened_pod()), &Policy::default());
        assert!(m.network_policies && m.cilium, "{m:?}");
        with_cnp.apply_cilium_policy(CiliumPolicy::from_object(&cnp).unwrap());
        assert!(!misses(&with_cnp, &review_of(hardened_pod()), &Policy::default()).any());

        let live = LiveView::from_index(view(json!([ccnp])));
        let v = Confirmed {
            live: &live,
            extra: Some(view(json!([cnp]))),
        };
        let mut names: Vec<String> = v
            .cilium_policies(NS)
            .unwrap()
            .iter()
            .map(|p| p.describe())
            .collect();
        names.sort();
        assert_eq!(
            names,
            [
                "CiliumClusterwideNetworkPolicy base",
                "CiliumNetworkPolicy agents/llm"
            ]
        );
    }

    #[test]
    fn cached_network_policies_win_over_fetched_ones() {
        let live = LiveView::from_index(complete_namespace());
        let fetched = view(json!([
            {"apiVersion":"networking.k8s.io/v1","kind":"NetworkPolicy","metadata":{"name":"other","namespace":NS},
                "spec":{"podSelector":{}}}
        ]));
        let v = Confirmed {
            live: &live,
            extra: Some(fetched),
        };
        let names: Vec<_> = v
            .network_policies(NS)
            .iter()
            .map(|p| p.metadata.name.clone().unwrap())
            .collect();
        assert_eq!(names, ["deny"]);
    }

    /// How the server drives any view: read, confirm, answer. Its future must be `Send` for
    /// axum, whatever the view; this test fails to compile otherwise.
    async fn judge<V: Confirm>(
        view: &V,
        body: &[u8],
        policy: &Policy,
    ) -> crate::admission::Outcome {
        match crate::admission::read(body) {
            Ok(review) => {
                let confirmed = view.confirm(&review, policy).await;
                crate::admission::answer(
                    &review,
                    crate::admission::Endpoint::Validate,
                    policy,
                    &confirmed,
                )
            }
            Err(outcome) => *outcome,
        }
    }

    fn is_send<F: Future + Send>(f: F) -> F {
        f
    }

    #[tokio::test]
    async fn server_can_confirm_and_answer_with_either_view() {
        let policy = Policy::default();
        let body = serde_json::to_vec(
            &json!({"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview",
            "request":{"uid":"u1","kind":{"group":"","version":"v1","kind":"Pod"},
                "resource":{"group":"","version":"v1","resource":"pods"},"operation":"CREATE",
                "namespace":NS,"userInfo":{"username":"dev"},"object":hardened_pod()}}),
        )
        .unwrap();
        let live = LiveView::from_index(complete_namespace());
        let from_live = is_send(judge(&live, &body, &policy)).await;
        let stat = StaticView {
            index: complete_namespace(),
        };
        let from_static = is_send(judge(&stat, &body, &policy)).await;
        assert_eq!(from_live.summary.result, from_static.summary.result);
        assert_eq!(from_live.body, from_static.body);
    }

    #[tokio::test]
    async fn without_an_api_server_confirm_answers_from_the_cache() {
        let live = LiveView::from_index(Index::new());
        let v = live
            .confirm(&review_of(hardened_pod()), &Policy::default())
            .await;
        assert!(v.extra.is_none());
        assert!(v.namespace_labels(NS).is_none());
        assert!(!v.service_account_exists(NS, SA));
    }
}

//! Kinds of optional APIs, watched only where the cluster serves them: SecretProviderClasses
//! (`secrets-store.csi.x-k8s.io/v1`, from the Secrets Store CSI driver) and Cilium's policies
//! (`cilium.io/v2`). They come from CRDs the project does not own, so they are watched as
//! [`DynamicObject`]s and read through the engine's own small model of them.
//!
//! Discovery asks the API server whether the group-version serves the resource. Not served:
//! a warning says what is not judged because of it, the kind's cache metrics say
//! `served = 0`, and the kind stops holding up readiness (a missing CRD is a fact about the
//! cluster, not a cache still syncing). The question is asked again at every interval
//! (`serve --discovery-interval`, 60 s by default), so installing the CRD later starts the
//! watch without a restart.

use super::feed::Feed;
use super::live::{LiveView, Readiness};
use crate::engine::checks::{default_deny_egress, secret_provider_class};
use crate::engine::egress::cilium_policy::CiliumPolicy;
use crate::engine::review::{SANDBOX_EXTENSIONS_GROUP, SandboxRef, Subject};
use crate::engine::view::{
    CILIUM_CLUSTERWIDE_NETWORK_POLICY, CILIUM_NETWORK_POLICY, Index, SANDBOX_CLAIM,
    SANDBOX_TEMPLATE, SANDBOX_WARM_POOL, SECRET_PROVIDER_CLASS, SandboxFacts,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Client;
use kube::api::{Api, ApiResource, DynamicObject, PartialObjectMeta};
use kube::runtime::watcher::{self, watcher};
use std::sync::Arc;
use std::time::Duration;

/// After a failed discovery call (API server away), the next try comes sooner.
const RETRY_AFTER_ERROR: Duration = Duration::from_secs(5);

/// One resource of an optional API.
#[derive(Debug)]
pub struct OptionalApi {
    pub kind: &'static str,
    pub group: &'static str,
    pub version: &'static str,
    pub plural: &'static str,
    /// What goes unjudged while the API is not served, for the log line.
    pub unjudged: fn() -> String,
}

pub const SECRET_PROVIDER_CLASSES: OptionalApi = OptionalApi {
    kind: SECRET_PROVIDER_CLASS,
    group: "secrets-store.csi.x-k8s.io",
    version: "v1",
    plural: "secretproviderclasses",
    unjudged: || {
        format!(
            "SecretProviderClasses are not checked: the secrets-store mutation injects whatever class it is given and {} says nothing",
            secret_provider_class::CHECK.id
        )
    },
};

pub const CILIUM_NETWORK_POLICIES: OptionalApi = OptionalApi {
    kind: CILIUM_NETWORK_POLICY,
    group: "cilium.io",
    version: "v2",
    plural: "ciliumnetworkpolicies",
    unjudged: || {
        format!(
            "CiliumNetworkPolicies do not count for {}",
            default_deny_egress::CHECK.id
        )
    },
};

pub const CILIUM_CLUSTERWIDE_NETWORK_POLICIES: OptionalApi = OptionalApi {
    kind: CILIUM_CLUSTERWIDE_NETWORK_POLICY,
    group: "cilium.io",
    version: "v2",
    plural: "ciliumclusterwidenetworkpolicies",
    unjudged: || {
        format!(
            "CiliumClusterwideNetworkPolicies do not count for {}",
            default_deny_egress::CHECK.id
        )
    },
};

pub const SANDBOX_TEMPLATES: OptionalApi = OptionalApi {
    kind: SANDBOX_TEMPLATE,
    group: SANDBOX_EXTENSIONS_GROUP,
    version: "v1beta1",
    plural: "sandboxtemplates",
    unjudged: || {
        "SandboxClaims are judged without their template (their env always, as if it let claims inject it), and references to missing templates are not reported".to_string()
    },
};

/// Sandboxes are not watched (nothing judged reads them); `audit` lists them where served.
pub const SANDBOXES: OptionalApi = OptionalApi {
    kind: "Sandbox",
    group: crate::engine::review::SANDBOX_GROUP,
    version: "v1beta1",
    plural: "sandboxes",
    unjudged: || "Sandboxes are not audited".to_string(),
};

pub const SANDBOX_WARM_POOLS: OptionalApi = OptionalApi {
    kind: SANDBOX_WARM_POOL,
    group: SANDBOX_EXTENSIONS_GROUP,
    version: "v1beta1",
    plural: "sandboxwarmpools",
    unjudged: || {
        "SandboxClaims are judged without their warm pool, and references to missing pools are not reported".to_string()
    },
};

pub const SANDBOX_CLAIMS: OptionalApi = OptionalApi {
    kind: SANDBOX_CLAIM,
    group: SANDBOX_EXTENSIONS_GROUP,
    version: "v1beta1",
    plural: "sandboxclaims",
    unjudged: || {
        "approvals on a SandboxTemplate do not reach the Sandboxes its claims take".to_string()
    },
};

impl OptionalApi {
    pub fn api_version(&self) -> String {
        format!("{}/{}", self.group, self.version)
    }

    pub fn resource(&self) -> ApiResource {
        ApiResource {
            group: self.group.into(),
            version: self.version.into(),
            api_version: self.api_version(),
            kind: self.kind.into(),
            plural: self.plural.into(),
        }
    }

    /// Whether the API server serves this resource. A group-version it does not know is
    /// answered 404, which means "not served", not an error.
    pub async fn served(&self, client: &Client) -> Result<bool, kube::Error> {
        match client.list_api_group_resources(&self.api_version()).await {
            Ok(list) => Ok(list.resources.iter().any(|r| r.name == self.plural)),
            Err(kube::Error::Api(status)) if status.code == 404 => Ok(false),
            Err(e) => Err(e),
        }
    }
}

/// How one optional kind is watched once served.
pub(crate) trait OptionalFeed: Feed {
    const API: &'static OptionalApi;
    fn start(client: &Client, view: &LiveView, ready: &Readiness);
}

/// The watcher configuration every kind shares (see `super::start`).
fn cfg() -> watcher::Config {
    watcher::Config::default().any_semantic()
}

/// Looks for the API now and, while it is not served, every `interval`; starts the watch
/// once it is.
pub(crate) fn watch_when_served<F: OptionalFeed>(
    client: Client,
    view: Arc<LiveView>,
    ready: Readiness,
    interval: Duration,
) {
    tokio::spawn(async move {
        let api = F::API;
        let api_version = api.api_version();
        let mut told = false;
        loop {
            let stats = view.stats.kind(api.kind);
            let wait = match api.served(&client).await {
                Ok(true) => {
                    if let Some(k) = stats {
                        k.set_served(true);
                    }
                    tracing::info!(
                        kind = api.kind,
                        api_version,
                        "API served; watching this kind"
                    );
                    F::start(&client, &view, &ready);
                    return;
                }
                Ok(false) => {
                    if let Some(k) = stats {
                        k.set_served(false);
                    }
                    if !told {
                        tracing::warn!(
                            kind = api.kind,
                            api_version,
                            interval_s = interval.as_secs_f64(),
                            "API not served: {}; looking again at every interval",
                            (api.unjudged)()
                        );
                        told = true;
                    }
                    // Nothing to wait for: readiness must not hang on a CRD that is absent.
                    ready.state.synced(api.kind);
                    interval
                }
                Err(e) => {
                    tracing::warn!(kind = api.kind, api_version, error = %e, "API discovery failed; retrying");
                    RETRY_AFTER_ERROR.min(interval)
                }
            };
            tokio::time::sleep(wait).await;
        }
    });
}

/// SecretProviderClasses, metadata only: their existence is all the engine asks about.
pub(crate) struct SecretProviderClasses;
impl Feed for SecretProviderClasses {
    type Raw = PartialObjectMeta<DynamicObject>;
    type Obj = (String, String);
    const KIND: &'static str = SECRET_PROVIDER_CLASS;
    fn convert(raw: Self::Raw) -> Option<(String, String)> {
        Some((
            raw.metadata.namespace.unwrap_or_default(),
            raw.metadata.name.unwrap_or_default(),
        ))
    }
    fn apply(index: &mut Index, (ns, name): (String, String)) {
        index.apply_secret_provider_class(&ns, &name);
    }
    fn delete(index: &mut Index, namespace: &str, name: &str) {
        index.delete_secret_provider_class(namespace, name);
    }
    fn synced(index: &mut Index) {
        index.set_served(Self::KIND, true);
    }
}
impl OptionalFeed for SecretProviderClasses {
    const API: &'static OptionalApi = &SECRET_PROVIDER_CLASSES;
    fn start(client: &Client, view: &LiveView, ready: &Readiness) {
        // Metadata-only requests: the class's spec is never transferred.
        let api: Api<PartialObjectMeta<DynamicObject>> =
            Api::all_with(client.clone(), &Self::API.resource());
        super::feed::spawn::<Self, _>(watcher(api, cfg()), view, ready);
    }
}

/// An agent-sandbox object read through the engine's own reader: `(namespace, name, what it
/// is)`; one that does not fit is logged and skipped.
fn sandbox_object(raw: DynamicObject, kind: &str) -> Option<(String, String, Subject)> {
    let ns = raw.metadata.namespace.clone().unwrap_or_default();
    let name = raw.metadata.name.clone().unwrap_or_default();
    let object = serde_json::json!({"metadata": {"name": name, "namespace": ns},
        "spec": raw.data.get("spec").cloned().unwrap_or_default()});
    match Subject::from_value(kind, object) {
        Ok(s) => Some((ns, name, s)),
        Err(e) => {
            tracing::warn!(kind, namespace = %ns, name = %name, error = %e, "skipping object that does not fit its kind");
            None
        }
    }
}

/// SandboxTemplates: whether claims may add env, and their Pods' labels.
pub(crate) struct SandboxTemplates;
impl Feed for SandboxTemplates {
    type Raw = DynamicObject;
    type Obj = (String, String, SandboxFacts);
    const KIND: &'static str = SANDBOX_TEMPLATE;
    fn convert(raw: DynamicObject) -> Option<Self::Obj> {
        let (ns, name, subject) = sandbox_object(raw, Self::KIND)?;
        Some((ns, name, SandboxFacts::of(&subject)?))
    }
    fn apply(index: &mut Index, (ns, name, facts): Self::Obj) {
        index.apply_sandbox_template(&ns, &name, facts);
    }
    fn delete(index: &mut Index, namespace: &str, name: &str) {
        index.delete_sandbox_template(namespace, name);
    }
    fn synced(index: &mut Index) {
        index.set_served(Self::KIND, true);
    }
}
impl OptionalFeed for SandboxTemplates {
    const API: &'static OptionalApi = &SANDBOX_TEMPLATES;
    fn start(client: &Client, view: &LiveView, ready: &Readiness) {
        let api: Api<DynamicObject> = Api::all_with(client.clone(), &Self::API.resource());
        super::feed::spawn::<Self, _>(watcher(api, cfg()), view, ready);
    }
}

/// SandboxWarmPools: the template each names.
pub(crate) struct SandboxWarmPools;
impl Feed for SandboxWarmPools {
    type Raw = DynamicObject;
    type Obj = (String, String, String);
    const KIND: &'static str = SANDBOX_WARM_POOL;
    fn convert(raw: DynamicObject) -> Option<Self::Obj> {
        match sandbox_object(raw, Self::KIND)? {
            (ns, name, Subject::SandboxRef(r)) => match *r {
                SandboxRef::WarmPool(p) => Some((ns, name, p.template)),
                SandboxRef::Claim(_) => None,
            },
            _ => None,
        }
    }
    fn apply(index: &mut Index, (ns, name, template): Self::Obj) {
        index.apply_sandbox_warm_pool(&ns, &name, &template);
    }
    fn delete(index: &mut Index, namespace: &str, name: &str) {
        index.delete_sandbox_warm_pool(namespace, name);
    }
    fn synced(index: &mut Index) {
        index.set_served(Self::KIND, true);
    }
}
impl OptionalFeed for SandboxWarmPools {
    const API: &'static OptionalApi = &SANDBOX_WARM_POOLS;
    fn start(client: &Client, view: &LiveView, ready: &Readiness) {
        let api: Api<DynamicObject> = Api::all_with(client.clone(), &Self::API.resource());
        super::feed::spawn::<Self, _>(watcher(api, cfg()), view, ready);
    }
}

/// SandboxClaims: the warm pool each names (the link from a Sandbox a claim took to its
/// template, for approvals).
pub(crate) struct SandboxClaims;
impl Feed for SandboxClaims {
    type Raw = DynamicObject;
    type Obj = (String, String, String);
    const KIND: &'static str = SANDBOX_CLAIM;
    fn convert(raw: DynamicObject) -> Option<Self::Obj> {
        match sandbox_object(raw, Self::KIND)? {
            (ns, name, Subject::SandboxRef(r)) => match *r {
                SandboxRef::Claim(c) => Some((ns, name, c.warm_pool)),
                SandboxRef::WarmPool(_) => None,
            },
            _ => None,
        }
    }
    fn apply(index: &mut Index, (ns, name, pool): Self::Obj) {
        index.apply_sandbox_claim(&ns, &name, &pool);
    }
    fn delete(index: &mut Index, namespace: &str, name: &str) {
        index.delete_sandbox_claim(namespace, name);
    }
    fn synced(index: &mut Index) {
        index.set_served(Self::KIND, true);
    }
}
impl OptionalFeed for SandboxClaims {
    const API: &'static OptionalApi = &SANDBOX_CLAIMS;
    fn start(client: &Client, view: &LiveView, ready: &Readiness) {
        let api: Api<DynamicObject> = Api::all_with(client.clone(), &Self::API.resource());
        super::feed::spawn::<Self, _>(watcher(api, cfg()), view, ready);
    }
}

/// A Cilium policy as the engine models it; an object that does not fit is logged and
/// skipped, like any other kind's.
fn cilium_policy(raw: DynamicObject, kind: &str) -> Option<CiliumPolicy> {
    let ObjectMeta {
        name, namespace, ..
    } = raw.metadata;
    let mut object = serde_json::json!({
        "kind": kind,
        "metadata": {"name": name, "namespace": namespace},
    });
    for field in ["spec", "specs"] {
        if let Some(v) = raw.data.get(field) {
            object[field] = v.clone();
        }
    }
    match CiliumPolicy::from_object(&object) {
        Ok(p) => Some(p),
        Err(e) => {
            tracing::warn!(kind, namespace = ?object["metadata"]["namespace"], name = ?object["metadata"]["name"], error = %e, "skipping object that does not fit its kind");
            None
        }
    }
}

pub(crate) struct CiliumNetworkPolicies;
impl Feed for CiliumNetworkPolicies {
    type Raw = DynamicObject;
    type Obj = CiliumPolicy;
    const KIND: &'static str = CILIUM_NETWORK_POLICY;
    fn convert(raw: DynamicObject) -> Option<CiliumPolicy> {
        cilium_policy(raw, Self::KIND)
    }
    fn apply(index: &mut Index, obj: CiliumPolicy) {
        index.apply_cilium_policy(obj);
    }
    fn delete(index: &mut Index, namespace: &str, name: &str) {
        if !namespace.is_empty() {
            index.delete_cilium_policy(namespace, name);
        }
    }
    fn synced(index: &mut Index) {
        index.set_served(Self::KIND, true);
    }
}
impl OptionalFeed for CiliumNetworkPolicies {
    const API: &'static OptionalApi = &CILIUM_NETWORK_POLICIES;
    fn start(client: &Client, view: &LiveView, ready: &Readiness) {
        let api: Api<DynamicObject> = Api::all_with(client.clone(), &Self::API.resource());
        super::feed::spawn::<Self, _>(watcher(api, cfg()), view, ready);
    }
}

pub(crate) struct CiliumClusterwideNetworkPolicies;
impl Feed for CiliumClusterwideNetworkPolicies {
    type Raw = DynamicObject;
    type Obj = CiliumPolicy;
    const KIND: &'static str = CILIUM_CLUSTERWIDE_NETWORK_POLICY;
    fn convert(raw: DynamicObject) -> Option<CiliumPolicy> {
        cilium_policy(raw, Self::KIND)
    }
    fn apply(index: &mut Index, obj: CiliumPolicy) {
        index.apply_cilium_policy(obj);
    }
    fn delete(index: &mut Index, _namespace: &str, name: &str) {
        index.delete_cilium_policy("", name);
    }
    fn synced(index: &mut Index) {
        index.set_served(Self::KIND, true);
    }
}
impl OptionalFeed for CiliumClusterwideNetworkPolicies {
    const API: &'static OptionalApi = &CILIUM_CLUSTERWIDE_NETWORK_POLICIES;
    fn start(client: &Client, view: &LiveView, ready: &Readiness) {
        let api: Api<DynamicObject> = Api::all_with(client.clone(), &Self::API.resource());
        super::feed::spawn::<Self, _>(watcher(api, cfg()), view, ready);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::super::feed::Applier;
    use super::*;
    use crate::engine::view::ClusterView;
    use kube::runtime::watcher::Event;
    use serde_json::json;
    use std::sync::RwLock;

    fn dynamic(value: serde_json::Value) -> DynamicObject {
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn cilium_policies_are_unknown_until_the_first_list_and_then_counted() {
        let index = RwLock::new(Index::new());
        assert!(index.read().unwrap().cilium_policies("agents").is_none());
        let mut a = Applier::<CiliumNetworkPolicies>::default();
        let mut c = Applier::<CiliumClusterwideNetworkPolicies>::default();
        a.handle(&index, Event::Init);
        a.handle(&index, Event::InitApply(dynamic(json!({"apiVersion": "cilium.io/v2",
            "kind": "CiliumNetworkPolicy", "metadata": {"name": "llm", "namespace": "agents"},
            "spec": {"endpointSelector": {}, "egress": [{"toFQDNs": [{"matchName": "api.anthropic.com"}]}]}}))));
        a.handle(
            &index,
            Event::InitApply(dynamic(json!({"apiVersion": "cilium.io/v2",
            "kind": "CiliumNetworkPolicy", "metadata": {"name": "broken", "namespace": "agents"},
            "spec": {"egress": "not a list"}}))),
        );
        assert!(a.handle(&index, Event::InitDone));
        c.handle(
            &index,
            Event::Apply(dynamic(json!({"apiVersion": "cilium.io/v2",
            "kind": "CiliumClusterwideNetworkPolicy", "metadata": {"name": "base"},
            "spec": {"endpointSelector": {}}}))),
        );
        let names = |ns: &str| -> Vec<String> {
            let mut v: Vec<String> = index
                .read()
                .unwrap()
                .cilium_policies(ns)
                .unwrap()
                .iter()
                .map(|p| p.describe())
                .collect();
            v.sort();
            v
        };
        assert_eq!(
            names("agents"),
            [
                "CiliumClusterwideNetworkPolicy base",
                "CiliumNetworkPolicy agents/llm"
            ]
        );
        assert_eq!(names("other"), ["CiliumClusterwideNetworkPolicy base"]);
        c.handle(
            &index,
            Event::Delete(dynamic(json!({"apiVersion": "cilium.io/v2",
            "kind": "CiliumClusterwideNetworkPolicy", "metadata": {"name": "base"}}))),
        );
        assert_eq!(names("agents"), ["CiliumNetworkPolicy agents/llm"]);
    }

    #[test]
    fn secret_provider_classes_are_kept_by_name_once_listed() {
        let index = RwLock::new(Index::new());
        let raw: PartialObjectMeta<DynamicObject> = serde_json::from_value(json!({
            "apiVersion": "meta.k8s.io/v1", "kind": "PartialObjectMetadata",
            "metadata": {"name": "vault", "namespace": "agents"}}))
        .unwrap();
        assert_eq!(
            index
                .read()
                .unwrap()
                .secret_provider_class("agents", "vault"),
            None
        );
        let mut a = Applier::<SecretProviderClasses>::default();
        a.handle(&index, Event::Init);
        a.handle(&index, Event::InitDone);
        assert_eq!(
            index
                .read()
                .unwrap()
                .secret_provider_class("agents", "vault"),
            Some(false),
            "an empty list still tells that the API is served"
        );
        a.handle(&index, Event::Apply(raw.clone()));
        let idx = || index.read().unwrap();
        assert_eq!(idx().secret_provider_class("agents", "vault"), Some(true));
        assert_eq!(idx().secret_provider_class("other", "vault"), Some(false));
        a.handle(&index, Event::Delete(raw));
        assert_eq!(idx().secret_provider_class("agents", "vault"), Some(false));
    }
}

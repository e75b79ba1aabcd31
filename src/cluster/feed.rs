//! How each watched kind lands in the shared [`Index`].
//!
//! A [`Feed`] says what a watcher yields for one kind, what of it the index keeps, and how to
//! apply and delete it. [`Applier`] turns watcher events into index updates: single events
//! apply at once; a (re)list (`Init`, `InitApply`..., `InitDone`) is buffered, already
//! converted, and swapped in under one write lock, so readers never see a half-listed kind and
//! objects deleted while the watch was down disappear.

use super::live::{LiveView, Readiness};
use crate::engine::view::{
    DefaultLimits, Index, LEGACY_TOKEN_SECRET_TYPE, LIMIT_RANGE, RUNTIME_CLASS, SERVICE,
    ServiceFacts,
};
use futures::{Stream, StreamExt};
use k8s_openapi::api::core::v1::{LimitRange, Namespace, Secret, Service, ServiceAccount};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::api::node::v1::RuntimeClass;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Resource;
use kube::api::{DynamicObject, PartialObjectMeta};
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher;
use kube::runtime::watcher::Event;
use std::marker::PhantomData;
use std::sync::Arc;
use std::sync::{PoisonError, RwLock, RwLockWriteGuard};

/// One watched kind.
pub(crate) trait Feed: Send + 'static {
    /// What the watcher yields.
    type Raw: Resource + Send + 'static;
    /// What is kept until applied; built before the write lock is taken.
    type Obj: Send + 'static;
    /// The kind's name, as `Index::clear_kind` and `VIEW_KINDS` spell it.
    const KIND: &'static str;
    /// `None` when the object does not fit its kind (logged here, then skipped).
    fn convert(raw: Self::Raw) -> Option<Self::Obj>;
    fn apply(index: &mut Index, obj: Self::Obj);
    fn delete(index: &mut Index, namespace: &str, name: &str);
    /// Called once, under the same lock as the first list: for optional kinds, to record
    /// that the index now knows them.
    fn synced(_index: &mut Index) {}
}

fn write(index: &RwLock<Index>) -> RwLockWriteGuard<'_, Index> {
    index.write().unwrap_or_else(PoisonError::into_inner)
}

fn key(meta: &ObjectMeta) -> (&str, &str) {
    (
        meta.namespace.as_deref().unwrap_or_default(),
        meta.name.as_deref().unwrap_or_default(),
    )
}

/// Watcher events -> index updates for one kind.
pub(crate) struct Applier<F: Feed> {
    /// Objects of the list in progress, swapped in whole at `InitDone`.
    relist: Option<Vec<F::Obj>>,
    synced: bool,
    kind: PhantomData<F>,
}

impl<F: Feed> Default for Applier<F> {
    fn default() -> Self {
        Applier {
            relist: None,
            synced: false,
            kind: PhantomData,
        }
    }
}

impl<F: Feed> Applier<F> {
    /// Applies one event; `true` when it completed this kind's first list.
    pub(crate) fn handle(&mut self, index: &RwLock<Index>, event: Event<F::Raw>) -> bool {
        match event {
            Event::Apply(raw) => {
                if let Some(obj) = F::convert(raw) {
                    F::apply(&mut write(index), obj);
                }
            }
            Event::Delete(raw) => {
                // By key alone, so an object that no longer parses can still be removed.
                let (ns, name) = key(raw.meta());
                F::delete(&mut write(index), ns, name);
            }
            Event::Init => self.relist = Some(Vec::new()),
            Event::InitApply(raw) => {
                if let Some(obj) = F::convert(raw) {
                    self.relist.get_or_insert_with(Vec::new).push(obj);
                }
            }
            Event::InitDone => {
                let listed = self.relist.take().unwrap_or_default();
                let count = listed.len();
                {
                    let mut idx = write(index);
                    idx.clear_kind(F::KIND);
                    for obj in listed {
                        F::apply(&mut idx, obj);
                    }
                    if !self.synced {
                        F::synced(&mut idx);
                    }
                }
                tracing::debug!(kind = F::KIND, count, "list applied");
                return !std::mem::replace(&mut self.synced, true);
            }
        }
        false
    }
}

/// Parses an untyped object into its kind. Managed fields and annotations (the
/// last-applied-configuration copy doubles an object) are dropped first: no check reads them.
fn parse<K: Resource + serde::de::DeserializeOwned>(
    mut raw: DynamicObject,
    kind: &str,
) -> Option<K> {
    raw.metadata.managed_fields = None;
    raw.metadata.annotations = None;
    let ns = raw.metadata.namespace.clone().unwrap_or_default();
    let name = raw.metadata.name.clone().unwrap_or_default();
    match raw.try_parse::<K>() {
        Ok(obj) => Some(obj),
        Err(e) => {
            tracing::warn!(kind, namespace = %ns, name = %name, error = %e, "skipping object that does not fit its kind");
            None
        }
    }
}

fn name_only(meta: &ObjectMeta) -> ObjectMeta {
    ObjectMeta {
        namespace: meta.namespace.clone(),
        name: meta.name.clone(),
        ..Default::default()
    }
}

pub(crate) struct Namespaces;
impl Feed for Namespaces {
    type Raw = PartialObjectMeta<Namespace>;
    type Obj = Namespace;
    const KIND: &'static str = "Namespace";
    fn convert(raw: Self::Raw) -> Option<Namespace> {
        // Labels are all a namespace contributes (per-namespace mode, namespace selectors).
        let metadata = ObjectMeta {
            name: raw.metadata.name,
            labels: raw.metadata.labels,
            ..Default::default()
        };
        Some(Namespace {
            metadata,
            ..Default::default()
        })
    }
    fn apply(index: &mut Index, obj: Namespace) {
        index.apply_namespace(&obj);
    }
    fn delete(index: &mut Index, _namespace: &str, name: &str) {
        index.delete_namespace(name);
    }
}

pub(crate) struct ServiceAccounts;
impl Feed for ServiceAccounts {
    type Raw = DynamicObject;
    type Obj = (String, String, Option<bool>);
    const KIND: &'static str = "ServiceAccount";
    /// Keeps the name and `automountServiceAccountToken`, nothing else.
    fn convert(raw: DynamicObject) -> Option<(String, String, Option<bool>)> {
        let sa: ServiceAccount = parse(raw, Self::KIND)?;
        Some((
            sa.metadata.namespace.unwrap_or_default(),
            sa.metadata.name.unwrap_or_default(),
            sa.automount_service_account_token,
        ))
    }
    fn apply(index: &mut Index, (ns, name, automount): (String, String, Option<bool>)) {
        index.apply_service_account_name(&ns, &name, automount);
    }
    fn delete(index: &mut Index, namespace: &str, name: &str) {
        index.delete_service_account(namespace, name);
    }
}

/// Fed by a metadata watch with the field selector `type=kubernetes.io/service-account-token`:
/// every object it yields is a legacy token, and only its namespace and name are kept.
pub(crate) struct LegacyTokenSecrets;
impl Feed for LegacyTokenSecrets {
    type Raw = PartialObjectMeta<Secret>;
    type Obj = ObjectMeta;
    const KIND: &'static str = "Secret";
    fn convert(raw: Self::Raw) -> Option<ObjectMeta> {
        Some(name_only(&raw.metadata))
    }
    fn apply(index: &mut Index, meta: ObjectMeta) {
        index.apply_secret_type(&meta, Some(LEGACY_TOKEN_SECRET_TYPE));
    }
    fn delete(index: &mut Index, namespace: &str, name: &str) {
        index.delete_secret(namespace, name);
    }
}

/// Fed by a metadata watch: a RuntimeClass's name is all `sandboxed-runtime` asks of it.
pub(crate) struct RuntimeClasses;
impl Feed for RuntimeClasses {
    type Raw = PartialObjectMeta<RuntimeClass>;
    type Obj = String;
    const KIND: &'static str = RUNTIME_CLASS;
    fn convert(raw: Self::Raw) -> Option<String> {
        raw.metadata.name
    }
    fn apply(index: &mut Index, name: String) {
        index.apply_runtime_class(&name);
    }
    fn delete(index: &mut Index, _namespace: &str, name: &str) {
        index.delete_runtime_class(name);
    }
    fn synced(index: &mut Index) {
        // A cluster with no RuntimeClass at all: every name is then missing, not unknown.
        index.set_runtime_classes_known();
    }
}

/// Services, kept as their type and external name (`in-cluster-inference`: an
/// `ExternalName` Service is an alias for a host that may be outside the cluster).
pub(crate) struct Services;
impl Feed for Services {
    type Raw = DynamicObject;
    type Obj = (String, String, ServiceFacts);
    const KIND: &'static str = SERVICE;
    fn convert(raw: DynamicObject) -> Option<(String, String, ServiceFacts)> {
        let service: Service = parse(raw, Self::KIND)?;
        Some((
            service.metadata.namespace.clone().unwrap_or_default(),
            service.metadata.name.clone().unwrap_or_default(),
            ServiceFacts::of(&service),
        ))
    }
    fn apply(index: &mut Index, (ns, name, facts): (String, String, ServiceFacts)) {
        index.apply_service(&ns, &name, facts);
    }
    fn delete(index: &mut Index, namespace: &str, name: &str) {
        index.delete_service(namespace, name);
    }
}

/// LimitRanges, kept as the default limits they give a container (`resource-limits`).
pub(crate) struct LimitRanges;
impl Feed for LimitRanges {
    type Raw = DynamicObject;
    type Obj = (String, String, DefaultLimits);
    const KIND: &'static str = LIMIT_RANGE;
    fn convert(raw: DynamicObject) -> Option<(String, String, DefaultLimits)> {
        let range: LimitRange = parse(raw, Self::KIND)?;
        Some((
            range.metadata.namespace.clone().unwrap_or_default(),
            range.metadata.name.clone().unwrap_or_default(),
            DefaultLimits::of(&range),
        ))
    }
    fn apply(index: &mut Index, (ns, name, defaults): (String, String, DefaultLimits)) {
        index.apply_limit_range(&ns, &name, defaults);
    }
    fn delete(index: &mut Index, namespace: &str, name: &str) {
        index.delete_limit_range(namespace, name);
    }
}

pub(crate) struct NetworkPolicies;
impl Feed for NetworkPolicies {
    type Raw = DynamicObject;
    type Obj = NetworkPolicy;
    const KIND: &'static str = "NetworkPolicy";
    fn convert(raw: DynamicObject) -> Option<NetworkPolicy> {
        parse(raw, Self::KIND)
    }
    fn apply(index: &mut Index, obj: NetworkPolicy) {
        index.apply_network_policy(obj);
    }
    fn delete(index: &mut Index, namespace: &str, name: &str) {
        index.delete_network_policy(namespace, name);
    }
}

pub(crate) struct Roles;
impl Feed for Roles {
    type Raw = DynamicObject;
    type Obj = Role;
    const KIND: &'static str = "Role";
    fn convert(raw: DynamicObject) -> Option<Role> {
        parse(raw, Self::KIND)
    }
    fn apply(index: &mut Index, obj: Role) {
        index.apply_role(&obj);
    }
    fn delete(index: &mut Index, namespace: &str, name: &str) {
        index.delete_role(namespace, name);
    }
}

pub(crate) struct ClusterRoles;
impl Feed for ClusterRoles {
    type Raw = DynamicObject;
    type Obj = ClusterRole;
    const KIND: &'static str = "ClusterRole";
    fn convert(raw: DynamicObject) -> Option<ClusterRole> {
        parse(raw, Self::KIND)
    }
    fn apply(index: &mut Index, obj: ClusterRole) {
        index.apply_cluster_role(&obj);
    }
    fn delete(index: &mut Index, _namespace: &str, name: &str) {
        index.delete_cluster_role(name);
    }
}

pub(crate) struct RoleBindings;
impl Feed for RoleBindings {
    type Raw = DynamicObject;
    type Obj = RoleBinding;
    const KIND: &'static str = "RoleBinding";
    fn convert(raw: DynamicObject) -> Option<RoleBinding> {
        parse(raw, Self::KIND)
    }
    fn apply(index: &mut Index, obj: RoleBinding) {
        index.apply_role_binding(&obj);
    }
    fn delete(index: &mut Index, namespace: &str, name: &str) {
        index.delete_role_binding(namespace, name);
    }
}

pub(crate) struct ClusterRoleBindings;
impl Feed for ClusterRoleBindings {
    type Raw = DynamicObject;
    type Obj = ClusterRoleBinding;
    const KIND: &'static str = "ClusterRoleBinding";
    fn convert(raw: DynamicObject) -> Option<ClusterRoleBinding> {
        parse(raw, Self::KIND)
    }
    fn apply(index: &mut Index, obj: ClusterRoleBinding) {
        index.apply_cluster_role_binding(&obj);
    }
    fn delete(index: &mut Index, _namespace: &str, name: &str) {
        index.delete_cluster_role_binding(name);
    }
}

/// Runs one kind's watch into the shared index, marking the kind synced at the end of its
/// first list, and counting events and errors for `/metrics`.
pub(crate) fn spawn<F, S>(stream: S, view: &LiveView, ready: &Readiness)
where
    F: Feed,
    S: Stream<Item = watcher::Result<watcher::Event<F::Raw>>> + Send + 'static,
{
    let index = Arc::clone(&view.index);
    let state = Arc::clone(&ready.state);
    let stats = Arc::clone(&view.stats);
    tokio::spawn(async move {
        let mut applier = Applier::<F>::default();
        let mut stream = std::pin::pin!(stream.default_backoff());
        let kind_stats = stats.kind(F::KIND);
        while let Some(item) = stream.next().await {
            match item {
                Ok(event) => {
                    if let Some(k) = kind_stats {
                        k.event();
                        if matches!(event, watcher::Event::Init) {
                            k.list_started();
                        }
                    }
                    if applier.handle(&index, event) {
                        state.synced(F::KIND);
                    }
                }
                Err(e) => {
                    if let Some(k) = kind_stats {
                        k.watch_error();
                    }
                    tracing::warn!(kind = F::KIND, error = %e, "watch failed; retrying after backoff")
                }
            }
        }
        tracing::error!(
            kind = F::KIND,
            "watch stream ended; this kind is no longer kept current"
        );
    });
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::engine::view::ClusterView;
    use serde_json::{Value, json};

    fn dynamic(value: Value) -> DynamicObject {
        serde_json::from_value(value).unwrap()
    }

    fn netpol(ns: &str, name: &str) -> DynamicObject {
        dynamic(
            json!({"apiVersion":"networking.k8s.io/v1","kind":"NetworkPolicy",
            "metadata":{"name":name,"namespace":ns,"managedFields":[{"manager":"kubectl"}],
                "annotations":{"kubectl.kubernetes.io/last-applied-configuration":"{...}"}},
            "spec":{"podSelector":{},"policyTypes":["Egress"]}}),
        )
    }

    fn service_account(ns: &str, name: &str) -> DynamicObject {
        dynamic(json!({"apiVersion":"v1","kind":"ServiceAccount",
            "metadata":{"name":name,"namespace":ns}, "automountServiceAccountToken": false}))
    }

    fn names(index: &RwLock<Index>, ns: &str) -> Vec<String> {
        let idx = index.read().unwrap();
        let mut out: Vec<String> = idx
            .network_policies(ns)
            .iter()
            .map(|p| p.metadata.name.clone().unwrap_or_default())
            .collect();
        out.sort();
        out
    }

    #[test]
    fn single_events_apply_and_delete_at_once() {
        let index = RwLock::new(Index::new());
        let mut a = Applier::<NetworkPolicies>::default();
        assert!(!a.handle(&index, Event::Apply(netpol("agents", "deny"))));
        assert_eq!(names(&index, "agents"), ["deny"]);
        a.handle(&index, Event::Delete(netpol("agents", "deny")));
        assert!(names(&index, "agents").is_empty());
    }

    #[test]
    fn relist_replaces_the_kind_and_drops_objects_deleted_meanwhile() {
        let index = RwLock::new(Index::new());
        let mut a = Applier::<NetworkPolicies>::default();
        a.handle(&index, Event::Init);
        a.handle(&index, Event::InitApply(netpol("agents", "old")));
        a.handle(&index, Event::InitApply(netpol("agents", "kept")));
        assert!(
            names(&index, "agents").is_empty(),
            "a list in progress is not visible yet"
        );
        assert!(
            a.handle(&index, Event::InitDone),
            "the first list completes the kind's sync"
        );
        assert_eq!(names(&index, "agents"), ["kept", "old"]);

        // The watch breaks, `old` is deleted meanwhile, the relist no longer names it.
        a.handle(&index, Event::Init);
        a.handle(&index, Event::InitApply(netpol("agents", "kept")));
        a.handle(&index, Event::InitApply(netpol("other", "new")));
        assert_eq!(
            names(&index, "agents"),
            ["kept", "old"],
            "readers keep the old state until InitDone"
        );
        assert!(
            !a.handle(&index, Event::InitDone),
            "only the first list reports the sync"
        );
        assert_eq!(names(&index, "agents"), ["kept"]);
        assert_eq!(names(&index, "other"), ["new"]);
    }

    #[test]
    fn relist_of_one_kind_leaves_other_kinds_alone() {
        let index = RwLock::new(Index::new());
        let mut sas = Applier::<ServiceAccounts>::default();
        sas.handle(&index, Event::Apply(service_account("agents", "claw")));
        let mut nps = Applier::<NetworkPolicies>::default();
        nps.handle(&index, Event::Init);
        nps.handle(&index, Event::InitDone);
        assert!(
            index
                .read()
                .unwrap()
                .service_account_exists("agents", "claw")
        );

        sas.handle(&index, Event::Init);
        sas.handle(&index, Event::InitApply(service_account("agents", "other")));
        sas.handle(&index, Event::InitDone);
        let idx = index.read().unwrap();
        assert!(!idx.service_account_exists("agents", "claw"));
        assert!(idx.service_account_exists("agents", "other"));
    }

    #[test]
    fn relisted_bindings_stop_granting_roles_they_no_longer_grant() {
        let rb = |name: &str, sa: &str| {
            dynamic(
                json!({"apiVersion":"rbac.authorization.k8s.io/v1","kind":"RoleBinding",
                "metadata":{"name":name,"namespace":"agents"},
                "roleRef":{"apiGroup":"rbac.authorization.k8s.io","kind":"ClusterRole","name":"cluster-admin"},
                "subjects":[{"kind":"ServiceAccount","name":sa,"namespace":"agents"}]}),
            )
        };
        let index = RwLock::new(Index::new());
        let mut a = Applier::<RoleBindings>::default();
        a.handle(&index, Event::Apply(rb("admin", "claw")));
        assert_eq!(index.read().unwrap().bound_roles("agents", "claw").len(), 1);
        a.handle(&index, Event::Init);
        a.handle(&index, Event::InitApply(rb("admin-other", "other")));
        a.handle(&index, Event::InitDone);
        let idx = index.read().unwrap();
        assert!(idx.bound_roles("agents", "claw").is_empty());
        assert_eq!(idx.bound_roles("agents", "other").len(), 1);
    }

    #[test]
    fn object_that_does_not_fit_its_kind_is_skipped_and_the_list_still_completes() {
        let index = RwLock::new(Index::new());
        let mut a = Applier::<NetworkPolicies>::default();
        let broken = dynamic(
            json!({"apiVersion":"networking.k8s.io/v1","kind":"NetworkPolicy",
            "metadata":{"name":"broken","namespace":"agents"},"spec":{"podSelector":"not an object"}}),
        );
        a.handle(&index, Event::Init);
        a.handle(&index, Event::InitApply(broken.clone()));
        a.handle(&index, Event::InitApply(netpol("agents", "good")));
        assert!(a.handle(&index, Event::InitDone));
        assert_eq!(names(&index, "agents"), ["good"]);
        // A delete needs only the key, so even an unreadable object can leave.
        a.handle(&index, Event::Apply(netpol("agents", "broken")));
        a.handle(&index, Event::Delete(broken));
        assert_eq!(names(&index, "agents"), ["good"]);
    }

    #[test]
    fn kept_network_policies_carry_no_managed_fields_or_annotations() {
        let index = RwLock::new(Index::new());
        Applier::<NetworkPolicies>::default()
            .handle(&index, Event::Apply(netpol("agents", "deny")));
        let idx = index.read().unwrap();
        let kept = &idx.network_policies("agents")[0];
        assert!(kept.metadata.managed_fields.is_none());
        assert!(kept.metadata.annotations.is_none());
        assert!(kept.spec.is_some());
    }

    #[test]
    fn secret_data_never_reaches_the_index() {
        // Even if a server sent a whole Secret where metadata was asked for, the metadata
        // type has nowhere to put its data, and the index keeps only namespace and name.
        let raw: PartialObjectMeta<Secret> = serde_json::from_value(json!({
            "apiVersion":"v1","kind":"Secret",
            "metadata":{"name":"legacy","namespace":"agents","labels":{"a":"b"},
                "annotations":{"kubernetes.io/service-account.name":"claw"}},
            "type":"kubernetes.io/service-account-token",
            "data":{"token":"dG9wLXNlY3JldC10b2tlbg=="},
            "stringData":{"password":"hunter2"}}))
        .unwrap();
        assert!(!format!("{raw:?}").contains("dG9wLXNlY3JldC10b2tlbg"));
        let index = RwLock::new(Index::new());
        let mut a = Applier::<LegacyTokenSecrets>::default();
        a.handle(&index, Event::Init);
        a.handle(&index, Event::InitApply(raw));
        a.handle(&index, Event::InitDone);
        let idx = index.read().unwrap();
        assert!(idx.is_legacy_token_secret("agents", "legacy"));
        let dump = format!("{idx:?}");
        assert!(!dump.contains("dG9wLXNlY3JldC10b2tlbg"));
        assert!(!dump.contains("hunter2"));
        assert!(!dump.contains("service-account.name"));
    }

    #[test]
    fn namespace_keeps_its_labels_for_per_namespace_modes() {
        let raw: PartialObjectMeta<Namespace> = serde_json::from_value(json!({
            "apiVersion":"meta.k8s.io/v1","kind":"PartialObjectMetadata",
            "metadata":{"name":"agents","labels":{"openclaw.io/mode":"warn"}}}))
        .unwrap();
        let index = RwLock::new(Index::new());
        let mut a = Applier::<Namespaces>::default();
        a.handle(&index, Event::Apply(raw.clone()));
        let labels = index.read().unwrap().namespace_labels("agents").unwrap();
        assert_eq!(
            labels.get("openclaw.io/mode").map(String::as_str),
            Some("warn")
        );
        a.handle(&index, Event::Delete(raw));
        assert!(index.read().unwrap().namespace_labels("agents").is_none());
    }
}

//! What the engine may ask of the cluster, and an indexed in-memory answer to it.
//!
//! `ClusterView` is the only door from the pure engine to cluster state. `Index` holds the
//! objects the checks need, keyed for direct lookup (never a scan of the cluster), and is
//! shared by `StaticView` (manifests, for tests and `check`) and the live reflector-fed view.

use super::egress::cilium_policy::CiliumPolicy;
use super::selector::Labels;
use k8s_openapi::api::core::v1::{Namespace, Secret, ServiceAccount};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::api::rbac::v1::{
    ClusterRole, ClusterRoleBinding, PolicyRule, Role, RoleBinding, RoleRef, Subject,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Arc;

/// A role granted to a ServiceAccount, with how it is granted.
#[derive(Debug, Clone, PartialEq)]
pub struct BoundRole {
    /// `RoleBinding agents/read-config` or `ClusterRoleBinding agents-admin`.
    pub binding: String,
    /// Whether the grant holds across the cluster (a ClusterRoleBinding).
    pub cluster_wide: bool,
    /// How the subject was matched: `ServiceAccount`, `Group system:serviceaccounts:agents`, ...
    pub via: String,
    /// `Role` or `ClusterRole`.
    pub role_kind: String,
    pub role_name: String,
    /// The role's rules; `None` when the role is not (yet) known.
    pub rules: Option<Arc<Vec<PolicyRule>>>,
}

/// One door of [`ClusterView`]: what a check declares it reads ([`crate::engine::checks`]),
/// so that the live view knows what to confirm before judging and the checks' tests can fence
/// each check in (a read it did not declare fails the test).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Read {
    /// [`ClusterView::namespace_labels`]
    NamespaceLabels,
    /// [`ClusterView::service_account_exists`], [`ClusterView::service_account_automount`]
    ServiceAccounts,
    /// [`ClusterView::bound_roles`]
    BoundRoles,
    /// [`ClusterView::network_policies`]
    NetworkPolicies,
    /// [`ClusterView::cilium_policies`]
    CiliumPolicies,
    /// [`ClusterView::is_legacy_token_secret`]
    LegacyTokenSecrets,
    /// [`ClusterView::pod`], [`ClusterView::service_pods`]: the pods a CONNECT reaches
    Pods,
    /// [`ClusterView::secret_provider_class`]
    SecretProviderClasses,
    /// [`ClusterView::runtime_class`]
    RuntimeClasses,
    /// [`ClusterView::limit_range_defaults`]
    LimitRanges,
    /// [`ClusterView::config_map_keys`]
    ConfigMaps,
    /// [`ClusterView::service`]
    Services,
}

/// A set of [`Read`]s, copied by value (a review's reads are collected on the hot path).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Reads(u16);

impl Reads {
    pub const NONE: Reads = Reads(0);

    pub fn of(reads: &[Read]) -> Reads {
        reads.iter().fold(Reads::NONE, |acc, r| acc.with(*r))
    }

    #[must_use]
    pub fn with(self, read: Read) -> Reads {
        Reads(self.0 | 1 << read as u16)
    }

    #[must_use]
    pub fn union(self, other: Reads) -> Reads {
        Reads(self.0 | other.0)
    }

    pub fn contains(self, read: Read) -> bool {
        self.0 & (1 << read as u16) != 0
    }
}

/// Cluster state the checks consult. Implementations answer from indexed caches.
pub trait ClusterView {
    /// Labels of a namespace, `None` when it is not known.
    fn namespace_labels(&self, namespace: &str) -> Option<Labels>;
    /// Whether the ServiceAccount exists.
    fn service_account_exists(&self, namespace: &str, name: &str) -> bool;
    /// The ServiceAccount's own `automountServiceAccountToken`, when it is known and set.
    /// `Some(false)` means the ServiceAccount admission plugin mounts no token into Pods that
    /// leave the field unset.
    fn service_account_automount(&self, namespace: &str, name: &str) -> Option<bool>;
    /// Every role bound to the ServiceAccount, directly or through its groups.
    fn bound_roles(&self, namespace: &str, service_account: &str) -> Vec<BoundRole>;
    /// The NetworkPolicies of a namespace.
    fn network_policies(&self, namespace: &str) -> Vec<Arc<NetworkPolicy>>;
    /// Whether the named Secret is a legacy ServiceAccount token (by its type only).
    fn is_legacy_token_secret(&self, namespace: &str, name: &str) -> bool;
    /// A pod's labels and images, for requests that name a pod without carrying it
    /// (`kubectl exec`, `pods/proxy`): `Found` holds that one pod.
    fn pod(&self, namespace: &str, name: &str) -> PodLookup;
    /// The pods a Service's selector selects, for `services/proxy`: `Found` holds every one
    /// (none for a Service without a selector), `Missing` when there is no such Service.
    fn service_pods(&self, namespace: &str, name: &str) -> PodLookup;
    /// Whether a SecretProviderClass exists in the namespace; `None` when the view does not
    /// know SecretProviderClasses (the `secrets-store.csi.x-k8s.io` API is not served).
    fn secret_provider_class(&self, _namespace: &str, _name: &str) -> Option<bool> {
        None
    }
    /// The Cilium policies that may select pods of a namespace: its CiliumNetworkPolicies and
    /// every CiliumClusterwideNetworkPolicy; `None` when the view does not know Cilium
    /// policies (the `cilium.io/v2` API is not served).
    fn cilium_policies(&self, _namespace: &str) -> Option<Vec<Arc<CiliumPolicy>>> {
        None
    }
    /// Whether a RuntimeClass exists; `None` when the view does not know RuntimeClasses (an
    /// offline `check` given none).
    fn runtime_class(&self, _name: &str) -> Option<bool> {
        None
    }
    /// Which default limits the namespace's LimitRanges give a container that sets none.
    fn limit_range_defaults(&self, _namespace: &str) -> DefaultLimits {
        DefaultLimits::default()
    }
    /// The key names of a ConfigMap (never its values); `None` when not known (no such
    /// ConfigMap, or not looked up).
    fn config_map_keys(&self, _namespace: &str, _name: &str) -> Option<Arc<[String]>> {
        None
    }
    /// A Service's type and external name; `None` when not known.
    fn service(&self, _namespace: &str, _name: &str) -> Option<ServiceFacts> {
        None
    }
    /// The rules a binding in `binding_namespace` grants through `role_ref` (a ClusterRole's
    /// aggregated rules included); `None` when the role is not known.
    fn role_rules(
        &self,
        _binding_namespace: &str,
        _role_ref: &RoleRef,
    ) -> Option<Arc<Vec<PolicyRule>>> {
        None
    }
    /// The aggregated ClusterRoles whose `aggregationRule` selects a ClusterRole with these
    /// labels: they take its rules.
    fn aggregating_roles(&self, _labels: &Labels) -> Vec<String> {
        Vec::new()
    }
    /// Whether agent Pods may run in the namespace, by the view's cheap signal (a watch of agent
    /// Pods' keys by label selector): `false` answers a change there from memory.
    fn may_hold_agents(&self, _namespace: &str) -> bool {
        false
    }
    /// Every namespace [`ClusterView::may_hold_agents`] holds true for, sorted.
    fn namespaces_with_agents(&self) -> Vec<String> {
        Vec::new()
    }
    /// The Pods of a namespace as a lookup for this request found them; `None` when not
    /// looked up, or the lookup failed.
    fn running_agents(&self, _namespace: &str) -> Option<Arc<RunningAgents>> {
        None
    }
    /// agent-sandbox: what a `SandboxTemplate` says to claims. `Some(None)` for no such
    /// template, `None` when the view does not hold templates.
    fn sandbox_template(&self, _namespace: &str, _name: &str) -> Option<Option<SandboxFacts>> {
        None
    }
    /// agent-sandbox: the template a `SandboxWarmPool` names. `Some(None)` for no such pool,
    /// `None` when the view does not hold warm pools.
    fn sandbox_warm_pool(&self, _namespace: &str, _name: &str) -> Option<Option<String>> {
        None
    }
    /// agent-sandbox: the warm pool a `SandboxClaim` names. `Some(None)` for no such claim,
    /// `None` when the view does not hold claims.
    fn sandbox_claim(&self, _namespace: &str, _name: &str) -> Option<Option<String>> {
        None
    }
    /// agent-sandbox: the name of the namespace's `SandboxTemplate` whose name hashes to
    /// `hash` the way agent-sandbox's controller labels Pods (`agents.x-k8s.io/sandbox-
    /// template-ref-hash`); `None` when no held template (or more than one) does.
    fn sandbox_template_by_hash(&self, _namespace: &str, _hash: &str) -> Option<String> {
        None
    }
}

/// What a lookup found of the Pods of a namespace that may hold agents, for judging a change to
/// what their verdicts rest on (`engine::dependents`).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RunningAgents {
    /// The namespace is being deleted: everything in it is leaving.
    pub namespace_deleting: bool,
    /// The Pods listed (not yet finished), agents or not: the engine picks out agents.
    pub pods: Vec<super::pod::Pod>,
    /// Pods whose workload is being deleted (an owner up their controller chain is gone or has
    /// a deletion timestamp): they are leaving, as `helm uninstall` leaves them for a moment.
    pub leaving: BTreeSet<String>,
}

/// What a claim's judgement needs of a `SandboxTemplate`: whether claims may inject env, and
/// the labels its Pods carry (a claim's labels are added to them).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SandboxFacts {
    pub env_injection: bool,
    pub pod_labels: Labels,
}

impl SandboxFacts {
    /// The facts of a parsed `SandboxTemplate`; `None` for any other subject.
    pub fn of(subject: &super::review::Subject) -> Option<SandboxFacts> {
        match subject {
            super::review::Subject::Template(t) => t.sandbox.as_ref().map(|s| SandboxFacts {
                env_injection: s.env_injection,
                pod_labels: super::selector::labels_of(
                    t.template.metadata.as_ref().and_then(|m| m.labels.as_ref()),
                )
                .clone(),
            }),
            _ => None,
        }
    }
}

/// Kind names of the agent-sandbox objects the view holds.
pub const SANDBOX_TEMPLATE: &str = "SandboxTemplate";
pub const SANDBOX_WARM_POOL: &str = "SandboxWarmPool";
pub const SANDBOX_CLAIM: &str = "SandboxClaim";

/// All the view keeps of a Service: its type, and for an `ExternalName` Service the name it
/// resolves to (a DNS alias that may point anywhere, in the cluster or out of it).
///
/// Held for every Service of the cluster, so it is kept small: the type is one of the four
/// the API knows (no allocation), and an external name is kept only for `ExternalName`
/// Services, which alone resolve by it. Measured with its key in the index: about 230 bytes
/// a Service (100,000 Services of 20-character names added 22 MiB of resident memory).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ServiceFacts {
    /// `ClusterIP`, `NodePort`, `LoadBalancer`, `ExternalName`, or `other`; `ClusterIP`
    /// when the Service does not say.
    pub type_: &'static str,
    pub external_name: Option<String>,
}

impl ServiceFacts {
    pub const EXTERNAL_NAME: &'static str = "ExternalName";

    pub fn of(service: &k8s_openapi::api::core::v1::Service) -> ServiceFacts {
        let spec = service.spec.as_ref();
        let type_ = match spec.and_then(|s| s.type_.as_deref()) {
            None | Some("ClusterIP") => "ClusterIP",
            Some("NodePort") => "NodePort",
            Some("LoadBalancer") => "LoadBalancer",
            Some(Self::EXTERNAL_NAME) => Self::EXTERNAL_NAME,
            Some(_) => "other",
        };
        ServiceFacts {
            type_,
            external_name: (type_ == Self::EXTERNAL_NAME)
                .then(|| spec.and_then(|s| s.external_name.clone()))
                .flatten(),
        }
    }

    /// The name an `ExternalName` Service resolves to; `None` for every other type.
    pub fn external(&self) -> Option<&str> {
        (self.type_ == Self::EXTERNAL_NAME).then(|| self.external_name.as_deref().unwrap_or(""))
    }
}

/// The key names of a ConfigMap's `data` and `binaryData`, read from its JSON without
/// building its values.
pub fn config_map_key_names(object: &serde_json::Value) -> Vec<String> {
    let mut keys: Vec<String> = ["data", "binaryData"]
        .iter()
        .filter_map(|f| object.get(*f)?.as_object())
        .flat_map(|m| m.keys().cloned())
        .collect();
    keys.sort();
    keys.dedup();
    keys
}

/// The `default` limits a namespace's LimitRanges (type `Container`) fill into a container
/// that sets none: the LimitRanger admission plugin writes them before webhooks see the Pod.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DefaultLimits {
    pub cpu: bool,
    pub memory: bool,
}

impl DefaultLimits {
    /// The defaults one LimitRange gives.
    pub fn of(range: &k8s_openapi::api::core::v1::LimitRange) -> DefaultLimits {
        let mut out = DefaultLimits::default();
        for item in range.spec.iter().flat_map(|s| &s.limits) {
            if item.type_ != "Container" {
                continue;
            }
            if let Some(d) = &item.default {
                out.cpu |= d.contains_key("cpu");
                out.memory |= d.contains_key("memory");
            }
        }
        out
    }
}

/// Kind names of RuntimeClasses and LimitRanges, as [`Index::clear_kind`] and [`VIEW_KINDS`]
/// spell them.
pub const RUNTIME_CLASS: &str = "RuntimeClass";
pub const LIMIT_RANGE: &str = "LimitRange";
/// Kind names of ConfigMaps (key names only) and Services (type and external name only).
pub const CONFIG_MAP: &str = "ConfigMap";
pub const SERVICE: &str = "Service";

/// Kind names of the optional APIs, as [`Index::clear_kind`] and [`VIEW_KINDS`] spell them.
pub const SECRET_PROVIDER_CLASS: &str = "SecretProviderClass";
pub const CILIUM_NETWORK_POLICY: &str = super::egress::cilium_policy::NAMESPACED_KIND;
pub const CILIUM_CLUSTERWIDE_NETWORK_POLICY: &str = super::egress::cilium_policy::CLUSTERWIDE_KIND;

/// What a request that reaches into pods needs to know of each: enough to tell whether it is
/// an agent (its labels for the agent selectors, its images for the catch-all).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PodFacts {
    pub labels: Labels,
    /// Every container's image: init, regular and ephemeral.
    pub images: Vec<String>,
    /// The `Sandbox` that controls the pod (agent-sandbox's controller made it for that one).
    pub sandbox: Option<String>,
}

impl PodFacts {
    /// The facts of a Pod object: its labels and every container's image.
    pub fn of(pod: &k8s_openapi::api::core::v1::Pod) -> PodFacts {
        let spec = pod.spec.as_ref();
        let images = spec
            .into_iter()
            .flat_map(|s| {
                s.init_containers
                    .iter()
                    .flatten()
                    .map(|c| c.image.clone())
                    .chain(s.containers.iter().map(|c| c.image.clone()))
                    .chain(
                        s.ephemeral_containers
                            .iter()
                            .flatten()
                            .map(|c| c.image.clone()),
                    )
            })
            .flatten()
            .collect();
        PodFacts {
            labels: pod.metadata.labels.clone().unwrap_or_default(),
            images,
            sandbox: super::review::sandbox_owner(&pod.metadata).map(String::from),
        }
    }
}

/// What the view knows of the pods a request names.
#[derive(Debug, Clone, PartialEq)]
pub enum PodLookup {
    Found(Vec<PodFacts>),
    /// The API server says there is no such pod (or Service).
    Missing,
    /// Not known: not cached, and not (or not in time) looked up.
    Unknown,
}

/// The Secret type of legacy, non-expiring ServiceAccount tokens.
pub const LEGACY_TOKEN_SECRET_TYPE: &str = "kubernetes.io/service-account-token";

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum SubjectKey {
    ServiceAccount(String, String),
    Group(String),
    User(String),
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
struct BindingKey {
    /// Empty for ClusterRoleBindings.
    namespace: String,
    name: String,
}

#[derive(Debug, Clone)]
struct Binding {
    subjects: Vec<SubjectKey>,
    role_ref: RoleRef,
}

/// Indexed cluster state. Every lookup is a hash or tree lookup by key.
#[derive(Debug, Default, Clone)]
pub struct Index {
    namespaces: HashMap<String, Labels>,
    /// ServiceAccounts, with the one field of theirs the engine reads: automount.
    service_accounts: HashMap<(String, String), Option<bool>>,
    network_policies: HashMap<String, BTreeMap<String, Arc<NetworkPolicy>>>,
    roles: HashMap<(String, String), Arc<Vec<PolicyRule>>>,
    cluster_roles: HashMap<String, Arc<Vec<PolicyRule>>>,
    /// Labels of every ClusterRole, for aggregation selectors.
    cluster_role_labels: HashMap<String, Labels>,
    /// `aggregationRule.clusterRoleSelectors` of the ClusterRoles that have one.
    aggregation_rules: HashMap<String, Vec<LabelSelector>>,
    /// Effective rules of aggregated ClusterRoles: their own plus those of every ClusterRole
    /// their selectors match, recomputed when any ClusterRole changes (rarely), so that a
    /// lookup stays one hash lookup.
    aggregated: HashMap<String, Arc<Vec<PolicyRule>>>,
    role_bindings: HashMap<BindingKey, Binding>,
    cluster_role_bindings: HashMap<BindingKey, Binding>,
    /// subject -> bindings naming it; `true` marks ClusterRoleBindings.
    by_subject: HashMap<SubjectKey, BTreeSet<(bool, BindingKey)>>,
    legacy_token_secrets: HashSet<(String, String)>,
    runtime_classes: HashSet<String>,
    /// Whether RuntimeClasses are known (listed by a watch, or given to `check`).
    runtime_classes_known: bool,
    /// Default limits per LimitRange, by namespace and name.
    limit_ranges: HashMap<String, BTreeMap<String, DefaultLimits>>,
    /// Pods looked up for one request (never watched): labels, or `None` for no such pod.
    pods: HashMap<(String, String), Option<PodFacts>>,
    /// Services looked up for `services/proxy`: the pods each selects; `None`: no such Service.
    services: HashMap<(String, String), Option<Vec<PodFacts>>>,
    /// Whether SecretProviderClasses are known (their API is served and listed).
    secret_provider_classes_served: bool,
    /// SecretProviderClasses by namespace and name; nothing of their spec is kept.
    secret_provider_classes: HashSet<(String, String)>,
    /// ConfigMaps by namespace and name: key names only, never a value.
    config_maps: HashMap<(String, String), Arc<[String]>>,
    /// Services by namespace and name: type and external name only.
    service_facts: HashMap<(String, String), ServiceFacts>,
    /// Whether Cilium policies are known (their API is served and listed).
    cilium_served: bool,
    cilium_policies: HashMap<String, BTreeMap<String, Arc<CiliumPolicy>>>,
    cilium_clusterwide: BTreeMap<String, Arc<CiliumPolicy>>,
    /// Agent Pods by namespace and name, each with a bit per agent selector whose watch
    /// reports it: the cheap signal of which namespaces hold agents (keys only, no spec).
    agent_signal: HashMap<String, HashMap<String, u32>>,
    /// Pods of a namespace looked up for one request (never watched).
    running: HashMap<String, Arc<RunningAgents>>,
    /// Whether agent-sandbox templates and warm pools are known (listed, or given to `check`).
    sandbox_known: bool,
    sandbox_templates: HashMap<(String, String), SandboxFacts>,
    /// Warm pools by namespace and name: the template each names.
    sandbox_warm_pools: HashMap<(String, String), String>,
    /// Claims by namespace and name: the warm pool each names.
    sandbox_claims: HashMap<(String, String), String>,
}

fn ns_name(meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta) -> (String, String) {
    (
        meta.namespace.clone().unwrap_or_default(),
        meta.name.clone().unwrap_or_default(),
    )
}

fn subject_keys(subjects: Option<&Vec<Subject>>, binding_namespace: &str) -> Vec<SubjectKey> {
    subjects
        .into_iter()
        .flatten()
        .filter_map(|s| match s.kind.as_str() {
            "ServiceAccount" => {
                let ns = s
                    .namespace
                    .clone()
                    .filter(|n| !n.is_empty())
                    .unwrap_or_else(|| binding_namespace.to_string());
                Some(SubjectKey::ServiceAccount(ns, s.name.clone()))
            }
            "Group" => Some(SubjectKey::Group(s.name.clone())),
            "User" => Some(SubjectKey::User(s.name.clone())),
            _ => None,
        })
        .collect()
}

impl Index {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn apply_namespace(&mut self, ns: &Namespace) {
        let name = ns.metadata.name.clone().unwrap_or_default();
        self.namespaces
            .insert(name, ns.metadata.labels.clone().unwrap_or_default());
    }
    pub fn delete_namespace(&mut self, name: &str) {
        self.namespaces.remove(name);
    }

    pub fn apply_service_account(&mut self, sa: &ServiceAccount) {
        self.service_accounts
            .insert(ns_name(&sa.metadata), sa.automount_service_account_token);
    }
    /// A ServiceAccount known by name, with its `automountServiceAccountToken` if set.
    pub fn apply_service_account_name(
        &mut self,
        namespace: &str,
        name: &str,
        automount: Option<bool>,
    ) {
        self.service_accounts
            .insert((namespace.to_string(), name.to_string()), automount);
    }
    /// A pod as a lookup found it; `None` records that there is no such pod.
    pub fn apply_pod(&mut self, namespace: &str, name: &str, pod: Option<PodFacts>) {
        self.pods
            .insert((namespace.to_string(), name.to_string()), pod);
    }
    /// The pods a Service selects, as a lookup found them; `None`: no such Service.
    pub fn apply_service_pods(&mut self, namespace: &str, name: &str, pods: Option<Vec<PodFacts>>) {
        self.services
            .insert((namespace.to_string(), name.to_string()), pods);
    }
    pub fn delete_service_account(&mut self, namespace: &str, name: &str) {
        self.service_accounts
            .remove(&(namespace.to_string(), name.to_string()));
    }

    pub fn apply_network_policy(&mut self, np: NetworkPolicy) {
        let (ns, name) = ns_name(&np.metadata);
        self.network_policies
            .entry(ns)
            .or_default()
            .insert(name, Arc::new(np));
    }
    pub fn delete_network_policy(&mut self, namespace: &str, name: &str) {
        if let Some(m) = self.network_policies.get_mut(namespace) {
            m.remove(name);
            if m.is_empty() {
                self.network_policies.remove(namespace);
            }
        }
    }

    pub fn apply_role(&mut self, role: &Role) {
        self.roles.insert(
            ns_name(&role.metadata),
            Arc::new(role.rules.clone().unwrap_or_default()),
        );
    }
    pub fn delete_role(&mut self, namespace: &str, name: &str) {
        self.roles
            .remove(&(namespace.to_string(), name.to_string()));
    }

    pub fn apply_cluster_role(&mut self, role: &ClusterRole) {
        let name = role.metadata.name.clone().unwrap_or_default();
        self.cluster_role_labels.insert(
            name.clone(),
            role.metadata.labels.clone().unwrap_or_default(),
        );
        match role
            .aggregation_rule
            .as_ref()
            .and_then(|a| a.cluster_role_selectors.clone())
        {
            Some(selectors) => {
                self.aggregation_rules.insert(name.clone(), selectors);
            }
            None => {
                self.aggregation_rules.remove(&name);
            }
        }
        self.cluster_roles
            .insert(name, Arc::new(role.rules.clone().unwrap_or_default()));
        self.aggregate();
    }
    pub fn delete_cluster_role(&mut self, name: &str) {
        self.cluster_roles.remove(name);
        self.cluster_role_labels.remove(name);
        self.aggregation_rules.remove(name);
        self.aggregate();
    }

    /// Recomputes the rules of aggregated ClusterRoles as the clusterrole-aggregation
    /// controller does: the union of the rules of every ClusterRole that one of the
    /// selectors matches. The role's own rules are kept too: in a cluster the controller has
    /// already written the union into them, and from manifests they are what was written.
    fn aggregate(&mut self) {
        self.aggregated.clear();
        for (name, selectors) in &self.aggregation_rules {
            let mut rules: Vec<PolicyRule> = self
                .cluster_roles
                .get(name)
                .map(|r| r.as_ref().clone())
                .unwrap_or_default();
            let mut sources: Vec<&String> = self
                .cluster_role_labels
                .iter()
                .filter(|(other, labels)| {
                    *other != name
                        && selectors.iter().any(|s| {
                            !super::selector::is_empty(s) && super::selector::matches(s, labels)
                        })
                })
                .map(|(other, _)| other)
                .collect();
            sources.sort();
            for other in sources {
                for rule in self
                    .cluster_roles
                    .get(other)
                    .into_iter()
                    .flat_map(|r| r.iter())
                {
                    if !rules.contains(rule) {
                        rules.push(rule.clone());
                    }
                }
            }
            self.aggregated.insert(name.clone(), Arc::new(rules));
        }
    }

    pub fn apply_role_binding(&mut self, rb: &RoleBinding) {
        let (namespace, name) = ns_name(&rb.metadata);
        let key = BindingKey {
            namespace: namespace.clone(),
            name,
        };
        self.unlink(false, &key);
        let binding = Binding {
            subjects: subject_keys(rb.subjects.as_ref(), &namespace),
            role_ref: rb.role_ref.clone(),
        };
        self.link(false, &key, &binding);
        self.role_bindings.insert(key, binding);
    }
    pub fn delete_role_binding(&mut self, namespace: &str, name: &str) {
        let key = BindingKey {
            namespace: namespace.to_string(),
            name: name.to_string(),
        };
        self.unlink(false, &key);
        self.role_bindings.remove(&key);
    }

    pub fn apply_cluster_role_binding(&mut self, crb: &ClusterRoleBinding) {
        let key = BindingKey {
            namespace: String::new(),
            name: crb.metadata.name.clone().unwrap_or_default(),
        };
        self.unlink(true, &key);
        let binding = Binding {
            subjects: subject_keys(crb.subjects.as_ref(), ""),
            role_ref: crb.role_ref.clone(),
        };
        self.link(true, &key, &binding);
        self.cluster_role_bindings.insert(key, binding);
    }
    pub fn delete_cluster_role_binding(&mut self, name: &str) {
        let key = BindingKey {
            namespace: String::new(),
            name: name.to_string(),
        };
        self.unlink(true, &key);
        self.cluster_role_bindings.remove(&key);
    }

    /// Records a Secret by its type only; its data is never looked at or kept.
    pub fn apply_secret(&mut self, secret: &Secret) {
        self.apply_secret_type(&secret.metadata, secret.type_.as_deref());
    }
    pub fn apply_secret_type(
        &mut self,
        meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
        type_: Option<&str>,
    ) {
        let key = ns_name(meta);
        if type_ == Some(LEGACY_TOKEN_SECRET_TYPE) {
            self.legacy_token_secrets.insert(key);
        } else {
            self.legacy_token_secrets.remove(&key);
        }
    }
    pub fn delete_secret(&mut self, namespace: &str, name: &str) {
        self.legacy_token_secrets
            .remove(&(namespace.to_string(), name.to_string()));
    }

    /// Records whether an optional API's objects are known: a view that knows them answers
    /// "missing" for an object it does not hold; one that does not answers "not known".
    pub fn set_served(&mut self, kind: &str, served: bool) {
        match kind {
            SECRET_PROVIDER_CLASS => self.secret_provider_classes_served = served,
            CILIUM_NETWORK_POLICY | CILIUM_CLUSTERWIDE_NETWORK_POLICY => {
                self.cilium_served = served
            }
            // One CRD bundle serves both: either listed means the view holds them.
            SANDBOX_TEMPLATE | SANDBOX_WARM_POOL | SANDBOX_CLAIM => self.sandbox_known = served,
            _ => {}
        }
    }

    /// A SecretProviderClass by name (all the index keeps of it).
    pub fn apply_runtime_class(&mut self, name: &str) {
        self.runtime_classes_known = true;
        self.runtime_classes.insert(name.to_string());
    }
    pub fn delete_runtime_class(&mut self, name: &str) {
        self.runtime_classes.remove(name);
    }
    /// Records that RuntimeClasses are known, when a list found none.
    pub fn set_runtime_classes_known(&mut self) {
        self.runtime_classes_known = true;
    }
    /// Marks agent-sandbox templates and warm pools as known: a name not held is missing.
    pub fn set_sandbox_known(&mut self) {
        self.sandbox_known = true;
    }

    pub fn apply_sandbox_template(&mut self, namespace: &str, name: &str, facts: SandboxFacts) {
        self.sandbox_templates
            .insert((namespace.to_string(), name.to_string()), facts);
    }

    pub fn delete_sandbox_template(&mut self, namespace: &str, name: &str) {
        self.sandbox_templates
            .remove(&(namespace.to_string(), name.to_string()));
    }

    pub fn apply_sandbox_warm_pool(&mut self, namespace: &str, name: &str, template: &str) {
        self.sandbox_warm_pools.insert(
            (namespace.to_string(), name.to_string()),
            template.to_string(),
        );
    }

    pub fn delete_sandbox_warm_pool(&mut self, namespace: &str, name: &str) {
        self.sandbox_warm_pools
            .remove(&(namespace.to_string(), name.to_string()));
    }

    pub fn apply_sandbox_claim(&mut self, namespace: &str, name: &str, warm_pool: &str) {
        self.sandbox_claims.insert(
            (namespace.to_string(), name.to_string()),
            warm_pool.to_string(),
        );
    }

    pub fn delete_sandbox_claim(&mut self, namespace: &str, name: &str) {
        self.sandbox_claims
            .remove(&(namespace.to_string(), name.to_string()));
    }

    pub fn apply_limit_range(&mut self, namespace: &str, name: &str, defaults: DefaultLimits) {
        self.limit_ranges
            .entry(namespace.to_string())
            .or_default()
            .insert(name.to_string(), defaults);
    }
    pub fn delete_limit_range(&mut self, namespace: &str, name: &str) {
        if let Some(m) = self.limit_ranges.get_mut(namespace) {
            m.remove(name);
            if m.is_empty() {
                self.limit_ranges.remove(namespace);
            }
        }
    }
    pub fn apply_secret_provider_class(&mut self, namespace: &str, name: &str) {
        self.secret_provider_classes_served = true;
        self.secret_provider_classes
            .insert((namespace.to_string(), name.to_string()));
    }
    pub fn delete_secret_provider_class(&mut self, namespace: &str, name: &str) {
        self.secret_provider_classes
            .remove(&(namespace.to_string(), name.to_string()));
    }

    /// A ConfigMap's key names (what [`config_map_key_names`] reads of it).
    pub fn apply_config_map_keys(&mut self, namespace: &str, name: &str, keys: Vec<String>) {
        self.config_maps
            .insert((namespace.to_string(), name.to_string()), keys.into());
    }
    pub fn apply_service(&mut self, namespace: &str, name: &str, facts: ServiceFacts) {
        self.service_facts
            .insert((namespace.to_string(), name.to_string()), facts);
    }
    pub fn delete_service(&mut self, namespace: &str, name: &str) {
        self.service_facts
            .remove(&(namespace.to_string(), name.to_string()));
    }

    /// A Cilium policy of either kind.
    pub fn apply_cilium_policy(&mut self, policy: CiliumPolicy) {
        self.cilium_served = true;
        if policy.clusterwide {
            self.cilium_clusterwide
                .insert(policy.name.clone(), Arc::new(policy));
        } else {
            self.cilium_policies
                .entry(policy.namespace.clone())
                .or_default()
                .insert(policy.name.clone(), Arc::new(policy));
        }
    }
    /// Removes a CiliumNetworkPolicy (`namespace` set) or a clusterwide one (`namespace` empty).
    pub fn delete_cilium_policy(&mut self, namespace: &str, name: &str) {
        if namespace.is_empty() {
            self.cilium_clusterwide.remove(name);
        } else if let Some(m) = self.cilium_policies.get_mut(namespace) {
            m.remove(name);
            if m.is_empty() {
                self.cilium_policies.remove(namespace);
            }
        }
    }

    /// Records that agent selector number `selector` (below 32) reports a Pod.
    pub fn apply_agent_signal(&mut self, selector: usize, namespace: &str, name: &str) {
        *self
            .agent_signal
            .entry(namespace.to_string())
            .or_default()
            .entry(name.to_string())
            .or_default() |= 1 << (selector % 32);
    }
    /// Forgets what selector number `selector` reported of a Pod.
    pub fn delete_agent_signal(&mut self, selector: usize, namespace: &str, name: &str) {
        if let Some(pods) = self.agent_signal.get_mut(namespace) {
            if let Some(bits) = pods.get_mut(name) {
                *bits &= !(1 << (selector % 32));
                if *bits == 0 {
                    pods.remove(name);
                }
            }
            if pods.is_empty() {
                self.agent_signal.remove(namespace);
            }
        }
    }
    /// Forgets everything selector number `selector` reported (its watch relists).
    pub fn clear_agent_signal(&mut self, selector: usize) {
        self.agent_signal.retain(|_, pods| {
            pods.retain(|_, bits| {
                *bits &= !(1 << (selector % 32));
                *bits != 0
            });
            !pods.is_empty()
        });
    }
    /// The Pods of a namespace as a lookup found them.
    pub fn apply_running_agents(&mut self, namespace: &str, agents: RunningAgents) {
        self.running.insert(namespace.to_string(), Arc::new(agents));
    }

    /// Forgets every object of one kind (a name from [`VIEW_KINDS`]), so that a watcher's
    /// relist can replace the kind wholesale and objects deleted meanwhile disappear.
    pub fn clear_kind(&mut self, kind: &str) {
        match kind {
            "Namespace" => self.namespaces.clear(),
            "ServiceAccount" => self.service_accounts.clear(),
            "NetworkPolicy" => self.network_policies.clear(),
            "Role" => self.roles.clear(),
            "ClusterRole" => {
                self.cluster_roles.clear();
                self.cluster_role_labels.clear();
                self.aggregation_rules.clear();
                self.aggregated.clear();
            }
            "RoleBinding" | "ClusterRoleBinding" => {
                let cluster = kind == "ClusterRoleBinding";
                if cluster {
                    self.cluster_role_bindings.clear()
                } else {
                    self.role_bindings.clear()
                }
                self.by_subject.retain(|_, set| {
                    set.retain(|(c, _)| *c != cluster);
                    !set.is_empty()
                });
            }
            "Secret" => self.legacy_token_secrets.clear(),
            SECRET_PROVIDER_CLASS => self.secret_provider_classes.clear(),
            SANDBOX_TEMPLATE => self.sandbox_templates.clear(),
            SANDBOX_WARM_POOL => self.sandbox_warm_pools.clear(),
            SANDBOX_CLAIM => self.sandbox_claims.clear(),
            RUNTIME_CLASS => self.runtime_classes.clear(),
            LIMIT_RANGE => self.limit_ranges.clear(),
            CONFIG_MAP => self.config_maps.clear(),
            SERVICE => self.service_facts.clear(),
            CILIUM_NETWORK_POLICY => self.cilium_policies.clear(),
            CILIUM_CLUSTERWIDE_NETWORK_POLICY => self.cilium_clusterwide.clear(),
            _ => {}
        }
    }

    /// Counts, for readiness output and metrics.
    pub fn counts(&self) -> BTreeMap<&'static str, usize> {
        BTreeMap::from([
            ("namespaces", self.namespaces.len()),
            ("serviceaccounts", self.service_accounts.len()),
            (
                "networkpolicies",
                self.network_policies.values().map(|m| m.len()).sum(),
            ),
            ("roles", self.roles.len()),
            ("clusterroles", self.cluster_roles.len()),
            ("rolebindings", self.role_bindings.len()),
            ("clusterrolebindings", self.cluster_role_bindings.len()),
            ("legacytokensecrets", self.legacy_token_secrets.len()),
            (
                "agentpods",
                self.agent_signal.values().map(|m| m.len()).sum(),
            ),
            ("secretproviderclasses", self.secret_provider_classes.len()),
            ("runtimeclasses", self.runtime_classes.len()),
            ("services", self.service_facts.len()),
            (
                "limitranges",
                self.limit_ranges.values().map(|m| m.len()).sum(),
            ),
            (
                "ciliumnetworkpolicies",
                self.cilium_policies.values().map(|m| m.len()).sum(),
            ),
            (
                "ciliumclusterwidenetworkpolicies",
                self.cilium_clusterwide.len(),
            ),
        ])
    }

    fn link(&mut self, cluster: bool, key: &BindingKey, binding: &Binding) {
        for s in &binding.subjects {
            self.by_subject
                .entry(s.clone())
                .or_default()
                .insert((cluster, key.clone()));
        }
    }

    fn unlink(&mut self, cluster: bool, key: &BindingKey) {
        let old = if cluster {
            self.cluster_role_bindings.get(key)
        } else {
            self.role_bindings.get(key)
        };
        let Some(old) = old.cloned() else { return };
        for s in &old.subjects {
            if let Some(set) = self.by_subject.get_mut(s) {
                set.remove(&(cluster, key.clone()));
                if set.is_empty() {
                    self.by_subject.remove(s);
                }
            }
        }
    }

    fn rules_for(
        &self,
        binding_namespace: &str,
        role_ref: &RoleRef,
    ) -> Option<Arc<Vec<PolicyRule>>> {
        match role_ref.kind.as_str() {
            "ClusterRole" => self
                .aggregated
                .get(&role_ref.name)
                .or_else(|| self.cluster_roles.get(&role_ref.name))
                .cloned(),
            "Role" => self
                .roles
                .get(&(binding_namespace.to_string(), role_ref.name.clone()))
                .cloned(),
            _ => None,
        }
    }
}

impl ClusterView for Index {
    fn namespace_labels(&self, namespace: &str) -> Option<Labels> {
        self.namespaces.get(namespace).cloned()
    }

    fn service_account_exists(&self, namespace: &str, name: &str) -> bool {
        self.service_accounts
            .contains_key(&(namespace.to_string(), name.to_string()))
    }

    fn service_account_automount(&self, namespace: &str, name: &str) -> Option<bool> {
        self.service_accounts
            .get(&(namespace.to_string(), name.to_string()))
            .copied()
            .flatten()
    }

    fn bound_roles(&self, namespace: &str, service_account: &str) -> Vec<BoundRole> {
        let keys = [
            (
                SubjectKey::ServiceAccount(namespace.into(), service_account.into()),
                "ServiceAccount".to_string(),
            ),
            (
                SubjectKey::User(format!(
                    "system:serviceaccount:{namespace}:{service_account}"
                )),
                format!("User system:serviceaccount:{namespace}:{service_account}"),
            ),
            (
                SubjectKey::Group("system:serviceaccounts".into()),
                "Group system:serviceaccounts".into(),
            ),
            (
                SubjectKey::Group(format!("system:serviceaccounts:{namespace}")),
                format!("Group system:serviceaccounts:{namespace}"),
            ),
            (
                SubjectKey::Group("system:authenticated".into()),
                "Group system:authenticated".into(),
            ),
        ];
        let mut out = Vec::new();
        for (key, via) in keys {
            for (cluster, bkey) in self.by_subject.get(&key).into_iter().flatten() {
                let binding = if *cluster {
                    self.cluster_role_bindings.get(bkey)
                } else {
                    self.role_bindings.get(bkey)
                };
                let Some(binding) = binding else { continue };
                out.push(BoundRole {
                    binding: if *cluster {
                        format!("ClusterRoleBinding {}", bkey.name)
                    } else {
                        format!("RoleBinding {}/{}", bkey.namespace, bkey.name)
                    },
                    cluster_wide: *cluster,
                    via: via.clone(),
                    role_kind: binding.role_ref.kind.clone(),
                    role_name: binding.role_ref.name.clone(),
                    rules: self.rules_for(&bkey.namespace, &binding.role_ref),
                });
            }
        }
        out
    }

    fn network_policies(&self, namespace: &str) -> Vec<Arc<NetworkPolicy>> {
        self.network_policies
            .get(namespace)
            .map(|m| m.values().cloned().collect())
            .unwrap_or_default()
    }

    fn is_legacy_token_secret(&self, namespace: &str, name: &str) -> bool {
        self.legacy_token_secrets
            .contains(&(namespace.to_string(), name.to_string()))
    }

    fn pod(&self, namespace: &str, name: &str) -> PodLookup {
        match self.pods.get(&(namespace.to_string(), name.to_string())) {
            Some(Some(pod)) => PodLookup::Found(vec![pod.clone()]),
            Some(None) => PodLookup::Missing,
            None => PodLookup::Unknown,
        }
    }

    fn service_pods(&self, namespace: &str, name: &str) -> PodLookup {
        match self
            .services
            .get(&(namespace.to_string(), name.to_string()))
        {
            Some(Some(pods)) => PodLookup::Found(pods.clone()),
            Some(None) => PodLookup::Missing,
            None => PodLookup::Unknown,
        }
    }

    fn runtime_class(&self, name: &str) -> Option<bool> {
        self.runtime_classes_known
            .then(|| self.runtime_classes.contains(name))
    }

    fn limit_range_defaults(&self, namespace: &str) -> DefaultLimits {
        self.limit_ranges
            .get(namespace)
            .into_iter()
            .flat_map(|m| m.values())
            .fold(DefaultLimits::default(), |acc, d| DefaultLimits {
                cpu: acc.cpu || d.cpu,
                memory: acc.memory || d.memory,
            })
    }

    fn secret_provider_class(&self, namespace: &str, name: &str) -> Option<bool> {
        self.secret_provider_classes_served.then(|| {
            self.secret_provider_classes
                .contains(&(namespace.to_string(), name.to_string()))
        })
    }

    fn config_map_keys(&self, namespace: &str, name: &str) -> Option<Arc<[String]>> {
        self.config_maps
            .get(&(namespace.to_string(), name.to_string()))
            .cloned()
    }

    fn service(&self, namespace: &str, name: &str) -> Option<ServiceFacts> {
        self.service_facts
            .get(&(namespace.to_string(), name.to_string()))
            .cloned()
    }

    fn sandbox_template(&self, namespace: &str, name: &str) -> Option<Option<SandboxFacts>> {
        self.sandbox_known.then(|| {
            self.sandbox_templates
                .get(&(namespace.to_string(), name.to_string()))
                .cloned()
        })
    }

    fn sandbox_warm_pool(&self, namespace: &str, name: &str) -> Option<Option<String>> {
        self.sandbox_known.then(|| {
            self.sandbox_warm_pools
                .get(&(namespace.to_string(), name.to_string()))
                .cloned()
        })
    }

    fn sandbox_claim(&self, namespace: &str, name: &str) -> Option<Option<String>> {
        self.sandbox_known.then(|| {
            self.sandbox_claims
                .get(&(namespace.to_string(), name.to_string()))
                .cloned()
        })
    }

    // A scan of the templates held: asked only for the Pods agent-sandbox's controller makes,
    // and a cluster holds templates by the dozen, not by the thousand.
    fn sandbox_template_by_hash(&self, namespace: &str, hash: &str) -> Option<String> {
        let mut found = self
            .sandbox_templates
            .keys()
            .filter(|(ns, name)| ns == namespace && super::review::name_hash(name) == hash)
            .map(|(_, name)| name);
        let first = found.next()?;
        found.next().is_none().then(|| first.clone())
    }

    fn cilium_policies(&self, namespace: &str) -> Option<Vec<Arc<CiliumPolicy>>> {
        if !self.cilium_served {
            return None;
        }
        let mut out: Vec<Arc<CiliumPolicy>> = self
            .cilium_policies
            .get(namespace)
            .map(|m| m.values().cloned().collect())
            .unwrap_or_default();
        out.extend(self.cilium_clusterwide.values().cloned());
        Some(out)
    }

    fn role_rules(
        &self,
        binding_namespace: &str,
        role_ref: &RoleRef,
    ) -> Option<Arc<Vec<PolicyRule>>> {
        self.rules_for(binding_namespace, role_ref)
    }

    fn aggregating_roles(&self, labels: &Labels) -> Vec<String> {
        let mut out: Vec<String> = self
            .aggregation_rules
            .iter()
            .filter(|(_, selectors)| {
                selectors
                    .iter()
                    .any(|s| super::selector::matches(s, labels))
            })
            .map(|(name, _)| name.clone())
            .collect();
        out.sort();
        out
    }

    fn may_hold_agents(&self, namespace: &str) -> bool {
        self.agent_signal.contains_key(namespace)
    }

    fn namespaces_with_agents(&self) -> Vec<String> {
        let mut out: Vec<String> = self.agent_signal.keys().cloned().collect();
        out.sort();
        out
    }

    fn running_agents(&self, namespace: &str) -> Option<Arc<RunningAgents>> {
        self.running.get(namespace).cloned()
    }
}

/// A cluster view built from manifests: the objects given to `check`, or a test's fixtures.
#[derive(Debug, Default, Clone)]
pub struct StaticView {
    pub index: Index,
}

/// Kinds a `StaticView` takes from manifests.
pub const VIEW_KINDS: &[&str] = &[
    "Namespace",
    "ServiceAccount",
    "NetworkPolicy",
    "Role",
    "ClusterRole",
    "RoleBinding",
    "ClusterRoleBinding",
    "Secret",
    SECRET_PROVIDER_CLASS,
    CILIUM_NETWORK_POLICY,
    CILIUM_CLUSTERWIDE_NETWORK_POLICY,
    RUNTIME_CLASS,
    LIMIT_RANGE,
    CONFIG_MAP,
    SERVICE,
];

impl StaticView {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds one manifest when its kind is one the view keeps. Returns `Ok(true)` when taken,
    /// `Ok(false)` when the kind is not one the view keeps, and an error when the object does
    /// not fit its kind's schema. `default_namespace` fills objects that name none.
    ///
    /// A SecretProviderClass or a Cilium policy among the manifests makes its API count as
    /// served: classes the manifests do not hold are then missing, and Cilium policies count
    /// for `default-deny-egress`.
    pub fn add(
        &mut self,
        object: &serde_json::Value,
        default_namespace: &str,
    ) -> Result<bool, serde_json::Error> {
        let kind = object.get("kind").and_then(|k| k.as_str()).unwrap_or("");
        let mut object = object.clone();
        if kind != "Namespace"
            && !kind.starts_with("Cluster")
            && kind != CILIUM_CLUSTERWIDE_NETWORK_POLICY
            && let Some(meta) = object.get_mut("metadata").and_then(|m| m.as_object_mut())
            && !meta.contains_key("namespace")
        {
            meta.insert("namespace".into(), default_namespace.into());
        }
        let idx = &mut self.index;
        match kind {
            "Namespace" => idx.apply_namespace(&serde_json::from_value(object)?),
            "ServiceAccount" => idx.apply_service_account(&serde_json::from_value(object)?),
            "NetworkPolicy" => idx.apply_network_policy(serde_json::from_value(object)?),
            "Role" => idx.apply_role(&serde_json::from_value(object)?),
            "ClusterRole" => idx.apply_cluster_role(&serde_json::from_value(object)?),
            "RoleBinding" => idx.apply_role_binding(&serde_json::from_value(object)?),
            "ClusterRoleBinding" => {
                idx.apply_cluster_role_binding(&serde_json::from_value(object)?)
            }
            "Secret" => {
                // Only the type is kept; data is dropped before it is parsed.
                if let Some(m) = object.as_object_mut() {
                    m.remove("data");
                    m.remove("stringData");
                }
                idx.apply_secret(&serde_json::from_value(object)?)
            }
            SECRET_PROVIDER_CLASS => {
                let meta: k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta =
                    serde_json::from_value(object.get("metadata").cloned().unwrap_or_default())?;
                let (ns, name) = ns_name(&meta);
                idx.apply_secret_provider_class(&ns, &name);
            }
            CILIUM_NETWORK_POLICY | CILIUM_CLUSTERWIDE_NETWORK_POLICY => {
                let policy = CiliumPolicy::from_object(&object)
                    .map_err(<serde_json::Error as serde::de::Error>::custom)?;
                idx.apply_cilium_policy(policy);
            }
            RUNTIME_CLASS => {
                let rc: k8s_openapi::api::node::v1::RuntimeClass = serde_json::from_value(object)?;
                idx.apply_runtime_class(rc.metadata.name.as_deref().unwrap_or_default());
            }
            CONFIG_MAP => {
                // Key names only: the values are never parsed or kept.
                let meta: k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta =
                    serde_json::from_value(object.get("metadata").cloned().unwrap_or_default())?;
                let (ns, name) = ns_name(&meta);
                idx.apply_config_map_keys(&ns, &name, config_map_key_names(&object));
            }
            SERVICE => {
                let svc: k8s_openapi::api::core::v1::Service = serde_json::from_value(object)?;
                let (ns, name) = ns_name(&svc.metadata);
                idx.apply_service(&ns, &name, ServiceFacts::of(&svc));
            }
            LIMIT_RANGE => {
                let lr: k8s_openapi::api::core::v1::LimitRange = serde_json::from_value(object)?;
                let (ns, name) = ns_name(&lr.metadata);
                idx.apply_limit_range(&ns, &name, DefaultLimits::of(&lr));
            }
            SANDBOX_TEMPLATE | SANDBOX_WARM_POOL | SANDBOX_CLAIM => {
                let meta: k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta =
                    serde_json::from_value(object.get("metadata").cloned().unwrap_or_default())?;
                let (ns, name) = ns_name(&meta);
                let subject = super::review::Subject::from_value(kind, object)?;
                idx.set_sandbox_known();
                match (&subject, SandboxFacts::of(&subject)) {
                    (_, Some(facts)) => idx.apply_sandbox_template(&ns, &name, facts),
                    (super::review::Subject::SandboxRef(r), None) => match r.as_ref() {
                        super::review::SandboxRef::WarmPool(p) => {
                            idx.apply_sandbox_warm_pool(&ns, &name, &p.template)
                        }
                        super::review::SandboxRef::Claim(c) => {
                            idx.apply_sandbox_claim(&ns, &name, &c.warm_pool)
                        }
                    },
                    _ => {}
                }
            }
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// A view where every namespace in `namespaces` exists with no labels.
    pub fn with_namespaces(namespaces: &[&str]) -> Self {
        let mut v = Self::new();
        for n in namespaces {
            v.index.namespaces.insert(n.to_string(), Labels::new());
        }
        v
    }
}

impl ClusterView for StaticView {
    fn namespace_labels(&self, namespace: &str) -> Option<Labels> {
        self.index.namespace_labels(namespace)
    }
    fn service_account_exists(&self, namespace: &str, name: &str) -> bool {
        self.index.service_account_exists(namespace, name)
    }
    fn service_account_automount(&self, namespace: &str, name: &str) -> Option<bool> {
        self.index.service_account_automount(namespace, name)
    }
    fn bound_roles(&self, namespace: &str, service_account: &str) -> Vec<BoundRole> {
        self.index.bound_roles(namespace, service_account)
    }
    fn network_policies(&self, namespace: &str) -> Vec<Arc<NetworkPolicy>> {
        self.index.network_policies(namespace)
    }
    fn is_legacy_token_secret(&self, namespace: &str, name: &str) -> bool {
        self.index.is_legacy_token_secret(namespace, name)
    }
    fn pod(&self, namespace: &str, name: &str) -> PodLookup {
        self.index.pod(namespace, name)
    }
    fn service_pods(&self, namespace: &str, name: &str) -> PodLookup {
        self.index.service_pods(namespace, name)
    }
    fn secret_provider_class(&self, namespace: &str, name: &str) -> Option<bool> {
        self.index.secret_provider_class(namespace, name)
    }
    fn cilium_policies(&self, namespace: &str) -> Option<Vec<Arc<CiliumPolicy>>> {
        self.index.cilium_policies(namespace)
    }
    fn runtime_class(&self, name: &str) -> Option<bool> {
        self.index.runtime_class(name)
    }
    fn limit_range_defaults(&self, namespace: &str) -> DefaultLimits {
        self.index.limit_range_defaults(namespace)
    }
    fn config_map_keys(&self, namespace: &str, name: &str) -> Option<Arc<[String]>> {
        self.index.config_map_keys(namespace, name)
    }
    fn service(&self, namespace: &str, name: &str) -> Option<ServiceFacts> {
        self.index.service(namespace, name)
    }
    fn role_rules(
        &self,
        binding_namespace: &str,
        role_ref: &RoleRef,
    ) -> Option<Arc<Vec<PolicyRule>>> {
        self.index.role_rules(binding_namespace, role_ref)
    }
    fn aggregating_roles(&self, labels: &Labels) -> Vec<String> {
        self.index.aggregating_roles(labels)
    }
    fn may_hold_agents(&self, namespace: &str) -> bool {
        self.index.may_hold_agents(namespace)
    }
    fn namespaces_with_agents(&self) -> Vec<String> {
        self.index.namespaces_with_agents()
    }
    fn running_agents(&self, namespace: &str) -> Option<Arc<RunningAgents>> {
        self.index.running_agents(namespace)
    }
    fn sandbox_template(&self, namespace: &str, name: &str) -> Option<Option<SandboxFacts>> {
        self.index.sandbox_template(namespace, name)
    }
    fn sandbox_warm_pool(&self, namespace: &str, name: &str) -> Option<Option<String>> {
        self.index.sandbox_warm_pool(namespace, name)
    }
    fn sandbox_claim(&self, namespace: &str, name: &str) -> Option<Option<String>> {
        self.index.sandbox_claim(namespace, name)
    }
    fn sandbox_template_by_hash(&self, namespace: &str, hash: &str) -> Option<String> {
        self.index.sandbox_template_by_hash(namespace, hash)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn binding_through_namespace_group_is_found_and_removed() {
        let mut v = StaticView::new();
        v.add(
            &json!({"apiVersion":"rbac.authorization.k8s.io/v1","kind":"RoleBinding",
                "metadata":{"name":"everyone-edit","namespace":"agents"},
                "roleRef":{"apiGroup":"rbac.authorization.k8s.io","kind":"ClusterRole","name":"edit"},
                "subjects":[{"kind":"Group","name":"system:serviceaccounts:agents"}]}),
            "default",
        )
        .unwrap();
        let roles = v.bound_roles("agents", "claw");
        assert_eq!(roles.len(), 1);
        assert_eq!(roles[0].role_name, "edit");
        assert_eq!(roles[0].via, "Group system:serviceaccounts:agents");
        assert!(v.bound_roles("other", "claw").is_empty());
        v.index.delete_role_binding("agents", "everyone-edit");
        assert!(v.bound_roles("agents", "claw").is_empty());
    }

    #[test]
    fn rebinding_replaces_old_subjects() {
        let mut idx = Index::new();
        let rb = |sa: &str| -> RoleBinding {
            serde_json::from_value(json!({"metadata":{"name":"b","namespace":"agents"},
                "roleRef":{"apiGroup":"rbac.authorization.k8s.io","kind":"Role","name":"r"},
                "subjects":[{"kind":"ServiceAccount","name":sa,"namespace":"agents"}]}))
            .unwrap()
        };
        idx.apply_role_binding(&rb("one"));
        idx.apply_role_binding(&rb("two"));
        assert!(idx.bound_roles("agents", "one").is_empty());
        assert_eq!(idx.bound_roles("agents", "two").len(), 1);
    }

    #[test]
    fn config_maps_keep_key_names_only_and_services_their_type() {
        let mut v = StaticView::new();
        v.add(
            &json!({"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"cfg","namespace":"agents"},
                "data":{"OPENAI_API_KEY":"sk-proj-planted0123456789","LOG_LEVEL":"info"},
                "binaryData":{"blob":"c2VjcmV0"}}),
            "default",
        )
        .unwrap();
        v.add(
            &json!({"apiVersion":"v1","kind":"Service","metadata":{"name":"llm","namespace":"agents"},
                "spec":{"type":"ExternalName","externalName":"api.openai.com"}}),
            "default",
        )
        .unwrap();
        v.add(
            &json!({"apiVersion":"v1","kind":"Service","metadata":{"name":"vllm","namespace":"agents"},
                "spec":{"ports":[{"port":80}]}}),
            "default",
        )
        .unwrap();
        assert_eq!(
            v.config_map_keys("agents", "cfg").as_deref(),
            Some(
                &[
                    "LOG_LEVEL".to_string(),
                    "OPENAI_API_KEY".into(),
                    "blob".into()
                ][..]
            )
        );
        assert_eq!(v.config_map_keys("agents", "other"), None);
        let kept = format!("{:?}", v.index);
        assert!(!kept.contains("planted") && !kept.contains("c2VjcmV0") && !kept.contains("info"));
        assert_eq!(
            v.service("agents", "llm").unwrap().external(),
            Some("api.openai.com")
        );
        assert_eq!(v.service("agents", "vllm").unwrap().type_, "ClusterIP");
        assert_eq!(v.service("agents", "vllm").unwrap().external(), None);
        v.index.delete_service("agents", "llm");
        assert_eq!(v.service("agents", "llm"), None);
    }

    #[test]
    fn secret_data_is_never_kept_and_type_is() {
        let mut v = StaticView::new();
        v.add(
            &json!({"apiVersion":"v1","kind":"Secret","metadata":{"name":"old","namespace":"agents"},
                "type":"kubernetes.io/service-account-token","data":{"token":"c2VjcmV0"}}),
            "default",
        )
        .unwrap();
        assert!(v.is_legacy_token_secret("agents", "old"));
        assert!(!v.is_legacy_token_secret("agents", "other"));
        assert!(!format!("{:?}", v.index).contains("c2VjcmV0"));
    }
}

//! The engine's view of one admission request: who asks, what operation, and the pod (or pod
//! template) under review, parsed once into typed structs.

use super::pod::{Pod, PodSpec, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
pub use kube::core::admission::Operation;
pub use kube::core::{GroupVersionKind, GroupVersionResource};
use serde::Deserialize;

/// The requesting user, as the API server authenticated them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct User {
    pub username: String,
    pub groups: Vec<String>,
}

/// The subresource `kubectl debug` adds containers through.
pub const EPHEMERAL_CONTAINERS: &str = "ephemeralcontainers";

/// Workload kinds whose pod template is judged like a pod. All keep it at `spec.template`
/// but the CronJob. `ReplicationController` (core/v1) is old but still served and still run
/// by kube-controller-manager: leaving it out would let an agent template through at apply
/// and refuse its Pods later, one silent event at a time.
pub const WORKLOAD_KINDS: &[&str] = &[
    "Deployment",
    "StatefulSet",
    "DaemonSet",
    "ReplicaSet",
    "ReplicationController",
    "Job",
    "CronJob",
];

/// agent-sandbox (SIG Apps, `sigs.k8s.io/agent-sandbox`): the API group of `Sandbox`, and
/// the one of its extensions (`SandboxTemplate`, `SandboxWarmPool`, `SandboxClaim`).
pub const SANDBOX_GROUP: &str = "agents.x-k8s.io";
pub const SANDBOX_EXTENSIONS_GROUP: &str = "extensions.agents.x-k8s.io";
/// agent-sandbox kinds that carry a pod template (at `spec.podTemplate`): judged like
/// workloads, and agents by their kind (`Policy::agent_sandbox`).
pub const SANDBOX_KINDS: &[&str] = &["Sandbox", "SandboxTemplate"];
/// agent-sandbox kinds that point at a template and add to it: judged for what they add
/// (a claim) and for whether what they name exists.
pub const SANDBOX_REF_KINDS: &[&str] = &["SandboxClaim", "SandboxWarmPool"];

/// The API group each agent-sandbox kind is served in.
pub fn sandbox_group_of(kind: &str) -> Option<&'static str> {
    match kind {
        "Sandbox" => Some(SANDBOX_GROUP),
        "SandboxTemplate" | "SandboxClaim" | "SandboxWarmPool" => Some(SANDBOX_EXTENSIONS_GROUP),
        _ => None,
    }
}

/// What a `SandboxTemplate` says beyond its pod template: the NetworkPolicy its controller
/// writes for the template's Pods, and whether claims may add env to them.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SandboxTemplateSettings {
    /// `spec.networkPolicyManagement: Unmanaged`: the controller writes no NetworkPolicy
    /// (and removes the one it wrote), so the namespace's own policies are all there is.
    pub unmanaged: bool,
    /// `spec.networkPolicy` as written; `None` when omitted (the controller then writes its
    /// open default).
    pub network_policy: Option<SandboxNetworkPolicy>,
    /// `spec.envVarsInjectionPolicy` is `Allowed` or `Overrides`: a claim's `spec.env` lands
    /// in the Pods.
    pub env_injection: bool,
}

/// `spec.networkPolicy` of a `SandboxTemplate`: the rules the controller copies into the
/// NetworkPolicy it writes. `egress: None` (omitted) denies all egress, as the policy it
/// writes then has the `Egress` type and no rule.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(default)]
pub struct SandboxNetworkPolicy {
    pub egress: Option<Vec<k8s_openapi::api::networking::v1::NetworkPolicyEgressRule>>,
}

/// A workload's pod template, with where it sits in the object.
#[derive(Debug, Clone, PartialEq)]
pub struct Template {
    pub kind: String,
    pub metadata: ObjectMeta,
    pub template: PodTemplateSpec,
    /// `spec.template` or `spec.jobTemplate.spec.template`.
    pub template_path: &'static str,
    /// The pod template as sent, every field of it (the typed `template` keeps only what the
    /// checks read): an approval's content digest covers all of it, so that a change to a
    /// field no check reads (a command, a probe) still voids the approval.
    pub raw: serde_json::Value,
    /// Set for a `SandboxTemplate` only.
    pub sandbox: Option<SandboxTemplateSettings>,
}

/// One literal variable of a `SandboxClaim`'s `spec.env` (agent-sandbox has no `valueFrom`
/// there): injected into the named container, or into every container when none is named.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct ClaimEnv {
    pub name: String,
    pub value: String,
    pub container_name: Option<String>,
}

/// A `SandboxClaim`: the warm pool it takes a Sandbox from, and what it adds to that
/// Sandbox's Pod.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Claim {
    pub metadata: ObjectMeta,
    /// `spec.warmPoolRef.name`.
    pub warm_pool: String,
    /// `spec.env`.
    pub env: Vec<ClaimEnv>,
    /// `spec.additionalPodMetadata`: labels and annotations added to the Pod.
    pub pod_metadata: ObjectMeta,
}

/// A `SandboxWarmPool`: the template it keeps Sandboxes of.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct WarmPool {
    pub metadata: ObjectMeta,
    /// `spec.sandboxTemplateRef.name`.
    pub template: String,
}

/// An agent-sandbox object that points at a template rather than carrying one. Held boxed
/// in [`Subject`], so the size of its larger variant costs nothing elsewhere.
#[derive(Debug, Clone, PartialEq)]
#[allow(clippy::large_enum_variant)]
pub enum SandboxRef {
    Claim(Claim),
    WarmPool(WarmPool),
}

impl SandboxRef {
    pub fn kind(&self) -> &'static str {
        match self {
            SandboxRef::Claim(_) => "SandboxClaim",
            SandboxRef::WarmPool(_) => "SandboxWarmPool",
        }
    }
    pub fn metadata(&self) -> &ObjectMeta {
        match self {
            SandboxRef::Claim(c) => &c.metadata,
            SandboxRef::WarmPool(p) => &p.metadata,
        }
    }
}

/// The object under review.
#[derive(Debug, Clone, PartialEq)]
pub enum Subject {
    /// DELETE and CONNECT carry no object.
    None,
    Pod(Box<Pod>),
    Template(Box<Template>),
    /// The options of a CONNECT to a pod's `exec`, `attach`, `portforward` or `proxy`, or to
    /// a Service's `proxy`.
    Connect(Box<ConnectOptions>),
    /// A NetworkPolicy, a Cilium policy or an RBAC object: what agents' verdicts rest on,
    /// judged by what its change would open to the agents already running
    /// ([`crate::engine::dependents`]).
    Dependency(Box<Dependency>),
    /// A `SandboxClaim` or `SandboxWarmPool` (agent-sandbox).
    SandboxRef(Box<SandboxRef>),
    /// A kind the engine does not judge.
    Other,
}

/// An object a running agent's verdict depends on.
#[derive(Debug, Clone, PartialEq)]
pub enum Dependency {
    NetworkPolicy(k8s_openapi::api::networking::v1::NetworkPolicy),
    /// A CiliumNetworkPolicy or CiliumClusterwideNetworkPolicy as sent (with its `kind`),
    /// read by `engine::egress` where it is judged.
    Cilium(serde_json::Value),
    Role(k8s_openapi::api::rbac::v1::Role),
    ClusterRole(k8s_openapi::api::rbac::v1::ClusterRole),
    RoleBinding(k8s_openapi::api::rbac::v1::RoleBinding),
    ClusterRoleBinding(k8s_openapi::api::rbac::v1::ClusterRoleBinding),
}

const CILIUM_NETWORK_POLICY: &str = "CiliumNetworkPolicy";
const CILIUM_CLUSTERWIDE_NETWORK_POLICY: &str = "CiliumClusterwideNetworkPolicy";

/// The kinds read as a [`Dependency`].
pub const DEPENDENCY_KINDS: &[&str] = &[
    "NetworkPolicy",
    CILIUM_NETWORK_POLICY,
    CILIUM_CLUSTERWIDE_NETWORK_POLICY,
    "Role",
    "ClusterRole",
    "RoleBinding",
    "ClusterRoleBinding",
];

/// What a CONNECT asks for (`PodExecOptions`, `PodAttachOptions`, `PodPortForwardOptions`,
/// `PodProxyOptions`, `ServiceProxyOptions`): the object names no labels, so the pod (or the
/// Service's pods) is looked up by the review's name.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(default)]
pub struct ConnectOptions {
    #[serde(skip)]
    pub kind: String,
    pub command: Vec<String>,
    pub container: Option<String>,
    pub ports: Vec<i32>,
    /// The path a proxy request forwards to.
    pub path: Option<String>,
}

/// The option kinds a CONNECT carries.
pub const CONNECT_KINDS: &[&str] = &[
    "PodExecOptions",
    "PodAttachOptions",
    "PodPortForwardOptions",
    "PodProxyOptions",
    "ServiceProxyOptions",
];

/// What a CONNECT reaches: one pod by name, or the pods behind a Service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectTarget<'a> {
    Pod(&'a str),
    Service(&'a str),
}

/// One admission request, typed.
#[derive(Debug, Clone)]
pub struct Review {
    pub uid: String,
    pub kind: GroupVersionKind,
    pub resource: GroupVersionResource,
    pub sub_resource: Option<String>,
    pub operation: Operation,
    pub namespace: String,
    pub name: String,
    pub user: User,
    pub dry_run: bool,
    pub object: Subject,
    pub old_object: Subject,
    /// When the request was received, in seconds since the Unix epoch, as the caller's clock
    /// says (the engine reads no clock). Approvals with an expiry are judged against it;
    /// `0` (unknown) honours none of them.
    pub now: i64,
}

/// `ObjectMeta` as the engine reads it: every field but `managedFields`, which is most of a
/// real object's metadata (free-form JSON trees per field manager) and which no check or
/// mutation looks at. Serde skips it without building anything; the patch never mentions it
/// since neither the original nor the mutated pod carries it.
#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct MetaIn {
    annotations: Option<std::collections::BTreeMap<String, String>>,
    creation_timestamp: Option<k8s_openapi::apimachinery::pkg::apis::meta::v1::Time>,
    deletion_grace_period_seconds: Option<i64>,
    deletion_timestamp: Option<k8s_openapi::apimachinery::pkg::apis::meta::v1::Time>,
    finalizers: Option<Vec<String>>,
    generate_name: Option<String>,
    generation: Option<i64>,
    labels: Option<std::collections::BTreeMap<String, String>>,
    name: Option<String>,
    namespace: Option<String>,
    owner_references: Option<Vec<k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference>>,
    resource_version: Option<String>,
    self_link: Option<String>,
    uid: Option<String>,
}

fn meta<'de, D: serde::Deserializer<'de>>(d: D) -> Result<ObjectMeta, D::Error> {
    let m = MetaIn::deserialize(d)?;
    Ok(ObjectMeta {
        annotations: m.annotations,
        creation_timestamp: m.creation_timestamp,
        deletion_grace_period_seconds: m.deletion_grace_period_seconds,
        deletion_timestamp: m.deletion_timestamp,
        finalizers: m.finalizers,
        generate_name: m.generate_name,
        generation: m.generation,
        labels: m.labels,
        managed_fields: None,
        name: m.name,
        namespace: m.namespace,
        owner_references: m.owner_references,
        resource_version: m.resource_version,
        self_link: m.self_link,
        uid: m.uid,
    })
}

/// A Pod as the engine reads it: metadata without `managedFields`, the spec as
/// [`super::pod`] holds it, and no status.
#[derive(Deserialize)]
struct PodIn {
    #[serde(default, deserialize_with = "meta")]
    metadata: ObjectMeta,
    #[serde(default)]
    spec: Option<PodSpec>,
}

#[derive(Deserialize)]
struct TemplateIn {
    #[serde(default, deserialize_with = "meta")]
    metadata: ObjectMeta,
    #[serde(default)]
    spec: Option<PodSpec>,
}

/// The template is read whole first and typed from that: workloads are a small share of
/// reviews, and their approval digest needs the fields the types step over.
#[derive(Deserialize)]
struct TemplateSpec {
    template: serde_json::Value,
}

impl TemplateSpec {
    fn typed<E: serde::de::Error>(self) -> Result<(PodTemplateSpec, serde_json::Value), E> {
        typed_template(self.template)
    }
}

fn typed_template<E: serde::de::Error>(
    template: serde_json::Value,
) -> Result<(PodTemplateSpec, serde_json::Value), E> {
    let t = TemplateIn::deserialize(&template).map_err(E::custom)?;
    Ok((
        PodTemplateSpec {
            metadata: Some(t.metadata),
            spec: t.spec,
        },
        template,
    ))
}

/// `Sandbox` and `SandboxTemplate` share `spec.podTemplate`; the rest is the template's.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SandboxSpecIn {
    pod_template: serde_json::Value,
    #[serde(default)]
    network_policy: Option<SandboxNetworkPolicy>,
    #[serde(default)]
    network_policy_management: Option<String>,
    #[serde(default)]
    env_vars_injection_policy: Option<String>,
}
#[derive(Deserialize)]
struct WithSandboxSpec {
    #[serde(default, deserialize_with = "meta")]
    metadata: ObjectMeta,
    spec: SandboxSpecIn,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct NameRef {
    name: String,
}
#[derive(Deserialize, Default)]
#[serde(default)]
struct PodMetadataIn {
    labels: Option<std::collections::BTreeMap<String, String>>,
    annotations: Option<std::collections::BTreeMap<String, String>>,
}
#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct RefSpecIn {
    warm_pool_ref: NameRef,
    sandbox_template_ref: NameRef,
    env: Vec<ClaimEnv>,
    additional_pod_metadata: PodMetadataIn,
}
#[derive(Deserialize)]
struct WithRefSpec {
    #[serde(default, deserialize_with = "meta")]
    metadata: ObjectMeta,
    #[serde(default)]
    spec: RefSpecIn,
}
#[derive(Deserialize)]
struct WithTemplate {
    #[serde(default, deserialize_with = "meta")]
    metadata: ObjectMeta,
    spec: TemplateSpec,
}
#[derive(Deserialize)]
struct JobTemplate {
    spec: TemplateSpec,
}
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CronSpec {
    job_template: JobTemplate,
}
#[derive(Deserialize)]
struct WithJobTemplate {
    #[serde(default, deserialize_with = "meta")]
    metadata: ObjectMeta,
    spec: CronSpec,
}

impl Subject {
    /// Parses an object of `kind` from raw JSON, reading only what the engine needs.
    pub fn parse(kind: &str, json: &str) -> Result<Subject, serde_json::Error> {
        let mut de = serde_json::Deserializer::from_str(json);
        let subject = Subject::deserialize_as(kind, &mut de)?;
        de.end()?;
        Ok(subject)
    }

    /// Reads an object of `kind` from any deserializer, reading only what the engine needs:
    /// the review reader uses it to build the object in the envelope's own pass.
    pub fn deserialize_as<'de, D: serde::Deserializer<'de>>(
        kind: &str,
        de: D,
    ) -> Result<Subject, D::Error> {
        Ok(match kind {
            "Pod" => {
                let p = PodIn::deserialize(de)?;
                Subject::Pod(Box::new(Pod {
                    metadata: p.metadata,
                    spec: p.spec,
                }))
            }
            "CronJob" => {
                let w = WithJobTemplate::deserialize(de)?;
                let (template, raw) = w.spec.job_template.spec.typed()?;
                Subject::Template(Box::new(Template {
                    kind: kind.to_string(),
                    metadata: w.metadata,
                    template,
                    template_path: "spec.jobTemplate.spec.template",
                    raw,
                    sandbox: None,
                }))
            }
            k if SANDBOX_KINDS.contains(&k) => {
                let w = WithSandboxSpec::deserialize(de)?;
                let (template, raw) = typed_template(w.spec.pod_template)?;
                let sandbox = (k == "SandboxTemplate").then(|| SandboxTemplateSettings {
                    unmanaged: w.spec.network_policy_management.as_deref() == Some("Unmanaged"),
                    network_policy: w.spec.network_policy,
                    env_injection: matches!(
                        w.spec.env_vars_injection_policy.as_deref(),
                        Some("Allowed" | "Overrides")
                    ),
                });
                Subject::Template(Box::new(Template {
                    kind: kind.to_string(),
                    metadata: w.metadata,
                    template,
                    template_path: "spec.podTemplate",
                    raw,
                    sandbox,
                }))
            }
            k if SANDBOX_REF_KINDS.contains(&k) => {
                let w = WithRefSpec::deserialize(de)?;
                Subject::SandboxRef(Box::new(if k == "SandboxClaim" {
                    SandboxRef::Claim(Claim {
                        metadata: w.metadata,
                        warm_pool: w.spec.warm_pool_ref.name,
                        env: w.spec.env,
                        pod_metadata: ObjectMeta {
                            labels: w.spec.additional_pod_metadata.labels,
                            annotations: w.spec.additional_pod_metadata.annotations,
                            ..Default::default()
                        },
                    })
                } else {
                    SandboxRef::WarmPool(WarmPool {
                        metadata: w.metadata,
                        template: w.spec.sandbox_template_ref.name,
                    })
                }))
            }
            k if CONNECT_KINDS.contains(&k) => {
                let mut o = ConnectOptions::deserialize(de)?;
                o.kind = k.to_string();
                Subject::Connect(Box::new(o))
            }
            k if WORKLOAD_KINDS.contains(&k) => {
                let w = WithTemplate::deserialize(de)?;
                let (template, raw) = w.spec.typed()?;
                Subject::Template(Box::new(Template {
                    kind: kind.to_string(),
                    metadata: w.metadata,
                    template,
                    template_path: "spec.template",
                    raw,
                    sandbox: None,
                }))
            }
            "NetworkPolicy" => Subject::Dependency(Box::new(Dependency::NetworkPolicy(
                Deserialize::deserialize(de)?,
            ))),
            "Role" => {
                Subject::Dependency(Box::new(Dependency::Role(Deserialize::deserialize(de)?)))
            }
            "ClusterRole" => Subject::Dependency(Box::new(Dependency::ClusterRole(
                Deserialize::deserialize(de)?,
            ))),
            "RoleBinding" => Subject::Dependency(Box::new(Dependency::RoleBinding(
                Deserialize::deserialize(de)?,
            ))),
            "ClusterRoleBinding" => Subject::Dependency(Box::new(Dependency::ClusterRoleBinding(
                Deserialize::deserialize(de)?,
            ))),
            CILIUM_NETWORK_POLICY | CILIUM_CLUSTERWIDE_NETWORK_POLICY => {
                let mut value = serde_json::Value::deserialize(de)?;
                // The kind decides how the policy selects; the object may not repeat it.
                value["kind"] = kind.into();
                Subject::Dependency(Box::new(Dependency::Cilium(value)))
            }
            _ => {
                serde::de::IgnoredAny::deserialize(de)?;
                Subject::Other
            }
        })
    }

    /// Same as [`Subject::parse`] from an already parsed value (manifests read by `check`).
    /// The value goes back through text so that both paths share one parser; `check` is
    /// not a hot path.
    pub fn from_value(kind: &str, value: serde_json::Value) -> Result<Subject, serde_json::Error> {
        Subject::parse(kind, &value.to_string())
    }
}

impl Review {
    /// An UPDATE (not a subresource) that leaves the pod spec, or the workload's pod template,
    /// as it was needs no judging: metadata-only updates (finalizer removal by the garbage
    /// collector, labels, replicas) must not be blocked for an object admitted earlier.
    pub fn leaves_spec_unchanged(&self) -> bool {
        if self.operation != Operation::Update || self.sub_resource.is_some() {
            return false;
        }
        match (&self.object, &self.old_object) {
            (Subject::Pod(new), Subject::Pod(old)) => new.spec == old.spec,
            // The whole template as sent: a change to a field no check reads still voids an
            // approval's digest, so it must be judged here, not waved through.
            (Subject::Template(new), Subject::Template(old)) => {
                new.template == old.template && new.raw == old.raw && new.sandbox == old.sandbox
            }
            _ => false,
        }
    }

    /// The ephemeral containers an `ephemeralcontainers` UPDATE adds: indices into the new
    /// Pod's list of those whose names the old Pod does not have.
    pub fn added_ephemeral_containers(&self) -> Vec<usize> {
        let names = |s: &Subject| -> Vec<String> {
            match s {
                Subject::Pod(p) => p
                    .spec
                    .as_ref()
                    .and_then(|s| s.ephemeral_containers.as_ref())
                    .map(|l| l.iter().map(|c| c.name.clone()).collect())
                    .unwrap_or_default(),
                _ => Vec::new(),
            }
        };
        let old = names(&self.old_object);
        names(&self.object)
            .iter()
            .enumerate()
            .filter(|(_, n)| !old.contains(n))
            .map(|(i, _)| i)
            .collect()
    }

    /// What this CONNECT reaches. A proxy request names its target the way the API server's
    /// proxy URLs do, `name`, `name:port` or `scheme:name:port` (`https:agent:18789`); pod and
    /// Service names never hold a `:`, so the name is the part the scheme and port leave.
    pub fn connect_target(&self) -> ConnectTarget<'_> {
        let name = self.name.as_str();
        let name = if self.sub_resource.as_deref() == Some("proxy") {
            let parts: Vec<&str> = name.split(':').collect();
            match parts.as_slice() {
                [_, n, _] => n,
                [n, ..] => n,
                [] => name,
            }
        } else {
            name
        };
        if self.resource.resource == "services" {
            ConnectTarget::Service(name)
        } else {
            ConnectTarget::Pod(name)
        }
    }

    /// Whether this is `kubectl debug` adding ephemeral containers to a running Pod.
    pub fn is_debug(&self) -> bool {
        self.sub_resource.as_deref() == Some(EPHEMERAL_CONTAINERS)
    }

    /// The review the API server would send for creating `object` as a dry run by `username`
    /// with no groups: what `check` (manifests) and `audit` (a live cluster) judge.
    pub fn dry_run_create(
        kind: &str,
        api_version: &str,
        namespace: &str,
        name: &str,
        username: &str,
        object: Subject,
        now: i64,
    ) -> Review {
        let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
        Review {
            uid: String::new(),
            kind: GroupVersionKind::gvk(group, version, kind),
            resource: GroupVersionResource::gvr(group, version, &plural_of(kind)),
            sub_resource: None,
            operation: Operation::Create,
            namespace: namespace.to_string(),
            name: name.to_string(),
            user: User {
                username: username.to_string(),
                groups: Vec::new(),
            },
            // Nothing is stored: the engine answers a dry run exactly like a real request.
            dry_run: true,
            object,
            old_object: Subject::None,
            now,
        }
    }
}

/// The resource name of a kind, as the API server names its built-in kinds and the
/// agent-sandbox CRDs name theirs (`sandboxes`).
fn plural_of(kind: &str) -> String {
    let lower = kind.to_lowercase();
    if lower.ends_with('x') || lower.ends_with('s') {
        format!("{lower}es")
    } else if let Some(stem) = lower.strip_suffix('y') {
        format!("{stem}ies")
    } else {
        format!("{lower}s")
    }
}

static EMPTY_SPEC: std::sync::LazyLock<PodSpec> = std::sync::LazyLock::new(PodSpec::default);
static EMPTY_META: std::sync::LazyLock<ObjectMeta> = std::sync::LazyLock::new(ObjectMeta::default);

/// The pod under review as the checks see it: metadata (labels, annotations), spec, and the
/// path of the spec inside the reviewed object, so violations name exact paths.
#[derive(Debug, Clone, Copy)]
pub struct Target<'a> {
    pub namespace: &'a str,
    pub meta: &'a ObjectMeta,
    pub spec: &'a PodSpec,
    /// `spec` for a Pod, `spec.template.spec` for a Deployment, ...
    pub spec_path: &'a str,
    /// A workload's pod template rather than a Pod: its Pods pass through the mutation
    /// before they are stored, so what the mutation adds is not yet there.
    pub template: bool,
}

impl<'a> Target<'a> {
    pub fn of_pod(pod: &'a Pod, namespace: &'a str) -> Target<'a> {
        Target {
            namespace,
            meta: &pod.metadata,
            spec: pod.spec.as_ref().unwrap_or(&EMPTY_SPEC),
            spec_path: "spec",
            template: false,
        }
    }

    pub fn of_template(t: &'a Template, namespace: &'a str, spec_path: &'a str) -> Target<'a> {
        Target {
            namespace,
            meta: t.template.metadata.as_ref().unwrap_or(&EMPTY_META),
            spec: t.template.spec.as_ref().unwrap_or(&EMPTY_SPEC),
            spec_path,
            template: true,
        }
    }

    /// `spec.containers[0]`-style path below the spec.
    pub fn path(&self, rest: &str) -> String {
        format!("{}.{}", self.spec_path, rest)
    }

    /// `metadata.annotations`-style path below the pod's (or template's) metadata.
    pub fn meta_path(&self, rest: &str) -> String {
        format!(
            "{}metadata.{}",
            self.spec_path.strip_suffix("spec").unwrap_or(""),
            rest
        )
    }

    pub fn service_account(&self) -> Option<&'a str> {
        self.spec
            .service_account_name
            .as_deref()
            .filter(|s| !s.is_empty())
            .or(self
                .spec
                .service_account
                .as_deref()
                .filter(|s| !s.is_empty()))
    }
}

/// The label agent-sandbox's claim and warm-pool controllers put on the Sandboxes they make
/// (and the Sandbox controller on their Pods): [`name_hash`] of the template's name.
pub const TEMPLATE_REF_HASH_LABEL: &str = "agents.x-k8s.io/sandbox-template-ref-hash";

/// How agent-sandbox's controllers hash a name into a label value: 32-bit FNV-1a over its
/// bytes, as eight lower-case hex digits (their `NameHash`). Written here rather than taken
/// from a crate: the `fnv` crate gives the 64-bit variant only, and this is four lines.
pub fn name_hash(name: &str) -> String {
    let h = name.bytes().fold(0x811c_9dc5_u32, |h, b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    });
    format!("{h:08x}")
}

/// The name of the `Sandbox` (group `agents.x-k8s.io`) that controls this object: the Pod
/// agent-sandbox's controller made for it.
pub fn sandbox_owner(meta: &ObjectMeta) -> Option<&str> {
    meta.owner_references
        .iter()
        .flatten()
        .find(|o| o.controller == Some(true))
        .filter(|o| {
            o.kind == "Sandbox"
                && o.api_version
                    .split_once('/')
                    .is_some_and(|(group, _)| group == SANDBOX_GROUP)
        })
        .map(|o| o.name.as_str())
}

/// The label the Deployment controller puts on a ReplicaSet's Pods: the suffix of the
/// ReplicaSet's name.
pub const POD_TEMPLATE_HASH_LABEL: &str = "pod-template-hash";

/// The workload a Pod (or a controller-made ReplicaSet or Job) belongs to, read from its
/// controller owner reference the way the controllers name what they make:
/// - a ReplicaSet named `<deployment>-<pod-template-hash>` (the hash also labels the
///   object) stands for that Deployment;
/// - anything else is the owner itself: for a CronJob's Pods that is the Job of one run,
///   since a Pod cannot tell which CronJob made its Job ([`cronjob_of_job`] answers for the
///   Job itself).
///
/// `None` when the object has no controller owner (a bare Pod).
pub fn workload_of(meta: &ObjectMeta) -> Option<(&str, String)> {
    let owner = meta
        .owner_references
        .iter()
        .flatten()
        .find(|o| o.controller == Some(true))?;
    if owner.kind == "ReplicaSet"
        && let Some(hash) = meta
            .labels
            .as_ref()
            .and_then(|l| l.get(POD_TEMPLATE_HASH_LABEL))
        && let Some(deployment) = owner
            .name
            .strip_suffix(hash.as_str())
            .and_then(|n| n.strip_suffix('-'))
        && !deployment.is_empty()
    {
        return Some(("Deployment", deployment.to_string()));
    }
    Some((owner.kind.as_str(), owner.name.clone()))
}

/// For a Job: the CronJob that made it, when its controller owner is a CronJob and its name
/// is `<cronjob>-<digits>`, the name the CronJob controller gives each run.
pub fn cronjob_of_job<'a>(job_name: &'a str, meta: &ObjectMeta) -> Option<&'a str> {
    let owner = meta
        .owner_references
        .iter()
        .flatten()
        .find(|o| o.controller == Some(true) && o.kind == "CronJob")?;
    let (base, suffix) = job_name.rsplit_once('-')?;
    (base == owner.name && !suffix.is_empty() && suffix.bytes().all(|b| b.is_ascii_digit()))
        .then_some(base)
}

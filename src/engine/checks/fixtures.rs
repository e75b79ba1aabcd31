//! Test fixtures shared by the checks' and the mutations' unit tests: a chainable pod builder
//! (`pod("agent").label("app", "openclaw").container("agent").run_as_non_root(true)`), a
//! `hardened_pod()` that passes every check, a cluster view that goes with it, and helpers to
//! run one check against a pod as a Pod or as a Deployment's template.
//!
//! Container-level setters act on the container added (or picked with `with_container`) last;
//! pod-level setters carry a `pod_` prefix where the API has the same field at both levels.
#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]

use super::check::{Check, ConnectInput, Judge, PodInput, UpdateInput};
use crate::engine::egress::cilium_policy::CiliumPolicy;
use crate::engine::pod::{Container, Pod, PodSpec, PodTemplateSpec, Volume, VolumeSource};
use crate::engine::policy::{Policy, SA_TOKEN_MOUNT_PATH};
use crate::engine::review::{ConnectOptions, Review, Target, Template};
use crate::engine::selector::Labels;
use crate::engine::view::{
    BoundRole, ClusterView, DefaultLimits, PodLookup, Read, ServiceFacts, StaticView,
};
use crate::engine::violation::Violation;
use k8s_openapi::api::core::v1::{
    Capabilities, ContainerPort, EnvFromSource, EnvVar, EnvVarSource, HostPathVolumeSource,
    PodSecurityContext, ProjectedVolumeSource, SeccompProfile, SecretEnvSource, SecretKeySelector,
    SecretVolumeSource, SecurityContext, ServiceAccountTokenProjection, VolumeMount,
    VolumeProjection,
};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde_json::{Value, json};
use std::sync::Arc;

/// Namespace every fixture pod lives in unless told otherwise.
pub const NS: &str = "agents";
/// ServiceAccount of `hardened_pod()`, present in `hardened_view()`.
pub const SA: &str = "openclaw-agent";
pub const IMAGE: &str = "ghcr.io/openclaw/openclaw:2026.1";
/// RuntimeClass of `hardened_pod()`, present in `hardened_view()`.
pub const RUNTIME_CLASS: &str = "gvisor";

#[derive(Clone, Copy, PartialEq, Eq)]
enum List {
    Init,
    Main,
    Ephemeral,
}

/// Chainable pod builder; `build()` gives the `Pod`.
#[derive(Clone)]
pub struct PodBuilder {
    meta: ObjectMeta,
    spec: PodSpec,
    init: Vec<Container>,
    main: Vec<Container>,
    ephemeral: Vec<Container>,
    current: Option<(List, usize)>,
}

/// A pod named `name` in [`NS`] with no containers yet.
pub fn pod(name: &str) -> PodBuilder {
    PodBuilder {
        meta: ObjectMeta {
            name: Some(name.into()),
            namespace: Some(NS.into()),
            ..Default::default()
        },
        spec: PodSpec::default(),
        init: Vec::new(),
        main: Vec::new(),
        ephemeral: Vec::new(),
        current: None,
    }
}

/// The pod every check passes: agent label, dedicated SA, no automounted token but a
/// projected one of 3600 s, pod-level non-root and seccomp, gVisor and a user namespace, one
/// locked-down container with limits.
pub fn hardened() -> PodBuilder {
    pod("agent")
        .label("app", "openclaw")
        .service_account(SA)
        .runtime_class(RUNTIME_CLASS)
        .host_users(false)
        .automount_service_account_token(false)
        .pod_run_as_non_root(true)
        .pod_run_as_user(1000)
        .pod_seccomp("RuntimeDefault")
        .projected_token_volume("openclaw-sa-token", Some(3600))
        .empty_dir_volume("tmp")
        .container("agent")
        .hardened()
        .limits("1", "1Gi")
        .mount("openclaw-sa-token", SA_TOKEN_MOUNT_PATH)
        .mount("tmp", "/tmp")
        .env_secret("OPENAI_API_KEY", "openai", "key")
}

pub fn hardened_pod() -> Pod {
    hardened().build()
}

impl PodBuilder {
    pub fn build(self) -> Pod {
        let mut spec = self.spec;
        spec.containers = self.main;
        if !self.init.is_empty() {
            spec.init_containers = Some(self.init);
        }
        if !self.ephemeral.is_empty() {
            spec.ephemeral_containers = Some(self.ephemeral);
        }
        Pod {
            metadata: self.meta,
            spec: Some(spec),
        }
    }

    // --- metadata ---

    pub fn namespace(mut self, ns: &str) -> Self {
        self.meta.namespace = Some(ns.into());
        self
    }
    pub fn label(mut self, k: &str, v: &str) -> Self {
        self.meta
            .labels
            .get_or_insert_with(Default::default)
            .insert(k.into(), v.into());
        self
    }
    pub fn annotation(mut self, k: &str, v: &str) -> Self {
        self.meta
            .annotations
            .get_or_insert_with(Default::default)
            .insert(k.into(), v.into());
        self
    }

    // --- pod spec ---

    /// Gives direct access to the spec for fields the builder does not cover.
    pub fn spec(mut self, f: impl FnOnce(&mut PodSpec)) -> Self {
        f(&mut self.spec);
        self
    }
    pub fn service_account(mut self, name: &str) -> Self {
        self.spec.service_account_name = Some(name.into());
        self
    }
    pub fn runtime_class(mut self, name: &str) -> Self {
        self.spec.runtime_class_name = Some(name.into());
        self
    }
    pub fn host_users(mut self, on: bool) -> Self {
        self.spec.host_users = Some(on);
        self
    }
    pub fn automount_service_account_token(mut self, on: bool) -> Self {
        self.spec.automount_service_account_token = Some(on);
        self
    }
    pub fn host_network(mut self) -> Self {
        self.spec.host_network = Some(true);
        self
    }
    pub fn host_pid(mut self) -> Self {
        self.spec.host_pid = Some(true);
        self
    }
    pub fn host_ipc(mut self) -> Self {
        self.spec.host_ipc = Some(true);
        self
    }
    fn pod_sc(&mut self) -> &mut PodSecurityContext {
        self.spec
            .security_context
            .get_or_insert_with(Default::default)
    }
    pub fn pod_run_as_non_root(mut self, v: bool) -> Self {
        self.pod_sc().run_as_non_root = Some(v);
        self
    }
    pub fn pod_run_as_user(mut self, uid: i64) -> Self {
        self.pod_sc().run_as_user = Some(uid);
        self
    }
    pub fn pod_seccomp(mut self, type_: &str) -> Self {
        self.pod_sc().seccomp_profile = Some(SeccompProfile {
            type_: type_.into(),
            localhost_profile: None,
        });
        self
    }
    pub fn volume(mut self, v: Volume) -> Self {
        self.spec.volumes.get_or_insert_with(Vec::new).push(v);
        self
    }
    /// An `emptyDir` volume.
    pub fn empty_dir_volume(self, name: &str) -> Self {
        self.volume(Volume::of_source(name, VolumeSource::EmptyDir))
    }
    pub fn host_path_volume(self, name: &str, path: &str) -> Self {
        self.volume(Volume {
            name: name.into(),
            host_path: Some(HostPathVolumeSource {
                path: path.into(),
                type_: None,
            }),
            ..Default::default()
        })
    }
    pub fn secret_volume(self, name: &str, secret: &str) -> Self {
        self.volume(Volume {
            name: name.into(),
            secret: Some(SecretVolumeSource {
                secret_name: Some(secret.into()),
                ..Default::default()
            }),
            ..Default::default()
        })
    }
    /// A projected volume holding only a ServiceAccount token (`None`: expirationSeconds absent).
    pub fn projected_token_volume(self, name: &str, expiration_seconds: Option<i64>) -> Self {
        self.volume(token_volume(name, expiration_seconds))
    }

    // --- containers ---

    fn add(mut self, list: List, name: &str) -> Self {
        let c = Container {
            name: name.into(),
            image: Some(IMAGE.into()),
            ..Default::default()
        };
        let v = self.list_mut(list);
        v.push(c);
        let i = v.len() - 1;
        self.current = Some((list, i));
        self
    }
    fn list_mut(&mut self, list: List) -> &mut Vec<Container> {
        match list {
            List::Init => &mut self.init,
            List::Main => &mut self.main,
            List::Ephemeral => &mut self.ephemeral,
        }
    }
    /// Adds a regular container; container setters now act on it.
    pub fn container(self, name: &str) -> Self {
        self.add(List::Main, name)
    }
    pub fn init_container(self, name: &str) -> Self {
        self.add(List::Init, name)
    }
    pub fn ephemeral_container(self, name: &str) -> Self {
        self.add(List::Ephemeral, name)
    }
    /// Makes an existing container (of any list) the one container setters act on.
    pub fn with_container(mut self, name: &str) -> Self {
        for list in [List::Init, List::Main, List::Ephemeral] {
            if let Some(i) = self.list_mut(list).iter().position(|c| c.name == name) {
                self.current = Some((list, i));
                return self;
            }
        }
        panic!("fixture has no container {name}");
    }
    fn cur(&mut self) -> &mut Container {
        let (list, i) = self
            .current
            .expect("add a container before setting container fields");
        &mut self.list_mut(list)[i]
    }
    fn sc(&mut self) -> &mut SecurityContext {
        self.cur()
            .security_context
            .get_or_insert_with(Default::default)
    }
    /// CPU and memory limits on the current container.
    pub fn limits(mut self, cpu: &str, memory: &str) -> Self {
        self.cur().resources = Some(crate::engine::pod::Limits::of(Some(cpu), Some(memory)));
        self
    }
    /// Direct access to the current container.
    pub fn edit(mut self, f: impl FnOnce(&mut Container)) -> Self {
        f(self.cur());
        self
    }
    pub fn image(mut self, image: &str) -> Self {
        self.cur().image = Some(image.into());
        self
    }
    /// Every container-level setting the checks ask for.
    pub fn hardened(self) -> Self {
        self.run_as_non_root(true)
            .read_only_root_filesystem(true)
            .allow_privilege_escalation(false)
            .drop_caps(&["ALL"])
            .seccomp("RuntimeDefault")
    }
    pub fn no_security_context(mut self) -> Self {
        self.cur().security_context = None;
        self
    }
    pub fn run_as_non_root(mut self, v: bool) -> Self {
        self.sc().run_as_non_root = Some(v);
        self
    }
    pub fn run_as_user(mut self, uid: i64) -> Self {
        self.sc().run_as_user = Some(uid);
        self
    }
    pub fn read_only_root_filesystem(mut self, v: bool) -> Self {
        self.sc().read_only_root_filesystem = Some(v);
        self
    }
    pub fn allow_privilege_escalation(mut self, v: bool) -> Self {
        self.sc().allow_privilege_escalation = Some(v);
        self
    }
    pub fn privileged(mut self, v: bool) -> Self {
        self.sc().privileged = Some(v);
        self
    }
    pub fn seccomp(mut self, type_: &str) -> Self {
        self.sc().seccomp_profile = Some(SeccompProfile {
            type_: type_.into(),
            localhost_profile: None,
        });
        self
    }
    pub fn seccomp_localhost(mut self, profile: Option<&str>) -> Self {
        self.sc().seccomp_profile = Some(SeccompProfile {
            type_: "Localhost".into(),
            localhost_profile: profile.map(Into::into),
        });
        self
    }
    /// Replaces `capabilities.drop`.
    pub fn drop_caps(mut self, caps: &[&str]) -> Self {
        self.sc()
            .capabilities
            .get_or_insert_with(Capabilities::default)
            .drop = Some(caps.iter().map(|s| s.to_string()).collect());
        self
    }
    /// Replaces `capabilities.add`.
    pub fn add_caps(mut self, caps: &[&str]) -> Self {
        self.sc()
            .capabilities
            .get_or_insert_with(Capabilities::default)
            .add = Some(caps.iter().map(|s| s.to_string()).collect());
        self
    }
    pub fn env(mut self, name: &str, value: &str) -> Self {
        self.cur().env.get_or_insert_with(Vec::new).push(EnvVar {
            name: name.into(),
            value: Some(value.into()),
            value_from: None,
        });
        self
    }
    pub fn command(mut self, words: &[&str]) -> Self {
        self.cur().command = Some(words.iter().map(|s| s.to_string()).collect());
        self
    }
    pub fn args(mut self, words: &[&str]) -> Self {
        self.cur().args = Some(words.iter().map(|s| s.to_string()).collect());
        self
    }
    pub fn env_secret(mut self, name: &str, secret: &str, key: &str) -> Self {
        self.cur().env.get_or_insert_with(Vec::new).push(EnvVar {
            name: name.into(),
            value: None,
            value_from: Some(EnvVarSource {
                secret_key_ref: Some(SecretKeySelector {
                    name: secret.into(),
                    key: key.into(),
                    optional: None,
                }),
                ..Default::default()
            }),
        });
        self
    }
    pub fn env_from_secret(mut self, secret: &str) -> Self {
        self.cur()
            .env_from
            .get_or_insert_with(Vec::new)
            .push(EnvFromSource {
                secret_ref: Some(SecretEnvSource {
                    name: secret.into(),
                    optional: None,
                }),
                ..Default::default()
            });
        self
    }
    pub fn mount(mut self, volume: &str, path: &str) -> Self {
        self.cur()
            .volume_mounts
            .get_or_insert_with(Vec::new)
            .push(VolumeMount {
                name: volume.into(),
                mount_path: path.into(),
                read_only: Some(true),
                ..Default::default()
            });
        self
    }
    pub fn port(mut self, container_port: i32, host_port: Option<i32>) -> Self {
        self.cur()
            .ports
            .get_or_insert_with(Vec::new)
            .push(ContainerPort {
                container_port,
                host_port,
                ..Default::default()
            });
        self
    }
}

/// A projected volume with a ServiceAccount token source.
pub fn token_volume(name: &str, expiration_seconds: Option<i64>) -> Volume {
    Volume {
        name: name.into(),
        projected: Some(ProjectedVolumeSource {
            sources: Some(vec![VolumeProjection {
                service_account_token: Some(ServiceAccountTokenProjection {
                    expiration_seconds,
                    path: "token".into(),
                    ..Default::default()
                }),
                ..Default::default()
            }]),
            ..Default::default()
        }),
        ..Default::default()
    }
}

// --- cluster view ---

pub fn service_account_json(ns: &str, name: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": name, "namespace": ns}})
}

/// `podSelector: {}`, `policyTypes: [Egress]`, no rules: nothing may leave the namespace.
pub fn deny_all_egress_json(ns: &str) -> Value {
    json!({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
        "metadata": {"name": "default-deny-egress", "namespace": ns},
        "spec": {"podSelector": {}, "policyTypes": ["Egress"]}})
}

/// A NetworkPolicy in `ns` with the given spec.
pub fn network_policy_json(ns: &str, name: &str, spec: Value) -> Value {
    json!({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
        "metadata": {"name": name, "namespace": ns}, "spec": spec})
}

/// A view holding the given manifests (namespace [`NS`] when they name none).
pub fn view_of(objects: &[Value]) -> StaticView {
    let mut v = StaticView::with_namespaces(&[NS]);
    for o in objects {
        assert!(
            v.add(o, NS).unwrap(),
            "fixture kind not kept by StaticView: {o}"
        );
    }
    v
}

/// The cluster `hardened_pod()` passes in: its ServiceAccount and a deny-all egress policy.
pub fn hardened_view() -> StaticView {
    view_of(&[
        service_account_json(NS, SA),
        deny_all_egress_json(NS),
        json!({"apiVersion": "node.k8s.io/v1", "kind": "RuntimeClass",
            "metadata": {"name": RUNTIME_CLASS}, "handler": "runsc"}),
    ])
}

// --- running checks ---

/// A view that answers only the reads a check declares, and fails the test on any other: a
/// check's `reads` stay true as its code changes (the live view confirms exactly those).
pub struct Fenced<'a> {
    inner: &'a dyn ClusterView,
    check: &'static Check,
}

impl<'a> Fenced<'a> {
    pub fn new(check: &'static Check, inner: &'a dyn ClusterView) -> Self {
        Fenced { inner, check }
    }

    fn allow(&self, read: Read) {
        assert!(
            self.check.reads.contains(&read),
            "check {} read {read:?} from the cluster view but declares only {:?}",
            self.check.id,
            self.check.reads
        );
    }
}

impl ClusterView for Fenced<'_> {
    fn namespace_labels(&self, namespace: &str) -> Option<Labels> {
        self.allow(Read::NamespaceLabels);
        self.inner.namespace_labels(namespace)
    }
    fn service_account_exists(&self, namespace: &str, name: &str) -> bool {
        self.allow(Read::ServiceAccounts);
        self.inner.service_account_exists(namespace, name)
    }
    fn service_account_automount(&self, namespace: &str, name: &str) -> Option<bool> {
        self.allow(Read::ServiceAccounts);
        self.inner.service_account_automount(namespace, name)
    }
    fn bound_roles(&self, namespace: &str, service_account: &str) -> Vec<BoundRole> {
        self.allow(Read::BoundRoles);
        self.inner.bound_roles(namespace, service_account)
    }
    fn network_policies(&self, namespace: &str) -> Vec<Arc<NetworkPolicy>> {
        self.allow(Read::NetworkPolicies);
        self.inner.network_policies(namespace)
    }
    fn is_legacy_token_secret(&self, namespace: &str, name: &str) -> bool {
        self.allow(Read::LegacyTokenSecrets);
        self.inner.is_legacy_token_secret(namespace, name)
    }
    fn pod(&self, namespace: &str, name: &str) -> PodLookup {
        self.allow(Read::Pods);
        self.inner.pod(namespace, name)
    }
    fn service_pods(&self, namespace: &str, name: &str) -> PodLookup {
        self.allow(Read::Pods);
        self.inner.service_pods(namespace, name)
    }
    fn secret_provider_class(&self, namespace: &str, name: &str) -> Option<bool> {
        self.allow(Read::SecretProviderClasses);
        self.inner.secret_provider_class(namespace, name)
    }
    fn cilium_policies(&self, namespace: &str) -> Option<Vec<Arc<CiliumPolicy>>> {
        self.allow(Read::CiliumPolicies);
        self.inner.cilium_policies(namespace)
    }
    fn runtime_class(&self, name: &str) -> Option<bool> {
        self.allow(Read::RuntimeClasses);
        self.inner.runtime_class(name)
    }
    fn limit_range_defaults(&self, namespace: &str) -> DefaultLimits {
        self.allow(Read::LimitRanges);
        self.inner.limit_range_defaults(namespace)
    }
    fn config_map_keys(&self, namespace: &str, name: &str) -> Option<Arc<[String]>> {
        self.allow(Read::ConfigMaps);
        self.inner.config_map_keys(namespace, name)
    }
    fn service(&self, namespace: &str, name: &str) -> Option<ServiceFacts> {
        self.allow(Read::Services);
        self.inner.service(namespace, name)
    }
}

fn namespace_of(pod: &Pod) -> &str {
    pod.metadata.namespace.as_deref().unwrap_or(NS)
}

/// Runs a pod check on a target through a fenced view, and holds each violation to the
/// check's own id and tier.
fn judge_target(
    check: &'static Check,
    target: Target<'_>,
    policy: &Policy,
    view: &StaticView,
) -> Vec<Violation> {
    let Judge::Pod(f) = check.judge else {
        panic!("{} does not judge pods", check.id);
    };
    let fenced = Fenced::new(check, view);
    let found = f(&PodInput {
        target,
        policy,
        view: &fenced,
    });
    for v in &found {
        assert_eq!(
            (v.check, v.tier),
            (check.id, check.tier),
            "a violation of {} under another id or tier: {v:?}",
            check.id
        );
    }
    found
}

/// Runs one check on a Pod.
pub fn run(check: &'static Check, pod: &Pod, policy: &Policy, view: &StaticView) -> Vec<Violation> {
    judge_target(check, Target::of_pod(pod, namespace_of(pod)), policy, view)
}

/// Runs one check on a Pod with the default policy and `hardened_view()`.
pub fn run_default(check: &'static Check, pod: &Pod) -> Vec<Violation> {
    run(check, pod, &Policy::default(), &hardened_view())
}

/// Runs a CONNECT check on a review through a fenced view, holding each violation to the
/// check's own id and tier.
pub fn run_connect(
    check: &'static Check,
    review: &Review,
    options: &ConnectOptions,
    pod_known: bool,
    policy: &Policy,
    view: &StaticView,
) -> Vec<Violation> {
    let Judge::Connect(f) = check.judge else {
        panic!("{} does not judge CONNECTs", check.id);
    };
    let fenced = Fenced::new(check, view);
    let found = f(&ConnectInput {
        review,
        options,
        policy,
        pod_known,
        view: &fenced,
    });
    for v in &found {
        assert_eq!((v.check, v.tier), (check.id, check.tier), "{v:?}");
    }
    found
}

/// Runs an UPDATE check on an old and a new pod, holding each violation to the check's own
/// id and tier. `was`/`is` are what [`crate::engine::agent::of`] says of each.
pub fn run_update(
    check: &'static Check,
    review: &Review,
    old: &Pod,
    new: &Pod,
    policy: &Policy,
) -> Vec<Violation> {
    let Judge::Update(f) = check.judge else {
        panic!("{} does not judge UPDATEs", check.id);
    };
    let old = Target::of_pod(old, &review.namespace);
    let new = Target::of_pod(new, &review.namespace);
    let was = crate::engine::agent::of(policy, &old).expect("the old pod must be an agent");
    let found = f(&UpdateInput {
        review,
        old,
        new,
        was,
        is: crate::engine::agent::of(policy, &new),
        policy,
    });
    for v in &found {
        assert_eq!((v.check, v.tier), (check.id, check.tier), "{v:?}");
    }
    found
}

/// The pod as a Deployment's template, the way the engine parses one.
pub fn as_deployment(pod: &Pod) -> Template {
    let template = PodTemplateSpec {
        metadata: Some(pod.metadata.clone()),
        spec: pod.spec.clone(),
    };
    Template {
        raw: serde_json::to_value(&template).unwrap_or_default(),
        kind: "Deployment".into(),
        metadata: ObjectMeta {
            name: pod.metadata.name.clone(),
            namespace: pod.metadata.namespace.clone(),
            ..Default::default()
        },
        template,
        template_path: "spec.template",
        sandbox: None,
    }
}

/// Runs one check on the pod as a Deployment's template (paths start `spec.template.spec`).
pub fn run_on_deployment(
    check: &'static Check,
    pod: &Pod,
    policy: &Policy,
    view: &StaticView,
) -> Vec<Violation> {
    let t = as_deployment(pod);
    judge_target(
        check,
        Target::of_template(&t, namespace_of(pod), "spec.template.spec"),
        policy,
        view,
    )
}

/// Runs every pod check through its own fence, as the engine runs them (in report order,
/// each when the policy enables it).
pub fn run_all(pod: &Pod, policy: &Policy, view: &StaticView) -> Vec<Violation> {
    super::CHECKS
        .iter()
        .copied()
        .filter(|c| c.judges_pods() && c.enabled(policy))
        .flat_map(|c| run(c, pod, policy, view))
        .collect()
}

/// The paths of a list of violations, for compact assertions.
pub fn paths(v: &[Violation]) -> Vec<&str> {
    v.iter().map(|x| x.path.as_str()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builder_puts_setters_on_the_last_container_of_each_list() {
        let p = hardened()
            .init_container("setup")
            .run_as_user(0)
            .ephemeral_container("debug")
            .privileged(true)
            .build();
        let spec = p.spec.unwrap();
        assert_eq!(spec.containers.len(), 1);
        let init = &spec.init_containers.unwrap()[0];
        assert_eq!(init.security_context.as_ref().unwrap().run_as_user, Some(0));
        let eph = &spec.ephemeral_containers.unwrap()[0];
        assert_eq!(
            eph.security_context.as_ref().unwrap().privileged,
            Some(true)
        );
        assert!(
            spec.containers[0]
                .security_context
                .as_ref()
                .unwrap()
                .privileged
                .is_none()
        );
    }

    #[test]
    fn hardened_pod_passes_every_check() {
        let v = run_all(&hardened_pod(), &Policy::default(), &hardened_view());
        assert!(v.is_empty(), "{v:#?}");
    }

    #[test]
    fn hardened_pod_passes_every_check_as_a_deployment_template() {
        let pod = hardened_pod();
        let t = as_deployment(&pod);
        let view = hardened_view();
        let policy = Policy::default();
        let input = PodInput {
            target: Target::of_template(&t, NS, "spec.template.spec"),
            policy: &policy,
            view: &view,
        };
        let v = super::super::run_pod_checks(&input);
        assert!(v.is_empty(), "{v:#?}");
    }

    #[test]
    fn bare_pod_breaks_every_check() {
        use crate::engine::pod::{Probe, TCPSocketAction};
        use k8s_openapi::api::core::v1::{AppArmorProfile, SELinuxOptions, Sysctl};
        let p = pod("bare")
            .label("app", "openclaw")
            .host_network()
            .container("agent")
            .privileged(true)
            .add_caps(&["SYS_ADMIN"])
            .edit(|c| {
                let sc = c.security_context.get_or_insert_with(Default::default);
                sc.app_armor_profile = Some(AppArmorProfile {
                    type_: "Unconfined".into(),
                    localhost_profile: None,
                });
                sc.se_linux_options = Some(SELinuxOptions {
                    type_: Some("spc_t".into()),
                    ..Default::default()
                });
                sc.proc_mount = Some("Unmasked".into());
                c.liveness_probe = Some(Box::new(Probe {
                    tcp_socket: Some(TCPSocketAction {
                        host: Some("169.254.169.254".into()),
                    }),
                    ..Default::default()
                }));
            })
            .spec(|s| {
                s.security_context
                    .get_or_insert_with(Default::default)
                    .sysctls = Some(vec![Sysctl {
                    name: "kernel.msgmax".into(),
                    value: "65536".into(),
                }])
            })
            .volume(Volume::of_source("share", VolumeSource::Nfs))
            .env("OPENAI_API_KEY", "literal-value-here")
            .env("OPENAI_BASE_URL", "https://api.openai.com/v1")
            .annotation("openclaw.io/secret-provider-class", "no-such-class")
            .build();
        let view = view_of(&[
            // Any SecretProviderClass makes the API known, so the missing one is reported.
            json!({"apiVersion": "secrets-store.csi.x-k8s.io/v1", "kind": "SecretProviderClass",
                "metadata": {"name": "other", "namespace": NS}, "spec": {"provider": "vault"}}),
            json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
            "metadata": {"name": "default-edit", "namespace": NS},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "edit"},
            "subjects": [{"kind": "ServiceAccount", "name": "default", "namespace": NS}]}),
        ]);
        // With inference endpoints named, so that `in-cluster-inference` runs too.
        let mut policy = Policy::default();
        policy.checks.inference.allowed_hosts = vec!["llm.corp.example".into()];
        let v = run_all(&p, &policy, &view);
        let mut ids: Vec<&str> = v.iter().map(|x| x.check).collect();
        ids.dedup();
        let all: Vec<&str> = super::super::CHECKS
            .iter()
            .filter(|c| c.judges_pods())
            .map(|c| c.id)
            .collect();
        assert_eq!(ids, all);
    }

    #[test]
    fn a_windows_pod_is_not_asked_for_the_linux_only_fields() {
        use k8s_openapi::api::core::v1::PodOS;
        // What the API server lets a Windows pod set: no seccomp, capabilities, escalation,
        // read-only root, hostUsers (Pod Security exempts the first three likewise).
        let windows = |b: PodBuilder| {
            b.spec(|s| {
                s.os = Some(PodOS {
                    name: "windows".into(),
                })
            })
        };
        let p = windows(pod("win").pod_run_as_non_root(true).container("agent")).build();
        let linux_only = [
            super::super::seccomp_profile::CHECK.id,
            super::super::drop_all_capabilities::CHECK.id,
            super::super::no_privilege_escalation::CHECK.id,
            super::super::read_only_root_filesystem::CHECK.id,
            super::super::user_namespace::CHECK.id,
        ];
        let v = run_all(&p, &Policy::default(), &hardened_view());
        assert!(
            v.iter().all(|v| !linux_only.contains(&v.check)),
            "{:#?}",
            v.iter()
                .filter(|v| linux_only.contains(&v.check))
                .collect::<Vec<_>>()
        );
        // The same pod as Linux gets them all; a privileged Windows container is still one.
        let linux = run_all(
            &pod("lin")
                .pod_run_as_non_root(true)
                .container("agent")
                .build(),
            &Policy::default(),
            &hardened_view(),
        );
        for id in linux_only {
            assert!(linux.iter().any(|v| v.check == id), "{id}");
        }
        let p = windows(
            pod("win")
                .pod_run_as_non_root(true)
                .container("agent")
                .privileged(true),
        )
        .build();
        let v = run_default(&super::super::no_privilege_escalation::CHECK, &p);
        assert_eq!(paths(&v), ["spec.containers[0].securityContext.privileged"]);
    }

    /// A check that reads the NetworkPolicies without declaring them.
    fn reads_policies(input: &PodInput<'_>) -> Vec<Violation> {
        let _ = input.view.network_policies(NS);
        Vec::new()
    }

    static UNDECLARED: Check = Check {
        id: "reads-what-it-did-not-declare",
        tier: crate::engine::violation::Tier::Low,
        judge: Judge::Pod(reads_policies),
        reads: &[],
        applies: super::super::check::always,
    };

    static DECLARED: Check = Check {
        id: "reads-what-it-declared",
        tier: crate::engine::violation::Tier::Low,
        judge: Judge::Pod(reads_policies),
        reads: &[Read::NetworkPolicies],
        applies: super::super::check::always,
    };

    #[test]
    fn the_fence_fails_a_check_that_reads_what_it_did_not_declare() {
        let view = hardened_view();
        let caught = std::panic::catch_unwind(|| {
            run(&UNDECLARED, &hardened_pod(), &Policy::default(), &view)
        });
        let message = caught.expect_err("the fence let an undeclared read through");
        let text = message
            .downcast_ref::<String>()
            .cloned()
            .unwrap_or_default();
        assert!(text.contains("NetworkPolicies"), "{text}");
        assert!(run(&DECLARED, &hardened_pod(), &Policy::default(), &view).is_empty());
    }
}

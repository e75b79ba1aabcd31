//! SIG Apps' agent-sandbox (`sigs.k8s.io/agent-sandbox`), judged at apply.
//!
//! `Sandbox` and `SandboxTemplate` carry a pod template at `spec.podTemplate` and are judged
//! by the ordinary pod checks (the review layer reads them as workload templates). What this
//! module adds is what those objects mean beyond their template:
//!
//! - a `Managed` template's controller writes one NetworkPolicy for the template's Pods from
//!   `spec.networkPolicy` (an open default when it is omitted); `default-deny-egress` judges
//!   that policy with the namespace's own, through a view that holds it ([`ManagedView`]),
//!   and its findings point at `spec.networkPolicy` with the egress to write;
//! - a `SandboxClaim` adds env and pod metadata to the Pod of the Sandbox it adopts: its
//!   literal env values are judged by the credential check (unless its template refuses
//!   claims' env), its labels may not move an agent label, and its exemption annotations go
//!   through the same approver rule as a Pod's;
//! - a claim naming a warm pool, or a pool naming a template, that does not exist is said so
//!   in a warning, when the view holds these kinds.

use super::action;
use super::checks::check::PodInput;
use super::checks::{default_deny_egress, no_plaintext_credentials};
use super::decision::{self, Decision, Judged, Skip};
use super::egress::cilium_policy::CiliumPolicy;
use super::egress::rule::AllowListText;
use super::exemptions;
use super::pod::{Container, PodSpec};
use super::policy::{EgressAllow, Mode, Policy};
use super::review::{Claim, Operation, Review, SandboxRef, Target, Template};
use super::selector::{self, Labels};
use super::view::{BoundRole, ClusterView, DefaultLimits, PodLookup, SandboxFacts, ServiceFacts};
use super::violation::Violation;
use k8s_openapi::api::core::v1::EnvVar;
use k8s_openapi::api::networking::v1 as net;
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use std::sync::Arc;

/// The name agent-sandbox's controller gives the NetworkPolicy it writes for a template.
pub fn managed_policy_name(template: &str) -> String {
    format!("{template}-network-policy")
}

/// The NetworkPolicy the controller will write for a `Managed` `SandboxTemplate`; `None` for
/// an `Unmanaged` one and for anything else. It selects the template's Pods (by a label the
/// controller adds; here every pod, since only this template is judged with it) for Ingress
/// and Egress. Its egress is `spec.networkPolicy.egress` when `spec.networkPolicy` is written
/// (none at all, so deny-all, when that list is omitted), and the controller's default when
/// it is omitted: every port to any IPv4 address outside the private and link-local ranges
/// and to any IPv6 address outside the unique-local and link-local ranges, which also shuts
/// out the cluster's DNS.
pub fn managed_policy(t: &Template, namespace: &str) -> Option<Arc<NetworkPolicy>> {
    let settings = t.sandbox.as_ref().filter(|s| !s.unmanaged)?;
    let egress = match &settings.network_policy {
        Some(written) => written.egress.clone(),
        None => Some(vec![net::NetworkPolicyEgressRule {
            ports: None,
            to: Some(vec![
                ip_block("0.0.0.0/0", &PRIVATE_V4),
                ip_block("::/0", &PRIVATE_V6),
            ]),
        }]),
    };
    let name = managed_policy_name(t.metadata.name.as_deref().unwrap_or("template"));
    Some(Arc::new(NetworkPolicy {
        metadata: ObjectMeta {
            name: Some(name),
            namespace: Some(namespace.to_string()),
            ..Default::default()
        },
        spec: Some(net::NetworkPolicySpec {
            pod_selector: Some(LabelSelector::default()),
            policy_types: Some(vec!["Ingress".into(), "Egress".into()]),
            egress,
            ingress: None,
        }),
    }))
}

/// What the controller's default policy keeps out of its IPv4 and IPv6 catch-alls.
const PRIVATE_V4: [&str; 4] = [
    "10.0.0.0/8",
    "172.16.0.0/12",
    "192.168.0.0/16",
    "169.254.0.0/16",
];
const PRIVATE_V6: [&str; 2] = ["fc00::/7", "fe80::/10"];

fn ip_block(cidr: &str, except: &[&str]) -> net::NetworkPolicyPeer {
    net::NetworkPolicyPeer {
        ip_block: Some(net::IPBlock {
            cidr: cidr.to_string(),
            except: Some(except.iter().map(|e| e.to_string()).collect()),
        }),
        ..Default::default()
    }
}

/// A view that adds the template's managed NetworkPolicy to its namespace's, and answers
/// everything else from the view it wraps.
pub struct ManagedView<'v> {
    pub inner: &'v dyn ClusterView,
    pub policy: Arc<NetworkPolicy>,
}

impl ClusterView for ManagedView<'_> {
    fn namespace_labels(&self, namespace: &str) -> Option<Labels> {
        self.inner.namespace_labels(namespace)
    }
    fn service_account_exists(&self, namespace: &str, name: &str) -> bool {
        self.inner.service_account_exists(namespace, name)
    }
    fn service_account_automount(&self, namespace: &str, name: &str) -> Option<bool> {
        self.inner.service_account_automount(namespace, name)
    }
    fn bound_roles(&self, namespace: &str, service_account: &str) -> Vec<BoundRole> {
        self.inner.bound_roles(namespace, service_account)
    }
    fn network_policies(&self, namespace: &str) -> Vec<Arc<NetworkPolicy>> {
        let mut out = self.inner.network_policies(namespace);
        let own = self.policy.metadata.name.as_deref();
        // The controller replaces a policy of that name, so an old copy in the cache does
        // not count twice.
        out.retain(|p| p.metadata.name.as_deref() != own);
        out.push(self.policy.clone());
        out
    }
    fn is_legacy_token_secret(&self, namespace: &str, name: &str) -> bool {
        self.inner.is_legacy_token_secret(namespace, name)
    }
    fn pod(&self, namespace: &str, name: &str) -> PodLookup {
        self.inner.pod(namespace, name)
    }
    fn service_pods(&self, namespace: &str, name: &str) -> PodLookup {
        self.inner.service_pods(namespace, name)
    }
    fn secret_provider_class(&self, namespace: &str, name: &str) -> Option<bool> {
        self.inner.secret_provider_class(namespace, name)
    }
    fn cilium_policies(&self, namespace: &str) -> Option<Vec<Arc<CiliumPolicy>>> {
        self.inner.cilium_policies(namespace)
    }
    fn runtime_class(&self, name: &str) -> Option<bool> {
        self.inner.runtime_class(name)
    }
    fn limit_range_defaults(&self, namespace: &str) -> DefaultLimits {
        self.inner.limit_range_defaults(namespace)
    }
    fn config_map_keys(&self, namespace: &str, name: &str) -> Option<Arc<[String]>> {
        self.inner.config_map_keys(namespace, name)
    }
    fn service(&self, namespace: &str, name: &str) -> Option<ServiceFacts> {
        self.inner.service(namespace, name)
    }
    fn sandbox_template(&self, namespace: &str, name: &str) -> Option<Option<SandboxFacts>> {
        self.inner.sandbox_template(namespace, name)
    }
    fn sandbox_warm_pool(&self, namespace: &str, name: &str) -> Option<Option<String>> {
        self.inner.sandbox_warm_pool(namespace, name)
    }
}

/// Points the egress findings about a template's managed NetworkPolicy at the field that
/// makes it (`spec.networkPolicy`), with the egress to write there as the fix. Findings about
/// the namespace's own policies keep theirs.
pub fn retarget_egress(t: &Template, policy: &Policy, found: &mut [Violation]) {
    let Some(settings) = t.sandbox.as_ref().filter(|s| !s.unmanaged) else {
        return;
    };
    let name = managed_policy_name(t.metadata.name.as_deref().unwrap_or("template"));
    let marker = format!("/{name} egress[");
    let fix = egress_fix(&policy.checks.egress.allow);
    for v in found
        .iter_mut()
        .filter(|v| v.check == default_deny_egress::CHECK.id)
    {
        let Some(at) = v.message.find(&marker) else {
            continue;
        };
        let rule = v.message[at + marker.len()..]
            .split(']')
            .next()
            .unwrap_or("0")
            .to_string();
        v.path = if settings.network_policy.is_some() {
            format!("spec.networkPolicy.egress[{rule}]")
        } else {
            "spec.networkPolicy".to_string()
        };
        if settings.network_policy.is_none() {
            v.message = format!(
                "spec.networkPolicy is omitted, so agent-sandbox writes its default: {}",
                v.message
            );
        }
        v.fix = fix.clone();
    }
}

/// `spec.networkPolicy.egress` allowing what the allow-list allows and nothing more, written
/// as one line of YAML flow style.
pub fn egress_fix(allow: &[EgressAllow]) -> String {
    let rules: Vec<String> = allow
        .iter()
        .filter(|a| a.fqdns.is_empty())
        .map(|a| {
            let end = a.end_port.map_or(String::new(), |e| format!(", endPort: {e}"));
            let port = format!("{{protocol: {}, port: {}{end}}}", a.protocol, a.port);
            let mut peers: Vec<String> = a
                .namespaces
                .iter()
                .map(|n| {
                    format!("{{namespaceSelector: {{matchLabels: {{kubernetes.io/metadata.name: {n}}}}}}}")
                })
                .collect();
            peers.extend(a.cidrs.iter().map(|c| {
                if a.except.is_empty() {
                    format!("{{ipBlock: {{cidr: {c}}}}}")
                } else {
                    format!("{{ipBlock: {{cidr: {c}, except: [{}]}}}}", a.except.join(", "))
                }
            }));
            if peers.is_empty() {
                format!("{{ports: [{port}]}}")
            } else {
                format!("{{to: [{}], ports: [{port}]}}", peers.join(", "))
            }
        })
        .collect();
    format!(
        "write spec.networkPolicy with egress allowing only {}: egress: [{}]",
        AllowListText::new(allow).get(),
        rules.join(", ")
    )
}

/// Judges a `SandboxClaim` or `SandboxWarmPool`.
pub fn judge_ref(
    review: &Review,
    r: &SandboxRef,
    policy: &Policy,
    view: &impl ClusterView,
) -> Decision {
    if !matches!(review.operation, Operation::Create | Operation::Update)
        || review.sub_resource.is_some()
    {
        return Decision::allow(Skip::Operation);
    }
    if !policy.agent_sandbox.all_agents {
        return Decision::allow(Skip::NotAnAgent);
    }
    let ns = review.namespace.as_str();
    let name = r.metadata().name.as_deref().unwrap_or(review.name.as_str());
    let mut notes = Vec::new();
    let claim = match r {
        SandboxRef::WarmPool(p) => {
            if view.sandbox_template(ns, &p.template) == Some(None) {
                notes.push(missing_template(ns, "SandboxWarmPool", name, &p.template));
            }
            None
        }
        SandboxRef::Claim(c) => Some(c),
    };
    let mode = policy.mode_for(view.namespace_labels(ns).as_ref());
    let Some(c) = claim else {
        let d = decision::judged(review, mode, Vec::new(), Vec::new(), Vec::new(), None);
        return with_notes(d, notes);
    };

    // The template behind the claim, when the view holds warm pools and templates.
    let template = match view.sandbox_warm_pool(ns, &c.warm_pool) {
        Some(Some(t)) => Some(t),
        Some(None) => {
            notes.push(format!(
                "SandboxClaim {ns}/{name}: spec.warmPoolRef.name names SandboxWarmPool {}, which does not exist in {ns}: the claim stays unbound until it does",
                c.warm_pool
            ));
            None
        }
        None => None,
    };
    let facts = template
        .as_ref()
        .and_then(|t| match view.sandbox_template(ns, t) {
            Some(Some(f)) => Some(f),
            Some(None) => {
                notes.push(missing_template(ns, "SandboxWarmPool", &c.warm_pool, t));
                None
            }
            None => None,
        });
    if let (Some(sel), Some(f)) = (&policy.agent_sandbox.selector, &facts) {
        let mut labels = f.pod_labels.clone();
        labels.extend(selector::labels_of(c.pod_metadata.labels.as_ref()).clone());
        if !selector::matches(sel, &labels) {
            return with_notes(Decision::allow(Skip::NotAnAgent), notes);
        }
    }

    // A template that refuses claims' env (the default) keeps it out of the Pod; when the
    // template is not known, the env is judged as if it landed.
    let mut found = if facts.as_ref().is_none_or(|f| f.env_injection) {
        claim_env(c, ns, policy, view)
    } else {
        Vec::new()
    };
    found.extend(claim_labels(review, c, facts.as_ref(), policy));

    let spec = PodSpec::default();
    let target = Target {
        namespace: ns,
        meta: &c.pod_metadata,
        spec: &spec,
        spec_path: "spec.additionalPodMetadata.spec",
        template: true,
    };
    let exemptions::Applied {
        kept,
        exempted,
        refused,
        expired,
    } = exemptions::apply(review, policy, &target, None, found);
    let violations = kept
        .into_iter()
        .map(|mut v| {
            v.tier = policy.tier_of(v.check, v.tier);
            Judged {
                action: action::for_violation(policy, mode, v.tier, None),
                in_enforce: action::for_violation(policy, Mode::Enforce, v.tier, None),
                violation: v,
            }
        })
        .collect();
    let d =
        decision::judged(review, mode, violations, exempted, refused, None).with_expired(expired);
    with_notes(d, notes)
}

/// The decision with `notes` added to its warnings (the API server shows them to the user).
fn with_notes(mut d: Decision, notes: Vec<String>) -> Decision {
    d.warnings.extend(notes.iter().cloned());
    d.notes = notes;
    d
}

fn missing_template(ns: &str, kind: &str, name: &str, template: &str) -> String {
    format!(
        "{kind} {ns}/{name}: spec.sandboxTemplateRef.name names SandboxTemplate {template}, which does not exist in {ns}: no Sandbox is made from it until it does"
    )
}

/// The claim's literal env, judged by the credential check as the Pod will hold it. Each
/// variable is put in a container of its own, so that a finding's container index is the
/// variable's index in `spec.env`.
fn claim_env(c: &Claim, ns: &str, policy: &Policy, view: &dyn ClusterView) -> Vec<Violation> {
    let check = &no_plaintext_credentials::CHECK;
    if c.env.is_empty() || !check.enabled(policy) {
        return Vec::new();
    }
    const EVERY: &str = "(every container)";
    let spec = PodSpec {
        containers: c
            .env
            .iter()
            .map(|e| Container {
                name: e.container_name.clone().unwrap_or_else(|| EVERY.into()),
                env: Some(vec![EnvVar {
                    name: e.name.clone(),
                    value: Some(e.value.clone()),
                    value_from: None,
                }]),
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    };
    let meta = ObjectMeta::default();
    let input = PodInput {
        target: Target {
            namespace: ns,
            meta: &meta,
            spec: &spec,
            spec_path: "spec",
            template: true,
        },
        policy,
        view,
    };
    let super::checks::check::Judge::Pod(run) = check.judge else {
        return Vec::new();
    };
    run(&input)
        .into_iter()
        .filter_map(|mut v| {
            let rest = v.path.strip_prefix("spec.containers[")?;
            let (i, rest) = rest.split_once(']')?;
            let rest = rest.strip_prefix(".env[0]")?;
            let i: usize = i.parse().ok()?;
            let e = c.env.get(i)?;
            v.path = format!("spec.env[{i}]{rest}");
            let into = match &e.container_name {
                Some(n) => format!("container {n}"),
                None => "every container".to_string(),
            };
            let container = e.container_name.as_deref().unwrap_or(EVERY);
            v.message = v.message.replacen(
                &format!("of container {container}"),
                &format!("that the claim injects into {into}"),
                1,
            );
            v.fix = format!(
                "remove {} from the claim's spec.env (it takes literal values only) and give the template a valueFrom.secretKeyRef or a Secrets Store CSI file for it",
                e.name
            );
            Some(v)
        })
        .collect()
}

/// Labels a claim adds that move an agent label: a key an agent selector reads, set to a
/// value other than the template's (any value when the template is not known). The Pod's
/// agent labels are what the rules and egress policies select it by; only an approver may
/// change them, as on a running agent (`relabel-requires-approval`).
fn claim_labels(
    review: &Review,
    c: &Claim,
    facts: Option<&SandboxFacts>,
    policy: &Policy,
) -> Vec<Violation> {
    let check = &super::checks::relabel_requires_approval::CHECK;
    if !check.enabled(policy) || policy.is_approver(&review.user) {
        return Vec::new();
    }
    let keys: std::collections::BTreeSet<&str> = policy
        .agent_selectors
        .iter()
        .flat_map(|s| {
            s.match_labels
                .iter()
                .flat_map(|m| m.keys())
                .chain(s.match_expressions.iter().flatten().map(|e| &e.key))
        })
        .map(String::as_str)
        .collect();
    selector::labels_of(c.pod_metadata.labels.as_ref())
        .iter()
        .filter(|(k, _)| keys.contains(k.as_str()))
        .filter(|(k, v)| facts.is_none_or(|f| f.pod_labels.get(*k) != Some(v)))
        .map(|(k, v)| {
            Violation::new(
                check.id,
                check.tier,
                format!("spec.additionalPodMetadata.labels.{k}"),
                format!(
                    "{} may not set the agent label {k}={v} on the Pods of claim {}/{}: the agent would leave or change the rules and egress policies that select it by that label",
                    review.user.username,
                    review.namespace,
                    c.metadata.name.as_deref().unwrap_or(review.name.as_str()),
                ),
                format!(
                    "leave {k} to the template; an approver ({}) may set it",
                    policy.approvers_text()
                ),
            )
        })
        .collect()
}

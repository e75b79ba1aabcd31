//! Cilium's policies judged in the egress model (see docs/policy-reference.md, under
//! `default-deny-egress`, for what is honoured and what is left out).
//!
//! Selection: a rule selects the pod when its `endpointSelector` matches the pod's labels as
//! Cilium sees them: the pod's own labels plus `io.kubernetes.pod.namespace`, the namespace's
//! labels as `io.cilium.k8s.namespace.labels.<key>` and the ServiceAccount as
//! `io.cilium.k8s.policy.serviceaccount`; keys may carry the `k8s:` or `any:` source prefix.
//! A CiliumNetworkPolicy selects only pods of its own namespace; a clusterwide one selects
//! across namespaces. Rules with a `nodeSelector` (host policies) select nodes, never pods.
//!
//! Default deny: a selecting rule with `egress` or `egressDeny` rules puts the pod in egress
//! default-deny, unless it says `enableDefaultDeny.egress: false`; its allow rules count
//! either way.
//!
//! What an egress rule opens: every (port, destination) pair of its `toPorts` (or `icmps`)
//! and its destinations (`toEndpoints`, `toCIDR`, `toCIDRSet`, `toEntities`, `toFQDNs`,
//! `toServices`, `toNodes`, `toGroups`). A rule with ports and no destination reaches every
//! destination on those ports; a rule with neither (`{}`) allows nothing. Each pair must be
//! covered by the policy's allow-list or closed by an `egressDeny` rule of a selecting rule.

use super::cilium_policy::{CiliumPolicy, EgressRule, PortProtocol, Rule};
use super::rule::{AllowListText, Dest, Finding, NS_NAME_LABEL, Ports, uncovered};
use crate::engine::policy::EgressAllow;
use crate::engine::selector::{self, Labels};
use k8s_openapi::api::networking::v1::{IPBlock, NetworkPolicyPeer};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, LabelSelectorRequirement};
use std::collections::BTreeMap;
use std::sync::Arc;

const NAMESPACE_KEY: &str = "io.kubernetes.pod.namespace";
const NAMESPACE_LABELS_PREFIX: &str = "io.cilium.k8s.namespace.labels.";
const SERVICE_ACCOUNT_KEY: &str = "io.cilium.k8s.policy.serviceaccount";

/// What Cilium's policies say about one pod.
pub struct Outcome {
    /// Selecting rules that put the pod in egress default-deny.
    pub default_deny: usize,
    /// Allow rules that open more than the allow-list, each reported.
    pub open: Vec<Finding>,
    /// What selecting `egressDeny` rules close, written as allow-list entries: a pair one of
    /// them covers is not open, whoever allows it.
    pub denied: Vec<EgressAllow>,
}

/// Judges the Cilium policies that may select a pod of namespace `ns` (its own
/// CiliumNetworkPolicies and every clusterwide one) for the pod with labels `pod_labels` and
/// ServiceAccount `service_account`, against the allow-list `allow_list`.
pub fn judge(
    policies: &[Arc<CiliumPolicy>],
    ns: &str,
    service_account: &str,
    pod_labels: &Labels,
    ns_labels: Option<&Labels>,
    allow_list: &[EgressAllow],
    allowed: &AllowListText<'_>,
) -> Outcome {
    let labels = endpoint_labels(pod_labels, ns, ns_labels, service_account);
    let selecting: Vec<(&CiliumPolicy, &str, &Rule)> = policies
        .iter()
        .flat_map(|p| {
            p.rules
                .iter()
                .map(move |(at, r)| (p.as_ref(), at.as_str(), r))
        })
        .filter(|(_, _, r)| selects(r, &labels))
        .collect();

    let mut out = Outcome {
        default_deny: 0,
        open: Vec::new(),
        denied: Vec::new(),
    };
    for (p, _, r) in &selecting {
        let has_rules = r.egress.as_ref().is_some_and(|e| !e.is_empty())
            || r.egress_deny.as_ref().is_some_and(|e| !e.is_empty());
        let opted_out = r.enable_default_deny.as_ref().and_then(|d| d.egress) == Some(false);
        if has_rules && !opted_out {
            out.default_deny += 1;
        }
        for rule in r.egress_deny.iter().flatten() {
            out.denied.extend(denied_entries(rule, p, ns));
        }
    }
    let allow: Vec<EgressAllow> = allow_list.iter().chain(&out.denied).cloned().collect();
    for (p, at, r) in &selecting {
        for (k, rule) in r.egress.iter().flatten().enumerate() {
            let dests = destinations(rule, p);
            let peers: Vec<Dest<'_>> = dests.iter().map(Destination::as_dest).collect();
            if peers.is_empty() {
                continue;
            }
            let Some((open_ports, open_dests)) =
                uncovered(&ports_of(rule), &peers, &allow, ns, ns_labels)
            else {
                continue;
            };
            let place = if *at == "spec" {
                format!("egress[{k}]")
            } else {
                format!("{at}.egress[{k}]")
            };
            out.open.push(Finding {
                message: format!(
                    "{} {place} allows {open_ports} to {open_dests}",
                    p.describe(),
                ),
                fix: format!(
                    "narrow {place} of {} to the allow-list ({}), or add the destination to checks.egress.allow",
                    p.describe(),
                    allowed.get()
                ),
            });
        }
    }
    out
}

/// The pod's labels as Cilium's endpoint selectors see them.
fn endpoint_labels(pod: &Labels, ns: &str, ns_labels: Option<&Labels>, sa: &str) -> Labels {
    let mut l = pod.clone();
    l.insert(NAMESPACE_KEY.into(), ns.into());
    for (k, v) in ns_labels.into_iter().flatten() {
        l.insert(format!("{NAMESPACE_LABELS_PREFIX}{k}"), v.clone());
    }
    l.insert(SERVICE_ACCOUNT_KEY.into(), sa.into());
    l
}

/// A key without its source prefix (`k8s:app` -> `app`); `None` for a source other than
/// Kubernetes (`reserved:`, `cidr:`, ...), which no pod label carries.
fn k8s_key(key: &str) -> Option<&str> {
    match key.split_once(':') {
        None => Some(key),
        Some(("k8s" | "any", rest)) => Some(rest),
        Some(_) => None,
    }
}

/// The selector with source prefixes dropped; `None` when it can select no pod (it requires
/// a label of another source).
fn normalized(sel: &LabelSelector) -> Option<LabelSelector> {
    let mut match_labels = BTreeMap::new();
    for (k, v) in sel.match_labels.iter().flatten() {
        match_labels.insert(k8s_key(k)?.to_string(), v.clone());
    }
    let mut exprs = Vec::new();
    for e in sel.match_expressions.iter().flatten() {
        match k8s_key(&e.key) {
            Some(key) => exprs.push(LabelSelectorRequirement {
                key: key.to_string(),
                ..e.clone()
            }),
            // A label no pod has: NotIn and DoesNotExist hold, In and Exists never do.
            None if matches!(e.operator.as_str(), "NotIn" | "DoesNotExist") => {}
            None => return None,
        }
    }
    Some(LabelSelector {
        match_labels: (!match_labels.is_empty()).then_some(match_labels),
        match_expressions: (!exprs.is_empty()).then_some(exprs),
    })
}

/// The view hands a namespaced policy only to pods of its namespace, which is exactly the
/// namespace Cilium confines it to; so the selector alone decides.
fn selects(r: &Rule, labels: &Labels) -> bool {
    if r.node_selector.is_some() {
        return false;
    }
    let Some(sel) = r.endpoint_selector.as_ref() else {
        return false;
    };
    normalized(sel).is_some_and(|s| selector::matches(&s, labels))
}

/// A destination of a Cilium rule, owned, read as a NetworkPolicy peer where it is one.
enum Destination {
    Anywhere,
    Peer(NetworkPolicyPeer),
    Fqdn(String),
    Opaque(String),
}

impl Destination {
    fn as_dest(&self) -> Dest<'_> {
        match self {
            Destination::Anywhere => Dest::Anywhere,
            Destination::Peer(p) => Dest::Peer(p),
            Destination::Fqdn(f) => Dest::Fqdn(f),
            Destination::Opaque(s) => Dest::Opaque(s.clone()),
        }
    }
}

fn ip_block(cidr: &str, except: &[String]) -> NetworkPolicyPeer {
    // Cilium accepts a bare address for a single host.
    let cidr = if cidr.contains('/') {
        cidr.to_string()
    } else if cidr.contains(':') {
        format!("{cidr}/128")
    } else {
        format!("{cidr}/32")
    };
    NetworkPolicyPeer {
        ip_block: Some(IPBlock {
            cidr,
            except: (!except.is_empty()).then(|| except.to_vec()),
        }),
        ..Default::default()
    }
}

/// An endpoint selector as a NetworkPolicy peer: its namespace part (the namespace key, or
/// namespace labels) becomes the namespaceSelector, the rest the podSelector. Without a
/// namespace part, a namespaced policy means its own namespace and a clusterwide one every
/// namespace.
fn endpoint_peer(sel: &LabelSelector, clusterwide: bool) -> Option<NetworkPolicyPeer> {
    let sel = normalized(sel)?;
    let mut ns_labels = BTreeMap::new();
    let mut pod_labels = BTreeMap::new();
    for (k, v) in sel.match_labels.into_iter().flatten() {
        if k == NAMESPACE_KEY {
            ns_labels.insert(NS_NAME_LABEL.to_string(), v);
        } else if let Some(label) = k.strip_prefix(NAMESPACE_LABELS_PREFIX) {
            ns_labels.insert(label.to_string(), v);
        } else {
            pod_labels.insert(k, v);
        }
    }
    let mut ns_exprs = Vec::new();
    let mut pod_exprs = Vec::new();
    for e in sel.match_expressions.into_iter().flatten() {
        if e.key == NAMESPACE_KEY {
            ns_exprs.push(LabelSelectorRequirement {
                key: NS_NAME_LABEL.into(),
                ..e
            });
        } else if let Some(label) = e.key.strip_prefix(NAMESPACE_LABELS_PREFIX) {
            ns_exprs.push(LabelSelectorRequirement {
                key: label.to_string(),
                ..e
            });
        } else {
            pod_exprs.push(e);
        }
    }
    let by_namespace = !ns_labels.is_empty() || !ns_exprs.is_empty();
    let namespace_selector = (by_namespace || clusterwide).then(|| LabelSelector {
        match_labels: (!ns_labels.is_empty()).then_some(ns_labels),
        match_expressions: (!ns_exprs.is_empty()).then_some(ns_exprs),
    });
    Some(NetworkPolicyPeer {
        namespace_selector,
        pod_selector: Some(LabelSelector {
            match_labels: (!pod_labels.is_empty()).then_some(pod_labels),
            match_expressions: (!pod_exprs.is_empty()).then_some(pod_exprs),
        }),
        ip_block: None,
    })
}

fn destinations(rule: &EgressRule, p: &CiliumPolicy) -> Vec<Destination> {
    let mut out = Vec::new();
    for sel in rule.to_endpoints.iter().flatten() {
        // A selector of another label source (`reserved:host`, ...) names no pod but still
        // some endpoint: a destination this check does not resolve.
        out.push(match endpoint_peer(sel, p.clusterwide) {
            Some(peer) => Destination::Peer(peer),
            None => Destination::Opaque(format!("endpoints {}", selector::describe(sel))),
        });
    }
    for c in rule.to_cidr.iter().flatten() {
        out.push(Destination::Peer(ip_block(c, &[])));
    }
    for c in rule.to_cidr_set.iter().flatten() {
        match (&c.cidr, &c.cidr_group_ref) {
            (Some(cidr), _) => out.push(Destination::Peer(ip_block(
                cidr,
                c.except.as_deref().unwrap_or(&[]),
            ))),
            (None, Some(group)) => {
                out.push(Destination::Opaque(format!("CiliumCIDRGroup {group}")))
            }
            (None, None) if c.cidr_group_selector.is_some() => {
                out.push(Destination::Opaque("CiliumCIDRGroups by selector".into()))
            }
            (None, None) => {}
        }
    }
    for e in rule.to_entities.iter().flatten() {
        match e.as_str() {
            "all" => out.push(Destination::Anywhere),
            // Everything outside the cluster: judged as the whole address space.
            "world" => {
                out.push(Destination::Peer(ip_block("0.0.0.0/0", &[])));
                out.push(Destination::Peer(ip_block("::/0", &[])));
            }
            "world-ipv4" => out.push(Destination::Peer(ip_block("0.0.0.0/0", &[]))),
            "world-ipv6" => out.push(Destination::Peer(ip_block("::/0", &[]))),
            "none" => {}
            other => out.push(Destination::Opaque(format!("entity {other}"))),
        }
    }
    for f in rule.to_fqdns.iter().flatten() {
        if let Some(n) = f.match_name.as_deref().filter(|n| !n.is_empty()) {
            out.push(Destination::Fqdn(n.to_ascii_lowercase()));
        }
        if let Some(pat) = f.match_pattern.as_deref().filter(|n| !n.is_empty()) {
            out.push(Destination::Fqdn(pat.to_ascii_lowercase()));
        }
    }
    if rule.to_services.as_ref().is_some_and(|v| !v.is_empty()) {
        out.push(Destination::Opaque("Services (toServices)".into()));
    }
    if rule.to_nodes.as_ref().is_some_and(|v| !v.is_empty()) {
        out.push(Destination::Opaque("nodes (toNodes)".into()));
    }
    if rule.to_groups.as_ref().is_some_and(|v| !v.is_empty()) {
        out.push(Destination::Opaque("cloud groups (toGroups)".into()));
    }
    let has_l3 = [
        rule.to_endpoints.as_ref().map(Vec::len),
        rule.to_cidr.as_ref().map(Vec::len),
        rule.to_cidr_set.as_ref().map(Vec::len),
        rule.to_entities.as_ref().map(Vec::len),
        rule.to_fqdns.as_ref().map(Vec::len),
        rule.to_services.as_ref().map(Vec::len),
        rule.to_nodes.as_ref().map(Vec::len),
        rule.to_groups.as_ref().map(Vec::len),
    ]
    .into_iter()
    .any(|n| n.unwrap_or(0) > 0);
    let has_l4 = rule.to_ports.as_ref().is_some_and(|p| !p.is_empty())
        || rule.icmps.as_ref().is_some_and(|p| !p.is_empty());
    // Ports without destinations reach every destination on those ports; a rule with
    // neither allows nothing.
    if !has_l3 && has_l4 {
        out.push(Destination::Anywhere);
    }
    out
}

/// `ANY` (or no protocol) is read as TCP and UDP: Cilium adds SCTP only where its SCTP
/// support is turned on.
fn protocols(p: &PortProtocol) -> &'static [&'static str] {
    match p
        .protocol
        .as_deref()
        .map(str::to_ascii_uppercase)
        .as_deref()
    {
        Some("TCP") => &["TCP"],
        Some("UDP") => &["UDP"],
        Some("SCTP") => &["SCTP"],
        _ => &["TCP", "UDP"],
    }
}

/// The port as written: a number, a name, or nothing (every port).
enum PortSpec<'a> {
    All,
    Number(i32),
    Name(&'a str),
}

fn port_spec(p: &PortProtocol) -> PortSpec<'_> {
    match &p.port {
        None | Some(serde_json::Value::Null) => PortSpec::All,
        Some(serde_json::Value::Number(n)) => {
            match n.as_i64().and_then(|n| i32::try_from(n).ok()) {
                Some(0) | None => PortSpec::All,
                Some(n) => PortSpec::Number(n),
            }
        }
        Some(serde_json::Value::String(s)) => match s.trim() {
            "" | "0" => PortSpec::All,
            s => match s.parse::<i32>() {
                Ok(n) => PortSpec::Number(n),
                Err(_) => PortSpec::Name(s),
            },
        },
        Some(_) => PortSpec::All,
    }
}

fn ports_of(rule: &EgressRule) -> Vec<Ports<'_>> {
    let mut out = Vec::new();
    for pr in rule.to_ports.iter().flatten() {
        let list = pr.ports.as_deref().unwrap_or(&[]);
        if list.is_empty() {
            // A port rule naming no port (only L7 rules, say) opens every port.
            out.push(Ports::Every);
        }
        for p in list {
            for protocol in protocols(p) {
                out.push(match port_spec(p) {
                    PortSpec::All => Ports::Range {
                        protocol,
                        lo: 1,
                        hi: 65535,
                        numbered: false,
                    },
                    PortSpec::Number(n) => Ports::Range {
                        protocol,
                        lo: n,
                        hi: p.end_port.unwrap_or(n).max(n),
                        numbered: true,
                    },
                    PortSpec::Name(name) => Ports::Named { protocol, name },
                });
            }
        }
    }
    if rule.icmps.as_ref().is_some_and(|i| !i.is_empty()) {
        out.push(Ports::Icmp);
    }
    if out.is_empty() {
        out.push(Ports::Every);
    }
    out
}

/// What an egressDeny rule closes, as allow-list entries (only the parts this check can
/// write so; what it cannot is simply not counted as closed).
fn denied_entries(rule: &EgressRule, p: &CiliumPolicy, own_ns: &str) -> Vec<EgressAllow> {
    // Ports: (protocol, lo, hi).
    let mut ports: Vec<(&str, i32, i32)> = Vec::new();
    let listed: Vec<&PortProtocol> = rule
        .to_ports
        .iter()
        .flatten()
        .flat_map(|pr| pr.ports.iter().flatten())
        .collect();
    if listed.is_empty() && rule.icmps.as_ref().is_none_or(|i| i.is_empty()) {
        for protocol in ["TCP", "UDP", "SCTP"] {
            ports.push((protocol, 1, 65535));
        }
    }
    for pp in listed {
        for protocol in protocols(pp) {
            match port_spec(pp) {
                PortSpec::All => ports.push((protocol, 1, 65535)),
                PortSpec::Number(n) => ports.push((protocol, n, pp.end_port.unwrap_or(n).max(n))),
                PortSpec::Name(_) => {}
            }
        }
    }
    // Destinations, each as the destination fields of an entry. An empty deny rule (`{}`)
    // has none: like an empty allow rule, it selects no peer and denies nothing.
    let mut dests: Vec<EgressAllow> = Vec::new();
    for d in destinations(rule, p) {
        match d {
            Destination::Anywhere => dests.push(EgressAllow::default()),
            Destination::Fqdn(_) | Destination::Opaque(_) => {}
            Destination::Peer(peer) => {
                if let Some(b) = peer.ip_block {
                    dests.push(EgressAllow {
                        cidrs: vec![b.cidr],
                        except: b.except.unwrap_or_default(),
                        ..Default::default()
                    });
                    continue;
                }
                let mut e = EgressAllow {
                    pod_selector: peer.pod_selector,
                    ..Default::default()
                };
                match peer.namespace_selector {
                    None => e.namespaces = vec![own_ns.to_string()],
                    Some(sel) => e.namespace_selector = Some(sel),
                }
                dests.push(e);
            }
        }
    }
    let mut out = Vec::new();
    for d in &dests {
        for (protocol, lo, hi) in &ports {
            out.push(EgressAllow {
                protocol: (*protocol).to_string(),
                port: *lo,
                end_port: Some(*hi),
                ..d.clone()
            });
        }
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::engine::checks::default_deny_egress::CHECK;
    use crate::engine::checks::fixtures::*;
    use crate::engine::policy::Policy;
    use crate::engine::violation::Violation;
    use serde_json::{Value, json};

    fn cnp(name: &str, spec: Value) -> Value {
        json!({"apiVersion": "cilium.io/v2", "kind": "CiliumNetworkPolicy",
            "metadata": {"name": name, "namespace": NS}, "spec": spec})
    }

    fn ccnp(name: &str, spec: Value) -> Value {
        json!({"apiVersion": "cilium.io/v2", "kind": "CiliumClusterwideNetworkPolicy",
            "metadata": {"name": name}, "spec": spec})
    }

    fn dns() -> Value {
        json!({"toEndpoints": [{"matchLabels": {"k8s:io.kubernetes.pod.namespace": "kube-system", "k8s:k8s-app": "kube-dns"}}],
            "toPorts": [{"ports": [{"port": "53", "protocol": "ANY"}], "rules": {"dns": [{"matchPattern": "*"}]}}]})
    }

    fn llm_only() -> Value {
        cnp(
            "llm-only",
            json!({"endpointSelector": {"matchLabels": {"app": "openclaw"}},
            "egress": [dns(), {"toFQDNs": [{"matchName": "api.anthropic.com"}],
                "toPorts": [{"ports": [{"port": "443", "protocol": "TCP"}]}]}]}),
        )
    }

    fn anthropic_only() -> Policy {
        let mut policy = Policy::default();
        policy.checks.egress.allow = vec![
            EgressAllow {
                name: "DNS".into(),
                protocol: "UDP".into(),
                port: 53,
                namespaces: vec!["kube-system".into()],
                ..Default::default()
            },
            EgressAllow {
                name: "DNS".into(),
                protocol: "TCP".into(),
                port: 53,
                namespaces: vec!["kube-system".into()],
                ..Default::default()
            },
            EgressAllow {
                name: "Anthropic".into(),
                protocol: "TCP".into(),
                port: 443,
                fqdns: vec!["api.anthropic.com".into()],
                ..Default::default()
            },
        ];
        policy
    }

    fn judge_with(policy: &Policy, objects: &[Value]) -> Vec<Violation> {
        let mut all = vec![service_account_json(NS, SA)];
        all.extend_from_slice(objects);
        run(&CHECK, &hardened_pod(), policy, &view_of(&all))
    }

    fn messages(v: &[Violation]) -> Vec<&str> {
        v.iter().map(|x| x.message.as_str()).collect()
    }

    #[test]
    fn a_cilium_policy_alone_puts_the_pod_in_default_deny_and_fqdn_entries_cover_it() {
        let v = judge_with(&anthropic_only(), &[llm_only()]);
        assert!(v.is_empty(), "{v:?}");
        // The default allow-list's plain HTTPS entry covers it too.
        assert!(judge_with(&Policy::default(), &[llm_only()]).is_empty());
    }

    #[test]
    fn an_fqdn_entry_covers_no_other_host_and_no_address() {
        let other = cnp(
            "openai",
            json!({"endpointSelector": {}, "egress": [
                {"toFQDNs": [{"matchPattern": "*.openai.com"}], "toPorts": [{"ports": [{"port": "443"}]}]},
                {"toCIDR": ["203.0.113.7"], "toPorts": [{"ports": [{"port": "443", "protocol": "TCP"}]}]}]}),
        );
        let v = judge_with(&anthropic_only(), &[other]);
        assert_eq!(
            messages(&v),
            [
                format!(
                    "CiliumNetworkPolicy {NS}/openai egress[0] allows TCP 443, UDP 443 to *.openai.com"
                ),
                format!(
                    "CiliumNetworkPolicy {NS}/openai egress[1] allows TCP 443 to 203.0.113.7/32"
                ),
            ]
        );
        assert!(
            v[0].fix.contains("Anthropic") || v[0].fix.contains("api.anthropic.com"),
            "{}",
            v[0].fix
        );
    }

    #[test]
    fn over_wide_cilium_rules_are_refused_naming_the_policy() {
        let world = cnp(
            "world",
            json!({"endpointSelector": {}, "egress": [{"toEntities": ["world"]}]}),
        );
        let v = judge_with(&Policy::default(), &[world]);
        assert_eq!(
            messages(&v),
            [format!(
                "CiliumNetworkPolicy {NS}/world egress[0] allows all ports to 0.0.0.0/0, ::/0"
            )]
        );
        let cidr = ccnp(
            "open-https",
            json!({"endpointSelector": {}, "egress": [
                {"toCIDRSet": [{"cidr": "0.0.0.0/0", "except": ["10.0.0.0/8"]}],
                 "toPorts": [{"ports": [{"port": "80", "protocol": "TCP"}]}]}]}),
        );
        let v = judge_with(&Policy::default(), &[cidr]);
        assert_eq!(
            messages(&v),
            [
                "CiliumClusterwideNetworkPolicy open-https egress[0] allows TCP 80 to 0.0.0.0/0 (except 10.0.0.0/8)"
            ]
        );
    }

    #[test]
    fn no_selecting_policy_says_cilium_counts_where_it_is_served() {
        let other = cnp(
            "db",
            json!({"endpointSelector": {"matchLabels": {"app": "postgres"}}, "egress": [{}]}),
        );
        let v = judge_with(&Policy::default(), &[other]);
        assert_eq!(v.len(), 1);
        assert!(v[0].message.contains("and no CiliumNetworkPolicy or CiliumClusterwideNetworkPolicy puts it in egress default-deny"), "{}", v[0].message);
    }

    #[test]
    fn enable_default_deny_false_adds_allows_without_default_deny() {
        let soft = cnp(
            "soft",
            json!({"endpointSelector": {}, "enableDefaultDeny": {"egress": false},
                "egress": [{"toPorts": [{"ports": [{"port": "443", "protocol": "TCP"}]}]}]}),
        );
        let v = judge_with(&Policy::default(), std::slice::from_ref(&soft));
        assert_eq!(v.len(), 1);
        assert!(
            v[0].message.starts_with("no NetworkPolicy"),
            "{}",
            v[0].message
        );
        // With a NetworkPolicy's default deny, its allow still counts and is judged.
        let wide = cnp(
            "wide",
            json!({"endpointSelector": {}, "enableDefaultDeny": {"egress": false},
                "egress": [{"toPorts": [{"ports": [{"port": "8080"}]}]}]}),
        );
        let v = judge_with(&Policy::default(), &[deny_all_egress_json(NS), soft, wide]);
        assert_eq!(
            messages(&v),
            [format!(
                "CiliumNetworkPolicy {NS}/wide egress[0] allows TCP 8080, UDP 8080 to anywhere"
            )]
        );
    }

    #[test]
    fn an_empty_egress_rule_denies_all_and_egress_deny_alone_is_default_deny() {
        let deny_all = cnp("deny-all", json!({"endpointSelector": {}, "egress": [{}]}));
        assert!(judge_with(&Policy::default(), &[deny_all]).is_empty());
        let deny_only = cnp(
            "no-metadata",
            json!({"endpointSelector": {}, "egressDeny": [{"toCIDR": ["169.254.169.254/32"]}]}),
        );
        assert!(judge_with(&Policy::default(), &[deny_only]).is_empty());
    }

    #[test]
    fn egress_deny_closes_what_an_allow_rule_opens() {
        let open = cnp(
            "open-8080",
            json!({"endpointSelector": {}, "egress": [{"toCIDR": ["10.1.0.0/16"],
                "toPorts": [{"ports": [{"port": "8080", "protocol": "TCP"}]}]}]}),
        );
        let deny = ccnp(
            "no-private",
            json!({"endpointSelector": {}, "egressDeny": [{"toCIDRSet": [{"cidr": "10.0.0.0/8"}]}]}),
        );
        assert_eq!(
            judge_with(&Policy::default(), std::slice::from_ref(&open)).len(),
            1
        );
        assert!(judge_with(&Policy::default(), &[open, deny.clone()]).is_empty());
        // The deny also closes what a NetworkPolicy opens.
        let np = network_policy_json(
            NS,
            "np-8080",
            json!({"podSelector": {}, "policyTypes": ["Egress"],
                "egress": [{"to": [{"ipBlock": {"cidr": "10.2.0.0/16"}}], "ports": [{"port": 8080}]}]}),
        );
        assert!(judge_with(&Policy::default(), &[np, deny]).is_empty());
    }

    #[test]
    fn an_empty_deny_rule_closes_nothing_and_reserved_endpoints_are_destinations() {
        let open = cnp(
            "open-8080",
            json!({"endpointSelector": {}, "egress": [{"toCIDR": ["10.1.0.0/16"],
                "toPorts": [{"ports": [{"port": "8080", "protocol": "TCP"}]}]}],
                "egressDeny": [{}]}),
        );
        assert_eq!(judge_with(&Policy::default(), &[open]).len(), 1);
        let host = cnp(
            "to-host",
            json!({"endpointSelector": {}, "egress": [{"toEndpoints": [{"matchLabels": {"reserved:host": ""}}],
                "toPorts": [{"ports": [{"port": "10250", "protocol": "TCP"}]}]}]}),
        );
        let v = judge_with(&Policy::default(), &[host]);
        assert_eq!(v.len(), 1, "{v:?}");
        assert!(
            v[0].message.contains("allows TCP 10250 to endpoints"),
            "{}",
            v[0].message
        );
    }

    #[test]
    fn clusterwide_selection_reads_the_namespace_label_and_namespaced_policies_stay_home() {
        let elsewhere = ccnp(
            "other-ns",
            json!({"endpointSelector": {"matchLabels": {"k8s:io.kubernetes.pod.namespace": "other"}},
                "egress": [{}]}),
        );
        assert_eq!(judge_with(&Policy::default(), &[elsewhere]).len(), 1);
        let here = ccnp(
            "agents-ns",
            json!({"endpointSelector": {"matchExpressions": [{"key": "io.kubernetes.pod.namespace",
                "operator": "In", "values": [NS]}]}, "egress": [{}]}),
        );
        assert!(judge_with(&Policy::default(), &[here]).is_empty());
        let mut other_ns = cnp("x", json!({"endpointSelector": {}, "egress": [{}]}));
        other_ns["metadata"]["namespace"] = "other".into();
        assert_eq!(judge_with(&Policy::default(), &[other_ns]).len(), 1);
        let host = ccnp("host", json!({"nodeSelector": {}, "egress": [{}]}));
        assert_eq!(
            judge_with(&Policy::default(), &[host]).len(),
            1,
            "host policies select no pod"
        );
    }

    #[test]
    fn to_endpoints_are_judged_like_network_policy_peers() {
        let mut policy = Policy::default();
        policy.checks.egress.allow.push(EgressAllow {
            name: "otel".into(),
            protocol: "TCP".into(),
            port: 4318,
            namespaces: vec!["observability".into()],
            ..Default::default()
        });
        let rule = |sel: Value| {
            cnp(
                "otel",
                json!({"endpointSelector": {}, "egress": [{"toEndpoints": [sel],
                "toPorts": [{"ports": [{"port": "4318", "protocol": "TCP"}]}]}]}),
            )
        };
        let pinned = rule(
            json!({"matchLabels": {"k8s:io.kubernetes.pod.namespace": "observability", "app": "collector"}}),
        );
        assert!(judge_with(&policy, &[pinned]).is_empty());
        let own = rule(json!({"matchLabels": {"app": "collector"}}));
        assert_eq!(
            messages(&judge_with(&policy, &[own])),
            [format!(
                "CiliumNetworkPolicy {NS}/otel egress[0] allows TCP 4318 to pods app=collector in namespace {NS}"
            )]
        );
    }

    #[test]
    fn entities_other_than_world_and_all_are_covered_only_by_open_entries() {
        let cluster = cnp(
            "cluster",
            json!({"endpointSelector": {}, "specs": [], "egress": [{"toEntities": ["cluster"],
                "toPorts": [{"ports": [{"port": "4318", "protocol": "TCP"}]}]}]}),
        );
        assert_eq!(
            messages(&judge_with(&Policy::default(), &[cluster])),
            [format!(
                "CiliumNetworkPolicy {NS}/cluster egress[0] allows TCP 4318 to entity cluster"
            )]
        );
    }

    #[test]
    fn specs_entries_are_named_by_their_place() {
        let p = json!({"apiVersion": "cilium.io/v2", "kind": "CiliumNetworkPolicy",
            "metadata": {"name": "multi", "namespace": NS},
            "specs": [{"endpointSelector": {}, "egress": [{}]},
                      {"endpointSelector": {}, "egress": [{"toEntities": ["all"], "icmps": [{"fields": [{"type": 8}]}]}]}]});
        assert_eq!(
            messages(&judge_with(&Policy::default(), &[p])),
            [format!(
                "CiliumNetworkPolicy {NS}/multi specs[1].egress[0] allows ICMP to anywhere"
            )]
        );
    }
}

//! `default-deny-egress` (high): the agent reaches nothing on the network beyond the
//! policy's allow-list (DNS and HTTPS by default), with NetworkPolicy semantics as the API
//! defines them. A policy selects the pod by its `podSelector`; an absent `policyTypes`
//! includes Egress only when the policy has egress rules; the pod may send whatever the
//! union of the egress rules of every selecting Egress policy allows. So each rule is judged
//! on its own and reported on its own, naming the policy and the rule.
//!
//! A rule is covered when every (port, destination) pair it opens is covered by some allow
//! entry. Ports: a rule without ports opens every port; a port entry without a number opens
//! every port of its protocol (TCP when unset); an `endPort` range must fit inside one
//! entry's range; a named port cannot be resolved here (it names a port of whatever pod
//! receives the traffic), so it is covered only by an entry whose `name` is that port name.
//! Destinations matter only for entries that name some. By labels (`namespaces`,
//! `namespaceSelector`, `podSelector`): a peer's namespaceSelector must be pinned to listed
//! names by `kubernetes.io/metadata.name` or select a subset of what the entry's selector
//! selects (judged from the two selectors, [`selector::implies`]); a peer without one is in
//! the pod's own namespace; a peer's podSelector must select a subset of the entry's. By
//! address (`cidrs` minus `except`): an ipBlock's addresses after its own `except` must all
//! lie inside; a rule without `to` reaches every address. An ipBlock never fits a label entry
//! and a selector peer never fits an address entry.
//!
//! Violations sit at the pod's `metadata.labels`: the labels are what policies select on,
//! and the NetworkPolicy itself is named in the message.

use super::CheckInput;
use super::cidr;
use crate::engine::policy::EgressAllow;
use crate::engine::selector;
use crate::engine::violation::{Tier, Violation};
use k8s_openapi::api::networking::v1::{
    NetworkPolicyEgressRule, NetworkPolicyPeer, NetworkPolicySpec,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

pub const ID: &str = "default-deny-egress";
pub(super) const TIER: Tier = Tier::High;
pub(super) const NS_NAME_LABEL: &str = "kubernetes.io/metadata.name";

/// What one port entry of a rule opens.
pub(super) enum Ports<'a> {
    /// The rule lists no ports: every port of every protocol.
    Every,
    Range {
        protocol: &'a str,
        lo: i32,
        hi: i32,
        numbered: bool,
    },
    Named {
        protocol: &'a str,
        name: &'a str,
    },
    /// ICMP messages (a Cilium `icmps` entry): no allow entry names ICMP.
    Icmp,
}

/// Where a rule lets traffic go.
pub(super) enum Dest<'a> {
    Anywhere,
    Peer(&'a NetworkPolicyPeer),
    /// A host name or pattern (Cilium `toFQDNs`).
    Fqdn(&'a str),
    /// A destination this check does not resolve (a Service, an entity such as `cluster`,
    /// a CIDR group), described: only an entry without destinations covers it.
    Opaque(String),
}

fn selects_for_egress(spec: &NetworkPolicySpec, labels: &selector::Labels) -> bool {
    let selected = spec
        .pod_selector
        .as_ref()
        .is_none_or(|s| selector::matches(s, labels));
    let egress = match spec.policy_types.as_deref() {
        Some(types) if !types.is_empty() => types.iter().any(|t| t == "Egress"),
        _ => spec.egress.as_ref().is_some_and(|e| !e.is_empty()),
    };
    selected && egress
}

fn ports_of(rule: &NetworkPolicyEgressRule) -> Vec<Ports<'_>> {
    let Some(ports) = rule.ports.as_deref().filter(|p| !p.is_empty()) else {
        return vec![Ports::Every];
    };
    ports
        .iter()
        .map(|p| {
            let protocol = p.protocol.as_deref().unwrap_or("TCP");
            match &p.port {
                None => Ports::Range {
                    protocol,
                    lo: 1,
                    hi: 65535,
                    numbered: false,
                },
                Some(IntOrString::Int(n)) => Ports::Range {
                    protocol,
                    lo: *n,
                    hi: p.end_port.unwrap_or(*n).max(*n),
                    numbered: true,
                },
                Some(IntOrString::String(name)) => Ports::Named { protocol, name },
            }
        })
        .collect()
}

fn dests_of(rule: &NetworkPolicyEgressRule) -> Vec<Dest<'_>> {
    match rule.to.as_deref().filter(|t| !t.is_empty()) {
        None => vec![Dest::Anywhere],
        Some(peers) => peers.iter().map(Dest::Peer).collect(),
    }
}

/// The namespace names a namespaceSelector is pinned to, if it is pinned by name.
fn pinned_namespaces(sel: &LabelSelector) -> Option<Vec<&str>> {
    if let Some(v) = sel.match_labels.as_ref().and_then(|m| m.get(NS_NAME_LABEL)) {
        return Some(vec![v.as_str()]);
    }
    sel.match_expressions
        .iter()
        .flatten()
        .find(|e| e.key == NS_NAME_LABEL && e.operator == "In")
        .map(|e| e.values.iter().flatten().map(String::as_str).collect())
}

/// Where an allow entry's destinations are written by labels, what a peer chosen by labels
/// must fit.
fn peer_within(
    peer: &NetworkPolicyPeer,
    a: &EgressAllow,
    own_ns: &str,
    own_labels: Option<&selector::Labels>,
) -> bool {
    let in_listed = |names: &[&str]| {
        !a.namespaces.is_empty() && names.iter().all(|n| a.namespaces.iter().any(|x| x == n))
    };
    let namespace_ok = match &peer.namespace_selector {
        Some(ns) => {
            let pinned = pinned_namespaces(ns);
            pinned.as_deref().is_some_and(&in_listed)
                || a.namespace_selector.as_ref().is_some_and(|s| selector::implies(ns, s))
                // An entry naming pods only means the pod's own namespace.
                || (a.namespaces.is_empty()
                    && a.namespace_selector.is_none()
                    && pinned.as_deref() == Some(&[own_ns][..]))
        }
        None => {
            in_listed(&[own_ns])
                || a.namespace_selector
                    .as_ref()
                    .is_some_and(|s| own_labels.is_some_and(|l| selector::matches(s, l)))
                || (a.namespaces.is_empty() && a.namespace_selector.is_none())
        }
    };
    let pods_ok = match (&a.pod_selector, &peer.pod_selector) {
        (None, _) => true,
        (Some(wide), Some(narrow)) => selector::implies(narrow, wide),
        (Some(wide), None) => selector::is_empty(wide),
    };
    (peer.namespace_selector.is_some() || peer.pod_selector.is_some()) && namespace_ok && pods_ok
}

/// Whether the addresses `cidrs` minus `except` all lie in the entry's.
fn addresses_within(cidrs: &[String], except: &[String], a: &EgressAllow) -> bool {
    match (cidr::set(cidrs, except), cidr::set(&a.cidrs, &a.except)) {
        (Ok(inner), Ok(outer)) => cidr::within(&inner, &outer),
        // An address the API server let through but that does not parse here is not
        // judged covered.
        _ => false,
    }
}

fn dest_ok(
    a: &EgressAllow,
    dest: &Dest<'_>,
    own_ns: &str,
    own_labels: Option<&selector::Labels>,
) -> bool {
    let by_address = !a.cidrs.is_empty();
    let by_labels =
        !a.namespaces.is_empty() || a.namespace_selector.is_some() || a.pod_selector.is_some();
    let by_name = !a.fqdns.is_empty();
    if !by_address && !by_labels && !by_name {
        return true;
    }
    match dest {
        Dest::Fqdn(name) => a
            .fqdns
            .iter()
            .any(|q| super::cilium_egress::fqdn_within(name, q)),
        Dest::Opaque(_) => false,
        Dest::Anywhere => {
            by_address && addresses_within(&["0.0.0.0/0".into(), "::/0".into()], &[], a)
        }
        Dest::Peer(p) => match &p.ip_block {
            Some(b) => {
                by_address
                    && addresses_within(
                        std::slice::from_ref(&b.cidr),
                        b.except.as_deref().unwrap_or(&[]),
                        a,
                    )
            }
            None => by_labels && peer_within(p, a, own_ns, own_labels),
        },
    }
}

pub(super) fn covers(
    a: &EgressAllow,
    port: &Ports<'_>,
    dest: &Dest<'_>,
    own_ns: &str,
    own_labels: Option<&selector::Labels>,
) -> bool {
    let port_ok = match port {
        Ports::Every => false,
        Ports::Range {
            protocol, lo, hi, ..
        } => a.protocol == *protocol && a.port <= *lo && *hi <= a.end_port.unwrap_or(a.port),
        Ports::Named { protocol, name } => {
            a.protocol == *protocol && !a.name.is_empty() && a.name == *name
        }
        Ports::Icmp => false,
    };
    port_ok && dest_ok(a, dest, own_ns, own_labels)
}

pub(super) fn describe_ports(p: &Ports<'_>) -> String {
    match p {
        Ports::Every => "all ports".into(),
        Ports::Icmp => "ICMP".into(),
        Ports::Range {
            protocol,
            numbered: false,
            ..
        } => format!("all {protocol} ports"),
        Ports::Range {
            protocol, lo, hi, ..
        } if lo == hi => format!("{protocol} {lo}"),
        Ports::Range {
            protocol, lo, hi, ..
        } => format!("{protocol} {lo}-{hi}"),
        Ports::Named { protocol, name } => format!("{protocol} port named {name:?}"),
    }
}

fn describe_namespaces(sel: &LabelSelector) -> String {
    match pinned_namespaces(sel) {
        Some(names) => format!("namespace {}", names.join(", ")),
        None if selector::is_empty(sel) => "all namespaces".into(),
        None => format!("namespaces {}", selector::describe(sel)),
    }
}

fn describe_pods(sel: &LabelSelector) -> String {
    if selector::is_empty(sel) {
        "all pods".into()
    } else {
        format!("pods {}", selector::describe(sel))
    }
}

pub(super) fn describe_dest(d: &Dest<'_>, own_ns: &str) -> String {
    let p = match d {
        Dest::Anywhere => return "anywhere".into(),
        Dest::Fqdn(name) => return (*name).to_string(),
        Dest::Opaque(what) => return what.clone(),
        Dest::Peer(p) => p,
    };
    if let Some(b) = &p.ip_block {
        return match b.except.as_deref().filter(|e| !e.is_empty()) {
            Some(ex) => format!("{} (except {})", b.cidr, ex.join(", ")),
            None => b.cidr.clone(),
        };
    }
    match (&p.namespace_selector, &p.pod_selector) {
        (Some(ns), Some(pods)) => format!("{} in {}", describe_pods(pods), describe_namespaces(ns)),
        (Some(ns), None) => describe_namespaces(ns),
        (None, Some(pods)) => format!("{} in namespace {own_ns}", describe_pods(pods)),
        (None, None) => "anywhere".into(),
    }
}

/// The allow-list in words, for the fix texts of violations. It is written on first use: a
/// pod that passes (the usual case) never needs it, and writing it was a tenth of the
/// checks' time for the bench pod.
pub(super) struct AllowListText<'a> {
    allow: &'a [EgressAllow],
    text: std::cell::OnceCell<String>,
}

impl<'a> AllowListText<'a> {
    fn new(allow: &'a [EgressAllow]) -> Self {
        AllowListText {
            allow,
            text: std::cell::OnceCell::new(),
        }
    }

    pub(super) fn get(&self) -> &str {
        self.text.get_or_init(|| describe_allow_list(self.allow))
    }
}

fn describe_allow_list(allow: &[EgressAllow]) -> String {
    if allow.is_empty() {
        return "nothing".into();
    }
    let items: Vec<String> = allow
        .iter()
        .map(|a| {
            let ports = match a.end_port {
                Some(e) if e != a.port => format!("{} {}-{e}", a.protocol, a.port),
                _ => format!("{} {}", a.protocol, a.port),
            };
            let mut to = Vec::new();
            if !a.namespaces.is_empty() {
                to.push(format!("namespace {}", a.namespaces.join(", ")));
            }
            if let Some(s) = &a.namespace_selector {
                to.push(describe_namespaces(s));
            }
            if let Some(s) = &a.pod_selector {
                to.push(describe_pods(s));
            }
            if !a.fqdns.is_empty() {
                to.push(a.fqdns.join(", "));
            }
            if !a.cidrs.is_empty() {
                let mut c = a.cidrs.join(", ");
                if !a.except.is_empty() {
                    c.push_str(&format!(" except {}", a.except.join(", ")));
                }
                to.push(c);
            }
            if to.is_empty() {
                ports
            } else {
                format!("{ports} to {}", to.join(" "))
            }
        })
        .collect();
    items.join(", ")
}

pub(super) fn push_unique(v: &mut Vec<String>, s: String) {
    if !v.contains(&s) {
        v.push(s);
    }
}

pub fn check(input: &CheckInput<'_>) -> Vec<Violation> {
    let t = &input.target;
    let ns = t.namespace;
    let labels = selector::labels_of(t.meta.labels.as_ref());
    let path = format!(
        "{}metadata.labels",
        t.spec_path.strip_suffix("spec").unwrap_or("")
    );
    let allowed = AllowListText::new(&input.policy.checks.egress.allow);
    let own_labels = input.view.namespace_labels(ns);

    // Cilium's policies first: their egressDeny rules close what any allow rule opens, a
    // NetworkPolicy's included, so what they deny is covered like an allow-list entry.
    let cilium = super::cilium_egress::judge(input, labels, own_labels.as_ref(), &path, &allowed);
    let with_denied: Vec<EgressAllow>;
    let allow: &[EgressAllow] = match &cilium {
        Some(c) if !c.denied.is_empty() => {
            with_denied = input
                .policy
                .checks
                .egress
                .allow
                .iter()
                .chain(&c.denied)
                .cloned()
                .collect();
            &with_denied
        }
        _ => &input.policy.checks.egress.allow,
    };

    let mut selecting = 0;
    let mut out = Vec::new();
    for np in input.view.network_policies(ns) {
        let Some(spec) = np.spec.as_ref().filter(|s| selects_for_egress(s, labels)) else {
            continue;
        };
        selecting += 1;
        let name = np.metadata.name.as_deref().unwrap_or("");
        for (k, rule) in spec.egress.iter().flatten().enumerate() {
            let ports = ports_of(rule);
            let dests = dests_of(rule);
            let mut open_ports = Vec::new();
            let mut open_dests = Vec::new();
            for p in &ports {
                for d in &dests {
                    if !allow
                        .iter()
                        .any(|a| covers(a, p, d, ns, own_labels.as_ref()))
                    {
                        push_unique(&mut open_ports, describe_ports(p));
                        push_unique(&mut open_dests, describe_dest(d, ns));
                    }
                }
            }
            if open_ports.is_empty() {
                continue;
            }
            out.push(Violation::new(
                ID,
                TIER,
                path.clone(),
                format!(
                    "NetworkPolicy {ns}/{name} egress[{k}] allows {} to {}",
                    open_ports.join(", "),
                    open_dests.join(", ")
                ),
                format!(
                    "narrow egress[{k}] of NetworkPolicy {name} to the allow-list ({}), or add the destination to checks.egress.allow",
                    allowed.get()
                ),
            ));
        }
    }
    let cilium_served = cilium.is_some();
    if let Some(c) = cilium {
        selecting += c.default_deny;
        out.extend(c.violations);
    }
    if selecting == 0 {
        let (message, fix) = if cilium_served {
            (
                format!(
                    "no NetworkPolicy in namespace {ns} selects this pod for Egress, and no CiliumNetworkPolicy or CiliumClusterwideNetworkPolicy puts it in egress default-deny"
                ),
                format!(
                    "add a NetworkPolicy in {ns} whose podSelector matches this pod with policyTypes: [Egress], or a CiliumNetworkPolicy whose endpointSelector matches it with egress rules, allowing only {}",
                    allowed.get()
                ),
            )
        } else {
            (
                format!("no NetworkPolicy in namespace {ns} selects this pod for Egress"),
                format!(
                    "add a NetworkPolicy in {ns} whose podSelector matches this pod, with policyTypes: [Egress] and egress allowing only {}",
                    allowed.get()
                ),
            )
        };
        out.push(Violation::new(ID, TIER, path, message, fix));
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::engine::checks::fixtures::*;
    use crate::engine::policy::Policy;
    use crate::engine::view::StaticView;
    use serde_json::{Value, json};

    fn view(policies: &[Value]) -> StaticView {
        let mut all = vec![service_account_json(NS, SA)];
        all.extend_from_slice(policies);
        view_of(&all)
    }

    fn judge(policies: &[Value]) -> Vec<Violation> {
        run(check, &hardened_pod(), &Policy::default(), &view(policies))
    }

    fn np(name: &str, spec: Value) -> Value {
        network_policy_json(NS, name, spec)
    }

    fn dns_and_https() -> Value {
        np(
            "dns-https",
            json!({"podSelector": {"matchLabels": {"app": "openclaw"}}, "policyTypes": ["Egress"],
            "egress": [
                {"to": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}}}],
                 "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}]},
                {"ports": [{"port": 443}]}
            ]}),
        )
    }

    fn allow_web() -> Value {
        np(
            "allow-web",
            json!({"podSelector": {"matchLabels": {"app": "openclaw"}},
                "egress": [{"to": [{"ipBlock": {"cidr": "0.0.0.0/0", "except": ["10.0.0.0/8"]}}],
                            "ports": [{"protocol": "TCP", "port": 80}]}]}),
        )
    }

    fn messages(v: &[Violation]) -> Vec<&str> {
        v.iter().map(|x| x.message.as_str()).collect()
    }

    fn assert_no_egress_policy(v: &[Violation]) {
        assert_eq!(
            messages(v),
            [format!(
                "no NetworkPolicy in namespace {NS} selects this pod for Egress"
            )]
        );
        assert_eq!(paths(v), ["metadata.labels"]);
        assert_eq!(v[0].tier, Tier::High);
    }

    #[test]
    fn passes_deny_all_egress() {
        assert!(judge(&[deny_all_egress_json(NS)]).is_empty());
    }

    #[test]
    fn passes_dns_and_https_policy() {
        let v = judge(&[dns_and_https()]);
        assert!(v.is_empty(), "{v:?}");
    }

    #[test]
    fn rejects_namespace_without_policies() {
        assert_no_egress_policy(&judge(&[]));
    }

    #[test]
    fn rejects_when_policy_selects_other_pods_only() {
        let other = np(
            "db",
            json!({"podSelector": {"matchLabels": {"app": "postgres"}}, "policyTypes": ["Egress"]}),
        );
        assert_no_egress_policy(&judge(&[other]));
    }

    #[test]
    fn rejects_when_only_policy_is_ingress_only() {
        let implicit = np(
            "ingress",
            json!({"podSelector": {}, "ingress": [{"from": [{"podSelector": {}}]}]}),
        );
        assert_no_egress_policy(&judge(&[implicit]));
        // Egress rules of a policy whose policyTypes leave Egress out are ignored by the API.
        let explicit = np(
            "ingress-typed",
            json!({"podSelector": {}, "policyTypes": ["Ingress"], "egress": [{"ports": [{"port": 443}]}]}),
        );
        assert_no_egress_policy(&judge(&[explicit]));
    }

    #[test]
    fn policy_in_another_namespace_does_not_count() {
        assert_no_egress_policy(&judge(&[deny_all_egress_json("elsewhere")]));
    }

    #[test]
    fn rejects_policy_allowing_all_egress() {
        let v = judge(&[np("open", json!({"podSelector": {}, "egress": [{}]}))]);
        assert_eq!(
            messages(&v),
            [format!(
                "NetworkPolicy {NS}/open egress[0] allows all ports to anywhere"
            )]
        );
        assert!(v[0].fix.contains("UDP 53, TCP 53, TCP 443"), "{}", v[0].fix);
    }

    #[test]
    fn rejects_union_of_two_policies_that_breaks_the_allow_list() {
        let v = judge(&[deny_all_egress_json(NS), dns_and_https(), allow_web()]);
        assert_eq!(
            messages(&v),
            [format!(
                "NetworkPolicy {NS}/allow-web egress[0] allows TCP 80 to 0.0.0.0/0 (except 10.0.0.0/8)"
            )]
        );
        assert_eq!(paths(&v), ["metadata.labels"]);
    }

    #[test]
    fn reports_one_violation_per_uncovered_rule() {
        let p = np(
            "mixed",
            json!({"podSelector": {}, "policyTypes": ["Egress"], "egress": [
                {"ports": [{"protocol": "UDP"}]},
                {"ports": [{"port": 443}]},
                {"to": [{"namespaceSelector": {}, "podSelector": {"matchLabels": {"app": "redis"}}}],
                 "ports": [{"port": 6379}]}
            ]}),
        );
        let v = judge(&[p]);
        assert_eq!(
            messages(&v),
            [
                format!("NetworkPolicy {NS}/mixed egress[0] allows all UDP ports to anywhere"),
                format!(
                    "NetworkPolicy {NS}/mixed egress[2] allows TCP 6379 to pods app=redis in all namespaces"
                ),
            ]
        );
    }

    #[test]
    fn match_expressions_select_the_pod() {
        let with = |exprs: Value| {
            np(
                "exprs",
                json!({"podSelector": {"matchExpressions": exprs}, "policyTypes": ["Egress"]}),
            )
        };
        // The hardened pod carries app=openclaw and nothing else.
        for (exprs, selects) in [
            (
                json!([{"key": "app", "operator": "NotIn", "values": ["postgres"]}]),
                true,
            ),
            (
                json!([{"key": "app", "operator": "NotIn", "values": ["openclaw"]}]),
                false,
            ),
            (json!([{"key": "app", "operator": "Exists"}]), true),
            (json!([{"key": "tier", "operator": "Exists"}]), false),
            (json!([{"key": "tier", "operator": "DoesNotExist"}]), true),
            (json!([{"key": "app", "operator": "DoesNotExist"}]), false),
        ] {
            let v = judge(&[with(exprs.clone())]);
            assert_eq!(v.is_empty(), selects, "{exprs}: {v:?}");
        }
    }

    #[test]
    fn end_port_range_must_fit_inside_an_allowed_range() {
        let range = |hi: i32| {
            np(
                "range",
                json!({"podSelector": {}, "policyTypes": ["Egress"],
                "egress": [{"ports": [{"protocol": "TCP", "port": 443, "endPort": hi}]}]}),
            )
        };
        let v = judge(&[range(444)]);
        assert_eq!(
            messages(&v),
            [format!(
                "NetworkPolicy {NS}/range egress[0] allows TCP 443-444 to anywhere"
            )]
        );

        let mut policy = Policy::default();
        policy.checks.egress.allow.push(EgressAllow {
            name: "inference".into(),
            protocol: "TCP".into(),
            port: 400,
            end_port: Some(500),
            ..Default::default()
        });
        assert!(run(check, &hardened_pod(), &policy, &view(&[range(480)])).is_empty());
        assert_eq!(
            run(check, &hardened_pod(), &policy, &view(&[range(501)])).len(),
            1
        );
    }

    #[test]
    fn named_port_is_covered_only_by_an_entry_of_that_name() {
        let named = np(
            "named",
            json!({"podSelector": {}, "policyTypes": ["Egress"],
            "egress": [{"ports": [{"protocol": "TCP", "port": "https"}]}]}),
        );
        let v = judge(std::slice::from_ref(&named));
        assert_eq!(
            messages(&v),
            [format!(
                "NetworkPolicy {NS}/named egress[0] allows TCP port named \"https\" to anywhere"
            )]
        );
        let mut policy = Policy::default();
        policy.checks.egress.allow[2].name = "https".into();
        assert!(run(check, &hardened_pod(), &policy, &view(&[named])).is_empty());
    }

    #[test]
    fn protocol_defaults_to_tcp() {
        let udp = np(
            "udp",
            json!({"podSelector": {}, "policyTypes": ["Egress"],
            "egress": [{"ports": [{"protocol": "UDP", "port": 443}]}]}),
        );
        assert_eq!(judge(&[udp]).len(), 1);
    }

    #[test]
    fn namespace_restricted_entries_cover_only_peers_pinned_to_those_namespaces() {
        let mut policy = Policy::default();
        policy.checks.egress.allow.push(EgressAllow {
            name: "otel".into(),
            protocol: "TCP".into(),
            port: 4318,
            end_port: None,
            namespaces: vec!["observability".into(), NS.into()],
            ..Default::default()
        });
        let rule = |to: Value| {
            np(
                "otel",
                json!({"podSelector": {}, "policyTypes": ["Egress"],
                "egress": [{"to": to, "ports": [{"port": 4318}]}]}),
            )
        };
        let judge_with = |to: Value| run(check, &hardened_pod(), &policy, &view(&[rule(to)]));
        let by_label = json!([{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "observability"}}}]);
        let by_expr = json!([{"namespaceSelector": {"matchExpressions": [
            {"key": "kubernetes.io/metadata.name", "operator": "In", "values": ["observability", NS]}]}}]);
        let same_ns = json!([{"podSelector": {"matchLabels": {"app": "collector"}}}]);
        assert!(judge_with(by_label).is_empty());
        assert!(judge_with(by_expr).is_empty());
        assert!(judge_with(same_ns).is_empty());

        let v = judge_with(json!([{"namespaceSelector": {"matchLabels": {"team": "obs"}}}]));
        assert_eq!(
            messages(&v),
            [format!(
                "NetworkPolicy {NS}/otel egress[0] allows TCP 4318 to namespaces team=obs"
            )]
        );
        let v = judge_with(json!([{"ipBlock": {"cidr": "10.1.2.3/32"}}]));
        assert_eq!(
            messages(&v),
            [format!(
                "NetworkPolicy {NS}/otel egress[0] allows TCP 4318 to 10.1.2.3/32"
            )]
        );
        assert_eq!(judge_with(json!([])).len(), 1);
    }

    #[test]
    fn deployment_template_path_is_the_template_labels() {
        let v = run_on_deployment(check, &hardened_pod(), &Policy::default(), &view(&[]));
        assert_eq!(paths(&v), ["spec.template.metadata.labels"]);
    }

    fn https_rule(name: &str, to: Value) -> Value {
        np(
            name,
            json!({"podSelector": {}, "policyTypes": ["Egress"],
            "egress": [{"to": to, "ports": [{"protocol": "TCP", "port": 443}]}]}),
        )
    }

    fn internet_only() -> Policy {
        let mut policy = Policy::default();
        let https = &mut policy.checks.egress.allow[2];
        https.cidrs = vec!["0.0.0.0/0".into()];
        https.except = vec![
            "10.0.0.0/8".into(),
            "172.16.0.0/12".into(),
            "192.168.0.0/16".into(),
            "169.254.0.0/16".into(),
        ];
        policy
    }

    #[test]
    fn cidr_entries_honour_except_on_both_sides() {
        let policy = internet_only();
        let judge_with = |to: Value| {
            run(
                check,
                &hardened_pod(),
                &policy,
                &view(&[https_rule("web", to)]),
            )
        };
        // The example's policy: the internet minus private ranges and link-local.
        assert!(
            judge_with(json!([{"ipBlock": {"cidr": "0.0.0.0/0", "except": [
            "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "169.254.0.0/16"]}}]))
            .is_empty()
        );
        assert!(judge_with(json!([{"ipBlock": {"cidr": "203.0.113.0/24"}}])).is_empty());
        // Without its except, the same block reaches the cluster's private ranges.
        let v = judge_with(json!([{"ipBlock": {"cidr": "0.0.0.0/0", "except": ["10.0.0.0/8"]}}]));
        assert_eq!(
            messages(&v),
            [format!(
                "NetworkPolicy {NS}/web egress[0] allows TCP 443 to 0.0.0.0/0 (except 10.0.0.0/8)"
            )]
        );
        assert_eq!(
            judge_with(json!([{"ipBlock": {"cidr": "169.254.169.254/32"}}])).len(),
            1
        );
        // A pod peer is not an address the entry names, nor is a rule without `to`.
        assert_eq!(judge_with(json!([{"podSelector": {}}])).len(), 1);
        assert_eq!(
            run(
                check,
                &hardened_pod(),
                &policy,
                &view(&[np(
                    "any",
                    json!({"podSelector": {}, "policyTypes": ["Egress"],
                "egress": [{"ports": [{"protocol": "TCP", "port": 443}]}]})
                )])
            )
            .len(),
            1
        );
    }

    #[test]
    fn label_entries_cover_peers_by_namespace_and_pod_labels() {
        let mut policy = Policy::default();
        policy.checks.egress.allow.push(EgressAllow {
            name: "inference".into(),
            protocol: "TCP".into(),
            port: 8000,
            namespace_selector: Some(
                serde_json::from_value(json!({"matchLabels": {"team": "ml"}})).unwrap(),
            ),
            pod_selector: Some(
                serde_json::from_value(json!({"matchLabels": {"app": "vllm"}})).unwrap(),
            ),
            ..Default::default()
        });
        let rule = |to: Value| {
            np(
                "vllm",
                json!({"podSelector": {}, "policyTypes": ["Egress"],
                "egress": [{"to": to, "ports": [{"port": 8000}]}]}),
            )
        };
        let judge_with = |to: Value, extra: &[Value]| {
            let mut objects = vec![rule(to)];
            objects.extend_from_slice(extra);
            run(check, &hardened_pod(), &policy, &view(&objects))
        };
        let ml_vllm = json!([{"namespaceSelector": {"matchLabels": {"team": "ml", "env": "prod"}},
            "podSelector": {"matchLabels": {"app": "vllm", "tier": "gpu"}}}]);
        assert!(judge_with(ml_vllm, &[]).is_empty());
        // Every pod of those namespaces is more than the vLLM pods.
        let v = judge_with(
            json!([{"namespaceSelector": {"matchLabels": {"team": "ml"}}}]),
            &[],
        );
        assert_eq!(v.len(), 1, "{v:?}");
        assert!(
            v[0].fix
                .contains("TCP 8000 to namespaces team=ml pods app=vllm"),
            "{}",
            v[0].fix
        );
        // Another team's namespaces are not covered.
        assert_eq!(
            judge_with(json!([{"namespaceSelector": {"matchLabels": {"team": "web"}}, "podSelector": {"matchLabels": {"app": "vllm"}}}]), &[]).len(),
            1
        );
        // A podSelector-only peer is in the agent's own namespace: covered when its labels
        // match the entry's namespaceSelector.
        let same_ns = json!([{"podSelector": {"matchLabels": {"app": "vllm"}}}]);
        assert_eq!(judge_with(same_ns.clone(), &[]).len(), 1);
        let labelled_ns = json!({"apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": NS, "labels": {"team": "ml"}}});
        assert!(judge_with(same_ns, &[labelled_ns]).is_empty());
    }

    #[test]
    fn policy_refuses_bad_cidrs_and_except_without_cidrs() {
        let err = Policy::from_yaml(
            "checks:\n  egress:\n    allow:\n    - {protocol: TCP, port: 443, cidrs: [10.0.0.0/33]}\n",
            "p.yaml",
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("checks.egress.allow[0].cidrs[0]") && err.contains("/33"),
            "{err}"
        );
        let err = Policy::from_yaml(
            "checks:\n  egress:\n    allow:\n    - {protocol: TCP, port: 443, except: [10.0.0.0/8]}\n",
            "p.yaml",
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("except needs cidrs"), "{err}");
    }
}

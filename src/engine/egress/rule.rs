//! The model both kinds of egress policy are judged in: what one rule opens, as pairs of
//! [`Ports`] and [`Dest`], and whether an allow-list entry covers a pair.
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

use super::cidr;
use crate::engine::policy::EgressAllow;
use crate::engine::selector;
use k8s_openapi::api::networking::v1::NetworkPolicyPeer;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

/// The label the API server puts on every namespace, with its name.
pub const NS_NAME_LABEL: &str = "kubernetes.io/metadata.name";

/// A rule that opens more than the allow-list, in words: what it opens, and how to close it.
/// The check that asked turns it into a violation of its own.
#[derive(Debug, Clone, PartialEq)]
pub struct Finding {
    pub message: String,
    pub fix: String,
}

/// What one port entry of a rule opens.
pub enum Ports<'a> {
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
pub enum Dest<'a> {
    Anywhere,
    Peer(&'a NetworkPolicyPeer),
    /// A host name or pattern (Cilium `toFQDNs`).
    Fqdn(&'a str),
    /// A destination this check does not resolve (a Service, an entity such as `cluster`,
    /// a CIDR group), described: only an entry without destinations covers it.
    Opaque(String),
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
        Dest::Fqdn(name) => a.fqdns.iter().any(|q| super::fqdn::fqdn_within(name, q)),
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

pub fn covers(
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

pub fn describe_ports(p: &Ports<'_>) -> String {
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

pub fn describe_dest(d: &Dest<'_>, own_ns: &str) -> String {
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
pub struct AllowListText<'a> {
    allow: &'a [EgressAllow],
    text: std::cell::OnceCell<String>,
}

impl<'a> AllowListText<'a> {
    pub fn new(allow: &'a [EgressAllow]) -> Self {
        AllowListText {
            allow,
            text: std::cell::OnceCell::new(),
        }
    }

    pub fn get(&self) -> &str {
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

fn push_unique(v: &mut Vec<String>, s: String) {
    if !v.contains(&s) {
        v.push(s);
    }
}

/// What a rule opens beyond `allow`, in words: the ports and the destinations of every
/// (port, destination) pair no entry covers; `None` when every pair is covered.
pub fn uncovered(
    ports: &[Ports<'_>],
    dests: &[Dest<'_>],
    allow: &[EgressAllow],
    own_ns: &str,
    own_labels: Option<&selector::Labels>,
) -> Option<(String, String)> {
    let mut open_ports = Vec::new();
    let mut open_dests = Vec::new();
    for p in ports {
        for d in dests {
            if !allow.iter().any(|a| covers(a, p, d, own_ns, own_labels)) {
                push_unique(&mut open_ports, describe_ports(p));
                push_unique(&mut open_dests, describe_dest(d, own_ns));
            }
        }
    }
    (!open_ports.is_empty()).then(|| (open_ports.join(", "), open_dests.join(", ")))
}

//! The parts of Cilium's policies (`cilium.io/v2` CiliumNetworkPolicy and
//! CiliumClusterwideNetworkPolicy) that `default-deny-egress` reads: which endpoints a rule
//! selects, whether it puts them in egress default-deny, and what its egress and egressDeny
//! rules open or close. Everything else (ingress, L7 rules, authentication, ...) is ignored
//! while parsing, so a field Cilium adds later never makes a policy unreadable.
//!
//! Field names follow Cilium's `pkg/policy/api` (Rule, EgressRule, EgressDenyRule,
//! PortRule, CIDRRule, FQDNSelector). Parsing is pure; the cluster layer and `check` hand in
//! the object as JSON.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use serde::Deserialize;

pub const API_VERSION: &str = "cilium.io/v2";
pub const NAMESPACED_KIND: &str = "CiliumNetworkPolicy";
pub const CLUSTERWIDE_KIND: &str = "CiliumClusterwideNetworkPolicy";

/// One Cilium policy object: its `spec` and every entry of `specs`, each an independent rule.
#[derive(Debug, Clone, PartialEq)]
pub struct CiliumPolicy {
    /// A CiliumClusterwideNetworkPolicy (no namespace; selects across namespaces).
    pub clusterwide: bool,
    /// Empty for clusterwide policies.
    pub namespace: String,
    pub name: String,
    /// `(where, rule)`: where is `spec` or `specs[i]`, for messages.
    pub rules: Vec<(String, Rule)>,
}

impl CiliumPolicy {
    /// `CiliumNetworkPolicy agents/llm-only` or `CiliumClusterwideNetworkPolicy egress-base`.
    pub fn describe(&self) -> String {
        if self.clusterwide {
            format!("{CLUSTERWIDE_KIND} {}", self.name)
        } else {
            format!("{NAMESPACED_KIND} {}/{}", self.namespace, self.name)
        }
    }

    /// Reads a policy object (either kind). An error names the field that does not fit.
    pub fn from_object(object: &serde_json::Value) -> Result<CiliumPolicy, String> {
        let kind = object.get("kind").and_then(|k| k.as_str()).unwrap_or("");
        let clusterwide = match kind {
            NAMESPACED_KIND => false,
            CLUSTERWIDE_KIND => true,
            other => return Err(format!("kind {other:?} is not a Cilium policy")),
        };
        let meta = object.get("metadata");
        let text = |key: &str| {
            meta.and_then(|m| m.get(key))
                .and_then(|v| v.as_str())
                .unwrap_or("")
                .to_string()
        };
        let mut rules = Vec::new();
        if let Some(spec) = object.get("spec").filter(|s| !s.is_null()) {
            let rule = rule_at(spec, "spec")?;
            rules.push(("spec".to_string(), rule));
        }
        if let Some(specs) = object.get("specs").filter(|s| !s.is_null()) {
            let list = specs
                .as_array()
                .ok_or_else(|| "specs: not a list".to_string())?;
            for (i, spec) in list.iter().enumerate() {
                let rule = rule_at(spec, &format!("specs[{i}]"))?;
                rules.push((format!("specs[{i}]"), rule));
            }
        }
        Ok(CiliumPolicy {
            clusterwide,
            namespace: if clusterwide {
                String::new()
            } else {
                text("namespace")
            },
            name: text("name"),
            rules,
        })
    }
}

/// Reads one rule; an error names the field's path from the policy's root.
fn rule_at(value: &serde_json::Value, at: &str) -> Result<Rule, String> {
    serde_path_to_error::deserialize::<_, Rule>(value).map_err(|e| {
        let inner = e.path().to_string();
        let path = if inner == "." || inner.is_empty() {
            at.to_string()
        } else {
            format!("{at}.{inner}")
        };
        format!("{path}: {}", e.into_inner())
    })
}

/// One Cilium rule (`spec`, or an entry of `specs`).
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Rule {
    #[serde(default)]
    pub endpoint_selector: Option<LabelSelector>,
    /// Host policies select nodes, not pods.
    #[serde(default)]
    pub node_selector: Option<LabelSelector>,
    #[serde(default)]
    pub egress: Option<Vec<EgressRule>>,
    #[serde(default)]
    pub egress_deny: Option<Vec<EgressRule>>,
    #[serde(default)]
    pub enable_default_deny: Option<DefaultDeny>,
}

#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DefaultDeny {
    #[serde(default)]
    pub egress: Option<bool>,
}

/// An egress or egressDeny rule (deny rules carry no `toFQDNs`; the same type reads both).
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EgressRule {
    #[serde(default)]
    pub to_endpoints: Option<Vec<LabelSelector>>,
    #[serde(default, rename = "toCIDR")]
    pub to_cidr: Option<Vec<String>>,
    #[serde(default, rename = "toCIDRSet")]
    pub to_cidr_set: Option<Vec<CidrRule>>,
    #[serde(default)]
    pub to_entities: Option<Vec<String>>,
    #[serde(default, rename = "toFQDNs")]
    pub to_fqdns: Option<Vec<FqdnSelector>>,
    /// Destinations this check does not resolve (Services, cloud groups, nodes): their
    /// presence is kept, their content is not read.
    #[serde(default)]
    pub to_services: Option<Vec<serde_json::Value>>,
    #[serde(default)]
    pub to_groups: Option<Vec<serde_json::Value>>,
    #[serde(default)]
    pub to_nodes: Option<Vec<serde_json::Value>>,
    #[serde(default)]
    pub to_ports: Option<Vec<PortRule>>,
    #[serde(default)]
    pub icmps: Option<Vec<serde_json::Value>>,
}

#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CidrRule {
    #[serde(default)]
    pub cidr: Option<String>,
    #[serde(default)]
    pub except: Option<Vec<String>>,
    /// A CiliumCIDRGroup by name or selector: not resolved here.
    #[serde(default)]
    pub cidr_group_ref: Option<String>,
    #[serde(default)]
    pub cidr_group_selector: Option<serde_json::Value>,
}

#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FqdnSelector {
    #[serde(default)]
    pub match_name: Option<String>,
    #[serde(default)]
    pub match_pattern: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PortRule {
    #[serde(default)]
    pub ports: Option<Vec<PortProtocol>>,
}

#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PortProtocol {
    /// A number or a port name, written as a string by Cilium's schema; a bare number is
    /// read too.
    #[serde(default)]
    pub port: Option<serde_json::Value>,
    #[serde(default)]
    pub end_port: Option<i32>,
    /// `TCP`, `UDP`, `SCTP` or `ANY` (the default).
    #[serde(default)]
    pub protocol: Option<String>,
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_spec_and_specs_with_their_places() {
        let p = CiliumPolicy::from_object(&json!({
            "apiVersion": API_VERSION, "kind": NAMESPACED_KIND,
            "metadata": {"name": "llm", "namespace": "agents"},
            "spec": {"endpointSelector": {}, "egress": [{"toFQDNs": [{"matchName": "api.anthropic.com"}],
                "toPorts": [{"ports": [{"port": "443", "protocol": "TCP"}], "rules": {"http": [{}]}}]}]},
            "specs": [{"endpointSelector": {"matchLabels": {"k8s:app": "x"}}, "egressDeny": [{"toCIDR": ["10.0.0.0/8"]}],
                "enableDefaultDeny": {"egress": false, "ingress": true}, "ingress": [{}]}]
        }))
        .unwrap();
        assert_eq!(p.describe(), "CiliumNetworkPolicy agents/llm");
        assert_eq!(p.rules.len(), 2);
        assert_eq!(p.rules[1].0, "specs[0]");
        let egress = p.rules[0].1.egress.as_ref().unwrap();
        assert_eq!(
            egress[0].to_fqdns.as_ref().unwrap()[0]
                .match_name
                .as_deref(),
            Some("api.anthropic.com")
        );
        assert_eq!(
            p.rules[1].1.enable_default_deny.as_ref().unwrap().egress,
            Some(false)
        );
    }

    #[test]
    fn clusterwide_policies_have_no_namespace() {
        let p = CiliumPolicy::from_object(&json!({"kind": CLUSTERWIDE_KIND,
            "metadata": {"name": "base", "namespace": "ignored"}, "spec": {"endpointSelector": {}}}))
        .unwrap();
        assert!(p.clusterwide);
        assert_eq!(p.namespace, "");
        assert_eq!(p.describe(), "CiliumClusterwideNetworkPolicy base");
    }

    #[test]
    fn a_field_of_the_wrong_shape_is_named() {
        let err = CiliumPolicy::from_object(&json!({"kind": NAMESPACED_KIND,
            "metadata": {"name": "x", "namespace": "a"}, "specs": [{"egress": {"toCIDR": []}}]}))
        .unwrap_err();
        assert!(
            err.starts_with("specs[0].egress: invalid type: map"),
            "{err}"
        );
    }
}

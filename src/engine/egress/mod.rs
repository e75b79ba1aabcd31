//! Egress as the policies of a cluster open it, judged against the policy's allow-list:
//! the model of what a rule opens and what an entry covers (`rule`), address ranges
//! (`cidr`) and host names (`fqdn`), and the two kinds of policy read into that model:
//! Kubernetes NetworkPolicies (`network_policy`) and Cilium's (`cilium_policy` parses them,
//! `cilium` judges them).
//!
//! Nothing here knows a check: checks call in, one way, and turn each [`rule::Finding`] into
//! a violation of their own. `cidr` and `fqdn` depend on nothing else, so policy loading
//! validates the allow-list with them.

pub mod cidr;
pub mod cilium;
pub mod cilium_policy;
pub mod fqdn;
pub mod network_policy;
pub mod rule;

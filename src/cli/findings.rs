//! What `audit` found: each judged object and the counts over them, printed by `audit` and
//! written into policy reports by [`super::reports`]. Data only, so that both can use it.

use crate::engine::Judged;
use serde::Serialize;
use std::collections::BTreeMap;

/// One judged object.
#[derive(Debug, Serialize)]
pub struct Finding {
    pub kind: String,
    #[serde(skip)]
    pub api_version: String,
    pub namespace: String,
    pub name: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub uid: String,
    /// The workload that owns it, `Kind/name`: its controller (a Pod's ReplicaSet's
    /// Deployment, a Job's CronJob), or the object itself when nothing controls it.
    pub workload: String,
    /// For a Pod agent-sandbox's controller made: the Sandbox it belongs to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sandbox: Option<String>,
    /// ... and the SandboxClaim that holds that Sandbox, when a claim does.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sandbox_claim: Option<String>,
    /// The namespace's mode now.
    pub mode: &'static str,
    /// Found by image only: no agent label.
    pub unlabelled: bool,
    /// Refused if created now, in the namespace's mode.
    pub refused_now: bool,
    /// Refused if created under `enforce`.
    pub refused_if_enforced: bool,
    pub violations: Vec<Judged>,
}

#[derive(Debug, Default, Serialize)]
pub struct Counts {
    pub objects: usize,
    pub violations: usize,
    pub refused_now: usize,
    pub refused_if_enforced: usize,
}

impl Counts {
    pub(crate) fn add(&mut self, f: &Finding) {
        self.objects += 1;
        self.violations += f.violations.len();
        self.refused_now += usize::from(f.refused_now);
        self.refused_if_enforced += usize::from(f.refused_if_enforced);
    }
}

#[derive(Debug, Default, Serialize)]
pub struct Report {
    pub findings: Vec<Finding>,
    pub total: Counts,
    pub by_namespace: BTreeMap<String, Counts>,
    pub by_mode: BTreeMap<&'static str, Counts>,
    /// Violations per check id.
    pub by_check: BTreeMap<&'static str, usize>,
    /// Agents found by image without an agent label.
    pub unlabelled_agents: usize,
    /// What the next rollout step changes: objects now admitted that it would refuse, and
    /// objects in audit mode that would start to get warnings.
    pub next_step: NextStep,
    /// Workloads (`Kind namespace/name`) whose template carries an approval stamp of the
    /// format before content digests: the webhook honours those only during the upgrade's
    /// grace period, so an approver re-applies each of them before it ends.
    pub legacy_approvals: Vec<String>,
    /// Policy exemptions that matched an object but had expired, so its checks were judged
    /// (as the webhook judges them), each once.
    pub expired_exemptions: Vec<String>,
    /// With `--expiring-within`: policy exemptions and approval stamps that expire within the
    /// window or have expired, soonest first.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expiring: Option<Vec<Expiring>>,
    /// Agent ServiceAccounts that non-agent Pods or workloads also run as: whatever the
    /// agent's identity may do, they may do too, and granting the agent anything grants it
    /// to them (and the reverse).
    pub shared_service_accounts: Vec<SharedServiceAccount>,
}

/// A policy exemption or an approval stamp that runs out soon, or has.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Expiring {
    /// `policy exemptions[0] ("reason")` or `approval on Deployment ns/name (checks) by approver`.
    pub what: String,
    /// When, `2027-01-31T00:00:00Z` (UTC).
    pub expires: String,
    /// Already past at the time of the audit.
    pub expired: bool,
    /// The same moment in seconds since the epoch, for ordering.
    #[serde(skip)]
    pub(crate) at: i64,
}

/// One ServiceAccount that agents and non-agents share.
#[derive(Debug, Serialize)]
pub struct SharedServiceAccount {
    pub namespace: String,
    pub service_account: String,
    /// `Kind name` of the agent objects running as it.
    pub agents: Vec<String>,
    /// `Kind name` of the other objects running as it.
    pub others: Vec<String>,
}

#[derive(Debug, Default, Serialize)]
pub struct NextStep {
    /// In `audit` namespaces: objects that `warn` would warn about.
    pub audit_to_warn_warned: usize,
    /// In `warn` namespaces: objects that `enforce` would refuse.
    pub warn_to_enforce_refused: usize,
    /// Everywhere: objects admitted today that `enforce` would refuse.
    pub refused_if_enforced_everywhere: usize,
}

//! The policy file: what counts as an agent, what each check allows, what each mutation
//! injects, and how violations turn into decisions. Parsed strictly and validated once at
//! load, so a typo is an error naming the key and the line instead of a silent default.

use super::review::User;
use super::selector::Labels;
use super::violation::Tier;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Errors found while loading a policy. Each names the place and what is allowed.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    #[error("cannot read policy file {path}: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("policy file {path}: {message}")]
    Parse { path: String, message: String },
    #[error("policy file {path}: {key}: {message}")]
    Invalid {
        path: String,
        key: String,
        message: String,
    },
}

/// How violations are answered, per the rollout path audit -> warn -> enforce.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Violations at denying tiers refuse the request.
    #[default]
    Enforce,
    /// Everything is allowed; each violation becomes a warning kubectl prints.
    Warn,
    /// Everything is allowed; violations go to audit annotations, logs and metrics.
    Audit,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Enforce => "enforce",
            Mode::Warn => "warn",
            Mode::Audit => "audit",
        }
    }

    pub fn parse(s: &str) -> Option<Mode> {
        match s {
            "enforce" => Some(Mode::Enforce),
            "warn" => Some(Mode::Warn),
            "audit" => Some(Mode::Audit),
            _ => None,
        }
    }
}

/// What a tier's violations do in enforce mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Deny,
    Warn,
    Audit,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Deny => "deny",
            Action::Warn => "warn",
            Action::Audit => "audit",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct TierActions {
    #[serde(default = "deny")]
    pub high: Action,
    #[serde(default = "deny")]
    pub medium: Action,
    #[serde(default = "warn")]
    pub low: Action,
}

fn deny() -> Action {
    Action::Deny
}
fn warn() -> Action {
    Action::Warn
}

impl Default for TierActions {
    fn default() -> Self {
        TierActions {
            high: Action::Deny,
            medium: Action::Deny,
            low: Action::Warn,
        }
    }
}

impl TierActions {
    pub fn for_tier(&self, tier: Tier) -> Action {
        match tier {
            Tier::High => self.high,
            Tier::Medium => self.medium,
            Tier::Low => self.low,
        }
    }
}

/// The whole policy file. Every field has a default, so no file at all is a valid policy.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase", default)]
pub struct Policy {
    /// Global mode; a namespace label (`modeLabel`) overrides it per namespace.
    pub mode: Mode,
    /// Namespace label whose value (`enforce`, `warn`, `audit`) overrides `mode`.
    pub mode_label: String,
    /// What each tier's violations do in enforce mode.
    pub tiers: TierActions,
    /// A pod is an agent when any of these selectors matches its labels.
    pub agent_selectors: Vec<LabelSelector>,
    /// Pods running an OpenClaw image without any agent label.
    pub catch_all: CatchAll,
    /// agent-sandbox's `Sandbox` and `SandboxTemplate`: agents by kind.
    pub agent_sandbox: AgentSandbox,
    /// Policy-file exemptions.
    pub exemptions: Vec<Exemption>,
    /// Groups whose members may approve exemptions by pod annotation, and open a shell in an
    /// agent (`exec-requires-approval`).
    pub approver_groups: Vec<String>,
    /// Users who are approvers without being in one of `approverGroups`.
    pub approver_users: Vec<String>,
    /// Pod annotation listing check ids to exempt (comma separated); honoured only when the
    /// requesting user is in an approver group.
    pub exemption_annotation: String,
    /// Users whose requests are controllers acting for a workload (the Pods of a Deployment
    /// are created by `replicaset-controller`): an approval stamped on the workload's
    /// template holds for the objects they create from it (src/engine/approval.rs).
    pub controller_users: Vec<String>,
    /// Judge as OpenShift's SCC admission will have filled in: a Pod by the SCC its
    /// `openshift.io/scc` annotation names, when `openShiftSccs` lists it; a workload's
    /// template (which the SCC admission never sees) as restricted-v2 will fill its Pods.
    #[serde(rename = "assumeOpenShift")]
    pub assume_openshift: bool,
    /// The SCCs whose fill-in `assumeOpenShift` trusts on a Pod (names from
    /// `openshift::KNOWN`). A Pod admitted under any other SCC (`anyuid` runs as root and
    /// fills in next to nothing) is judged as written.
    #[serde(rename = "openShiftSccs")]
    pub openshift_sccs: Vec<String>,
    /// Check ids switched off everywhere.
    pub disabled_checks: Vec<String>,
    /// One check's tier in place of its own (`{sandboxed-runtime: high}`): raises or lowers
    /// that check alone, where `tiers` would move every check of a tier.
    pub check_tiers: BTreeMap<String, Tier>,
    pub checks: CheckSettings,
    pub mutations: MutationSettings,
    /// How long approval stamps live, and how long stamps from before content digests are
    /// still honoured (see `approval`).
    pub approvals: ApprovalSettings,
    /// The key that signs and verifies approval stamps. Never in the policy file: `serve`
    /// reads it from `--approval-key-file` (a mounted Secret). Without it no stamp is made
    /// or honoured.
    #[serde(skip)]
    pub approval_key: Option<std::sync::Arc<ApprovalKey>>,
    /// The key before the last rotation, still accepted (never used to sign) until its
    /// overlap ends: `serve --previous-approval-key-file` and `--previous-approval-key-until`.
    #[serde(skip)]
    pub previous_approval_key: Option<std::sync::Arc<PreviousKey>>,
    /// When `serve` started, in seconds since the Unix epoch: the default grace period for
    /// stamps without a content digest counts from it. `0` elsewhere (`check`, tests), where
    /// no such stamp is honoured.
    #[serde(skip)]
    pub started: i64,
    /// Where the webhook's own decision spans go (not the agents': see `mutations.otel`).
    pub telemetry: TelemetrySettings,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            mode: Mode::Enforce,
            mode_label: "openclaw.io/mode".into(),
            tiers: TierActions::default(),
            agent_selectors: default_agent_selectors(),
            catch_all: CatchAll::default(),
            agent_sandbox: AgentSandbox::default(),
            exemptions: Vec::new(),
            approver_groups: vec!["openclaw:approvers".into()],
            approver_users: Vec::new(),
            exemption_annotation: "openclaw.io/exempt".into(),
            controller_users: default_controller_users(),
            assume_openshift: false,
            openshift_sccs: super::openshift::default_fill_sccs(),
            disabled_checks: Vec::new(),
            check_tiers: BTreeMap::new(),
            checks: CheckSettings::default(),
            mutations: MutationSettings::default(),
            approvals: ApprovalSettings::default(),
            approval_key: None,
            previous_approval_key: None,
            started: 0,
            telemetry: TelemetrySettings::default(),
        }
    }
}

/// How long approval stamps are honoured. Lengths of time are written `30d`, `12h`, `90m`,
/// `45s`, dates `2027-01-31` or `2027-01-31T00:00:00Z` (`src/engine/date.rs`).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase", default)]
pub struct ApprovalSettings {
    /// The longest a stamp is honoured after it was signed, whatever `openclaw.io/exempt-until`
    /// asks: an approval nobody renews runs out. Lowering it shortens stamps already signed.
    pub max_lifetime: String,
    /// How long after `serve` starts a stamp from before content digests (no digest, maybe
    /// no expiry) is still honoured, so that approvers can re-approve in time.
    pub legacy_grace: String,
    /// The end of that grace as a date, which a restart does not move; when set it replaces
    /// `legacyGrace`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub legacy_until: Option<String>,
}

impl Default for ApprovalSettings {
    fn default() -> Self {
        ApprovalSettings {
            max_lifetime: "30d".into(),
            legacy_grace: "7d".into(),
            legacy_until: None,
        }
    }
}

/// Defaults of [`ApprovalSettings`] in seconds, used should a value fail to read (the
/// policy is validated at load, so only a policy built in code can get here).
const DEFAULT_MAX_LIFETIME: i64 = 30 * 86_400;
const DEFAULT_LEGACY_GRACE: i64 = 7 * 86_400;

impl ApprovalSettings {
    /// `maxLifetime` in seconds.
    pub fn max_lifetime_secs(&self) -> i64 {
        super::date::parse_length(&self.max_lifetime).unwrap_or(DEFAULT_MAX_LIFETIME)
    }

    /// Until when stamps without a content digest are honoured: `legacyUntil`, else
    /// `legacyGrace` after `started` (`0`, unknown: none is).
    pub fn legacy_until_secs(&self, started: i64) -> i64 {
        if let Some(until) = &self.legacy_until {
            return super::date::parse_utc(until).unwrap_or(0);
        }
        if started <= 0 {
            return 0;
        }
        started.saturating_add(
            super::date::parse_length(&self.legacy_grace).unwrap_or(DEFAULT_LEGACY_GRACE),
        )
    }
}

/// The approval signing key. Its `Debug` names its length only: a `{:?}` of the policy (a log
/// line, a panic message, a test failure) must never print the key.
#[derive(Clone, PartialEq)]
pub struct ApprovalKey(Vec<u8>);

impl ApprovalKey {
    pub fn new(bytes: Vec<u8>) -> ApprovalKey {
        ApprovalKey(bytes)
    }
    pub fn bytes(&self) -> &[u8] {
        &self.0
    }
}

impl std::fmt::Debug for ApprovalKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ApprovalKey(<{} bytes, not shown>)", self.0.len())
    }
}

/// The approval key before a rotation, and the end of its overlap (seconds since the Unix
/// epoch). Its bytes never reach a log: `Debug` leaves them out.
#[derive(Clone, PartialEq)]
pub struct PreviousKey {
    pub key: Vec<u8>,
    pub until: i64,
}

impl std::fmt::Debug for PreviousKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PreviousKey")
            .field(
                "key",
                &format_args!("<{} bytes, not shown>", self.key.len()),
            )
            .field("until", &self.until)
            .finish()
    }
}

/// The webhook's decision spans, exported over OTLP/HTTP protobuf (docs/observability.md).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase", default)]
pub struct TelemetrySettings {
    /// OTLP/HTTP traces URL, used as is (`http://collector:4318/v1/traces`). Empty: the
    /// standard `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` / `OTEL_EXPORTER_OTLP_ENDPOINT` decide;
    /// with neither, nothing is exported.
    pub endpoint: String,
    /// Headers sent with every export (MLflow wants `x-mlflow-experiment-id`). Not for
    /// credentials: those go in `OTEL_EXPORTER_OTLP_HEADERS` from a Secret.
    pub headers: BTreeMap<String, String>,
    /// Spans waiting for export beyond which new ones are dropped and counted.
    pub max_queue_size: usize,
}

impl Default for TelemetrySettings {
    fn default() -> Self {
        TelemetrySettings {
            endpoint: String::new(),
            headers: BTreeMap::new(),
            max_queue_size: 2048,
        }
    }
}

/// The identity agent-sandbox's controller runs as when installed by its own Helm chart.
pub const AGENT_SANDBOX_CONTROLLER: &str =
    "system:serviceaccount:agent-sandbox-system:agent-sandbox-controller";

/// The identities kube-controller-manager's workload controllers act as: their own
/// ServiceAccounts with `--use-service-account-credentials` (kubeadm and most distributions),
/// or the manager's own user without it.
pub fn default_controller_users() -> Vec<String> {
    [
        "replicaset-controller",
        // kube-controller-manager's ReplicationController loop (its client is named
        // `replication-controller`, not after the kind).
        "replication-controller",
        "deployment-controller",
        "statefulset-controller",
        "daemon-set-controller",
        "job-controller",
        "cronjob-controller",
    ]
    .iter()
    .map(|c| format!("system:serviceaccount:kube-system:{c}"))
    .chain([
        "system:kube-controller-manager".to_string(),
        // agent-sandbox's controller (its Helm chart's ServiceAccount): it makes each
        // Sandbox's Pod and relabels the Pod when a claim adopts a warm pool's Sandbox.
        AGENT_SANDBOX_CONTROLLER.to_string(),
    ])
    .collect()
}

/// The labels public OpenClaw deployments carry.
pub fn default_agent_selectors() -> Vec<LabelSelector> {
    [
        ("app", "openclaw"),
        ("app.kubernetes.io/name", "openclaw"),
        ("app", "openclaw-gateway"),
    ]
    .iter()
    .map(|(k, v)| LabelSelector {
        match_labels: Some(BTreeMap::from([(k.to_string(), v.to_string())])),
        match_expressions: None,
    })
    .collect()
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase", default)]
pub struct CatchAll {
    /// Judge pods with an OpenClaw image but no agent label.
    pub enabled: bool,
    /// Image name prefixes (registry/repository, no tag) that mark an OpenClaw agent.
    pub images: Vec<String>,
    /// `warn` (default) or `deny`.
    pub action: Action,
}

impl Default for CatchAll {
    fn default() -> Self {
        CatchAll {
            enabled: false,
            images: vec![
                "ghcr.io/openclaw/openclaw".into(),
                "openclaw/openclaw".into(),
            ],
            action: Action::Warn,
        }
    }
}

/// How the objects of SIG Apps' agent-sandbox (`agents.x-k8s.io`) are treated. That platform
/// exists to run untrusted agent code, and the labels its examples put on their Pods are none
/// the default selectors know, so its `Sandbox` and `SandboxTemplate` objects are agents by
/// their kind unless this says otherwise.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase", default)]
pub struct AgentSandbox {
    /// Every `Sandbox` and `SandboxTemplate` is an agent (and every `SandboxClaim` is judged
    /// for what it adds). `false`: only those the agent selectors match by their pod
    /// template's labels, as for any workload.
    pub all_agents: bool,
    /// Narrows `allAgents` to the objects whose pod template labels this selector matches.
    /// Unset: all of them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub selector: Option<LabelSelector>,
}

impl Default for AgentSandbox {
    fn default() -> Self {
        AgentSandbox {
            all_agents: true,
            selector: None,
        }
    }
}

/// One exemption rule. Every field that is set must match; `checks` empty means all checks.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, Default)]
#[serde(deny_unknown_fields, rename_all = "camelCase", default)]
pub struct Exemption {
    /// Why this exemption exists (recorded in the audit annotation).
    pub reason: String,
    pub namespaces: Vec<String>,
    pub users: Vec<String>,
    pub groups: Vec<String>,
    pub checks: Vec<String>,
    /// When it stops being honoured: a date (`2027-01-31`, its first second) or a date and
    /// time (`2027-01-31T12:00:00Z`), UTC, read by `src/engine/date.rs` as approvals' dates
    /// are. Unset: it never expires. [`super::exemptions::in_force`] decides.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, Default)]
#[serde(deny_unknown_fields, rename_all = "camelCase", default)]
pub struct CheckSettings {
    pub capabilities: CapabilitySettings,
    pub rbac: RbacSettings,
    pub egress: EgressSettings,
    pub credentials: CredentialSettings,
    pub token: TokenSettings,
    pub inference: InferenceSettings,
    pub runtime: RuntimeSettings,
}

/// `sandboxed-runtime`: the RuntimeClasses that run agent code in a sandbox.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase", default)]
pub struct RuntimeSettings {
    /// RuntimeClass names (`*` as in credential patterns) an agent may run under: gVisor's and
    /// Kata Containers' by default, the names their installers and managed offerings give them
    /// (`gvisor`; `kata`, `kata-qemu`, `kata-clh`, `kata-fc`, ...).
    pub allowed_classes: Vec<String>,
}

impl Default for RuntimeSettings {
    fn default() -> Self {
        RuntimeSettings {
            allowed_classes: vec!["gvisor".into(), "kata*".into()],
        }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase", default)]
pub struct CapabilitySettings {
    /// Capabilities a container may add back after dropping ALL (exact names, no `CAP_`).
    pub allowed_add: Vec<String>,
}

impl Default for CapabilitySettings {
    fn default() -> Self {
        CapabilitySettings {
            allowed_add: vec!["NET_BIND_SERVICE".into()],
        }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase", default)]
pub struct RbacSettings {
    /// Roles (Role or ClusterRole names) the agent's ServiceAccount must never be bound to.
    pub forbidden_roles: Vec<String>,
    /// Verbs that must never be granted on any resource.
    pub forbidden_verbs: Vec<String>,
    /// Refuse rules with `*` verbs or `*` resources.
    pub forbid_wildcards: bool,
    /// Refuse reading Secrets across the cluster (ClusterRoleBinding granting get/list/watch).
    pub forbid_cluster_secret_read: bool,
    /// Permissions that let a hijacked agent leave or widen its box, read as an attacker
    /// reads a role: any rule granting one of them is reported.
    pub escape_powers: Vec<EscapePower>,
}

/// One way out of the box, matched against each rule of every role bound to the agent: a
/// rule grants it when it names one of the API groups, one of the resources and one of the
/// verbs (each possibly through `*`, and `pods/*` or `*/exec` for subresources).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct EscapePower {
    /// What the power lets the agent do, shown in messages (`exec into pods`).
    pub name: String,
    /// API groups (`""` is the core group).
    pub api_groups: Vec<String>,
    /// Resources and subresources (`pods`, `pods/exec`).
    pub resources: Vec<String>,
    pub verbs: Vec<String>,
    /// A rule narrowed by `resourceNames` does not grant the power (reading named Secrets is
    /// how an agent gets its own credentials; exec into a named pod is still exec).
    #[serde(default)]
    pub unless_resource_names: bool,
}

impl EscapePower {
    fn new(name: &str, groups: &[&str], resources: &[&str], verbs: &[&str]) -> EscapePower {
        let own = |l: &[&str]| l.iter().map(|s| s.to_string()).collect();
        EscapePower {
            name: name.into(),
            api_groups: own(groups),
            resources: own(resources),
            verbs: own(verbs),
            unless_resource_names: false,
        }
    }
}

/// The verbs that change an object or create one.
const WRITE_VERBS: &[&str] = &["create", "update", "patch", "delete", "deletecollection"];

/// The default escape powers (docs/policy-reference.md, `least-privilege-rbac`).
pub fn default_escape_powers() -> Vec<EscapePower> {
    let workloads = &["deployments", "replicasets", "statefulsets", "daemonsets"];
    vec![
        EscapePower::new("create pods", &[""], &["pods"], &["create"]),
        EscapePower::new(
            "create or change workloads",
            &[""],
            &["replicationcontrollers"],
            &["create", "update", "patch"],
        ),
        EscapePower::new(
            "create or change workloads",
            &["apps"],
            workloads,
            &["create", "update", "patch"],
        ),
        EscapePower::new(
            "create or change workloads",
            &["batch"],
            &["jobs", "cronjobs"],
            &["create", "update", "patch"],
        ),
        // A websocket exec is authorized as `get` on the subresource (and, on newer
        // servers, `create` too): either is the power.
        EscapePower::new(
            "exec, attach or port-forward into pods",
            &[""],
            &["pods/exec", "pods/attach", "pods/portforward"],
            &["create", "get"],
        ),
        EscapePower::new(
            "proxy to pods, Services or nodes",
            &[""],
            &["pods/proxy", "services/proxy", "nodes/proxy"],
            &["get", "create", "update", "patch", "delete"],
        ),
        EscapePower::new(
            "add ephemeral containers to pods",
            &[""],
            &["pods/ephemeralcontainers"],
            &["update", "patch"],
        ),
        EscapePower::new(
            "change network policies",
            &["networking.k8s.io"],
            &["networkpolicies"],
            WRITE_VERBS,
        ),
        EscapePower::new(
            "change network policies",
            &["cilium.io"],
            &["ciliumnetworkpolicies", "ciliumclusterwidenetworkpolicies"],
            WRITE_VERBS,
        ),
        EscapePower::new(
            "mint ServiceAccount tokens",
            &[""],
            &["serviceaccounts/token"],
            &["create"],
        ),
        EscapePower::new(
            "change admission webhooks or policies",
            &["admissionregistration.k8s.io"],
            &[
                "mutatingwebhookconfigurations",
                "validatingwebhookconfigurations",
                "validatingadmissionpolicies",
                "validatingadmissionpolicybindings",
                "mutatingadmissionpolicies",
                "mutatingadmissionpolicybindings",
            ],
            WRITE_VERBS,
        ),
        EscapePower {
            unless_resource_names: true,
            ..EscapePower::new(
                "read Secrets beyond named ones",
                &[""],
                &["secrets"],
                &["get", "list", "watch"],
            )
        },
    ]
}

impl Default for RbacSettings {
    fn default() -> Self {
        RbacSettings {
            forbidden_roles: vec!["cluster-admin".into(), "admin".into(), "edit".into()],
            forbidden_verbs: vec!["escalate".into(), "bind".into(), "impersonate".into()],
            forbid_wildcards: true,
            forbid_cluster_secret_read: true,
            escape_powers: default_escape_powers(),
        }
    }
}

/// One egress destination the agent may reach without breaking `default-deny-egress`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, Default)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct EgressAllow {
    /// Free text shown in messages (`DNS`, `HTTPS`, `OTel collector`).
    #[serde(default)]
    pub name: String,
    /// `TCP`, `UDP` or `SCTP`.
    pub protocol: String,
    pub port: i32,
    /// Highest port of a range; absent means a single port.
    #[serde(default)]
    pub end_port: Option<i32>,
    /// When set, only rules whose peers are all within these namespaces (by the
    /// `kubernetes.io/metadata.name` label of a namespaceSelector) are covered; when empty,
    /// any destination on this port is covered.
    #[serde(default)]
    pub namespaces: Vec<String>,
    /// When set, covers peers whose namespaceSelector selects only namespaces this selector
    /// selects (`{matchLabels: {team: observability}}`), and peers in the pod's own
    /// namespace when its labels match.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace_selector: Option<LabelSelector>,
    /// When set, covers only peers whose podSelector selects a subset of these pods (in
    /// the namespaces above, or the pod's own namespace when none are named).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_selector: Option<LabelSelector>,
    /// When set, covers `ipBlock` peers (and rules without `to`) whose addresses, after
    /// their `except`, all lie in these CIDRs minus `except` below.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cidrs: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub except: Vec<String>,
    /// When set, covers only Cilium `toFQDNs` destinations whose names or patterns these
    /// host names or patterns (`api.anthropic.com`, `*.openai.com`) cover. Only a Cilium
    /// policy can name hosts, so such an entry never covers a NetworkPolicy rule.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fqdns: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase", default)]
pub struct EgressSettings {
    pub allow: Vec<EgressAllow>,
}

impl Default for EgressSettings {
    fn default() -> Self {
        let a = |name: &str, protocol: &str, port| EgressAllow {
            name: name.into(),
            protocol: protocol.into(),
            port,
            end_port: None,
            namespaces: Vec::new(),
            namespace_selector: None,
            pod_selector: None,
            cidrs: Vec::new(),
            except: Vec::new(),
            fqdns: Vec::new(),
        };
        EgressSettings {
            allow: vec![
                a("DNS", "UDP", 53),
                a("DNS", "TCP", 53),
                a("HTTPS", "TCP", 443),
                // The collector the OTel mutation points agents at by default
                // (`mutations.otel.endpoint`): an agent in the box must still reach it.
                EgressAllow {
                    namespaces: vec!["observability".into()],
                    ..a("OTel collector", "TCP", 4318)
                },
            ],
        }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase", default)]
pub struct CredentialSettings {
    /// Env var names that hold credentials. `*` matches any run of characters; case is
    /// ignored (`github_token` matches `*_TOKEN`). Also applied to the names of
    /// `--flag=value` and `NAME=value` words in `command` and `args`.
    pub name_patterns: Vec<String>,
    /// Names that match a pattern but never hold a credential (`*_TOKEN_URL`, `*_FILE`).
    pub name_exceptions: Vec<String>,
    /// Value prefixes of known provider keys (`sk-ant-`, `ghp_`, ...).
    pub value_prefixes: Vec<String>,
}

impl Default for CredentialSettings {
    fn default() -> Self {
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect();
        CredentialSettings {
            name_patterns: s(&[
                "*_API_KEY",
                "*_APIKEY",
                "API_KEY",
                "APIKEY",
                "*_KEY",
                "*_TOKEN",
                "TOKEN",
                "*_SECRET",
                "SECRET",
                "*_SECRET_KEY",
                "*_PASSWORD",
                "PASSWORD",
                "*_PASS",
                "*PASSWD*",
                "*_PASSPHRASE",
                "*_PAT",
                "*_PRIVATE_KEY",
                "*_ACCESS_KEY",
                "*_CREDENTIALS",
                "*_AUTH",
            ]),
            // A value under these names says where a credential is (a file, a URL to fetch
            // a token from) or is public.
            name_exceptions: s(&["*_TOKEN_URL", "*_FILE", "*_PATH", "*_DIR", "*_PUBLIC_KEY"]),
            value_prefixes: s(&[
                "sk-ant-",
                "sk-proj-",
                "sk-",
                "ghp_",
                "gho_",
                "ghs_",
                "github_pat_",
                "glpat-",
                "xoxb-",
                "xoxp-",
                "AKIA",
                "ASIA",
                "AIza",
                "hf_",
                "gsk_",
                "pplx-",
                "r8_",
                "SG.",
            ]),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase", default)]
pub struct TokenSettings {
    /// Longest ServiceAccount token lifetime a pod may mount, in seconds.
    pub max_expiration_seconds: i64,
    /// Look for volumes and env vars drawing on legacy token Secrets. Needs list/watch on
    /// Secrets (metadata only), so it is off by default.
    pub legacy_secret_check: bool,
}

impl Default for TokenSettings {
    fn default() -> Self {
        TokenSettings {
            max_expiration_seconds: 3600,
            legacy_secret_check: false,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase", default)]
pub struct InferenceSettings {
    /// Hosts the agent's LLM endpoints may point at. Empty turns `in-cluster-inference` off.
    pub allowed_hosts: Vec<String>,
    /// Env var names that carry an LLM endpoint (`*` as in credential patterns).
    pub endpoint_variables: Vec<String>,
}

impl Default for InferenceSettings {
    fn default() -> Self {
        InferenceSettings {
            allowed_hosts: Vec::new(),
            endpoint_variables: vec![
                "OPENAI_BASE_URL".into(),
                "OPENAI_API_BASE".into(),
                "ANTHROPIC_BASE_URL".into(),
                "OLLAMA_HOST".into(),
                "OPENCLAW_*_BASE_URL".into(),
            ],
        }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, Default)]
#[serde(deny_unknown_fields, rename_all = "camelCase", default)]
pub struct MutationSettings {
    pub token: TokenMutation,
    pub secrets_store: SecretsStoreMutation,
    pub otel: OtelMutation,
}

/// The mount path of ServiceAccount tokens that Kubernetes clients look in.
pub const SA_TOKEN_MOUNT_PATH: &str = "/var/run/secrets/kubernetes.io/serviceaccount";

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase", default)]
pub struct TokenMutation {
    pub enabled: bool,
    /// Token audience; empty means the API server's default audience.
    pub audience: String,
    /// Token lifetime: at least 600, at most `checks.token.maxExpirationSeconds`, never 3607.
    pub expiration_seconds: i64,
    /// Name of the injected projected volume (never `kube-api-access-*`).
    pub volume_name: String,
}

impl Default for TokenMutation {
    fn default() -> Self {
        TokenMutation {
            enabled: true,
            audience: String::new(),
            expiration_seconds: 3600,
            volume_name: "openclaw-sa-token".into(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase", default)]
pub struct SecretsStoreMutation {
    pub enabled: bool,
    /// Pod annotation naming the SecretProviderClass.
    pub annotation: String,
    /// SecretProviderClass per namespace when the pod does not name one.
    pub namespace_defaults: BTreeMap<String, String>,
    pub mount_path: String,
    pub volume_name: String,
}

impl Default for SecretsStoreMutation {
    fn default() -> Self {
        SecretsStoreMutation {
            enabled: true,
            annotation: "openclaw.io/secret-provider-class".into(),
            namespace_defaults: BTreeMap::new(),
            mount_path: "/mnt/secrets-store".into(),
            volume_name: "openclaw-secrets-store".into(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase", default)]
pub struct OtelMutation {
    pub enabled: bool,
    /// OTLP endpoint of the collector.
    pub endpoint: String,
    pub protocol: String,
    /// Workload labels tried, in order, for the service name when the annotation is absent.
    pub service_name_labels: Vec<String>,
}

impl Default for OtelMutation {
    fn default() -> Self {
        OtelMutation {
            enabled: true,
            endpoint: "http://otel-collector.observability.svc:4318".into(),
            protocol: "http/protobuf".into(),
            // Labels that name one instance. Not `app` or `app.kubernetes.io/name`: they
            // name the application, and they are what selects agents, so every agent would
            // be called `openclaw`; the workload or the ServiceAccount names the agent then.
            service_name_labels: vec!["app.kubernetes.io/instance".into()],
        }
    }
}

impl Policy {
    /// Whether the user may approve: named in `approverUsers` or a member of an
    /// `approverGroups` group.
    /// The tier a check's violations take: `checkTiers`' entry for it, else its own.
    pub fn tier_of(&self, check: &str, own: Tier) -> Tier {
        self.check_tiers.get(check).copied().unwrap_or(own)
    }

    /// Who approves, as a message names them: the approver groups, or `approverUsers`.
    pub fn approvers_text(&self) -> String {
        if self.approver_groups.is_empty() {
            "approverUsers".to_string()
        } else {
            format!("groups {}", self.approver_groups.join(", "))
        }
    }

    pub fn is_approver(&self, user: &User) -> bool {
        self.approver_users.contains(&user.username)
            || user.groups.iter().any(|g| self.approver_groups.contains(g))
    }

    /// The mode for a namespace: its label when valid, else the global mode.
    pub fn mode_for(&self, namespace_labels: Option<&Labels>) -> Mode {
        namespace_labels
            .and_then(|l| l.get(&self.mode_label))
            .and_then(|v| Mode::parse(v))
            .unwrap_or(self.mode)
    }
}

/// `*` glob match used for env var name patterns: `*` matches any run of characters.
pub fn glob_match(pattern: &str, name: &str) -> bool {
    glob_bytes(pattern.as_bytes(), name.as_bytes(), |a, b| a == b)
}

/// [`glob_match`] with ASCII case ignored (`*_token` matches `GITHUB_TOKEN`), without
/// allocating: the credential check runs it for every env var and pattern of every review.
pub fn glob_match_ignore_ascii_case(pattern: &str, name: &str) -> bool {
    glob_bytes(pattern.as_bytes(), name.as_bytes(), |a, b| {
        a.eq_ignore_ascii_case(&b)
    })
}

/// [`glob_match_ignore_ascii_case`] against a command-line flag's name as an env var would
/// spell it: each `-` in `name` reads as `_` (`api-key` matches `*_KEY`), with no copy made.
pub fn glob_match_flag_ignore_ascii_case(pattern: &str, name: &str) -> bool {
    glob_bytes(pattern.as_bytes(), name.as_bytes(), |p, n| {
        p.eq_ignore_ascii_case(&if n == b'-' { b'_' } else { n })
    })
}

/// Linear: the first piece must be a prefix and the last a suffix, not overlapping; the
/// pieces between are found left to right in what lies between them (taking the leftmost
/// place of each never loses a match). Bytes compare as `eq(pattern byte, name byte)` says;
/// for UTF-8 input a byte match is a character match, since no piece can start inside a
/// character it matches.
fn glob_bytes(pattern: &[u8], name: &[u8], eq: impl Fn(u8, u8) -> bool + Copy) -> bool {
    // A pattern ending in a literal byte needs the name to end in it: most names fail
    // here, before the pattern is scanned for stars.
    if let (Some(&p), Some(&n)) = (pattern.last(), name.last())
        && p != b'*'
        && !eq(p, n)
    {
        return false;
    }
    let same = |a: &[u8], b: &[u8]| a.len() == b.len() && a.iter().zip(b).all(|(x, y)| eq(*x, *y));
    let (Some(first_star), Some(last_star)) = (
        pattern.iter().position(|&b| b == b'*'),
        pattern.iter().rposition(|&b| b == b'*'),
    ) else {
        // No `*` at all: an exact match.
        return same(pattern, name);
    };
    let (first, last) = (&pattern[..first_star], &pattern[last_star + 1..]);
    if name.len() < first.len() + last.len()
        || !same(first, &name[..first.len()])
        || !same(last, &name[name.len() - last.len()..])
    {
        return false;
    }
    let mut rest = &name[first.len()..name.len() - last.len()];
    if first_star == last_star {
        return true;
    }
    for piece in pattern[first_star + 1..last_star].split(|&b| b == b'*') {
        if piece.is_empty() {
            continue; // `**`
        }
        match rest.windows(piece.len()).position(|w| same(piece, w)) {
            Some(at) => rest = &rest[at + piece.len()..],
            None => return false,
        }
    }
    true
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn empty_file_gives_defaults() {
        let p = Policy::from_yaml("", "p.yaml").unwrap();
        assert_eq!(p, Policy::default());
        assert_eq!(p.agent_selectors.len(), 3);
    }

    #[test]
    fn unknown_key_is_named_with_its_line() {
        let err = Policy::from_yaml("mode: warn\nchecks:\n  tokn: {}\n", "p.yaml")
            .unwrap_err()
            .to_string();
        assert!(err.contains("tokn"), "{err}");
        assert!(err.contains("line 3"), "{err}");
        assert!(err.contains("expected one of"), "{err}");
    }

    #[test]
    fn bad_mode_lists_allowed_values() {
        let err = Policy::from_yaml("mode: block\n", "p.yaml")
            .unwrap_err()
            .to_string();
        assert!(err.contains("enforce") && err.contains("audit"), "{err}");
        assert!(err.contains("line 1"), "{err}");
    }

    #[test]
    fn wrong_type_names_the_path_and_line() {
        let err = Policy::from_yaml(
            "checks:\n  egress:\n    allow:\n    - protocol: TCP\n      port: https\n",
            "p.yaml",
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("line 5"), "{err}");
        assert!(err.contains("checks.egress.allow[0].port"), "{err}");
    }

    #[test]
    fn repeated_key_is_refused_with_its_line() {
        let err = Policy::from_yaml("mode: warn\nmode: audit\n", "p.yaml")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("line 2") && err.contains("duplicate key"),
            "{err}"
        );
    }

    #[test]
    fn yaml_1_1_booleans_read_as_kubernetes_does() {
        let p = Policy::from_yaml("catchAll:\n  enabled: yes\n", "p.yaml").unwrap();
        assert!(p.catch_all.enabled);
    }

    #[test]
    fn comments_only_file_gives_defaults_and_two_documents_are_refused() {
        assert_eq!(
            Policy::from_yaml("# nothing\n", "p.yaml").unwrap(),
            Policy::default()
        );
        let err = Policy::from_yaml("mode: warn\n---\nmode: audit\n", "p.yaml")
            .unwrap_err()
            .to_string();
        assert!(err.contains("second YAML document"), "{err}");
    }

    #[test]
    fn token_lifetime_3607_is_refused() {
        let err = Policy::from_yaml(
            "mutations:\n  token:\n    expirationSeconds: 3607\n",
            "p.yaml",
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("mutations.token.expirationSeconds"), "{err}");
    }

    #[test]
    fn unknown_check_in_exemption_is_refused() {
        let err = Policy::from_yaml(
            "exemptions:\n- namespaces: [a]\n  checks: [run-as-root]\n",
            "p.yaml",
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("exemptions[0].checks[0]"), "{err}");
    }

    #[test]
    fn namespace_label_overrides_mode() {
        let p = Policy::default();
        let l: Labels = [("openclaw.io/mode".to_string(), "audit".to_string())].into();
        assert_eq!(p.mode_for(Some(&l)), Mode::Audit);
        let bad: Labels = [("openclaw.io/mode".to_string(), "nope".to_string())].into();
        assert_eq!(p.mode_for(Some(&bad)), Mode::Enforce);
        assert_eq!(p.mode_for(None), Mode::Enforce);
    }

    #[test]
    fn glob_matches_env_names() {
        assert!(glob_match("*_API_KEY", "OPENAI_API_KEY"));
        assert!(!glob_match("*_API_KEY", "API_KEY"));
        assert!(glob_match("OPENCLAW_*_BASE_URL", "OPENCLAW_LLM_BASE_URL"));
        assert!(!glob_match("OPENCLAW_*_BASE_URL", "OPENCLAW_BASE"));
        assert!(glob_match("PASSWORD", "PASSWORD"));
        assert!(!glob_match("PASSWORD", "PASSWORDS"));
        assert!(glob_match("*", ""));
        assert!(glob_match("A*B*C", "AxxBxxC"));
        assert!(glob_match("A*B*C", "ABC"));
        assert!(!glob_match("A*B*C", "AxxCxxB"));
        assert!(
            !glob_match("AB*BA", "ABA"),
            "prefix and suffix may not overlap"
        );
        assert!(glob_match("*_TOKEN", "GITHUB_TOKEN"));
        assert!(!glob_match("*_TOKEN", "GITHUB_TOKEN_URL"));
        assert!(glob_match("**", "x"));
        assert!(glob_match("A**B", "AB"));
        assert!(!glob_match("A*xyz*B", "AxyB"));
        assert!(!glob_match("a*", "A"), "case counts");
        assert!(glob_match("é*", "é!"));
    }

    /// The plain definition, by backtracking: the oracle for the linear matcher.
    fn glob_oracle(p: &[u8], n: &[u8]) -> bool {
        match p.split_first() {
            None => n.is_empty(),
            Some((b'*', rest)) => (0..=n.len()).any(|i| glob_oracle(rest, &n[i..])),
            Some((c, rest)) => n.first() == Some(c) && glob_oracle(rest, &n[1..]),
        }
    }

    proptest::proptest! {
        #[test]
        fn glob_agrees_with_backtracking(p in "[ab*]{0,7}", n in "[ab]{0,9}") {
            proptest::prop_assert_eq!(glob_match(&p, &n), glob_oracle(p.as_bytes(), n.as_bytes()));
        }

        /// A flag's name matches as the env var name with its dashes made underscores.
        #[test]
        fn flag_names_match_as_their_underscored_spelling(p in "[aB_*-]{0,7}", n in "[Ab_-]{0,9}") {
            proptest::prop_assert_eq!(
                glob_match_flag_ignore_ascii_case(&p, &n),
                glob_match_ignore_ascii_case(&p, &n.replace('-', "_"))
            );
            proptest::prop_assert_eq!(
                glob_match_ignore_ascii_case(&p, &n),
                glob_oracle(p.to_ascii_uppercase().as_bytes(), n.to_ascii_uppercase().as_bytes())
            );
        }
    }

    #[test]
    fn glob_ignoring_case_matches_as_uppercasing_both_did() {
        let names = [
            "github_token",
            "GITHUB_TOKEN",
            "Api_Key",
            "x",
            "",
            "PASSWD_x",
            "é_token",
        ];
        let patterns = [
            "*_TOKEN",
            "*_api_key",
            "*PASSWD*",
            "X",
            "*",
            "",
            "A*B*C",
            "É*",
        ];
        for p in patterns {
            for n in names {
                assert_eq!(
                    glob_match_ignore_ascii_case(p, n),
                    glob_match(&p.to_ascii_uppercase(), &n.to_ascii_uppercase()),
                    "{p} against {n}"
                );
            }
        }
    }
}

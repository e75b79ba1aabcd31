//! `audit`: judges what a live cluster already runs, with the same engine as the webhook, so a
//! platform team sees before each rollout step (audit, then warn, then enforce) what the next
//! one would refuse.
//!
//! It lists, page by page, the cluster view (Namespaces, ServiceAccounts, NetworkPolicies,
//! roles and bindings, and where their APIs are served Cilium policies and
//! SecretProviderClasses) and then every Pod and every workload that no controller owns
//! (Deployments, StatefulSets, DaemonSets, ReplicaSets, ReplicationControllers, Jobs,
//! CronJobs), and where agent-sandbox is served its SandboxTemplates and the Sandboxes no claim
//! or warm pool made: the Pods are what runs now, the workloads what their next rollout will
//! create.
//! Each is judged as a CREATE by a user with no groups, in the mode its namespace is in, and
//! again as `enforce` would judge it.
//! Agents are found by the policy's selectors, and also by image without any agent label (the
//! catch-all's images, whether or not the catch-all is on), so an agent that dropped its label
//! shows up here.
//!
//! `--write-reports` writes one `wgpolicyk8s.io/v1alpha2` `PolicyReport` per namespace and a
//! `ClusterPolicyReport` summary, by server-side apply, so a re-run updates them in place and
//! report viewers (Policy Reporter, the Kyverno UI) show them. Nothing else is written.

use crate::engine::policy::{Mode, Policy};
use crate::engine::review::{Review, Subject};
use crate::engine::view::{ServiceFacts, StaticView};
use crate::engine::{self, Judged};
use anyhow::Context;
use k8s_openapi::api::core::v1::{Namespace, Service, ServiceAccount};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};
use kube::Client;
use kube::api::{Api, ApiResource, DynamicObject, ListParams, Patch, PatchParams};
use serde::Serialize;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::io::{self, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

/// The user an audit judges as: no groups, so no annotation is honoured as an approver's.
const AUDIT_USER: &str = "openclaw-admission-audit";
/// Name of the reports this command owns, and its field manager.
const REPORT_NAME: &str = "openclaw-admission";

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Kubeconfig of the cluster to scan; without it, $KUBECONFIG, ~/.kube/config or the
    /// in-cluster ServiceAccount.
    #[arg(long, value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,
    /// Policy file (YAML), as the webhook uses it; the built-in defaults without it.
    #[arg(long, value_name = "FILE")]
    pub policy: Option<PathBuf>,
    /// Only this namespace's Pods and workloads (the cluster view is read whole).
    #[arg(long, short = 'n', value_name = "NAMESPACE")]
    pub namespace: Option<String>,
    /// Output format.
    #[arg(long, short = 'o', value_enum, default_value_t = super::check::Output::Table)]
    pub output: super::check::Output,
    /// Objects per page when listing (the API server's `limit`).
    #[arg(long, default_value_t = 500, value_parser = clap::value_parser!(u32).range(1..))]
    pub page_size: u32,
    /// Write a PolicyReport per namespace and a ClusterPolicyReport (server-side apply).
    #[arg(long)]
    pub write_reports: bool,
    /// Also list the policy exemptions and approval stamps that expire within this length of
    /// time (`7d`, `12h`; as `approvals.maxLifetime` is written), and those already expired.
    #[arg(long, value_name = "LENGTH", value_parser = parse_window)]
    pub expiring_within: Option<i64>,
    /// Exit 0 once the scan is done, whatever it found (a scheduled scan, whose findings are
    /// its reports); an error still exits 2.
    #[arg(long)]
    pub exit_zero: bool,
}

fn parse_window(s: &str) -> Result<i64, String> {
    crate::engine::date::parse_length(s).map_err(|e| e.to_string())
}

/// One judged object.
#[derive(Debug, Serialize)]
pub struct Finding {
    pub kind: String,
    pub namespace: String,
    pub name: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub uid: String,
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
    fn add(&mut self, f: &Finding) {
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
    #[serde(skip)]
    at: i64,
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

/// The ServiceAccount a Pod or pod template runs as (`default` when it names none).
fn service_account_of(review: &Review) -> String {
    let spec = match &review.object {
        Subject::Pod(p) => p.spec.as_ref(),
        Subject::Template(t) => t.template.spec.as_ref(),
        _ => None,
    };
    spec.and_then(|s| {
        s.service_account_name
            .as_deref()
            .filter(|n| !n.is_empty())
            .or(s.service_account.as_deref().filter(|n| !n.is_empty()))
    })
    .unwrap_or("default")
    .to_string()
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

/// Progress on stderr, at most once a second, for large clusters.
struct Progress {
    last: Instant,
}

impl Progress {
    fn tick(&mut self, what: &str, n: usize) {
        if self.last.elapsed().as_secs() >= 1 {
            note!("audit: {what}: {n} so far");
            self.last = Instant::now();
        }
    }
}

/// Every object of a kind, page by page (`limit` + `continue`).
async fn list_all<K>(
    api: &Api<K>,
    page: u32,
    what: &str,
    progress: &mut Progress,
) -> anyhow::Result<Vec<K>>
where
    K: Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    let mut out = Vec::new();
    let mut lp = ListParams::default().limit(page);
    loop {
        let list = api
            .list(&lp)
            .await
            .with_context(|| format!("cannot list {what}"))?;
        out.extend(list.items);
        progress.tick(what, out.len());
        match list.metadata.continue_.filter(|c| !c.is_empty()) {
            Some(token) => lp = lp.continue_token(&token),
            None => break,
        }
    }
    Ok(out)
}

fn erased<K: kube::Resource<DynamicType = ()>>(
    client: &Client,
    ns: Option<&str>,
) -> (Api<DynamicObject>, ApiResource) {
    let ar = ApiResource::erase::<K>(&());
    let api = match ns {
        Some(n) => Api::namespaced_with(client.clone(), n, &ar),
        None => Api::all_with(client.clone(), &ar),
    };
    (api, ar)
}

/// The cluster view, read whole.
async fn read_view(
    client: &Client,
    page: u32,
    progress: &mut Progress,
) -> anyhow::Result<StaticView> {
    let mut view = StaticView::new();
    let idx = &mut view.index;
    for ns in list_all(
        &Api::<Namespace>::all(client.clone()),
        page,
        "Namespaces",
        progress,
    )
    .await?
    {
        idx.apply_namespace(&ns);
    }
    for sa in list_all(
        &Api::<ServiceAccount>::all(client.clone()),
        page,
        "ServiceAccounts",
        progress,
    )
    .await?
    {
        idx.apply_service_account(&sa);
    }
    for np in list_all(
        &Api::<NetworkPolicy>::all(client.clone()),
        page,
        "NetworkPolicies",
        progress,
    )
    .await?
    {
        idx.apply_network_policy(np);
    }
    for r in list_all(&Api::<Role>::all(client.clone()), page, "Roles", progress).await? {
        idx.apply_role(&r);
    }
    for r in list_all(
        &Api::<ClusterRole>::all(client.clone()),
        page,
        "ClusterRoles",
        progress,
    )
    .await?
    {
        idx.apply_cluster_role(&r);
    }
    for b in list_all(
        &Api::<RoleBinding>::all(client.clone()),
        page,
        "RoleBindings",
        progress,
    )
    .await?
    {
        idx.apply_role_binding(&b);
    }
    for b in list_all(
        &Api::<ClusterRoleBinding>::all(client.clone()),
        page,
        "ClusterRoleBindings",
        progress,
    )
    .await?
    {
        idx.apply_cluster_role_binding(&b);
    }
    // Services as the live view keeps them: type and external name (in-cluster-inference).
    for svc in list_all(
        &Api::<Service>::all(client.clone()),
        page,
        "Services",
        progress,
    )
    .await?
    {
        let (ns, name) = (
            svc.metadata.namespace.clone().unwrap_or_default(),
            svc.metadata.name.clone().unwrap_or_default(),
        );
        view.index.apply_service(&ns, &name, ServiceFacts::of(&svc));
    }
    // Optional APIs, read where served, as the live view watches them.
    use crate::cluster::dynamic;
    for api in [
        &dynamic::SECRET_PROVIDER_CLASSES,
        &dynamic::CILIUM_NETWORK_POLICIES,
        &dynamic::CILIUM_CLUSTERWIDE_NETWORK_POLICIES,
        &dynamic::SANDBOX_TEMPLATES,
        &dynamic::SANDBOX_WARM_POOLS,
    ] {
        let served = api
            .served(client)
            .await
            .with_context(|| format!("cannot ask whether {} is served", api.api_version()))?;
        if !served {
            tracing::info!(kind = api.kind, "API not served; not read");
            continue;
        }
        let all: Api<DynamicObject> = Api::all_with(client.clone(), &api.resource());
        let what = format!("{}s", api.kind);
        view.index.set_served(api.kind, true);
        for o in list_all(&all, page, &what, progress).await? {
            let mut value = serde_json::to_value(&o)?;
            value["kind"] = api.kind.into();
            if let Err(e) = view.add(&value, "") {
                tracing::warn!(kind = api.kind, name = ?o.metadata.name, error = %e, "skipping object that does not fit its kind");
            }
        }
    }
    Ok(view)
}

/// Pods, and workloads that no controller owns, as (kind, apiVersion, object).
async fn read_subjects(
    client: &Client,
    ns: Option<&str>,
    page: u32,
    progress: &mut Progress,
) -> anyhow::Result<Vec<(&'static str, String, Value)>> {
    use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, ReplicaSet, StatefulSet};
    use k8s_openapi::api::batch::v1::{CronJob, Job};
    use k8s_openapi::api::core::v1::{Pod, ReplicationController};
    let kinds: Vec<(&'static str, (Api<DynamicObject>, ApiResource))> = vec![
        ("Pod", erased::<Pod>(client, ns)),
        ("Deployment", erased::<Deployment>(client, ns)),
        ("StatefulSet", erased::<StatefulSet>(client, ns)),
        ("DaemonSet", erased::<DaemonSet>(client, ns)),
        ("ReplicaSet", erased::<ReplicaSet>(client, ns)),
        (
            "ReplicationController",
            erased::<ReplicationController>(client, ns),
        ),
        ("Job", erased::<Job>(client, ns)),
        ("CronJob", erased::<CronJob>(client, ns)),
    ];
    let mut out = Vec::new();
    for (kind, (api, ar)) in kinds {
        for obj in list_all(&api, page, &format!("{kind}s"), progress).await? {
            let owned = obj
                .metadata
                .owner_references
                .iter()
                .flatten()
                .any(|o| o.controller == Some(true));
            // Pods are judged whoever made them (they are what runs); a workload that a
            // controller made is judged at the workload that owns it.
            if owned && kind != "Pod" {
                continue;
            }
            let mut value = serde_json::to_value(&obj).context("cannot re-read a listed object")?;
            value["kind"] = kind.into();
            value["apiVersion"] = ar.api_version.clone().into();
            out.push((kind, ar.api_version.clone(), value));
        }
    }
    // agent-sandbox, where served: templates, and the Sandboxes no claim or warm pool made
    // (those are judged at their template, as a Deployment's ReplicaSets are at it).
    use crate::cluster::dynamic;
    for api in [&dynamic::SANDBOXES, &dynamic::SANDBOX_TEMPLATES] {
        let served = api
            .served(client)
            .await
            .with_context(|| format!("cannot ask whether {} is served", api.api_version()))?;
        if !served {
            continue;
        }
        let ar = api.resource();
        let list: Api<DynamicObject> = match ns {
            Some(n) => Api::namespaced_with(client.clone(), n, &ar),
            None => Api::all_with(client.clone(), &ar),
        };
        for obj in list_all(&list, page, &format!("{}s", api.kind), progress).await? {
            let owned = obj
                .metadata
                .owner_references
                .iter()
                .flatten()
                .any(|o| o.controller == Some(true));
            if owned {
                continue;
            }
            let mut value = serde_json::to_value(&obj).context("cannot re-read a listed object")?;
            value["kind"] = api.kind.into();
            value["apiVersion"] = ar.api_version.clone().into();
            out.push((api.kind, ar.api_version.clone(), value));
        }
    }
    Ok(out)
}

fn review_of(
    kind: &str,
    api_version: &str,
    object: &Value,
    now: i64,
) -> Result<Review, serde_json::Error> {
    let meta = &object["metadata"];
    Ok(Review::dry_run_create(
        kind,
        api_version,
        meta["namespace"].as_str().unwrap_or_default(),
        meta["name"].as_str().unwrap_or_default(),
        AUDIT_USER,
        Subject::from_value(kind, object.clone())?,
        now,
    ))
}

/// Judges every subject at this process's clock, listing nothing as expiring.
pub fn judge(
    policy: &Policy,
    view: &StaticView,
    subjects: &[(&'static str, String, Value)],
) -> Report {
    judge_at(policy, view, subjects, crate::admission::unix_now(), None)
}

/// Judges every subject as at `now` (seconds since the Unix epoch): the pure part of `audit`,
/// shared with its tests. With `expiring_within` (seconds), also lists the policy exemptions
/// and approval stamps that expire before `now` plus that window.
pub fn judge_at(
    policy: &Policy,
    view: &StaticView,
    subjects: &[(&'static str, String, Value)],
    now: i64,
    expiring_within: Option<i64>,
) -> Report {
    // `enforce` everywhere: the global mode, with no namespace label able to soften it.
    let enforced = Policy {
        mode: Mode::Enforce,
        mode_label: "openclaw-admission.audit/no-such-label".into(),
        ..policy.clone()
    };
    // The catch-all's images, on, so that unlabelled agents are found whatever the policy says.
    let by_image = Policy {
        catch_all: crate::engine::policy::CatchAll {
            enabled: true,
            ..policy.catch_all.clone()
        },
        ..policy.clone()
    };
    let by_image_enforced = Policy {
        mode: Mode::Enforce,
        mode_label: enforced.mode_label.clone(),
        ..by_image.clone()
    };
    // The selectors alone: an agent that carries its label.
    let by_label = Policy {
        catch_all: crate::engine::policy::CatchAll {
            enabled: false,
            ..policy.catch_all.clone()
        },
        ..policy.clone()
    };
    let mut report = Report::default();
    let horizon = expiring_within.map(|w| now.saturating_add(w));
    let mut expiring = Vec::new();
    if let Some(horizon) = horizon {
        for (i, until) in engine::exemptions::expiring_before(policy, horizon) {
            let ex = &policy.exemptions[i];
            let reason = if ex.reason.is_empty() {
                String::new()
            } else {
                format!(" ({:?})", ex.reason)
            };
            expiring.push(Expiring {
                what: format!("policy exemptions[{i}]{reason}"),
                expires: engine::date::format_utc(until),
                expired: !engine::exemptions::in_force(ex, now),
                at: until,
            });
        }
    }
    let mut expired_said = std::collections::BTreeSet::new();
    // (namespace, ServiceAccount) -> the agents and the other objects running as it.
    type Users = (Vec<String>, Vec<String>);
    let mut accounts: BTreeMap<(String, String), Users> = BTreeMap::new();
    for (kind, api_version, object) in subjects {
        let Ok(review) = review_of(kind, api_version, object, now) else {
            note!(
                "audit: skipped {kind} {}/{}: it does not fit its schema",
                object["metadata"]["namespace"].as_str().unwrap_or(""),
                object["metadata"]["name"].as_str().unwrap_or("")
            );
            continue;
        };
        if let Subject::Template(t) = &review.object
            && t.template
                .metadata
                .as_ref()
                .and_then(|m| m.annotations.as_ref())
                .and_then(|a| a.get(engine::approval::grant::APPROVAL_ANNOTATION))
                .is_some_and(|v| engine::approval::grant::Grant::is_legacy_stamp(v))
        {
            report
                .legacy_approvals
                .push(format!("{kind} {}/{}", review.namespace, review.name));
        }
        // Approval stamps are listed as they read, without the key (which `audit` does not
        // hold): a forged stamp listed here is still refused by the webhook.
        if let (Some(horizon), Subject::Template(t)) = (horizon, &review.object)
            && let Some(grant) = t
                .template
                .metadata
                .as_ref()
                .and_then(|m| m.annotations.as_ref())
                .and_then(|a| a.get(engine::approval::grant::APPROVAL_ANNOTATION))
                .and_then(|v| engine::approval::grant::Grant::read_unverified(v))
            && let Some(until) = grant.expires_at(policy.approvals.max_lifetime_secs())
            && until <= horizon
        {
            expiring.push(Expiring {
                what: format!(
                    "approval on {kind} {}/{} ({}) by {}",
                    review.namespace,
                    review.name,
                    grant.checks.join(","),
                    grant.approver
                ),
                expires: engine::date::format_utc(until),
                expired: now <= 0 || now >= until,
                at: until,
            });
        }
        let labelled = engine::agent::is_agent(&review, &by_label);
        let unlabelled = !labelled && engine::agent::is_agent(&review, &by_image);
        let users = accounts
            .entry((review.namespace.clone(), service_account_of(&review)))
            .or_default();
        let who = format!("{kind} {}", review.name);
        if !labelled && !unlabelled {
            users.1.push(who);
            continue;
        }
        users.0.push(who);
        let judging = if unlabelled { &by_image } else { policy };
        let now = engine::evaluate(&review, judging, view);
        for e in &now.expired_exemptions {
            if expired_said.insert((e.index, e.expires.clone())) {
                report.expired_exemptions.push(e.describe());
            }
        }
        let strict = engine::evaluate(
            &review,
            if unlabelled {
                &by_image_enforced
            } else {
                &enforced
            },
            view,
        );
        let finding = Finding {
            kind: kind.to_string(),
            namespace: review.namespace.clone(),
            name: review.name.clone(),
            uid: object["metadata"]["uid"].as_str().unwrap_or("").to_string(),
            mode: now.mode.unwrap_or_default().as_str(),
            unlabelled,
            refused_now: !now.allowed,
            refused_if_enforced: !strict.allowed,
            violations: now.violations,
        };
        report.total.add(&finding);
        report
            .by_namespace
            .entry(finding.namespace.clone())
            .or_default()
            .add(&finding);
        report
            .by_mode
            .entry(finding.mode)
            .or_default()
            .add(&finding);
        for j in &finding.violations {
            *report.by_check.entry(j.violation.check).or_default() += 1;
        }
        report.unlabelled_agents += usize::from(unlabelled);
        let ns = &mut report.next_step;
        match finding.mode {
            "audit" if !finding.violations.is_empty() => ns.audit_to_warn_warned += 1,
            "warn" if finding.refused_if_enforced => ns.warn_to_enforce_refused += 1,
            _ => {}
        }
        if finding.refused_if_enforced && !finding.refused_now {
            ns.refused_if_enforced_everywhere += 1;
        }
        report.findings.push(finding);
    }
    if horizon.is_some() {
        expiring.sort_by(|a, b| (a.at, &a.what).cmp(&(b.at, &b.what)));
        report.expiring = Some(expiring);
    }
    report.shared_service_accounts = accounts
        .into_iter()
        .filter(|(_, (agents, others))| !agents.is_empty() && !others.is_empty())
        .map(
            |((namespace, service_account), (agents, others))| SharedServiceAccount {
                namespace,
                service_account,
                agents,
                others,
            },
        )
        .collect();
    report
}

/// The report as a table: one line per object and one per violation, then the counts by
/// check, namespace and mode, and what the next rollout step would change.
fn write_table(out: &mut dyn Write, r: &Report) -> io::Result<()> {
    for f in &r.findings {
        let verdict = if f.violations.is_empty() {
            "passes".to_string()
        } else if f.refused_now {
            format!("{} violations, refused now", f.violations.len())
        } else if f.refused_if_enforced {
            format!("{} violations, refused under enforce", f.violations.len())
        } else {
            format!("{} violations", f.violations.len())
        };
        let how = if f.unlabelled {
            ", found by image, no agent label"
        } else {
            ""
        };
        writeln!(
            out,
            "{} {}/{} [{}{how}]: {verdict}",
            f.kind, f.namespace, f.name, f.mode
        )?;
        for j in &f.violations {
            writeln!(
                out,
                "  {}  {}  {}",
                j.violation.check, j.violation.path, j.violation.message
            )?;
        }
    }
    writeln!(out)?;
    writeln!(out, "by check:")?;
    for (c, n) in &r.by_check {
        writeln!(out, "  {c:<28} {n}")?;
    }
    writeln!(
        out,
        "by namespace (objects, violations, refused now, refused under enforce):"
    )?;
    for (ns, c) in &r.by_namespace {
        writeln!(
            out,
            "  {ns:<28} {} {} {} {}",
            c.objects, c.violations, c.refused_now, c.refused_if_enforced
        )?;
    }
    writeln!(
        out,
        "by mode (objects, violations, refused now, refused under enforce):"
    )?;
    for (m, c) in &r.by_mode {
        writeln!(
            out,
            "  {m:<28} {} {} {} {}",
            c.objects, c.violations, c.refused_now, c.refused_if_enforced
        )?;
    }
    if !r.legacy_approvals.is_empty() {
        writeln!(
            out,
            "legacy approval stamps (no content digest; honoured only until the upgrade's grace ends, re-approve each):"
        )?;
        for w in &r.legacy_approvals {
            writeln!(out, "  {w}")?;
        }
    }
    if !r.expired_exemptions.is_empty() {
        writeln!(
            out,
            "expired policy exemptions (ignored, as the webhook ignores them; renew or remove each):"
        )?;
        for e in &r.expired_exemptions {
            writeln!(out, "  {e}")?;
        }
    }
    if let Some(expiring) = &r.expiring {
        writeln!(
            out,
            "expiring exemptions and approvals ({}):",
            expiring.len()
        )?;
        for e in expiring {
            let state = if e.expired { "expired" } else { "expires" };
            writeln!(out, "  {state} {}  {}", e.expires, e.what)?;
        }
    }
    if !r.shared_service_accounts.is_empty() {
        writeln!(
            out,
            "agent ServiceAccounts that non-agents also run as (what one may do, the other may; give the agent its own):"
        )?;
        for s in &r.shared_service_accounts {
            writeln!(
                out,
                "  {}/{}: agents {}; also {}",
                s.namespace,
                s.service_account,
                s.agents.join(", "),
                s.others.join(", ")
            )?;
        }
    }
    let n = &r.next_step;
    writeln!(
        out,
        "next step: audit -> warn warns about {} object(s); warn -> enforce refuses {}; enforce everywhere refuses {} admitted today",
        n.audit_to_warn_warned, n.warn_to_enforce_refused, n.refused_if_enforced_everywhere
    )?;
    writeln!(
        out,
        "{} agent object(s) judged, {} violation(s), {} found by image without an agent label",
        r.total.objects, r.total.violations, r.unlabelled_agents
    )
}

fn severity(tier: crate::engine::violation::Tier) -> &'static str {
    use crate::engine::violation::Tier;
    match tier {
        Tier::High => "high",
        Tier::Medium => "medium",
        Tier::Low => "low",
    }
}

/// The `PolicyReport` of one namespace (wgpolicyk8s.io/v1alpha2).
pub fn policy_report(ns: &str, findings: &[&Finding], now: i64) -> Value {
    let mut results = Vec::new();
    let (mut pass, mut fail, mut warn) = (0, 0, 0);
    for f in findings {
        let resource = json!({"apiVersion": api_version_of(&f.kind), "kind": f.kind, "namespace": f.namespace,
            "name": f.name, "uid": f.uid});
        if f.violations.is_empty() {
            pass += 1;
            results.push(
                json!({"policy": REPORT_NAME, "rule": "agent-box", "result": "pass",
                "message": "passes every check", "source": REPORT_NAME, "scored": true,
                "timestamp": {"seconds": now, "nanos": 0}, "resources": [resource]}),
            );
            continue;
        }
        for j in &f.violations {
            let result = if j.action == crate::engine::policy::Action::Deny || f.refused_if_enforced
            {
                "fail"
            } else {
                "warn"
            };
            if result == "fail" {
                fail += 1
            } else {
                warn += 1
            }
            results.push(json!({
                "policy": REPORT_NAME, "rule": j.violation.check, "result": result,
                "severity": severity(j.violation.tier), "category": "OpenClaw agent box",
                "message": format!("{}: {} (fix: {})", j.violation.path, j.violation.message, j.violation.fix),
                "source": REPORT_NAME, "scored": true,
                "timestamp": {"seconds": now, "nanos": 0}, "resources": [resource.clone()],
                "properties": {"path": j.violation.path, "mode": f.mode}
            }));
        }
    }
    json!({
        "apiVersion": "wgpolicyk8s.io/v1alpha2", "kind": "PolicyReport",
        "metadata": {"name": REPORT_NAME, "namespace": ns,
            "labels": {"app.kubernetes.io/managed-by": REPORT_NAME}},
        "summary": {"pass": pass, "fail": fail, "warn": warn, "error": 0, "skip": 0},
        "results": results
    })
}

fn api_version_of(kind: &str) -> &'static str {
    match kind {
        "Pod" | "ReplicationController" => "v1",
        "Job" | "CronJob" => "batch/v1",
        _ => "apps/v1",
    }
}

async fn write_reports(client: &Client, r: &Report) -> anyhow::Result<usize> {
    let now = crate::admission::unix_now();
    let pp = PatchParams::apply(REPORT_NAME).force();
    let nsr = ApiResource {
        group: "wgpolicyk8s.io".into(),
        version: "v1alpha2".into(),
        api_version: "wgpolicyk8s.io/v1alpha2".into(),
        kind: "PolicyReport".into(),
        plural: "policyreports".into(),
    };
    let mut by_ns: BTreeMap<&str, Vec<&Finding>> = BTreeMap::new();
    for f in &r.findings {
        by_ns.entry(f.namespace.as_str()).or_default().push(f);
    }
    for (ns, findings) in &by_ns {
        let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), ns, &nsr);
        api.patch(REPORT_NAME, &pp, &Patch::Apply(policy_report(ns, findings, now)))
            .await
            .with_context(|| format!("cannot write PolicyReport {ns}/{REPORT_NAME} (is the wgpolicyk8s.io CRD installed?)"))?;
    }
    let cr = ApiResource {
        kind: "ClusterPolicyReport".into(),
        plural: "clusterpolicyreports".into(),
        ..nsr
    };
    let summary_results: Vec<Value> = r
        .by_namespace
        .iter()
        .map(|(ns, c)| {
            json!({"policy": REPORT_NAME, "rule": "namespace-summary",
                "result": if c.refused_if_enforced > 0 { "fail" } else { "pass" },
                "message": format!("namespace {ns}: {} agent object(s), {} violation(s), {} refused now, {} refused under enforce",
                    c.objects, c.violations, c.refused_now, c.refused_if_enforced),
                "source": REPORT_NAME, "scored": true, "timestamp": {"seconds": now, "nanos": 0},
                "resources": [{"apiVersion": "v1", "kind": "Namespace", "name": ns}]})
        })
        .collect();
    let failing = r
        .by_namespace
        .values()
        .filter(|c| c.refused_if_enforced > 0)
        .count();
    let cluster = json!({
        "apiVersion": "wgpolicyk8s.io/v1alpha2", "kind": "ClusterPolicyReport",
        "metadata": {"name": REPORT_NAME, "labels": {"app.kubernetes.io/managed-by": REPORT_NAME}},
        "summary": {"pass": r.by_namespace.len() - failing, "fail": failing, "warn": 0, "error": 0, "skip": 0},
        "results": summary_results
    });
    Api::<DynamicObject>::all_with(client.clone(), &cr)
        .patch(REPORT_NAME, &pp, &Patch::Apply(cluster))
        .await
        .context("cannot write ClusterPolicyReport openclaw-admission")?;
    Ok(by_ns.len())
}

pub fn run(args: Args) -> ExitCode {
    let policy = match &args.policy {
        Some(p) => match Policy::from_file(p) {
            Ok(p) => p,
            Err(e) => {
                note!("error: {e}");
                return ExitCode::from(2);
            }
        },
        None => Policy::default(),
    };
    let _ = rustls::crypto::ring::default_provider().install_default();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            note!("error: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    // One moment for the whole run: every object is judged against the same clock.
    let now = crate::admission::unix_now();
    let result: anyhow::Result<Report> = runtime.block_on(async {
        let started = Instant::now();
        let client = crate::cluster::client(args.kubeconfig.as_deref())
            .await
            .context("cannot configure the Kubernetes client (use --kubeconfig)")?;
        let mut progress = Progress {
            last: Instant::now(),
        };
        let view = read_view(&client, args.page_size, &mut progress).await?;
        let subjects = read_subjects(
            &client,
            args.namespace.as_deref(),
            args.page_size,
            &mut progress,
        )
        .await?;
        let listed = started.elapsed();
        let report = judge_at(&policy, &view, &subjects, now, args.expiring_within);
        note!(
            "audit: {} objects listed in {:.2}s, {} agent objects judged in {:.2}s",
            subjects.len(),
            listed.as_secs_f64(),
            report.total.objects,
            (started.elapsed() - listed).as_secs_f64()
        );
        if args.write_reports {
            let n = write_reports(&client, &report).await?;
            note!("audit: wrote {n} PolicyReport(s) and ClusterPolicyReport {REPORT_NAME}");
        }
        Ok(report)
    });
    match result {
        Ok(report) => {
            // A reader that stops early (`| head`) ends the report, not the verdict.
            let written = super::output::report(|out| match args.output {
                super::check::Output::Table => write_table(out, &report),
                super::check::Output::Json => super::output::json(out, &report),
            });
            if let Err(e) = written {
                note!("error: {e}");
                return ExitCode::from(2);
            }
            // As for `check`: what enforce mode would refuse fails the run, warnings do not.
            if report.total.refused_if_enforced > 0 && !args.exit_zero {
                ExitCode::from(1)
            } else {
                ExitCode::SUCCESS
            }
        }
        Err(e) => {
            note!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::cli::output::{self, Closing};
    use std::io::ErrorKind;

    /// `count` agent Pods with nothing hardened, as `read_subjects` hands them on.
    fn unhardened_pods(count: usize) -> Vec<(&'static str, String, Value)> {
        (0..count)
            .map(|i| {
                let pod = json!({
                    "apiVersion": "v1", "kind": "Pod",
                    "metadata": {"name": format!("agent-{i}"), "namespace": "agents",
                        "uid": format!("uid-{i}"), "labels": {"app": "openclaw"}},
                    "spec": {"containers": [
                        {"name": "gateway", "image": "ghcr.io/openclaw/openclaw:latest"}]}
                });
                ("Pod", "v1".to_string(), pod)
            })
            .collect()
    }

    #[test]
    fn the_report_stops_quietly_at_a_closed_pipe_and_fails_on_any_other_write_error() {
        let report = judge(&Policy::default(), &StaticView::new(), &unhardened_pods(40));
        assert_eq!(report.total.objects, 40);
        assert!(report.total.violations > 40, "{:?}", report.total);
        let mut whole = Vec::new();
        write_table(&mut whole, &report).unwrap();
        let summary = format!(
            "40 agent object(s) judged, {} violation(s), 0 found by image without an agent label\n",
            report.total.violations
        );
        assert!(String::from_utf8_lossy(&whole).ends_with(&summary));

        for room in [0, 100, whole.len() / 2] {
            let mut out = Closing::new(room, ErrorKind::BrokenPipe);
            let written = output::report_to(&mut out, |o| write_table(o, &report));
            assert_eq!(written, Ok(()), "room {room}");
            assert_eq!(out.taken, &whole[..room]);

            let mut out = Closing::new(room, ErrorKind::BrokenPipe);
            let written = output::report_to(&mut out, |o| output::json(o, &report));
            assert_eq!(written, Ok(()), "room {room}");

            let mut out = Closing::new(room, ErrorKind::StorageFull);
            let written = output::report_to(&mut out, |o| write_table(o, &report));
            let err = written.unwrap_err();
            assert!(err.contains("cannot write the report to stdout"), "{err}");
        }
    }

    #[test]
    fn a_sandbox_template_is_judged_at_its_pod_template_without_an_agent_label() {
        let template = json!({"apiVersion": "extensions.agents.x-k8s.io/v1beta1",
            "kind": "SandboxTemplate", "metadata": {"name": "openclaw", "namespace": "agents"},
            "spec": {"podTemplate": {"metadata": {"labels": {"sandbox": "openclaw"}},
                "spec": {"containers": [{"name": "c", "image": "ghcr.io/openclaw/openclaw:1"}]}}}});
        let subjects = vec![(
            "SandboxTemplate",
            "extensions.agents.x-k8s.io/v1beta1".to_string(),
            template,
        )];
        let report = judge(&Policy::default(), &StaticView::new(), &subjects);
        assert_eq!(report.findings.len(), 1, "{:?}", report.findings);
        let f = &report.findings[0];
        assert_eq!(f.kind, "SandboxTemplate");
        assert!(report.total.violations > 0);
        // The managed NetworkPolicy the template's controller writes (the open default) is
        // what egress is judged against.
        assert!(
            report.by_check.contains_key("default-deny-egress"),
            "{:?}",
            report.by_check
        );
    }

    #[test]
    fn an_agent_service_account_that_non_agents_also_use_is_reported() {
        let pod = |name: &str, labels: Value, sa: Option<&str>| {
            let mut p = json!({"apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": name, "namespace": "agents", "labels": labels},
                "spec": {"containers": [{"name": "c", "image": "ghcr.io/openclaw/openclaw:1"}]}});
            if let Some(sa) = sa {
                p["spec"]["serviceAccountName"] = json!(sa);
            }
            ("Pod", "v1".to_string(), p)
        };
        let job = json!({"apiVersion": "batch/v1", "kind": "Job",
            "metadata": {"name": "backup", "namespace": "agents"},
            "spec": {"template": {"metadata": {"labels": {"app": "backup"}},
                "spec": {"serviceAccountName": "openclaw-agent", "restartPolicy": "Never",
                    "containers": [{"name": "c", "image": "busybox"}]}}}});
        let subjects = vec![
            pod("agent", json!({"app": "openclaw"}), Some("openclaw-agent")),
            pod("helper", json!({"app": "helper"}), Some("openclaw-agent")),
            ("Job", "batch/v1".to_string(), job),
            // The agent alone on its ServiceAccount, and two non-agents sharing `default`.
            pod("lonely", json!({"app": "openclaw"}), Some("lonely-agent")),
            pod("web", json!({"app": "web"}), None),
            pod("db", json!({"app": "db"}), None),
        ];
        let mut policy = Policy::default();
        policy.catch_all.images.clear();
        let report = judge(&policy, &StaticView::new(), &subjects);
        assert_eq!(report.shared_service_accounts.len(), 1);
        let s = &report.shared_service_accounts[0];
        assert_eq!(
            (s.namespace.as_str(), s.service_account.as_str()),
            ("agents", "openclaw-agent")
        );
        assert_eq!(s.agents, ["Pod agent"]);
        assert_eq!(s.others, ["Pod helper", "Job backup"]);
        let mut out = Vec::new();
        write_table(&mut out, &report).unwrap();
        let text = String::from_utf8_lossy(&out);
        assert!(
            text.contains(
                "  agents/openclaw-agent: agents Pod agent; also Pod helper, Job backup\n"
            ),
            "{text}"
        );
    }

    #[test]
    fn workloads_with_legacy_approval_stamps_are_listed_for_re_approval() {
        let deployment = |name: &str, stamp: &str| {
            json!({"apiVersion": "apps/v1", "kind": "Deployment",
                "metadata": {"name": name, "namespace": "agents"},
                "spec": {"selector": {"matchLabels": {"app": "openclaw"}}, "template": {
                    "metadata": {"labels": {"app": "openclaw"},
                        "annotations": {"openclaw.io/approval": stamp}},
                    "spec": {"containers": [{"name": "gateway", "image": "ghcr.io/openclaw/openclaw:1"}]}}}})
        };
        let subjects = vec![
            (
                "Deployment",
                "apps/v1".to_string(),
                deployment(
                    "old",
                    "v1;ns=agents;kind=Deployment;name=old;checks=x;approver=bob;expires=never;sig=00",
                ),
            ),
            (
                "Deployment",
                "apps/v1".to_string(),
                deployment("new", "v2;ns=agents;sig=00"),
            ),
        ];
        let report = judge(&Policy::default(), &StaticView::new(), &subjects);
        assert_eq!(report.legacy_approvals, ["Deployment agents/old"]);
        let mut out = Vec::new();
        write_table(&mut out, &report).unwrap();
        let text = String::from_utf8_lossy(&out);
        assert!(
            text.contains("legacy approval stamps") && text.contains("  Deployment agents/old\n"),
            "{text}"
        );
    }
}

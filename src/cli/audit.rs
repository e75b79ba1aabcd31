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
//! `--write-reports` writes an OpenReports `Report` per namespace and a `ClusterReport`
//! summary (or the `wgpolicyk8s.io` PolicyReports, where only those are served; see
//! [`super::reports`]), by server-side apply, so a re-run updates them in place and report
//! viewers (Policy Reporter, the Kyverno and Kubewarden UIs) show them. Nothing else is
//! written.

pub use super::findings::{Counts, Expiring, Finding, NextStep, Report, SharedServiceAccount};
use crate::engine;
use crate::engine::policy::{Mode, Policy};
use crate::engine::review::{Review, Subject};
use crate::engine::view::{ServiceFacts, StaticView};
use anyhow::Context;
use k8s_openapi::api::core::v1::{Namespace, Service, ServiceAccount};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};
use kube::Client;
use kube::api::{Api, ApiResource, DynamicObject, ListParams};
use serde_json::Value;
use std::collections::BTreeMap;
use std::io::{self, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

/// The user an audit judges as: no groups, so no annotation is honoured as an approver's.
const AUDIT_USER: &str = "openclaw-admission-audit";

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
    /// Write a policy report per namespace and a cluster summary (server-side apply): an
    /// OpenReports Report and ClusterReport where openreports.io is served, else a
    /// wgpolicyk8s.io PolicyReport and ClusterPolicyReport.
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
    /// Which report API to write instead of the one discovery picks; an API named here that
    /// the cluster does not serve is an error.
    #[arg(long, value_enum, value_name = "API", requires = "write_reports")]
    pub report_api: Option<super::reports::ReportApi>,
    /// Largest report object, in bytes of JSON; a namespace whose results need more is written
    /// in numbered parts (etcd refuses requests past 1.5 MiB).
    #[arg(long, value_name = "BYTES", default_value_t = super::reports::DEFAULT_MAX_BYTES,
        value_parser = parse_max_bytes)]
    pub report_max_bytes: usize,
}

/// `--report-max-bytes`: a number of bytes between the smallest part that holds a few results
/// and etcd's request limit.
fn parse_max_bytes(s: &str) -> Result<usize, String> {
    const ETCD_LIMIT: usize = 1536 * 1024;
    let n: usize = s
        .parse()
        .map_err(|e| format!("{s:?} is not a number of bytes: {e}"))?;
    let min = super::reports::MIN_MAX_BYTES;
    if !(min..=ETCD_LIMIT).contains(&n) {
        return Err(format!(
            "{n} is outside {min}..={ETCD_LIMIT} (etcd refuses requests past 1.5 MiB)"
        ));
    }
    Ok(n)
}

fn parse_window(s: &str) -> Result<i64, String> {
    crate::engine::date::parse_length(s).map_err(|e| e.to_string())
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
        &dynamic::SANDBOX_CLAIMS,
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

/// Pods, and workloads that no controller owns, as (kind, apiVersion, object); and the
/// controllers of the ReplicaSets and Jobs, for [`resolve_workloads`].
type Subjects = Vec<(&'static str, String, Value)>;
type Owners = BTreeMap<(String, String), String>;
async fn read_subjects(
    client: &Client,
    ns: Option<&str>,
    page: u32,
    progress: &mut Progress,
) -> anyhow::Result<(Subjects, Owners)> {
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
    let mut owners = Owners::new();
    for (kind, (api, ar)) in kinds {
        for obj in list_all(&api, page, &format!("{kind}s"), progress).await? {
            let controller = obj
                .metadata
                .owner_references
                .iter()
                .flatten()
                .find(|o| o.controller == Some(true));
            let owned = controller.is_some();
            if let (Some(c), "ReplicaSet" | "Job") = (controller, kind) {
                owners.insert(
                    (
                        obj.metadata.namespace.clone().unwrap_or_default(),
                        format!(
                            "{kind}/{}",
                            obj.metadata.name.as_deref().unwrap_or_default()
                        ),
                    ),
                    format!("{}/{}", c.kind, c.name),
                );
            }
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
            let controller = obj
                .metadata
                .owner_references
                .iter()
                .flatten()
                .find(|o| o.controller == Some(true));
            if let Some(c) = controller {
                // A Pod's Sandbox leads to the claim or warm pool that holds it.
                owners.insert(
                    (
                        obj.metadata.namespace.clone().unwrap_or_default(),
                        format!(
                            "{}/{}",
                            api.kind,
                            obj.metadata.name.as_deref().unwrap_or_default()
                        ),
                    ),
                    format!("{}/{}", c.kind, c.name),
                );
                continue;
            }
            let mut value = serde_json::to_value(&obj).context("cannot re-read a listed object")?;
            value["kind"] = api.kind.into();
            value["apiVersion"] = ar.api_version.clone().into();
            out.push((api.kind, ar.api_version.clone(), value));
        }
    }
    Ok((out, owners))
}

/// `Kind/name` of the object's controlling owner, if any.
fn controller_of(object: &Value) -> Option<String> {
    object["metadata"]["ownerReferences"]
        .as_array()?
        .iter()
        .find(|o| o["controller"] == Value::Bool(true))
        .and_then(|o| Some(format!("{}/{}", o["kind"].as_str()?, o["name"].as_str()?)))
}

/// Replaces each finding's workload by its owner's owner while one is known: a Pod's
/// ReplicaSet by its Deployment, a Job by its CronJob, a Sandbox by the claim or warm pool that
/// holds it (and names that claim). `owners` maps `(namespace, Kind/name)`
/// of ReplicaSets and Jobs to their controller's `Kind/name`.
pub fn resolve_workloads(report: &mut Report, owners: &BTreeMap<(String, String), String>) {
    for f in &mut report.findings {
        // Two hops at most (CronJob -> Job -> Pod); the bound also ends any cycle.
        for _ in 0..2 {
            match owners.get(&(f.namespace.clone(), f.workload.clone())) {
                Some(up) => f.workload = up.clone(),
                None => break,
            }
        }
        if let Some(claim) = f.workload.strip_prefix("SandboxClaim/") {
            f.sandbox_claim = Some(claim.to_string());
        }
    }
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
            api_version: api_version.clone(),
            workload: controller_of(object).unwrap_or_else(|| format!("{kind}/{}", review.name)),
            sandbox: match &review.object {
                Subject::Pod(p) => {
                    crate::engine::review::sandbox_owner(&p.metadata).map(String::from)
                }
                _ => None,
            },
            sandbox_claim: None,
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
        let sandbox = match (&f.sandbox, &f.sandbox_claim) {
            (Some(s), Some(c)) => format!(" (Sandbox {s}, SandboxClaim {c})"),
            (Some(s), None) => format!(" (Sandbox {s})"),
            _ => String::new(),
        };
        writeln!(
            out,
            "{} {}/{}{sandbox} [{}{how}]: {verdict}",
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
        let (subjects, owners) = read_subjects(
            &client,
            args.namespace.as_deref(),
            args.page_size,
            &mut progress,
        )
        .await?;
        let listed = started.elapsed();
        let mut report = judge_at(&policy, &view, &subjects, now, args.expiring_within);
        let listed_objects = subjects.len();
        // The listed objects are judged: what is left of them is in the findings.
        drop(subjects);
        resolve_workloads(&mut report, &owners);
        note!(
            "audit: {} objects listed in {:.2}s, {} agent objects judged in {:.2}s",
            listed_objects,
            listed.as_secs_f64(),
            report.total.objects,
            (started.elapsed() - listed).as_secs_f64()
        );
        if args.write_reports {
            use super::reports;
            for flavour in reports::choose(&client, args.report_api).await? {
                let w = reports::write(
                    &client,
                    flavour,
                    &report,
                    args.namespace.as_deref(),
                    args.report_max_bytes,
                )
                .await?;
                note!(
                    "audit: wrote {} {}(s) in {} namespace(s) and {} {}(s) ({}), largest {} bytes; deleted {} stale",
                    w.namespaced,
                    flavour.namespaced.kind,
                    w.namespaces,
                    w.cluster,
                    flavour.cluster.kind,
                    w.api,
                    w.largest_bytes,
                    w.deleted
                );
            }
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
    use serde_json::json;
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
    fn a_sandboxs_pod_is_an_agent_and_named_with_its_sandbox_and_claim() {
        let pod = |name: &str, sandbox: &str| {
            json!({"apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": name, "namespace": "agents",
                    "labels": {"sandbox": "openclaw"},
                    "ownerReferences": [{"apiVersion": "agents.x-k8s.io/v1beta1",
                        "kind": "Sandbox", "name": sandbox, "uid": "s", "controller": true}]},
                "spec": {"containers": [{"name": "c", "image": "ghcr.io/openclaw/openclaw:1"}]}})
        };
        let subjects = vec![
            ("Pod", "v1".to_string(), pod("claimed", "claimed")),
            ("Pod", "v1".to_string(), pod("idle", "pool-x7k2p")),
            ("Pod", "v1".to_string(), pod("direct", "direct")),
        ];
        let mut report = judge(&Policy::default(), &StaticView::new(), &subjects);
        assert_eq!(report.findings.len(), 3, "{:?}", report.findings);
        // As read_subjects records the Sandboxes' owners.
        let owners = BTreeMap::from([
            (
                ("agents".to_string(), "Sandbox/claimed".to_string()),
                "SandboxClaim/my-claim".to_string(),
            ),
            (
                ("agents".to_string(), "Sandbox/pool-x7k2p".to_string()),
                "SandboxWarmPool/pool".to_string(),
            ),
        ]);
        resolve_workloads(&mut report, &owners);
        let by_name = |n: &str| report.findings.iter().find(|f| f.name == n).unwrap();
        let claimed = by_name("claimed");
        assert_eq!(claimed.workload, "SandboxClaim/my-claim");
        assert_eq!(claimed.sandbox.as_deref(), Some("claimed"));
        assert_eq!(claimed.sandbox_claim.as_deref(), Some("my-claim"));
        let idle = by_name("idle");
        assert_eq!(
            (
                idle.workload.as_str(),
                idle.sandbox.as_deref(),
                idle.sandbox_claim.as_deref()
            ),
            ("SandboxWarmPool/pool", Some("pool-x7k2p"), None)
        );
        assert_eq!(by_name("direct").workload, "Sandbox/direct");
        let mut table = Vec::new();
        write_table(&mut table, &report).unwrap();
        let table = String::from_utf8(table).unwrap();
        assert!(
            table.contains("Pod agents/claimed (Sandbox claimed, SandboxClaim my-claim) ["),
            "{table}"
        );
        assert!(
            table.contains("Pod agents/direct (Sandbox direct) ["),
            "{table}"
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

//! The pure decision engine: `evaluate(review, policy, view) -> Decision` for validation and
//! `mutate(review, policy, view) -> Decision` for mutation. No I/O, no async, no HTTP: the
//! webhook, the offline `check` command and the tests all call this same code.

pub mod approval;
pub mod checks;
pub mod cilium;
pub mod mutations;
pub mod openshift;
pub mod patch;
pub mod pod;
pub mod policy;
pub mod review;
pub mod selector;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_controllers;
pub mod view;
pub mod violation;

use pod::Pod;
use policy::{Action, Mode, Policy};
use review::{Operation, Review, Subject, Target};
use std::collections::BTreeMap;
use view::ClusterView;
use violation::Violation;

/// Audit annotation keys. The API server prefixes them with the webhook's name.
pub const AUDIT_VIOLATIONS: &str = "openclaw-violations";
pub const AUDIT_MODE: &str = "openclaw-mode";
pub const AUDIT_EXEMPTED: &str = "openclaw-exempted";
/// Exemption annotations that were not honoured (the requester is not an approver).
pub const AUDIT_EXEMPTION_REFUSED: &str = "openclaw-exemption-refused";
pub const AUDIT_MUTATION: &str = "openclaw-mutation";
/// Approvals honoured through a signed stamp: approver, checks, workload.
pub const AUDIT_APPROVAL: &str = "openclaw-approval";
/// Audit annotation values are kept short; longer ones are cut with a marker.
const AUDIT_VALUE_MAX: usize = 1024;

/// A violation with the action the policy gives it.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Judged {
    #[serde(flatten)]
    pub violation: Violation,
    pub action: Action,
}

/// Why a request was answered without judging it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Skip {
    /// Not a Pod or a workload with a pod template (or no object at all).
    NotJudged,
    /// No agent selector matches and the catch-all does not apply.
    NotAnAgent,
    /// An operation this endpoint does not act on (mutation: anything but Pod CREATE).
    Operation,
    /// A Pod UPDATE that changes nothing the checks look at.
    Unchanged,
}

/// The subresource `kubectl debug` adds containers through.
const EPHEMERAL_CONTAINERS: &str = "ephemeralcontainers";

/// The engine's answer. A denial is data, not an error.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Decision {
    pub allowed: bool,
    /// The mode the request was judged in.
    pub mode: Option<Mode>,
    /// Set when the request was not judged, and why.
    pub skipped: Option<Skip>,
    /// Violations still in force after exemptions, each with its action.
    pub violations: Vec<Judged>,
    /// Check ids exempted, with the reason (policy rule or approved annotation).
    pub exempted: Vec<(String, String)>,
    /// Check ids an exemption annotation asked for and did not get, with the reason.
    pub exemptions_refused: Vec<(String, String)>,
    /// Approvals honoured through a signed stamp (src/engine/approval.rs).
    pub approvals: Vec<approval::Grant>,
    /// Denial message, listing every violation with its path and fix.
    pub message: Option<String>,
    pub warnings: Vec<String>,
    pub audit_annotations: BTreeMap<String, String>,
    /// JSON Patch to apply (mutation only).
    pub patch: Option<patch::Patch>,
    /// Mutations applied (or, in audit mode, that would have been).
    pub mutations: Vec<&'static str>,
}

impl Decision {
    fn allow(skip: Skip) -> Decision {
        Decision {
            allowed: true,
            skipped: Some(skip),
            ..Default::default()
        }
    }
}

/// Errors that keep the engine from judging. The admission layer turns them into a
/// readable review (never a panic, never a dropped request).
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("cannot compute the patch: {0}")]
    Patch(#[from] serde_json::Error),
}

/// Whether the pod (labels, images) is an agent under the policy. `None` when it is not,
/// `Some(None)` when a selector matches, `Some(Some(action))` when only the catch-all does.
fn agent_match(policy: &Policy, target: &Target<'_>) -> Option<Option<Action>> {
    let labels = selector::labels_of(target.meta.labels.as_ref());
    if policy
        .agent_selectors
        .iter()
        .any(|s| selector::matches(s, labels))
    {
        return Some(None);
    }
    if policy.catch_all.enabled {
        let images = checks::containers(target.spec, target.spec_path);
        let hit = images.iter().filter_map(|c| c.image).any(|img| {
            let repo = image_repository(img);
            policy
                .catch_all
                .images
                .iter()
                .any(|p| repo == p || repo.ends_with(&format!("/{p}")))
        });
        if hit {
            return Some(Some(policy.catch_all.action));
        }
    }
    None
}

/// Whether the review carries a pod or pod template the policy treats as an agent. For callers
/// that prepare cluster state before judging (the live view's confirm step).
pub fn is_agent(review: &Review, policy: &Policy) -> bool {
    let mut spec_path = String::new();
    target_of(review, &mut spec_path).is_some_and(|t| agent_match(policy, &t).is_some())
}

/// `registry/repo:tag@digest` -> `registry/repo`.
fn image_repository(image: &str) -> &str {
    let no_digest = image.split('@').next().unwrap_or(image);
    match no_digest.rfind(':') {
        Some(i) if !no_digest[i..].contains('/') => &no_digest[..i],
        _ => no_digest,
    }
}

/// The pod or template under review, if the request carries one the engine judges.
fn target_of<'a>(review: &'a Review, spec_path: &'a mut String) -> Option<Target<'a>> {
    let ns = review.namespace.as_str();
    match &review.object {
        Subject::Pod(pod) => Some(Target::of_pod(pod, ns)),
        Subject::Template(t) => {
            *spec_path = format!("{}.spec", t.template_path);
            Some(Target::of_template(t, ns, spec_path.as_str()))
        }
        Subject::None | Subject::Other | Subject::Connect(_) => None,
    }
}

/// An UPDATE (not a subresource) that leaves the pod spec, or the workload's pod template,
/// as it was needs no judging: metadata-only updates (finalizer removal by the garbage
/// collector, labels, replicas) must not be blocked for an object admitted earlier.
fn unchanged_update(review: &Review) -> bool {
    if review.operation != Operation::Update || review.sub_resource.is_some() {
        return false;
    }
    match (&review.object, &review.old_object) {
        (Subject::Pod(new), Subject::Pod(old)) => new.spec == old.spec,
        (Subject::Template(new), Subject::Template(old)) => new.template == old.template,
        _ => false,
    }
}

/// The ephemeral containers an `ephemeralcontainers` UPDATE adds: indices into the new
/// Pod's list of those whose names the old Pod does not have.
fn added_ephemeral_containers(review: &Review) -> Vec<usize> {
    let names = |s: &Subject| -> Vec<String> {
        match s {
            Subject::Pod(p) => p
                .spec
                .as_ref()
                .and_then(|s| s.ephemeral_containers.as_ref())
                .map(|l| l.iter().map(|c| c.name.clone()).collect())
                .unwrap_or_default(),
            _ => Vec::new(),
        }
    };
    let old = names(&review.old_object);
    names(&review.object)
        .iter()
        .enumerate()
        .filter(|(_, n)| !old.contains(n))
        .map(|(i, _)| i)
        .collect()
}

/// Validation: judge the pod (or pod template) under review.
pub fn evaluate(review: &Review, policy: &Policy, view: &impl ClusterView) -> Decision {
    if review.operation == Operation::Connect {
        return match &review.object {
            Subject::Connect(options) => judge_connect(review, options, policy, view),
            _ => Decision::allow(Skip::Operation),
        };
    }
    if review.operation == Operation::Delete {
        return Decision::allow(Skip::Operation);
    }
    if policy.assume_openshift {
        let mut filled = review.clone();
        openshift::fill(&mut filled.object);
        openshift::fill(&mut filled.old_object);
        return judge(&filled, policy, view);
    }
    judge(review, policy, view)
}

fn judge(review: &Review, policy: &Policy, view: &impl ClusterView) -> Decision {
    let mut spec_path = String::new();
    let Some(target) = target_of(review, &mut spec_path) else {
        return Decision::allow(Skip::NotJudged);
    };
    let Some(catch_all_action) = agent_match(policy, &target) else {
        return Decision::allow(Skip::NotAnAgent);
    };
    if unchanged_update(review) {
        return Decision::allow(Skip::Unchanged);
    }
    // `kubectl debug` adds ephemeral containers to a running Pod: judge what it adds, not
    // what the Pod already had when it was admitted (perhaps in audit mode, or exempted).
    let debug = review.sub_resource.as_deref() == Some(EPHEMERAL_CONTAINERS);
    let added = if debug {
        let added = added_ephemeral_containers(review);
        if added.is_empty() {
            return Decision::allow(Skip::Unchanged);
        }
        added
    } else {
        Vec::new()
    };

    let input = checks::CheckInput {
        target,
        policy,
        view,
    };
    let mut found = checks::run_all(&input);
    if debug {
        let prefixes: Vec<String> = added
            .iter()
            .map(|i| format!("{}.ephemeralContainers[{i}]", target.spec_path))
            .collect();
        found.retain(|v| {
            prefixes.iter().any(|p| {
                v.path
                    .strip_prefix(p.as_str())
                    .is_some_and(|rest| rest.is_empty() || rest.starts_with('.'))
            })
        });
    }

    let ns_labels = view.namespace_labels(&review.namespace);
    let mode = policy.mode_for(ns_labels.as_ref());
    let granted = approval_for(review, policy, &target);
    let (kept, exempted, exemptions_refused) =
        apply_exemptions(review, policy, &target, granted.as_ref(), found);

    let violations: Vec<Judged> = kept
        .into_iter()
        .map(|v| {
            let tier_action = catch_all_action.unwrap_or_else(|| policy.tiers.for_tier(v.tier));
            let action = match mode {
                Mode::Enforce => tier_action,
                Mode::Warn => tier_action.max(Action::Warn),
                Mode::Audit => Action::Audit,
            };
            Judged {
                violation: v,
                action,
            }
        })
        .collect();

    let mut d = Decision {
        allowed: true,
        mode: Some(mode),
        exempted,
        exemptions_refused,
        ..Default::default()
    };
    if let Some(g) = granted {
        d.audit_annotations
            .insert(AUDIT_APPROVAL.into(), short(&g.describe()));
        d.approvals.push(g);
    }
    let denied = violations.iter().any(|j| j.action == Action::Deny);
    if denied {
        d.allowed = false;
        d.message = Some(denial_message(review, &violations));
    } else {
        d.warnings = violations
            .iter()
            .filter(|j| j.action == Action::Warn)
            .map(|j| format!("openclaw-admission [{}]: {}", mode.as_str(), j.violation))
            .collect();
    }
    d.audit_annotations
        .insert(AUDIT_MODE.into(), mode.as_str().into());
    if !violations.is_empty() {
        let list: Vec<String> = violations
            .iter()
            .map(|j| format!("{}@{}", j.violation.check, j.violation.path))
            .collect();
        d.audit_annotations
            .insert(AUDIT_VIOLATIONS.into(), short(&list.join(",")));
    }
    if !d.exempted.is_empty() {
        let list: Vec<String> = d
            .exempted
            .iter()
            .map(|(c, why)| format!("{c} ({why})"))
            .collect();
        d.audit_annotations
            .insert(AUDIT_EXEMPTED.into(), short(&list.join("; ")));
    }
    if !d.exemptions_refused.is_empty() {
        let list: Vec<String> = d
            .exemptions_refused
            .iter()
            .map(|(c, why)| format!("{c} ({why})"))
            .collect();
        d.audit_annotations
            .insert(AUDIT_EXEMPTION_REFUSED.into(), short(&list.join("; ")));
        // The requester asked for an exemption; tell them why it did not count.
        d.warnings.extend(
            d.exemptions_refused.iter().map(|(c, why)| {
                format!("openclaw-admission: exemption for {c} not honoured: {why}")
            }),
        );
    }
    d.violations = violations;
    d
}

fn short(s: &str) -> String {
    if s.len() <= AUDIT_VALUE_MAX {
        return s.to_string();
    }
    let mut cut = AUDIT_VALUE_MAX;
    while !s.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}...(truncated)", &s[..cut])
}

fn denial_message(review: &Review, violations: &[Judged]) -> String {
    let what = match &review.object {
        Subject::Template(t) => t.kind.clone(),
        // `helm test` creates these; say so, or the user looks for a pod they never wrote.
        Subject::Pod(p) => match p
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get("helm.sh/hook"))
        {
            Some(hook) => format!("pod (Helm hook {hook:?})"),
            None => "pod".to_string(),
        },
        _ => "pod".to_string(),
    };
    let name = if review.name.is_empty() {
        match &review.object {
            Subject::Pod(p) => p
                .metadata
                .name
                .clone()
                .or(p.metadata.generate_name.clone())
                .unwrap_or_default(),
            Subject::Template(t) => t.metadata.name.clone().unwrap_or_default(),
            _ => String::new(),
        }
    } else {
        review.name.clone()
    };
    let mut msg = format!(
        "openclaw-admission refused {what} {}/{name}: {} violation{}",
        review.namespace,
        violations.len(),
        if violations.len() == 1 { "" } else { "s" }
    );
    for j in violations.iter().take(MAX_LISTED) {
        msg.push_str("\n  - ");
        msg.push_str(&j.violation.to_string());
        if j.action != Action::Deny {
            msg.push_str(&format!(" [{}]", j.action.as_str()));
        }
    }
    if violations.len() > MAX_LISTED {
        msg.push_str(&format!(
            "\n  ... and {} more (`openclaw-admission check` on the manifest lists them all)",
            violations.len() - MAX_LISTED
        ));
    }
    msg
}

/// Violations listed in one denial message. A real agent pod has a handful; a pod with
/// thousands of containers must not produce a message the API server and kubectl choke on.
const MAX_LISTED: usize = 100;

/// Check ids with a reason each.
type Reasons = Vec<(String, String)>;

fn is_approver(policy: &Policy, user: &review::User) -> bool {
    policy.approver_users.contains(&user.username)
        || user
            .groups
            .iter()
            .any(|g| policy.approver_groups.contains(g))
}

/// The check id of human approval for a shell in an agent.
pub const EXEC_REQUIRES_APPROVAL: &str = "exec-requires-approval";
/// An exec, attach or port-forward into an agent that was let through, with who and what.
pub const AUDIT_EXEC: &str = "openclaw-exec";

/// `exec-requires-approval`: CONNECT to `pods/exec`, `pods/attach` or `pods/portforward` of
/// an agent Pod is for approvers only. The request carries only the options (no labels), so
/// the pod comes from the view (a live lookup by the caller). A pod the view cannot vouch
/// for is treated as an agent: refusing a shell by mistake costs a retry, letting one into an
/// agent by mistake costs what the check exists to prevent.
fn judge_connect(
    review: &Review,
    options: &review::ConnectOptions,
    policy: &Policy,
    view: &impl ClusterView,
) -> Decision {
    if !policy.check_enabled(EXEC_REQUIRES_APPROVAL) {
        return Decision::allow(Skip::NotJudged);
    }
    let what = review.sub_resource.as_deref().unwrap_or("connect");
    let pod = format!("{}/{}", review.namespace, review.name);
    let unknown = match view.pod_labels(&review.namespace, &review.name) {
        view::PodLookup::Missing => return Decision::allow(Skip::NotAnAgent),
        view::PodLookup::Found(labels) => {
            if !policy
                .agent_selectors
                .iter()
                .any(|s| selector::matches(s, &labels))
            {
                return Decision::allow(Skip::NotAnAgent);
            }
            false
        }
        view::PodLookup::Unknown => true,
    };
    let user = &review.user;
    let mode = policy.mode_for(view.namespace_labels(&review.namespace).as_ref());
    let detail = {
        let mut d = format!("{what} by {} into pod {pod}", user.username);
        if let Some(c) = &options.container {
            d.push_str(&format!(" container {c}"));
        }
        if !options.command.is_empty() {
            d.push_str(&format!(": {}", options.command.join(" ")));
        }
        if !options.ports.is_empty() {
            let ports: Vec<String> = options.ports.iter().map(i32::to_string).collect();
            d.push_str(&format!(": ports {}", ports.join(",")));
        }
        d
    };
    let mut d = Decision {
        allowed: true,
        mode: Some(mode),
        ..Default::default()
    };
    d.audit_annotations
        .insert(AUDIT_MODE.into(), mode.as_str().into());
    if is_approver(policy, user) {
        d.audit_annotations
            .insert(AUDIT_EXEC.into(), short(&format!("{detail} (approver)")));
        return d;
    }
    let approvers = if policy.approver_groups.is_empty() {
        "approverUsers".to_string()
    } else {
        format!("groups {}", policy.approver_groups.join(", "))
    };
    let violation = Violation::new(
        EXEC_REQUIRES_APPROVAL,
        violation::Tier::High,
        format!("pods/{what}"),
        format!(
            "{} may not {what} into {}agent pod {pod}: a shell in an agent needs human approval",
            user.username,
            if unknown { "possible " } else { "" }
        ),
        format!(
            "ask an approver ({approvers}) to run it, or have {} added to an approver group",
            user.username
        ),
    );
    let action = match mode {
        Mode::Enforce => policy.tiers.for_tier(violation.tier),
        Mode::Warn => policy.tiers.for_tier(violation.tier).max(Action::Warn),
        Mode::Audit => Action::Audit,
    };
    d.audit_annotations.insert(
        AUDIT_VIOLATIONS.into(),
        format!("{EXEC_REQUIRES_APPROVAL}@pods/{what}"),
    );
    d.audit_annotations
        .insert(AUDIT_EXEC.into(), short(&detail));
    if action == Action::Deny {
        d.allowed = false;
        d.message = Some(format!(
            "openclaw-admission refused {what} into pod {pod}: {violation}"
        ));
    } else if action == Action::Warn {
        d.warnings.push(format!(
            "openclaw-admission [{}]: {violation}",
            mode.as_str()
        ));
    }
    d.violations.push(Judged { violation, action });
    d
}

/// The approval stamp on the object under review, when it holds for this object and this
/// requester (src/engine/approval.rs explains when, and why).
fn approval_for(review: &Review, policy: &Policy, target: &Target<'_>) -> Option<approval::Grant> {
    let value = target
        .meta
        .annotations
        .as_ref()?
        .get(approval::APPROVAL_ANNOTATION)?;
    let key = policy.approval_key.as_deref().map(Vec::as_slice);
    let grant = approval::Grant::verify(value, key).ok()?;
    if grant.namespace != review.namespace || grant.expired(review.now) {
        return None;
    }
    let controller = policy
        .controller_users
        .iter()
        .any(|u| u == &review.user.username);
    let holds = match &review.object {
        Subject::Template(t) => {
            let own_name = t.metadata.name.as_deref().unwrap_or(review.name.as_str());
            if t.kind == grant.kind && own_name == grant.name {
                // The signed workload itself: its approver, or a change that leaves the
                // template's spec as the approver signed it.
                is_approver(policy, &review.user)
                    || (review.operation == Operation::Update
                        && matches!(&review.old_object, Subject::Template(old)
                            if old.template.spec == t.template.spec))
            } else {
                controller && template_made_from(t, own_name, &grant)
            }
        }
        Subject::Pod(p) => controller && pod_made_from(&p.metadata, &grant),
        Subject::None | Subject::Other | Subject::Connect(_) => false,
    };
    holds.then_some(grant)
}

/// A ReplicaSet the Deployment controller made (`<deployment>-<pod-template-hash>`, owned by
/// the Deployment), or a Job the CronJob controller made (`<cronjob>-<digits>`).
fn template_made_from(t: &review::Template, own_name: &str, grant: &approval::Grant) -> bool {
    match (t.kind.as_str(), grant.kind.as_str()) {
        ("ReplicaSet", "Deployment") => {
            let hash = t
                .metadata
                .labels
                .as_ref()
                .and_then(|l| l.get(review::POD_TEMPLATE_HASH_LABEL));
            let owned = t.metadata.owner_references.iter().flatten().any(|o| {
                o.controller == Some(true) && o.kind == "Deployment" && o.name == grant.name
            });
            owned && hash.is_some_and(|h| own_name == format!("{}-{h}", grant.name))
        }
        ("Job", "CronJob") => {
            review::cronjob_of_job(own_name, &t.metadata) == Some(grant.name.as_str())
        }
        _ => false,
    }
}

/// A Pod whose controller owner is the signed workload, or (for a Deployment) its
/// ReplicaSet, or (for a CronJob) one of its runs.
fn pod_made_from(
    meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
    grant: &approval::Grant,
) -> bool {
    let Some((kind, name)) = review::workload_of(meta) else {
        return false;
    };
    if kind == grant.kind && name == grant.name {
        return true;
    }
    grant.kind == "CronJob"
        && kind == "Job"
        && name.rsplit_once('-').is_some_and(|(base, run)| {
            base == grant.name && !run.is_empty() && run.bytes().all(|b| b.is_ascii_digit())
        })
}

/// Drops violations covered by a policy exemption, an approved annotation or an approval
/// stamp. Returns the violations kept, the exemptions honoured and the annotation requests
/// refused, each with its reason.
fn apply_exemptions(
    review: &Review,
    policy: &Policy,
    target: &Target<'_>,
    granted: Option<&approval::Grant>,
    found: Vec<Violation>,
) -> (Vec<Violation>, Reasons, Reasons) {
    let user = &review.user;
    let mut exempt_all: Option<String> = None;
    let mut exempt: BTreeMap<String, String> = BTreeMap::new();
    for (i, ex) in policy.exemptions.iter().enumerate() {
        let ns_ok =
            ex.namespaces.is_empty() || ex.namespaces.iter().any(|n| n == &review.namespace);
        let who_ok = (ex.users.is_empty() && ex.groups.is_empty())
            || ex.users.iter().any(|u| u == &user.username)
            || ex.groups.iter().any(|g| user.groups.contains(g));
        if !(ns_ok && who_ok) {
            continue;
        }
        let why = if ex.reason.is_empty() {
            format!("policy exemptions[{i}]")
        } else {
            format!("policy: {}", ex.reason)
        };
        if ex.checks.is_empty() {
            exempt_all.get_or_insert(why);
        } else {
            for c in &ex.checks {
                exempt.entry(c.clone()).or_insert_with(|| why.clone());
            }
        }
    }
    if let Some(g) = granted {
        for c in &g.checks {
            exempt
                .entry(c.clone())
                .or_insert_with(|| format!("approved by {} on {} {}", g.approver, g.kind, g.name));
        }
    }
    let mut notes = Vec::new();
    if let Some(value) = target
        .meta
        .annotations
        .as_ref()
        .and_then(|a| a.get(&policy.exemption_annotation))
    {
        let approver = is_approver(policy, user);
        for c in value.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            if granted.is_some_and(|g| g.checks.iter().any(|x| x == c)) {
                continue;
            }
            if approver {
                exempt
                    .entry(c.to_string())
                    .or_insert_with(|| format!("annotation approved by {}", user.username));
            } else {
                notes.push((
                    c.to_string(),
                    format!(
                        "annotation ignored: {} is not in an approver group",
                        user.username
                    ),
                ));
            }
        }
    }
    let mut kept = Vec::new();
    let mut honoured: BTreeMap<String, String> = BTreeMap::new();
    for v in found {
        if let Some(why) = exempt_all.as_ref().or_else(|| exempt.get(v.check)) {
            honoured
                .entry(v.check.to_string())
                .or_insert_with(|| why.clone());
        } else {
            kept.push(v);
        }
    }
    (kept, honoured.into_iter().collect(), notes)
}

/// The mutation that stamps an approver's exemption into a workload's template.
pub const APPROVAL_STAMP: &str = "approval-stamp";

/// Mutation: patch an agent Pod on CREATE (in audit mode the patch is reported in the audit
/// annotations and not applied), and stamp an approver's exemption into an agent workload's
/// pod template on CREATE or UPDATE (in every mode: the stamp changes nothing about the
/// Pods until the exemption is needed, and audit mode must not lose it for later).
pub fn mutate(
    review: &Review,
    policy: &Policy,
    view: &impl ClusterView,
) -> Result<Decision, EngineError> {
    match &review.object {
        Subject::Pod(pod) => mutate_pod(review, pod, policy, view),
        Subject::Template(t) => Ok(stamp_approval(review, t, policy, view)),
        Subject::None | Subject::Other | Subject::Connect(_) => {
            Ok(Decision::allow(Skip::NotJudged))
        }
    }
}

/// Stamps a signed grant (src/engine/approval.rs) when an approver sends an agent workload
/// whose template asks for an exemption.
fn stamp_approval(
    review: &Review,
    t: &review::Template,
    policy: &Policy,
    view: &impl ClusterView,
) -> Decision {
    if !matches!(review.operation, Operation::Create | Operation::Update)
        || review.sub_resource.is_some()
    {
        return Decision::allow(Skip::Operation);
    }
    let spec_path = format!("{}.spec", t.template_path);
    let target = Target::of_template(t, &review.namespace, &spec_path);
    if agent_match(policy, &target).is_none() {
        return Decision::allow(Skip::NotAnAgent);
    }
    let mode = policy.mode_for(view.namespace_labels(&review.namespace).as_ref());
    let mut d = Decision {
        allowed: true,
        mode: Some(mode),
        ..Default::default()
    };
    let annotations = target.meta.annotations.as_ref();
    let Some(asked) = annotations.and_then(|a| a.get(&policy.exemption_annotation)) else {
        return d;
    };
    let Some(key) = policy.approval_key.as_deref() else {
        return d;
    };
    if !is_approver(policy, &review.user) {
        return d;
    }
    let checks: Vec<String> = asked
        .split(',')
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .map(String::from)
        .collect();
    let name = t.metadata.name.as_deref().unwrap_or(review.name.as_str());
    let expires = match annotations.and_then(|a| a.get(approval::EXPIRY_ANNOTATION)) {
        None => None,
        Some(v) => match approval::parse_utc(v) {
            Some(e) => Some(e),
            None => {
                d.warnings.push(format!(
                    "openclaw-admission: {} {v:?} is not a date (2027-01-31 or 2027-01-31T00:00:00Z, UTC); the exemption was not stamped for the workload's Pods",
                    approval::EXPIRY_ANNOTATION
                ));
                return d;
            }
        },
    };
    if checks.is_empty() || name.is_empty() {
        return d;
    }
    let grant = approval::Grant::new(
        &review.namespace,
        &t.kind,
        name,
        checks,
        &review.user.username,
        expires,
    );
    // Re-applying the same manifest keeps the stamp it has (whoever approved it): a new
    // one would change the template and start a rollout for nothing.
    let current = annotations
        .and_then(|a| a.get(approval::APPROVAL_ANNOTATION))
        .and_then(|v| approval::Grant::verify(v, Some(key.as_slice())).ok());
    if current.is_some_and(|c| {
        approval::Grant {
            approver: grant.approver.clone(),
            ..c
        } == grant
    }) {
        return d;
    }
    let Some(stamp) = grant.stamp(key) else {
        d.warnings.push(
            "openclaw-admission: the approval cannot be stamped (a name holds ';' or '=')".into(),
        );
        return d;
    };
    let path = format!(
        "/{}/metadata/annotations/{}",
        t.template_path.replace('.', "/"),
        approval::APPROVAL_ANNOTATION
            .replace('~', "~0")
            .replace('/', "~1")
    );
    // The path is built from constants; a parse failure would be a bug, never a reason to
    // send a patch at the document root.
    let Ok(path) = path.parse() else {
        return d;
    };
    let Ok(value) = patch::Json::of(&stamp) else {
        return d;
    };
    d.patch = Some(patch::Patch(vec![patch::Op::Add { path, value }]));
    d.mutations.push(APPROVAL_STAMP);
    d.audit_annotations
        .insert(AUDIT_MODE.into(), mode.as_str().into());
    d.audit_annotations.insert(
        AUDIT_APPROVAL.into(),
        short(&format!("stamped {}", grant.describe())),
    );
    d.approvals.push(grant);
    d
}

fn mutate_pod(
    review: &Review,
    pod: &Pod,
    policy: &Policy,
    view: &impl ClusterView,
) -> Result<Decision, EngineError> {
    if review.operation != Operation::Create || review.sub_resource.is_some() {
        return Ok(Decision::allow(Skip::Operation));
    }
    let target = Target::of_pod(pod, &review.namespace);
    if agent_match(policy, &target).is_none() {
        return Ok(Decision::allow(Skip::NotAnAgent));
    }
    let mode = policy.mode_for(view.namespace_labels(&review.namespace).as_ref());
    let mut draft = mutations::PodDraft::new(pod);
    let input = mutations::MutationInput {
        policy,
        namespace: &review.namespace,
        service_account_automount: view.service_account_automount(
            &review.namespace,
            target.service_account().unwrap_or("default"),
        ),
        view,
    };
    let applied = mutations::apply_all(&mut draft, &input);
    let patch = if applied.is_empty() {
        None
    } else {
        Some(patch::Patch(draft.patch()?)).filter(|p| !p.0.is_empty())
    };
    let mut d = Decision {
        allowed: true,
        mode: Some(mode),
        mutations: applied,
        ..Default::default()
    };
    d.audit_annotations
        .insert(AUDIT_MODE.into(), mode.as_str().into());
    if let Some(p) = patch {
        if mode == Mode::Audit {
            let ops: Vec<String> =
                p.0.iter()
                    .map(|op| format!("{} {}", op.kind(), op.path()))
                    .collect();
            d.audit_annotations.insert(
                AUDIT_MUTATION.into(),
                short(&format!(
                    "would inject {}: {}",
                    d.mutations.join(","),
                    ops.join(", ")
                )),
            );
        } else {
            d.audit_annotations.insert(
                AUDIT_MUTATION.into(),
                format!("injected {}", d.mutations.join(",")),
            );
            d.patch = Some(p);
        }
    }
    Ok(d)
}

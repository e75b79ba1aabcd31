//! The pure decision engine: `evaluate(review, policy, view) -> Decision` for validation and
//! `mutate(review, policy, view) -> Decision` for mutation. No I/O, no async, no HTTP: the
//! webhook, the offline `check` command and the tests all call this same code.

pub mod checks;
pub mod mutations;
pub mod policy;
pub mod review;
pub mod selector;
#[cfg(test)]
mod tests;
pub mod view;
pub mod violation;

use k8s_openapi::api::core::v1::Pod;
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
    /// Denial message, listing every violation with its path and fix.
    pub message: Option<String>,
    pub warnings: Vec<String>,
    pub audit_annotations: BTreeMap<String, String>,
    /// JSON Patch to apply (mutation only).
    pub patch: Option<json_patch::Patch>,
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
        Subject::None | Subject::Other => None,
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

/// Validation: judge the pod (or pod template) under review.
pub fn evaluate(review: &Review, policy: &Policy, view: &impl ClusterView) -> Decision {
    if matches!(review.operation, Operation::Delete | Operation::Connect) {
        return Decision::allow(Skip::Operation);
    }
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

    let input = checks::CheckInput {
        target,
        policy,
        view,
    };
    let found = checks::run_all(&input);

    let ns_labels = view.namespace_labels(&review.namespace);
    let mode = policy.mode_for(ns_labels.as_ref());
    let (kept, exempted, exemptions_refused) = apply_exemptions(review, policy, &target, found);

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

/// Drops violations covered by a policy exemption or an approved annotation. Returns the
/// violations kept, the exemptions honoured and the annotation requests refused, each with
/// its reason.
fn apply_exemptions(
    review: &Review,
    policy: &Policy,
    target: &Target<'_>,
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
    let mut notes = Vec::new();
    if let Some(value) = target
        .meta
        .annotations
        .as_ref()
        .and_then(|a| a.get(&policy.exemption_annotation))
    {
        let approver = user
            .groups
            .iter()
            .any(|g| policy.approver_groups.contains(g));
        for c in value.split(',').map(str::trim).filter(|s| !s.is_empty()) {
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

/// Mutation: patch an agent Pod on CREATE. In audit mode the patch is reported in the audit
/// annotations and not applied.
pub fn mutate(
    review: &Review,
    policy: &Policy,
    view: &impl ClusterView,
) -> Result<Decision, EngineError> {
    let Subject::Pod(pod) = &review.object else {
        return Ok(Decision::allow(Skip::NotJudged));
    };
    if review.operation != Operation::Create || review.sub_resource.is_some() {
        return Ok(Decision::allow(Skip::Operation));
    }
    let target = Target::of_pod(pod, &review.namespace);
    if agent_match(policy, &target).is_none() {
        return Ok(Decision::allow(Skip::NotAnAgent));
    }
    let mode = policy.mode_for(view.namespace_labels(&review.namespace).as_ref());
    let mut mutated: Pod = (**pod).clone();
    let input = mutations::MutationInput {
        policy,
        namespace: &review.namespace,
    };
    let applied = mutations::apply_all(&mut mutated, &input);
    let patch = if applied.is_empty() {
        None
    } else {
        patch::diff(pod, &mutated)?
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
            let ops: Vec<String> = p.0.iter().map(describe_op).collect();
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

fn describe_op(op: &json_patch::PatchOperation) -> String {
    use json_patch::PatchOperation as P;
    match op {
        P::Add(o) => format!("add {}", o.path),
        P::Remove(o) => format!("remove {}", o.path),
        P::Replace(o) => format!("replace {}", o.path),
        P::Move(o) => format!("move {}", o.path),
        P::Copy(o) => format!("copy {}", o.path),
        P::Test(o) => format!("test {}", o.path),
    }
}

use crate::patch;

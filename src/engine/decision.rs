//! The engine's answer to one review ([`Decision`]), and how judged violations become one:
//! allowed or refused with a message listing each violation, warnings, and the audit
//! annotations the API server writes to its audit log. Written once for pods and workloads
//! ([`judged`]) and for CONNECTs ([`connect`]).

use super::approval::grant::Verified;
use super::approval::stamp::{APPROVAL_STAMP, Stamp};
use super::checks::no_plaintext_credentials::redacted;
use super::patch;
use super::policy::{Action, Mode, Policy};
use super::review::{ConnectOptions, Review, Subject};
use super::violation::Violation;
use std::collections::BTreeMap;

/// Audit annotation keys. The API server prefixes them with the webhook's name.
pub const AUDIT_VIOLATIONS: &str = "openclaw-violations";
pub const AUDIT_MODE: &str = "openclaw-mode";
pub const AUDIT_EXEMPTED: &str = "openclaw-exempted";
/// Exemption annotations that were not honoured (the requester is not an approver).
pub const AUDIT_EXEMPTION_REFUSED: &str = "openclaw-exemption-refused";
/// Policy exemptions that matched but had expired, so their checks were judged.
pub const AUDIT_EXEMPTION_EXPIRED: &str = "openclaw-exemption-expired";
pub const AUDIT_MUTATION: &str = "openclaw-mutation";
/// Approvals honoured through a signed stamp: approver, checks, workload.
pub const AUDIT_APPROVAL: &str = "openclaw-approval";
/// Audit annotation values are kept short; longer ones are cut with a marker.
const AUDIT_VALUE_MAX: usize = 1024;

/// An exec, attach or port-forward into an agent that was let through, with who and what.
pub const AUDIT_EXEC: &str = "openclaw-exec";

/// A violation with the action the policy gives it.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Judged {
    #[serde(flatten)]
    pub violation: Violation,
    pub action: Action,
    /// The action the violation takes in enforce mode, whatever the namespace's mode: what
    /// `check` and `audit` fail on (a warning passes, a would-be refusal does not).
    #[serde(skip)]
    pub in_enforce: Action,
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
    /// Policy exemptions that matched but had expired, with the checks they no longer cover.
    pub expired_exemptions: Vec<Expired>,
    /// Approvals honoured through a signed stamp, or stamped (src/engine/approval/), with
    /// how: under the previous key, or as a legacy stamp.
    pub approvals: Vec<Verified>,
    /// Denial message, listing every violation with its path and fix.
    pub message: Option<String>,
    pub warnings: Vec<String>,
    /// Warnings that are no violation (an agent-sandbox claim naming a warm pool that does not
    /// exist), also in `warnings`: what `check` prints beside its table.
    pub notes: Vec<String>,
    pub audit_annotations: BTreeMap<String, String>,
    /// JSON Patch to apply (mutation only).
    pub patch: Option<patch::Patch>,
    /// Mutations applied (or, in audit mode, that would have been).
    pub mutations: Vec<&'static str>,
}

impl Decision {
    /// Records the expired exemptions that were ignored: in the audit annotations, and as a
    /// warning to the requester, who may not know that the exemption they relied on ran out.
    pub fn with_expired(mut self, expired: Vec<Expired>) -> Decision {
        if !expired.is_empty() {
            let text: Vec<String> = expired.iter().map(Expired::describe).collect();
            self.audit_annotations
                .insert(AUDIT_EXEMPTION_EXPIRED.into(), short(&text.join("; ")));
            self.warnings
                .extend(text.iter().map(|t| format!("openclaw-admission: {t}")));
        }
        self.expired_exemptions = expired;
        self
    }

    /// Allowed without judging, and why.
    pub fn allow(skip: Skip) -> Decision {
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

/// Check ids with a reason each.
pub type Reasons = Vec<(String, String)>;

/// A policy exemption that matched the request but had expired, so the violations it names
/// were judged as if it did not exist.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expired {
    /// Its place in the policy's `exemptions` list.
    pub index: usize,
    pub reason: String,
    /// Its `expires`, as written in the policy.
    pub expires: String,
    /// The checks of this review it would have exempted.
    pub checks: Vec<String>,
}

impl Expired {
    /// `policy exemptions[0] ("legacy image") expired 2027-01-31 (read-only-root-filesystem)`
    pub fn describe(&self) -> String {
        let reason = if self.reason.is_empty() {
            String::new()
        } else {
            format!(" ({:?})", self.reason)
        };
        format!(
            "policy exemptions[{}]{reason} expired {}, not honoured for {}",
            self.index,
            self.expires,
            self.checks.join(",")
        )
    }
}

/// The decision for a pod or workload whose violations are judged: refused when any is
/// denied, else allowed with a warning for each one at `warn`; every exemption honoured or
/// refused and every approval recorded in the audit annotations.
pub fn judged(
    review: &Review,
    mode: Mode,
    violations: Vec<Judged>,
    exempted: Reasons,
    exemptions_refused: Reasons,
    granted: Option<Verified>,
) -> Decision {
    let mut d = Decision {
        allowed: true,
        mode: Some(mode),
        exempted,
        exemptions_refused,
        ..Default::default()
    };
    if let Some(v) = granted {
        d.audit_annotations
            .insert(AUDIT_APPROVAL.into(), short(&v.describe()));
        d.approvals.push(v);
    }
    let denied = violations.iter().any(|j| j.action == Action::Deny);
    if denied {
        d.allowed = false;
        d.message = Some(denial_message(review, &violations));
    } else {
        d.warnings = warnings(mode, &violations);
    }
    d.audit_annotations
        .insert(AUDIT_MODE.into(), mode.as_str().into());
    if !violations.is_empty() {
        d.audit_annotations
            .insert(AUDIT_VIOLATIONS.into(), violations_text(&violations));
    }
    if !d.exempted.is_empty() {
        d.audit_annotations
            .insert(AUDIT_EXEMPTED.into(), reasons_text(&d.exempted));
    }
    if !d.exemptions_refused.is_empty() {
        d.audit_annotations.insert(
            AUDIT_EXEMPTION_REFUSED.into(),
            reasons_text(&d.exemptions_refused),
        );
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

/// The decision for a CONNECT into an agent pod: the request is described in
/// [`AUDIT_EXEC`] whatever the outcome (with `(approver)` when an approver made it; a
/// credential in the command replaced by why it was taken out), and the violations are
/// answered as for pods.
pub fn connect(
    review: &Review,
    options: &ConnectOptions,
    policy: &Policy,
    mode: Mode,
    violations: Vec<Judged>,
) -> Decision {
    let user = &review.user;
    let what = review.sub_resource.as_deref().unwrap_or("connect");
    let pod = format!("{}/{}", review.namespace, review.name);
    let mut detail = format!("{what} by {} into pod {pod}", user.username);
    if let Some(c) = &options.container {
        detail.push_str(&format!(" container {c}"));
    }
    if !options.command.is_empty() {
        // The command goes to the API server's audit log: an argument the credential
        // detectors flag (`-H "Authorization: Bearer ..."`, `--api-key=...`, a URL with a
        // password) is recorded as what it is, never as its value.
        let command = redacted(&options.command, &policy.checks.credentials);
        detail.push_str(&format!(": {}", command.join(" ")));
    }
    if !options.ports.is_empty() {
        let ports: Vec<String> = options.ports.iter().map(i32::to_string).collect();
        detail.push_str(&format!(": ports {}", ports.join(",")));
    }
    let mut d = Decision {
        allowed: true,
        mode: Some(mode),
        ..Default::default()
    };
    d.audit_annotations
        .insert(AUDIT_MODE.into(), mode.as_str().into());
    if violations.is_empty() {
        if policy.is_approver(user) {
            detail.push_str(" (approver)");
        }
        d.audit_annotations
            .insert(AUDIT_EXEC.into(), short(&detail));
        return d;
    }
    d.audit_annotations
        .insert(AUDIT_VIOLATIONS.into(), violations_text(&violations));
    d.audit_annotations
        .insert(AUDIT_EXEC.into(), short(&detail));
    let denied: Vec<String> = violations
        .iter()
        .filter(|j| j.action == Action::Deny)
        .map(|j| j.violation.to_string())
        .collect();
    if !denied.is_empty() {
        d.allowed = false;
        d.message = Some(format!(
            "openclaw-admission refused {what} into pod {pod}: {}",
            denied.join("; ")
        ));
    } else {
        d.warnings = warnings(mode, &violations);
    }
    d.violations = violations;
    d
}

/// The decision for an agent workload's template sent to the mutating webhook: the stamp's
/// patch when an approver's exemption was stamped, a warning when it could not be.
pub fn stamped(mode: Mode, stamp: Stamp) -> Decision {
    let mut d = Decision {
        allowed: true,
        mode: Some(mode),
        ..Default::default()
    };
    match stamp {
        Stamp::Nothing => {}
        Stamp::Refused(why) => d.warnings.push(why),
        Stamp::Stamped { grant, patch } => {
            d.patch = Some(patch);
            d.mutations.push(APPROVAL_STAMP);
            d.audit_annotations
                .insert(AUDIT_MODE.into(), mode.as_str().into());
            d.audit_annotations.insert(
                AUDIT_APPROVAL.into(),
                short(&format!("stamped {}", grant.describe())),
            );
            d.approvals.push(Verified {
                grant: *grant,
                previous_key_until: None,
                legacy_until: None,
            });
        }
    }
    d
}

/// The decision for an agent Pod the mutations ran on: the patch of what they changed (in
/// audit mode only described, not applied), recorded in [`AUDIT_MUTATION`].
pub fn mutated(mode: Mode, applied: Vec<&'static str>, patch: Option<patch::Patch>) -> Decision {
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
    d
}

/// `check@path` for each violation, for [`AUDIT_VIOLATIONS`].
fn violations_text(violations: &[Judged]) -> String {
    let list: Vec<String> = violations
        .iter()
        .map(|j| format!("{}@{}", j.violation.check, j.violation.path))
        .collect();
    short(&list.join(","))
}

/// `check (why)` for each, for [`AUDIT_EXEMPTED`] and [`AUDIT_EXEMPTION_REFUSED`].
fn reasons_text(reasons: &Reasons) -> String {
    let list: Vec<String> = reasons
        .iter()
        .map(|(c, why)| format!("{c} ({why})"))
        .collect();
    short(&list.join("; "))
}

/// One warning per violation whose action is `warn`.
fn warnings(mode: Mode, violations: &[Judged]) -> Vec<String> {
    violations
        .iter()
        .filter(|j| j.action == Action::Warn)
        .map(|j| format!("openclaw-admission [{}]: {}", mode.as_str(), j.violation))
        .collect()
}

/// An audit annotation value, cut to [`AUDIT_VALUE_MAX`] bytes with a marker.
pub fn short(s: &str) -> String {
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
        Subject::SandboxRef(r) => r.kind().to_string(),
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
        Subject::Dependency(_) => review.kind.kind.clone(),
        _ if matches!(review.old_object, Subject::Dependency(_)) => review.kind.kind.clone(),
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
            Subject::SandboxRef(r) => r.metadata().name.clone().unwrap_or_default(),
            _ => String::new(),
        }
    } else {
        review.name.clone()
    };
    // Cluster-scoped objects (ClusterRoles, bindings) have no namespace to name.
    let mut msg = format!(
        "openclaw-admission refused {what} {}{name}: {} violation{}",
        if review.namespace.is_empty() {
            String::new()
        } else {
            format!("{}/", review.namespace)
        },
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

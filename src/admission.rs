//! AdmissionReview <-> engine: read the body once (`crate::wire`), decide, answer once.
//! Every readable review gets a review back with its uid, whatever goes wrong inside; a body
//! that cannot be read as a review gets HTTP 400 and a message.

use crate::engine::policy::Policy;
use crate::engine::review::{Review, Subject};
use crate::engine::view::ClusterView;
use crate::engine::{self, Decision};
use crate::wire;

pub use crate::wire::{API_VERSION, KIND, NotAReview as ReviewError};

/// Which webhook endpoint a review arrived at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    Validate,
    Mutate,
}

impl Endpoint {
    pub fn as_str(self) -> &'static str {
        match self {
            Endpoint::Validate => "validate",
            Endpoint::Mutate => "mutate",
        }
    }
}

/// What the server logs and counts about one review.
#[derive(Debug, Clone, Default)]
pub struct Summary {
    pub uid: String,
    pub namespace: String,
    pub name: String,
    pub kind: String,
    pub operation: String,
    pub dry_run: bool,
    /// `allowed`, `denied`, `skipped`, `invalid`, `error`
    pub result: &'static str,
    pub mutated: bool,
    pub mode: Option<&'static str>,
    pub violations: Vec<&'static str>,
    pub error: Option<String>,
    /// The requesting user (`userInfo.username`).
    pub user: String,
    /// The ServiceAccount the pod or pod template runs as, as stored (empty when unset).
    pub service_account: String,
    /// Risk tier of each entry of `violations`, in the same order.
    pub tiers: Vec<&'static str>,
    /// Checks exempted, as `check (reason)`; an approved annotation names its approver.
    pub exempted: Vec<String>,
    /// Exemption annotations not honoured, as `check (reason)`.
    pub exemptions_refused: Vec<String>,
    /// Mutations applied (or, in audit mode, that would have been).
    pub injected: Vec<&'static str>,
    /// Approval stamps honoured or written, each as its kind (`current`, `previous-key`,
    /// `legacy`, `stamped`) and its description (approver, checks, workload; no key material).
    pub approvals: Vec<(&'static str, String)>,
    /// Why the request was not judged (`not-judged`, `not-an-agent`, `operation`, `unchanged`).
    pub skipped: Option<&'static str>,
    /// Expired policy exemptions that matched and were ignored, each as its identity (place,
    /// reason and expiry, what the log says once) and its description.
    pub expired_exemptions: Vec<(String, String)>,
}

/// The answer to one HTTP body.
#[derive(Debug)]
pub struct Outcome {
    /// 200 for every readable review, 400 for a body that is not one.
    pub http_status: u16,
    pub body: Vec<u8>,
    pub summary: Summary,
}

impl Summary {
    /// What is known of a review before it is judged.
    fn of(review: &Review) -> Summary {
        Summary {
            uid: review.uid.clone(),
            namespace: review.namespace.clone(),
            name: review.name.clone(),
            kind: review.kind.kind.clone(),
            operation: wire::operation_str(&review.operation).to_string(),
            dry_run: review.dry_run,
            user: review.user.username.clone(),
            service_account: service_account_of(review).to_string(),
            ..Default::default()
        }
    }
}

/// Answers a body that is not a readable review.
pub fn invalid(err: &ReviewError) -> Outcome {
    let message = err.to_string();
    Outcome {
        http_status: 400,
        body: wire::cannot_judge("", 400, &message),
        summary: Summary {
            result: "invalid",
            error: Some(message),
            ..Default::default()
        },
    }
}

/// Reads a body into a review, or says why it cannot be judged (tests and tools; the server
/// goes through [`read`]).
pub fn parse(body: &[u8]) -> Result<Review, String> {
    match wire::read(body, unix_now()) {
        wire::Read::Review(r) => Ok(*r),
        wire::Read::Unjudgeable(u) => Err(u.message),
        wire::Read::NotAReview(e) => Err(e.to_string()),
    }
}

/// Seconds since the Unix epoch by this process's clock; the engine itself reads no clock.
pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// The review sent back for a decision.
fn respond(uid: &str, decision: &Decision) -> Vec<u8> {
    let denied = (!decision.allowed).then(|| wire::Status {
        code: 403,
        reason: "Forbidden",
        message: decision.message.as_deref().unwrap_or_default(),
    });
    wire::Response {
        uid,
        allowed: decision.allowed,
        status: denied,
        patch: decision.patch.as_ref().map(|p| p.0.as_slice()),
        warnings: &decision.warnings,
        audit_annotations: Some(&decision.audit_annotations).filter(|a| !a.is_empty()),
    }
    .to_body()
}

/// Refuses a readable review that cannot be judged, keeping its uid.
fn refuse(summary: Summary, message: String, code: u16) -> Outcome {
    Outcome {
        http_status: 200,
        body: wire::cannot_judge(&summary.uid, code, &message),
        summary: Summary {
            result: "error",
            error: Some(message),
            ..summary
        },
    }
}

/// Answers one HTTP body at one endpoint: parse once, decide, serialize.
pub fn handle(
    body: &[u8],
    endpoint: Endpoint,
    policy: &Policy,
    view: &impl ClusterView,
) -> Outcome {
    match read(body) {
        Ok(review) => answer(&review, endpoint, policy, view),
        Err(outcome) => *outcome,
    }
}

/// The review in a body, or the finished answer for a body that cannot be judged. With
/// [`answer`], for callers that prepare the view between reading and judging (the live
/// view confirms cache misses with the API server).
pub fn read(body: &[u8]) -> Result<Review, Box<Outcome>> {
    match wire::read(body, unix_now()) {
        wire::Read::Review(review) => Ok(*review),
        wire::Read::NotAReview(e) => Err(Box::new(invalid(&e))),
        wire::Read::Unjudgeable(u) => {
            let u = *u;
            let summary = Summary {
                uid: u.uid,
                namespace: u.namespace,
                name: u.name,
                kind: u.kind,
                operation: u.operation,
                dry_run: u.dry_run,
                ..Default::default()
            };
            Err(Box::new(refuse(summary, u.message, 400)))
        }
    }
}

/// Decides and serializes a review [`read`] from a body.
pub fn answer(
    review: &Review,
    endpoint: Endpoint,
    policy: &Policy,
    view: &impl ClusterView,
) -> Outcome {
    let mut summary = Summary::of(review);
    let decision = match endpoint {
        Endpoint::Validate => engine::evaluate(review, policy, view),
        Endpoint::Mutate => match engine::mutate(review, policy, view) {
            Ok(d) => d,
            Err(e) => {
                return refuse(
                    summary,
                    format!("openclaw-admission could not mutate: {e}"),
                    500,
                );
            }
        },
    };
    summary.result = if decision.skipped.is_some() {
        "skipped"
    } else if decision.allowed {
        "allowed"
    } else {
        "denied"
    };
    summary.mutated = decision.patch.is_some();
    summary.mode = decision.mode.map(|m| m.as_str());
    summary.violations = decision
        .violations
        .iter()
        .map(|j| j.violation.check)
        .collect();
    summary.tiers = decision
        .violations
        .iter()
        .map(|j| j.violation.tier.as_str())
        .collect();
    summary.exempted = reasons(&decision.exempted);
    summary.exemptions_refused = reasons(&decision.exemptions_refused);
    summary.skipped = decision.skipped.map(skip_str);
    summary.expired_exemptions = decision
        .expired_exemptions
        .iter()
        .map(|e| {
            (
                format!("{}\u{0}{}\u{0}{}", e.index, e.expires, e.reason),
                e.describe(),
            )
        })
        .collect();
    summary.approvals = decision
        .approvals
        .iter()
        .map(|v| (approval_kind(endpoint, v), v.describe()))
        .collect();
    let body = respond(&review.uid, &decision);
    summary.injected = decision.mutations;
    Outcome {
        http_status: 200,
        body,
        summary,
    }
}

/// How an approval stamp counted: written (the mutating webhook), or honoured under the
/// current key, the previous key, or as a legacy stamp.
fn approval_kind(endpoint: Endpoint, v: &engine::approval::grant::Verified) -> &'static str {
    if endpoint == Endpoint::Mutate {
        "stamped"
    } else if v.legacy_until.is_some() {
        "legacy"
    } else if v.previous_key_until.is_some() {
        "previous-key"
    } else {
        "current"
    }
}

fn reasons(list: &[(String, String)]) -> Vec<String> {
    list.iter().map(|(c, why)| format!("{c} ({why})")).collect()
}

fn skip_str(s: engine::Skip) -> &'static str {
    match s {
        engine::Skip::NotJudged => "not-judged",
        engine::Skip::NotAnAgent => "not-an-agent",
        engine::Skip::Operation => "operation",
        engine::Skip::Unchanged => "unchanged",
    }
}

/// The ServiceAccount named by the pod or template under review (empty when unset).
fn service_account_of(review: &Review) -> &str {
    let spec = match &review.object {
        Subject::Pod(p) => p.spec.as_ref(),
        Subject::Template(t) => t.template.spec.as_ref(),
        Subject::None
        | Subject::Other
        | Subject::SandboxRef(_)
        | Subject::Connect(_)
        | Subject::Dependency(_) => None,
    };
    spec.and_then(|s| {
        s.service_account_name
            .as_deref()
            .filter(|n| !n.is_empty())
            .or(s.service_account.as_deref())
    })
    .unwrap_or("")
}

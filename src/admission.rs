//! AdmissionReview JSON <-> engine. The request is parsed once: the envelope with the object
//! left raw, then the object straight into its typed struct when it is a kind the engine
//! judges. Every readable review gets a review back with its uid, whatever goes wrong
//! inside; a body that cannot be read as a review gets HTTP 400 and a message.

use crate::engine::policy::Policy;
use crate::engine::review::{
    GroupVersionKind, GroupVersionResource, Operation, Review, Subject, User,
};
use crate::engine::view::ClusterView;
use crate::engine::{self, Decision};
use kube::core::admission::AdmissionResponse;
use kube::core::response::Status;
use serde::Deserialize;
use serde_json::value::RawValue;

pub const API_VERSION: &str = "admission.k8s.io/v1";
pub const KIND: &str = "AdmissionReview";

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

/// Why a body could not be read as an AdmissionReview (HTTP 400).
#[derive(Debug, thiserror::Error)]
pub enum ReviewError {
    #[error("request body is empty; expected an admission.k8s.io/v1 AdmissionReview")]
    Empty,
    #[error("request body is not a JSON AdmissionReview: {0}")]
    NotJson(serde_json::Error),
    #[error("AdmissionReview has no request")]
    NoRequest,
    #[error("AdmissionReview request has no uid")]
    NoUid,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawReview<'a> {
    #[serde(default)]
    api_version: String,
    #[serde(default)]
    kind: String,
    #[serde(borrow)]
    request: Option<RawRequest<'a>>,
}

#[derive(Deserialize, Default)]
struct RawUser {
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    groups: Option<Vec<String>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawRequest<'a> {
    #[serde(default)]
    uid: Option<String>,
    kind: Option<GroupVersionKind>,
    resource: Option<GroupVersionResource>,
    #[serde(default)]
    sub_resource: Option<String>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    namespace: Option<String>,
    operation: Option<Operation>,
    #[serde(default)]
    user_info: Option<RawUser>,
    #[serde(default, borrow)]
    object: Option<&'a RawValue>,
    #[serde(default, borrow)]
    old_object: Option<&'a RawValue>,
    #[serde(default)]
    dry_run: Option<bool>,
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
    /// Why the request was not judged (`not-judged`, `not-an-agent`, `operation`, `unchanged`).
    pub skipped: Option<&'static str>,
}

/// The answer to one HTTP body.
#[derive(Debug)]
pub struct Outcome {
    /// 200 for every readable review, 400 for a body that is not one.
    pub http_status: u16,
    pub body: Vec<u8>,
    pub summary: Summary,
}

/// A response that starts from the request: uid kept, allowed until decided otherwise.
fn response_for(uid: &str) -> AdmissionResponse {
    let mut r = AdmissionResponse::invalid("");
    r.uid = uid.to_string();
    r.allowed = true;
    r.result = Status::default();
    r
}

fn review_bytes(mut resp: AdmissionResponse) -> Vec<u8> {
    // kube-core serializes `patch` (a Vec<u8>) as an array of numbers; the API documents a
    // base64 string (Go's []byte), so the patch is put back in that form.
    let patch = resp.patch.take();
    let encoded = match patch {
        None => serde_json::to_vec(&resp.into_review()),
        Some(p) => serde_json::to_value(resp.into_review()).and_then(|mut v| {
            if let Some(r) = v.get_mut("response").and_then(|r| r.as_object_mut()) {
                r.insert("patch".into(), serde_json::Value::String(base64_encode(&p)));
            }
            serde_json::to_vec(&v)
        }),
    };
    // A response holds only strings, bools and maps; serialization cannot fail, but if it
    // ever did, the fallback is still a readable review that refuses.
    encoded.unwrap_or_else(|e| {
        format!(
            r#"{{"apiVersion":"{API_VERSION}","kind":"{KIND}","response":{{"uid":"","allowed":false,"status":{{"code":500,"message":"cannot serialize response: {}"}}}}}}"#,
            e.to_string().replace('"', "'")
        )
        .into_bytes()
    })
}

/// Standard base64 with padding (the engine stays free of server-side dependencies).
fn base64_encode(bytes: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(A[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Answers a body that is not a readable review.
pub fn invalid(err: &ReviewError) -> Outcome {
    let mut r = AdmissionResponse::invalid(err.to_string());
    r.result.code = 400;
    Outcome {
        http_status: 400,
        body: review_bytes(r),
        summary: Summary {
            result: "invalid",
            error: Some(err.to_string()),
            ..Default::default()
        },
    }
}

/// Parses a body into a typed review. Errors that still leave a uid come back as
/// `Ok(Err((uid, message)))` so that the caller can answer them with a review.
pub fn parse(body: &[u8]) -> Result<Result<Review, (Summary, String)>, ReviewError> {
    if body.iter().all(|b| b.is_ascii_whitespace()) {
        return Err(ReviewError::Empty);
    }
    let raw: RawReview<'_> = serde_json::from_slice(body).map_err(ReviewError::NotJson)?;
    let req = raw.request.ok_or(ReviewError::NoRequest)?;
    let uid = req
        .uid
        .clone()
        .filter(|u| !u.is_empty())
        .ok_or(ReviewError::NoUid)?;
    let mut summary = Summary {
        uid: uid.clone(),
        namespace: req.namespace.clone().unwrap_or_default(),
        name: req.name.clone().unwrap_or_default(),
        kind: req
            .kind
            .as_ref()
            .map(|k| k.kind.clone())
            .unwrap_or_default(),
        operation: req
            .operation
            .as_ref()
            .map(|o| format!("{o:?}").to_uppercase())
            .unwrap_or_default(),
        dry_run: req.dry_run.unwrap_or(false),
        ..Default::default()
    };
    if raw.api_version != API_VERSION || raw.kind != KIND {
        return Ok(Err((
            summary,
            format!(
                "unsupported review {}/{}; this webhook answers {API_VERSION} {KIND} (admissionReviewVersions: [v1])",
                if raw.api_version.is_empty() {
                    "<none>"
                } else {
                    &raw.api_version
                },
                if raw.kind.is_empty() {
                    "<none>"
                } else {
                    &raw.kind
                }
            ),
        )));
    }
    let (Some(kind), Some(resource), Some(operation)) = (req.kind, req.resource, req.operation)
    else {
        return Ok(Err((
            summary,
            "AdmissionReview request lacks kind, resource or operation".into(),
        )));
    };
    let parse_obj = |raw: Option<&RawValue>, which: &str| -> Result<Subject, String> {
        match raw {
            None => Ok(Subject::None),
            Some(r) if r.get() == "null" => Ok(Subject::None),
            Some(r) => Subject::parse(&kind.kind, r.get())
                .map_err(|e| format!("cannot read the {} in request.{which}: {e}", kind.kind)),
        }
    };
    let object = match parse_obj(req.object, "object") {
        Ok(o) => o,
        Err(m) => return Ok(Err((summary, m))),
    };
    let old_object = match parse_obj(req.old_object, "oldObject") {
        Ok(o) => o,
        Err(m) => return Ok(Err((summary, m))),
    };
    let user = req.user_info.unwrap_or_default();
    let mut namespace = req.namespace.unwrap_or_default();
    if namespace.is_empty() {
        if let Subject::Pod(p) = &object {
            namespace = p.metadata.namespace.clone().unwrap_or_default();
        }
        summary.namespace = namespace.clone();
    }
    Ok(Ok(Review {
        uid,
        kind,
        resource,
        sub_resource: req.sub_resource.filter(|s| !s.is_empty()),
        operation,
        namespace,
        name: req.name.unwrap_or_default(),
        user: User {
            username: user.username.unwrap_or_default(),
            groups: user.groups.unwrap_or_default(),
        },
        dry_run: req.dry_run.unwrap_or(false),
        object,
        old_object,
        now: unix_now(),
    }))
}

/// Seconds since the Unix epoch by this process's clock; the engine itself reads no clock.
pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// Turns a decision into the review sent back.
pub fn respond(
    review: &Review,
    decision: Decision,
) -> Result<AdmissionResponse, serde_json::Error> {
    // Takes the decision by value: its message, warnings and patch move into the response.
    let mut r = response_for(&review.uid);
    r.allowed = decision.allowed;
    if !decision.allowed {
        r.result.code = 403;
        r.result.reason = "Forbidden".into();
        r.result.message = decision.message.unwrap_or_default();
    }
    if !decision.warnings.is_empty() {
        r.warnings = Some(decision.warnings);
    }
    r.audit_annotations = decision.audit_annotations.into_iter().collect();
    if let Some(p) = decision.patch {
        r = r
            .with_patch(p)
            .map_err(|e| serde_json::Error::io(std::io::Error::other(e.to_string())))?;
    }
    Ok(r)
}

/// Refuses a readable review that cannot be judged, keeping its uid.
fn refuse(summary: Summary, message: String, code: u16) -> Outcome {
    let mut r = response_for(&summary.uid);
    r.allowed = false;
    r.result.code = code;
    r.result.message = message.clone();
    r.result.reason = if code == 400 {
        "BadRequest".into()
    } else {
        "InternalError".into()
    };
    Outcome {
        http_status: 200,
        body: review_bytes(r),
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
    match parse(body) {
        Ok(Ok(review)) => Ok(review),
        Err(e) => Err(Box::new(invalid(&e))),
        Ok(Err((summary, message))) => Err(Box::new(refuse(summary, message, 400))),
    }
}

/// Decides and serializes a review [`read`] from a body.
pub fn answer(
    review: &Review,
    endpoint: Endpoint,
    policy: &Policy,
    view: &impl ClusterView,
) -> Outcome {
    let mut summary = Summary {
        uid: review.uid.clone(),
        namespace: review.namespace.clone(),
        name: review.name.clone(),
        kind: review.kind.kind.clone(),
        operation: format!("{:?}", review.operation).to_uppercase(),
        dry_run: review.dry_run,
        user: review.user.username.clone(),
        service_account: service_account_of(review).to_string(),
        ..Default::default()
    };
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
    summary.injected = decision.mutations.clone();
    summary.skipped = decision.skipped.map(skip_str);
    match respond(review, decision) {
        Ok(r) => Outcome {
            http_status: 200,
            body: review_bytes(r),
            summary,
        },
        Err(e) => refuse(
            summary,
            format!("openclaw-admission could not encode its answer: {e}"),
            500,
        ),
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
        Subject::None | Subject::Other | Subject::Connect(_) => None,
    };
    spec.and_then(|s| {
        s.service_account_name
            .as_deref()
            .filter(|n| !n.is_empty())
            .or(s.service_account.as_deref())
    })
    .unwrap_or("")
}

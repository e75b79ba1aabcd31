//! The AdmissionReview wire format, both directions, for `admission.k8s.io/v1`.
//!
//! In: the envelope is read once from the request body, borrowing its strings where they
//! carry no escapes; the object and old object are kept as raw JSON slices of the body and
//! read straight into the engine's types by [`Subject::parse`], which skips every field no
//! check or mutation reads (`managedFields`). Nothing else of the request is built.
//!
//! Out: one typed response, serialized straight to the body. The patch is JSON written once
//! and base64-encoded once (the API's `[]byte`), with no intermediate JSON value of the
//! whole review.
//!
//! Every answer is a review: a body that is not one gets an empty uid and HTTP 400 (or the
//! status the server chose), a readable review that cannot be judged keeps its uid.

use crate::engine::review::{
    GroupVersionKind, GroupVersionResource, Operation, Review, Subject, User,
};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use std::borrow::Cow;
use std::collections::BTreeMap;

pub const API_VERSION: &str = "admission.k8s.io/v1";
pub const KIND: &str = "AdmissionReview";

/// Why a body could not be read as an AdmissionReview (HTTP 400, no uid to answer with).
#[derive(Debug, thiserror::Error)]
pub enum NotAReview {
    #[error("request body is empty; expected an admission.k8s.io/v1 AdmissionReview")]
    Empty,
    #[error("request body is not a JSON AdmissionReview: {0}")]
    NotJson(serde_json::Error),
    #[error("AdmissionReview has no request")]
    NoRequest,
    #[error("AdmissionReview request has no uid")]
    NoUid,
}

/// A readable review that cannot be judged: what is known of it, and why.
#[derive(Debug)]
pub struct Unjudgeable {
    pub uid: String,
    pub namespace: String,
    pub name: String,
    pub kind: String,
    pub operation: String,
    pub dry_run: bool,
    pub message: String,
}

/// What reading a body gives.
#[derive(Debug)]
pub enum Read {
    Review(Box<Review>),
    Unjudgeable(Box<Unjudgeable>),
    NotAReview(NotAReview),
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawReview<'a> {
    #[serde(default, borrow)]
    api_version: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    kind: Option<Cow<'a, str>>,
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

/// The operation as the API server spells it.
pub fn operation_str(op: &Operation) -> &'static str {
    match op {
        Operation::Create => "CREATE",
        Operation::Update => "UPDATE",
        Operation::Delete => "DELETE",
        Operation::Connect => "CONNECT",
    }
}

/// Reads a body. `now` (seconds since the epoch, the caller's clock) goes into the review.
pub fn read(body: &[u8], now: i64) -> Read {
    if body.iter().all(|b| b.is_ascii_whitespace()) {
        return Read::NotAReview(NotAReview::Empty);
    }
    let raw: RawReview<'_> = match serde_json::from_slice(body) {
        Ok(r) => r,
        Err(e) => return Read::NotAReview(NotAReview::NotJson(e)),
    };
    let Some(req) = raw.request else {
        return Read::NotAReview(NotAReview::NoRequest);
    };
    let Some(uid) = req.uid.filter(|u| !u.is_empty()) else {
        return Read::NotAReview(NotAReview::NoUid);
    };
    let mut namespace = req.namespace.unwrap_or_default();
    let name = req.name.unwrap_or_default();
    let dry_run = req.dry_run.unwrap_or(false);
    let unjudgeable = |namespace: String, message: String| {
        Read::Unjudgeable(Box::new(Unjudgeable {
            uid: uid.clone(),
            namespace,
            name: name.clone(),
            kind: req
                .kind
                .as_ref()
                .map(|k| k.kind.clone())
                .unwrap_or_default(),
            operation: req
                .operation
                .as_ref()
                .map(operation_str)
                .unwrap_or_default()
                .to_string(),
            dry_run,
            message,
        }))
    };
    let api_version = raw.api_version.as_deref().unwrap_or_default();
    let kind = raw.kind.as_deref().unwrap_or_default();
    if api_version != API_VERSION || kind != KIND {
        let or_none = |s: &str| if s.is_empty() { "<none>" } else { s }.to_string();
        return unjudgeable(
            namespace,
            format!(
                "unsupported review {}/{}; this webhook answers {API_VERSION} {KIND} (admissionReviewVersions: [v1])",
                or_none(api_version),
                or_none(kind)
            ),
        );
    }
    let (Some(gvk), Some(resource), Some(operation)) = (&req.kind, &req.resource, &req.operation)
    else {
        return unjudgeable(
            namespace,
            "AdmissionReview request lacks kind, resource or operation".into(),
        );
    };
    let parse_obj = |raw: Option<&RawValue>, which: &str| -> Result<Subject, String> {
        match raw {
            None => Ok(Subject::None),
            Some(r) if r.get() == "null" => Ok(Subject::None),
            Some(r) => Subject::parse(&gvk.kind, r.get())
                .map_err(|e| format!("cannot read the {} in request.{which}: {e}", gvk.kind)),
        }
    };
    let object = match parse_obj(req.object, "object") {
        Ok(o) => o,
        Err(m) => return unjudgeable(namespace, m),
    };
    let old_object = match parse_obj(req.old_object, "oldObject") {
        Ok(o) => o,
        Err(m) => return unjudgeable(namespace, m),
    };
    if let (true, Subject::Pod(p)) = (namespace.is_empty(), &object) {
        namespace = p.metadata.namespace.clone().unwrap_or_default();
    }
    let user = req.user_info.unwrap_or_default();
    Read::Review(Box::new(Review {
        uid,
        kind: gvk.clone(),
        resource: resource.clone(),
        sub_resource: req.sub_resource.filter(|s| !s.is_empty()),
        operation: operation.clone(),
        namespace,
        name,
        user: User {
            username: user.username.unwrap_or_default(),
            groups: user.groups.unwrap_or_default(),
        },
        dry_run,
        object,
        old_object,
        now,
    }))
}

/// The `status` of a response that is not a plain allow.
#[derive(Serialize, Debug, Default)]
pub struct Status<'a> {
    #[serde(skip_serializing_if = "is_zero")]
    pub code: u16,
    #[serde(skip_serializing_if = "str::is_empty")]
    pub reason: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    pub message: &'a str,
}

fn is_zero(n: &u16) -> bool {
    *n == 0
}

/// One response, borrowed from what the engine decided.
#[derive(Serialize, Debug, Default)]
#[serde(rename_all = "camelCase")]
pub struct Response<'a> {
    pub uid: &'a str,
    pub allowed: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<Status<'a>>,
    /// JSON Patch operations; written as base64 of their JSON with `patchType: JSONPatch`.
    #[serde(skip)]
    pub patch: Option<&'a [json_patch::PatchOperation]>,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    pub warnings: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    pub audit_annotations: Option<&'a BTreeMap<String, String>>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Envelope<'a> {
    api_version: &'static str,
    kind: &'static str,
    response: WithPatch<'a>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct WithPatch<'a> {
    #[serde(flatten)]
    response: &'a Response<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    patch: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    patch_type: Option<&'static str>,
}

impl Response<'_> {
    /// The review's bytes. Serializing borrowed strings, bools and a map cannot fail; if the
    /// patch ever could not be written, the answer says so and refuses.
    pub fn to_body(&self) -> Vec<u8> {
        let patch = match self.patch.map(serde_json::to_vec).transpose() {
            Ok(p) => p.map(|json| BASE64.encode(json)),
            Err(e) => {
                let message = format!("openclaw-admission could not encode its patch: {e}");
                return Response {
                    uid: self.uid,
                    allowed: false,
                    status: Some(Status {
                        code: 500,
                        reason: "InternalError",
                        message: &message,
                    }),
                    ..Default::default()
                }
                .to_body();
            }
        };
        let envelope = Envelope {
            api_version: API_VERSION,
            kind: KIND,
            response: WithPatch {
                response: self,
                patch_type: patch.as_ref().map(|_| "JSONPatch"),
                patch,
            },
        };
        let mut out = Vec::with_capacity(256);
        if let Err(e) = serde_json::to_writer(&mut out, &envelope) {
            // Unreachable for these types; still a readable review, never a panic.
            out = format!(
                r#"{{"apiVersion":"{API_VERSION}","kind":"{KIND}","response":{{"uid":"","allowed":false,"status":{{"code":500,"message":"cannot serialize response: {}"}}}}}}"#,
                e.to_string().replace(['"', '\\'], "'")
            )
            .into_bytes();
        }
        out
    }
}

/// The one way to say "this review cannot be judged": refused with `code` and `message`,
/// answering `uid` (empty when the body had none).
pub fn cannot_judge(uid: &str, code: u16, message: &str) -> Vec<u8> {
    Response {
        uid,
        allowed: false,
        status: Some(Status {
            code,
            reason: reason_for(code),
            message,
        }),
        ..Default::default()
    }
    .to_body()
}

/// The `reason` the API defines for an HTTP status the webhook uses.
fn reason_for(code: u16) -> &'static str {
    match code {
        400 => "BadRequest",
        403 => "Forbidden",
        408 => "Timeout",
        413 => "RequestEntityTooLarge",
        429 | 503 => "ServiceUnavailable",
        _ => "InternalError",
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    #[test]
    fn a_patch_is_base64_json_with_its_type_and_the_rest_is_plain() {
        let ops: Vec<json_patch::PatchOperation> =
            serde_json::from_value(json!([{"op": "add", "path": "/a", "value": "é\""}])).unwrap();
        let annotations = BTreeMap::from([("k".to_string(), "v".to_string())]);
        let warnings = vec!["careful".to_string()];
        let body = Response {
            uid: "u-1",
            allowed: true,
            patch: Some(&ops),
            warnings: &warnings,
            audit_annotations: Some(&annotations),
            ..Default::default()
        }
        .to_body();
        let v: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["apiVersion"], API_VERSION);
        assert_eq!(v["kind"], KIND);
        let r = &v["response"];
        assert_eq!(r["uid"], "u-1");
        assert_eq!(r["allowed"], true);
        assert_eq!(r["patchType"], "JSONPatch");
        assert_eq!(r["warnings"], json!(["careful"]));
        assert_eq!(r["auditAnnotations"], json!({"k": "v"}));
        assert!(r.get("status").is_none());
        let decoded = BASE64.decode(r["patch"].as_str().unwrap()).unwrap();
        let back: Value = serde_json::from_slice(&decoded).unwrap();
        assert_eq!(back, json!([{"op": "add", "path": "/a", "value": "é\""}]));
    }

    #[test]
    fn cannot_judge_keeps_the_uid_and_escapes_the_message() {
        let body = cannot_judge("u-2", 400, "bad \"thing\"\nhere");
        let v: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["response"]["uid"], "u-2");
        assert_eq!(v["response"]["allowed"], false);
        assert_eq!(v["response"]["status"]["code"], 400);
        assert_eq!(v["response"]["status"]["reason"], "BadRequest");
        assert_eq!(v["response"]["status"]["message"], "bad \"thing\"\nhere");
    }

    #[test]
    fn reading_sorts_bodies_into_reviews_unjudgeable_ones_and_others() {
        assert!(matches!(
            read(b"  ", 0),
            Read::NotAReview(NotAReview::Empty)
        ));
        assert!(matches!(
            read(b"[1", 0),
            Read::NotAReview(NotAReview::NotJson(_))
        ));
        assert!(matches!(
            read(b"{}", 0),
            Read::NotAReview(NotAReview::NoRequest)
        ));
        assert!(matches!(
            read(br#"{"request": {"uid": ""}}"#, 0),
            Read::NotAReview(NotAReview::NoUid)
        ));
        match read(
            br#"{"apiVersion": "admission.k8s.io/v1beta1", "kind": "AdmissionReview", "request": {"uid": "x", "name": "n"}}"#,
            0,
        ) {
            Read::Unjudgeable(u) => {
                assert_eq!(u.uid, "x");
                assert_eq!(u.name, "n");
                assert!(u.message.contains("admission.k8s.io/v1beta1/AdmissionReview"), "{}", u.message);
            }
            other => panic!("{other:?}"),
        }
        // An escaped string in the envelope is read, not refused.
        let body = br#"{"apiVersion": "admission.k8s.io\/v1", "kind": "AdmissionReview", "request": {"uid": "x",
            "kind": {"group": "", "version": "v1", "kind": "Pod"}, "resource": {"group": "", "version": "v1", "resource": "pods"},
            "operation": "DELETE", "namespace": "ns"}}"#;
        match read(body, 7) {
            Read::Review(r) => {
                assert_eq!(r.namespace, "ns");
                assert_eq!(r.now, 7);
                assert_eq!(r.object, Subject::None);
            }
            other => panic!("{other:?}"),
        }
    }
}

//! The AdmissionReview wire format, both directions, for `admission.k8s.io/v1`.
//!
//! In: the body is read in one pass, borrowing the envelope's strings where they carry no
//! escapes; once the request's `kind` is known the object and old object are read straight
//! into the engine's types ([`Subject::deserialize_as`], [`crate::engine::pod`]), skipping
//! every field no check or mutation reads (`managedFields`, probes, resources, scheduling,
//! status, ...). Nothing else of the request is built. A body the one
//! pass cannot take (an object that does not fit its type, a repeated field) is read again
//! in two passes, which name what is wrong and keep the uid.
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

/// An object of the request: built in the envelope's pass, or kept raw to be read once the
/// kind is known.
enum Obj<'a> {
    Raw(Option<&'a RawValue>),
    Read(Subject),
}

/// The request's fields, however they were read.
struct Request<'a> {
    uid: Option<String>,
    kind: Option<GroupVersionKind>,
    resource: Option<GroupVersionResource>,
    sub_resource: Option<String>,
    name: Option<String>,
    namespace: Option<String>,
    operation: Option<Operation>,
    user_info: Option<RawUser>,
    object: Obj<'a>,
    old_object: Obj<'a>,
    dry_run: Option<bool>,
}

impl<'a> From<RawRequest<'a>> for Request<'a> {
    fn from(r: RawRequest<'a>) -> Self {
        Request {
            uid: r.uid,
            kind: r.kind,
            resource: r.resource,
            sub_resource: r.sub_resource,
            name: r.name,
            namespace: r.namespace,
            operation: r.operation,
            user_info: r.user_info,
            object: Obj::Raw(r.object),
            old_object: Obj::Raw(r.old_object),
            dry_run: r.dry_run,
        }
    }
}

/// The envelope read in one pass over the body: when the request's `kind` comes before its
/// objects (the API server writes it first), each object is read straight into the engine's
/// types as the parser reaches it, instead of being scanned once to keep it raw and again to
/// read it. Any error (a malformed object, a duplicate field) sends the body to the
/// two-pass reader, [`RawReview`], which says precisely what is wrong and keeps the uid.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct OnePassReview<'a> {
    #[serde(default, borrow)]
    api_version: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    kind: Option<Cow<'a, str>>,
    #[serde(borrow)]
    request: Option<OnePassRequest<'a>>,
}

struct OnePassRequest<'a>(Request<'a>);

impl<'de: 'a, 'a> Deserialize<'de> for OnePassRequest<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(OnePassVisitor(std::marker::PhantomData))
    }
}

struct OnePassVisitor<'a>(std::marker::PhantomData<&'a ()>);

/// Reads one object of a known kind, `null` being none.
struct SubjectSeed<'k>(&'k str);

impl<'de> serde::de::DeserializeSeed<'de> for SubjectSeed<'_> {
    type Value = Subject;
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Subject, D::Error> {
        d.deserialize_option(self)
    }
}

impl<'de> serde::de::Visitor<'de> for SubjectSeed<'_> {
    type Value = Subject;
    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "a {} or null", self.0)
    }
    fn visit_none<E: serde::de::Error>(self) -> Result<Subject, E> {
        Ok(Subject::None)
    }
    fn visit_unit<E: serde::de::Error>(self) -> Result<Subject, E> {
        Ok(Subject::None)
    }
    fn visit_some<D: serde::Deserializer<'de>>(self, d: D) -> Result<Subject, D::Error> {
        Subject::deserialize_as(self.0, d)
    }
}

impl<'de: 'a, 'a> serde::de::Visitor<'de> for OnePassVisitor<'a> {
    type Value = OnePassRequest<'a>;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("an AdmissionReview request")
    }

    fn visit_map<M: serde::de::MapAccess<'de>>(self, mut map: M) -> Result<Self::Value, M::Error> {
        use serde::de::Error as _;
        let mut r = Request {
            uid: None,
            kind: None,
            resource: None,
            sub_resource: None,
            name: None,
            namespace: None,
            operation: None,
            user_info: None,
            object: Obj::Raw(None),
            old_object: Obj::Raw(None),
            dry_run: None,
        };
        // Fields seen, so that a repeated one is an error here as it is for the derived
        // reader (which then reports it).
        let mut seen: Vec<&'de str> = Vec::with_capacity(16);
        // Keys with escapes cannot be borrowed: an error, and the two-pass reader takes over.
        while let Some(key) = map.next_key::<&'de str>()? {
            if seen.contains(&key) {
                return Err(M::Error::custom(format_args!("duplicate field `{key}`")));
            }
            seen.push(key);
            match key {
                "uid" => r.uid = map.next_value()?,
                "kind" => r.kind = map.next_value()?,
                "resource" => r.resource = map.next_value()?,
                "subResource" => r.sub_resource = map.next_value()?,
                "name" => r.name = map.next_value()?,
                "namespace" => r.namespace = map.next_value()?,
                "operation" => r.operation = map.next_value()?,
                "userInfo" => r.user_info = map.next_value()?,
                "dryRun" => r.dry_run = map.next_value()?,
                "object" | "oldObject" => {
                    let obj = match &r.kind {
                        Some(gvk) => Obj::Read(map.next_value_seed(SubjectSeed(&gvk.kind))?),
                        None => Obj::Raw(map.next_value()?),
                    };
                    if key == "object" {
                        r.object = obj;
                    } else {
                        r.old_object = obj;
                    }
                }
                _ => {
                    map.next_value::<serde::de::IgnoredAny>()?;
                }
            }
        }
        Ok(OnePassRequest(r))
    }
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
    read_with(body, now, true)
}

fn read_with(body: &[u8], now: i64, one_pass: bool) -> Read {
    if body.iter().all(|b| b.is_ascii_whitespace()) {
        return Read::NotAReview(NotAReview::Empty);
    }
    // UTF-8 checked once for the whole body, so the reader need not check string by string
    // (serde_json's slice reader does, at every string it returns); a body that is not
    // UTF-8 goes to the two-pass reader, which names where it breaks.
    let fast = one_pass
        .then(|| std::str::from_utf8(body).ok())
        .flatten()
        .and_then(|text| serde_json::from_str::<OnePassReview<'_>>(text).ok());
    let (api_version, kind, request) = match fast {
        Some(r) => (r.api_version, r.kind, r.request.map(|r| r.0)),
        None => match serde_json::from_slice::<RawReview<'_>>(body) {
            Ok(r) => (r.api_version, r.kind, r.request.map(Request::from)),
            Err(e) => return Read::NotAReview(NotAReview::NotJson(e)),
        },
    };
    let Some(req) = request else {
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
    let api_version = api_version.as_deref().unwrap_or_default();
    let kind = kind.as_deref().unwrap_or_default();
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
    let parse_obj = |obj: Obj<'_>, which: &str| -> Result<Subject, String> {
        match obj {
            Obj::Read(subject) => Ok(subject),
            Obj::Raw(None) => Ok(Subject::None),
            Obj::Raw(Some(r)) if r.get() == "null" => Ok(Subject::None),
            Obj::Raw(Some(r)) => Subject::parse(&gvk.kind, r.get())
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
    pub patch: Option<&'a [crate::engine::patch::Op]>,
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
    response: &'a Response<'a>,
}

impl Response<'_> {
    /// The review's bytes. Serializing borrowed strings, bools and a map cannot fail; if the
    /// patch ever could not be written, the answer says so and refuses.
    pub fn to_body(&self) -> Vec<u8> {
        let refuse = |e: &dyn std::fmt::Display| {
            let message = format!("openclaw-admission could not encode its patch: {e}");
            Response {
                uid: self.uid,
                allowed: false,
                status: Some(Status {
                    code: 500,
                    reason: "InternalError",
                    message: &message,
                }),
                ..Default::default()
            }
            .to_body()
        };
        let patch = match self.patch.map(serde_json::to_vec).transpose() {
            Ok(p) => p,
            Err(e) => return refuse(&e),
        };
        let envelope = Envelope {
            api_version: API_VERSION,
            kind: KIND,
            response: self,
        };
        let patch_len = patch.as_ref().map_or(0, |p| p.len() / 3 * 4 + 64);
        let mut out = Vec::with_capacity(256 + patch_len);
        if let Err(e) = serde_json::to_writer(&mut out, &envelope) {
            // Unreachable for these types; still a readable review, never a panic.
            return format!(
                r#"{{"apiVersion":"{API_VERSION}","kind":"{KIND}","response":{{"uid":"","allowed":false,"status":{{"code":500,"message":"cannot serialize response: {}"}}}}}}"#,
                e.to_string().replace(['"', '\\'], "'")
            )
            .into_bytes();
        }
        if let Some(json) = patch {
            // `"patch":"<base64>","patchType":"JSONPatch"` goes at the end of the response
            // object, encoded straight into the body: base64 needs no escaping, so the text
            // is not run through serde_json's string escaper (4.5 KB for the bench pod's
            // patch). The envelope just written ends with the response's closing brace and
            // its own.
            let Some(len) = base64::encoded_len(json.len(), true) else {
                return refuse(&"the patch is too large to encode");
            };
            if !out.ends_with(b"}}") {
                return refuse(&"the response did not end as expected");
            }
            out.truncate(out.len() - 2);
            out.extend_from_slice(br#","patch":""#);
            let start = out.len();
            out.resize(start + len, 0);
            // `len` is the padded length base64-simd writes too, so `encode` has its room.
            let n = base64_simd::STANDARD
                .encode(&json, base64_simd::Out::from_slice(&mut out[start..]))
                .len();
            out.truncate(start + n);
            out.extend_from_slice(br#"","patchType":"JSONPatch"}}"#);
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
    use base64::Engine as _;
    use base64::engine::general_purpose::STANDARD as BASE64;
    use serde_json::{Value, json};

    #[test]
    fn a_patch_is_base64_json_with_its_type_and_the_rest_is_plain() {
        let ops = vec![crate::engine::patch::Op::Add {
            path: "/a".parse().unwrap(),
            value: crate::engine::patch::Json::of("é\"").unwrap(),
        }];
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

    /// The one-pass reader and the two-pass one agree on every fixture review, on a review
    /// whose kind comes after its object, and on one whose object does not fit its type.
    #[test]
    fn the_one_pass_reader_agrees_with_the_two_pass_reader() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/reviews");
        let mut bodies: Vec<Vec<u8>> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .map(|p| std::fs::read(p).unwrap())
            .collect();
        assert!(bodies.len() >= 5, "{} fixtures", bodies.len());
        let pod = json!({"metadata": {"name": "p", "labels": {"app": "openclaw"}},
            "spec": {"containers": [{"name": "c", "image": "i"}]}});
        let kind = json!({"group": "", "version": "v1", "kind": "Pod"});
        let resource = json!({"group": "", "version": "v1", "resource": "pods"});
        let envelope = |request: Value| {
            serde_json::to_vec(
                &json!({"apiVersion": API_VERSION, "kind": KIND, "request": request}),
            )
            .unwrap()
        };
        // Object before kind: kept raw, read once the kind is known.
        let late_kind = format!(
            r#"{{"apiVersion":"{API_VERSION}","kind":"{KIND}","request":{{"uid":"u","object":{pod},"kind":{kind},"resource":{resource},"operation":"CREATE","namespace":"ns"}}}}"#
        );
        bodies.push(late_kind.into_bytes());
        // An object that does not fit: the one pass fails, the two-pass reader keeps the uid.
        bodies.push(envelope(
            json!({"uid": "u", "kind": kind, "resource": resource,
            "operation": "CREATE", "object": {"spec": {"containers": "not a list"}}}),
        ));
        bodies.push(envelope(
            json!({"uid": "u", "kind": kind, "resource": resource,
            "operation": "DELETE", "object": null, "oldObject": pod}),
        ));
        for body in &bodies {
            let one = format!("{:?}", read_with(body, 1, true));
            let two = format!("{:?}", read_with(body, 1, false));
            assert_eq!(one, two, "{}", String::from_utf8_lossy(body));
        }
        match read(bodies.last().unwrap(), 1) {
            Read::Review(r) => assert!(matches!(r.old_object, Subject::Pod(_))),
            other => panic!("{other:?}"),
        }
        match read(&bodies[bodies.len() - 2], 1) {
            Read::Unjudgeable(u) => {
                assert_eq!(u.uid, "u");
                assert!(u.message.contains("request.object"), "{}", u.message);
            }
            other => panic!("{other:?}"),
        }
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

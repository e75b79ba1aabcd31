//! The signed grant: what an approver granted (namespace, workload kind and name, checks,
//! approver, optional expiry), written as a stamp with an HMAC-SHA256 under the webhook's
//! key, and read back only when the HMAC holds.

use crate::engine::date::format_utc;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The signed grant, in the pod template's annotations.
pub const APPROVAL_ANNOTATION: &str = "openclaw.io/approval";
/// Optional expiry an approver puts beside the exemption annotation (RFC 3339, UTC:
/// `2027-01-31T00:00:00Z`, or a date `2027-01-31`).
pub const EXPIRY_ANNOTATION: &str = "openclaw.io/exempt-until";
const VERSION: &str = "v1";

/// What an approver granted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    pub namespace: String,
    /// One of [`crate::engine::review::WORKLOAD_KINDS`] (`Deployment`, `ReplicationController`, ...).
    pub kind: String,
    pub name: String,
    /// Sorted, without duplicates.
    pub checks: Vec<String>,
    pub approver: String,
    /// Seconds since the Unix epoch; `None` for no expiry.
    pub expires: Option<i64>,
}

/// Why a stamp was not honoured.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Invalid {
    #[error("the approval stamp is malformed")]
    Malformed,
    #[error("the approval stamp's signature does not verify")]
    Signature,
    #[error("no approval key is configured, so no stamp can be verified")]
    NoKey,
}

impl Grant {
    pub fn new(
        namespace: &str,
        kind: &str,
        name: &str,
        checks: impl IntoIterator<Item = String>,
        approver: &str,
        expires: Option<i64>,
    ) -> Grant {
        let mut checks: Vec<String> = checks.into_iter().collect();
        checks.sort();
        checks.dedup();
        Grant {
            namespace: namespace.into(),
            kind: kind.into(),
            name: name.into(),
            checks,
            approver: approver.into(),
            expires,
        }
    }

    /// The signed text: fields joined by `;`, each `key=value`. Values come from object
    /// names, check ids and user names; `;` cannot occur in the first two, and a user name
    /// carrying it is refused at stamping ([`Grant::stamp`] returns `None`).
    fn payload(&self) -> String {
        format!(
            "{VERSION};ns={};kind={};name={};checks={};approver={};expires={}",
            self.namespace,
            self.kind,
            self.name,
            self.checks.join(","),
            self.approver,
            self.expires
                .map_or_else(|| "never".to_string(), |e| e.to_string()),
        )
    }

    /// The annotation value: payload and signature.
    pub fn stamp(&self, key: &[u8]) -> Option<String> {
        let fields = [&self.namespace, &self.kind, &self.name, &self.approver];
        if fields.iter().any(|f| f.contains(';') || f.contains('='))
            || self.checks.iter().any(|c| c.contains([';', ',', '=']))
        {
            return None;
        }
        let payload = self.payload();
        let sig = sign(key, &payload)?;
        Some(format!("{payload};sig={sig}"))
    }

    /// Reads and verifies a stamp.
    pub fn verify(value: &str, key: Option<&[u8]>) -> Result<Grant, Invalid> {
        let key = key.ok_or(Invalid::NoKey)?;
        let (payload, sig) = value.rsplit_once(";sig=").ok_or(Invalid::Malformed)?;
        let grant = parse_payload(payload).ok_or(Invalid::Malformed)?;
        // Compare through the MAC's own constant-time check.
        let mut mac = Hmac::<Sha256>::new_from_slice(key).map_err(|_| Invalid::NoKey)?;
        mac.update(payload.as_bytes());
        let sig = from_hex(sig).ok_or(Invalid::Malformed)?;
        mac.verify_slice(&sig).map_err(|_| Invalid::Signature)?;
        Ok(grant)
    }

    pub fn expired(&self, now: i64) -> bool {
        // An unknown clock (0) honours no expiring grant.
        self.expires.is_some_and(|e| now == 0 || now >= e)
    }

    /// `alice: read-only-root-filesystem,seccomp-profile on Deployment agents/x until ...`
    pub fn describe(&self) -> String {
        let until = self
            .expires
            .map_or_else(String::new, |e| format!(" until {}", format_utc(e)));
        format!(
            "{}: {} on {} {}/{}{until}",
            self.approver,
            self.checks.join(","),
            self.kind,
            self.namespace,
            self.name
        )
    }
}

fn parse_payload(payload: &str) -> Option<Grant> {
    let mut parts = payload.split(';');
    if parts.next()? != VERSION {
        return None;
    }
    let mut field = |key: &str| -> Option<String> {
        let (k, v) = parts.next()?.split_once('=')?;
        (k == key).then(|| v.to_string())
    };
    let namespace = field("ns")?;
    let kind = field("kind")?;
    let name = field("name")?;
    let checks = field("checks")?;
    let approver = field("approver")?;
    let expires = match field("expires")?.as_str() {
        "never" => None,
        e => Some(e.parse().ok()?),
    };
    if parts.next().is_some() {
        return None;
    }
    Some(Grant {
        namespace,
        kind,
        name,
        checks: checks
            .split(',')
            .filter(|c| !c.is_empty())
            .map(String::from)
            .collect(),
        approver,
        expires,
    })
}

fn sign(key: &[u8], payload: &str) -> Option<String> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).ok()?;
    mac.update(payload.as_bytes());
    Some(to_hex(&mac.finalize().into_bytes()))
}

// Hex by hand: 64 characters of a MAC do not justify another dependency in the pure engine.
fn to_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 0xf)]));
    }
    s
}

fn from_hex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    const KEY: &[u8] = b"test-approval-key-0123456789abcdef";

    fn grant() -> Grant {
        Grant::new(
            "agents",
            "Deployment",
            "browser",
            [
                "seccomp-profile".to_string(),
                "read-only-root-filesystem".to_string(),
            ],
            "alice",
            None,
        )
    }

    #[test]
    fn a_stamp_verifies_under_its_key_and_reads_back_the_grant() {
        let stamp = grant().stamp(KEY).unwrap();
        assert!(stamp.contains("checks=read-only-root-filesystem,seccomp-profile"));
        assert_eq!(Grant::verify(&stamp, Some(KEY)).unwrap(), grant());
    }

    #[test]
    fn a_stamp_is_the_same_every_time() {
        assert_eq!(grant().stamp(KEY), grant().stamp(KEY));
    }

    #[test]
    fn a_widened_or_moved_stamp_does_not_verify() {
        let stamp = grant().stamp(KEY).unwrap();
        for forged in [
            stamp.replace("checks=", "checks=run-as-non-root,"),
            stamp.replace("ns=agents", "ns=other"),
            stamp.replace("name=browser", "name=miner"),
            stamp.replace("expires=never", "expires=99999999999"),
        ] {
            assert_eq!(
                Grant::verify(&forged, Some(KEY)),
                Err(Invalid::Signature),
                "{forged}"
            );
        }
        assert_eq!(
            Grant::verify(&stamp, Some(b"another-key")),
            Err(Invalid::Signature)
        );
        assert_eq!(Grant::verify(&stamp, None), Err(Invalid::NoKey));
        assert_eq!(
            Grant::verify("v1;ns=a;sig=zz", Some(KEY)),
            Err(Invalid::Malformed)
        );
    }

    #[test]
    fn separators_in_a_field_refuse_to_stamp() {
        let mut g = grant();
        g.approver = "eve;checks=all".into();
        assert_eq!(g.stamp(KEY), None);
    }

    #[test]
    fn expiry_is_judged_against_the_callers_clock() {
        let mut g = grant();
        g.expires = crate::engine::date::parse_utc("2027-01-31T00:00:00Z").ok();
        assert_eq!(g.expires, Some(1_801_353_600));
        assert!(!g.expired(1_801_353_599));
        assert!(g.expired(1_801_353_600));
        assert!(g.expired(0), "an unknown clock honours no expiring grant");
        assert!(!grant().expired(0));
    }
}

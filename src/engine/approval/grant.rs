//! The signed grant: what an approver granted (namespace, workload kind and name, checks,
//! approver, when it was signed, when it expires, and the digest of the pod template they
//! approved), written as a stamp with an HMAC-SHA256 under the webhook's key, and read back
//! only when the HMAC holds under the current key, or under the previous one while its
//! rotation overlap lasts.
//!
//! Stamps of the first format (`v1`) signed no digest and could lack an expiry; they are read
//! as legacy grants, which `matching` honours only for a grace period after the upgrade.

use crate::engine::date::format_utc;
use crate::engine::policy::{ApprovalKey, Policy, PreviousKey};
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The signed grant, in the pod template's annotations.
pub const APPROVAL_ANNOTATION: &str = "openclaw.io/approval";
/// Optional expiry an approver puts beside the exemption annotation (a date `2027-01-31`, or
/// `2027-01-31T00:00:00Z`, UTC; `src/engine/date.rs`), capped by `approvals.maxLifetime`.
pub const EXPIRY_ANNOTATION: &str = "openclaw.io/exempt-until";
/// The format written today: digest and expiry always present.
const VERSION: &str = "v2";
/// The format before content digests, still read (as legacy) during the upgrade's grace.
const LEGACY_VERSION: &str = "v1";

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
    /// When it was signed, seconds since the Unix epoch; `None` only in legacy stamps.
    pub issued: Option<i64>,
    /// Seconds since the Unix epoch; `None` (no expiry) only in legacy stamps.
    pub expires: Option<i64>,
    /// Hex SHA-256 of the approved pod template (`digest`); `None` only in legacy stamps.
    pub digest: Option<String>,
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

/// The keys a stamp may verify under: the current one, and the one before the last rotation
/// until its overlap ends.
#[derive(Clone, Copy, Default)]
pub struct Keys<'a> {
    pub current: Option<&'a [u8]>,
    pub previous: Option<&'a PreviousKey>,
}

impl<'a> Keys<'a> {
    pub fn of(policy: &'a Policy) -> Keys<'a> {
        Keys {
            current: policy.approval_key.as_deref().map(ApprovalKey::bytes),
            previous: policy.previous_approval_key.as_deref(),
        }
    }
}

/// A grant whose stamp verified, and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    pub grant: Grant,
    /// Signed by the previous key, accepted until this moment (the end of the overlap).
    pub previous_key_until: Option<i64>,
    /// A legacy stamp (no digest), honoured until this moment (the upgrade's grace); set by
    /// `matching` once it is honoured.
    pub legacy_until: Option<i64>,
}

impl Verified {
    /// For the `openclaw-approval` audit annotation and the logs: the grant, and how old a
    /// key or format it was honoured under, so that what needs re-approving is visible.
    pub fn describe(&self) -> String {
        let mut s = self.grant.describe();
        if let Some(until) = self.previous_key_until {
            s.push_str(&format!(
                " (signed by the previous approval key, accepted until {}; re-approve to re-sign)",
                format_utc(until)
            ));
        }
        if let Some(until) = self.legacy_until {
            s.push_str(&format!(
                " (legacy stamp without a content digest, honoured until {}; re-approve)",
                format_utc(until)
            ));
        }
        s
    }
}

impl Grant {
    /// A grant of the current format.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        namespace: &str,
        kind: &str,
        name: &str,
        checks: impl IntoIterator<Item = String>,
        approver: &str,
        issued: i64,
        expires: i64,
        digest: String,
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
            issued: Some(issued),
            expires: Some(expires),
            digest: Some(digest),
        }
    }

    /// A stamp of the first format, without a content digest.
    pub fn is_legacy(&self) -> bool {
        self.digest.is_none()
    }

    /// When it stops being honoured under a policy whose `maxLifetime` is `cap` seconds: its
    /// own expiry, and never later than `cap` after it was signed (a lowered cap shortens
    /// stamps already out there). `None` only for a legacy stamp without an expiry.
    pub fn expires_at(&self, cap: i64) -> Option<i64> {
        let capped = self.issued.map(|i| i.saturating_add(cap));
        match (self.expires, capped) {
            (Some(e), Some(c)) => Some(e.min(c)),
            (e, c) => e.or(c),
        }
    }

    /// The signed text: fields joined by `;`, each `key=value`. Values come from object
    /// names, check ids, user names, numbers and hex; `;` cannot occur in the first two, and
    /// a user name carrying it is refused at stamping ([`Grant::stamp`] returns `None`).
    fn payload(&self) -> Option<String> {
        let base = format!(
            "ns={};kind={};name={};checks={};approver={}",
            self.namespace,
            self.kind,
            self.name,
            self.checks.join(","),
            self.approver,
        );
        Some(format!(
            "{VERSION};{base};issued={};expires={};digest={}",
            self.issued?,
            self.expires?,
            self.digest.as_deref()?
        ))
    }

    /// The annotation value: payload and signature. Only grants of the current format are
    /// signed; a legacy grant is never written again.
    pub fn stamp(&self, key: &[u8]) -> Option<String> {
        let fields = [&self.namespace, &self.kind, &self.name, &self.approver];
        if fields.iter().any(|f| f.contains(';') || f.contains('='))
            || self.checks.iter().any(|c| c.contains([';', ',', '=']))
        {
            return None;
        }
        let payload = self.payload()?;
        let sig = sign(key, &payload)?;
        Some(format!("{payload};sig={sig}"))
    }

    /// Reads and verifies a stamp under the current key, or under the previous key while
    /// `now` is before the end of its overlap.
    pub fn verify(value: &str, keys: Keys<'_>, now: i64) -> Result<Verified, Invalid> {
        let (payload, sig) = value.rsplit_once(";sig=").ok_or(Invalid::Malformed)?;
        let grant = parse_payload(payload).ok_or(Invalid::Malformed)?;
        let sig = from_hex(sig).ok_or(Invalid::Malformed)?;
        let current = keys.current.ok_or(Invalid::NoKey)?;
        if mac_holds(current, payload, &sig)? {
            return Ok(Verified {
                grant,
                previous_key_until: None,
                legacy_until: None,
            });
        }
        // The previous key only while its overlap lasts; an unknown clock (0) never.
        if let Some(prev) = keys.previous
            && now > 0
            && now < prev.until
            && mac_holds(&prev.key, payload, &sig)?
        {
            return Ok(Verified {
                grant,
                previous_key_until: Some(prev.until),
                legacy_until: None,
            });
        }
        Err(Invalid::Signature)
    }

    /// The grant a stamp claims, without verifying it: for listing (`audit` holds no key),
    /// never for honouring. `None` when it does not read as a stamp.
    pub fn read_unverified(value: &str) -> Option<Grant> {
        let (payload, _) = value.rsplit_once(";sig=")?;
        parse_payload(payload)
    }

    /// Whether a stamp is of the first format, without verifying it (`audit` lists them
    /// without holding the key).
    pub fn is_legacy_stamp(value: &str) -> bool {
        value.split(';').next() == Some(LEGACY_VERSION)
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

/// Compares through the MAC's own constant-time check.
fn mac_holds(key: &[u8], payload: &str, sig: &[u8]) -> Result<bool, Invalid> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).map_err(|_| Invalid::NoKey)?;
    mac.update(payload.as_bytes());
    Ok(mac.verify_slice(sig).is_ok())
}

fn parse_payload(payload: &str) -> Option<Grant> {
    let mut parts = payload.split(';');
    let legacy = match parts.next()? {
        VERSION => false,
        LEGACY_VERSION => true,
        _ => return None,
    };
    let mut field = |key: &str| -> Option<String> {
        let (k, v) = parts.next()?.split_once('=')?;
        (k == key).then(|| v.to_string())
    };
    let namespace = field("ns")?;
    let kind = field("kind")?;
    let name = field("name")?;
    let checks = field("checks")?;
    let approver = field("approver")?;
    let (issued, expires, digest) = if legacy {
        let expires = match field("expires")?.as_str() {
            "never" => None,
            e => Some(e.parse().ok()?),
        };
        (None, expires, None)
    } else {
        let issued = field("issued")?.parse().ok()?;
        let expires = field("expires")?.parse().ok()?;
        let digest = field("digest")?;
        if digest.len() != 64 || !digest.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        (Some(issued), Some(expires), Some(digest))
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
        issued,
        expires,
        digest,
    })
}

fn sign(key: &[u8], payload: &str) -> Option<String> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).ok()?;
    mac.update(payload.as_bytes());
    Some(to_hex(&mac.finalize().into_bytes()))
}

// Hex by hand: 64 characters of a MAC do not justify another dependency in the pure engine.
pub(super) fn to_hex(bytes: &[u8]) -> String {
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
    const OLD_KEY: &[u8] = b"the-key-before-the-rotation-0123456789";
    const DIGEST: &str = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
    const NOW: i64 = 1_800_000_000;

    fn keys() -> Keys<'static> {
        Keys {
            current: Some(KEY),
            previous: None,
        }
    }

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
            NOW,
            NOW + 86_400,
            DIGEST.into(),
        )
    }

    /// A stamp as the first format wrote it, signed under `key`.
    fn legacy(key: &[u8], expires: &str) -> String {
        let payload = format!(
            "v1;ns=agents;kind=Deployment;name=browser;checks=read-only-root-filesystem;approver=alice;expires={expires}"
        );
        format!("{payload};sig={}", sign(key, &payload).unwrap())
    }

    #[test]
    fn a_stamp_verifies_under_its_key_and_reads_back_the_grant() {
        let stamp = grant().stamp(KEY).unwrap();
        assert!(stamp.starts_with("v2;"));
        assert!(stamp.contains("checks=read-only-root-filesystem,seccomp-profile"));
        assert!(stamp.contains(&format!("digest={DIGEST}")));
        let v = Grant::verify(&stamp, keys(), NOW).unwrap();
        assert_eq!(v.grant, grant());
        assert_eq!(v.previous_key_until, None);
        assert!(!v.grant.is_legacy());
        assert!(!Grant::is_legacy_stamp(&stamp));
    }

    #[test]
    fn a_stamp_is_the_same_every_time() {
        assert_eq!(grant().stamp(KEY), grant().stamp(KEY));
    }

    #[test]
    fn a_widened_moved_lengthened_or_redigested_stamp_does_not_verify() {
        let stamp = grant().stamp(KEY).unwrap();
        for forged in [
            stamp.replace("checks=", "checks=run-as-non-root,"),
            stamp.replace("ns=agents", "ns=other"),
            stamp.replace("name=browser", "name=miner"),
            stamp.replace(&format!("expires={}", NOW + 86_400), "expires=99999999999"),
            stamp.replace(&format!("issued={NOW}"), "issued=99999999999"),
            stamp.replace(DIGEST, &DIGEST.replace('0', "f")),
        ] {
            assert_ne!(forged, stamp);
            assert_eq!(
                Grant::verify(&forged, keys(), NOW),
                Err(Invalid::Signature),
                "{forged}"
            );
        }
        let other = Keys {
            current: Some(b"another-key"),
            previous: None,
        };
        assert_eq!(Grant::verify(&stamp, other, NOW), Err(Invalid::Signature));
        assert_eq!(
            Grant::verify(&stamp, Keys::default(), NOW),
            Err(Invalid::NoKey)
        );
        for malformed in [
            "v1;ns=a;sig=zz",
            "v3;ns=a;sig=00",
            &stamp.replace(DIGEST, "abc"),
            &stamp.replace(";sig=", ";extra=1;sig="),
        ] {
            assert_eq!(
                Grant::verify(malformed, keys(), NOW),
                Err(Invalid::Malformed),
                "{malformed}"
            );
        }
    }

    #[test]
    fn separators_in_a_field_refuse_to_stamp() {
        let mut g = grant();
        g.approver = "eve;checks=all".into();
        assert_eq!(g.stamp(KEY), None);
    }

    #[test]
    fn a_legacy_grant_is_never_signed_again() {
        let mut g = grant();
        g.digest = None;
        assert_eq!(g.stamp(KEY), None);
    }

    #[test]
    fn the_previous_key_verifies_only_until_its_overlap_ends() {
        let old_stamp = grant().stamp(OLD_KEY).unwrap();
        let prev = PreviousKey {
            key: OLD_KEY.to_vec(),
            until: NOW + 100,
        };
        let rotated = Keys {
            current: Some(KEY),
            previous: Some(&prev),
        };
        let v = Grant::verify(&old_stamp, rotated, NOW).unwrap();
        assert_eq!(v.previous_key_until, Some(NOW + 100));
        assert!(v.describe().contains("signed by the previous approval key"));
        assert_eq!(
            Grant::verify(&old_stamp, rotated, NOW + 100),
            Err(Invalid::Signature)
        );
        assert_eq!(
            Grant::verify(&old_stamp, rotated, 0),
            Err(Invalid::Signature),
            "an unknown clock accepts no previous key"
        );
        // Stamps of the current key are unaffected by the rotation.
        let new_stamp = grant().stamp(KEY).unwrap();
        assert_eq!(
            Grant::verify(&new_stamp, rotated, NOW + 100)
                .unwrap()
                .previous_key_until,
            None
        );
        // And without the previous key configured, its stamps are revoked.
        assert_eq!(
            Grant::verify(&old_stamp, keys(), NOW),
            Err(Invalid::Signature)
        );
    }

    #[test]
    fn legacy_stamps_read_as_legacy_grants() {
        for (expires, want) in [("never", None), ("1801353600", Some(1_801_353_600))] {
            let stamp = legacy(KEY, expires);
            assert!(Grant::is_legacy_stamp(&stamp));
            let v = Grant::verify(&stamp, keys(), NOW).unwrap();
            assert!(v.grant.is_legacy());
            assert_eq!(v.grant.expires, want);
            assert_eq!(v.grant.issued, None);
        }
    }

    #[test]
    fn expiry_is_capped_by_the_lifetime_since_signing() {
        let g = grant();
        assert_eq!(g.expires_at(30 * 86_400), Some(NOW + 86_400));
        assert_eq!(g.expires_at(3_600), Some(NOW + 3_600), "a lowered cap");
        let old = Verified {
            grant: Grant::verify(&legacy(KEY, "never"), keys(), NOW)
                .unwrap()
                .grant,
            previous_key_until: None,
            legacy_until: Some(NOW),
        };
        assert_eq!(old.grant.expires_at(3_600), None);
        assert!(
            old.describe()
                .contains("legacy stamp without a content digest")
        );
    }

    #[test]
    fn expiry_dates_come_from_the_one_date_reader() {
        assert_eq!(
            crate::engine::date::parse_utc("2027-01-31T00:00:00Z"),
            Ok(1_801_353_600)
        );
    }
}

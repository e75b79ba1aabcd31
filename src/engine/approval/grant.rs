//! The signed grant: what an approver granted (namespace, workload kind and name, checks,
//! approver, optional expiry), written as a stamp with an HMAC-SHA256 under the webhook's
//! key, and read back only when the HMAC holds.

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
    /// `Deployment`, `StatefulSet`, `DaemonSet`, `ReplicaSet`, `Job` or `CronJob`.
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

/// Parses `2027-01-31T00:00:00Z` or `2027-01-31` (UTC) into Unix seconds.
///
/// Written here rather than taken from a time crate: the engine stays free of clock-reading
/// dependencies, and the one format the annotation accepts needs only the civil-date
/// arithmetic below.
pub fn parse_utc(s: &str) -> Option<i64> {
    let s = s.trim();
    let (date, time) = match s.split_once('T') {
        Some((d, t)) => (d, Some(t.strip_suffix('Z')?)),
        None => (s, None),
    };
    let mut d = date.split('-');
    let (y, m, day): (i64, i64, i64) = (
        d.next()?.parse().ok()?,
        d.next()?.parse().ok()?,
        d.next()?.parse().ok()?,
    );
    if d.next().is_some() || !(1..=12).contains(&m) || !(1..=31).contains(&day) {
        return None;
    }
    let secs = match time {
        None => 0,
        Some(t) => {
            let mut p = t.split(':');
            let (h, mi, se): (i64, i64, i64) = (
                p.next()?.parse().ok()?,
                p.next()?.parse().ok()?,
                p.next()?.parse().ok()?,
            );
            if p.next().is_some() || h > 23 || mi > 59 || se > 60 {
                return None;
            }
            h * 3600 + mi * 60 + se
        }
    };
    Some(days_from_civil(y, m, day) * 86_400 + secs)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn format_utc(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Inverse of days_from_civil.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
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
        g.expires = parse_utc("2027-01-31T00:00:00Z");
        assert_eq!(g.expires, Some(1_801_353_600));
        assert!(!g.expired(1_801_353_599));
        assert!(g.expired(1_801_353_600));
        assert!(g.expired(0), "an unknown clock honours no expiring grant");
        assert!(!grant().expired(0));
        assert_eq!(parse_utc("2027-01-31"), Some(1_801_353_600));
        assert_eq!(format_utc(1_801_353_600), "2027-01-31T00:00:00Z");
        assert_eq!(parse_utc("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(parse_utc("2024-02-29T12:30:05Z"), Some(1_709_209_805));
        for bad in [
            "2027-13-01",
            "tomorrow",
            "2027-01-31T25:00:00Z",
            "2027-01-31T00:00:00",
        ] {
            assert_eq!(parse_utc(bad), None, "{bad}");
        }
    }
}

//! `no-plaintext-credentials` (high): no env var carries a literal credential, where anyone
//! who can read the pod (or its workload, or an audit log) would see it. A variable is
//! flagged by its name (a credential-like name with a literal value) or by its value's shape
//! (a provider key prefix, a JWT, a PEM private key). Messages name the variable and its
//! container; the value is never copied anywhere.

use super::{CheckInput, containers};
use crate::engine::policy::{CredentialSettings, glob_match};
use crate::engine::violation::{Tier, Violation};

pub const ID: &str = "no-plaintext-credentials";
const TIER: Tier = Tier::High;

/// Keys shorter than this are too short to be real, so a bare `sk-` is not flagged.
const MIN_KEY_LEN: usize = 16;
/// Characters after a provider prefix needed before the value counts as a key.
const MIN_AFTER_PREFIX: usize = 8;

fn token_chars(s: &str) -> bool {
    s.bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'/' | b'+' | b'='))
}

fn base64url(s: &str) -> bool {
    s.bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'='))
}

fn looks_like_jwt(v: &str) -> bool {
    let parts: Vec<&str> = v.split('.').collect();
    v.starts_with("eyJ")
        && parts.len() == 3
        && !parts[0].is_empty()
        && !parts[1].is_empty()
        && parts.iter().all(|p| base64url(p))
}

/// `-----BEGIN [RSA |EC |OPENSSH |ENCRYPTED ]PRIVATE KEY-----`, also when the newlines were
/// flattened into one line.
fn looks_like_pem_private_key(v: &str) -> bool {
    const BEGIN: &str = "-----BEGIN ";
    v.match_indices(BEGIN).any(|(i, _)| {
        v[i + BEGIN.len()..]
            .split("-----")
            .next()
            .is_some_and(|label| label.ends_with("PRIVATE KEY"))
    })
}

fn has_provider_prefix(v: &str, prefixes: &[String]) -> bool {
    v.len() >= MIN_KEY_LEN
        && token_chars(v)
        && prefixes.iter().any(|p| {
            !p.is_empty() && v.starts_with(p.as_str()) && v.len() - p.len() >= MIN_AFTER_PREFIX
        })
}

/// A value that is only a `$(OTHER_VAR)` reference holds no credential itself.
fn is_reference(v: &str) -> bool {
    v.starts_with("$(") && v.ends_with(')') && !v[2..v.len() - 1].contains(['(', ')'])
}

/// Why a literal env var looks like a credential, in words that never quote the value.
fn reason(name: &str, value: &str, s: &CredentialSettings) -> Option<String> {
    if value.is_empty() || is_reference(value) {
        return None;
    }
    if let Some(p) = s.name_patterns.iter().find(|p| glob_match(p, name))
        && !s.name_exceptions.iter().any(|e| glob_match(e, name))
    {
        return Some(format!("its name matches {p}"));
    }
    if has_provider_prefix(value, &s.value_prefixes) {
        return Some("its value has the shape of a provider API key".into());
    }
    if looks_like_jwt(value) {
        return Some("its value is a JWT".into());
    }
    if looks_like_pem_private_key(value) {
        return Some("its value is a PEM private key".into());
    }
    None
}

pub fn check(input: &CheckInput<'_>) -> Vec<Violation> {
    let t = &input.target;
    let settings = &input.policy.checks.credentials;
    let mut out = Vec::new();
    for c in containers(t.spec, t.spec_path) {
        for (i, e) in c.env.iter().enumerate() {
            if e.value_from.is_some() {
                continue;
            }
            let Some(why) = e
                .value
                .as_deref()
                .and_then(|v| reason(&e.name, v, settings))
            else {
                continue;
            };
            out.push(Violation::new(
                ID,
                TIER,
                format!("{}.env[{i}]", c.path),
                format!("env var {} of container {} holds a literal credential ({why})", e.name, c.name),
                "store it in a Secret (or the Secrets Store CSI volume) and use valueFrom.secretKeyRef",
            ));
        }
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::engine::checks::fixtures::*;

    const ANTHROPIC_KEY: &str = "sk-ant-api03-Zx9qW2mP4kL8vN1bT6yR3cF5hJ7dG0sA";

    #[test]
    fn passes_hardened_pod_with_secret_ref_and_harmless_values() {
        let p = hardened()
            .with_container("agent")
            .env("LOG_LEVEL", "debug")
            .env("OAUTH_TOKEN_URL", "https://auth.example.com/token")
            .env("GITHUB_TOKEN", "")
            .env("API_TOKEN", "$(GITHUB_TOKEN)")
            .env("PREFIX", "sk-")
            .env("NOTE", "sk-learn is a library")
            .build();
        assert!(
            run_default(check, &p).is_empty(),
            "{:?}",
            run_default(check, &p)
        );
    }

    #[test]
    fn rejects_literal_value_under_credential_name() {
        let p = hardened()
            .with_container("agent")
            .env("LOG_LEVEL", "info")
            .env("DB_PASSWORD", "hunter2hunter2")
            .build();
        let v = run_default(check, &p);
        // hardened() puts one env var (the secretKeyRef) first.
        assert_eq!(paths(&v), ["spec.containers[0].env[2]"]);
        assert_eq!(v[0].tier, Tier::High);
        assert!(v[0].message.contains("DB_PASSWORD") && v[0].message.contains("agent"));
    }

    #[test]
    fn rejects_provider_key_under_harmless_name_and_never_repeats_it() {
        let p = hardened()
            .with_container("agent")
            .env("LLM_CONFIG", ANTHROPIC_KEY)
            .build();
        let v = run_default(check, &p);
        assert_eq!(paths(&v), ["spec.containers[0].env[1]"]);
        let shown = format!("{v:?} {} {}", v[0], serde_json::to_string(&v).unwrap());
        assert!(!shown.contains(ANTHROPIC_KEY));
        assert!(!shown.contains("Zx9qW2mP4kL8"));
    }

    #[test]
    fn value_never_appears_for_a_name_match() {
        let secret = "correct-horse-battery-staple";
        let p = hardened()
            .with_container("agent")
            .env("OPENAI_API_KEY", secret)
            .build();
        let v = run_default(check, &p);
        assert_eq!(v.len(), 1);
        assert!(!format!("{v:?} {}", v[0]).contains(secret));
    }

    #[test]
    fn rejects_jwt_and_pem_private_key_values() {
        let jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhZ2VudCJ9.c2lnbmF0dXJlX2J5dGVz";
        let pem = "-----BEGIN RSA PRIVATE KEY-----\nMIIEow\n-----END RSA PRIVATE KEY-----";
        let flat =
            "-----BEGIN OPENSSH PRIVATE KEY-----b3BlbnNzaC1rZXk=-----END OPENSSH PRIVATE KEY-----";
        let cert = "-----BEGIN CERTIFICATE-----\nMIIBszCCAVmg\n-----END CERTIFICATE-----";
        let p = hardened()
            .with_container("agent")
            .env("SESSION", jwt)
            .env("TLS_MATERIAL", pem)
            .env("SSH_MATERIAL", flat)
            .env("CA_BUNDLE", cert)
            .build();
        let v = run_default(check, &p);
        assert_eq!(
            paths(&v),
            [
                "spec.containers[0].env[1]",
                "spec.containers[0].env[2]",
                "spec.containers[0].env[3]"
            ]
        );
        assert!(v[0].message.contains("JWT") && v[1].message.contains("PEM"));
    }

    #[test]
    fn name_exceptions_win_over_patterns() {
        let p = hardened()
            .with_container("agent")
            .env("VAULT_TOKEN_PATH", "/var/run/vault/token")
            .build();
        assert!(run_default(check, &p).is_empty());
    }

    #[test]
    fn rejects_credentials_in_init_and_ephemeral_containers() {
        let p = hardened()
            .init_container("setup")
            .env("GITHUB_TOKEN", "ghp_0123456789abcdefghijABCDEFGHIJ0123")
            .ephemeral_container("debug")
            .env("ANTHROPIC_API_KEY", ANTHROPIC_KEY)
            .build();
        let v = run_default(check, &p);
        assert_eq!(
            paths(&v),
            [
                "spec.initContainers[0].env[0]",
                "spec.ephemeralContainers[0].env[0]"
            ]
        );
    }
}

//! Certificates for the webhook: a small CA and a serving certificate it signs, as PEM.
//!
//! The API server calls the webhook over TLS and checks the serving certificate against the
//! `caBundle` of the webhook configuration, so a cluster without cert-manager needs both
//! halves. The `certs` subcommand writes them; the TLS tests make fresh pairs in a temporary
//! directory with the same functions, so the code path a user runs is the one tested.

use base64::Engine as _;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType,
};
use std::fs;
use std::io::Write;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

/// File names written by [`write_files`], the names a `kubernetes.io/tls` Secret uses.
pub const CA_CERT_FILE: &str = "ca.crt";
pub const CA_KEY_FILE: &str = "ca.key";
pub const TLS_CERT_FILE: &str = "tls.crt";
pub const TLS_KEY_FILE: &str = "tls.key";

#[derive(Debug, thiserror::Error)]
pub enum CertsError {
    #[error("cannot make certificate: {0}")]
    Generate(#[from] rcgen::Error),
    #[error("a serving certificate needs at least one DNS name or IP address")]
    NoNames,
    #[error("invalid DNS name {name:?}: {message}")]
    BadName { name: String, message: String },
    #[error("validity of {0} days is out of range (1 to 36500)")]
    BadDays(u32),
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// A certificate authority able to sign serving certificates.
pub struct Ca {
    pub cert_pem: String,
    pub key_pem: String,
    issuer: Issuer<'static, KeyPair>,
}

impl std::fmt::Debug for Ca {
    // The key never goes to a log or a panic message.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ca")
            .field("cert_pem", &self.cert_pem)
            .finish_non_exhaustive()
    }
}

/// A serving certificate and its key, PEM.
pub struct Issued {
    pub cert_pem: String,
    pub key_pem: String,
}

impl std::fmt::Debug for Issued {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Issued")
            .field("cert_pem", &self.cert_pem)
            .finish_non_exhaustive()
    }
}

fn validity(params: &mut CertificateParams, days: u32) -> Result<(), CertsError> {
    if days == 0 || days > 36_500 {
        return Err(CertsError::BadDays(days));
    }
    // Backdated a little so that a node whose clock lags still accepts a fresh certificate.
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now - time::Duration::minutes(5);
    params.not_after = now + time::Duration::days(i64::from(days));
    Ok(())
}

/// Makes a self-signed CA (ECDSA P-256) valid for `days`.
pub fn generate_ca(common_name: &str, days: u32) -> Result<Ca, CertsError> {
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, common_name);
    dn.push(DnType::OrganizationName, "openclaw-admission");
    params.distinguished_name = dn;
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    validity(&mut params, days)?;
    let key = KeyPair::generate()?;
    let cert = params.self_signed(&key)?;
    let key_pem = key.serialize_pem();
    Ok(Ca {
        cert_pem: cert.pem(),
        key_pem,
        issuer: Issuer::new(params, key),
    })
}

/// Issues a serving certificate for the given DNS names and IP addresses, signed by `ca`.
/// The first DNS name (or IP) becomes the subject's common name. Each call makes a new key
/// and a new serial, which is what the rotation tests rely on.
pub fn issue_serving(
    ca: &Ca,
    dns: &[String],
    ips: &[IpAddr],
    days: u32,
) -> Result<Issued, CertsError> {
    if dns.is_empty() && ips.is_empty() {
        return Err(CertsError::NoNames);
    }
    let mut params = CertificateParams::default();
    let mut sans = Vec::with_capacity(dns.len() + ips.len());
    for name in dns {
        let ia5 = name
            .clone()
            .try_into()
            .map_err(|e: rcgen::Error| CertsError::BadName {
                name: name.clone(),
                message: e.to_string(),
            })?;
        sans.push(SanType::DnsName(ia5));
    }
    sans.extend(ips.iter().map(|ip| SanType::IpAddress(*ip)));
    params.subject_alt_names = sans;
    let cn = dns
        .first()
        .cloned()
        .or_else(|| ips.first().map(|ip| ip.to_string()))
        .unwrap_or_default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, cn);
    params.distinguished_name = dn;
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.use_authority_key_identifier_extension = true;
    validity(&mut params, days)?;
    let key = KeyPair::generate()?;
    let cert = params.signed_by(&key, &ca.issuer)?;
    Ok(Issued {
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
    })
}

/// Issues a client certificate (extended key usage `clientAuth`) named `name`, as subject
/// common name and DNS name, signed by `ca`: what the API server presents to a webhook that
/// runs with `serve --client-ca-file`.
pub fn issue_client(ca: &Ca, name: &str, days: u32) -> Result<Issued, CertsError> {
    if name.is_empty() {
        return Err(CertsError::NoNames);
    }
    let mut params = CertificateParams::default();
    let ia5 = name
        .to_string()
        .try_into()
        .map_err(|e: rcgen::Error| CertsError::BadName {
            name: name.to_string(),
            message: e.to_string(),
        })?;
    params.subject_alt_names = vec![SanType::DnsName(ia5)];
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, name);
    params.distinguished_name = dn;
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    params.use_authority_key_identifier_extension = true;
    validity(&mut params, days)?;
    let key = KeyPair::generate()?;
    let cert = params.signed_by(&key, &ca.issuer)?;
    Ok(Issued {
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
    })
}

/// The `caBundle` field of a webhook configuration: base64 of the CA certificate's PEM.
pub fn ca_bundle(ca_cert_pem: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(ca_cert_pem.as_bytes())
}

/// Writes a file; keys get mode 0600 from creation on, so they are never briefly readable.
pub fn write_file(path: &Path, contents: &[u8], secret: bool) -> Result<(), CertsError> {
    let err = |source| CertsError::Write {
        path: path.to_path_buf(),
        source,
    };
    let mut opts = fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        opts.mode(if secret { 0o600 } else { 0o644 });
        let mut f = opts.open(path).map_err(err)?;
        // An existing file keeps its mode through `open`; set it again.
        f.set_permissions(fs::Permissions::from_mode(if secret {
            0o600
        } else {
            0o644
        }))
        .map_err(err)?;
        f.write_all(contents).map_err(err)?;
        f.sync_all().map_err(err)
    }
    #[cfg(not(unix))]
    {
        let _ = secret;
        let mut f = opts.open(path).map_err(err)?;
        f.write_all(contents).map_err(err)
    }
}

/// Writes `ca.crt`, `ca.key`, `tls.crt` and `tls.key` into `dir` (created if missing).
pub fn write_files(dir: &Path, ca: &Ca, leaf: &Issued) -> Result<Vec<PathBuf>, CertsError> {
    fs::create_dir_all(dir).map_err(|source| CertsError::Write {
        path: dir.to_path_buf(),
        source,
    })?;
    let files = [
        (CA_CERT_FILE, ca.cert_pem.as_bytes(), false),
        (CA_KEY_FILE, ca.key_pem.as_bytes(), true),
        (TLS_CERT_FILE, leaf.cert_pem.as_bytes(), false),
        (TLS_KEY_FILE, leaf.key_pem.as_bytes(), true),
    ];
    let mut written = Vec::new();
    for (name, contents, secret) in files {
        let path = dir.join(name);
        write_file(&path, contents, secret)?;
        written.push(path);
    }
    Ok(written)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn serving_certificate_names_its_dns_names_and_ips_and_is_signed_by_the_ca() {
        let ca = generate_ca("test ca", 1).unwrap();
        let leaf = issue_serving(
            &ca,
            &["webhook.ns.svc".into()],
            &["127.0.0.1".parse().unwrap()],
            1,
        )
        .unwrap();
        let (_, pem) = x509_parser::pem::parse_x509_pem(leaf.cert_pem.as_bytes()).unwrap();
        let cert = pem.parse_x509().unwrap();
        let sans = cert
            .subject_alternative_name()
            .unwrap()
            .unwrap()
            .value
            .general_names
            .clone();
        let text = format!("{sans:?}");
        assert!(text.contains("webhook.ns.svc"), "{text}");
        assert!(
            text.contains("127.0.0.1") || text.contains("[127, 0, 0, 1]"),
            "{text}"
        );
        let (_, ca_pem) = x509_parser::pem::parse_x509_pem(ca.cert_pem.as_bytes()).unwrap();
        let ca_cert = ca_pem.parse_x509().unwrap();
        assert_eq!(cert.issuer(), ca_cert.subject());
    }

    #[test]
    fn refuses_a_serving_certificate_without_names() {
        let ca = generate_ca("test ca", 1).unwrap();
        assert!(matches!(
            issue_serving(&ca, &[], &[], 1),
            Err(CertsError::NoNames)
        ));
    }

    #[test]
    fn ca_bundle_is_base64_of_the_pem() {
        use base64::Engine as _;
        let b = ca_bundle("-----BEGIN CERTIFICATE-----\n");
        let back = base64::engine::general_purpose::STANDARD.decode(b).unwrap();
        assert_eq!(back, b"-----BEGIN CERTIFICATE-----\n");
    }

    #[cfg(unix)]
    #[test]
    fn keys_are_written_readable_by_owner_only() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let ca = generate_ca("test ca", 1).unwrap();
        let leaf = issue_serving(&ca, &["localhost".into()], &[], 1).unwrap();
        write_files(dir.path(), &ca, &leaf).unwrap();
        for (name, mode) in [
            (CA_KEY_FILE, 0o600),
            (TLS_KEY_FILE, 0o600),
            (CA_CERT_FILE, 0o644),
        ] {
            let m = fs::metadata(dir.path().join(name))
                .unwrap()
                .permissions()
                .mode()
                & 0o777;
            assert_eq!(m, mode, "{name}");
        }
    }
}

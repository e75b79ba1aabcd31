//! Who may call the webhook: client certificates checked in the TLS handshake against the CA
//! of `serve --client-ca-file`, re-read when the file changes (polled by content, like the
//! serving certificate in [`super::tls`]).
//!
//! Client authentication is *optional* in the handshake: a client that presents no
//! certificate completes it, and the router refuses its reviews before reading a body byte
//! ([`super::router`]), while `/healthz`, `/readyz` and `/metrics` answer it. That keeps one
//! port for the kubelet's probes and Prometheus's scrapes, neither of which presents a client
//! certificate, instead of a second listener the chart, the NetworkPolicy and every probe
//! would have to know about. A client that presents a certificate the CA did not sign (or an
//! expired one, or one whose name is not allowed) is refused in the handshake itself.

use super::metrics::Metrics;
use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, UnixTime};
use rustls::server::WebPkiClientVerifier;
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{DigitallySignedStruct, DistinguishedName, RootCertStore, SignatureScheme};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

/// Why a client CA file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ClientCaError {
    #[error("cannot read the client CA file {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("client CA file {path}: {message}")]
    Bad { path: PathBuf, message: String },
    #[error("client CA file {0} holds no PEM certificate")]
    Empty(PathBuf),
}

/// The parsed CA bundle: a verifier over its certificates.
fn verifier(
    pem: &[u8],
    path: &Path,
    provider: Arc<CryptoProvider>,
) -> Result<Arc<dyn ClientCertVerifier>, ClientCaError> {
    let bad = |message: String| ClientCaError::Bad {
        path: path.to_path_buf(),
        message,
    };
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(pem) {
        let cert = cert.map_err(|e| bad(e.to_string()))?;
        roots
            .add(cert)
            .map_err(|e| bad(format!("not a usable CA certificate: {e}")))?;
    }
    if roots.is_empty() {
        return Err(ClientCaError::Empty(path.to_path_buf()));
    }
    WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
        .allow_unauthenticated()
        .build()
        .map_err(|e| bad(e.to_string()))
}

/// The names a client certificate carries: its subject's common names and DNS names.
pub fn names_of(cert: &[u8]) -> Vec<String> {
    let Ok((_, x509)) = x509_parser::parse_x509_certificate(cert) else {
        return Vec::new();
    };
    let mut names: Vec<String> = x509
        .subject()
        .iter_common_name()
        .filter_map(|cn| cn.as_str().ok().map(str::to_string))
        .collect();
    if let Ok(Some(san)) = x509.subject_alternative_name() {
        for name in &san.value.general_names {
            if let x509_parser::extensions::GeneralName::DNSName(dns) = name {
                names.push((*dns).to_string());
            }
        }
    }
    names
}

/// A verified client certificate's subject and `notAfter` (Unix seconds), for the metrics.
pub fn subject_and_not_after(cert: &[u8]) -> Option<(String, i64)> {
    let (_, x509) = x509_parser::parse_x509_certificate(cert).ok()?;
    Some((
        x509.subject().to_string(),
        x509.validity().not_after.timestamp(),
    ))
}

/// The client CA, swapped in place when its file changes, as a rustls client verifier.
pub struct ClientCa {
    path: PathBuf,
    /// Names a client certificate must carry one of (common name or DNS name); empty: any
    /// certificate the CA signed.
    allowed_names: Vec<String>,
    provider: Arc<CryptoProvider>,
    current: RwLock<Arc<dyn ClientCertVerifier>>,
    last_seen: Mutex<Vec<u8>>,
    metrics: Arc<Metrics>,
}

impl std::fmt::Debug for ClientCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientCa")
            .field("path", &self.path)
            .field("allowed_names", &self.allowed_names)
            .finish_non_exhaustive()
    }
}

impl ClientCa {
    /// Loads the CA once; a failure here is fatal to the caller.
    pub fn load(
        path: &Path,
        allowed_names: Vec<String>,
        metrics: Arc<Metrics>,
    ) -> Result<Arc<Self>, ClientCaError> {
        let provider = super::tls::provider();
        let pem = std::fs::read(path).map_err(|source| ClientCaError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let current = verifier(&pem, path, provider.clone())?;
        tracing::info!(client_ca = %path.display(), allowed_names = ?allowed_names, "reviews are answered only for clients with a certificate from this CA");
        Ok(Arc::new(ClientCa {
            path: path.to_path_buf(),
            allowed_names,
            provider,
            current: RwLock::new(current),
            last_seen: Mutex::new(pem),
            metrics,
        }))
    }

    fn current(&self) -> Arc<dyn ClientCertVerifier> {
        self.current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Re-reads the file and swaps the CA when its content changed and parses; a bad new
    /// file is logged once and the previous CA stays.
    pub fn reload_if_changed(&self) -> super::tls::Reload {
        let pem = match std::fs::read(&self.path) {
            Ok(p) => p,
            Err(source) => {
                tracing::error!(error = %ClientCaError::Read { path: self.path.clone(), source }, "client CA not reloaded; the previous one is still used");
                self.metrics.certificate_reloaded(false);
                return super::tls::Reload::Unchanged;
            }
        };
        {
            let mut seen = self.last_seen.lock().unwrap_or_else(|e| e.into_inner());
            if *seen == pem {
                return super::tls::Reload::Unchanged;
            }
            seen.clone_from(&pem);
        }
        match verifier(&pem, &self.path, self.provider.clone()) {
            Ok(v) => {
                *self.current.write().unwrap_or_else(|e| e.into_inner()) = v;
                self.metrics.certificate_reloaded(true);
                tracing::info!(client_ca = %self.path.display(), "client CA reloaded");
                super::tls::Reload::Reloaded
            }
            Err(e) => {
                self.metrics.certificate_reloaded(false);
                tracing::error!(error = %e, "client CA not reloaded; the previous one is still used");
                super::tls::Reload::Unchanged
            }
        }
    }

    /// Polls the file every `interval` until `stop` resolves.
    pub async fn watch(
        self: Arc<Self>,
        interval: Duration,
        stop: impl std::future::Future<Output = ()>,
    ) {
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        tokio::pin!(stop);
        loop {
            tokio::select! {
                _ = &mut stop => return,
                _ = tick.tick() => {
                    let me = self.clone();
                    let _ = tokio::task::spawn_blocking(move || me.reload_if_changed()).await;
                }
            }
        }
    }
}

impl ClientCertVerifier for ClientCa {
    fn offer_client_auth(&self) -> bool {
        true
    }

    /// Optional in the handshake: see the module docs (probes and metrics on the same port).
    fn client_auth_mandatory(&self) -> bool {
        false
    }

    /// No hint list: it would borrow from a CA that a reload may replace, and the clients
    /// that matter send their one certificate whatever the list says (Go's crypto/tls with an
    /// empty list, curl, rustls).
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        let verified = self
            .current()
            .verify_client_cert(end_entity, intermediates, now)?;
        if !self.allowed_names.is_empty() {
            let names = names_of(end_entity.as_ref());
            if !names.iter().any(|n| self.allowed_names.contains(n)) {
                tracing::debug!(?names, "client certificate refused: no allowed name");
                return Err(rustls::Error::InvalidCertificate(
                    rustls::CertificateError::ApplicationVerificationFailure,
                ));
            }
        }
        Ok(verified)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.current().verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.current().verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.current().supported_verify_schemes()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::certs;

    fn der(pem: &str) -> CertificateDer<'static> {
        CertificateDer::from_pem_slice(pem.as_bytes()).unwrap()
    }

    fn accepts(ca: &ClientCa, leaf: &certs::Issued) -> bool {
        ca.verify_client_cert(&der(&leaf.cert_pem), &[], UnixTime::now())
            .is_ok()
    }

    #[test]
    fn a_new_client_ca_is_taken_when_its_file_changes_and_a_bad_one_is_not() {
        let first = certs::generate_ca("first client CA", 1).unwrap();
        let second = certs::generate_ca("second client CA", 1).unwrap();
        let from_first = certs::issue_client(&first, "kube-apiserver", 1).unwrap();
        let from_second = certs::issue_client(&second, "kube-apiserver", 1).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ca.crt");
        std::fs::write(&path, &first.cert_pem).unwrap();
        let ca = ClientCa::load(&path, Vec::new(), Arc::new(Metrics::new())).unwrap();
        assert!(accepts(&ca, &from_first));
        assert!(!accepts(&ca, &from_second));
        assert!(matches!(
            ca.reload_if_changed(),
            super::super::tls::Reload::Unchanged
        ));

        std::fs::write(&path, &second.cert_pem).unwrap();
        assert!(matches!(
            ca.reload_if_changed(),
            super::super::tls::Reload::Reloaded
        ));
        assert!(accepts(&ca, &from_second));
        assert!(!accepts(&ca, &from_first));

        // A file that holds no certificate is refused; the CA before it stays.
        std::fs::write(&path, "not a certificate").unwrap();
        assert!(matches!(
            ca.reload_if_changed(),
            super::super::tls::Reload::Unchanged
        ));
        assert!(accepts(&ca, &from_second));
    }

    #[test]
    fn an_allow_list_refuses_a_certificate_of_the_right_ca_under_another_name() {
        let ca_pair = certs::generate_ca("client CA", 1).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ca.crt");
        std::fs::write(&path, &ca_pair.cert_pem).unwrap();
        let ca = ClientCa::load(
            &path,
            vec!["kube-apiserver".into()],
            Arc::new(Metrics::new()),
        )
        .unwrap();
        assert!(accepts(
            &ca,
            &certs::issue_client(&ca_pair, "kube-apiserver", 1).unwrap()
        ));
        assert!(!accepts(
            &ca,
            &certs::issue_client(&ca_pair, "someone", 1).unwrap()
        ));
    }

    #[test]
    fn a_client_ca_file_that_cannot_be_used_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ca.crt");
        let missing = ClientCa::load(&path, Vec::new(), Arc::new(Metrics::new())).unwrap_err();
        assert!(missing.to_string().contains("ca.crt"), "{missing}");
        std::fs::write(&path, "hello").unwrap();
        let empty = ClientCa::load(&path, Vec::new(), Arc::new(Metrics::new())).unwrap_err();
        assert!(
            empty.to_string().contains("holds no PEM certificate"),
            "{empty}"
        );
    }
}

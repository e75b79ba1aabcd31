//! The serving certificate, re-read when its files change.
//!
//! Files are polled by content, not by modification time or inotify: a Kubernetes Secret
//! volume replaces its files by swapping a `..data` symlink to a new timestamped directory,
//! which neither changes the watched paths' mtimes reliably nor fires events on them. Each
//! poll reads both files and compares their bytes with the last pair seen. A new pair that
//! does not parse, or whose key does not match its certificate, is logged and ignored: the
//! old pair keeps serving. New handshakes pick up the new pair through [`ReloadingCert`]
//! (a rustls `ResolvesServerCert`); established connections keep their session.

use super::metrics::Metrics;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

/// Why a certificate/key pair cannot be served.
#[derive(Debug, thiserror::Error)]
pub enum CertError {
    #[error("cannot read {which} file {path}: {source}")]
    Read {
        which: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("certificate file {0} holds no PEM certificate")]
    NoCertificate(PathBuf),
    #[error("certificate file {path}: {message}")]
    BadCertificate { path: PathBuf, message: String },
    #[error("key file {path} holds no usable PEM private key (PKCS#8, PKCS#1 or SEC1): {message}")]
    BadKey { path: PathBuf, message: String },
    #[error("key file {key} does not match the certificate in {cert}: {message}")]
    Mismatch {
        cert: PathBuf,
        key: PathBuf,
        message: String,
    },
}

/// A parsed pair, ready to serve.
#[derive(Debug)]
pub struct LoadedPair {
    pub key: Arc<CertifiedKey>,
    /// The leaf's `notAfter`, Unix seconds.
    pub not_after: i64,
    /// The leaf's subject, for logs.
    pub subject: String,
}

pub(crate) fn provider() -> Arc<CryptoProvider> {
    // The process installs ring as its default at start; tests may not have, so fall back.
    CryptoProvider::get_default()
        .cloned()
        .unwrap_or_else(|| Arc::new(rustls::crypto::ring::default_provider()))
}

/// Parses a PEM certificate chain and private key, and checks that they belong together.
pub fn parse_pair(
    cert_pem: &[u8],
    key_pem: &[u8],
    cert_path: &Path,
    key_path: &Path,
) -> Result<LoadedPair, CertError> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(cert_pem)
        .collect::<Result<_, _>>()
        .map_err(|e| CertError::BadCertificate {
            path: cert_path.to_path_buf(),
            message: e.to_string(),
        })?;
    let Some(leaf) = chain.first() else {
        return Err(CertError::NoCertificate(cert_path.to_path_buf()));
    };
    let (_, x509) = x509_parser::parse_x509_certificate(leaf.as_ref()).map_err(|e| {
        CertError::BadCertificate {
            path: cert_path.to_path_buf(),
            message: format!("not an X.509 certificate: {e}"),
        }
    })?;
    let not_after = x509.validity().not_after.timestamp();
    let subject = x509.subject().to_string();
    let key = PrivateKeyDer::from_pem_slice(key_pem).map_err(|e| CertError::BadKey {
        path: key_path.to_path_buf(),
        message: e.to_string(),
    })?;
    let certified = CertifiedKey::from_der(chain, key, &provider()).map_err(|e| match e {
        rustls::Error::InconsistentKeys(_) => CertError::Mismatch {
            cert: cert_path.to_path_buf(),
            key: key_path.to_path_buf(),
            message: e.to_string(),
        },
        other => CertError::BadKey {
            path: key_path.to_path_buf(),
            message: other.to_string(),
        },
    })?;
    Ok(LoadedPair {
        key: Arc::new(certified),
        not_after,
        subject,
    })
}

fn read(which: &'static str, path: &Path) -> Result<Vec<u8>, CertError> {
    std::fs::read(path).map_err(|source| CertError::Read {
        which,
        path: path.to_path_buf(),
        source,
    })
}

/// What one poll did.
#[derive(Debug)]
pub enum Reload {
    /// Both files hold the bytes seen last time.
    Unchanged,
    /// A new pair is served.
    Reloaded,
    /// The files changed but cannot be served; the previous pair stays.
    Failed(CertError),
}

/// The serving certificate, swapped in place when the files change.
pub struct ReloadingCert {
    cert_path: PathBuf,
    key_path: PathBuf,
    current: RwLock<Arc<CertifiedKey>>,
    /// The bytes of the last pair read, served or not: a bad pair is reported once, not on
    /// every poll, and is retried as soon as either file changes again.
    last_seen: Mutex<(Vec<u8>, Vec<u8>)>,
    metrics: Arc<Metrics>,
}

impl std::fmt::Debug for ReloadingCert {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReloadingCert")
            .field("cert_path", &self.cert_path)
            .field("key_path", &self.key_path)
            .finish_non_exhaustive()
    }
}

impl ReloadingCert {
    /// Loads the pair once; a failure here is fatal to the caller (nothing to serve yet).
    pub fn load(
        cert_path: &Path,
        key_path: &Path,
        metrics: Arc<Metrics>,
    ) -> Result<Arc<Self>, CertError> {
        let cert_pem = read("certificate", cert_path)?;
        let key_pem = read("key", key_path)?;
        let pair = parse_pair(&cert_pem, &key_pem, cert_path, key_path)?;
        metrics.set_certificate_not_after(pair.not_after);
        tracing::info!(subject = %pair.subject, not_after = pair.not_after, cert = %cert_path.display(), "serving certificate loaded");
        Ok(Arc::new(ReloadingCert {
            cert_path: cert_path.to_path_buf(),
            key_path: key_path.to_path_buf(),
            current: RwLock::new(pair.key),
            last_seen: Mutex::new((cert_pem, key_pem)),
            metrics,
        }))
    }

    /// The pair new handshakes get.
    pub fn current(&self) -> Arc<CertifiedKey> {
        self.current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn read_both(&self) -> Result<(Vec<u8>, Vec<u8>), CertError> {
        Ok((
            read("certificate", &self.cert_path)?,
            read("key", &self.key_path)?,
        ))
    }

    /// Reads both files and swaps the served pair when their content changed and parses.
    pub fn reload_if_changed(&self) -> Reload {
        let (mut cert_pem, mut key_pem) = match self.read_both() {
            Ok(p) => p,
            // Mid-swap a file can be missing for an instant; keep serving and try next poll.
            Err(e) => return self.fail(e),
        };
        {
            let seen = self.last_seen.lock().unwrap_or_else(|e| e.into_inner());
            if seen.0 == cert_pem && seen.1 == key_pem {
                return Reload::Unchanged;
            }
        }
        let mut parsed = parse_pair(&cert_pem, &key_pem, &self.cert_path, &self.key_path);
        if parsed.is_err() {
            // The two files are read one after the other; a writer replacing them between
            // the reads gives a torn pair. Read once more before calling the pair bad.
            if let Ok((c, k)) = self.read_both()
                && (c != cert_pem || k != key_pem)
            {
                parsed = parse_pair(&c, &k, &self.cert_path, &self.key_path);
                (cert_pem, key_pem) = (c, k);
            }
        }
        *self.last_seen.lock().unwrap_or_else(|e| e.into_inner()) = (cert_pem, key_pem);
        match parsed {
            Ok(pair) => {
                *self.current.write().unwrap_or_else(|e| e.into_inner()) = pair.key;
                self.metrics.set_certificate_not_after(pair.not_after);
                self.metrics.certificate_reloaded(true);
                tracing::info!(subject = %pair.subject, not_after = pair.not_after, cert = %self.cert_path.display(), "serving certificate reloaded");
                Reload::Reloaded
            }
            Err(e) => self.fail(e),
        }
    }

    fn fail(&self, e: CertError) -> Reload {
        self.metrics.certificate_reloaded(false);
        tracing::error!(error = %e, "serving certificate not reloaded; the previous one is still served");
        Reload::Failed(e)
    }

    /// Polls the files every `interval` until `stop` resolves.
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
                    // File reads are small and rare; a blocking read on the runtime is fine,
                    // but keep it off the reactor threads anyway.
                    let me = self.clone();
                    let _ = tokio::task::spawn_blocking(move || me.reload_if_changed()).await;
                }
            }
        }
    }

    /// A rustls server config with TLS 1.3 and 1.2 only, serving this certificate, and
    /// asking for a client certificate checked by `client_auth` when given (the client CA of
    /// `--client-ca-file`).
    pub fn server_config(
        self: &Arc<Self>,
        client_auth: Option<Arc<dyn rustls::server::danger::ClientCertVerifier>>,
    ) -> Result<Arc<rustls::ServerConfig>, rustls::Error> {
        let builder = rustls::ServerConfig::builder_with_provider(provider())
            .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?;
        let builder = match client_auth {
            Some(verifier) => builder.with_client_cert_verifier(verifier),
            None => builder.with_no_client_auth(),
        };
        let mut config = builder.with_cert_resolver(self.clone());
        // HTTP/2 first: an API server that speaks it multiplexes its reviews over one
        // connection per webhook instead of a pool of HTTP/1.1 ones.
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(Arc::new(config))
    }
}

impl ResolvesServerCert for ReloadingCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current())
    }
}

//! TLS on the server side with rustls (ring provider, no OpenSSL): a certificate chain and key
//! from PEM files, optionally client certificates verified against a CA file, and a reload when
//! any of those files changes (cert-manager and the kubelet swap them in place): checked at
//! most once a second, on accept, on a thread of its own (a new connection waits at most half a
//! second for it; a hung filesystem never blocks an async worker). Only regular files under
//! [`crate::files::MAX_FILE_BYTES`] are read: a FIFO or `/dev/zero` in place of a file keeps
//! the previous certificate and logs why. A reload that fails keeps the previous certificate.

use arc_swap::ArcSwap;
use rustls::ServerConfig;
use rustls::server::WebPkiClientVerifier;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Whether (and how) clients must present a certificate, as exporter-toolkit names it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ClientAuth {
    /// `NoClientCert`.
    #[default]
    None,
    /// `VerifyClientCertIfGiven`: a certificate is optional, but verified when sent.
    VerifyIfGiven,
    /// `RequireAndVerifyClientCert`.
    Require,
}

/// The certificate chain a client presented and the server verified (leaf first), put by
/// [`serve`](crate::serve) into every request of that connection as an extension. Absent on
/// plain HTTP, without client verification, and for clients that sent none.
#[derive(Clone, Debug)]
pub struct PeerCertificates(pub Arc<Vec<CertificateDer<'static>>>);

impl PeerCertificates {
    /// The client's own (leaf) certificate.
    pub fn leaf(&self) -> &CertificateDer<'static> {
        &self.0[0]
    }
}

/// Oldest TLS version accepted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum MinVersion {
    #[default]
    Tls12,
    Tls13,
}

/// The files a TLS server reads, and its policy.
#[derive(Clone, Debug, PartialEq)]
pub struct TlsFiles {
    /// PEM certificate chain, leaf first.
    pub cert_file: PathBuf,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1).
    pub key_file: PathBuf,
    /// PEM CA certificates that client certificates must chain to.
    pub client_ca_file: Option<PathBuf>,
    pub client_auth: ClientAuth,
    pub min_version: MinVersion,
}

impl TlsFiles {
    /// Plain server TLS from a certificate and a key file.
    pub fn new(cert_file: impl Into<PathBuf>, key_file: impl Into<PathBuf>) -> Self {
        TlsFiles {
            cert_file: cert_file.into(),
            key_file: key_file.into(),
            client_ca_file: None,
            client_auth: ClientAuth::None,
            min_version: MinVersion::Tls12,
        }
    }

    fn paths(&self) -> impl Iterator<Item = &Path> {
        [
            Some(&self.cert_file),
            Some(&self.key_file),
            self.client_ca_file.as_ref(),
        ]
        .into_iter()
        .flatten()
        .map(PathBuf::as_path)
    }
}

/// Why TLS could not be set up, naming the file.
#[derive(Debug, thiserror::Error)]
#[error("{}: {reason}", path.display())]
pub struct TlsError {
    pub path: PathBuf,
    pub reason: String,
}

fn tls_error(path: &Path, reason: impl std::fmt::Display) -> TlsError {
    TlsError {
        path: path.to_path_buf(),
        reason: reason.to_string(),
    }
}

/// What identifies a file's version: device, inode, size, modification time.
type Stamp = Vec<Option<(u64, u64, u64, i64, i64)>>;

fn stamp(files: &TlsFiles) -> Stamp {
    use std::os::unix::fs::MetadataExt;
    files
        .paths()
        .map(|p| {
            std::fs::metadata(p)
                .ok()
                .map(|m| (m.dev(), m.ino(), m.size(), m.mtime(), m.mtime_nsec()))
        })
        .collect()
}

/// A server TLS configuration that follows its files.
pub struct ReloadingTls {
    files: TlsFiles,
    current: ArcSwap<ServerConfig>,
    /// When the files were last looked at, and what they were then.
    checked: Mutex<(Instant, Stamp)>,
    /// A look at the files is under way on its thread.
    looking: AtomicBool,
}

impl ReloadingTls {
    /// Reads the files now; an error names the file and what is wrong with it.
    pub fn load(files: TlsFiles) -> Result<ReloadingTls, TlsError> {
        let seen = stamp(&files);
        let config = build(&files)?;
        Ok(ReloadingTls {
            files,
            current: ArcSwap::from_pointee(config),
            checked: Mutex::new((Instant::now(), seen)),
            looking: AtomicBool::new(false),
        })
    }

    pub fn files(&self) -> &TlsFiles {
        &self.files
    }

    /// The acceptor for a new connection, with the certificate as the files hold it now.
    pub fn acceptor(&self) -> tokio_rustls::TlsAcceptor {
        self.reload_if_changed(Duration::from_secs(1));
        tokio_rustls::TlsAcceptor::from(self.current.load_full())
    }

    /// [`acceptor`](Self::acceptor) for a new connection, looking at the files (when due) on a
    /// thread of its own and waiting at most half a second for that look.
    pub async fn fresh_acceptor(self: &Arc<Self>) -> tokio_rustls::TlsAcceptor {
        let due = self
            .checked
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .0
            .elapsed()
            >= Duration::from_secs(1);
        if due && !self.looking.swap(true, Ordering::AcqRel) {
            let (tx, rx) = tokio::sync::oneshot::channel();
            let me = self.clone();
            let started = crate::files::spawn(move || {
                me.reload_if_changed(Duration::from_secs(1));
                me.looking.store(false, Ordering::Release);
                let _ = tx.send(());
            });
            match started {
                Ok(()) => {
                    if tokio::time::timeout(Duration::from_millis(500), rx)
                        .await
                        .is_err()
                    {
                        tracing::warn!(cert_file = %self.files.cert_file.display(), "looking at the TLS files takes over 0.5 s (a hung filesystem?); serving the certificate in force");
                    }
                }
                Err(e) => {
                    self.looking.store(false, Ordering::Release);
                    tracing::warn!(error = %e, "TLS files not looked at");
                }
            }
        }
        tokio_rustls::TlsAcceptor::from(self.current.load_full())
    }

    /// Re-reads the files if they changed since the last look, looking at most once per
    /// `every`. Returns whether a new configuration is now in force.
    pub fn reload_if_changed(&self, every: Duration) -> bool {
        let mut checked = self.checked.lock().unwrap_or_else(|e| e.into_inner());
        if checked.0.elapsed() < every {
            return false;
        }
        checked.0 = Instant::now();
        let now = stamp(&self.files);
        if now == checked.1 {
            return false;
        }
        // Remember this version even if it fails, so a broken file is reported once.
        checked.1 = now;
        drop(checked);
        match build(&self.files) {
            Ok(config) => {
                self.current.store(Arc::new(config));
                tracing::info!(cert_file = %self.files.cert_file.display(), "TLS certificate reloaded");
                true
            }
            Err(e) => {
                tracing::error!(error = %e, "TLS files changed but cannot be used; keeping the previous certificate");
                false
            }
        }
    }
}

/// rustls with the ring provider, whatever other providers are compiled in.
pub fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A certificate, key or CA file: a regular file under the cap (see [`crate::files`]).
fn read_file(path: &Path) -> Result<Vec<u8>, TlsError> {
    crate::files::read_regular_within(
        path,
        crate::files::MAX_FILE_BYTES,
        crate::files::READ_DEADLINE,
    )
    .map_err(|e| tls_error(path, e))
}

/// Every certificate in a PEM file; an error when there is none.
pub fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let bytes = read_file(path)?;
    let certs = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| tls_error(path, format!("not a PEM certificate file: {e}")))?;
    if certs.is_empty() {
        return Err(tls_error(path, "no PEM CERTIFICATE block"));
    }
    Ok(certs)
}

/// A root store from a PEM file of CA certificates.
pub fn read_roots(path: &Path) -> Result<rustls::RootCertStore, TlsError> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in read_certs(path)? {
        roots
            .add(cert)
            .map_err(|e| tls_error(path, format!("not a usable CA certificate: {e}")))?;
    }
    Ok(roots)
}

fn build(files: &TlsFiles) -> Result<ServerConfig, TlsError> {
    let certs = read_certs(&files.cert_file)?;
    let key_bytes = read_file(&files.key_file)?;
    let key = PrivateKeyDer::from_pem_slice(&key_bytes)
        .map_err(|e| tls_error(&files.key_file, format!("no usable PEM private key: {e}")))?;
    let versions: &[&rustls::SupportedProtocolVersion] = match files.min_version {
        MinVersion::Tls12 => &[&rustls::version::TLS13, &rustls::version::TLS12],
        MinVersion::Tls13 => &[&rustls::version::TLS13],
    };
    let builder = ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(versions)
        .map_err(|e| tls_error(&files.cert_file, e))?;
    let builder = match (files.client_auth, &files.client_ca_file) {
        (ClientAuth::None, _) => builder.with_no_client_auth(),
        (_, None) => {
            return Err(tls_error(
                &files.cert_file,
                "client certificates are verified, but no client CA file is given",
            ));
        }
        (mode, Some(ca)) => {
            let roots = Arc::new(read_roots(ca)?);
            let mut v = WebPkiClientVerifier::builder_with_provider(roots, provider());
            if mode == ClientAuth::VerifyIfGiven {
                v = v.allow_unauthenticated();
            }
            builder.with_client_cert_verifier(v.build().map_err(|e| tls_error(ca, e))?)
        }
    };
    let mut config = builder.with_single_cert(certs, key).map_err(|e| {
        tls_error(
            &files.key_file,
            format!(
                "does not fit the certificate in {}: {e}",
                files.cert_file.display()
            ),
        )
    })?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

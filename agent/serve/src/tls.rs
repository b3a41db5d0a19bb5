//! TLS on the server side with rustls (ring provider, no OpenSSL): a certificate chain and key
//! from PEM files, optionally client certificates verified against a CA file, and a reload when
//! any of those files changes (cert-manager and the kubelet swap them in place; see
//! [`crate::reload`]): checked at most once a second, on accept, on a thread of its own (a new
//! connection waits at most half a second for it; a hung filesystem never blocks an async
//! worker). Only regular files under [`crate::files::MAX_FILE_BYTES`] are read: a FIFO or
//! `/dev/zero` in place of a file keeps the previous certificate and logs why. A reload that
//! fails keeps the previous certificate. The push client of the agent follows its CA and client
//! certificate the same way, with [`read_certs`], [`read_key`] and [`read_roots`].

use crate::reload::{CHECK_EVERY, Reloading};
use rustls::ServerConfig;
use rustls::server::WebPkiClientVerifier;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

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

type Builder = Box<dyn Fn() -> Result<ServerConfig, TlsError> + Send + Sync>;

/// A server TLS configuration that follows its files ([`crate::reload`]).
pub struct ReloadingTls {
    files: TlsFiles,
    inner: Arc<Reloading<ServerConfig, Builder>>,
}

impl ReloadingTls {
    /// Reads the files now; an error names the file and what is wrong with it.
    pub fn load(files: TlsFiles) -> Result<ReloadingTls, TlsError> {
        let paths = files.paths().map(Path::to_path_buf).collect();
        let read = files.clone();
        let builder: Builder = Box::new(move || build(&read));
        let inner = Arc::new(Reloading::load("TLS certificate", paths, builder)?);
        Ok(ReloadingTls { files, inner })
    }

    pub fn files(&self) -> &TlsFiles {
        &self.files
    }

    /// The acceptor for a new connection, with the certificate as the files hold it now.
    pub fn acceptor(&self) -> tokio_rustls::TlsAcceptor {
        self.inner.reload_if_changed(CHECK_EVERY);
        tokio_rustls::TlsAcceptor::from(self.inner.current())
    }

    /// [`acceptor`](Self::acceptor) for a new connection, looking at the files (when due) on a
    /// thread of its own and waiting at most half a second for that look.
    pub async fn fresh_acceptor(self: &Arc<Self>) -> tokio_rustls::TlsAcceptor {
        tokio_rustls::TlsAcceptor::from(self.inner.fresh().await)
    }

    /// Re-reads the files if they changed since the last look, looking at most once per
    /// `every`. Returns whether a new configuration is now in force.
    pub fn reload_if_changed(&self, every: Duration) -> bool {
        self.inner.reload_if_changed(every)
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

/// The private key in a PEM file (PKCS#8, PKCS#1 or SEC1).
pub fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let bytes = read_file(path)?;
    PrivateKeyDer::from_pem_slice(&bytes)
        .map_err(|e| tls_error(path, format!("no usable PEM private key: {e}")))
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
    let key = read_key(&files.key_file)?;
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

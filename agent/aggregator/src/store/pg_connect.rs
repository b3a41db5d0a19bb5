//! Connecting to PostgreSQL as libpq reads `database_url`: its `sslmode` and `sslrootcert`
//! parameters are taken out here (tokio-postgres alone knows only disable/prefer/require, and
//! verifies whenever its TLS connector does) and mapped onto a rustls connector:
//!
//! | `sslmode` | TLS | server certificate |
//! |---|---|---|
//! | `disable` | never | - |
//! | `prefer` (default, as libpq) | when the server offers it | not verified |
//! | `require` | always | not verified (encryption only) |
//! | `verify-ca` | always | chains to `sslrootcert` (else the system roots) |
//! | `verify-full` | always | as verify-ca, and names the host connected to |
//!
//! `sslrootcert=system` means the system roots, as in libpq 16. Both URL
//! (`postgresql://u@h/db?sslmode=verify-full&sslrootcert=/ca.crt`) and key/value
//! (`host=h sslmode=require`) forms are read. Also set unless the URL sets them: a 10 s connect
//! timeout, TCP keepalives after 30 s idle, a 30 s TCP user timeout and a 30 s
//! `statement_timeout`, so a half-open connection cannot stall the single writer for long.

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, SignatureScheme};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// Why PostgreSQL could not be connected to. [`PgConnectError::Config`]: `database_url` itself
/// (or the `sslrootcert` file it names) is at fault, a configuration problem.
#[derive(Debug, thiserror::Error)]
pub enum PgConnectError {
    #[error(transparent)]
    Config(#[from] DatabaseUrlError),
    /// rustls could not be set up.
    #[error("{0}")]
    Tls(#[source] rustls::Error),
    #[error("{0}")]
    Verifier(#[source] rustls::client::VerifierBuilderError),
    /// The server refused, or could not be reached: SQLSTATE and message, or the cause.
    #[error("{}", describe(.0))]
    Server(#[source] tokio_postgres::Error),
}

/// What is wrong with `database_url` as written, naming the parameter (never the password).
#[derive(Debug, thiserror::Error)]
pub enum DatabaseUrlError {
    #[error("sslmode=allow is not supported (use prefer or disable)")]
    SslModeAllow,
    #[error("sslmode={0} is not one of disable, prefer, require, verify-ca, verify-full")]
    SslMode(String),
    #[error("{0} is not supported")]
    Unsupported(String),
    #[error("bad percent-encoding in {0:?}")]
    PercentEncoding(String),
    #[error("not UTF-8 after percent-decoding: {0:?}")]
    NotUtf8(String),
    #[error("missing `=` after {0:?} in the connection string")]
    MissingEquals(String),
    #[error("unterminated quote in the value of {0:?}")]
    UnterminatedQuote(String),
    #[error("{0}")]
    Syntax(#[source] tokio_postgres::Error),
    #[error("sslrootcert {0}")]
    RootCert(#[source] serve::tls::TlsError),
    #[error("no system CA certificates found ({0} errors); set sslrootcert")]
    NoSystemRoots(usize),
}

/// libpq's `sslmode` values that this client supports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SslMode {
    Disable,
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

impl SslMode {
    fn parse(v: &str) -> Result<SslMode, DatabaseUrlError> {
        Ok(match v {
            "disable" => SslMode::Disable,
            "prefer" => SslMode::Prefer,
            "require" => SslMode::Require,
            "verify-ca" => SslMode::VerifyCa,
            "verify-full" => SslMode::VerifyFull,
            "allow" => return Err(DatabaseUrlError::SslModeAllow),
            other => return Err(DatabaseUrlError::SslMode(other.to_string())),
        })
    }
}

/// `database_url` split into what tokio-postgres reads and what this module handles.
#[derive(Debug)]
pub struct ConnectSpec {
    pub config: tokio_postgres::Config,
    pub sslmode: SslMode,
    /// `None`: the system roots.
    pub sslrootcert: Option<PathBuf>,
}

/// Parses `url` (URL or key/value form); errors name the parameter, never the password.
pub fn parse(url: &str) -> Result<ConnectSpec, DatabaseUrlError> {
    let mut sslmode = None;
    let mut sslrootcert = None;
    let mut take = |k: &str, v: &str| -> Result<bool, DatabaseUrlError> {
        match k {
            "sslmode" => sslmode = Some(SslMode::parse(v)?),
            "sslrootcert" => sslrootcert = Some(v.to_string()),
            "sslcert" | "sslkey" | "sslpassword" | "sslcrl" | "sslcrldir" => {
                return Err(DatabaseUrlError::Unsupported(k.to_string()));
            }
            _ => return Ok(false),
        }
        Ok(true)
    };
    let rest = if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        match url.split_once('?') {
            None => url.to_string(),
            Some((base, query)) => {
                let mut kept = Vec::new();
                for pair in query.split('&').filter(|p| !p.is_empty()) {
                    let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
                    if !take(&percent_decode(k)?, &percent_decode(v)?)? {
                        kept.push(pair);
                    }
                }
                if kept.is_empty() {
                    base.to_string()
                } else {
                    format!("{base}?{}", kept.join("&"))
                }
            }
        }
    } else {
        let mut kept = Vec::new();
        for (k, v) in conninfo_pairs(url)? {
            if !take(&k, &v)? {
                kept.push(format!(
                    "{k}='{}'",
                    v.replace('\\', "\\\\").replace('\'', "\\'")
                ));
            }
        }
        kept.join(" ")
    };
    let mut config: tokio_postgres::Config = rest.parse().map_err(DatabaseUrlError::Syntax)?;
    let sslmode = sslmode.unwrap_or(SslMode::Prefer);
    config.ssl_mode(match sslmode {
        SslMode::Disable => tokio_postgres::config::SslMode::Disable,
        SslMode::Prefer => tokio_postgres::config::SslMode::Prefer,
        _ => tokio_postgres::config::SslMode::Require,
    });
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(Duration::from_secs(10));
    }
    config.keepalives(true);
    if config.get_keepalives_idle() == Duration::from_secs(2 * 60 * 60) {
        config.keepalives_idle(Duration::from_secs(30));
    }
    if config.get_tcp_user_timeout().is_none() {
        config.tcp_user_timeout(Duration::from_secs(30));
    }
    let options = config.get_options().unwrap_or("").to_string();
    if !options.contains("statement_timeout") {
        config.options(format!("{options} -c statement_timeout=30000").trim_start());
    }
    let sslrootcert = match sslrootcert.as_deref() {
        None | Some("system") => None,
        Some(p) => Some(PathBuf::from(p)),
    };
    Ok(ConnectSpec {
        config,
        sslmode,
        sslrootcert,
    })
}

fn percent_decode(s: &str) -> Result<String, DatabaseUrlError> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = s
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| DatabaseUrlError::PercentEncoding(s.to_string()))?;
            out.push(hex);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| DatabaseUrlError::NotUtf8(s.to_string()))
}

/// libpq's `key = value` pairs; values may be single-quoted with backslash escapes.
fn conninfo_pairs(s: &str) -> Result<Vec<(String, String)>, DatabaseUrlError> {
    let mut out = Vec::new();
    let mut it = s.chars().peekable();
    loop {
        while it.peek().is_some_and(|c| c.is_whitespace()) {
            it.next();
        }
        if it.peek().is_none() {
            return Ok(out);
        }
        let mut key = String::new();
        while let Some(&c) = it.peek() {
            if c == '=' || c.is_whitespace() {
                break;
            }
            key.push(c);
            it.next();
        }
        while it.peek().is_some_and(|c| c.is_whitespace()) {
            it.next();
        }
        if it.next() != Some('=') {
            return Err(DatabaseUrlError::MissingEquals(key));
        }
        while it.peek().is_some_and(|c| c.is_whitespace()) {
            it.next();
        }
        let mut value = String::new();
        if it.peek() == Some(&'\'') {
            it.next();
            loop {
                match it.next() {
                    None => return Err(DatabaseUrlError::UnterminatedQuote(key)),
                    Some('\'') => break,
                    Some('\\') => value.extend(it.next()),
                    Some(c) => value.push(c),
                }
            }
        } else {
            while let Some(&c) = it.peek() {
                if c.is_whitespace() {
                    break;
                }
                if c == '\\' {
                    it.next();
                    value.extend(it.next());
                    continue;
                }
                value.push(c);
                it.next();
            }
        }
        out.push((key, value));
    }
}

/// Connects as `url` says and spawns the connection's task; returns the client.
pub async fn connect(url: &str) -> Result<tokio_postgres::Client, PgConnectError> {
    let spec = parse(url)?;
    if spec.sslmode == SslMode::Disable {
        let (client, conn) = spec
            .config
            .connect(tokio_postgres::NoTls)
            .await
            .map_err(PgConnectError::Server)?;
        spawn_connection(conn);
        return Ok(client);
    }
    let tls = RustlsConnect(Arc::new(client_config(
        spec.sslmode,
        spec.sslrootcert.as_ref(),
    )?));
    let (client, conn) = spec
        .config
        .connect(tls)
        .await
        .map_err(PgConnectError::Server)?;
    spawn_connection(conn);
    Ok(client)
}

/// A connection error as said: the server's SQLSTATE and message, or the error and its cause.
fn describe(e: &tokio_postgres::Error) -> String {
    use std::error::Error;
    match (e.as_db_error(), e.source()) {
        (Some(db), _) => format!("{}: {}", db.code().code(), db.message()),
        (None, Some(source)) => format!("{e}: {source}"),
        (None, None) => e.to_string(),
    }
}

fn spawn_connection<F>(conn: F)
where
    F: std::future::Future<Output = Result<(), tokio_postgres::Error>> + Send + 'static,
{
    tokio::spawn(async move {
        if let Err(e) = conn.await {
            tracing::warn!(error = %e, "PostgreSQL connection closed");
        }
    });
}

/// The rustls client configuration for `mode`.
pub fn client_config(
    mode: SslMode,
    rootcert: Option<&PathBuf>,
) -> Result<rustls::ClientConfig, PgConnectError> {
    let provider = serve::tls::provider();
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(PgConnectError::Tls)?;
    let verifier: Arc<dyn ServerCertVerifier> = match mode {
        SslMode::Disable | SslMode::Prefer | SslMode::Require => {
            Arc::new(EncryptOnly(provider.clone()))
        }
        SslMode::VerifyCa | SslMode::VerifyFull => {
            let roots = match rootcert {
                Some(path) => serve::tls::read_roots(path).map_err(DatabaseUrlError::RootCert)?,
                None => system_roots()?,
            };
            let webpki = rustls::client::WebPkiServerVerifier::builder_with_provider(
                Arc::new(roots),
                provider,
            )
            .build()
            .map_err(PgConnectError::Verifier)?;
            if mode == SslMode::VerifyFull {
                webpki
            } else {
                Arc::new(ChainOnly(webpki))
            }
        }
    };
    Ok(builder
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth())
}

fn system_roots() -> Result<rustls::RootCertStore, DatabaseUrlError> {
    let found = rustls_native_certs::load_native_certs();
    let mut roots = rustls::RootCertStore::empty();
    let (added, _) = roots.add_parsable_certificates(found.certs);
    if added == 0 {
        return Err(DatabaseUrlError::NoSystemRoots(found.errors.len()));
    }
    Ok(roots)
}

/// `require`/`prefer`: any certificate, but the handshake must still be signed by its key.
#[derive(Debug)]
struct EncryptOnly(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for EncryptOnly {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// `verify-ca`: the chain must verify; the host name need not match.
#[derive(Debug)]
struct ChainOnly(Arc<rustls::client::WebPkiServerVerifier>);

impl ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        // webpki checks the chain before the name: a name error means the chain verified.
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp, now)
        {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

/// tokio-postgres's TLS hook over tokio-rustls.
#[derive(Clone)]
struct RustlsConnect(Arc<rustls::ClientConfig>);

impl<S> tokio_postgres::tls::MakeTlsConnect<S> for RustlsConnect
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    type Stream = TlsStream<S>;
    type TlsConnect = RustlsHandshake;
    type Error = rustls::pki_types::InvalidDnsNameError;

    fn make_tls_connect(&mut self, domain: &str) -> Result<RustlsHandshake, Self::Error> {
        Ok(RustlsHandshake {
            config: self.0.clone(),
            name: ServerName::try_from(domain.to_string())?,
        })
    }
}

struct RustlsHandshake {
    config: Arc<rustls::ClientConfig>,
    name: ServerName<'static>,
}

impl<S> tokio_postgres::tls::TlsConnect<S> for RustlsHandshake
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    type Stream = TlsStream<S>;
    type Error = std::io::Error;
    type Future =
        std::pin::Pin<Box<dyn std::future::Future<Output = std::io::Result<TlsStream<S>>> + Send>>;

    fn connect(self, stream: S) -> Self::Future {
        let connector = tokio_rustls::TlsConnector::from(self.config);
        Box::pin(async move { Ok(TlsStream(connector.connect(self.name, stream).await?)) })
    }
}

/// A client TLS stream as tokio-postgres wants it (no channel binding: SCRAM without `-PLUS`).
pub struct TlsStream<S>(tokio_rustls::client::TlsStream<S>);

impl<S> tokio_postgres::tls::TlsStream for TlsStream<S>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    fn channel_binding(&self) -> tokio_postgres::tls::ChannelBinding {
        tokio_postgres::tls::ChannelBinding::none()
    }
}

impl<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin> tokio::io::AsyncRead
    for TlsStream<S>
{
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin> tokio::io::AsyncWrite
    for TlsStream<S>
{
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sslmode_and_sslrootcert_are_taken_out_of_both_forms() {
        let s = parse("postgresql://u:p%40ss@db.example:5433/fleet?sslmode=verify-full&sslrootcert=%2Fetc%2Fca.crt&application_name=agg").unwrap();
        assert_eq!(s.sslmode, SslMode::VerifyFull);
        assert_eq!(s.sslrootcert, Some(PathBuf::from("/etc/ca.crt")));
        assert_eq!(s.config.get_dbname(), Some("fleet"));
        assert_eq!(s.config.get_password(), Some(&b"p@ss"[..]));
        assert_eq!(s.config.get_application_name(), Some("agg"));
        assert_eq!(s.config.get_ports(), &[5433]);

        let s = parse("host=db.example user='o\\'neil' sslmode = require dbname=fleet").unwrap();
        assert_eq!(s.sslmode, SslMode::Require);
        assert_eq!(s.sslrootcert, None);
        assert_eq!(s.config.get_user(), Some("o'neil"));
        assert_eq!(
            s.config.get_ssl_mode(),
            tokio_postgres::config::SslMode::Require
        );

        let s = parse("postgresql://u@h/db").unwrap();
        assert_eq!(s.sslmode, SslMode::Prefer, "libpq's default");
        assert_eq!(
            s.config.get_connect_timeout(),
            Some(&Duration::from_secs(10))
        );
        assert_eq!(s.config.get_options(), Some("-c statement_timeout=30000"));
        let s = parse("postgresql://u@h/db?sslmode=verify-ca&sslrootcert=system&connect_timeout=3")
            .unwrap();
        assert_eq!((s.sslmode, s.sslrootcert), (SslMode::VerifyCa, None));
        assert_eq!(
            s.config.get_connect_timeout(),
            Some(&Duration::from_secs(3))
        );
        let s = parse("postgresql://u@h/db?sslmode=disable").unwrap();
        assert_eq!(
            s.config.get_ssl_mode(),
            tokio_postgres::config::SslMode::Disable
        );
    }

    #[test]
    fn bad_parameters_are_named() {
        let e = parse("postgresql://u@h/db?sslmode=verify")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("sslmode=verify") && e.contains("verify-full"),
            "{e}"
        );
        let e = parse("host=h sslmode=allow").unwrap_err().to_string();
        assert!(e.contains("allow"), "{e}");
        let e = parse("postgresql://u@h/db?sslcert=/c.pem")
            .unwrap_err()
            .to_string();
        assert!(e.contains("sslcert"), "{e}");
        let e = parse("host=h user='x").unwrap_err().to_string();
        assert!(e.contains("unterminated"), "{e}");
        let e = parse("postgresql://u:secretpw@h/db?sslmode=nope")
            .unwrap_err()
            .to_string();
        assert!(!e.contains("secretpw"), "{e}");
    }
}

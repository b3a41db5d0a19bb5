//! The push's HTTP client, hardened against the target it talks to: rustls only (ring, no
//! OpenSSL: the image is a static musl binary) with the system roots plus `[push] ca_file` and an
//! optional client certificate (mTLS), all re-read when their files change ([`PushClient`]); no
//! redirect is followed (a 302 would turn the POST into a body-less GET that "succeeds"); and at
//! most [`MAX_ERROR_BODY`] bytes of any answer are read, however much the target sends.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// Most bytes of a response body the push ever reads (only of a non-2xx answer, for the log).
pub const MAX_ERROR_BODY: usize = 4096;

/// TLS material of the push, from `[push]`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PushTlsFiles {
    /// PEM certificates trusted in addition to the system roots (`push.ca_file`).
    pub ca_file: Option<PathBuf>,
    /// PEM client certificate chain and its key, for mTLS (`push.client_cert_file`,
    /// `push.client_key_file`).
    pub client_cert_file: Option<PathBuf>,
    pub client_key_file: Option<PathBuf>,
}

/// Why the push client could not be built; names the file and the config key.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("config key `{key}`: {path}: {why}")]
    File {
        key: &'static str,
        path: PathBuf,
        why: String,
    },
    #[error("push TLS setup: {0}")]
    Tls(String),
    #[error("push HTTP client: {0}")]
    Http(String),
}

/// The config key's error for a file that cannot be used.
fn file_error(key: &'static str, e: serve::tls::TlsError) -> ClientError {
    ClientError::File {
        key,
        path: e.path,
        why: e.reason,
    }
}

/// The rustls configuration of the push: system roots (those that parse; none is fine when
/// `ca_file` is given), `ca_file`, and the client certificate when both files are given. The
/// files are read bounded ([`serve::files`]: regular files under a size cap, on a thread of
/// their own under a deadline).
pub fn tls_config(files: &PushTlsFiles) -> Result<rustls::ClientConfig, ClientError> {
    let mut roots = rustls::RootCertStore::empty();
    let native = rustls_native_certs::load_native_certs();
    let (added, _ignored) = roots.add_parsable_certificates(native.certs);
    if let Some(ca) = &files.ca_file {
        let extra = serve::tls::read_roots(ca).map_err(|e| file_error("push.ca_file", e))?;
        roots.roots.extend(extra.roots);
    } else if added == 0 {
        tracing::debug!("no system root certificates found; https:// push needs push.ca_file");
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| ClientError::Tls(e.to_string()))?
        .with_root_certificates(roots);
    match (&files.client_cert_file, &files.client_key_file) {
        (None, None) => Ok(builder.with_no_client_auth()),
        (Some(cert), Some(key)) => {
            let chain =
                serve::tls::read_certs(cert).map_err(|e| file_error("push.client_cert_file", e))?;
            let key_der =
                serve::tls::read_key(key).map_err(|e| file_error("push.client_key_file", e))?;
            builder
                .with_client_auth_cert(chain, key_der)
                .map_err(|e| ClientError::File {
                    key: "push.client_key_file",
                    path: key.clone(),
                    why: format!(
                        "does not match push.client_cert_file {}: {e}",
                        cert.display()
                    ),
                })
        }
        _ => Err(ClientError::Tls(
            "push.client_cert_file and push.client_key_file go together".into(),
        )),
    }
}

/// Makes ring the process-wide rustls provider. reqwest is built with `rustls-no-provider` (its
/// only other rustls choice, aws-lc-rs, needs cmake for the static musl build), so any reqwest
/// client built without a preconfigured TLS config (ours always has one) panics unless a
/// provider is installed first: `main` and the tests' HTTP client call this. Idempotent.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// The push client: `timeout` per request (body included), no redirects, our TLS.
pub fn build(timeout: Duration, files: &PushTlsFiles) -> Result<reqwest::Client, ClientError> {
    reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout)
        .redirect(reqwest::redirect::Policy::none())
        .tls_backend_preconfigured(tls_config(files)?)
        .build()
        .map_err(|e| ClientError::Http(e.to_string()))
}

type Builder = Box<dyn Fn() -> Result<reqwest::Client, ClientError> + Send + Sync>;

/// The push client following its TLS files: rebuilt (new connections, new handshakes) when
/// `push.ca_file`, `push.client_cert_file` or `push.client_key_file` changes on disk, as the
/// server's certificate is ([`serve::reload`]). Take [`PushClient::fresh`] before each push.
#[derive(Clone)]
pub struct PushClient(Arc<serve::reload::Reloading<reqwest::Client, Builder>>);

impl PushClient {
    /// Builds the client now; an error names the config key and the file.
    pub fn load(timeout: Duration, files: &PushTlsFiles) -> Result<PushClient, ClientError> {
        let paths = [
            &files.ca_file,
            &files.client_cert_file,
            &files.client_key_file,
        ]
        .into_iter()
        .flatten()
        .cloned()
        .collect();
        let read = files.clone();
        let builder: Builder = Box::new(move || build(timeout, &read));
        serve::reload::Reloading::load("push TLS material", paths, builder)
            .map(|r| PushClient(Arc::new(r)))
    }

    /// The client as the files hold it now: they are looked at (at most once a second, on a
    /// thread of its own, waited for at most half a second); files that changed but cannot be
    /// used keep the client in force, and the reason is logged with the file's path.
    pub async fn fresh(&self) -> reqwest::Client {
        (*self.0.fresh().await).clone()
    }
}

/// At most `limit` bytes of `resp`'s body; the rest is never read (dropping the response closes
/// the connection).
pub async fn read_capped(mut resp: reqwest::Response, limit: usize) -> Vec<u8> {
    let mut out = Vec::new();
    while out.len() < limit {
        match resp.chunk().await {
            Ok(Some(chunk)) => {
                let room = limit - out.len();
                out.extend_from_slice(&chunk[..chunk.len().min(room)]);
            }
            _ => break,
        }
    }
    out
}

/// A short, printable excerpt of an error body for the log: the `error` of a JSON
/// [`proto::ApiError`], else the first 200 printable characters.
pub fn body_excerpt(body: &[u8]) -> String {
    if let Ok(e) = serde_json::from_slice::<proto::ApiError>(body) {
        return e.error.chars().take(200).collect();
    }
    String::from_utf8_lossy(body)
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(200)
        .collect::<String>()
        .trim()
        .to_string()
}

/// The warning to log at start when a bearer token would travel in clear text: an `http://` URL
/// to anything but a loopback address. `None` when there is nothing to warn about.
pub fn plain_token_warning(url: &str, has_token: bool) -> Option<String> {
    if !has_token {
        return None;
    }
    let parsed = reqwest::Url::parse(url).ok()?;
    if parsed.scheme() != "http" {
        return None;
    }
    let host = parsed.host_str()?;
    let loopback = host.eq_ignore_ascii_case("localhost")
        || host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    (!loopback).then(|| {
        format!(
            "push.url {url} is plain http to a non-loopback host: the bearer token in \
             push.token_file travels in clear text; use https:// (push.ca_file for a private CA)"
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_http_with_a_token_to_a_remote_host_warns() {
        let w = |u| plain_token_warning(u, true);
        assert!(w("http://aggregator:9900").is_some());
        assert!(w("http://10.0.0.5:9900/api/v1/reports").is_some());
        assert!(w("http://127.0.0.1:9900").is_none());
        assert!(w("http://localhost:9900").is_none());
        assert!(w("http://[::1]:9900").is_none());
        assert!(w("https://aggregator:9900").is_none());
        assert!(plain_token_warning("http://aggregator:9900", false).is_none());
    }

    #[test]
    fn excerpts_are_short_and_printable() {
        assert_eq!(body_excerpt(br#"{"error":"bad token"}"#), "bad token");
        let noisy = [b'\x1b', b'[', b'2', b'J'].repeat(100);
        let e = body_excerpt(&noisy);
        assert!(
            e.len() <= 200 && !e.chars().any(|c| c.is_control()),
            "{e:?}"
        );
    }

    #[test]
    fn bad_tls_files_name_the_key_and_path() {
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "not a certificate\n").unwrap();
        let e = tls_config(&PushTlsFiles {
            ca_file: Some(empty.clone()),
            ..PushTlsFiles::default()
        })
        .unwrap_err()
        .to_string();
        assert!(e.contains("push.ca_file") && e.contains("empty.pem"), "{e}");
        let e = tls_config(&PushTlsFiles {
            client_cert_file: Some(empty),
            ..PushTlsFiles::default()
        })
        .unwrap_err()
        .to_string();
        assert!(e.contains("go together"), "{e}");
    }

    /// A CA and a client certificate it signs, and the key of another certificate.
    fn pki(dir: &std::path::Path) -> PushTlsFiles {
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let ca = ca_params.self_signed(&ca_key).unwrap();
        let issuer = rcgen::Issuer::new(ca_params, ca_key);
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["node-a".to_string()])
            .unwrap()
            .signed_by(&key, &issuer)
            .unwrap();
        let files = PushTlsFiles {
            ca_file: Some(dir.join("ca.pem")),
            client_cert_file: Some(dir.join("client.pem")),
            client_key_file: Some(dir.join("client.key")),
        };
        std::fs::write(dir.join("ca.pem"), ca.pem()).unwrap();
        std::fs::write(dir.join("client.pem"), cert.pem()).unwrap();
        std::fs::write(dir.join("client.key"), key.serialize_pem()).unwrap();
        let other = rcgen::KeyPair::generate().unwrap();
        std::fs::write(dir.join("other.key"), other.serialize_pem()).unwrap();
        files
    }

    #[test]
    fn tls_files_are_read_bounded_and_a_key_must_match_its_certificate() {
        let dir = tempfile::tempdir().unwrap();
        let good = pki(dir.path());
        tls_config(&good).unwrap();

        let fifo = dir.path().join("fifo.pem");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::S_IRWXU).unwrap();
        let zero = dir.path().join("zero.pem");
        std::os::unix::fs::symlink("/dev/zero", &zero).unwrap();
        for (path, says) in [(&fifo, "a FIFO"), (&zero, "a character device")] {
            let t0 = std::time::Instant::now();
            let e = tls_config(&PushTlsFiles {
                ca_file: Some(path.clone()),
                ..good.clone()
            })
            .unwrap_err()
            .to_string();
            assert!(
                e.contains("push.ca_file") && e.contains(&path.display().to_string()),
                "{e}"
            );
            assert!(e.contains(says), "{e}");
            assert!(t0.elapsed() < Duration::from_secs(2), "{:?}", t0.elapsed());
            let e = tls_config(&PushTlsFiles {
                client_key_file: Some(path.clone()),
                ..good.clone()
            })
            .unwrap_err()
            .to_string();
            assert!(
                e.contains("push.client_key_file") && e.contains(says),
                "{e}"
            );
        }

        let e = tls_config(&PushTlsFiles {
            client_key_file: Some(dir.path().join("other.key")),
            ..good.clone()
        })
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("push.client_key_file")
                && e.contains("other.key")
                && e.contains("does not match"),
            "{e}"
        );
        let garbage = dir.path().join("garbage.pem");
        std::fs::write(&garbage, "-----BEGIN CERTIFICATE-----\n!!!\n").unwrap();
        let e = tls_config(&PushTlsFiles {
            client_cert_file: Some(garbage),
            ..good.clone()
        })
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("push.client_cert_file") && e.contains("garbage.pem"),
            "{e}"
        );
    }

    #[test]
    fn the_push_client_is_built_from_the_files_and_names_a_bad_one() {
        install_crypto_provider();
        let dir = tempfile::tempdir().unwrap();
        let good = pki(dir.path());
        PushClient::load(Duration::from_secs(1), &good).unwrap();
        let e = PushClient::load(
            Duration::from_secs(1),
            &PushTlsFiles {
                ca_file: Some(dir.path().join("missing.pem")),
                ..good
            },
        )
        .err()
        .unwrap()
        .to_string();
        assert!(
            e.contains("push.ca_file") && e.contains("missing.pem"),
            "{e}"
        );
    }
}

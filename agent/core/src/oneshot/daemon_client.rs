//! Reading the running daemon's cached verdict (its `/health`) for `check --from-daemon`.
//!
//! Where: `--from-daemon unix:/path` reads that socket; `--from-daemon HOST:PORT` reads the
//! config's `local_socket.path` when the config names one (no TLS, no auth there: the file's
//! permissions are the access control), else loopback HTTP, or HTTPS when the config's web
//! config serves TLS (trusting the system roots, `push.ca_file` and the certificates of the web
//! config's `cert_file`). Basic auth cannot be answered from the web config (it holds bcrypt
//! hashes only): a 401 says to use the local socket.

use crate::config::Config;
use proto::NodeReport;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// A `--from-daemon` value that is not a loopback `HOST:PORT` or `unix:/absolute/path`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DaemonAddrError {
    #[error("{0}: the socket path must be absolute")]
    RelativeSocket(String),
    #[error("{arg}: neither HOST:PORT nor unix:/path ({source})")]
    Unparsable {
        arg: String,
        #[source]
        source: std::net::AddrParseError,
    },
    #[error("{0}: only a loopback address is allowed (the daemon on this node)")]
    NotLoopback(SocketAddr),
}

/// Why the daemon's verdict could not be read. [`DaemonClientError::Config`]: the config (the
/// web config, or a certificate file it or `push.ca_file` names) is at fault.
#[derive(Debug, thiserror::Error)]
pub enum DaemonClientError {
    /// The config key and what is wrong with the file it names.
    #[error("config key `{key}`: {source}")]
    Config {
        key: &'static str,
        #[source]
        source: Box<serve::web_config::WebConfigError>,
    },
    /// A certificate file trusted for HTTPS to the daemon cannot be read.
    #[error("{}: {source}", path.display())]
    Roots {
        path: PathBuf,
        #[source]
        source: rustls_pki_types::pem::Error,
    },
    #[error("TLS setup: {0}")]
    Tls(#[source] rustls::Error),
    #[error("HTTP client: {0}")]
    Client(#[source] reqwest::Error),
    /// The daemon did not answer: who, where, and the OS's reason first.
    #[error("cannot reach {who} ({why}): {place}")]
    Unreachable {
        who: &'static str,
        why: String,
        place: String,
    },
    #[error(
        "{0} asks for basic auth (its web config); read the verdict through its local \
         socket instead (config key `local_socket.path`, or --from-daemon unix:PATH)"
    )]
    BasicAuth(String),
    #[error("{who} answered {status} to GET /health")]
    Status {
        who: String,
        status: reqwest::StatusCode,
    },
    #[error("{who} did not send its verdict within {timeout:?}")]
    Timeout { who: String, timeout: Duration },
    #[error("{who} sent no verdict ({excerpt}): {source}")]
    NoVerdict {
        who: String,
        excerpt: String,
        #[source]
        source: serde_json::Error,
    },
}

/// Largest `/health` body read from the daemon.
const MAX_BODY: usize = 4 << 20;

/// The value of `--from-daemon`: `HOST:PORT` (loopback only) or `unix:/path/to/agent.sock`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DaemonAddr {
    Tcp(SocketAddr),
    Unix(PathBuf),
}

impl std::str::FromStr for DaemonAddr {
    type Err = DaemonAddrError;
    fn from_str(s: &str) -> Result<Self, DaemonAddrError> {
        if let Some(path) = s.strip_prefix("unix:") {
            let path = PathBuf::from(path);
            if !path.is_absolute() {
                return Err(DaemonAddrError::RelativeSocket(s.to_string()));
            }
            return Ok(DaemonAddr::Unix(path));
        }
        let addr: SocketAddr = s.parse().map_err(|source| DaemonAddrError::Unparsable {
            arg: s.to_string(),
            source,
        })?;
        if !addr.ip().is_loopback() {
            return Err(DaemonAddrError::NotLoopback(addr));
        }
        Ok(DaemonAddr::Tcp(addr))
    }
}

impl std::fmt::Display for DaemonAddr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DaemonAddr::Tcp(a) => a.fmt(f),
            DaemonAddr::Unix(p) => write!(f, "unix:{}", p.display()),
        }
    }
}

/// Where and how to ask.
#[derive(Debug)]
pub enum Target {
    Unix(PathBuf),
    Tcp {
        addr: SocketAddr,
        /// Roots to trust for HTTPS; `None`: plain HTTP.
        tls: Option<rustls::RootCertStore>,
    },
}

impl Target {
    /// The target for `addr` under `config` (see the module doc).
    pub fn resolve(addr: &DaemonAddr, config: &Config) -> Result<Target, DaemonClientError> {
        match (addr, &config.local_socket.path) {
            (DaemonAddr::Unix(p), _) => Ok(Target::Unix(p.clone())),
            (DaemonAddr::Tcp(_), Some(p)) => Ok(Target::Unix(p.clone())),
            (DaemonAddr::Tcp(addr), None) => Ok(Target::Tcp {
                addr: *addr,
                tls: https_roots(config)?,
            }),
        }
    }

    /// Why the request failed, the OS's reason first (NPD shows only the first 80 bytes).
    fn unreachable(&self, e: &reqwest::Error) -> DaemonClientError {
        let (who, place) = match self {
            Target::Unix(p) => ("the daemon's socket", p.display().to_string()),
            Target::Tcp { addr, .. } => ("the daemon", addr.to_string()),
        };
        let mut why = e.to_string();
        let mut source = std::error::Error::source(e);
        while let Some(s) = source {
            why = s.to_string();
            if s.downcast_ref::<std::io::Error>().is_some() {
                break;
            }
            source = s.source();
        }
        if e.is_timeout() {
            why = "timed out".into();
        }
        DaemonClientError::Unreachable { who, why, place }
    }

    fn describe(&self) -> String {
        match self {
            Target::Unix(p) => format!("the daemon's socket {}", p.display()),
            Target::Tcp { addr, .. } => format!("the daemon at {addr}"),
        }
    }

    /// The daemon's verdict (its `/health`, 200 or 503), within `timeout` in all.
    pub async fn fetch(&self, timeout: Duration) -> Result<NodeReport, DaemonClientError> {
        let who = self.describe();
        let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
        let tls_config = |roots: rustls::RootCertStore| {
            rustls::ClientConfig::builder_with_provider(provider.clone())
                .with_safe_default_protocol_versions()
                .map(|b| b.with_root_certificates(roots).with_no_client_auth())
                .map_err(DaemonClientError::Tls)
        };
        let builder = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy();
        let (builder, url) = match self {
            Target::Unix(path) => (
                builder
                    .unix_socket(path.as_path())
                    .tls_backend_preconfigured(tls_config(rustls::RootCertStore::empty())?),
                "http://localhost/health".to_string(),
            ),
            Target::Tcp { addr, tls: None } => (
                builder.tls_backend_preconfigured(tls_config(rustls::RootCertStore::empty())?),
                format!("http://{addr}/health"),
            ),
            Target::Tcp {
                addr,
                tls: Some(roots),
            } => (
                builder.tls_backend_preconfigured(tls_config(roots.clone())?),
                format!("https://{addr}/health"),
            ),
        };
        let client = builder.build().map_err(DaemonClientError::Client)?;
        let resp = client
            .get(&url)
            .send()
            .await
            .map_err(|e| self.unreachable(&e))?;
        let status = resp.status();
        if status == reqwest::StatusCode::UNAUTHORIZED {
            return Err(DaemonClientError::BasicAuth(who));
        }
        if !(status == reqwest::StatusCode::OK
            || status == reqwest::StatusCode::SERVICE_UNAVAILABLE)
        {
            return Err(DaemonClientError::Status { who, status });
        }
        let body = tokio::time::timeout(
            timeout,
            crate::outputs::push::client::read_capped(resp, MAX_BODY),
        )
        .await
        .map_err(|_| DaemonClientError::Timeout {
            who: who.clone(),
            timeout,
        })?;
        serde_json::from_slice::<NodeReport>(&body).map_err(|source| DaemonClientError::NoVerdict {
            who,
            excerpt: crate::outputs::yarn::one_line(
                &String::from_utf8_lossy(&body)
                    .chars()
                    .take(80)
                    .collect::<String>(),
            ),
            source,
        })
    }
}

/// The roots for HTTPS to the daemon when its web config serves TLS: the system roots,
/// `push.ca_file`, and the certificates of the web config's `cert_file` (a self-signed one, or a
/// chain that carries its CA). `None` when the daemon serves plain HTTP.
fn https_roots(config: &Config) -> Result<Option<rustls::RootCertStore>, DaemonClientError> {
    let loaded = config
        .web_config()
        .map_err(|source| DaemonClientError::Config {
            key: "web_config_file",
            source: Box::new(source),
        })?;
    let Some(tls) = loaded.as_ref().and_then(|w| w.tls.as_ref()) else {
        return Ok(None);
    };
    let mut roots = rustls::RootCertStore::empty();
    roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
    let mut files = vec![tls.files().cert_file.clone()];
    files.extend(config.push.ca_file.clone());
    for file in files {
        use rustls_pki_types::pem::PemObject;
        let certs = rustls_pki_types::CertificateDer::pem_file_iter(&file)
            .and_then(|i| i.collect::<Result<Vec<_>, _>>())
            .map_err(|source| DaemonClientError::Roots {
                path: file.clone(),
                source,
            })?;
        roots.add_parsable_certificates(certs);
    }
    Ok(Some(roots))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn daemon_addresses_parse_loopback_or_unix_only() {
        assert_eq!(
            "unix:/run/gluten-node-agent/agent.sock".parse(),
            Ok(DaemonAddr::Unix("/run/gluten-node-agent/agent.sock".into()))
        );
        assert!(
            "127.0.0.1:9899"
                .parse::<DaemonAddr>()
                .is_ok_and(|a| a.to_string() == "127.0.0.1:9899")
        );
        assert!(
            "10.0.0.1:9899"
                .parse::<DaemonAddr>()
                .unwrap_err()
                .to_string()
                .contains("loopback")
        );
        assert!(
            "unix:agent.sock"
                .parse::<DaemonAddr>()
                .unwrap_err()
                .to_string()
                .contains("absolute")
        );
        let mut config = Config::default();
        assert!(matches!(
            Target::resolve(&"127.0.0.1:9899".parse().unwrap(), &config),
            Ok(Target::Tcp { tls: None, .. })
        ));
        config.local_socket.path = Some("/run/a.sock".into());
        assert!(matches!(
            Target::resolve(&"127.0.0.1:9899".parse().unwrap(), &config),
            Ok(Target::Unix(p)) if p == std::path::Path::new("/run/a.sock")
        ));
    }
}

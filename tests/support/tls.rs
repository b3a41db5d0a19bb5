//! Certificates made in the test with rcgen (a CA and a server certificate it signs), written
//! as PEM files, and HTTPS requests through reqwest trusting exactly one CA.

use crate::http::Response;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// A CA and a server certificate for `localhost` and 127.0.0.1 signed by it, as PEM text.
pub struct Pki {
    pub ca_pem: String,
    pub cert_pem: String,
    pub key_pem: String,
    issuer: rcgen::Issuer<'static, rcgen::KeyPair>,
}

/// A client certificate and its key, as PEM text.
#[derive(Clone)]
pub struct ClientCert {
    pub cert_pem: String,
    pub key_pem: String,
}

impl Pki {
    pub fn new() -> Pki {
        Self::for_names(&["localhost", "127.0.0.1"])
    }

    /// A CA and a server certificate for `names` (DNS names or IP addresses).
    pub fn for_names(names: &[&str]) -> Pki {
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca_params.distinguished_name.push(
            rcgen::DnType::CommonName,
            format!("gluten test CA {}", unique()),
        );
        let ca = ca_params.self_signed(&ca_key).unwrap();
        let issuer = rcgen::Issuer::new(ca_params, ca_key);
        let key = rcgen::KeyPair::generate().unwrap();
        let params =
            rcgen::CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
                .unwrap();
        let cert = params.signed_by(&key, &issuer).unwrap();
        Pki {
            ca_pem: ca.pem(),
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            issuer,
        }
    }

    /// A client certificate signed by this CA with DNS SANs `sans` (none: no SAN extension)
    /// and, optionally, a subject CN.
    pub fn client_cert(&self, sans: &[&str], cn: Option<&str>) -> ClientCert {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params =
            rcgen::CertificateParams::new(sans.iter().map(|n| n.to_string()).collect::<Vec<_>>())
                .unwrap();
        if let Some(cn) = cn {
            params
                .distinguished_name
                .push(rcgen::DnType::CommonName, cn);
        }
        params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        ClientCert {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        }
    }

    /// Writes `ca.crt`, `tls.crt` and `tls.key` into `dir` (each renamed into place, as the
    /// kubelet swaps a Secret's files); returns the paths of (ca, cert, key).
    pub fn write(&self, dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
        std::fs::create_dir_all(dir).unwrap();
        for (name, text) in [
            ("ca.crt", &self.ca_pem),
            ("tls.crt", &self.cert_pem),
            ("tls.key", &self.key_pem),
        ] {
            let tmp = dir.join(format!(".{name}.new"));
            std::fs::write(&tmp, text).unwrap();
            std::fs::rename(&tmp, dir.join(name)).unwrap();
        }
        (dir.join("ca.crt"), dir.join("tls.crt"), dir.join("tls.key"))
    }
}

impl Default for Pki {
    fn default() -> Self {
        Self::new()
    }
}

/// Makes rustls's ring provider the process default (reqwest is built without a provider of its
/// own, and wants one even for plain HTTP clients). Idempotent.
pub fn install_crypto_provider() {
    agent::outputs::push::client::install_crypto_provider();
}

/// `GET https://localhost:<port><path>` (connecting to `addr`) trusting only `ca_pem`, with
/// optional extra headers; no pooling, 5 s timeout. Errors carry reqwest's text (handshake
/// failures included).
pub fn get_tls(
    addr: SocketAddr,
    path: &str,
    ca_pem: &str,
    headers: &[(&str, &str)],
) -> Result<Response, String> {
    request_tls(addr, "GET", path, ca_pem, None, headers, None)
}

/// One request to `https://localhost:<port><path>` (connecting to `addr`) trusting only
/// `ca_pem`, presenting `client` when given; no pooling, 5 s timeout. Errors carry reqwest's
/// text (handshake failures included).
pub fn request_tls(
    addr: SocketAddr,
    method: &str,
    path: &str,
    ca_pem: &str,
    client: Option<&ClientCert>,
    headers: &[(&str, &str)],
    body: Option<&[u8]>,
) -> Result<Response, String> {
    install_crypto_provider();
    let mut roots = rustls::RootCertStore::empty();
    use rustls::pki_types::pem::PemObject;
    for cert in rustls::pki_types::CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots
            .add(cert.map_err(|e| e.to_string())?)
            .map_err(|e| e.to_string())?;
    }
    let builder = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| e.to_string())?
    .with_root_certificates(roots);
    let config = match client {
        None => builder.with_no_client_auth(),
        Some(c) => {
            let certs = rustls::pki_types::CertificateDer::pem_slice_iter(c.cert_pem.as_bytes())
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| e.to_string())?;
            let key = rustls::pki_types::PrivateKeyDer::from_pem_slice(c.key_pem.as_bytes())
                .map_err(|e| e.to_string())?;
            builder
                .with_client_auth_cert(certs, key)
                .map_err(|e| e.to_string())?
        }
    };
    let client = reqwest::blocking::Client::builder()
        .no_proxy()
        .pool_max_idle_per_host(0)
        .tls_backend_preconfigured(config)
        .resolve("localhost", addr)
        .timeout(Duration::from_secs(5))
        .build()
        .map_err(|e| e.to_string())?;
    let method = reqwest::Method::from_bytes(method.as_bytes()).map_err(|e| e.to_string())?;
    let mut req = client.request(method, format!("https://localhost:{}{path}", addr.port()));
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    if let Some(b) = body {
        req = req.body(b.to_vec());
    }
    let resp = req.send().map_err(|e| format!("{e:?}"))?;
    let status = resp.status().as_u16();
    let headers = resp
        .headers()
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_string(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    let body = resp.text().map_err(|e| e.to_string())?;
    Ok(Response {
        status,
        headers,
        body,
    })
}

/// A different number on each call (CA names differ, as real ones do).
fn unique() -> u64 {
    static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    nanos ^ N.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

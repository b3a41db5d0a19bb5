//! The node a client certificate speaks for: its DNS subject alternative names, or its subject
//! CN when it has no SAN extension at all. The certificate was verified by TLS against
//! `tls_client_ca_file` before any of this runs; this only reads names out of it.

use x509_parser::error::X509Error;
use x509_parser::extensions::GeneralName;
use x509_parser::prelude::{FromDer, X509Certificate};

/// Why a client certificate names no node.
#[derive(Debug, thiserror::Error)]
pub enum CertNameError {
    #[error("unparsable: {0}")]
    Unparsable(#[source] x509_parser::nom::Err<X509Error>),
    #[error("bad subjectAltName extension: {0}")]
    BadSubjectAltName(#[source] X509Error),
    #[error("its subjectAltName holds no DNS name (the CN is used only without a SAN)")]
    NoDnsName,
    #[error("it has neither a subjectAltName nor a subject CN")]
    Nameless,
}

/// The node names a (verified) client certificate carries: every DNS SAN (any of them may be
/// pushed for), or the subject CN when the certificate has no SAN extension. An error when it
/// cannot be parsed, or names nothing (a SAN extension without a DNS name, no CN).
pub fn node_names(der: &[u8]) -> Result<Vec<String>, CertNameError> {
    let (_, cert) = X509Certificate::from_der(der).map_err(CertNameError::Unparsable)?;
    let san = cert
        .subject_alternative_name()
        .map_err(CertNameError::BadSubjectAltName)?;
    if let Some(san) = san {
        let dns: Vec<String> = san
            .value
            .general_names
            .iter()
            .filter_map(|n| match n {
                GeneralName::DNSName(d) => Some(d.to_string()),
                _ => None,
            })
            .collect();
        if dns.is_empty() {
            return Err(CertNameError::NoDnsName);
        }
        return Ok(dns);
    }
    let cn = cert
        .subject()
        .iter_common_name()
        .next()
        .and_then(|cn| cn.as_str().ok())
        .map(str::to_string);
    match cn {
        Some(cn) if !cn.is_empty() => Ok(vec![cn]),
        _ => Err(CertNameError::Nameless),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cert(sans: &[&str], cn: Option<&str>) -> Vec<u8> {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut p =
            rcgen::CertificateParams::new(sans.iter().map(|s| s.to_string()).collect::<Vec<_>>())
                .unwrap();
        if let Some(cn) = cn {
            p.distinguished_name.push(rcgen::DnType::CommonName, cn);
        }
        p.self_signed(&key).unwrap().der().to_vec()
    }

    #[test]
    fn dns_sans_win_over_the_cn() {
        assert_eq!(
            node_names(&cert(&["node-a", "node-a.example"], Some("other"))).unwrap(),
            vec!["node-a", "node-a.example"]
        );
        assert_eq!(
            node_names(&cert(&[], Some("node-cn"))).unwrap(),
            vec!["node-cn"]
        );
        // A SAN of IP addresses only: the CN does not count.
        let e = node_names(&cert(&["10.0.0.1"], Some("node-cn")))
            .unwrap_err()
            .to_string();
        assert!(e.contains("no DNS name"), "{e}");
        assert!(node_names(b"junk").is_err());
    }
}

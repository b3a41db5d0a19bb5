//! Kubernetes-like service-account tokens minted in the test: signing keys (RSA from a fixture,
//! since ring cannot generate RSA keys; EC P-256 from rcgen), the JWKS the aggregator reads, and
//! tokens with the claims a projected service-account token carries.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use rustls_pki_types::pem::PemObject;

/// A signing key: its algorithm, kid, the encoding key and its public JWK.
pub struct SigningKey {
    pub alg: Algorithm,
    pub kid: String,
    key: EncodingKey,
    pub jwk: serde_json::Value,
}

impl SigningKey {
    /// The fixture RSA key (RS256).
    pub fn rsa(kid: &str) -> SigningKey {
        let pem = std::fs::read(crate::fixture("jwt/rsa-test-key.pem")).unwrap();
        let der = rustls_pki_types::PrivatePkcs1KeyDer::from_pem_slice(&pem).unwrap();
        let kp = ring::signature::RsaKeyPair::from_der(der.secret_pkcs1_der()).unwrap();
        let public = ring::rsa::PublicKeyComponents::<Vec<u8>>::from(kp.public());
        let strip = |b: &[u8]| {
            let start = b.iter().position(|x| *x != 0).unwrap_or(b.len());
            b[start..].to_vec()
        };
        SigningKey {
            alg: Algorithm::RS256,
            kid: kid.into(),
            key: EncodingKey::from_rsa_der(der.secret_pkcs1_der()),
            jwk: serde_json::json!({
                "use": "sig", "kty": "RSA", "kid": kid, "alg": "RS256",
                "n": B64.encode(strip(&public.n)), "e": B64.encode(strip(&public.e)),
            }),
        }
    }

    /// A fresh EC P-256 key (ES256).
    pub fn ec(kid: &str) -> SigningKey {
        let kp = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let point = kp.public_key_raw().to_vec();
        assert_eq!(point.len(), 65, "uncompressed P-256 point");
        SigningKey {
            alg: Algorithm::ES256,
            kid: kid.into(),
            key: EncodingKey::from_ec_der(&kp.serialize_der()),
            jwk: serde_json::json!({
                "use": "sig", "kty": "EC", "kid": kid, "alg": "ES256", "crv": "P-256",
                "x": B64.encode(&point[1..33]), "y": B64.encode(&point[33..]),
            }),
        }
    }

    /// A token of `claims`, signed by this key.
    pub fn sign(&self, claims: &serde_json::Value) -> String {
        let mut header = Header::new(self.alg);
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, claims, &self.key).unwrap()
    }
}

/// A JWKS document of `keys`' public halves.
pub fn jwks(keys: &[&SigningKey]) -> String {
    serde_json::json!({"keys": keys.iter().map(|k| k.jwk.clone()).collect::<Vec<_>>()}).to_string()
}

/// The claims of a projected service-account token for a pod on `node` (None: no node claim),
/// valid from now for an hour (`exp_offset` seconds moves the expiry).
pub fn service_account_claims(
    issuer: &str,
    audience: &str,
    subject: &str,
    node: Option<&str>,
    exp_offset: i64,
) -> serde_json::Value {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let mut k8s = serde_json::json!({
        "namespace": "gluten-node-agent",
        "pod": {"name": "gluten-node-agent-x1", "uid": "u1"},
        "serviceaccount": {"name": "gluten-node-agent", "uid": "u2"},
    });
    if let Some(node) = node {
        k8s["node"] = serde_json::json!({"name": node, "uid": "u3"});
    }
    serde_json::json!({
        "iss": issuer, "aud": [audience], "sub": subject,
        "iat": now, "nbf": now, "exp": now + 3600 + exp_offset,
        "kubernetes.io": k8s,
    })
}

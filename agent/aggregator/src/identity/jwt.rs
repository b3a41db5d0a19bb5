//! Kubernetes service-account tokens (projected, audience-bound JWTs) verified locally against
//! the cluster's JWKS (`/openid/v1/jwks`, saved to `service_account_jwks_file` and re-read when
//! it changes): RS256 or ES256 signature, `exp`/`nbf` (60 s leeway), `iss`, `aud`, `sub`, and the
//! node from the `kubernetes.io` -> `node` -> `name` claim (Kubernetes 1.30+ puts it in tokens of
//! pods bound to a node). `jsonwebtoken` 9 does the JOSE parts on `ring`.

use arc_swap::ArcSwap;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A JWKS file that cannot be used (a configuration problem), naming the file.
#[derive(Debug, thiserror::Error)]
pub enum JwksError {
    #[error("{}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: not a JWKS (a JSON object with `keys`): {source}", path.display())]
    NotJwks {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("{}: keys[{index}]: {source}", path.display())]
    Key {
        path: PathBuf,
        index: usize,
        #[source]
        source: jsonwebtoken::errors::Error,
    },
    #[error("{}: no RS256 or ES256 (P-256) signing key", path.display())]
    NoSigningKey { path: PathBuf },
}

/// Why a service-account token is refused: the sentence of the 401.
#[derive(Debug, thiserror::Error)]
pub enum TokenRefused {
    #[error("not a JWT: {0}")]
    NotJwt(#[source] jsonwebtoken::errors::Error),
    #[error("algorithm {0:?} is not accepted (RS256 or ES256)")]
    Algorithm(Algorithm),
    #[error("no {alg:?} key with kid {kid:?} in {}", file.display())]
    NoKey {
        alg: Algorithm,
        kid: String,
        file: PathBuf,
    },
    #[error("the signature does not verify with any key of {}", file.display())]
    Signature { file: PathBuf },
    #[error("expired (exp is past, {LEEWAY_SECONDS} s leeway)")]
    Expired,
    #[error("not valid yet (nbf is ahead, {LEEWAY_SECONDS} s leeway)")]
    NotYetValid,
    #[error("issuer (iss) is not {0:?} (service_account_issuer)")]
    Issuer(String),
    #[error("audience (aud) is not {0:?} (service_account_audience)")]
    Audience(String),
    #[error("subject (sub) is not {0:?} (service_account_subject)")]
    Subject(String),
    #[error("the {0} claim is missing")]
    MissingClaim(String),
    #[error("invalid: {0}")]
    Invalid(#[source] jsonwebtoken::errors::Error),
    #[error(
        "the token{} has no kubernetes.io.node.name claim, so it names no node \
         (Kubernetes 1.30 and later put the pod's node in projected service-account tokens)",
        pod_note(.pod)
    )]
    NoNode { pod: Option<String> },
}

fn pod_note(pod: &Option<String>) -> String {
    pod.as_ref()
        .map_or(String::new(), |p| format!(" (pod {p:?})"))
}

/// Seconds of clock skew allowed on `exp` and `nbf`.
pub const LEEWAY_SECONDS: u64 = 60;

/// What a token must say, besides a good signature.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Expect {
    pub issuer: String,
    pub audience: String,
    pub subject: String,
}

struct Key {
    kid: Option<String>,
    alg: Algorithm,
    key: DecodingKey,
}

/// A verifier following its JWKS file (looked at, at most once a second, when a token arrives;
/// a file that turns bad keeps the previous keys).
pub struct Verifier {
    file: PathBuf,
    expect: Expect,
    keys: ArcSwap<Vec<Key>>,
    checked: Mutex<(Instant, Option<Stamp>)>,
}

/// What identifies a file's version: inode, size, modification time.
type Stamp = (u64, u64, i64, i64);

fn stamp(path: &Path) -> Option<Stamp> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path)
        .ok()
        .map(|m| (m.ino(), m.size(), m.mtime(), m.mtime_nsec()))
}

/// Whether a bearer token has a JWT's shape (three dot-separated parts).
pub fn looks_like_jwt(token: &str) -> bool {
    token.split('.').count() == 3
}

/// The RS256 and ES256 (P-256) signing keys of a JWKS file; other keys are skipped. An error
/// naming the file when it is unreadable, not a JWKS, or holds no usable key.
fn read_keys(path: &Path) -> Result<Vec<Key>, JwksError> {
    let path_buf = || path.to_path_buf();
    let text = std::fs::read_to_string(path).map_err(|source| JwksError::Read {
        path: path_buf(),
        source,
    })?;
    #[derive(Deserialize)]
    struct Set {
        keys: Vec<serde_json::Value>,
    }
    let set: Set = serde_json::from_str(&text).map_err(|source| JwksError::NotJwks {
        path: path_buf(),
        source,
    })?;
    let mut keys = Vec::new();
    for (i, v) in set.keys.into_iter().enumerate() {
        let Ok(jwk) = serde_json::from_value::<Jwk>(v) else {
            tracing::debug!(file = %path.display(), index = i, "JWKS key skipped: not a key jsonwebtoken reads");
            continue;
        };
        if matches!(jwk.common.public_key_use, Some(PublicKeyUse::Encryption)) {
            continue;
        }
        let alg = match &jwk.algorithm {
            AlgorithmParameters::RSA(_) => Algorithm::RS256,
            AlgorithmParameters::EllipticCurve(ec) if ec.curve == EllipticCurve::P256 => {
                Algorithm::ES256
            }
            _ => continue,
        };
        if let Some(declared) = jwk.common.key_algorithm
            && format!("{declared:?}") != format!("{alg:?}")
        {
            continue;
        }
        let key = DecodingKey::from_jwk(&jwk).map_err(|source| JwksError::Key {
            path: path_buf(),
            index: i,
            source,
        })?;
        keys.push(Key {
            kid: jwk.common.key_id.clone(),
            alg,
            key,
        });
    }
    if keys.is_empty() {
        return Err(JwksError::NoSigningKey { path: path_buf() });
    }
    Ok(keys)
}

/// The claims read: the subject (checked by the validation) and the node.
#[derive(Deserialize)]
struct Claims {
    #[serde(rename = "kubernetes.io")]
    kubernetes: Option<KubernetesClaims>,
}

#[derive(Deserialize)]
struct KubernetesClaims {
    node: Option<Named>,
    pod: Option<Named>,
}

#[derive(Deserialize)]
struct Named {
    name: String,
}

impl Verifier {
    /// Reads the JWKS now; an error names the file.
    pub fn load(file: &Path, expect: Expect) -> Result<Verifier, JwksError> {
        let seen = stamp(file);
        let keys = read_keys(file)?;
        Ok(Verifier {
            file: file.to_path_buf(),
            expect,
            keys: ArcSwap::from_pointee(keys),
            checked: Mutex::new((Instant::now(), seen)),
        })
    }

    fn reload_if_changed(&self) {
        let mut checked = self.checked.lock().unwrap_or_else(|e| e.into_inner());
        if checked.0.elapsed() < Duration::from_secs(1) {
            return;
        }
        checked.0 = Instant::now();
        let now = stamp(&self.file);
        if now == checked.1 {
            return;
        }
        checked.1 = now;
        drop(checked);
        match read_keys(&self.file) {
            Ok(keys) => {
                tracing::info!(file = %self.file.display(), keys = keys.len(), "service-account JWKS reloaded");
                self.keys.store(Arc::new(keys));
            }
            Err(e) => {
                tracing::error!(error = %e, "service-account JWKS changed but cannot be used; keeping the previous keys")
            }
        }
    }

    /// The node a service-account token speaks for, or why it is refused.
    pub fn verify(&self, token: &str) -> Result<String, TokenRefused> {
        self.reload_if_changed();
        let header = jsonwebtoken::decode_header(token).map_err(TokenRefused::NotJwt)?;
        if !matches!(header.alg, Algorithm::RS256 | Algorithm::ES256) {
            return Err(TokenRefused::Algorithm(header.alg));
        }
        let keys = self.keys.load();
        let candidates: Vec<&Key> = keys
            .iter()
            .filter(|k| k.alg == header.alg)
            .filter(|k| header.kid.is_none() || k.kid.is_none() || k.kid == header.kid)
            .collect();
        if candidates.is_empty() {
            return Err(TokenRefused::NoKey {
                alg: header.alg,
                kid: header.kid.as_deref().unwrap_or("(none)").to_string(),
                file: self.file.clone(),
            });
        }
        let e = &self.expect;
        let mut validation = Validation::new(header.alg);
        validation.set_issuer(&[&e.issuer]);
        validation.set_audience(&[&e.audience]);
        validation.sub = Some(e.subject.clone());
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.validate_nbf = true;
        validation.leeway = LEEWAY_SECONDS;
        for k in candidates {
            match jsonwebtoken::decode::<Claims>(token, &k.key, &validation) {
                Ok(data) => return node_of(data.claims),
                Err(err) if *err.kind() == ErrorKind::InvalidSignature => continue,
                Err(err) => return Err(self.describe(err)),
            }
        }
        Err(TokenRefused::Signature {
            file: self.file.clone(),
        })
    }

    fn describe(&self, err: jsonwebtoken::errors::Error) -> TokenRefused {
        let e = &self.expect;
        match err.kind() {
            ErrorKind::ExpiredSignature => TokenRefused::Expired,
            ErrorKind::ImmatureSignature => TokenRefused::NotYetValid,
            ErrorKind::InvalidIssuer => TokenRefused::Issuer(e.issuer.clone()),
            ErrorKind::InvalidAudience => TokenRefused::Audience(e.audience.clone()),
            ErrorKind::InvalidSubject => TokenRefused::Subject(e.subject.clone()),
            ErrorKind::MissingRequiredClaim(c) => TokenRefused::MissingClaim(c.clone()),
            _ => TokenRefused::Invalid(err),
        }
    }
}

fn node_of(claims: Claims) -> Result<String, TokenRefused> {
    let k = claims.kubernetes;
    match k.as_ref().and_then(|k| k.node.as_ref()) {
        Some(n) if !n.name.is_empty() => Ok(n.name.clone()),
        _ => Err(TokenRefused::NoNode {
            pod: k.and_then(|k| k.pod).map(|p| p.name),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;

    fn ec_jwk(kid: &str) -> serde_json::Value {
        let kp = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let p = kp.public_key_raw();
        serde_json::json!({"kty": "EC", "crv": "P-256", "kid": kid, "alg": "ES256",
            "x": B64.encode(&p[1..33]), "y": B64.encode(&p[33..])})
    }

    #[test]
    fn jwks_keeps_signing_keys_and_names_the_file_otherwise() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("jwks.json");
        let expect = Expect {
            issuer: "i".into(),
            audience: "a".into(),
            subject: "s".into(),
        };
        let set = serde_json::json!({"keys": [
            ec_jwk("sig"),
            {"kty": "RSA", "use": "enc", "kid": "enc", "n": "AQAB", "e": "AQAB"},
            {"kty": "oct", "k": "c2VjcmV0"},
            {"kty": "weird"},
        ]});
        std::fs::write(&f, set.to_string()).unwrap();
        let v = Verifier::load(&f, expect.clone()).unwrap();
        assert_eq!(v.keys.load().len(), 1);
        assert_eq!(v.keys.load()[0].kid.as_deref(), Some("sig"));
        let e = v.verify("a.b.c").unwrap_err().to_string();
        assert!(e.starts_with("not a JWT"), "{e}");

        std::fs::write(&f, r#"{"keys": [{"kty": "oct", "k": "c2VjcmV0"}]}"#).unwrap();
        let e = Verifier::load(&f, expect.clone())
            .err()
            .unwrap()
            .to_string();
        assert!(
            e.contains("jwks.json") && e.contains("no RS256 or ES256"),
            "{e}"
        );
        std::fs::write(&f, "[]").unwrap();
        let e = Verifier::load(&f, expect).err().unwrap().to_string();
        assert!(e.contains("not a JWKS"), "{e}");
    }
}

//! Who a push speaks for. Three ways a push is authenticated, any of them configured:
//! - the shared token (`auth_token_file`): every holder is trusted for every node;
//! - a client certificate verified by TLS against `tls_client_ca_file` ([`cert`]): it speaks for
//!   the node(s) its DNS SANs name (its CN when it has no SAN);
//! - a Kubernetes service-account token ([`jwt`]) verified against the cluster's JWKS: it speaks
//!   for the node of its `kubernetes.io.node.name` claim.
//!
//! [`authenticate`] turns the credentials a request carries into [`Identity`]s (401 when none
//! holds, or one is presented and false); [`authorize`] says whether they may push for a node
//! (403 naming both names otherwise). With no method configured every push is accepted
//! ([`Method::Unauthenticated`]); the configuration allows that only on loopback or when asked
//! for (`allow_unauthenticated_push`).

pub mod cert;
pub mod jwt;

use axum::http::{HeaderMap, header};
use serve::tls::PeerCertificates;

/// How a push was authenticated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    /// No push authentication is configured.
    Unauthenticated,
    /// The shared token of `auth_token_file`.
    SharedToken,
    /// A client certificate verified against `tls_client_ca_file`.
    Certificate,
    /// A Kubernetes service-account token verified against `service_account_jwks_file`.
    ServiceAccount,
}

impl Method {
    pub fn describe(self) -> &'static str {
        match self {
            Method::Unauthenticated => "unauthenticated push",
            Method::SharedToken => "shared token",
            Method::Certificate => "client certificate",
            Method::ServiceAccount => "service-account token",
        }
    }
}

/// What one credential of a request speaks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    pub method: Method,
    /// The nodes it may push for; `None`: every node.
    pub nodes: Option<Vec<String>>,
}

/// The push authentication configured, as the handlers see it at one moment.
pub struct Methods<'a> {
    /// The shared tokens (several during a rotation), when `auth_token_file` is set.
    pub tokens: Option<&'a [String]>,
    /// Whether client certificates identify nodes (`tls_client_ca_file`).
    pub client_certs: bool,
    /// The service-account token verifier (`service_account_jwks_file`).
    pub service_accounts: Option<&'a jwt::Verifier>,
}

impl Methods<'_> {
    fn none(&self) -> bool {
        self.tokens.is_none() && !self.client_certs && self.service_accounts.is_none()
    }

    fn names(&self) -> String {
        let mut m = Vec::new();
        if self.client_certs {
            m.push("a client certificate");
        }
        if self.service_accounts.is_some() {
            m.push("a service-account bearer token");
        }
        if self.tokens.is_some() {
            m.push("the shared bearer token");
        }
        m.join(" or ")
    }
}

/// Why a push is not authenticated: the sentence of the 401.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unauthenticated(pub String);

/// The token of an `Authorization: Bearer <token>` header (the scheme is case-insensitive, RFC
/// 7235), if there is one.
pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    let v = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = v.trim_start().split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// Constant-time comparison of two tokens.
pub fn same_token(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The identities of a push's credentials: its verified client certificate (when client
/// certificates identify nodes) and its bearer token (the shared token or a service-account
/// token). A credential presented and not valid is a 401, as is none at all when a method is
/// configured.
pub fn authenticate(
    methods: &Methods,
    headers: &HeaderMap,
    peer: Option<&PeerCertificates>,
) -> Result<Vec<Identity>, Unauthenticated> {
    if methods.none() {
        return Ok(vec![Identity {
            method: Method::Unauthenticated,
            nodes: None,
        }]);
    }
    let mut ids = Vec::new();
    if methods.client_certs
        && let Some(peer) = peer
    {
        let names = cert::node_names(peer.leaf().as_ref())
            .map_err(|why| Unauthenticated(format!("client certificate names no node: {why}")))?;
        ids.push(Identity {
            method: Method::Certificate,
            nodes: Some(names),
        });
    }
    let token_methods = methods.tokens.is_some() || methods.service_accounts.is_some();
    if token_methods && let Some(token) = bearer(headers) {
        let shared = methods.tokens.is_some_and(|ts| {
            ts.iter()
                .any(|t| same_token(t.as_bytes(), token.as_bytes()))
        });
        if shared {
            ids.push(Identity {
                method: Method::SharedToken,
                nodes: None,
            });
        } else if let Some(v) = methods.service_accounts
            && jwt::looks_like_jwt(token)
        {
            let node = v
                .verify(token)
                .map_err(|why| Unauthenticated(format!("service-account token refused: {why}")))?;
            ids.push(Identity {
                method: Method::ServiceAccount,
                nodes: Some(vec![node]),
            });
        } else {
            return Err(Unauthenticated("wrong bearer token".into()));
        }
    }
    if ids.is_empty() {
        let bearer = if token_methods {
            " (Authorization: Bearer <token>)"
        } else {
            ""
        };
        return Err(Unauthenticated(format!(
            "no credential: pushes need {}{bearer}",
            methods.names()
        )));
    }
    Ok(ids)
}

/// A credential that speaks for other nodes than the one pushed for: the sentence of the 403.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the {} is {}'s: it may not push for node {node:?}", .method.describe(), nodes_of(.names))]
pub struct OtherNode {
    pub method: Method,
    /// The nodes the credential is for.
    pub names: Vec<String>,
    /// The node pushed for.
    pub node: String,
}

fn nodes_of(names: &[String]) -> String {
    match names {
        [one] => format!("node {one:?}"),
        many => format!("nodes {many:?}"),
    }
}

/// Whether every identity may push for `node`; the sentence of the 403 otherwise, naming the
/// node the credential is for and the node pushed for.
pub fn authorize(ids: &[Identity], node: &str) -> Result<(), OtherNode> {
    for id in ids {
        if let Some(names) = &id.nodes
            && !names.iter().any(|n| n == node)
        {
            return Err(OtherNode {
                method: id.method,
                names: names.clone(),
                node: node.to_string(),
            });
        }
    }
    Ok(())
}

/// The name of the credential(s) for a log line: "client certificate of [\"a\"]", ...
pub fn describe(ids: &[Identity]) -> String {
    ids.iter()
        .map(|id| match &id.nodes {
            Some(n) => format!("{} of {n:?}", id.method.describe()),
            None => id.method.describe().to_string(),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn with_bearer(t: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_str(&format!("Bearer {t}")).unwrap(),
        );
        h
    }

    #[test]
    fn the_bearer_scheme_is_case_insensitive() {
        let h = |v: &str| {
            let mut m = HeaderMap::new();
            m.insert(header::AUTHORIZATION, HeaderValue::from_str(v).unwrap());
            m
        };
        for v in ["Bearer s3", "bearer s3", "BEARER  s3 ", "BeArEr s3"] {
            assert_eq!(bearer(&h(v)), Some("s3"), "{v}");
        }
        assert_eq!(bearer(&h("Basic s3")), None);
        assert!(same_token(b"abc", b"abc"));
        assert!(!same_token(b"abc", b"abd"));
        assert!(!same_token(b"abc", b"abcd"));
    }

    #[test]
    fn no_method_is_open_shared_tokens_speak_for_every_node() {
        let open = Methods {
            tokens: None,
            client_certs: false,
            service_accounts: None,
        };
        let ids = authenticate(&open, &HeaderMap::new(), None).unwrap();
        assert_eq!(ids[0].method, Method::Unauthenticated);
        assert!(authorize(&ids, "any").is_ok());

        let tokens = vec!["new".to_string(), "old".to_string()];
        let shared = Methods {
            tokens: Some(&tokens),
            client_certs: false,
            service_accounts: None,
        };
        for t in ["new", "old"] {
            let ids = authenticate(&shared, &with_bearer(t), None).unwrap();
            assert_eq!(ids[0].method, Method::SharedToken);
            assert!(authorize(&ids, "any").is_ok());
        }
        let e = authenticate(&shared, &with_bearer("x"), None).unwrap_err();
        assert_eq!(e.0, "wrong bearer token");
        let e = authenticate(&shared, &HeaderMap::new(), None).unwrap_err();
        assert!(
            e.0.contains("no credential") && e.0.contains("shared bearer token"),
            "{e:?}"
        );
    }

    #[test]
    fn a_node_credential_refuses_other_nodes_naming_both() {
        let ids = vec![Identity {
            method: Method::Certificate,
            nodes: Some(vec!["node-a".into()]),
        }];
        assert!(authorize(&ids, "node-a").is_ok());
        let e = authorize(&ids, "node-b").unwrap_err().to_string();
        assert!(e.contains("\"node-a\"") && e.contains("\"node-b\""), "{e}");
        // With the shared token too, the certificate still binds the push to its node.
        let mut both = ids.clone();
        both.push(Identity {
            method: Method::SharedToken,
            nodes: None,
        });
        assert!(authorize(&both, "node-b").is_err());
    }

    #[test]
    fn client_certificates_required_when_they_are_the_only_method() {
        let m = Methods {
            tokens: None,
            client_certs: true,
            service_accounts: None,
        };
        let e = authenticate(&m, &with_bearer("whatever"), None).unwrap_err();
        assert!(e.0.contains("client certificate"), "{e:?}");
    }
}

//! Who may do what over HTTP: the push routes' gate ([`push_identity`]: the credentials of
//! [`crate::identity`], then a declared JSON body), the node check of a decoded push
//! ([`push_for_node`]), and the readers' token on `/api/v1/*` (GET) and `/metrics` when
//! `read_token_file` is set ([`check_read`]: push credentials never read).

use super::error;
use crate::identity::{self, Identity, Methods, same_token};
use crate::state::FleetState;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use serve::tls::PeerCertificates;
use std::sync::atomic::Ordering;

pub use crate::identity::bearer;

/// Why a request is not authorised by any of `expected`, or `Ok`.
pub fn check(headers: &HeaderMap, expected: &[String]) -> Result<(), &'static str> {
    match bearer(headers) {
        None => Err("missing bearer token (Authorization: Bearer <token>)"),
        Some(s)
            if expected
                .iter()
                .any(|e| same_token(s.as_bytes(), e.as_bytes())) =>
        {
            Ok(())
        }
        Some(_) => Err("wrong bearer token"),
    }
}

/// The `WWW-Authenticate` value of a 401.
pub const CHALLENGE: HeaderValue = HeaderValue::from_static("Bearer");

/// A 401 naming why, with the challenge.
pub fn unauthorized(why: &str) -> Response {
    let mut r = error(StatusCode::UNAUTHORIZED, why.to_string());
    r.headers_mut().insert(header::WWW_AUTHENTICATE, CHALLENGE);
    r
}

/// `Err(401)` when a read token is configured and the request does not carry one of its
/// tokens. The push credentials (shared token, certificates, service-account tokens) never read.
pub fn check_read(st: &FleetState, headers: &HeaderMap) -> Result<(), Box<Response>> {
    let Some(read) = &st.read_token else {
        return Ok(());
    };
    check(headers, &read.load()).map_err(|why| Box::new(unauthorized(why)))
}

/// Whether the request declares a JSON body (`Content-Type: application/json`, parameters
/// such as `charset` allowed).
pub fn declares_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|m| m.trim().eq_ignore_ascii_case("application/json"))
}

/// The gate of the push routes: the push's credentials (401 when none holds) and a JSON body
/// (415 otherwise). Refusals are counted by reason.
pub fn push_identity(
    st: &FleetState,
    headers: &HeaderMap,
    peer: Option<&PeerCertificates>,
) -> Result<Vec<Identity>, Box<Response>> {
    let c = &st.counters;
    let tokens = st.token.as_ref().map(|t| t.load_full());
    let methods = Methods {
        tokens: tokens.as_deref().map(Vec::as_slice),
        client_certs: st.config.tls_client_ca_file.is_some(),
        service_accounts: st.service_accounts.as_deref(),
    };
    let ids = identity::authenticate(&methods, headers, peer).map_err(|why| {
        c.unauthorized.fetch_add(1, Ordering::Relaxed);
        c.refused_unauthenticated.fetch_add(1, Ordering::Relaxed);
        tracing::debug!(why = %why.0, "push refused: not authenticated");
        Box::new(unauthorized(&why.0))
    })?;
    if !declares_json(headers) {
        c.refused_not_json.fetch_add(1, Ordering::Relaxed);
        let got = headers
            .get(header::CONTENT_TYPE)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
        return Err(Box::new(error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!(
                "Content-Type must be application/json, got {}",
                got.map_or("none".into(), |g| format!("{g:?}"))
            ),
        )));
    }
    Ok(ids)
}

/// `Err(403)` naming both nodes when `ids` may not push for `node` (logged and counted).
pub fn push_for_node(st: &FleetState, ids: &[Identity], node: &str) -> Result<(), Box<Response>> {
    identity::authorize(ids, node).map_err(|why| {
        st.counters
            .refused_other_node
            .fetch_add(1, Ordering::Relaxed);
        tracing::warn!(
            credential = %identity::describe(ids),
            node,
            "push refused: {why}"
        );
        Box::new(error(StatusCode::FORBIDDEN, why.to_string()))
    })
}

/// `Err(429)` when `node` is new and the aggregator already knows `max_nodes` nodes.
pub fn within_max_nodes(st: &FleetState, node: &str) -> Result<(), Box<Response>> {
    let Some(max) = st.config.max_nodes else {
        return Ok(());
    };
    let (known, len) = st.fleet.read(|i| (i.get(node).is_some(), i.len()));
    if known || (len as u64) < max {
        return Ok(());
    }
    st.counters
        .refused_max_nodes
        .fetch_add(1, Ordering::Relaxed);
    tracing::warn!(node, max_nodes = max, "push refused: max_nodes reached");
    Err(Box::new(error(
        StatusCode::TOO_MANY_REQUESTS,
        format!(
            "node {node:?} is new and the aggregator already knows {len} nodes: max_nodes is {max}"
        ),
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bearer_check_takes_any_of_the_tokens() {
        let h = |v: &str| {
            let mut m = HeaderMap::new();
            m.insert(header::AUTHORIZATION, HeaderValue::from_str(v).unwrap());
            m
        };
        let t = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert!(check(&h("bearer s3"), &t(&["s3"])).is_ok());
        assert_eq!(
            check(&h("Bearer x"), &t(&["s3"])),
            Err("wrong bearer token")
        );
        assert!(check(&h("Bearer w"), &t(&["r", "w"])).is_ok());
        assert!(check(&HeaderMap::new(), &t(&["s3"])).is_err());
    }

    #[test]
    fn json_is_declared_with_or_without_parameters() {
        let h = |v: &str| {
            let mut m = HeaderMap::new();
            m.insert(header::CONTENT_TYPE, HeaderValue::from_str(v).unwrap());
            m
        };
        assert!(declares_json(&h("application/json")));
        assert!(declares_json(&h("Application/JSON; charset=utf-8")));
        assert!(!declares_json(&h("text/plain")));
        assert!(!declares_json(&h("application/jsonx")));
        assert!(!declares_json(&HeaderMap::new()));
    }
}

//! Bearer tokens: the agents' write token on the push endpoints, the readers' token on
//! `/api/v1/*` (GET) and `/metrics` when `read_token_file` is set (the write token reads too).

use super::error;
use crate::state::FleetState;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;

/// Constant-time comparison of two tokens.
pub fn same_token(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The token of an `Authorization: Bearer <token>` header (the scheme is case-insensitive, RFC
/// 7235), if there is one.
pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    let v = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = v.trim_start().split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// Why a request is not authorised by any of `expected`, or `Ok`.
pub fn check(headers: &HeaderMap, expected: &[&str]) -> Result<(), &'static str> {
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

/// `Err(401)` when a read token is configured and the request carries neither it nor the write
/// token.
pub fn check_read(st: &FleetState, headers: &HeaderMap) -> Result<(), Box<Response>> {
    let Some(read) = &st.read_token else {
        return Ok(());
    };
    let read = read.load();
    let write = st.token.as_ref().map(|t| t.load_full());
    let mut expected = vec![read.as_str()];
    if let Some(w) = &write {
        expected.push(w.as_str());
    }
    check(headers, &expected).map_err(|why| Box::new(unauthorized(why)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_compare_whole() {
        assert!(same_token(b"abc", b"abc"));
        assert!(!same_token(b"abc", b"abd"));
        assert!(!same_token(b"abc", b"abcd"));
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
            assert!(check(&h(v), &["s3"]).is_ok(), "{v}");
        }
        assert_eq!(bearer(&h("Basic s3")), None);
        assert_eq!(check(&h("Bearer x"), &["s3"]), Err("wrong bearer token"));
        assert!(check(&h("Bearer w"), &["r", "w"]).is_ok());
        assert!(check(&HeaderMap::new(), &["s3"]).is_err());
    }
}

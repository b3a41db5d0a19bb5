//! Bearer tokens: the agents' write token on `POST /api/v1/reports`.

use axum::http::{HeaderMap, HeaderValue, header};

/// Constant-time comparison of two tokens.
pub fn same_token(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The token of an `Authorization: Bearer <token>` header, if there is one.
pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    let v = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    v.strip_prefix("Bearer ").map(str::trim)
}

/// Why a request is not authorised, or `Ok` when `expected` is what it sent.
pub fn check(headers: &HeaderMap, expected: &str) -> Result<(), &'static str> {
    match bearer(headers) {
        None => Err("missing bearer token (Authorization: Bearer <token>)"),
        Some(s) if same_token(s.as_bytes(), expected.as_bytes()) => Ok(()),
        Some(_) => Err("wrong bearer token"),
    }
}

/// The `WWW-Authenticate` value of a 401.
pub const CHALLENGE: HeaderValue = HeaderValue::from_static("Bearer");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_compare_whole() {
        assert!(same_token(b"abc", b"abc"));
        assert!(!same_token(b"abc", b"abd"));
        assert!(!same_token(b"abc", b"abcd"));
    }
}

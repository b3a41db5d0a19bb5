//! The aggregator's HTTP face: the router, response compression and the response helpers.
//! Handlers live by job: [`read`] (what people and Prometheus read), [`report`] (the agents'
//! pushes: decoding and validation before anything is stored), [`auth`] (bearer tokens).

pub mod auth;
pub mod budget;
pub mod read;
pub mod report;

use super::state::FleetState;
use axum::Router;
use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use proto::ApiError;
use serde::Serialize;
use std::io::Write;
use std::sync::Arc;

/// Responses at least this large are gzip-compressed for clients that accept it.
pub const COMPRESS_FROM_BYTES: usize = 1024;
/// Largest response body the compression layer buffers (bigger ones go out as they are).
const COMPRESS_UP_TO_BYTES: usize = 64 << 20;

/// The aggregator's router.
pub fn router(state: Arc<FleetState>) -> Router {
    Router::new()
        .route("/", get(read::page))
        .route("/livez", get(read::livez))
        .route("/readyz", get(read::readyz))
        .route("/metrics", get(read::metrics))
        .route("/api/v1/reports", post(report::post_report))
        .route("/api/v1/heartbeats", post(report::post_heartbeat))
        .route("/api/v1/nodes", get(read::nodes))
        .route("/api/v1/nodes/{name}", get(read::node))
        .route("/api/v1/fleet", get(read::fleet_view))
        .route("/api/v1/fleet/history", get(read::fleet_history))
        .layer(axum::middleware::from_fn(compress))
        .with_state(state)
}

/// Whether an `Accept-Encoding` header accepts gzip (q-values honoured).
pub fn accepts_gzip(accept_encoding: Option<&str>) -> bool {
    accept_encoding.is_some_and(|a| {
        a.split(',').any(|item| {
            let mut parts = item.split(';');
            let coding = parts.next().unwrap_or("").trim();
            let q = parts
                .filter_map(|p| p.split_once('='))
                .find(|(k, _)| k.trim().eq_ignore_ascii_case("q"))
                .map_or(1.0, |(_, v)| v.trim().parse::<f32>().unwrap_or(0.0));
            (coding.eq_ignore_ascii_case("gzip") || coding == "*") && q > 0.0
        })
    })
}

/// Gzip-compresses responses of [`COMPRESS_FROM_BYTES`] or more when the client accepts it.
async fn compress(req: Request, next: Next) -> Response {
    let gzip = accepts_gzip(
        req.headers()
            .get(header::ACCEPT_ENCODING)
            .and_then(|v| v.to_str().ok()),
    );
    let resp = next.run(req).await;
    if !gzip || resp.headers().contains_key(header::CONTENT_ENCODING) {
        return resp;
    }
    let (mut parts, body) = resp.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, COMPRESS_UP_TO_BYTES).await else {
        return error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "response too large".into(),
        );
    };
    if bytes.len() < COMPRESS_FROM_BYTES {
        return Response::from_parts(parts, Body::from(bytes));
    }
    let mut enc = flate2::write::GzEncoder::new(
        Vec::with_capacity(bytes.len() / 4),
        flate2::Compression::fast(),
    );
    if enc.write_all(&bytes).is_err() {
        return Response::from_parts(parts, Body::from(bytes));
    }
    let Ok(out) = enc.finish() else {
        return Response::from_parts(parts, Body::from(bytes));
    };
    parts
        .headers
        .insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    parts
        .headers
        .insert(header::VARY, HeaderValue::from_static("accept-encoding"));
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, Body::from(out))
}

pub(crate) fn json<T: Serialize>(status: StatusCode, v: &T, pretty: bool) -> Response {
    let body = if pretty {
        serde_json::to_vec_pretty(v)
    } else {
        serde_json::to_vec(v)
    };
    match body {
        Ok(mut b) => {
            b.push(b'\n');
            (status, [(header::CONTENT_TYPE, "application/json")], b).into_response()
        }
        Err(e) => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("cannot serialise: {e}"),
        ),
    }
}

pub(crate) fn error(status: StatusCode, error: String) -> Response {
    json(status, &ApiError { error, valid: None }, true)
}

pub(crate) fn text(status: StatusCode, body: &'static str) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        body,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_encoding_is_parsed_with_q_values() {
        assert!(accepts_gzip(Some("gzip")));
        assert!(accepts_gzip(Some("br, GZIP;q=0.5")));
        assert!(accepts_gzip(Some("*")));
        assert!(!accepts_gzip(Some("gzip;q=0")));
        assert!(!accepts_gzip(Some("identity")));
        assert!(!accepts_gzip(None));
    }
}

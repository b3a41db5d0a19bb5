//! The aggregator's HTTP face: the router and the response helpers. Handlers live by job:
//! [`read`] (what people and Prometheus read), [`report`] (the agents' pushes: decoding and
//! validation before anything is stored), [`auth`] (bearer tokens).

pub mod auth;
pub mod read;
pub mod report;

use super::state::FleetState;
use axum::Router;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use proto::ApiError;
use serde::Serialize;
use std::sync::Arc;

/// The aggregator's router.
pub fn router(state: Arc<FleetState>) -> Router {
    Router::new()
        .route("/", get(read::page))
        .route("/livez", get(read::livez))
        .route("/readyz", get(read::readyz))
        .route("/metrics", get(read::metrics))
        .route("/api/v1/reports", post(report::post_report))
        .route("/api/v1/nodes", get(read::nodes))
        .route("/api/v1/nodes/{name}", get(read::node))
        .route("/api/v1/fleet", get(read::fleet_view))
        .with_state(state)
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

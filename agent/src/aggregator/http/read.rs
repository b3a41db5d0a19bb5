//! What people and Prometheus read: probes, the node list, one node, the fleet view, `/metrics`
//! and the web page. Every answer comes from the in-memory state; none touches the store.

use super::{error, json, text};
use crate::aggregator::fleet;
use crate::aggregator::metrics;
use crate::aggregator::state::{FleetState, now_ms};
use crate::aggregator::tasks::REFRESH;
use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use proto::NodeReport;
use proto::fleet::{NodeDetail, NodeList};
use std::sync::Arc;
use std::sync::atomic::Ordering;

pub async fn livez() -> Response {
    text(StatusCode::OK, "ok\n")
}

/// 200 while the serving state follows the store (always, for the embedded store; for
/// PostgreSQL, while refreshes succeed).
pub async fn readyz(State(st): State<Arc<FleetState>>) -> Response {
    let behind_ms = now_ms() - st.synced_ms.load(Ordering::Relaxed);
    if st.shared_store && behind_ms > 5 * REFRESH.as_millis() as i64 {
        return text(
            StatusCode::SERVICE_UNAVAILABLE,
            "[-]PostgreSQL refresh failing\nnot ready\n",
        );
    }
    text(StatusCode::OK, "ok\n")
}

pub async fn nodes(State(st): State<Arc<FleetState>>) -> Response {
    let (now, stale) = (now_ms(), st.stale_ms());
    let nodes = st
        .fleet
        .read(|m| m.values().map(|n| n.summary(now, stale)).collect());
    json(
        StatusCode::OK,
        &NodeList {
            stale_after_seconds: st.config.stale_after_seconds,
            nodes,
        },
        false,
    )
}

pub async fn node(State(st): State<Arc<FleetState>>, UrlPath(name): UrlPath<String>) -> Response {
    let Some(n) = st.fleet.get(&name) else {
        return error(StatusCode::NOT_FOUND, format!("no node named {name:?}"));
    };
    let report: NodeReport = match serde_json::from_slice(&n.report_json) {
        Ok(r) => r,
        Err(e) => {
            return error(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("stored report does not parse: {e}"),
            );
        }
    };
    let detail = NodeDetail {
        summary: n.summary(now_ms(), st.stale_ms()),
        report,
        transitions: n.transitions.to_vec(),
    };
    json(StatusCode::OK, &detail, true)
}

fn compute_view(st: &FleetState) -> proto::fleet::FleetView {
    let now = now_ms();
    st.fleet
        .read(|m| fleet::fleet_view(m.values().map(|n| &**n), now, st.config.stale_after_seconds))
}

pub async fn fleet_view(State(st): State<Arc<FleetState>>) -> Response {
    json(StatusCode::OK, &compute_view(&st), true)
}

pub async fn metrics(State(st): State<Arc<FleetState>>, headers: HeaderMap) -> Response {
    let om = metrics::wants_openmetrics(headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()));
    let (body, content_type) = metrics::render(compute_view(&st), &st.counters, om);
    (StatusCode::OK, [(header::CONTENT_TYPE, content_type)], body).into_response()
}

pub async fn page() -> Response {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        include_str!("../page.html"),
    )
        .into_response()
}

//! What people and Prometheus read: probes, the node list (paged, filtered, with ETags), one
//! node, the fleet view and its history, `/metrics` and the web page. Lists and views come from
//! the in-memory index (off the async workers); one node's full report and transitions are read
//! from the store on demand. With `read_token_file`, `/api/v1/*` and `/metrics` need a token;
//! the page shell, `/livez` and `/readyz` do not.

use super::{auth, error, json, text};
use crate::index::NodeQuery;
use crate::metrics;
use crate::state::{FleetState, now_ms};
use crate::tasks::{REFRESH, history_point};
use axum::extract::{Path as UrlPath, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use proto::NodeReport;
use proto::fleet::{NodeDetail, NodeList};
use serde::Serialize;
use std::sync::Arc;
use std::sync::atomic::Ordering;

/// Runs a CPU-bound read off the async workers, so probes answer whatever the API is doing.
async fn off_workers<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Option<T> {
    tokio::task::spawn_blocking(f).await.ok()
}

pub async fn livez() -> Response {
    text(StatusCode::OK, "ok\n")
}

/// 200 while this replica can take writes and its serving state follows the store.
pub async fn readyz(State(st): State<Arc<FleetState>>) -> Response {
    if !st.writable() {
        return text(
            StatusCode::SERVICE_UNAVAILABLE,
            "[-]store cannot take writes (reopening after an I/O error)\nnot ready\n",
        );
    }
    let behind_ms = now_ms() - st.synced_ms.load(Ordering::Relaxed);
    if st.shared_store && behind_ms > 10 * REFRESH.as_millis() as i64 {
        return text(
            StatusCode::SERVICE_UNAVAILABLE,
            "[-]PostgreSQL refresh failing\nnot ready\n",
        );
    }
    text(StatusCode::OK, "ok\n")
}

/// A 64-bit FNV-1a of `bytes`, as a strong ETag.
fn etag(bytes: &[u8]) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h = (h ^ b as u64).wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("\"{h:016x}\"")
}

/// A compact JSON body with an ETag (computed off the workers), or 304 when the client has it.
fn cached_json(headers: &HeaderMap, tag: String, mut body: Vec<u8>) -> Response {
    let matches = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|inm| inm.split(',').any(|t| t.trim() == tag || t.trim() == "*"));
    let mut r = if matches {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        body.push(b'\n');
        (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/json")],
            body,
        )
            .into_response()
    };
    if let Ok(v) = HeaderValue::from_str(&tag) {
        r.headers_mut().insert(header::ETAG, v);
    }
    r
}

/// Whether a query string asks for indented JSON (`?pretty`, `?pretty=true`).
fn wants_pretty(query: Option<&str>) -> bool {
    query.is_some_and(|q| {
        q.split('&')
            .any(|kv| kv == "pretty" || kv == "pretty=true" || kv == "pretty=1")
    })
}

/// `v` as JSON, indented when asked.
fn to_json<T: Serialize>(v: &T, pretty: bool) -> Vec<u8> {
    if pretty {
        serde_json::to_vec_pretty(v).unwrap_or_default()
    } else {
        serde_json::to_vec(v).unwrap_or_default()
    }
}

/// `GET /api/v1/nodes?limit=&cursor=&status=&stale=&check=&prefix=`
pub async fn nodes(
    State(st): State<Arc<FleetState>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    if let Err(r) = auth::check_read(&st, &headers) {
        return *r;
    }
    let q = match NodeQuery::parse(query.as_deref()) {
        Ok(q) => q,
        Err(why) => return error(StatusCode::BAD_REQUEST, why.to_string()),
    };
    let st2 = st.clone();
    let pretty = wants_pretty(query.as_deref());
    let Some((tag, body)) = off_workers(move || {
        let (now, stale) = (now_ms(), st2.stale_ms());
        let (nodes, next) = st2.fleet.read(|idx| idx.page(&q, now, stale));
        let list = NodeList {
            stale_after_seconds: st2.config.stale_after_seconds,
            nodes,
            next,
        };
        let body = serde_json::to_vec(&list).unwrap_or_default();
        let tag = etag(&body);
        let body = if pretty { to_json(&list, true) } else { body };
        (tag, body)
    })
    .await
    else {
        return error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "listing nodes failed".into(),
        );
    };
    cached_json(&headers, tag, body)
}

/// `GET /api/v1/nodes/{name}`: the summary from memory, the report and transitions from the
/// store.
pub async fn node(
    State(st): State<Arc<FleetState>>,
    headers: HeaderMap,
    UrlPath(name): UrlPath<String>,
    RawQuery(query): RawQuery,
) -> Response {
    if let Err(r) = auth::check_read(&st, &headers) {
        return *r;
    }
    let (now, stale) = (now_ms(), st.stale_ms());
    let Some(summary) = st
        .fleet
        .read(|idx| idx.get(&name).map(|n| n.summary(now, stale)))
    else {
        return error(StatusCode::NOT_FOUND, format!("no node named {name:?}"));
    };
    let detail = match st.store.detail(name.clone()).await {
        Ok(Some(d)) => d,
        Ok(None) => return error(StatusCode::NOT_FOUND, format!("no node named {name:?}")),
        Err(e) => {
            return error(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("reading node {name:?}: {e}"),
            );
        }
    };
    // Parsing and writing a report of up to max_report_bytes: off the async workers.
    let pretty = wants_pretty(query.as_deref());
    let body = off_workers(move || {
        let report: NodeReport = serde_json::from_slice(&detail.report_json)
            .map_err(|e| format!("stored report does not parse: {e}"))?;
        let detail = NodeDetail {
            summary,
            report,
            transitions: detail.transitions,
        };
        Ok::<_, String>(to_json(&detail, pretty))
    })
    .await
    .unwrap_or_else(|| Err("serialising the node failed".into()));
    match body {
        Ok(mut b) => {
            b.push(b'\n');
            (
                StatusCode::OK,
                [(header::CONTENT_TYPE, "application/json")],
                b,
            )
                .into_response()
        }
        Err(why) => error(StatusCode::INTERNAL_SERVER_ERROR, why),
    }
}

/// The fleet view, computed off the async workers from the index.
async fn compute_view(st: &Arc<FleetState>) -> Option<proto::fleet::FleetView> {
    let st = st.clone();
    off_workers(move || {
        let now = now_ms();
        st.fleet
            .read(|idx| idx.view(now, st.config.stale_after_seconds))
    })
    .await
}

/// `GET /api/v1/fleet`, with an ETag over everything but `generated_at`; computed and written
/// off the async workers.
pub async fn fleet_view(
    State(st): State<Arc<FleetState>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    if let Err(r) = auth::check_read(&st, &headers) {
        return *r;
    }
    let pretty = wants_pretty(query.as_deref());
    let st2 = st.clone();
    let Some((tag, body)) = off_workers(move || {
        let now = now_ms();
        let mut view = st2
            .fleet
            .read(|idx| idx.view(now, st2.config.stale_after_seconds));
        let at = std::mem::take(&mut view.generated_at);
        let tag = etag(&serde_json::to_vec(&view).unwrap_or_default());
        view.generated_at = at;
        (tag, to_json(&view, pretty))
    })
    .await
    else {
        return error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "fleet view failed".into(),
        );
    };
    cached_json(&headers, tag, body)
}

/// `GET /api/v1/fleet/history`: counts by status over the last 24 h, then now.
pub async fn fleet_history(State(st): State<Arc<FleetState>>, headers: HeaderMap) -> Response {
    if let Err(r) = auth::check_read(&st, &headers) {
        return *r;
    }
    let st2 = st.clone();
    let Some(live) = off_workers(move || history_point(&st2)).await else {
        return error(StatusCode::INTERNAL_SERVER_ERROR, "history failed".into());
    };
    let h = st
        .history
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .snapshot(live);
    json(StatusCode::OK, &h, false)
}

pub async fn metrics(State(st): State<Arc<FleetState>>, headers: HeaderMap) -> Response {
    if let Err(r) = auth::check_read(&st, &headers) {
        return *r;
    }
    let format = serve::exposition::MetricsFormat::negotiate(
        headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()),
    );
    let Some(view) = compute_view(&st).await else {
        return error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "fleet view failed".into(),
        );
    };
    let body = metrics::render(view, &st.counters, format);
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, format.content_type())],
        body,
    )
        .into_response()
}

/// `GET /`: the page shell (no fleet data in it; it fetches the API, with the read token it asks
/// for when the API answers 401).
pub async fn page() -> Response {
    (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; img-src 'self' data:",
            ),
        ],
        include_str!("../page.html"),
    )
        .into_response()
}

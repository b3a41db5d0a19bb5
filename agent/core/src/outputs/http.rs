//! The agent's HTTP server: probes (`/livez`, `/readyz`), the node verdict (`/health`,
//! `/health/{check}`, the one-line `/health/verdict`), Prometheus `/metrics` (rendered by
//! whatever [`MetricsRender`] the daemon hands in) and a landing page. Every handler reads the
//! cached snapshot of the last round and returns at once: nothing here touches the host.

use crate::outputs::{MetricsFormat, MetricsRender, verdict};
use crate::snapshot::{LoopHeartbeat, Snapshot};
use axum::Router;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use bytes::Bytes;
use proto::{ApiError, Status};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;

/// What the handlers share. Cheap to read; written only by the engine (through the channel).
pub struct AppState {
    snapshot: watch::Receiver<Option<Arc<Snapshot>>>,
    heartbeat: Arc<LoopHeartbeat>,
    /// `/livez` fails once the heartbeat is older than this.
    live_threshold: Duration,
    metrics: Arc<dyn MetricsRender>,
    /// The enabled checks, for `/health/{check}` errors.
    check_names: Vec<String>,
    json: Mutex<Option<JsonCache>>,
}

/// Serialised bodies of one round (the snapshot is held, so identity comparison is sound).
struct JsonCache {
    snapshot: Arc<Snapshot>,
    report: Bytes,
    checks: Vec<Bytes>,
}

impl AppState {
    pub fn new(
        snapshot: watch::Receiver<Option<Arc<Snapshot>>>,
        heartbeat: Arc<LoopHeartbeat>,
        live_threshold: Duration,
        metrics: Arc<dyn MetricsRender>,
        check_names: Vec<String>,
    ) -> Self {
        AppState {
            snapshot,
            heartbeat,
            live_threshold,
            metrics,
            check_names,
            json: Mutex::new(None),
        }
    }

    fn current(&self) -> Option<Arc<Snapshot>> {
        self.snapshot.borrow().clone()
    }

    /// The report body and each check's body, serialised once per round.
    fn bodies(&self, s: &Arc<Snapshot>) -> (Bytes, Vec<Bytes>) {
        let mut cache = self.json.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(c) = cache.as_ref()
            && Arc::ptr_eq(&c.snapshot, s)
        {
            return (c.report.clone(), c.checks.clone());
        }
        let report = Bytes::from(to_json(&s.report));
        let checks: Vec<Bytes> = s
            .report
            .checks
            .iter()
            .map(|c| Bytes::from(to_json(c)))
            .collect();
        *cache = Some(JsonCache {
            snapshot: s.clone(),
            report: report.clone(),
            checks: checks.clone(),
        });
        (report, checks)
    }
}

fn to_json<T: serde::Serialize>(v: &T) -> Vec<u8> {
    let mut out = serde_json::to_vec_pretty(v)
        .unwrap_or_else(|e| format!("{{\"error\":\"cannot serialise: {e}\"}}").into_bytes());
    out.push(b'\n');
    out
}

/// The agent's router.
pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/", get(landing))
        .route("/livez", get(livez))
        .route("/healthz", get(livez))
        .route("/-/healthy", get(livez))
        .route("/readyz", get(readyz))
        .route("/-/ready", get(readyz))
        .route("/health", get(health))
        .route("/health/verdict", get(health_verdict))
        .route("/health/{check}", get(health_check))
        .route("/metrics", get(metrics_handler))
        .with_state(state)
}

fn text(status: StatusCode, body: String) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        body,
    )
        .into_response()
}

fn json_body(status: StatusCode, body: Bytes) -> Response {
    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

fn json_error(status: StatusCode, error: String, valid: Option<Vec<String>>) -> Response {
    json_body(status, Bytes::from(to_json(&ApiError { error, valid })))
}

fn verbose(q: &Option<String>) -> bool {
    q.as_deref().is_some_and(|q| {
        q.split('&')
            .any(|p| p == "verbose" || p.starts_with("verbose="))
    })
}

/// 200 while the check loop beats. Never looks at node health: a sick node must not get its
/// agent restarted.
async fn livez(State(st): State<Arc<AppState>>, RawQuery(q): RawQuery) -> Response {
    let age = st.heartbeat.age();
    let alive = age <= st.live_threshold;
    let line = format!(
        "[{}]check-loop last beat {} ago (limit {})",
        if alive { "+" } else { "-" },
        common::time::format_seconds(age.as_secs_f64()),
        common::time::format_seconds(st.live_threshold.as_secs_f64())
    );
    let code = if alive {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let verdict = if alive { "ok" } else { "check loop stalled" };
    let body = if verbose(&q) || !alive {
        format!("{line}\n{verdict}\n")
    } else {
        format!("{verdict}\n")
    };
    text(code, body)
}

/// 200 once the first round with a valid config is done. Never looks at node health either: a
/// not-ready pod drops out of the scrape targets exactly when its metrics matter.
async fn readyz(State(st): State<Arc<AppState>>, RawQuery(q): RawQuery) -> Response {
    match st.current() {
        Some(s) => {
            let body = if verbose(&q) {
                format!(
                    "[+]config valid\n[+]first round done (rounds: {})\nok\n",
                    s.rounds_total
                )
            } else {
                "ok\n".into()
            };
            text(StatusCode::OK, body)
        }
        None => text(
            StatusCode::SERVICE_UNAVAILABLE,
            "[+]config valid\n[-]first round not done yet\nnot ready\n".into(),
        ),
    }
}

fn no_round() -> Response {
    json_error(
        StatusCode::SERVICE_UNAVAILABLE,
        "no check round has completed yet".into(),
        None,
    )
}

fn verdict_code(status: Status) -> StatusCode {
    if status == Status::Fail {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::OK
    }
}

/// The node verdict: 200 unless a check fails.
async fn health(State(st): State<Arc<AppState>>) -> Response {
    let Some(s) = st.current() else {
        return no_round();
    };
    let (report, _) = st.bodies(&s);
    json_body(verdict_code(s.report.status), report)
}

/// One check's verdict: 200 unless it fails; 404 for a name that is not an enabled check.
async fn health_check(State(st): State<Arc<AppState>>, Path(name): Path<String>) -> Response {
    if !st.check_names.contains(&name) {
        let why = if checks::NAMES.contains(&name.as_str()) {
            format!("check {name:?} is disabled in the config")
        } else {
            format!("no check named {name:?}")
        };
        return json_error(StatusCode::NOT_FOUND, why, Some(st.check_names.clone()));
    }
    let Some(s) = st.current() else {
        return no_round();
    };
    let (_, checks) = st.bodies(&s);
    match s.report.checks.iter().position(|c| c.name == name) {
        Some(i) => json_body(verdict_code(s.report.checks[i].status), checks[i].clone()),
        None => no_round(),
    }
}

/// The verdict in one line (`ok`, `fail: scratch, memory`, ...): 200 unless a check fails, 503
/// then, before the first round, and while the check loop is stalled (a stale `ok` must not keep
/// a node untainted). For node-readiness-controller's reporter, which copies a non-2xx body into
/// the node condition's message.
async fn health_verdict(State(st): State<Arc<AppState>>) -> Response {
    let age = st.heartbeat.age();
    match st.current() {
        None => text(
            StatusCode::SERVICE_UNAVAILABLE,
            "unknown: no check round has completed yet\n".into(),
        ),
        Some(_) if age > st.live_threshold => text(
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "unknown: check loop stalled, last beat {} ago\n",
                common::time::format_seconds(age.as_secs_f64())
            ),
        ),
        Some(s) => text(
            verdict_code(s.report.status),
            format!("{}\n", verdict::line(&s.report)),
        ),
    }
}

async fn metrics_handler(State(st): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    let format =
        MetricsFormat::negotiate(headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()));
    let body = st.metrics.render(st.current(), format);
    let mut r = (StatusCode::OK, body).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(format.content_type()),
    );
    r
}

async fn landing(State(st): State<Arc<AppState>>) -> Response {
    let status = st
        .current()
        .map_or("no round yet".to_string(), |s| s.report.status.to_string());
    let checks: String = st
        .check_names
        .iter()
        .map(|n| format!("<li><a href=\"/health/{n}\">/health/{n}</a></li>"))
        .collect();
    let html = format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>gluten-node-agent</title></head>\
         <body><h1>gluten-node-agent {}</h1><p>Node status: <b>{status}</b></p><ul>\
         <li><a href=\"/health\">/health</a>: node verdict (JSON; 200, or 503 when a check fails)</li>\
         <li><a href=\"/health/verdict\">/health/verdict</a>: the verdict in one line (200 or 503)</li>{checks}\
         <li><a href=\"/metrics\">/metrics</a>: Prometheus metrics</li>\
         <li><a href=\"/livez\">/livez</a>: liveness (check loop alive)</li>\
         <li><a href=\"/readyz\">/readyz</a>: readiness (first round done)</li></ul></body></html>\n",
        env!("CARGO_PKG_VERSION")
    );
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        html,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshot::CheckCounters;
    use axum::body::Body;
    use axum::http::Request;
    use http_body_util::BodyExt;
    use proto::{CheckResult, NodeInfo, NodeReport};
    use tower::ServiceExt;

    fn check(name: &str, status: Status) -> CheckResult {
        CheckResult {
            name: name.into(),
            status,
            summary: format!("{name} is {status}"),
            duration_seconds: 0.01,
            checked_at: "2026-11-23T10:00:00.000Z".into(),
            findings: vec![],
            facts: serde_json::Value::Null,
            observed_status: None,
        }
    }

    fn snapshot(checks: Vec<CheckResult>) -> Arc<Snapshot> {
        let n = checks.len();
        Arc::new(Snapshot {
            report: NodeReport {
                schema_version: proto::SCHEMA_VERSION,
                node: NodeInfo::default(),
                status: Status::worst(checks.iter().map(|c| c.status)),
                generated_at: "2026-11-23T10:00:00.000Z".into(),
                checks,
            },
            samples: vec![Vec::new(); n],
            counters: vec![CheckCounters::default(); n],
            rounds_total: 1,
            finished_unix_seconds: 0.0,
        })
    }

    /// A metrics renderer that names the format it was asked for.
    struct Fixed;
    impl MetricsRender for Fixed {
        fn render(&self, _: Option<Arc<Snapshot>>, format: MetricsFormat) -> Bytes {
            Bytes::from(format!("{format:?}\n"))
        }
    }

    fn app(
        live_threshold: Duration,
    ) -> (
        Router,
        watch::Sender<Option<Arc<Snapshot>>>,
        Arc<LoopHeartbeat>,
    ) {
        let (tx, rx) = watch::channel(None);
        let hb = Arc::new(LoopHeartbeat::default());
        hb.beat();
        let state = AppState::new(
            rx,
            hb.clone(),
            live_threshold,
            Arc::new(Fixed),
            vec!["memory".into(), "scratch".into()],
        );
        (router(Arc::new(state)), tx, hb)
    }

    async fn call(r: &Router, path: &str) -> (StatusCode, String) {
        let resp = r
            .clone()
            .oneshot(Request::get(path).body(Body::empty()).unwrap())
            .await
            .unwrap();
        let status = resp.status();
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        (status, String::from_utf8_lossy(&body).into_owned())
    }

    #[tokio::test]
    async fn before_the_first_round_only_livez_is_200() {
        let (r, _tx, _hb) = app(Duration::from_secs(60));
        assert_eq!(call(&r, "/livez").await.0, StatusCode::OK);
        assert_eq!(call(&r, "/readyz").await.0, StatusCode::SERVICE_UNAVAILABLE);
        let (code, body) = call(&r, "/health").await;
        assert_eq!(code, StatusCode::SERVICE_UNAVAILABLE);
        assert!(body.contains("no check round has completed yet"), "{body}");
        assert_eq!(
            call(&r, "/metrics").await,
            (StatusCode::OK, "Text\n".into())
        );
        let (code, body) = call(&r, "/health/verdict").await;
        assert_eq!(code, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(body.lines().count(), 1, "{body}");
    }

    #[tokio::test]
    async fn the_verdict_is_503_only_for_fail_and_per_check() {
        let (r, tx, _hb) = app(Duration::from_secs(60));
        tx.send_replace(Some(snapshot(vec![
            check("memory", Status::Unknown),
            check("scratch", Status::Warn),
        ])));
        assert_eq!(call(&r, "/health").await.0, StatusCode::OK);
        assert_eq!(call(&r, "/readyz").await.0, StatusCode::OK);
        let (code, body) = call(&r, "/health/verdict").await;
        assert_eq!(
            (code, body.as_str()),
            (StatusCode::OK, "unknown: memory; warn: scratch\n")
        );
        tx.send_replace(Some(snapshot(vec![
            check("memory", Status::Ok),
            check("scratch", Status::Fail),
        ])));
        // A new round with the same round number must not serve the old cached body.
        let (code, body) = call(&r, "/health").await;
        assert_eq!(code, StatusCode::SERVICE_UNAVAILABLE, "{body}");
        assert_eq!(call(&r, "/health/memory").await.0, StatusCode::OK);
        let (code, body) = call(&r, "/health/scratch").await;
        assert_eq!(code, StatusCode::SERVICE_UNAVAILABLE);
        assert!(body.contains("scratch is fail"), "{body}");
        let (code, body) = call(&r, "/health/verdict").await;
        assert_eq!(
            (code, body.as_str()),
            (StatusCode::SERVICE_UNAVAILABLE, "fail: scratch\n")
        );
        let (code, body) = call(&r, "/health/numa").await;
        assert_eq!(code, StatusCode::NOT_FOUND);
        assert!(body.contains("disabled"), "{body}");
        // Probes ignore the verdict.
        assert_eq!(call(&r, "/livez").await.0, StatusCode::OK);
        assert_eq!(call(&r, "/readyz").await.0, StatusCode::OK);
    }

    #[tokio::test]
    async fn livez_fails_once_the_loop_stops_beating() {
        let (r, tx, hb) = app(Duration::from_millis(50));
        tx.send_replace(Some(snapshot(vec![check("memory", Status::Ok)])));
        assert_eq!(call(&r, "/livez").await.0, StatusCode::OK);
        assert_eq!(
            call(&r, "/health/verdict").await,
            (StatusCode::OK, "ok\n".into())
        );
        tokio::time::sleep(Duration::from_millis(120)).await;
        let (code, body) = call(&r, "/livez").await;
        assert_eq!(code, StatusCode::SERVICE_UNAVAILABLE);
        assert!(body.contains("check loop stalled"), "{body}");
        // A stale `ok` is not served as a verdict.
        let (code, body) = call(&r, "/health/verdict").await;
        assert_eq!(code, StatusCode::SERVICE_UNAVAILABLE);
        assert!(body.starts_with("unknown: check loop stalled"), "{body}");
        hb.beat();
        assert_eq!(call(&r, "/health/verdict").await.0, StatusCode::OK);
        assert_eq!(call(&r, "/livez").await.0, StatusCode::OK);
    }
}

//! The fleet aggregator (`gluten-node-agent aggregator`): receives the agents' reports, keeps the
//! latest per node and its status transitions in a durable store, and serves the fleet view
//! (`/api/v1/...`), Prometheus gauges and a web page.
//!
//! Reading never touches the store: every request is answered from the in-memory state
//! ([`store::Fleet`]), which the writer task updates after each commit (and, with PostgreSQL, a
//! refresh task from the other replicas' writes).

pub mod fleet;
pub mod postgres;
pub mod store;

use crate::config::{ConfigError, LogFormat};
use axum::Router;
use axum::body::Body;
use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use proto::fleet::{NodeDetail, NodeList};
use proto::{ApiError, NodeReport, SCHEMA_VERSION};
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Duration;
use store::{Backend, Fleet, Incoming, StoreError};
use tokio::sync::{mpsc, oneshot};

/// Default address of the aggregator.
pub const DEFAULT_LISTEN: &str = "0.0.0.0:9900";

/// The aggregator's configuration: `--config` TOML (unknown keys rejected) and flags on top.
#[derive(Deserialize, Serialize, Clone, Debug)]
#[serde(deny_unknown_fields, default)]
pub struct AggregatorConfig {
    pub listen: SocketAddr,
    /// Directory of the embedded store (used unless `database_url` is set).
    pub data_dir: PathBuf,
    /// PostgreSQL connection string (`postgresql://user@host:port/db` or `host=... user=...`):
    /// several replicas share it.
    pub database_url: Option<String>,
    /// File whose first line is the bearer token agents must send. None: no auth.
    pub auth_token_file: Option<PathBuf>,
    /// A node without a report for this long is stale (default 3 x the agents' 15 s interval).
    pub stale_after_seconds: f64,
    /// A node without a report for this long is forgotten (default one day).
    pub gc_after_seconds: f64,
    /// Largest accepted report body.
    pub max_report_bytes: u64,
    pub log_format: LogFormat,
}

impl Default for AggregatorConfig {
    fn default() -> Self {
        AggregatorConfig {
            listen: DEFAULT_LISTEN.parse().expect("valid default address"),
            data_dir: PathBuf::from("/var/lib/gluten-node-aggregator"),
            database_url: None,
            auth_token_file: None,
            stale_after_seconds: 45.0,
            gc_after_seconds: 86_400.0,
            max_report_bytes: 1 << 20,
            log_format: LogFormat::Text,
        }
    }
}

impl AggregatorConfig {
    /// Loads `file` (if any), applies `overrides` (top-level key, value), checks the result.
    pub fn load(
        file: Option<&Path>,
        overrides: &[(String, toml::Value)],
    ) -> Result<AggregatorConfig, ConfigError> {
        let mut table = crate::config::read_table(file)?;
        for (k, v) in overrides {
            table.insert(k.clone(), v.clone());
        }
        let config: AggregatorConfig = crate::config::deserialize_naming_key(&table, file)?;
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let bad = |key: &str, why: String| {
            Err(ConfigError::Invalid(format!("config key `{key}`: {why}")))
        };
        let positive = |v: f64| v.is_finite() && v > 0.0;
        if !positive(self.stale_after_seconds) {
            return bad(
                "stale_after_seconds",
                format!(
                    "must be a positive number of seconds, got {}",
                    self.stale_after_seconds
                ),
            );
        }
        if !(positive(self.gc_after_seconds) && self.gc_after_seconds >= self.stale_after_seconds) {
            return bad(
                "gc_after_seconds",
                format!(
                    "must be at least stale_after_seconds ({}), got {}",
                    self.stale_after_seconds, self.gc_after_seconds
                ),
            );
        }
        if self.max_report_bytes < 1024 {
            return bad(
                "max_report_bytes",
                format!("must be at least 1024, got {}", self.max_report_bytes),
            );
        }
        if let Some(url) = &self.database_url
            && url.trim().is_empty()
        {
            return bad("database_url", "must not be empty".into());
        }
        if self.database_url.is_none() && self.data_dir.as_os_str().is_empty() {
            return bad("data_dir", "must not be empty".into());
        }
        if let Some(path) = &self.auth_token_file {
            read_token(path).map_err(|why| {
                ConfigError::Invalid(format!("config key `auth_token_file`: {why}"))
            })?;
        }
        Ok(())
    }
}

pub use crate::token::read_token;

/// Why the aggregator could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("listening on {addr} (config key `listen`): {source}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("serving HTTP: {0}")]
    Http(#[source] std::io::Error),
}

/// Counters of this process (per replica).
#[derive(Default)]
struct Counters {
    accepted: AtomicU64,
    malformed: AtomicU64,
    too_large: AtomicU64,
    unauthorized: AtomicU64,
    unprocessable: AtomicU64,
    store_errors: AtomicU64,
}

/// What the handlers share.
pub struct AppState {
    config: AggregatorConfig,
    fleet: Arc<Fleet>,
    writer: mpsc::Sender<Incoming>,
    token: Option<arc_swap::ArcSwap<String>>,
    counters: Counters,
    /// When the serving state last matched the store (ms since the epoch): at start, and after
    /// each PostgreSQL refresh. `/readyz` fails when it falls behind.
    synced_ms: AtomicI64,
    postgres: bool,
}

/// Opens the store, loads it, and serves until `shutdown` completes.
pub async fn serve(
    config: AggregatorConfig,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    let backend = Arc::new(match &config.database_url {
        Some(url) => Backend::Postgres(postgres::Postgres::open(url).await?),
        None => Backend::Embedded(store::Embedded::open(&config.data_dir)?),
    });
    let fleet = Arc::new(Fleet::default());
    let records = backend.load_all().await?;
    let mut watermark = records.iter().map(|r| r.seq).max().unwrap_or(-1);
    fleet.install_records(records);
    tracing::info!(store = %backend.describe(), nodes = fleet.len(), "store loaded");

    let (tx, rx) = mpsc::channel(4096);
    tokio::spawn(store::run_writer(backend.clone(), fleet.clone(), rx));
    let token = config
        .auth_token_file
        .as_ref()
        .map(|p| arc_swap::ArcSwap::from_pointee(read_token(p).unwrap_or_default()));
    let state = Arc::new(AppState {
        postgres: config.database_url.is_some(),
        config: config.clone(),
        fleet: fleet.clone(),
        writer: tx,
        token,
        counters: Counters::default(),
        synced_ms: AtomicI64::new(store::now_ms()),
    });

    // Token rotation: re-read the file every few seconds; keep the old token if it breaks.
    if let Some(path) = config.auth_token_file.clone() {
        let st = state.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_secs(5)).await;
                match read_token(&path) {
                    Ok(t) => {
                        if let Some(cur) = &st.token
                            && **cur.load() != t
                        {
                            cur.store(Arc::new(t));
                            tracing::info!("auth token reloaded");
                        }
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "auth token file unreadable; keeping the old token")
                    }
                }
            }
        });
    }

    // Garbage collection of departed nodes.
    {
        let (backend, fleet) = (backend.clone(), fleet.clone());
        let gc_ms = (config.gc_after_seconds * 1000.0) as i64;
        let every = Duration::from_secs_f64((config.gc_after_seconds / 4.0).clamp(0.5, 60.0));
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                let cutoff = store::now_ms() - gc_ms;
                let gone = fleet.remove_older_than(cutoff);
                if !gone.is_empty() {
                    tracing::info!(nodes = gone.len(), "forgot departed nodes");
                    if let Err(e) = backend.delete(gone, cutoff).await {
                        tracing::warn!(error = %e, "garbage collection");
                    }
                }
            }
        });
    }

    // PostgreSQL: follow the other replicas' writes.
    if let Backend::Postgres(_) = &*backend {
        let (backend, st) = (backend.clone(), state.clone());
        tokio::spawn(async move {
            let Backend::Postgres(pg) = &*backend else {
                return;
            };
            loop {
                tokio::time::sleep(postgres::REFRESH).await;
                match pg.changed_since(watermark).await {
                    Ok(records) => {
                        watermark = records.iter().map(|r| r.seq).max().unwrap_or(watermark);
                        st.fleet.install_records(records);
                        st.synced_ms.store(store::now_ms(), Ordering::Relaxed);
                    }
                    Err(e) => tracing::warn!(error = %e, "refresh from PostgreSQL"),
                }
            }
        });
    }

    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|source| ServeError::Bind {
            addr: config.listen,
            source,
        })?;
    tracing::info!(listen = %config.listen, "aggregator serving");
    // systemd Type=notify: ready once the store is loaded and the listener bound.
    let notifier = crate::notify::Notifier::from_env();
    if let Some(n) = &notifier {
        n.send("READY=1");
    }
    let served = axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown)
        .await
        .map_err(ServeError::Http);
    if let Some(n) = &notifier {
        n.send("STOPPING=1");
    }
    served
}

/// The aggregator's router.
pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/", get(page))
        .route("/livez", get(livez))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/api/v1/reports", axum::routing::post(post_report))
        .route("/api/v1/nodes", get(nodes))
        .route("/api/v1/nodes/{name}", get(node))
        .route("/api/v1/fleet", get(fleet_view))
        .with_state(state)
}

fn json<T: Serialize>(status: StatusCode, v: &T, pretty: bool) -> Response {
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

fn error(status: StatusCode, error: String) -> Response {
    json(status, &ApiError { error, valid: None }, true)
}

fn text(status: StatusCode, body: &'static str) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        body,
    )
        .into_response()
}

async fn livez() -> Response {
    text(StatusCode::OK, "ok\n")
}

/// 200 while the serving state follows the store (always, for the embedded store; for
/// PostgreSQL, while refreshes succeed).
async fn readyz(State(st): State<Arc<AppState>>) -> Response {
    let behind_ms = store::now_ms() - st.synced_ms.load(Ordering::Relaxed);
    if st.postgres && behind_ms > 5 * postgres::REFRESH.as_millis() as i64 {
        return text(
            StatusCode::SERVICE_UNAVAILABLE,
            "[-]PostgreSQL refresh failing\nnot ready\n",
        );
    }
    text(StatusCode::OK, "ok\n")
}

fn stale_ms(st: &AppState) -> i64 {
    (st.config.stale_after_seconds * 1000.0) as i64
}

async fn nodes(State(st): State<Arc<AppState>>) -> Response {
    let (now, stale) = (store::now_ms(), stale_ms(&st));
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

async fn node(State(st): State<Arc<AppState>>, UrlPath(name): UrlPath<String>) -> Response {
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
        summary: n.summary(store::now_ms(), stale_ms(&st)),
        report,
        transitions: n.transitions.to_vec(),
    };
    json(StatusCode::OK, &detail, true)
}

fn compute_view(st: &AppState) -> proto::fleet::FleetView {
    let now = store::now_ms();
    st.fleet
        .read(|m| fleet::fleet_view(m.values().map(|n| &**n), now, st.config.stale_after_seconds))
}

async fn fleet_view(State(st): State<Arc<AppState>>) -> Response {
    json(StatusCode::OK, &compute_view(&st), true)
}

async fn metrics(State(st): State<Arc<AppState>>) -> Response {
    let view = compute_view(&st);
    let c = &st.counters;
    let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
    let body = fleet::render_metrics(
        &view,
        &[
            (
                "gluten_fleet_reports_accepted_total",
                "Reports stored by this replica.",
                vec![(String::new(), load(&c.accepted))],
            ),
            (
                "gluten_fleet_reports_rejected_total",
                "Reports refused by this replica, by reason.",
                [
                    ("malformed", &c.malformed),
                    ("too_large", &c.too_large),
                    ("unauthorized", &c.unauthorized),
                    ("unprocessable", &c.unprocessable),
                    ("store_error", &c.store_errors),
                ]
                .iter()
                .map(|(r, v)| (format!("{{reason=\"{r}\"}}"), load(v)))
                .collect(),
            ),
        ],
    );
    (
        StatusCode::OK,
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        body,
    )
        .into_response()
}

async fn page() -> Response {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        include_str!("page.html"),
    )
        .into_response()
}

/// Constant-time comparison of two tokens.
fn same_token(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// A node name the aggregator accepts: 1 to 253 characters of `A-Z a-z 0-9 . _ -` (a DNS name
/// or a Kubernetes node name).
pub fn valid_node_name(name: &str) -> bool {
    (1..=253).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// Why a pushed body is refused before it reaches the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rejected {
    /// Not JSON, or not a report: 400.
    Malformed(String),
    /// A report this aggregator will not take (another schema, a bad node name): 422.
    Unprocessable(String),
}

/// Decodes and validates a pushed report (pure: the whole of the aggregator's input checking
/// after authentication and the size limit).
pub fn decode_report(bytes: &[u8]) -> Result<NodeReport, Rejected> {
    let report: NodeReport = match serde_json::from_slice(bytes) {
        Ok(r) => r,
        Err(e) => {
            // A report of another schema may not parse as this one: say which problem it is.
            #[derive(Deserialize)]
            struct Probe {
                schema_version: u32,
            }
            if let Ok(p) = serde_json::from_slice::<Probe>(bytes)
                && p.schema_version != SCHEMA_VERSION
            {
                return Err(Rejected::Unprocessable(unsupported(p.schema_version)));
            }
            return Err(Rejected::Malformed(format!("malformed report: {e}")));
        }
    };
    if report.schema_version != SCHEMA_VERSION {
        return Err(Rejected::Unprocessable(unsupported(report.schema_version)));
    }
    if !valid_node_name(&report.node.name) {
        return Err(Rejected::Unprocessable(format!(
            "node.name {:?} is not 1 to 253 characters of A-Z a-z 0-9 . _ -",
            report.node.name
        )));
    }
    Ok(report)
}

/// Everything is checked before anything is stored: a bad report never changes state.
async fn post_report(State(st): State<Arc<AppState>>, headers: HeaderMap, body: Body) -> Response {
    let c = &st.counters;
    let reject = |counter: &AtomicU64, status: StatusCode, why: String| {
        counter.fetch_add(1, Ordering::Relaxed);
        error(status, why)
    };
    if let Some(token) = &st.token {
        let sent = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim);
        let ok = sent.is_some_and(|s| same_token(s.as_bytes(), token.load().as_bytes()));
        if !ok {
            let why = if sent.is_none() {
                "missing bearer token (Authorization: Bearer <token>)"
            } else {
                "wrong bearer token"
            };
            let mut r = reject(&c.unauthorized, StatusCode::UNAUTHORIZED, why.into());
            r.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                axum::http::HeaderValue::from_static("Bearer"),
            );
            return r;
        }
    }
    let limit = st.config.max_report_bytes as usize;
    let too_large = || format!("report larger than max_report_bytes ({limit} bytes)");
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return reject(&c.too_large, StatusCode::PAYLOAD_TOO_LARGE, too_large());
    }
    let bytes = match axum::body::to_bytes(body, limit).await {
        Ok(b) => b,
        Err(_) => return reject(&c.too_large, StatusCode::PAYLOAD_TOO_LARGE, too_large()),
    };
    let report = match decode_report(&bytes) {
        Ok(r) => r,
        Err(Rejected::Malformed(why)) => return reject(&c.malformed, StatusCode::BAD_REQUEST, why),
        Err(Rejected::Unprocessable(why)) => {
            return reject(&c.unprocessable, StatusCode::UNPROCESSABLE_ENTITY, why);
        }
    };
    let (ack, done) = oneshot::channel();
    let incoming = Incoming {
        report,
        json: Arc::from(&bytes[..]),
        ack,
    };
    let stored = match st.writer.send(incoming).await {
        Ok(()) => done.await.unwrap_or_else(|_| Err("writer stopped".into())),
        Err(_) => Err("writer stopped".into()),
    };
    match stored {
        Ok(()) => {
            c.accepted.fetch_add(1, Ordering::Relaxed);
            StatusCode::NO_CONTENT.into_response()
        }
        Err(e) => reject(
            &c.store_errors,
            StatusCode::SERVICE_UNAVAILABLE,
            format!("could not store the report: {e}"),
        ),
    }
}

fn unsupported(v: u32) -> String {
    format!("unsupported schema_version {v}: this aggregator reads {SCHEMA_VERSION}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_names_are_checked() {
        assert!(valid_node_name("worker-17.dc1_a"));
        assert!(!valid_node_name(""));
        assert!(!valid_node_name("a b"));
        assert!(!valid_node_name("../x/y"));
        assert!(!valid_node_name(&"a".repeat(254)));
    }

    #[test]
    fn tokens_compare_whole() {
        assert!(same_token(b"abc", b"abc"));
        assert!(!same_token(b"abc", b"abd"));
        assert!(!same_token(b"abc", b"abcd"));
    }

    #[test]
    fn config_errors_name_the_key() {
        let e = AggregatorConfig::load(
            None,
            &[("stale_after_secs".into(), toml::Value::Float(1.0))],
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("stale_after_secs"), "{e}");
        let e = AggregatorConfig::load(
            None,
            &[(
                "stale_after_seconds".into(),
                toml::Value::String("x".into()),
            )],
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("stale_after_seconds"), "{e}");
        let e = AggregatorConfig::load(
            None,
            &[("gc_after_seconds".into(), toml::Value::Float(1.0))],
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("gc_after_seconds"), "{e}");
    }
}

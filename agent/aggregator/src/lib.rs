//! The fleet aggregator (`gluten-node-agent aggregator`): receives the agents' reports, keeps the
//! latest per node and its status transitions in a durable store, and serves the fleet view
//! (`/api/v1/...`), Prometheus gauges and a web page. This file wires the parts (`serve`).
//!
//! Code map: [`config`] (TOML and flags), [`http`] (router, handlers, auth, report decoding,
//! compression), [`identity`] (who a push speaks for: shared token, client certificate,
//! service-account token), [`writer`] (the single writer), [`state`] (the reader state every request
//! reads), [`index`] (the fleet index: node summaries and incremental aggregates, paging),
//! [`tasks`] (background loops), [`history`] (the 24 h status ring), [`fleet`] (pure fleet
//! logic: summaries, transitions, batch folding), [`metrics`] (`/metrics`), [`store`] (the
//! durable backends: embedded redb, PostgreSQL).
//!
//! Lists, the fleet view and `/metrics` never touch the store: they are answered from per-node
//! summaries in memory ([`state::Fleet`]), which the writer task updates after each commit (and,
//! with PostgreSQL, a refresh task from the other replicas' writes). Full reports and transition
//! histories stay in the store and are read for `/api/v1/nodes/{name}` only.

pub mod config;
pub mod fleet;
pub mod history;
pub mod http;
pub mod identity;
pub mod index;
pub mod metrics;
mod queue;
pub mod state;
pub mod store;
pub mod tasks;
mod writer;

pub use config::{AggregatorConfig, DEFAULT_AGGREGATOR_LISTEN};
pub use http::report::{Rejected, decode_report, valid_node_name};
pub use http::router;
pub use state::FleetState;

use common::config_file::ConfigError;
use state::{Counters, Fleet, now_ms};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64};
use store::{Store, StoreError};
use tokio::sync::mpsc;

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
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("serving HTTP: {0}")]
    Http(#[source] std::io::Error),
}

/// Opens the store, loads it, and serves until `shutdown` completes.
pub async fn serve(
    config: AggregatorConfig,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    let loaded = config.loaded()?;
    let store: Arc<dyn Store> = match &config.database_url {
        Some(url) => Arc::new(store::postgres::Postgres::open(url).await?),
        None => Arc::new(store::redb::Embedded::open(&config.data_dir)?),
    };
    let fleet = Arc::new(Fleet::default());
    fleet.install_records(store.load_all().await?);
    tracing::info!(store = %store.describe(), nodes = fleet.len(), "store loaded");

    let (tx, rx) = mpsc::channel(4096);
    let token = |tokens: &Option<Vec<String>>| tokens.clone().map(arc_swap::ArcSwap::from_pointee);
    if !config.push_authenticated() {
        tracing::warn!(
            listen = %config.listen,
            allow_unauthenticated_push = config.allow_unauthenticated_push,
            "no push authentication configured: any client that reaches the aggregator may push any node's report"
        );
    }
    let state = Arc::new(FleetState {
        service_accounts: loaded.service_accounts.clone(),
        shared_store: config.database_url.is_some(),
        token: token(&loaded.auth_tokens),
        read_token: token(&loaded.read_tokens),
        config: config.clone(),
        fleet,
        store,
        writer: tx,
        counters: Counters::default(),
        synced_ms: AtomicI64::new(now_ms()),
        store_writable: AtomicBool::new(true),
        history: Default::default(),
        seen: Default::default(),
        bodies: http::budget::BodyBudget::new(config.inflight_body_budget()),
    });
    writer::spawn_writers(state.clone(), rx);
    if let Some(path) = config.auth_token_file.clone() {
        tasks::spawn_token_reload(state.clone(), path, |s| s.token.as_ref());
    }
    if let Some(path) = config.read_token_file.clone() {
        tasks::spawn_token_reload(state.clone(), path, |s| s.read_token.as_ref());
    }
    tasks::spawn_gc(state.clone());
    tasks::spawn_store_recovery(state.clone());
    tasks::spawn_history(state.clone());
    tasks::spawn_seen_flush(state.clone());
    if state.shared_store {
        tasks::spawn_refresh(state.clone());
    }

    let listener = serve::bind(config.listen)
        .await
        .map_err(|source| ServeError::Bind {
            addr: config.listen,
            source,
        })?;
    tracing::info!(listen = %config.listen, "aggregator serving");
    // systemd Type=notify: ready once the store is loaded and the listener bound.
    let notifier = serve::notify::Notifier::from_env();
    if let Some(n) = &notifier {
        n.send("READY=1");
    }
    let options = serve::Options {
        limits: serve::Limits::default(),
        tls: loaded.tls.clone(),
    };
    let served = serve::serve(listener, router(state), options, shutdown)
        .await
        .map_err(ServeError::Http);
    if let Some(n) = &notifier {
        n.send("STOPPING=1");
    }
    served
}

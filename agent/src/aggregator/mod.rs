//! The fleet aggregator (`gluten-node-agent aggregator`): receives the agents' reports, keeps the
//! latest per node and its status transitions in a durable store, and serves the fleet view
//! (`/api/v1/...`), Prometheus gauges and a web page. This file wires the parts (`serve`).
//!
//! Code map: [`config`] (TOML and flags), [`http`] (router, handlers, auth, report decoding),
//! [`writer`] (the single writer), [`state`] (the reader state every request reads),
//! [`tasks`] (background loops), [`fleet`] (pure fleet logic), [`metrics`] (`/metrics`),
//! [`store`] (the durable backends: embedded redb, PostgreSQL).
//!
//! Reading never touches the store: every request is answered from the in-memory state
//! ([`state::Fleet`]), which the writer task updates after each commit (and, with PostgreSQL, a
//! refresh task from the other replicas' writes).

pub mod config;
pub mod fleet;
pub mod http;
pub mod metrics;
pub mod state;
pub mod store;
pub mod tasks;
pub mod writer;

pub use config::{AggregatorConfig, DEFAULT_AGGREGATOR_LISTEN};
pub use http::report::{Rejected, decode_report, valid_node_name};
pub use http::router;
pub use state::FleetState;

use state::{Counters, Fleet, now_ms};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::AtomicI64;
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
    #[error("serving HTTP: {0}")]
    Http(#[source] std::io::Error),
}

/// Opens the store, loads it, and serves until `shutdown` completes.
pub async fn serve(
    config: AggregatorConfig,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    let store: Arc<dyn Store> = match &config.database_url {
        Some(url) => Arc::new(store::postgres::Postgres::open(url).await?),
        None => Arc::new(store::redb::Embedded::open(&config.data_dir)?),
    };
    let fleet = Arc::new(Fleet::default());
    let records = store.load_all().await?;
    let watermark = records.iter().map(|r| r.seq).max().unwrap_or(-1);
    fleet.install_records(records);
    tracing::info!(store = %store.describe(), nodes = fleet.len(), "store loaded");

    let (tx, rx) = mpsc::channel(4096);
    tokio::spawn(writer::run_writer(store.clone(), fleet.clone(), rx));
    let token = config
        .auth_token_file
        .as_ref()
        .map(|p| arc_swap::ArcSwap::from_pointee(crate::token::read_token(p).unwrap_or_default()));
    let state = Arc::new(FleetState {
        shared_store: store.changed_since(watermark).is_some(),
        config: config.clone(),
        fleet: fleet.clone(),
        writer: tx,
        token,
        counters: Counters::default(),
        synced_ms: AtomicI64::new(now_ms()),
    });
    if let Some(path) = config.auth_token_file.clone() {
        tasks::spawn_token_reload(state.clone(), path);
    }
    tasks::spawn_gc(store.clone(), fleet.clone(), config.gc_after_seconds);
    if state.shared_store {
        tasks::spawn_refresh(store.clone(), state.clone(), watermark);
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
    let tls = match config
        .tls()
        .map_err(|e| ServeError::Http(std::io::Error::other(e)))?
    {
        Some(files) => Some(Arc::new(
            crate::server::tls::ReloadingTls::load(files)
                .map_err(|e| ServeError::Http(std::io::Error::other(e)))?,
        )),
        None => None,
    };
    let options = crate::server::Options {
        limits: crate::server::Limits::default(),
        tls,
    };
    let served = crate::server::serve(listener, router(state), options, shutdown)
        .await
        .map_err(ServeError::Http);
    if let Some(n) = &notifier {
        n.send("STOPPING=1");
    }
    served
}

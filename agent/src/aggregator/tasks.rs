//! The aggregator's background loops, each its own task: token reload, garbage collection of
//! departed nodes, and (PostgreSQL) following the other replicas' writes.

use super::state::{Fleet, FleetState, now_ms};
use super::store::Store;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

/// How often a replica reads what other replicas wrote.
pub const REFRESH: Duration = Duration::from_secs(1);

/// Token rotation: re-reads the file every few seconds; keeps the old token if it breaks.
pub fn spawn_token_reload(state: Arc<FleetState>, path: PathBuf) {
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_secs(5)).await;
            match crate::token::read_token(&path) {
                Ok(t) => {
                    if let Some(cur) = &state.token
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

/// Garbage collection: forgets nodes without a report for `gc_after_seconds`.
pub fn spawn_gc(store: Arc<dyn Store>, fleet: Arc<Fleet>, gc_after_seconds: f64) {
    let gc_ms = (gc_after_seconds * 1000.0) as i64;
    let every = Duration::from_secs_f64((gc_after_seconds / 4.0).clamp(0.5, 60.0));
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(every).await;
            let cutoff = now_ms() - gc_ms;
            let gone = fleet.remove_older_than(cutoff);
            if !gone.is_empty() {
                tracing::info!(nodes = gone.len(), "forgot departed nodes");
                if let Err(e) = store.delete(gone, cutoff).await {
                    tracing::warn!(error = %e, "garbage collection");
                }
            }
        }
    });
}

/// For a store other replicas write: installs their rows past `watermark` every [`REFRESH`].
pub fn spawn_refresh(store: Arc<dyn Store>, state: Arc<FleetState>, mut watermark: i64) {
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(REFRESH).await;
            let Some(changed) = store.changed_since(watermark) else {
                return;
            };
            match changed.await {
                Ok(records) => {
                    watermark = records.iter().map(|r| r.seq).max().unwrap_or(watermark);
                    state.fleet.install_records(records);
                    state.synced_ms.store(now_ms(), Ordering::Relaxed);
                }
                Err(e) => tracing::warn!(error = %e, "refresh from PostgreSQL"),
            }
        }
    });
}

//! The aggregator's background loops, each its own task: token reload, garbage collection of
//! departed nodes, store recovery after an I/O error, the status history sampler and (PostgreSQL)
//! following the other replicas' writes.

use super::fleet::rfc3339_ms;
use super::state::{FleetState, now_ms};
use proto::fleet::HistoryPoint;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

/// How often a replica reads what other replicas wrote.
pub const REFRESH: Duration = Duration::from_millis(500);
/// First and longest wait between two attempts to reopen a store that failed a write.
pub const RECOVERY_FIRST: Duration = Duration::from_millis(500);
pub const RECOVERY_MAX: Duration = Duration::from_secs(10);

/// Token rotation: re-reads the file every few seconds; keeps the old tokens if it breaks.
pub fn spawn_token_reload(
    state: Arc<FleetState>,
    path: PathBuf,
    pick: fn(&FleetState) -> Option<&arc_swap::ArcSwap<Vec<String>>>,
) {
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_secs(5)).await;
            match serve::token::read_tokens_async(&path).await {
                Ok(t) => {
                    if let Some(cur) = pick(&state)
                        && **cur.load() != t
                    {
                        cur.store(Arc::new(t));
                        tracing::info!(file = %path.display(), "token reloaded");
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "token file unreadable; keeping the old token")
                }
            }
        }
    });
}

/// Garbage collection: forgets nodes without a report for `gc_after_seconds`.
pub fn spawn_gc(state: Arc<FleetState>) {
    let gc_ms = (state.config.gc_after_seconds * 1000.0) as i64;
    let every = Duration::from_secs_f64((state.config.gc_after_seconds / 4.0).clamp(0.5, 60.0));
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(every).await;
            let cutoff = now_ms() - gc_ms;
            let gone = state.fleet.remove_older_than(cutoff);
            if !gone.is_empty() {
                tracing::info!(nodes = gone.len(), "forgot departed nodes");
                if let Err(e) = state.store.delete(gone, cutoff).await {
                    tracing::warn!(error = %e, "garbage collection");
                }
            }
        }
    });
}

/// While the store cannot take writes: reopens it with a doubling backoff (0.5 s up to 10 s),
/// so writes succeed again within seconds of the cause (a full disk) going away.
pub fn spawn_store_recovery(state: Arc<FleetState>) {
    tokio::spawn(async move {
        let mut delay = RECOVERY_FIRST;
        loop {
            tokio::time::sleep(if state.writable() {
                RECOVERY_FIRST
            } else {
                delay
            })
            .await;
            if state.writable() {
                delay = RECOVERY_FIRST;
                continue;
            }
            match state.store.recover().await {
                Ok(()) => {
                    tracing::info!("store takes writes again");
                    state.store_writable.store(true, Ordering::Relaxed);
                    delay = RECOVERY_FIRST;
                }
                Err(e) => {
                    tracing::warn!(error = %e, retry_in_seconds = delay.as_secs_f64(), "store still cannot take writes");
                    delay = (delay * 2).min(RECOVERY_MAX);
                }
            }
        }
    });
}

/// How often last-seen times of heartbeats answered from memory are written to the store.
pub const SEEN_FLUSH: Duration = Duration::from_secs(1);

/// Writes the last-seen times of heartbeats answered from memory, every [`SEEN_FLUSH`].
pub fn spawn_seen_flush(state: Arc<FleetState>) {
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(SEEN_FLUSH).await;
            let seen: Vec<(String, i64)> =
                std::mem::take(&mut *state.seen.lock().unwrap_or_else(|e| e.into_inner()))
                    .into_iter()
                    .collect();
            if seen.is_empty() || !state.writable() {
                continue;
            }
            if let Err(e) = state.store.record_seen(seen).await {
                // Memory has them; the next heartbeat (or report) writes them again.
                tracing::warn!(error = %e, "recording heartbeats");
            }
        }
    });
}

/// The fleet's counts now, as a history point.
pub fn history_point(state: &FleetState) -> HistoryPoint {
    let now = now_ms();
    let stale_ms = state.stale_ms();
    state.fleet.read(|idx| {
        let mut by_status = std::collections::BTreeMap::new();
        for s in proto::Status::ALL {
            by_status.insert(s, 0u64);
        }
        let mut stale = 0;
        for n in idx.nodes() {
            *by_status.entry(n.status).or_default() += 1;
            if n.is_stale(now, stale_ms) {
                stale += 1;
            }
        }
        HistoryPoint {
            at: rfc3339_ms(now),
            by_status,
            stale,
        }
    })
}

/// Samples the fleet's counts every [`super::history::INTERVAL`] into the ring buffer.
pub fn spawn_history(state: Arc<FleetState>) {
    tokio::spawn(async move {
        loop {
            let st = state.clone();
            if let Ok(p) = tokio::task::spawn_blocking(move || history_point(&st)).await {
                state
                    .history
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push(p);
            }
            tokio::time::sleep(super::history::INTERVAL).await;
        }
    });
}

/// For a store other replicas write: installs what they wrote, every [`REFRESH`].
pub fn spawn_refresh(state: Arc<FleetState>) {
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(REFRESH).await;
            let Some(changed) = state.store.changed() else {
                return;
            };
            match changed.await {
                Ok(records) => {
                    state.fleet.install_records(records);
                    state.synced_ms.store(now_ms(), Ordering::Relaxed);
                }
                Err(e) => tracing::warn!(error = %e, "refresh from PostgreSQL"),
            }
        }
    });
}

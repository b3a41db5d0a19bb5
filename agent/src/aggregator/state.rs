//! The aggregator's reader state: every node in memory ([`Fleet`]), which requests read and only
//! the writer task (and, with PostgreSQL, the refresh task) changes, plus what the handlers share
//! ([`FleetState`]).
//!
//! Architecture invariant: a request never waits on the store. Reads take the `Fleet` read lock
//! briefly; the writer installs nodes only after their commit, so nothing is visible before it is
//! durable.

use super::config::AggregatorConfig;
use super::fleet::{Interner, Node, Prev, Record};
use super::writer::Incoming;
use proto::NodeReport;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicI64, AtomicU64};
use std::sync::{Arc, Mutex, RwLock};
use tokio::sync::mpsc;

/// Milliseconds since the epoch, now.
pub fn now_ms() -> i64 {
    (crate::time::unix_seconds_now() * 1000.0) as i64
}

/// The serving state: every node, sorted by name.
#[derive(Debug, Default)]
pub struct Fleet {
    nodes: RwLock<BTreeMap<String, Arc<Node>>>,
    interner: Mutex<Interner>,
}

impl Fleet {
    /// Runs `f` on the nodes (read lock held: keep it short).
    pub fn read<T>(&self, f: impl FnOnce(&BTreeMap<String, Arc<Node>>) -> T) -> T {
        f(&self.nodes.read().unwrap_or_else(|e| e.into_inner()))
    }

    pub fn get(&self, name: &str) -> Option<Arc<Node>> {
        self.read(|m| m.get(name).cloned())
    }

    /// A node's previous state, as the embedded store's writer folds a batch over it.
    pub fn prev(&self, name: &str) -> Option<Prev> {
        self.get(name).map(|n| Prev {
            checks: n.checks.clone(),
            transitions: n.transitions.clone(),
        })
    }

    pub fn len(&self) -> usize {
        self.read(|m| m.len())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Builds the serving entry of a record whose report is already parsed.
    pub fn node(&self, report: &NodeReport, r: &Record) -> Node {
        let mut interner = self.interner.lock().unwrap_or_else(|e| e.into_inner());
        let mut n = Node::new(
            report,
            r.report_json.clone(),
            r.last_seen_ms,
            r.transitions.clone(),
            &mut interner,
        );
        n.seq = r.seq;
        n
    }

    /// Installs nodes; an entry with a higher `seq` than the incoming one is kept (a replica's
    /// refresh may race with its own writer).
    pub fn install(&self, nodes: Vec<Node>) {
        let mut map = self.nodes.write().unwrap_or_else(|e| e.into_inner());
        for n in nodes {
            match map.get(&n.name) {
                Some(old) if old.seq > n.seq => {}
                _ => {
                    map.insert(n.name.clone(), Arc::new(n));
                }
            }
        }
    }

    /// Installs records read back from the store (parses each report; skips and logs broken
    /// ones, which only a foreign writer could have stored).
    pub fn install_records(&self, records: Vec<Record>) {
        let nodes = records
            .into_iter()
            .filter_map(
                |r| match serde_json::from_slice::<NodeReport>(&r.report_json) {
                    Ok(report) => Some(self.node(&report, &r)),
                    Err(e) => {
                        tracing::warn!(node = %r.name, error = %e, "stored report does not parse; skipped");
                        None
                    }
                },
            )
            .collect();
        self.install(nodes);
    }

    /// Removes nodes last seen before `cutoff_ms`; returns their names.
    pub fn remove_older_than(&self, cutoff_ms: i64) -> Vec<String> {
        let mut map = self.nodes.write().unwrap_or_else(|e| e.into_inner());
        let gone: Vec<String> = map
            .values()
            .filter(|n| n.last_seen_ms < cutoff_ms)
            .map(|n| n.name.clone())
            .collect();
        for g in &gone {
            map.remove(g);
        }
        drop(map);
        if !gone.is_empty() {
            self.interner
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .retain_used();
        }
        gone
    }
}

/// Counters of this process (per replica).
#[derive(Default, Debug)]
pub struct Counters {
    pub accepted: AtomicU64,
    pub malformed: AtomicU64,
    pub too_large: AtomicU64,
    pub unauthorized: AtomicU64,
    pub unprocessable: AtomicU64,
    pub store_errors: AtomicU64,
}

/// What the aggregator's handlers share.
pub struct FleetState {
    pub config: AggregatorConfig,
    pub fleet: Arc<Fleet>,
    pub writer: mpsc::Sender<Incoming>,
    /// The agents' bearer token, when `auth_token_file` is set (reloaded by a task).
    pub token: Option<arc_swap::ArcSwap<String>>,
    pub counters: Counters,
    /// When the serving state last matched the store (ms since the epoch): at start, and after
    /// each PostgreSQL refresh. `/readyz` fails when it falls behind.
    pub synced_ms: AtomicI64,
    /// Whether other replicas write the store too (PostgreSQL).
    pub shared_store: bool,
}

impl FleetState {
    /// A node without a report for this long (ms) is stale.
    pub fn stale_ms(&self) -> i64 {
        (self.config.stale_after_seconds * 1000.0) as i64
    }
}

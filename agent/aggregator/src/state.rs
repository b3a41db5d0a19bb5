//! The aggregator's reader state: the fleet index in memory ([`Fleet`]), which requests read and
//! only the writer task (and, with PostgreSQL, the refresh task) changes, plus what the handlers
//! share ([`FleetState`]).
//!
//! Architecture invariant: a list or fleet request never waits on the store. Reads take the
//! index's read lock briefly; the writer installs nodes only after their commit, so nothing is
//! visible before it is durable. Full reports and transitions stay in the store and are read on
//! demand (`/api/v1/nodes/{name}`).

use super::config::AggregatorConfig;
use super::fleet::{Folded, Interner, Node, Prev, Record};
use super::history::History;
use super::index::FleetIndex;
use super::queue::Incoming;
use super::store::Store;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use tokio::sync::mpsc;

/// Milliseconds since the epoch, now.
pub fn now_ms() -> i64 {
    (common::time::unix_seconds_now() * 1000.0) as i64
}

/// The serving state: the fleet index and the strings its nodes share.
#[derive(Debug, Default)]
pub struct Fleet {
    index: RwLock<FleetIndex>,
    interner: Mutex<Interner>,
}

impl Fleet {
    /// Runs `f` on the index (read lock held: keep it short).
    pub fn read<T>(&self, f: impl FnOnce(&FleetIndex) -> T) -> T {
        f(&self.index.read().unwrap_or_else(|e| e.into_inner()))
    }

    fn write<T>(&self, f: impl FnOnce(&mut FleetIndex) -> T) -> T {
        f(&mut self.index.write().unwrap_or_else(|e| e.into_inner()))
    }

    pub fn len(&self) -> usize {
        self.read(|i| i.len())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// A node's previous state, as a batch is folded over it.
    pub fn prev(&self, name: &str) -> Option<Prev> {
        self.read(|i| {
            i.get(name).map(|n| Prev {
                checks: n.checks.iter().map(|(c, s)| (c.to_string(), *s)).collect(),
                report_seq: n.report_seq,
            })
        })
    }

    /// The digest of the node's stored report.
    pub fn digest(&self, name: &str) -> Option<Arc<str>> {
        self.read(|i| i.get(name).map(|n| n.digest.clone()))
    }

    /// Installs written reports. An entry with a higher `seq` is kept (a replica's refresh may
    /// race with its own writer).
    pub fn install_folded(&self, folded: &[Folded]) {
        let nodes: Vec<Node> = {
            let mut interner = self.interner.lock().unwrap_or_else(|e| e.into_inner());
            folded
                .iter()
                .map(|f| {
                    let mut n = Node::new(&f.name, &f.summary, f.last_seen_ms, &mut interner);
                    n.seq = f.seq;
                    n.report_seq = f.report_seq;
                    n
                })
                .collect()
        };
        self.install(nodes);
    }

    fn install(&self, nodes: Vec<Node>) {
        self.write(|idx| {
            for n in nodes {
                if idx
                    .get(&n.name)
                    .is_none_or(|old| old.seq <= n.seq || n.seq == 0)
                {
                    idx.insert(n);
                }
            }
        })
    }

    /// Heartbeats the store took: (node, last seen, seq).
    pub fn touch(&self, beats: &[(String, i64, i64)]) {
        self.write(|idx| {
            for (name, seen, seq) in beats {
                idx.touch(name, *seen, *seq);
            }
        })
    }

    /// Installs records read back from the store; a record without a summary only moves
    /// `last_seen_ms`.
    pub fn install_records(&self, records: Vec<Record>) {
        let mut nodes = Vec::new();
        let mut touched = Vec::new();
        {
            let mut interner = self.interner.lock().unwrap_or_else(|e| e.into_inner());
            for r in records {
                match &r.summary {
                    Some(s) => {
                        let mut n = Node::new(&r.name, s, r.last_seen_ms, &mut interner);
                        n.seq = r.seq;
                        n.report_seq = r.report_seq;
                        nodes.push(n);
                    }
                    None => touched.push((r.name, r.last_seen_ms, r.seq)),
                }
            }
        }
        self.install(nodes);
        self.touch(&touched);
    }

    /// Removes nodes last seen before `cutoff_ms`; returns their names.
    pub fn remove_older_than(&self, cutoff_ms: i64) -> Vec<String> {
        let gone = self.write(|idx| {
            let gone: Vec<String> = idx
                .nodes()
                .filter(|n| n.last_seen_ms < cutoff_ms)
                .map(|n| n.name.to_string())
                .collect();
            for g in &gone {
                idx.remove(g);
            }
            gone
        });
        self.interner
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain_used();
        gone
    }
}

/// Counters of this process (per replica).
#[derive(Default, Debug)]
pub struct Counters {
    pub accepted: AtomicU64,
    pub heartbeats: AtomicU64,
    pub full_reports_requested: AtomicU64,
    pub malformed: AtomicU64,
    pub too_large: AtomicU64,
    pub unauthorized: AtomicU64,
    pub unprocessable: AtomicU64,
    /// Pushes refused for who sent them (`gluten_fleet_push_refused_total{reason}`): no or a
    /// false credential, a credential of another node, a new node beyond `max_nodes`, a body
    /// that is not declared JSON.
    pub refused_unauthenticated: AtomicU64,
    pub refused_other_node: AtomicU64,
    pub refused_max_nodes: AtomicU64,
    pub refused_not_json: AtomicU64,
    pub store_errors: AtomicU64,
}

/// What the aggregator's handlers share.
pub struct FleetState {
    pub config: AggregatorConfig,
    pub fleet: Arc<Fleet>,
    pub store: Arc<dyn Store>,
    pub writer: mpsc::Sender<Incoming>,
    /// The agents' shared bearer tokens, when `auth_token_file` is set (reloaded by a task).
    pub token: Option<arc_swap::ArcSwap<Vec<String>>>,
    /// The readers' bearer tokens, when `read_token_file` is set (reloaded by a task).
    pub read_token: Option<arc_swap::ArcSwap<Vec<String>>>,
    /// The service-account token verifier, when `service_account_jwks_file` is set.
    pub service_accounts: Option<Arc<crate::identity::jwt::Verifier>>,
    pub counters: Counters,
    /// When the serving state last matched the store (ms since the epoch): at start, and after
    /// each PostgreSQL refresh. `/readyz` fails when it falls behind.
    pub synced_ms: AtomicI64,
    /// Whether other replicas write the store too (PostgreSQL).
    pub shared_store: bool,
    /// False while the store cannot take writes (the writer reopens it): `/readyz` says 503.
    pub store_writable: AtomicBool,
    /// Fleet status over time, for the page's chart.
    pub history: Mutex<History>,
    /// Heartbeats answered from memory, waiting for the next flush to the store: node -> last
    /// seen (ms).
    pub seen: Mutex<std::collections::HashMap<String, i64>>,
    /// Bytes of request bodies being read at once (`max_inflight_body_bytes`).
    pub bodies: crate::http::budget::BodyBudget,
}

impl FleetState {
    /// A node without a report for this long (ms) is stale.
    pub fn stale_ms(&self) -> i64 {
        (self.config.stale_after_seconds * 1000.0) as i64
    }

    pub fn writable(&self) -> bool {
        self.store_writable.load(Ordering::Relaxed)
    }
}

//! Where the aggregator keeps nodes: the in-memory serving state ([`Fleet`]) in front of a
//! durable backend, either the embedded store (redb, one file in `data_dir`) or PostgreSQL
//! (`database_url`, shared by several replicas).
//!
//! Writes go through one writer task per process ([`run_writer`]): it takes every report that is
//! waiting (group commit), computes the status transitions, commits them in one transaction, then
//! updates the in-memory state and only then acknowledges each report. An acknowledged report is
//! durable; a report is never visible before it is committed.

use super::fleet::{self, Interner, Node};
use proto::fleet::Transition;
use proto::{NodeReport, Status};
use redb::ReadableTable;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use tokio::sync::{mpsc, oneshot};

/// A storage failure, with what was being done.
#[derive(Debug, thiserror::Error)]
#[error("{context}: {message}")]
pub struct StoreError {
    context: String,
    message: String,
}

impl StoreError {
    pub fn new(context: &str, message: impl Into<String>) -> StoreError {
        StoreError {
            context: context.to_string(),
            message: message.into(),
        }
    }
}

fn ctx<E: std::fmt::Display>(context: &str) -> impl FnOnce(E) -> StoreError + '_ {
    move |e| StoreError {
        context: context.to_string(),
        message: e.to_string(),
    }
}

/// A node as persisted: what survives a restart.
#[derive(Debug, Clone)]
pub struct Record {
    pub name: String,
    pub report_json: Arc<[u8]>,
    pub last_seen_ms: i64,
    pub transitions: Arc<Vec<Transition>>,
    /// Monotonic write number (PostgreSQL's sequence; 0 for the embedded store).
    pub seq: i64,
}

/// The serving state: every node, sorted by name. Reads never wait on the store.
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

    pub fn len(&self) -> usize {
        self.read(|m| m.len())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Builds the serving entry of a record whose report is already parsed.
    fn node(&self, report: &NodeReport, r: &Record) -> Node {
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
    fn install(&self, nodes: Vec<Node>) {
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

/// One accepted report on its way to the store.
pub struct Incoming {
    pub report: NodeReport,
    /// The report as compact JSON.
    pub json: Arc<[u8]>,
    pub ack: oneshot::Sender<Result<(), String>>,
}

/// The durable backend.
pub enum Backend {
    Embedded(Embedded),
    Postgres(super::postgres::Postgres),
}

impl Backend {
    pub async fn load_all(&self) -> Result<Vec<Record>, StoreError> {
        match self {
            Backend::Embedded(e) => {
                let e = e.clone();
                tokio::task::spawn_blocking(move || e.load_all())
                    .await
                    .map_err(ctx("loading the embedded store"))?
            }
            Backend::Postgres(p) => p.changed_since(-1).await,
        }
    }

    /// Deletes departed nodes (still last seen before `cutoff_ms`).
    pub async fn delete(&self, names: Vec<String>, cutoff_ms: i64) -> Result<(), StoreError> {
        match self {
            Backend::Embedded(e) => {
                let e = e.clone();
                tokio::task::spawn_blocking(move || e.delete(&names))
                    .await
                    .map_err(ctx("garbage collection"))?
            }
            Backend::Postgres(p) => p.delete(&names, cutoff_ms).await,
        }
    }

    pub fn describe(&self) -> String {
        match self {
            Backend::Embedded(e) => format!("embedded store {}", e.path.display()),
            Backend::Postgres(_) => "PostgreSQL".to_string(),
        }
    }
}

/// The previous state of a node as the transition computation needs it.
#[derive(Clone, Default)]
pub struct Prev {
    pub checks: Vec<(String, Status)>,
    pub transitions: Arc<Vec<Transition>>,
}

/// What [`fold_batch`] makes of one node's reports in a batch.
#[derive(Debug)]
pub struct Folded {
    pub record: Record,
    /// The node's checks after the batch (the next report's "previous").
    pub checks: Vec<(String, Status)>,
    /// Index in the batch of the report the record holds (the node's last one).
    pub index: usize,
    /// Whether the batch added transitions (the store rewrites them only then).
    pub transitions_changed: bool,
}

/// Folds a batch of reports over the previous states (`prev`): one record per node, holding its
/// last report in the batch, with the transitions of every report of the batch accumulated.
/// Sorted by batch index.
pub fn fold_batch(
    batch: &[Incoming],
    now_ms: i64,
    mut prev: impl FnMut(&str) -> Option<Prev>,
) -> Vec<Folded> {
    let at = fleet::rfc3339_ms(now_ms);
    let mut folded: HashMap<&str, Folded> = HashMap::new();
    for (index, inc) in batch.iter().enumerate() {
        let name = inc.report.node.name.as_str();
        let (before, mut changed) = match folded.remove(name) {
            Some(f) => (
                Some(Prev {
                    checks: f.checks,
                    transitions: f.record.transitions,
                }),
                f.transitions_changed,
            ),
            None => (prev(name), false),
        };
        let checks = fleet::check_statuses(&inc.report);
        let new = fleet::transitions(before.as_ref().map(|p| p.checks.as_slice()), &checks, &at);
        let mut transitions = before.map(|p| p.transitions).unwrap_or_default();
        if !new.is_empty() {
            fleet::append_transitions(Arc::make_mut(&mut transitions), new);
            changed = true;
        }
        let record = Record {
            name: name.to_string(),
            report_json: inc.json.clone(),
            last_seen_ms: now_ms,
            transitions,
            seq: 0,
        };
        folded.insert(
            name,
            Folded {
                record,
                checks,
                index,
                transitions_changed: changed,
            },
        );
    }
    let mut out: Vec<Folded> = folded.into_values().collect();
    out.sort_by_key(|f| f.index);
    out
}

/// Most reports committed in one transaction.
const MAX_BATCH: usize = 1024;

/// The writer task: group commit, then update the serving state, then acknowledge.
pub async fn run_writer(
    backend: Arc<Backend>,
    fleet: Arc<Fleet>,
    mut rx: mpsc::Receiver<Incoming>,
) {
    let mut batch: Vec<Incoming> = Vec::with_capacity(MAX_BATCH);
    while rx.recv_many(&mut batch, MAX_BATCH).await > 0 {
        let now_ms = now_ms();
        let result = commit(&backend, &fleet, &batch, now_ms).await;
        match result {
            Ok(()) => {
                for inc in batch.drain(..) {
                    let _ = inc.ack.send(Ok(()));
                }
            }
            Err(e) => {
                tracing::error!(error = %e, reports = batch.len(), "store write failed");
                let msg = e.to_string();
                for inc in batch.drain(..) {
                    let _ = inc.ack.send(Err(msg.clone()));
                }
            }
        }
    }
}

async fn commit(
    backend: &Backend,
    fleet: &Arc<Fleet>,
    batch: &[Incoming],
    now_ms: i64,
) -> Result<(), StoreError> {
    let folded = match backend {
        Backend::Embedded(e) => {
            let folded = fold_batch(batch, now_ms, |name| {
                fleet.get(name).map(|n| Prev {
                    checks: n.checks.clone(),
                    transitions: n.transitions.clone(),
                })
            });
            let writes: Vec<(Record, bool)> = folded
                .iter()
                .map(|f| (f.record.clone(), f.transitions_changed))
                .collect();
            let e = e.clone();
            tokio::task::spawn_blocking(move || e.write(&writes))
                .await
                .map_err(ctx("writing reports"))??;
            folded
        }
        Backend::Postgres(p) => p.write(batch, now_ms).await?,
    };
    let nodes = folded
        .iter()
        .map(|f| fleet.node(&batch[f.index].report, &f.record))
        .collect();
    fleet.install(nodes);
    Ok(())
}

pub fn now_ms() -> i64 {
    (crate::time::unix_seconds_now() * 1000.0) as i64
}

// ---------------------------------------------------------------------------------------------
// Embedded store

const REPORTS: redb::TableDefinition<&str, (i64, &[u8])> = redb::TableDefinition::new("reports");
const TRANSITIONS: redb::TableDefinition<&str, &[u8]> = redb::TableDefinition::new("transitions");

/// The embedded store: `<data_dir>/fleet.redb` (redb: copy-on-write B-trees, ACID, crash-safe).
/// Table `reports`: node -> (last seen ms, report JSON); table `transitions`: node -> JSON array.
#[derive(Clone)]
pub struct Embedded {
    db: Arc<redb::Database>,
    path: PathBuf,
}

impl Embedded {
    pub fn open(data_dir: &Path) -> Result<Embedded, StoreError> {
        std::fs::create_dir_all(data_dir)
            .map_err(ctx(&format!("creating data_dir {}", data_dir.display())))?;
        let path = data_dir.join("fleet.redb");
        let what = format!("opening the embedded store {}", path.display());
        let db = redb::Database::create(&path).map_err(ctx(&what))?;
        let tx = db.begin_write().map_err(ctx(&what))?;
        tx.open_table(REPORTS).map_err(ctx(&what))?;
        tx.open_table(TRANSITIONS).map_err(ctx(&what))?;
        tx.commit().map_err(ctx(&what))?;
        Ok(Embedded {
            db: Arc::new(db),
            path,
        })
    }

    fn load_all(&self) -> Result<Vec<Record>, StoreError> {
        let what = "reading the embedded store";
        let tx = self.db.begin_read().map_err(ctx(what))?;
        let reports = tx.open_table(REPORTS).map_err(ctx(what))?;
        let transitions = tx.open_table(TRANSITIONS).map_err(ctx(what))?;
        let mut out = Vec::new();
        for entry in reports.iter().map_err(ctx(what))? {
            let (k, v) = entry.map_err(ctx(what))?;
            let name = k.value().to_string();
            let (last_seen_ms, json) = v.value();
            let history: Vec<Transition> =
                match transitions.get(name.as_str()).map_err(ctx(what))? {
                    Some(t) => serde_json::from_slice(t.value()).unwrap_or_default(),
                    None => Vec::new(),
                };
            out.push(Record {
                name,
                report_json: Arc::from(json),
                last_seen_ms,
                transitions: Arc::new(history),
                seq: 0,
            });
        }
        Ok(out)
    }

    /// One transaction, committed durably (fsync) before it returns.
    fn write(&self, records: &[(Record, bool)]) -> Result<(), StoreError> {
        let what = "writing reports to the embedded store";
        let tx = self.db.begin_write().map_err(ctx(what))?;
        {
            let mut reports = tx.open_table(REPORTS).map_err(ctx(what))?;
            let mut transitions = tx.open_table(TRANSITIONS).map_err(ctx(what))?;
            for (r, changed) in records {
                reports
                    .insert(r.name.as_str(), (r.last_seen_ms, &r.report_json[..]))
                    .map_err(ctx(what))?;
                if *changed {
                    let json = serde_json::to_vec(&*r.transitions).map_err(ctx(what))?;
                    transitions
                        .insert(r.name.as_str(), json.as_slice())
                        .map_err(ctx(what))?;
                }
            }
        }
        tx.commit().map_err(ctx(what))
    }

    fn delete(&self, names: &[String]) -> Result<(), StoreError> {
        let what = "deleting departed nodes from the embedded store";
        let tx = self.db.begin_write().map_err(ctx(what))?;
        {
            let mut reports = tx.open_table(REPORTS).map_err(ctx(what))?;
            let mut transitions = tx.open_table(TRANSITIONS).map_err(ctx(what))?;
            for n in names {
                reports.remove(n.as_str()).map_err(ctx(what))?;
                transitions.remove(n.as_str()).map_err(ctx(what))?;
            }
        }
        tx.commit().map_err(ctx(what))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proto::{CheckResult, NodeInfo, SCHEMA_VERSION};

    fn incoming(name: &str, status: Status) -> Incoming {
        let report = NodeReport {
            schema_version: SCHEMA_VERSION,
            node: NodeInfo {
                name: name.into(),
                ..Default::default()
            },
            status,
            generated_at: "t".into(),
            checks: vec![CheckResult {
                name: "numa".into(),
                status,
                summary: String::new(),
                duration_seconds: 0.0,
                checked_at: "t".into(),
                findings: vec![],
                facts: serde_json::Value::Null,
                observed_status: None,
            }],
        };
        let json = Arc::from(serde_json::to_vec(&report).unwrap());
        Incoming {
            report,
            json,
            ack: oneshot::channel().0,
        }
    }

    #[test]
    fn a_batch_folds_per_node_and_keeps_every_transition() {
        let batch = vec![
            incoming("a", Status::Ok),
            incoming("b", Status::Ok),
            incoming("a", Status::Fail),
        ];
        let out = fold_batch(&batch, 1000, |_| None);
        assert_eq!(out.len(), 2);
        assert_eq!((out[0].record.name.as_str(), out[0].index), ("b", 1));
        let a = &out[1];
        assert_eq!(a.index, 2);
        assert!(a.transitions_changed);
        assert_eq!(a.checks[0].1, Status::Fail);
        assert_eq!(a.record.transitions.len(), 2, "{:?}", a.record.transitions);
        let again = fold_batch(&batch[2..], 2000, |_| {
            Some(Prev {
                checks: a.checks.clone(),
                transitions: a.record.transitions.clone(),
            })
        });
        assert!(!again[0].transitions_changed);
    }

    #[test]
    fn embedded_store_round_trips_and_deletes() {
        let dir = tempfile::tempdir().unwrap();
        let store = Embedded::open(dir.path()).unwrap();
        let batch = vec![incoming("a", Status::Ok), incoming("b", Status::Warn)];
        let writes: Vec<(Record, bool)> = fold_batch(&batch, 5, |_| None)
            .into_iter()
            .map(|f| (f.record, f.transitions_changed))
            .collect();
        store.write(&writes).unwrap();
        drop(store);
        let store = Embedded::open(dir.path()).unwrap();
        let all = store.load_all().unwrap();
        assert_eq!(all.len(), 2);
        assert_eq!(all[0].transitions.len(), 1);
        assert_eq!(all[1].last_seen_ms, 5);
        store.delete(&["a".to_string()]).unwrap();
        assert_eq!(store.load_all().unwrap().len(), 1);
    }
}

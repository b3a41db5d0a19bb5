//! The embedded store: `<data_dir>/fleet.redb` (redb 4: copy-on-write B-trees, ACID,
//! crash-safe). Tables, all keyed by node name: `report` (the report JSON), `summary` (its
//! [`Summary`] JSON), `seen` (last seen, ms), `transitions` (JSON array, rewritten only when a
//! status changed). One writer: this process.
//!
//! After an I/O error (a full disk) redb refuses every later write until the database is closed
//! and opened again: [`Store::recover`] does that, and proves a write goes through.
//!
//! Files written by redb 2.x (file format v2, this aggregator before redb 4) are not migrated:
//! the old file is renamed aside (`fleet.redb.v2-<unix seconds>`), logged, and a fresh store is
//! started. Every agent pushes its full report within one push interval, so only the transition
//! history is lost (see docs/aggregator.md, "Embedded store upgrade").

use super::{BoxFuture, Detail, Known, Store, StoreError, Written, ctx};
use crate::fleet::{Accepted, Beat, Folded, Record, Summary, append_transitions, fold_batch};
use proto::fleet::Transition;
use redb::{ReadableDatabase, ReadableTable};
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

const REPORT: redb::TableDefinition<&str, &[u8]> = redb::TableDefinition::new("report");
const SUMMARY: redb::TableDefinition<&str, &[u8]> = redb::TableDefinition::new("summary");
const SEEN: redb::TableDefinition<&str, i64> = redb::TableDefinition::new("seen");
const TRANSITIONS: redb::TableDefinition<&str, &[u8]> = redb::TableDefinition::new("transitions");

/// redb's page cache (its default is 1 GiB, which would count in the aggregator's RSS).
pub const CACHE_BYTES: usize = 64 << 20;

/// The embedded store.
#[derive(Clone)]
pub struct Embedded {
    /// `None` between a failed reopen and the next one.
    db: Arc<RwLock<Option<Arc<redb::Database>>>>,
    path: PathBuf,
}

impl Embedded {
    /// Opens (or creates) `<data_dir>/fleet.redb`; a file of an older redb file format is renamed
    /// aside and a fresh store started.
    pub fn open(data_dir: &Path) -> Result<Embedded, StoreError> {
        std::fs::create_dir_all(data_dir)
            .map_err(ctx(&format!("creating data_dir {}", data_dir.display())))?;
        let path = data_dir.join("fleet.redb");
        let db = open_db(&path)?;
        Ok(Embedded {
            db: Arc::new(RwLock::new(Some(Arc::new(db)))),
            path,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn db(&self) -> Result<Arc<redb::Database>, StoreError> {
        self.db
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
            .ok_or_else(|| {
                StoreError::new(
                    &format!("embedded store {}", self.path.display()),
                    "closed after an I/O error; reopening",
                )
            })
    }

    /// Closes the database and opens it again (blocking).
    fn reopen_blocking(&self) -> Result<(), StoreError> {
        let mut slot = self.db.write().unwrap_or_else(|e| e.into_inner());
        *slot = None; // the old handle must be gone before the file is opened again
        *slot = Some(Arc::new(open_db(&self.path)?));
        Ok(())
    }

    fn load_all_blocking(&self) -> Result<Vec<Record>, StoreError> {
        let what = "reading the embedded store";
        let db = self.db()?;
        let tx = db.begin_read().map_err(ctx(what))?;
        let summaries = tx.open_table(SUMMARY).map_err(ctx(what))?;
        let seen = tx.open_table(SEEN).map_err(ctx(what))?;
        let mut out = Vec::new();
        for entry in summaries.iter().map_err(ctx(what))? {
            let (k, v) = entry.map_err(ctx(what))?;
            let name = k.value().to_string();
            let summary: Summary = match serde_json::from_slice(v.value()) {
                Ok(s) => s,
                Err(e) => {
                    tracing::warn!(node = %name, error = %e, "stored summary does not parse; skipped");
                    continue;
                }
            };
            let last_seen_ms = seen
                .get(name.as_str())
                .map_err(ctx(what))?
                .map(|v| v.value())
                .unwrap_or(0);
            out.push(Record {
                name,
                summary: Some(summary),
                last_seen_ms,
                seq: 0,
                report_seq: 0,
            });
        }
        Ok(out)
    }

    /// One transaction, committed durably (fsync) before it returns.
    fn write_blocking(
        &self,
        folded: &[Folded],
        beats: &[(String, bool)],
        now_ms: i64,
    ) -> Result<(), StoreError> {
        let what = "writing reports to the embedded store";
        let db = self.db()?;
        let tx = db.begin_write().map_err(ctx(what))?;
        {
            let mut report = tx.open_table(REPORT).map_err(ctx(what))?;
            let mut summary = tx.open_table(SUMMARY).map_err(ctx(what))?;
            let mut seen = tx.open_table(SEEN).map_err(ctx(what))?;
            let mut transitions = tx.open_table(TRANSITIONS).map_err(ctx(what))?;
            for f in folded {
                let name = f.name.as_str();
                let s = serde_json::to_vec(&f.summary).map_err(ctx(what))?;
                report.insert(name, &f.json[..]).map_err(ctx(what))?;
                summary.insert(name, s.as_slice()).map_err(ctx(what))?;
                seen.insert(name, f.last_seen_ms).map_err(ctx(what))?;
                if !f.new_transitions.is_empty() {
                    let mut history: Vec<Transition> =
                        match transitions.get(name).map_err(ctx(what))? {
                            Some(t) => serde_json::from_slice(t.value()).unwrap_or_default(),
                            None => Vec::new(),
                        };
                    append_transitions(&mut history, f.new_transitions.clone());
                    let json = serde_json::to_vec(&history).map_err(ctx(what))?;
                    transitions
                        .insert(name, json.as_slice())
                        .map_err(ctx(what))?;
                }
            }
            for (name, known) in beats {
                if *known {
                    seen.insert(name.as_str(), now_ms).map_err(ctx(what))?;
                }
            }
        }
        tx.commit().map_err(ctx(what))
    }

    fn detail_blocking(&self, name: &str) -> Result<Option<Detail>, StoreError> {
        let what = "reading a node from the embedded store";
        let db = self.db()?;
        let tx = db.begin_read().map_err(ctx(what))?;
        let report = tx.open_table(REPORT).map_err(ctx(what))?;
        let transitions = tx.open_table(TRANSITIONS).map_err(ctx(what))?;
        let Some(json) = report.get(name).map_err(ctx(what))? else {
            return Ok(None);
        };
        let history = match transitions.get(name).map_err(ctx(what))? {
            Some(t) => serde_json::from_slice(t.value()).unwrap_or_default(),
            None => Vec::new(),
        };
        Ok(Some(Detail {
            report_json: json.value().to_vec(),
            transitions: history,
        }))
    }

    fn delete_blocking(&self, names: &[String]) -> Result<(), StoreError> {
        let what = "deleting departed nodes from the embedded store";
        let db = self.db()?;
        let tx = db.begin_write().map_err(ctx(what))?;
        {
            for table in [REPORT, SUMMARY, TRANSITIONS] {
                let mut t = tx.open_table(table).map_err(ctx(what))?;
                for n in names {
                    t.remove(n.as_str()).map_err(ctx(what))?;
                }
            }
            let mut seen = tx.open_table(SEEN).map_err(ctx(what))?;
            for n in names {
                seen.remove(n.as_str()).map_err(ctx(what))?;
            }
        }
        tx.commit().map_err(ctx(what))
    }
}

/// Opens the file, setting aside one of an older format, and makes sure the tables exist (a
/// write transaction: it fails when the disk is full).
fn open_db(path: &Path) -> Result<redb::Database, StoreError> {
    let what = format!("opening the embedded store {}", path.display());
    let builder = || {
        let mut b = redb::Builder::new();
        b.set_cache_size(CACHE_BYTES);
        b
    };
    let db = match builder().create(path) {
        Err(redb::DatabaseError::UpgradeRequired(version)) => {
            let aside = set_aside(path, version).map_err(ctx(&what))?;
            tracing::warn!(
                old = %aside.display(),
                file_format = version,
                "the embedded store was written by an older redb (file format {version}); \
                 kept aside and starting a fresh store: reports come back with the agents' \
                 next pushes, the transition history is not carried over"
            );
            builder().create(path).map_err(ctx(&what))?
        }
        other => other.map_err(ctx(&what))?,
    };
    let tx = db.begin_write().map_err(ctx(&what))?;
    tx.open_table(REPORT).map_err(ctx(&what))?;
    tx.open_table(SUMMARY).map_err(ctx(&what))?;
    tx.open_table(SEEN).map_err(ctx(&what))?;
    tx.open_table(TRANSITIONS).map_err(ctx(&what))?;
    tx.commit().map_err(ctx(&what))?;
    Ok(db)
}

/// Renames an old-format store file to `fleet.redb.v<format>-<unix seconds>`.
fn set_aside(path: &Path, version: u8) -> std::io::Result<PathBuf> {
    let secs = common::time::unix_seconds_now() as u64;
    let aside = path.with_extension(format!("redb.v{version}-{secs}"));
    std::fs::rename(path, &aside)?;
    Ok(aside)
}

/// Runs blocking store work off the async workers.
async fn blocking<T: Send + 'static>(
    what: &'static str,
    f: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> Result<T, StoreError> {
    tokio::task::spawn_blocking(f).await.map_err(ctx(what))?
}

impl Store for Embedded {
    fn describe(&self) -> String {
        format!("embedded store {}", self.path.display())
    }

    fn load_all(&self) -> BoxFuture<'_, Result<Vec<Record>, StoreError>> {
        let e = self.clone();
        Box::pin(blocking("loading the embedded store", move || {
            e.load_all_blocking()
        }))
    }

    fn write<'a>(
        &'a self,
        reports: &'a [Accepted],
        beats: &'a [Beat],
        now_ms: i64,
        known: &'a dyn Known,
    ) -> BoxFuture<'a, Result<Written, StoreError>> {
        // The only writer: this process's serving state is the previous state.
        let folded = fold_batch(reports.iter().enumerate(), now_ms, |n| known.prev(n));
        let beat_known: Vec<(String, bool)> = beats
            .iter()
            .map(|b| {
                let digest = folded
                    .iter()
                    .rev()
                    .find(|f| f.name == b.node)
                    .map(|f| Arc::from(f.summary.digest.as_str()))
                    .or_else(|| known.digest(&b.node));
                (b.node.clone(), digest.is_some_and(|d| *d == *b.digest))
            })
            .collect();
        let e = self.clone();
        Box::pin(blocking("writing reports", move || {
            e.write_blocking(&folded, &beat_known, now_ms)?;
            Ok(Written {
                folded,
                beats: beat_known
                    .iter()
                    .map(|(_, k)| k.then_some((now_ms, 0)))
                    .collect(),
            })
        }))
    }

    fn detail(&self, name: String) -> BoxFuture<'_, Result<Option<Detail>, StoreError>> {
        let e = self.clone();
        Box::pin(blocking("reading a node", move || e.detail_blocking(&name)))
    }

    fn delete(&self, names: Vec<String>, _cutoff_ms: i64) -> BoxFuture<'_, Result<(), StoreError>> {
        let e = self.clone();
        Box::pin(blocking("garbage collection", move || {
            e.delete_blocking(&names)
        }))
    }

    fn record_seen(&self, seen: Vec<(String, i64)>) -> BoxFuture<'_, Result<(), StoreError>> {
        let e = self.clone();
        Box::pin(blocking("recording heartbeats", move || {
            let what = "recording heartbeats in the embedded store";
            let db = e.db()?;
            let tx = db.begin_write().map_err(ctx(what))?;
            {
                let summary = tx.open_table(SUMMARY).map_err(ctx(what))?;
                let mut t = tx.open_table(SEEN).map_err(ctx(what))?;
                for (name, ms) in &seen {
                    // Not for a node garbage collection deleted meanwhile.
                    if summary.get(name.as_str()).map_err(ctx(what))?.is_some() {
                        t.insert(name.as_str(), ms).map_err(ctx(what))?;
                    }
                }
            }
            tx.commit().map_err(ctx(what))
        }))
    }

    fn recover(&self) -> BoxFuture<'_, Result<(), StoreError>> {
        let e = self.clone();
        Box::pin(blocking("reopening the embedded store", move || {
            e.reopen_blocking()
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fleet::tests::accepted;
    use proto::Status;

    #[test]
    fn embedded_store_round_trips_and_deletes() {
        let dir = tempfile::tempdir().unwrap();
        let store = Embedded::open(dir.path()).unwrap();
        let batch = [accepted("a", Status::Ok), accepted("b", Status::Warn)];
        let folded = fold_batch(batch.iter().enumerate(), 5, |_| None);
        store.write_blocking(&folded, &[], 5).unwrap();
        drop(store);
        let store = Embedded::open(dir.path()).unwrap();
        let all = store.load_all_blocking().unwrap();
        assert_eq!(all.len(), 2);
        assert_eq!(all[1].last_seen_ms, 5);
        assert_eq!(all[1].summary.as_ref().unwrap().status, Status::Warn);
        let d = store.detail_blocking("a").unwrap().unwrap();
        assert_eq!(d.transitions.len(), 1);
        assert_eq!(d.report_json, &batch[0].json[..]);
        // A heartbeat moves last seen only.
        store
            .write_blocking(&[], &[("a".into(), true), ("b".into(), false)], 9)
            .unwrap();
        let all = store.load_all_blocking().unwrap();
        assert_eq!((all[0].last_seen_ms, all[1].last_seen_ms), (9, 5));
        store.delete_blocking(&["a".to_string()]).unwrap();
        assert_eq!(store.load_all_blocking().unwrap().len(), 1);
    }

    /// A real data dir written by redb 2.6.4 (the aggregator before redb 4), gzipped: opening it
    /// keeps the old file aside and starts a fresh store that takes writes.
    #[test]
    fn a_redb_2_store_is_set_aside_and_a_fresh_one_started() {
        use std::io::Read;
        let gz = include_bytes!("testdata/fleet-redb-2.6.redb.gz");
        let mut old = Vec::new();
        flate2::read::GzDecoder::new(&gz[..])
            .read_to_end(&mut old)
            .unwrap();
        assert_eq!(&old[..4], b"redb");
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("fleet.redb"), &old).unwrap();
        let store = Embedded::open(dir.path()).unwrap();
        assert!(store.load_all_blocking().unwrap().is_empty());
        let aside: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| n.starts_with("fleet.redb.v2-"))
            .collect();
        assert_eq!(aside.len(), 1, "{aside:?}");
        assert_eq!(
            std::fs::read(dir.path().join(&aside[0])).unwrap(),
            old,
            "the old file is kept as it was"
        );
        let one = [accepted("a", Status::Ok)];
        store
            .write_blocking(&fold_batch(one.iter().enumerate(), 7, |_| None), &[], 7)
            .unwrap();
        drop(store);
        // Reopening the new file keeps it (nothing set aside again).
        let store = Embedded::open(dir.path()).unwrap();
        assert_eq!(store.load_all_blocking().unwrap().len(), 1);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 2);
    }
}

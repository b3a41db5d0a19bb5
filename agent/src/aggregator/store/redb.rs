//! The embedded store: `<data_dir>/fleet.redb` (redb 4: copy-on-write B-trees, ACID,
//! crash-safe). Table `reports`: node -> (last seen ms, report JSON); table `transitions`:
//! node -> JSON array. One writer (this process).
//!
//! Files written by redb 2.x (file format v2, this aggregator before redb 4) are not migrated:
//! the old file is renamed aside (`fleet.redb.v2-<unix seconds>`), logged, and a fresh store is
//! started. Every agent pushes its full report within one push interval, so only the transition
//! history is lost (see the README, "Embedded store upgrade").

use super::{BoxFuture, KnownPrev, Store, StoreError, ctx};
use crate::aggregator::fleet::{Accepted, Folded, Record, fold_batch};
use proto::fleet::Transition;
use redb::{ReadableDatabase, ReadableTable};
use std::path::{Path, PathBuf};
use std::sync::Arc;

const REPORTS: redb::TableDefinition<&str, (i64, &[u8])> = redb::TableDefinition::new("reports");
const TRANSITIONS: redb::TableDefinition<&str, &[u8]> = redb::TableDefinition::new("transitions");

/// The embedded store.
#[derive(Clone)]
pub struct Embedded {
    db: Arc<redb::Database>,
    path: PathBuf,
}

impl Embedded {
    /// Opens (or creates) `<data_dir>/fleet.redb`; a file of an older redb file format is renamed
    /// aside and a fresh store started.
    pub fn open(data_dir: &Path) -> Result<Embedded, StoreError> {
        std::fs::create_dir_all(data_dir)
            .map_err(ctx(&format!("creating data_dir {}", data_dir.display())))?;
        let path = data_dir.join("fleet.redb");
        let what = format!("opening the embedded store {}", path.display());
        let db = match redb::Database::create(&path) {
            Err(redb::DatabaseError::UpgradeRequired(version)) => {
                let aside = set_aside(&path, version).map_err(ctx(&what))?;
                tracing::warn!(
                    old = %aside.display(),
                    file_format = version,
                    "the embedded store was written by an older redb (file format {version}); \
                     kept aside and starting a fresh store: reports come back with the agents' \
                     next pushes, the transition history is not carried over"
                );
                redb::Database::create(&path).map_err(ctx(&what))?
            }
            other => other.map_err(ctx(&what))?,
        };
        let tx = db.begin_write().map_err(ctx(&what))?;
        tx.open_table(REPORTS).map_err(ctx(&what))?;
        tx.open_table(TRANSITIONS).map_err(ctx(&what))?;
        tx.commit().map_err(ctx(&what))?;
        Ok(Embedded {
            db: Arc::new(db),
            path,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn load_all_blocking(&self) -> Result<Vec<Record>, StoreError> {
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
    fn write_blocking(&self, folded: &[Folded]) -> Result<(), StoreError> {
        let what = "writing reports to the embedded store";
        let tx = self.db.begin_write().map_err(ctx(what))?;
        {
            let mut reports = tx.open_table(REPORTS).map_err(ctx(what))?;
            let mut transitions = tx.open_table(TRANSITIONS).map_err(ctx(what))?;
            for f in folded {
                let r = &f.record;
                reports
                    .insert(r.name.as_str(), (r.last_seen_ms, &r.report_json[..]))
                    .map_err(ctx(what))?;
                if f.transitions_changed {
                    let json = serde_json::to_vec(&*r.transitions).map_err(ctx(what))?;
                    transitions
                        .insert(r.name.as_str(), json.as_slice())
                        .map_err(ctx(what))?;
                }
            }
        }
        tx.commit().map_err(ctx(what))
    }

    fn delete_blocking(&self, names: &[String]) -> Result<(), StoreError> {
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

/// Renames an old-format store file to `fleet.redb.v<format>-<unix seconds>`.
fn set_aside(path: &Path, version: u8) -> std::io::Result<PathBuf> {
    let secs = crate::time::unix_seconds_now() as u64;
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
        batch: &'a [Accepted],
        now_ms: i64,
        known: KnownPrev<'a>,
    ) -> BoxFuture<'a, Result<Vec<Folded>, StoreError>> {
        // The only writer: this process's serving state is the previous state.
        let folded = fold_batch(batch, now_ms, known);
        let e = self.clone();
        Box::pin(blocking("writing reports", move || {
            e.write_blocking(&folded)?;
            Ok(folded)
        }))
    }

    fn delete(&self, names: Vec<String>, _cutoff_ms: i64) -> BoxFuture<'_, Result<(), StoreError>> {
        let e = self.clone();
        Box::pin(blocking("garbage collection", move || {
            e.delete_blocking(&names)
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proto::{CheckResult, NodeInfo, NodeReport, SCHEMA_VERSION, Status};

    fn accepted(name: &str, status: Status) -> Accepted {
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
        Accepted { report, json }
    }

    #[test]
    fn embedded_store_round_trips_and_deletes() {
        let dir = tempfile::tempdir().unwrap();
        let store = Embedded::open(dir.path()).unwrap();
        let batch = vec![accepted("a", Status::Ok), accepted("b", Status::Warn)];
        store
            .write_blocking(&fold_batch(&batch, 5, |_| None))
            .unwrap();
        drop(store);
        let store = Embedded::open(dir.path()).unwrap();
        let all = store.load_all_blocking().unwrap();
        assert_eq!(all.len(), 2);
        assert_eq!(all[0].transitions.len(), 1);
        assert_eq!(all[1].last_seen_ms, 5);
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
        store
            .write_blocking(&fold_batch(&[accepted("a", Status::Ok)], 7, |_| None))
            .unwrap();
        drop(store);
        // Reopening the new file keeps it (nothing set aside again).
        let store = Embedded::open(dir.path()).unwrap();
        assert_eq!(store.load_all_blocking().unwrap().len(), 1);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 2);
    }
}

//! PostgreSQL backend (`database_url`): one table shared by every replica.
//!
//! Consistency: writers of all replicas serialise on one transaction-scoped advisory lock, so the
//! `seq` numbers they take from the sequence commit in order. Each replica serves from its own
//! memory and polls `seq > watermark` every second (`tasks::REFRESH`): a replica reflects another replica's
//! writes within about one second, and its own at once. Transitions are computed from the row in
//! the database (under the lock), so they are right whichever replica receives a report.

use super::{BoxFuture, KnownPrev, Store, StoreError};
use crate::aggregator::fleet::{Accepted, Folded, Prev, Record, fold_batch};
use proto::Status;
use proto::fleet::Transition;
use std::collections::HashMap;
use std::sync::Arc;
use tokio_postgres::Client;

/// Key of the advisory lock that orders writes (and schema creation) across replicas.
const LOCK: i64 = 0x676c_7574_656e; // "gluten" (113715524691310, also in SCHEMA)

const SCHEMA: &str = "
BEGIN;
SELECT pg_advisory_xact_lock(113715524691310);
CREATE SEQUENCE IF NOT EXISTS gluten_fleet_seq;
CREATE TABLE IF NOT EXISTS gluten_fleet_nodes (
    name         text PRIMARY KEY,
    report       text   NOT NULL,
    checks       text   NOT NULL,
    transitions  text   NOT NULL,
    last_seen_ms bigint NOT NULL,
    seq          bigint NOT NULL
);
CREATE INDEX IF NOT EXISTS gluten_fleet_nodes_seq ON gluten_fleet_nodes (seq);
COMMIT;
";

fn err(context: &str) -> impl FnOnce(tokio_postgres::Error) -> StoreError + '_ {
    move |e| {
        // The driver's Display is terse ("db error"); the source has the server's message.
        let msg = match e.as_db_error() {
            Some(db) => format!("{}: {}", db.code().code(), db.message()),
            None => e.to_string(),
        };
        StoreError::new(context, msg)
    }
}

/// A connection to PostgreSQL, re-opened when it breaks.
pub struct Postgres {
    url: String,
    client: tokio::sync::Mutex<Option<Client>>,
}

impl Postgres {
    /// Connects and creates the schema (idempotent).
    pub async fn open(url: &str) -> Result<Postgres, StoreError> {
        let pg = Postgres {
            url: url.to_string(),
            client: tokio::sync::Mutex::new(None),
        };
        let guard = pg.client().await?;
        if let Some(c) = guard.as_ref() {
            c.batch_execute(SCHEMA)
                .await
                .map_err(err("creating the schema"))?;
        }
        drop(guard);
        Ok(pg)
    }

    async fn client(&self) -> Result<tokio::sync::MutexGuard<'_, Option<Client>>, StoreError> {
        let mut guard = self.client.lock().await;
        if guard.as_ref().is_none_or(|c| c.is_closed()) {
            // sslmode/sslrootcert as libpq reads them, and connect/statement timeouts.
            let client = super::pg_connect::connect(&self.url)
                .await
                .map_err(|e| StoreError::new("connecting to PostgreSQL (database_url)", e))?;
            *guard = Some(client);
        }
        Ok(guard)
    }

    /// Rows written after `watermark` (all of them for -1), oldest first.
    pub async fn changed_since(&self, watermark: i64) -> Result<Vec<Record>, StoreError> {
        let guard = self.client().await?;
        let c = guard.as_ref().expect("connected");
        let rows = c
            .query(
                "SELECT name, report, transitions, last_seen_ms, seq FROM gluten_fleet_nodes \
                 WHERE seq > $1 ORDER BY seq",
                &[&watermark],
            )
            .await
            .map_err(err("reading nodes"))?;
        Ok(rows
            .into_iter()
            .map(|r| {
                let report: String = r.get(1);
                let transitions: String = r.get(2);
                Record {
                    name: r.get(0),
                    report_json: Arc::from(report.into_bytes()),
                    transitions: Arc::new(serde_json::from_str(&transitions).unwrap_or_default()),
                    last_seen_ms: r.get(3),
                    seq: r.get(4),
                }
            })
            .collect())
    }

    /// Commits a batch in one transaction; returns the records written, with their `seq`.
    pub async fn write_batch(
        &self,
        batch: &[Accepted],
        now_ms: i64,
    ) -> Result<Vec<Folded>, StoreError> {
        let what = "writing reports to PostgreSQL";
        let mut guard = self.client().await?;
        let client = guard.as_mut().expect("connected");
        let tx = client.transaction().await.map_err(err(what))?;
        tx.query("SELECT pg_advisory_xact_lock($1)", &[&LOCK])
            .await
            .map_err(err(what))?;
        let names: Vec<&str> = batch.iter().map(|i| i.report.node.name.as_str()).collect();
        let rows = tx
            .query(
                "SELECT name, checks, transitions FROM gluten_fleet_nodes WHERE name = ANY($1)",
                &[&names],
            )
            .await
            .map_err(err(what))?;
        let mut prev: HashMap<String, Prev> = HashMap::new();
        for r in rows {
            let checks: String = r.get(1);
            let transitions: String = r.get(2);
            prev.insert(
                r.get(0),
                Prev {
                    checks: serde_json::from_str::<Vec<(String, Status)>>(&checks)
                        .unwrap_or_default(),
                    transitions: Arc::new(
                        serde_json::from_str::<Vec<Transition>>(&transitions).unwrap_or_default(),
                    ),
                },
            );
        }
        let mut folded = fold_batch(batch, now_ms, |n| prev.get(n).cloned());
        let mut cols: [Vec<String>; 4] = Default::default();
        let mut last_seen: Vec<i64> = Vec::with_capacity(folded.len());
        for f in &folded {
            cols[0].push(f.record.name.clone());
            cols[1].push(String::from_utf8_lossy(&f.record.report_json).into_owned());
            cols[2].push(serde_json::to_string(&f.checks).unwrap_or_else(|_| "[]".into()));
            cols[3].push(
                serde_json::to_string(&*f.record.transitions).unwrap_or_else(|_| "[]".into()),
            );
            last_seen.push(f.record.last_seen_ms);
        }
        let written = tx
            .query(
                "INSERT INTO gluten_fleet_nodes (name, report, checks, transitions, last_seen_ms, seq) \
                 SELECT u.n, u.r, u.c, u.t, u.l, nextval('gluten_fleet_seq') \
                 FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::int8[]) AS u(n, r, c, t, l) \
                 ON CONFLICT (name) DO UPDATE SET report = EXCLUDED.report, checks = EXCLUDED.checks, \
                 transitions = EXCLUDED.transitions, last_seen_ms = EXCLUDED.last_seen_ms, seq = EXCLUDED.seq \
                 RETURNING name, seq",
                &[&cols[0], &cols[1], &cols[2], &cols[3], &last_seen],
            )
            .await
            .map_err(err(what))?;
        tx.commit().await.map_err(err(what))?;
        let seqs: HashMap<String, i64> =
            written.into_iter().map(|r| (r.get(0), r.get(1))).collect();
        for f in &mut folded {
            f.record.seq = seqs.get(&f.record.name).copied().unwrap_or(0);
        }
        Ok(folded)
    }

    /// Deletes the named nodes if they are still older than `cutoff_ms` (another replica may
    /// have received a report meanwhile).
    pub async fn delete_older(&self, names: &[String], cutoff_ms: i64) -> Result<(), StoreError> {
        let guard = self.client().await?;
        let c = guard.as_ref().expect("connected");
        c.execute(
            "DELETE FROM gluten_fleet_nodes WHERE name = ANY($1) AND last_seen_ms < $2",
            &[&names, &cutoff_ms],
        )
        .await
        .map_err(err("deleting departed nodes"))?;
        Ok(())
    }
}

impl Store for Postgres {
    fn describe(&self) -> String {
        "PostgreSQL".to_string()
    }

    fn load_all(&self) -> BoxFuture<'_, Result<Vec<Record>, StoreError>> {
        Box::pin(self.changed_since(-1))
    }

    fn write<'a>(
        &'a self,
        batch: &'a [Accepted],
        now_ms: i64,
        _known: KnownPrev<'a>,
    ) -> BoxFuture<'a, Result<Vec<Folded>, StoreError>> {
        // Other replicas write too: the previous state comes from the rows, not this memory.
        Box::pin(self.write_batch(batch, now_ms))
    }

    fn delete(&self, names: Vec<String>, cutoff_ms: i64) -> BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(async move { self.delete_older(&names, cutoff_ms).await })
    }

    fn changed_since(
        &self,
        watermark: i64,
    ) -> Option<BoxFuture<'_, Result<Vec<Record>, StoreError>>> {
        Some(Box::pin(Postgres::changed_since(self, watermark)))
    }
}

//! PostgreSQL backend (`database_url`): tables shared by every replica, no global lock.
//!
//! - **Writes** are one statement per batch (`unnest` arrays): an upsert that only replaces a
//!   row whose `report_seq` is the one the transitions were computed against (a conditional
//!   update on the previous sequence). A row another replica changed meanwhile is not touched;
//!   the writer re-reads those rows and folds again (at most [`MAX_ROUNDS`] rounds), so a node's
//!   transitions are right whichever replica receives its reports. Transitions go to their own
//!   table in the same statement. Heartbeats are one `UPDATE ... WHERE digest = ...` per batch:
//!   a row whose digest differs is not updated, and the agent is asked for its full report.
//! - **Replicas follow each other** by polling every [`super::super::tasks::REFRESH`]: rows with
//!   `seq > watermark`, plus rows written by transactions that were still running at the
//!   previous poll (`xid >= xmin` of that poll's snapshot, so a row whose sequence number was
//!   taken before a commit that came later is not missed). A row's summary is read only when its
//!   report changed (`report_seq`, `report_xid`); a heartbeat moves `last_seen_ms` alone.
//!   Heartbeats whose digest a replica knows are answered from memory and their last-seen times
//!   written about once a second ([`Store::record_seen`]), one `UPDATE` for all of them. Full reports are read only for
//!   `/api/v1/nodes/{name}`.
//! - Schema creation (idempotent) is the only thing serialised across replicas (an advisory
//!   lock, at start).
//! - **Every call has a client-side deadline** ([`CALL_DEADLINE`], `tokio::time::timeout`), on
//!   top of the server's `statement_timeout`: a server that stops answering (SIGSTOP, a half-open
//!   connection, a full disk under a lock) fails the call with an error after 10 s (503 on
//!   HTTP, a log line), and the connections are reopened before the next call.

use super::{BoxFuture, Detail, Known, Store, StoreError, Written};
use crate::fleet::{Accepted, Beat, Folded, Prev, Record, Summary, fold_batch};
use proto::fleet::Transition;
use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio_postgres::{Client, Statement};

/// Batches written at once (each on its own connection).
pub const WRITERS: usize = 4;

/// Rounds of the conditional upsert before the rest of a batch fails. Between rounds a writer
/// that lost waits a short, growing, jittered time, so writers racing on one node (two replicas,
/// or two batches of one) stop colliding instead of failing the push after a few rounds.
pub const MAX_ROUNDS: usize = 16;
/// Deadline of one statement, so a half-open connection cannot stall the writer.
pub const STATEMENT_TIMEOUT: Duration = Duration::from_secs(10);
/// Deadline of a connection attempt.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Client-side deadline of one store call (connecting and every statement of it included).
pub const CALL_DEADLINE: Duration = Duration::from_secs(10);

/// `fut` within [`CALL_DEADLINE`]; past it, an error saying so (logged), and `reset` moved on
/// so that every connection is reopened before its next use (a statement left running on one
/// would hold it).
async fn within<T>(
    what: &str,
    reset: &AtomicU64,
    fut: impl Future<Output = Result<T, StoreError>>,
) -> Result<T, StoreError> {
    match tokio::time::timeout(CALL_DEADLINE, fut).await {
        Ok(r) => r,
        Err(_) => {
            reset.fetch_add(1, Ordering::AcqRel);
            tracing::error!(
                call = what,
                deadline_seconds = CALL_DEADLINE.as_secs(),
                "PostgreSQL did not answer within the deadline; its connections are reopened"
            );
            Err(StoreError::new(
                what,
                format!("PostgreSQL did not answer within {CALL_DEADLINE:?}"),
            ))
        }
    }
}

const SCHEMA: &str = "
BEGIN;
SELECT pg_advisory_xact_lock(113715524691310);
CREATE SEQUENCE IF NOT EXISTS gluten_fleet_seq;
CREATE TABLE IF NOT EXISTS gluten_fleet_node (
    name            text   PRIMARY KEY,
    report          text   NOT NULL,
    summary         text   NOT NULL,
    digest          text   NOT NULL,
    last_seen_ms    bigint NOT NULL,
    report_seq      bigint NOT NULL,
    prev_report_seq bigint NOT NULL,
    seq             bigint NOT NULL,
    xid             xid8   NOT NULL DEFAULT pg_current_xact_id(),
    report_xid      xid8   NOT NULL DEFAULT pg_current_xact_id()
);
CREATE INDEX IF NOT EXISTS gluten_fleet_node_seq ON gluten_fleet_node (seq);
CREATE INDEX IF NOT EXISTS gluten_fleet_node_xid ON gluten_fleet_node (xid);
CREATE TABLE IF NOT EXISTS gluten_fleet_transition (
    id   bigserial PRIMARY KEY,
    name text      NOT NULL,
    body text      NOT NULL
);
CREATE INDEX IF NOT EXISTS gluten_fleet_transition_name ON gluten_fleet_transition (name, id);
COMMIT;
";

const UPSERT: &str = "
WITH u AS (
    SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::int8[], $6::int8[])
        AS u(n, r, s, d, l, p)
), up AS (
    INSERT INTO gluten_fleet_node AS o
        (name, report, summary, digest, last_seen_ms, report_seq, prev_report_seq, seq)
    SELECT n, r, s, d, l, q, p, q FROM (SELECT u.*, nextval('gluten_fleet_seq') AS q FROM u) x
    ON CONFLICT (name) DO UPDATE SET report = EXCLUDED.report, summary = EXCLUDED.summary,
        digest = EXCLUDED.digest, last_seen_ms = EXCLUDED.last_seen_ms,
        report_seq = EXCLUDED.report_seq, prev_report_seq = EXCLUDED.prev_report_seq,
        seq = EXCLUDED.seq, xid = pg_current_xact_id(), report_xid = pg_current_xact_id()
    WHERE o.report_seq = EXCLUDED.prev_report_seq
    RETURNING name, seq
), tr AS (
    INSERT INTO gluten_fleet_transition (name, body)
    SELECT t.n, t.b FROM unnest($7::text[], $8::text[]) WITH ORDINALITY AS t(n, b, i)
    JOIN up ON up.name = t.n ORDER BY t.i
)
SELECT name, seq FROM up";

const SEEN: &str = "
UPDATE gluten_fleet_node AS o
SET last_seen_ms = GREATEST(o.last_seen_ms, u.l), seq = nextval('gluten_fleet_seq'),
    xid = pg_current_xact_id()
FROM unnest($1::text[], $2::int8[]) AS u(n, l)
WHERE o.name = u.n";

const HEARTBEAT: &str = "
UPDATE gluten_fleet_node AS o
SET last_seen_ms = GREATEST(o.last_seen_ms, u.l), seq = nextval('gluten_fleet_seq'),
    xid = pg_current_xact_id()
FROM unnest($1::text[], $2::text[], $3::int8[]) AS u(n, d, l)
WHERE o.name = u.n AND o.digest = u.d
RETURNING o.name, o.last_seen_ms, o.seq";

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

/// A live connection and the statements prepared on it.
struct Live {
    client: Client,
    prepared: Vec<Statement>,
    /// The value of the reset counter when it was opened.
    epoch: u64,
}

/// One connection, re-opened when it breaks, with `statements` prepared on each.
struct Conn {
    url: String,
    statements: &'static [&'static str],
    live: tokio::sync::Mutex<Option<Live>>,
    /// Moved on when a call misses its deadline: connections of an older value are reopened.
    reset: Arc<AtomicU64>,
}

impl Conn {
    fn usable(&self, live: &Option<Live>) -> bool {
        live.as_ref()
            .is_some_and(|l| !l.client.is_closed() && l.epoch == self.reset.load(Ordering::Acquire))
    }

    async fn live(&self) -> Result<tokio::sync::MutexGuard<'_, Option<Live>>, StoreError> {
        let mut guard = self.live.lock().await;
        if !self.usable(&guard) {
            let epoch = self.reset.load(Ordering::Acquire);
            *guard = None;
            let client = connect(&self.url).await?;
            let mut prepared = Vec::new();
            for s in self.statements {
                prepared.push(
                    client
                        .prepare(s)
                        .await
                        .map_err(err("preparing statements"))?,
                );
            }
            *guard = Some(Live {
                client,
                prepared,
                epoch,
            });
        }
        Ok(guard)
    }
}

/// Connects with libpq's `sslmode`/`sslrootcert` ([`super::pg_connect`], which also sets connect
/// and keepalive timeouts), then sets [`STATEMENT_TIMEOUT`].
async fn connect(url: &str) -> Result<Client, StoreError> {
    let what = "connecting to PostgreSQL (database_url)";
    let client = super::pg_connect::connect(url)
        .await
        .map_err(|e| StoreError::new(what, e.to_string()))?;
    client
        .batch_execute(&format!(
            "SET statement_timeout = {}",
            STATEMENT_TIMEOUT.as_millis()
        ))
        .await
        .map_err(err(what))?;
    Ok(client)
}

/// Where a replica's refresh stands: the highest `seq` seen and the `xmin` of the last poll's
/// snapshot (as text: `xid8`).
#[derive(Debug, Clone)]
struct Watermark {
    seq: i64,
    xmin: String,
}

/// The PostgreSQL backend: [`WRITERS`] connections for writer tasks, one for everything else.
pub struct Postgres {
    writers: Vec<Conn>,
    reader: Conn,
    watermark: Mutex<Watermark>,
    reset: Arc<AtomicU64>,
}

impl Postgres {
    /// Connects and creates the schema (idempotent).
    pub async fn open(url: &str) -> Result<Postgres, StoreError> {
        let reset = Arc::new(AtomicU64::new(0));
        within("creating the schema", &reset, async {
            let client = connect(url).await?;
            client
                .batch_execute(SCHEMA)
                .await
                .map_err(err("creating the schema"))
        })
        .await?;
        let conn = |statements: &'static [&'static str]| Conn {
            url: url.to_string(),
            statements,
            live: tokio::sync::Mutex::new(None),
            reset: reset.clone(),
        };
        Ok(Postgres {
            writers: (0..WRITERS)
                .map(|_| conn(&[UPSERT, HEARTBEAT, SEEN]))
                .collect(),
            reader: conn(&[]),
            watermark: Mutex::new(Watermark {
                seq: -1,
                xmin: "0".into(),
            }),
            reset,
        })
    }

    /// Rows changed after the watermark (every row at first), in one snapshot; moves the
    /// watermark.
    async fn poll(&self) -> Result<Vec<Record>, StoreError> {
        let what = "reading nodes";
        let mark = self
            .watermark
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let mut guard = self.reader.live().await?;
        let c = &mut guard.as_mut().expect("connected").client;
        let tx = c
            .build_transaction()
            .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
            .await
            .map_err(err(what))?;
        let xmin: String = tx
            .query_one("SELECT pg_snapshot_xmin(pg_current_snapshot())::text", &[])
            .await
            .map_err(err(what))?
            .get(0);
        let rows = tx
            .query(
                "SELECT name, last_seen_ms, seq, report_seq, \
                 CASE WHEN report_seq > $1 OR report_xid >= $2::text::xid8 THEN summary END \
                 FROM gluten_fleet_node WHERE seq > $1 OR xid >= $2::text::xid8 ORDER BY seq",
                &[&mark.seq, &mark.xmin],
            )
            .await
            .map_err(err(what))?;
        tx.commit().await.map_err(err(what))?;
        drop(guard);
        let mut out = Vec::with_capacity(rows.len());
        let mut top = mark.seq;
        for r in rows {
            let name: String = r.get(0);
            let summary: Option<String> = r.get(4);
            let summary = match summary.map(|s| serde_json::from_str::<Summary>(&s)) {
                Some(Ok(s)) => Some(s),
                Some(Err(e)) => {
                    tracing::warn!(node = %name, error = %e, "stored summary does not parse; skipped");
                    continue;
                }
                None => None,
            };
            let seq: i64 = r.get(2);
            top = top.max(seq);
            out.push(Record {
                name,
                summary,
                last_seen_ms: r.get(1),
                seq,
                report_seq: r.get(3),
            });
        }
        *self.watermark.lock().unwrap_or_else(|e| e.into_inner()) = Watermark { seq: top, xmin };
        Ok(out)
    }

    /// The previous state of `names` as stored.
    async fn stored_prev(
        &self,
        client: &Client,
        names: &[&str],
    ) -> Result<HashMap<String, Prev>, StoreError> {
        let rows = client
            .query(
                "SELECT name, summary, report_seq FROM gluten_fleet_node WHERE name = ANY($1)",
                &[&names],
            )
            .await
            .map_err(err("reading nodes to write"))?;
        Ok(rows
            .into_iter()
            .map(|r| {
                let summary: String = r.get(1);
                let checks = serde_json::from_str::<Summary>(&summary)
                    .map(|s| s.checks)
                    .unwrap_or_default();
                (
                    r.get(0),
                    Prev {
                        checks,
                        report_seq: r.get(2),
                    },
                )
            })
            .collect())
    }

    /// A writer connection nobody uses, else the first one.
    async fn writer(&self) -> Result<tokio::sync::MutexGuard<'_, Option<Live>>, StoreError> {
        for w in &self.writers {
            if let Ok(guard) = w.live.try_lock() {
                if !w.usable(&guard) {
                    drop(guard);
                    return w.live().await;
                }
                return Ok(guard);
            }
        }
        self.writers[0].live().await
    }

    async fn write_batch(
        &self,
        reports: &[Accepted],
        beats: &[Beat],
        now_ms: i64,
        known: &dyn Known,
    ) -> Result<Written, StoreError> {
        let what = "writing reports to PostgreSQL";
        let guard = self.writer().await?;
        let live = guard.as_ref().expect("connected");
        let (client, upsert, heartbeat) = (&live.client, &live.prepared[0], &live.prepared[1]);
        let mut written: Vec<Folded> = Vec::new();
        // Indexes into `reports` still to write, and their previous states.
        let mut pending: Vec<usize> = (0..reports.len()).collect();
        let mut stored: Option<HashMap<String, Prev>> = None;
        for round in 0..MAX_ROUNDS {
            if pending.is_empty() {
                break;
            }
            let folded =
                fold_batch(
                    pending.iter().map(|&i| (i, &reports[i])),
                    now_ms,
                    |n| match &stored {
                        Some(s) => s.get(n).cloned(),
                        None => known.prev(n),
                    },
                );
            // Borrowed from the batch: the reports (already checked UTF-8 JSON) are not copied.
            let mut names: Vec<&str> = Vec::with_capacity(folded.len());
            let mut jsons: Vec<&str> = Vec::with_capacity(folded.len());
            let mut summaries: Vec<String> = Vec::with_capacity(folded.len());
            let mut digests: Vec<&str> = Vec::with_capacity(folded.len());
            let (mut seen, mut prev): (Vec<i64>, Vec<i64>) = (Vec::new(), Vec::new());
            let (mut tn, mut tb): (Vec<&str>, Vec<String>) = (Vec::new(), Vec::new());
            for f in &folded {
                names.push(&f.name);
                jsons.push(std::str::from_utf8(&f.json).map_err(|e| {
                    StoreError::new(what, format!("report of {} is not UTF-8: {e}", f.name))
                })?);
                summaries.push(serde_json::to_string(&f.summary).unwrap_or_default());
                digests.push(&f.summary.digest);
                seen.push(f.last_seen_ms);
                prev.push(f.prev_report_seq);
                for t in &f.new_transitions {
                    tn.push(&f.name);
                    tb.push(serde_json::to_string(t).unwrap_or_default());
                }
            }
            let rows = client
                .query(
                    upsert,
                    &[&names, &jsons, &summaries, &digests, &seen, &prev, &tn, &tb],
                )
                .await
                .map_err(err(what))?;
            let seqs: HashMap<String, i64> =
                rows.into_iter().map(|r| (r.get(0), r.get(1))).collect();
            let mut conflicted = Vec::new();
            for mut f in folded {
                match seqs.get(&f.name) {
                    Some(&seq) => {
                        f.seq = seq;
                        f.report_seq = seq;
                        written.push(f);
                    }
                    None => conflicted.push(f.name),
                }
            }
            // Another replica wrote these nodes since this one last saw them: fold again over
            // what is stored now.
            pending.retain(|&i| conflicted.contains(&reports[i].report.node.name));
            if !pending.is_empty() {
                tokio::time::sleep(conflict_backoff(round)).await;
                let names: Vec<&str> = conflicted.iter().map(String::as_str).collect();
                stored = Some(self.stored_prev(client, &names).await?);
            }
        }
        if !pending.is_empty() {
            return Err(StoreError::new(
                what,
                format!(
                    "{} node(s) kept changing under concurrent writers for {MAX_ROUNDS} rounds",
                    pending.len()
                ),
            ));
        }
        written.sort_by_key(|f| f.index);

        let mut beat_out = vec![None; beats.len()];
        if !beats.is_empty() {
            let names: Vec<&str> = beats.iter().map(|b| b.node.as_str()).collect();
            let digests: Vec<&str> = beats.iter().map(|b| b.digest.as_str()).collect();
            let seen = vec![now_ms; beats.len()];
            let rows = client
                .query(heartbeat, &[&names, &digests, &seen])
                .await
                .map_err(err("recording heartbeats in PostgreSQL"))?;
            let done: HashMap<String, (i64, i64)> = rows
                .into_iter()
                .map(|r| (r.get(0), (r.get(1), r.get(2))))
                .collect();
            for (i, b) in beats.iter().enumerate() {
                beat_out[i] = done.get(&b.node).copied();
            }
        }
        Ok(Written {
            folded: written,
            beats: beat_out,
        })
    }

    async fn detail_of(&self, name: &str) -> Result<Option<Detail>, StoreError> {
        let what = "reading a node from PostgreSQL";
        let guard = self.reader.live().await?;
        let c = &guard.as_ref().expect("connected").client;
        let Some(row) = c
            .query_opt(
                "SELECT report FROM gluten_fleet_node WHERE name = $1",
                &[&name],
            )
            .await
            .map_err(err(what))?
        else {
            return Ok(None);
        };
        let report: String = row.get(0);
        let rows = c
            .query(
                "SELECT body FROM gluten_fleet_transition WHERE name = $1 ORDER BY id DESC LIMIT $2",
                &[&name, &(crate::fleet::MAX_TRANSITIONS as i64)],
            )
            .await
            .map_err(err(what))?;
        let mut transitions: Vec<Transition> = rows
            .iter()
            .filter_map(|r| serde_json::from_str(r.get::<_, &str>(0)).ok())
            .collect();
        transitions.reverse();
        Ok(Some(Detail {
            report_json: report.into_bytes(),
            transitions,
        }))
    }

    /// Deletes the named nodes if they are still older than `cutoff_ms` (another replica may
    /// have received a report meanwhile), and transitions beyond the last 100 of any node.
    async fn delete_older(&self, names: &[String], cutoff_ms: i64) -> Result<(), StoreError> {
        let what = "deleting departed nodes";
        let guard = self.reader.live().await?;
        let c = &guard.as_ref().expect("connected").client;
        c.execute(
            "DELETE FROM gluten_fleet_transition WHERE name IN \
             (SELECT name FROM gluten_fleet_node WHERE name = ANY($1) AND last_seen_ms < $2)",
            &[&names, &cutoff_ms],
        )
        .await
        .map_err(err(what))?;
        c.execute(
            "DELETE FROM gluten_fleet_node WHERE name = ANY($1) AND last_seen_ms < $2",
            &[&names, &cutoff_ms],
        )
        .await
        .map_err(err(what))?;
        Ok(())
    }

    /// Keeps the last [`crate::fleet::MAX_TRANSITIONS`] transitions per node.
    pub async fn trim_transitions(&self) -> Result<u64, StoreError> {
        let guard = self.reader.live().await?;
        let c = &guard.as_ref().expect("connected").client;
        c.execute(
            "DELETE FROM gluten_fleet_transition WHERE id IN (SELECT id FROM \
             (SELECT id, row_number() OVER (PARTITION BY name ORDER BY id DESC) AS k \
              FROM gluten_fleet_transition) x WHERE k > $1)",
            &[&(crate::fleet::MAX_TRANSITIONS as i64)],
        )
        .await
        .map_err(err("trimming transitions"))
    }
}

impl Store for Postgres {
    fn describe(&self) -> String {
        "PostgreSQL".to_string()
    }

    fn load_all(&self) -> BoxFuture<'_, Result<Vec<Record>, StoreError>> {
        Box::pin(within("reading nodes", &self.reset, self.poll()))
    }

    fn write<'a>(
        &'a self,
        reports: &'a [Accepted],
        beats: &'a [Beat],
        now_ms: i64,
        known: &'a dyn Known,
    ) -> BoxFuture<'a, Result<Written, StoreError>> {
        Box::pin(within(
            "writing reports to PostgreSQL",
            &self.reset,
            self.write_batch(reports, beats, now_ms, known),
        ))
    }

    fn detail(&self, name: String) -> BoxFuture<'_, Result<Option<Detail>, StoreError>> {
        Box::pin(async move {
            within(
                "reading a node from PostgreSQL",
                &self.reset,
                self.detail_of(&name),
            )
            .await
        })
    }

    fn delete(&self, names: Vec<String>, cutoff_ms: i64) -> BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(within("deleting departed nodes", &self.reset, async move {
            self.delete_older(&names, cutoff_ms).await?;
            self.trim_transitions().await.map(|_| ())
        }))
    }

    fn recover(&self) -> BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(within("probing PostgreSQL", &self.reset, async move {
            let guard = self.writer().await?;
            let c = &guard.as_ref().expect("connected").client;
            c.simple_query("SELECT 1")
                .await
                .map_err(err("probing PostgreSQL"))?;
            Ok(())
        }))
    }

    fn record_seen(&self, seen: Vec<(String, i64)>) -> BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(within(
            "recording heartbeats in PostgreSQL",
            &self.reset,
            async move {
                let guard = self.writer().await?;
                let live = guard.as_ref().expect("connected");
                let (names, ms): (Vec<String>, Vec<i64>) = seen.into_iter().unzip();
                live.client
                    .execute(&live.prepared[2], &[&names, &ms])
                    .await
                    .map_err(err("recording heartbeats in PostgreSQL"))?;
                Ok(())
            },
        ))
    }

    fn writers(&self) -> usize {
        WRITERS
    }

    fn changed(&self) -> Option<BoxFuture<'_, Result<Vec<Record>, StoreError>>> {
        Some(Box::pin(within("reading nodes", &self.reset, self.poll())))
    }
}

/// The wait after losing round `round` of a conditional write: up to 1, 2, 4, ... 64 ms, jittered
/// by the clock's nanoseconds so two losers do not retry in step.
fn conflict_backoff(round: usize) -> Duration {
    let cap_us = 1000u64 << round.min(6);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::from(d.subsec_nanos()));
    Duration::from_micros(cap_us / 2 + nanos % (cap_us / 2 + 1))
}

//! The aggregator's durable backends behind one trait ([`Store`]): the embedded store (redb, one
//! file in `data_dir`, one replica) and PostgreSQL (`database_url`, shared by several replicas).
//!
//! A backend persists and reads back; what a write holds (transitions, one write per node) is
//! computed by the pure fleet logic ([`super::fleet::fold_batch`]), which the backends call.
//! Nothing here knows about HTTP or the serving state beyond the [`Known`] view of it.

pub mod pg_connect;
pub mod postgres;
pub mod redb;

use super::fleet::{Accepted, Beat, Folded, Prev, Record};
use proto::fleet::Transition;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

/// A boxed future, so [`Store`] stays object-safe.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

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

/// Maps any displayable error to a [`StoreError`] saying what was being done.
pub fn ctx<E: std::fmt::Display>(context: &str) -> impl FnOnce(E) -> StoreError + '_ {
    move |e| StoreError::new(context, e.to_string())
}

/// What this process knows of the nodes (its serving state): enough for a single writer to fold
/// a batch and check heartbeats. A store several replicas write reads its own rows instead.
pub trait Known: Send + Sync {
    fn prev(&self, name: &str) -> Option<Prev>;
    fn digest(&self, name: &str) -> Option<Arc<str>>;
}

/// What one write committed.
#[derive(Debug, Default)]
pub struct Written {
    /// One per node that had reports in the batch, with `seq` and `report_seq` filled.
    pub folded: Vec<Folded>,
    /// Per heartbeat of the batch, in order: `Some((last_seen_ms, seq))` when the store knew
    /// its digest (and recorded it), `None` when the full report is needed.
    pub beats: Vec<Option<(i64, i64)>>,
}

/// A node's full report and transitions, read on demand.
#[derive(Debug)]
pub struct Detail {
    pub report_json: Vec<u8>,
    /// Oldest first, at most [`super::fleet::MAX_TRANSITIONS`].
    pub transitions: Vec<Transition>,
}

/// A durable backend of the aggregator.
pub trait Store: Send + Sync + 'static {
    /// For logs: which store, where.
    fn describe(&self) -> String;

    /// Every stored node's summary.
    fn load_all(&self) -> BoxFuture<'_, Result<Vec<Record>, StoreError>>;

    /// Commits one batch durably in one transaction: `reports` folded into one write per node
    /// (transitions against the previous state), then `beats`.
    fn write<'a>(
        &'a self,
        reports: &'a [Accepted],
        beats: &'a [Beat],
        now_ms: i64,
        known: &'a dyn Known,
    ) -> BoxFuture<'a, Result<Written, StoreError>>;

    /// The full report and transitions of one node.
    fn detail(&self, name: String) -> BoxFuture<'_, Result<Option<Detail>, StoreError>>;

    /// Deletes departed nodes (those still last seen before `cutoff_ms`).
    fn delete(&self, names: Vec<String>, cutoff_ms: i64) -> BoxFuture<'_, Result<(), StoreError>>;

    /// After a failed write: reopens (or reconnects) and proves a write goes through.
    fn recover(&self) -> BoxFuture<'_, Result<(), StoreError>>;

    /// Records when nodes whose heartbeat this process answered from memory were last seen
    /// (flushed about once a second: a crash loses at most that much of last-seen progress,
    /// never a report).
    fn record_seen(&self, seen: Vec<(String, i64)>) -> BoxFuture<'_, Result<(), StoreError>>;

    /// How many batches may be written at once (each writer task commits its own). The
    /// embedded store has one write transaction at a time; PostgreSQL's conditional writes make
    /// concurrent batches safe, so it pipelines several.
    fn writers(&self) -> usize {
        1
    }

    /// For a store several replicas write: what they wrote since the last call (the store keeps
    /// its own watermark), oldest first. `None` for a store only this process writes.
    fn changed(&self) -> Option<BoxFuture<'_, Result<Vec<Record>, StoreError>>> {
        None
    }
}

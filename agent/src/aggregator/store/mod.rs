//! The aggregator's durable backends behind one trait ([`Store`]): the embedded store (redb, one
//! file in `data_dir`, one replica) and PostgreSQL (`database_url`, shared by several replicas).
//!
//! A backend only persists and reads back; what a record holds (transitions, folding a batch) is
//! computed by the pure fleet logic ([`super::fleet`]), which the backends call. Nothing here
//! knows about HTTP or the serving state.

pub mod pg_connect;
pub mod postgres;
pub mod redb;

use super::fleet::{Accepted, Folded, Prev, Record};
use std::future::Future;
use std::pin::Pin;

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

/// How a backend learns a node's previous state when it folds a batch: from this process's
/// serving state (enough for a single writer), or from its own rows (several replicas).
pub type KnownPrev<'a> = &'a (dyn Fn(&str) -> Option<Prev> + Send + Sync);

/// A durable backend of the aggregator.
pub trait Store: Send + Sync + 'static {
    /// For logs: which store, where.
    fn describe(&self) -> String;

    /// Every stored node.
    fn load_all(&self) -> BoxFuture<'_, Result<Vec<Record>, StoreError>>;

    /// Folds `batch` (one record per node, transitions computed against the previous state) and
    /// commits it durably in one transaction; returns what was written, with each record's
    /// `seq`.
    fn write<'a>(
        &'a self,
        batch: &'a [Accepted],
        now_ms: i64,
        known: KnownPrev<'a>,
    ) -> BoxFuture<'a, Result<Vec<Folded>, StoreError>>;

    /// Deletes departed nodes (those still last seen before `cutoff_ms`).
    fn delete(&self, names: Vec<String>, cutoff_ms: i64) -> BoxFuture<'_, Result<(), StoreError>>;

    /// For a store several replicas write: the rows written after `watermark` (a `seq`), oldest
    /// first. `None` for a store only this process writes.
    fn changed_since(
        &self,
        _watermark: i64,
    ) -> Option<BoxFuture<'_, Result<Vec<Record>, StoreError>>> {
        None
    }
}

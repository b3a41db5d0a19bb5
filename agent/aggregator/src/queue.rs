//! What travels from the HTTP handlers to the writer tasks: the [`Work`] a request asks for, the
//! [`WriteOutcome`] it gets back, and [`Incoming`], the two together. Its own module so that the
//! state (which holds the queue's sender) and the writer (which drains it) do not import each
//! other.

use super::fleet::{Accepted, Beat};
use super::store::StoreError;
use std::sync::Arc;
use tokio::sync::oneshot;

/// What a request asks the writer to do.
pub enum Work {
    Report(Box<Accepted>),
    Heartbeat(Beat),
}

/// The writer's answer: stored, or (heartbeat) whether the digest was known.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteOutcome {
    Stored,
    Beat { known: bool },
}

/// Why a request's work was not stored.
#[derive(Debug, Clone, thiserror::Error)]
pub enum WriteError {
    /// The writer task is gone (shutting down).
    #[error("writer stopped")]
    Stopped,
    /// An earlier write failed and the store is being recovered.
    #[error("the store cannot take writes now (recovering from an I/O error)")]
    Recovering,
    /// This batch's write failed.
    #[error("{0}")]
    Store(Arc<StoreError>),
}

/// One request on its way to the store, with whom to tell the outcome.
pub struct Incoming {
    pub work: Work,
    pub ack: oneshot::Sender<Result<WriteOutcome, WriteError>>,
}

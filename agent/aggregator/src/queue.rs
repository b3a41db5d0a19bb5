//! What travels from the HTTP handlers to the writer tasks: the [`Work`] a request asks for, the
//! [`WriteOutcome`] it gets back, and [`Incoming`], the two together. Its own module so that the
//! state (which holds the queue's sender) and the writer (which drains it) do not import each
//! other.

use super::fleet::{Accepted, Beat};
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

/// One request on its way to the store, with whom to tell the outcome.
pub struct Incoming {
    pub work: Work,
    pub ack: oneshot::Sender<Result<WriteOutcome, String>>,
}

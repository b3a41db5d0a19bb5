//! The single writer: one task per process takes every report that is waiting (group commit),
//! has the store fold and commit them in one transaction, then updates the serving state and only
//! then acknowledges each report.
//!
//! Architecture invariant: an acknowledged report is durable; a report is never visible before it
//! is committed. Only this task (and the PostgreSQL refresh) writes [`Fleet`].

use super::fleet::Accepted;
use super::state::{Fleet, now_ms};
use super::store::{Store, StoreError};
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};

/// One accepted report on its way to the store, with whom to tell the outcome.
pub struct Incoming {
    pub accepted: Accepted,
    pub ack: oneshot::Sender<Result<(), String>>,
}

/// Most reports committed in one transaction.
pub const MAX_BATCH: usize = 1024;

/// The writer task: group commit, then update the serving state, then acknowledge.
pub async fn run_writer(
    store: Arc<dyn Store>,
    fleet: Arc<Fleet>,
    mut rx: mpsc::Receiver<Incoming>,
) {
    let mut incoming: Vec<Incoming> = Vec::with_capacity(MAX_BATCH);
    while rx.recv_many(&mut incoming, MAX_BATCH).await > 0 {
        let (batch, acks): (Vec<Accepted>, Vec<_>) =
            incoming.drain(..).map(|i| (i.accepted, i.ack)).unzip();
        let result = commit(&*store, &fleet, &batch, now_ms()).await;
        match result {
            Ok(()) => {
                for ack in acks {
                    let _ = ack.send(Ok(()));
                }
            }
            Err(e) => {
                tracing::error!(error = %e, reports = batch.len(), "store write failed");
                let msg = e.to_string();
                for ack in acks {
                    let _ = ack.send(Err(msg.clone()));
                }
            }
        }
    }
}

async fn commit(
    store: &dyn Store,
    fleet: &Fleet,
    batch: &[Accepted],
    now_ms: i64,
) -> Result<(), StoreError> {
    let known = |name: &str| fleet.prev(name);
    let folded = store.write(batch, now_ms, &known).await?;
    let nodes = folded
        .iter()
        .map(|f| fleet.node(&batch[f.index].report, &f.record))
        .collect();
    fleet.install(nodes);
    Ok(())
}

//! The writer: a task takes every report and heartbeat that is waiting (group commit), has the
//! store commit them in one transaction, then updates the serving state and only then answers
//! each request. One task for the embedded store (the single writer); PostgreSQL, whose
//! conditional writes make concurrent batches safe, gets a few, so one batch is taken while
//! another commits.
//!
//! Architecture invariant: an acknowledged report is durable; a report is never visible before it
//! is committed. Only writer tasks (and the PostgreSQL refresh) write [`Fleet`], and an entry is
//! never replaced by one with a lower `seq`. After a failed
//! write the store is marked unwritable (`/readyz` 503) until the recovery task
//! ([`super::tasks::spawn_store_recovery`]) has reopened it; meanwhile writes fail at once.

use super::fleet::Prev;
use super::queue::{Incoming, Work, WriteError, WriteOutcome};
use super::state::{Fleet, FleetState, now_ms};
use super::store::Known;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use tokio::sync::mpsc;

/// Most requests committed in one transaction.
pub const MAX_BATCH: usize = 1024;

impl Known for Fleet {
    fn prev(&self, name: &str) -> Option<Prev> {
        Fleet::prev(self, name)
    }

    fn digest(&self, name: &str) -> Option<Arc<str>> {
        Fleet::digest(self, name)
    }
}

/// Starts the store's number of writer tasks on one queue.
pub fn spawn_writers(state: Arc<FleetState>, rx: mpsc::Receiver<Incoming>) {
    let rx = Arc::new(tokio::sync::Mutex::new(rx));
    for _ in 0..state.store.writers().max(1) {
        tokio::spawn(run_writer(state.clone(), rx.clone()));
    }
}

/// A writer task: takes what waits (group commit), commits it, updates the serving state, then
/// acknowledges. With several writers, one takes a batch while another commits its own.
pub async fn run_writer(
    state: Arc<FleetState>,
    rx: Arc<tokio::sync::Mutex<mpsc::Receiver<Incoming>>>,
) {
    let mut incoming: Vec<Incoming> = Vec::with_capacity(MAX_BATCH);
    loop {
        let got = rx.lock().await.recv_many(&mut incoming, MAX_BATCH).await;
        if got == 0 {
            return;
        }
        let mut reports = Vec::new();
        let mut beats = Vec::new();
        let mut report_acks = Vec::new();
        let mut beat_acks = Vec::new();
        for i in incoming.drain(..) {
            match i.work {
                Work::Report(a) => {
                    reports.push(*a);
                    report_acks.push(i.ack);
                }
                Work::Heartbeat(b) => {
                    beats.push(b);
                    beat_acks.push(i.ack);
                }
            }
        }
        if !state.writable() {
            for ack in report_acks.into_iter().chain(beat_acks) {
                let _ = ack.send(Err(WriteError::Recovering));
            }
            continue;
        }
        let now = now_ms();
        match state
            .store
            .write(&reports, &beats, now, &*state.fleet)
            .await
        {
            Ok(written) => {
                state.fleet.install_folded(&written.folded);
                let touched: Vec<(String, i64, i64)> = beats
                    .iter()
                    .zip(&written.beats)
                    .filter_map(|(b, w)| w.map(|(seen, seq)| (b.node.clone(), seen, seq)))
                    .collect();
                state.fleet.touch(&touched);
                for ack in report_acks {
                    let _ = ack.send(Ok(WriteOutcome::Stored));
                }
                for (ack, w) in beat_acks.into_iter().zip(&written.beats) {
                    let _ = ack.send(Ok(WriteOutcome::Beat { known: w.is_some() }));
                }
            }
            Err(e) => {
                tracing::error!(error = %e, reports = reports.len(), heartbeats = beats.len(), "store write failed; recovering");
                state.store_writable.store(false, Ordering::Relaxed);
                let e = Arc::new(e);
                for ack in report_acks.into_iter().chain(beat_acks) {
                    let _ = ack.send(Err(WriteError::Store(e.clone())));
                }
            }
        }
    }
}

//! The single writer: one task per process takes every report and heartbeat that is waiting
//! (group commit), has the store commit them in one transaction, then updates the serving state
//! and only then answers each request.
//!
//! Architecture invariant: an acknowledged report is durable; a report is never visible before it
//! is committed. Only this task (and the PostgreSQL refresh) writes [`Fleet`]. After a failed
//! write the store is marked unwritable (`/readyz` 503) until the recovery task
//! ([`super::tasks::spawn_store_recovery`]) has reopened it; meanwhile writes fail at once.

use super::fleet::{Accepted, Beat, Prev};
use super::state::{Fleet, FleetState, now_ms};
use super::store::Known;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use tokio::sync::{mpsc, oneshot};

/// What a request asks the writer to do.
pub enum Work {
    Report(Box<Accepted>),
    Heartbeat(Beat),
}

/// The writer's answer: stored, or (heartbeat) whether the digest was known.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Stored,
    Beat { known: bool },
}

/// One request on its way to the store, with whom to tell the outcome.
pub struct Incoming {
    pub work: Work,
    pub ack: oneshot::Sender<Result<Outcome, String>>,
}

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

/// The writer task: group commit, then update the serving state, then acknowledge.
pub async fn run_writer(state: Arc<FleetState>, mut rx: mpsc::Receiver<Incoming>) {
    let mut incoming: Vec<Incoming> = Vec::with_capacity(MAX_BATCH);
    while rx.recv_many(&mut incoming, MAX_BATCH).await > 0 {
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
            let msg = "the store cannot take writes now (recovering from an I/O error)".to_string();
            for ack in report_acks.into_iter().chain(beat_acks) {
                let _ = ack.send(Err(msg.clone()));
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
                    let _ = ack.send(Ok(Outcome::Stored));
                }
                for (ack, w) in beat_acks.into_iter().zip(&written.beats) {
                    let _ = ack.send(Ok(Outcome::Beat { known: w.is_some() }));
                }
            }
            Err(e) => {
                tracing::error!(error = %e, reports = reports.len(), heartbeats = beats.len(), "store write failed; recovering");
                state.store_writable.store(false, Ordering::Relaxed);
                let msg = e.to_string();
                for ack in report_acks.into_iter().chain(beat_acks) {
                    let _ = ack.send(Err(msg.clone()));
                }
            }
        }
    }
}

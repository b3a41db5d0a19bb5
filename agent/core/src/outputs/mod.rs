//! The agent's outputs and what they share. Every output reads the engine's published
//! [`Snapshot`](crate::snapshot::Snapshot) and nothing else of the engine; none imports another:
//!
//! - [`http`]: probes, `/health`, `/health/verdict`, `/metrics` (through [`MetricsRender`],
//!   implemented by [`metrics`], so http does not import metrics);
//! - [`metrics`]: the Prometheus exposition (reads [`PushStats`], written by push);
//! - [`push`]: the report to the fleet aggregator (writes [`PushStats`]), its protocol and client;
//! - [`notify`]: systemd's `sd_notify` status and watchdog;
//! - [`yarn`]: `check --output yarn`, the NodeManager health script lines;
//! - [`nfd`]: the node-feature-discovery features file;
//! - [`npd`]: `check --output npd`, the node-problem-detector plugin's line and exit code.
//!
//! Architecture invariant: the types here depend on nothing but the engine's snapshot, so an
//! output can be added or removed without touching its siblings; `crate::daemon` wires them.

pub mod http;
pub mod metrics;
pub mod nfd;
pub mod notify;
pub mod npd;
pub mod push;
pub mod table;
pub mod verdict;
pub mod yarn;

use crate::snapshot::Snapshot;
use bytes::Bytes;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// Push health: written by the pusher, read by `/metrics`.
#[derive(Debug, Default)]
pub struct PushStats {
    attempts_total: AtomicU64,
    failures_total: AtomicU64,
    version: AtomicU64,
    last_success_unix_seconds: Mutex<f64>,
}

/// A copy of [`PushStats`] at one instant.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PushSnapshot {
    pub attempts_total: u64,
    pub failures_total: u64,
    pub last_success_unix_seconds: f64,
}

impl PushStats {
    pub fn record_success(&self) {
        self.attempts_total.fetch_add(1, Ordering::Relaxed);
        *self
            .last_success_unix_seconds
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = common::time::unix_seconds_now();
        self.version.fetch_add(1, Ordering::Release);
    }

    pub fn record_failure(&self) {
        self.attempts_total.fetch_add(1, Ordering::Relaxed);
        self.failures_total.fetch_add(1, Ordering::Relaxed);
        self.version.fetch_add(1, Ordering::Release);
    }

    /// Changes whenever a counter changes (the metrics cache keys on it).
    pub fn version(&self) -> u64 {
        self.version.load(Ordering::Acquire)
    }

    pub fn snapshot(&self) -> PushSnapshot {
        PushSnapshot {
            attempts_total: self.attempts_total.load(Ordering::Relaxed),
            failures_total: self.failures_total.load(Ordering::Relaxed),
            last_success_unix_seconds: *self
                .last_success_unix_seconds
                .lock()
                .unwrap_or_else(|e| e.into_inner()),
        }
    }
}

pub use serve::exposition::MetricsFormat;

/// Renders `/metrics` for a snapshot: implemented by `crate::outputs::metrics::MetricsCache`, handed to
/// the HTTP server by the daemon.
pub trait MetricsRender: Send + Sync {
    fn render(&self, snapshot: Option<Arc<Snapshot>>, format: MetricsFormat) -> Bytes;
}

/// A report of `(name, status, summary)` checks, for the outputs' unit tests.
#[cfg(test)]
pub(crate) fn test_report(checks: &[(&str, proto::Status, &str)]) -> proto::NodeReport {
    let checks: Vec<proto::CheckResult> = checks
        .iter()
        .map(|(n, s, m)| proto::CheckResult {
            name: n.to_string(),
            status: *s,
            summary: m.to_string(),
            duration_seconds: 0.0,
            checked_at: String::new(),
            findings: vec![],
            facts: serde_json::Value::Null,
            observed_status: None,
        })
        .collect();
    proto::NodeReport {
        schema_version: proto::SCHEMA_VERSION,
        node: Default::default(),
        status: proto::Status::worst(checks.iter().map(|c| c.status)),
        generated_at: String::new(),
        checks,
    }
}

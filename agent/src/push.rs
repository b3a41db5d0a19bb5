//! Pushing the report to the fleet aggregator. This file holds the push health counters that
//! `/metrics` shows; the pusher itself (jittered interval, backoff, latest-only) lands with the
//! fleet issue.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

/// Push health, shared between the pusher and `/metrics`.
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
            .unwrap_or_else(|e| e.into_inner()) = crate::time::unix_seconds_now();
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

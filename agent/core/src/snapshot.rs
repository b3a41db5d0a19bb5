//! What a finished round publishes: the [`Snapshot`] every output reads, the per-check
//! [`CheckCounters`], and the check loop's [`LoopHeartbeat`]. No output needs the engine for these.

use checks::check::Sample;
use proto::{CheckResult, NodeReport};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Counters of one check since the agent started.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CheckCounters {
    pub runs_total: u64,
    pub timeouts_total: u64,
    pub panics_total: u64,
    /// Rounds in which the check was not started because its earlier run was still stuck.
    pub skipped_total: u64,
    /// Whether a thread of this check is still running (stuck) right now.
    pub stuck: bool,
}

/// One finished round: the report plus what `/metrics` needs. Immutable once published.
#[derive(Clone, Debug)]
pub struct Snapshot {
    pub report: NodeReport,
    /// Samples of each check, parallel to `report.checks`.
    pub samples: Vec<Vec<Sample>>,
    /// Counters of each check, parallel to `report.checks`.
    pub counters: Vec<CheckCounters>,
    /// Rounds completed, this one included.
    pub rounds_total: u64,
    /// Wall-clock end of the round, seconds since the epoch.
    pub finished_unix_seconds: f64,
}

impl Snapshot {
    pub fn check(&self, name: &str) -> Option<&CheckResult> {
        self.report.check(name)
    }
}

/// Proof of life of the check loop, read by `/livez` and the systemd watchdog.
#[derive(Debug)]
pub struct LoopHeartbeat {
    origin: Instant,
    last_ms: AtomicU64,
}

impl Default for LoopHeartbeat {
    fn default() -> Self {
        LoopHeartbeat {
            origin: Instant::now(),
            last_ms: AtomicU64::new(0),
        }
    }
}

impl LoopHeartbeat {
    pub fn beat(&self) {
        let ms = self.origin.elapsed().as_millis() as u64;
        self.last_ms.store(ms, Ordering::Relaxed);
    }

    /// Time since the last beat.
    pub fn age(&self) -> Duration {
        let now = self.origin.elapsed().as_millis() as u64;
        Duration::from_millis(now.saturating_sub(self.last_ms.load(Ordering::Relaxed)))
    }
}

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

/// The two Prometheus exposition formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricsFormat {
    /// The classic text format, version 0.0.4.
    Text,
    /// OpenMetrics 1.0 text (ends with `# EOF`).
    OpenMetrics,
}

impl MetricsFormat {
    pub const CONTENT_TYPE_TEXT: &'static str = "text/plain; version=0.0.4; charset=utf-8";
    pub const CONTENT_TYPE_OPENMETRICS: &'static str =
        "application/openmetrics-text; version=1.0.0; charset=utf-8";

    pub fn content_type(self) -> &'static str {
        match self {
            MetricsFormat::Text => Self::CONTENT_TYPE_TEXT,
            MetricsFormat::OpenMetrics => Self::CONTENT_TYPE_OPENMETRICS,
        }
    }

    /// The format an `Accept` header asks for (RFC 9110 section 12.5.1): OpenMetrics when its
    /// media range carries a higher q-value than every range that matches the classic text
    /// format (`text/plain`, `text/*`, `*/*`); a range with `q=0` is "not acceptable". Ties, no
    /// header and unparsable headers get the classic text, which every scraper reads.
    pub fn negotiate(accept: Option<&str>) -> MetricsFormat {
        let Some(accept) = accept else {
            return MetricsFormat::Text;
        };
        let mut om: Option<f32> = None;
        let mut text: Option<f32> = None;
        for range in accept.split(',') {
            let mut parts = range.split(';');
            let media = parts.next().unwrap_or("").trim().to_ascii_lowercase();
            let mut q = 1.0f32;
            for p in parts {
                if let Some((k, v)) = p.split_once('=')
                    && k.trim().eq_ignore_ascii_case("q")
                {
                    q = v.trim().parse::<f32>().unwrap_or(0.0).clamp(0.0, 1.0);
                }
            }
            let slot = match media.as_str() {
                "application/openmetrics-text" => &mut om,
                "text/plain" | "text/*" | "*/*" => &mut text,
                _ => continue,
            };
            // Prometheus lists one range per OpenMetrics version: the best of them counts.
            *slot = Some(slot.map_or(q, |prev: f32| prev.max(q)));
        }
        match om {
            Some(q) if q > 0.0 && q > text.unwrap_or(0.0) => MetricsFormat::OpenMetrics,
            _ => MetricsFormat::Text,
        }
    }
}

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_negotiation_reads_q_values() {
        use MetricsFormat::*;
        let n = |a| MetricsFormat::negotiate(Some(a));
        assert_eq!(
            n("application/openmetrics-text;version=1.0.0,text/plain;q=0.5"),
            OpenMetrics
        );
        // What Prometheus 2.x/3.x sends.
        assert_eq!(
            n(
                "application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.5,\
               application/openmetrics-text;version=0.0.1;q=0.4,text/plain;version=1.0.0;escaping=allow-utf-8;q=0.3,\
               text/plain;version=0.0.4;q=0.2,*/*;q=0.1"
            ),
            OpenMetrics
        );
        assert_eq!(n("application/openmetrics-text;q=0"), Text);
        assert_eq!(n("application/openmetrics-text; q=0.0, text/plain"), Text);
        assert_eq!(
            n("text/plain;q=0.9, application/openmetrics-text;q=0.5"),
            Text
        );
        assert_eq!(n("APPLICATION/OpenMetrics-Text"), OpenMetrics);
        assert_eq!(n("application/openmetrics-text;q=bogus"), Text);
        assert_eq!(n("text/plain"), Text);
        assert_eq!(n("*/*"), Text);
        assert_eq!(n(""), Text);
        assert_eq!(MetricsFormat::negotiate(None), Text);
    }
}

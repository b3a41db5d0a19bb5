//! Pushing the report to the fleet aggregator; its health counters ([`PushStats`]) live in
//! `crate::outputs`, where `/metrics` reads them.
//!
//! The pusher watches the engine's snapshot channel (a `watch` channel holds only the latest
//! snapshot, so memory stays bounded however long the aggregator is away). It pushes at once
//! when the node status or any check's status differs from the last report the aggregator
//! acknowledged, otherwise every `push.interval_seconds` with +-10% jitter. After a failure it
//! waits a capped, jittered exponential backoff before the next try, whatever changes meanwhile:
//! a fleet of agents coming back after an aggregator outage spreads out instead of storming it.
//! It never exits and never blocks the checks or the HTTP endpoints. Before each push the TLS
//! files (`push.ca_file`, `push.client_cert_file`, `push.client_key_file`) are looked at, at
//! most once a second, and a changed set is in force from that push on ([`client::PushClient`]);
//! the token file is re-read on every push ([`protocol`]). What one push sends (the full report
//! or a heartbeat, gzip) is [`protocol`]'s business.

pub mod client;
pub mod protocol;

pub use crate::outputs::PushStats;
use crate::snapshot::Snapshot;
use proto::Status;
pub use protocol::PushSettings;
use rand::RngExt;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio::time::Instant;

/// First retry delay after a failure; doubles per consecutive failure up to the cap.
pub const BACKOFF_BASE: Duration = Duration::from_secs(1);
/// Periodic pushes land within +-this fraction of the interval.
pub const INTERVAL_JITTER: f64 = 0.1;

/// Delay before the retry after `failures` consecutive failures (1 = the first), given a uniform
/// random `r` in [0, 1): "equal jitter" over the capped exponential step `d = min(cap, base *
/// 2^(failures-1))`, i.e. uniform in [d/2, d). Half the step is random, so retries of many
/// agents spread out; half is fixed, so no agent ever retries in a tight loop.
pub fn backoff(failures: u32, cap: Duration, r: f64) -> Duration {
    let exp = 2f64.powi(failures.saturating_sub(1).min(30) as i32);
    let step = (BACKOFF_BASE.as_secs_f64() * exp).min(cap.as_secs_f64());
    Duration::from_secs_f64(step * (0.5 + 0.5 * r.clamp(0.0, 1.0)))
}

/// The periodic push delay for a uniform random `r` in [0, 1): `interval` +-[`INTERVAL_JITTER`].
pub fn jittered_interval(interval: Duration, r: f64) -> Duration {
    let f = 1.0 + INTERVAL_JITTER * (2.0 * r.clamp(0.0, 1.0) - 1.0);
    interval.mul_f64(f)
}

/// What decides "changed": the node status and each check's status.
type Fingerprint = (Status, Vec<(String, Status)>);

fn fingerprint(s: &Snapshot) -> Fingerprint {
    (
        s.report.status,
        s.report
            .checks
            .iter()
            .map(|c| (c.name.clone(), c.status))
            .collect(),
    )
}

/// The reports endpoint of an aggregator base URL (a full endpoint URL is kept as it is).
pub fn endpoint(url: &str) -> String {
    let base = url.trim_end_matches('/');
    if base.ends_with("/api/v1/reports") {
        base.to_string()
    } else {
        format!("{base}/api/v1/reports")
    }
}

/// Runs until `shutdown` turns true, with `client` from [`client::PushClient::load`] (its TLS
/// files are looked at before each push). Never returns early, whatever the aggregator does.
pub async fn run(
    settings: PushSettings,
    client: client::PushClient,
    mut snapshots: watch::Receiver<Option<Arc<Snapshot>>>,
    stats: Arc<PushStats>,
    mut shutdown: watch::Receiver<bool>,
) {
    // The fingerprint the aggregator last acknowledged, and when the next periodic push is due.
    let mut acked: Option<Fingerprint> = None;
    let mut next_periodic = Instant::now();
    let mut failures: u32 = 0;
    let mut retry_at = Instant::now();
    // Full report or heartbeat: see protocol.
    let mut protocol = protocol::Protocol::default();
    loop {
        let current = snapshots.borrow_and_update().clone();
        let due = current.as_ref().map(|s| {
            let changed = acked.as_ref() != Some(&fingerprint(s));
            let at = if changed {
                Instant::now()
            } else {
                next_periodic
            };
            at.max(retry_at)
        });
        let wait = async {
            match due {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = shutdown.changed() => return,
            r = snapshots.changed() => {
                if r.is_err() {
                    return; // the engine is gone: shutting down
                }
                continue;
            }
            _ = wait => {}
        }
        let Some(snapshot) = current else { continue };
        let result = tokio::select! {
            _ = shutdown.changed() => return,
            r = async {
                // A rotated CA or client certificate is in force from this push on.
                let client = client.fresh().await;
                protocol::push(&client, &settings, &snapshot, &mut protocol).await
            } => r,
        };
        let mut rng = rand::rng();
        match result {
            Ok(()) => {
                stats.record_success();
                if failures > 0 {
                    tracing::info!(
                        after_failures = failures,
                        "push to the aggregator recovered"
                    );
                }
                failures = 0;
                acked = Some(fingerprint(&snapshot));
                retry_at = Instant::now();
                next_periodic = Instant::now() + jittered_interval(settings.interval, rng.random());
            }
            Err(e) => {
                stats.record_failure();
                failures += 1;
                let delay = backoff(failures, settings.max_backoff, rng.random());
                // Log the first failure and then rarely, not every retry.
                if failures == 1 || failures.is_power_of_two() {
                    tracing::warn!(endpoint = %settings.endpoint, error = %e, failures, retry_in_seconds = delay.as_secs_f64(), "push to the aggregator failed");
                }
                retry_at = Instant::now() + delay;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap_with_equal_jitter() {
        let cap = Duration::from_secs(60);
        let s = |n, r| backoff(n, cap, r).as_secs_f64();
        assert_eq!(s(1, 0.0), 0.5);
        assert_eq!(s(1, 1.0), 1.0);
        assert_eq!(s(2, 0.0), 1.0);
        assert_eq!(s(4, 1.0), 8.0);
        assert_eq!(s(7, 1.0), 60.0);
        assert_eq!(s(7, 0.0), 30.0);
        assert_eq!(s(u32::MAX, 0.5), 45.0);
        // Never a tight loop, never above the cap.
        for n in 1..40 {
            for r in [0.0, 0.3, 0.999] {
                let d = s(n, r);
                assert!((0.5..=60.0).contains(&d), "{n} {r} {d}");
            }
        }
    }

    #[test]
    fn interval_jitter_stays_within_ten_percent() {
        let i = Duration::from_secs(15);
        assert_eq!(jittered_interval(i, 0.5), i);
        assert_eq!(jittered_interval(i, 0.0).as_secs_f64(), 13.5);
        assert!((jittered_interval(i, 1.0).as_secs_f64() - 16.5).abs() < 1e-9);
    }

    #[test]
    fn endpoint_accepts_a_base_or_the_full_url() {
        assert_eq!(
            endpoint("http://agg:9900"),
            "http://agg:9900/api/v1/reports"
        );
        assert_eq!(
            endpoint("http://agg:9900/"),
            "http://agg:9900/api/v1/reports"
        );
        assert_eq!(
            endpoint("http://agg:9900/api/v1/reports"),
            "http://agg:9900/api/v1/reports"
        );
    }
}

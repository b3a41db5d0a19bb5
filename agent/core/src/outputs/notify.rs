//! systemd's service notification protocol (`sd_notify`), spoken directly over the unix datagram
//! socket named by `NOTIFY_SOCKET` (a path, or `@name` for the abstract namespace), with no
//! libsystemd. `run` sends `READY=1` once the first round is published, `WATCHDOG=1` every half
//! `WATCHDOG_USEC` but only while the check loop's [`LoopHeartbeat`] is as fresh as `/livez` demands
//! (so a stalled loop gets the service restarted by systemd exactly when `/livez` would fail),
//! `STATUS=` with the node verdict after each round, and `STOPPING=1` on shutdown. Without
//! `NOTIFY_SOCKET` all of this is a no-op.

use crate::snapshot::{LoopHeartbeat, Snapshot};
use serve::notify::Notifier;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// The `STATUS=` line for a round: the verdict and the checks that are not ok.
pub fn status_line(snapshot: &Snapshot) -> String {
    let report = &snapshot.report;
    let not_ok: Vec<String> = report
        .checks
        .iter()
        .filter(|c| c.status != proto::Status::Ok)
        .map(|c| format!("{} {}", c.name, c.status))
        .collect();
    let mut line = format!(
        "node {} after round {}",
        report.status, snapshot.rounds_total
    );
    if !not_ok.is_empty() {
        line.push_str(": ");
        line.push_str(&not_ok.join(", "));
    }
    line
}

/// Drives the protocol until `stop` fires: `READY=1` (with `STATUS=`) once the first snapshot is
/// published, `STATUS=` when the verdict line changes, and `WATCHDOG=1` every `watchdog` while
/// `heartbeat.age() <= live_threshold`, the same rule as `/livez`.
pub async fn supervise(
    notifier: Arc<Notifier>,
    mut snapshots: watch::Receiver<Option<Arc<Snapshot>>>,
    heartbeat: Arc<LoopHeartbeat>,
    live_threshold: Duration,
    watchdog: Option<Duration>,
    mut stop: watch::Receiver<bool>,
) {
    // Never fires when the watchdog is off.
    let period = watchdog.unwrap_or(Duration::from_secs(3600 * 24 * 365));
    let mut ticker = tokio::time::interval(period);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut ready = false;
    let mut last_status = String::new();
    let mut starved = false;
    loop {
        tokio::select! {
            _ = stop.changed() => return,
            _ = ticker.tick(), if watchdog.is_some() => {
                let age = heartbeat.age();
                if age <= live_threshold {
                    notifier.send("WATCHDOG=1");
                    starved = false;
                } else if !starved {
                    starved = true;
                    tracing::error!(
                        beat_age_seconds = age.as_secs_f64(),
                        limit_seconds = live_threshold.as_secs_f64(),
                        "check loop stalled: no longer feeding the systemd watchdog"
                    );
                }
            }
            changed = snapshots.changed() => {
                if changed.is_err() {
                    // The engine is gone; keep feeding only as long as its beat stays fresh.
                    snapshots = watch::channel(None).1;
                    continue;
                }
                let Some(snapshot) = snapshots.borrow_and_update().clone() else { continue };
                let status = status_line(&snapshot);
                if !ready {
                    ready = true;
                    notifier.send(&format!("READY=1\nSTATUS={status}"));
                    tracing::info!("notified systemd: READY=1");
                } else if status != last_status {
                    notifier.send(&format!("STATUS={status}"));
                }
                last_status = status;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::net::UnixDatagram;

    /// A heartbeat that stops beating stops the watchdog pings once it is older than the
    /// `/livez` threshold; READY=1 comes with the first snapshot only.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_stale_heartbeat_starves_the_watchdog() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify.sock");
        let server = UnixDatagram::bind(&path).unwrap();
        server.set_nonblocking(true).unwrap();
        let notifier = Arc::new(Notifier::new(path.to_str().unwrap()).unwrap());
        let heartbeat = Arc::new(LoopHeartbeat::default()); // beaten at t=0, never again
        let (_tx, rx) = watch::channel(None);
        let (stop_tx, stop_rx) = watch::channel(false);
        let task = tokio::spawn(supervise(
            notifier,
            rx,
            heartbeat,
            Duration::from_millis(300),
            Some(Duration::from_millis(50)),
            stop_rx,
        ));
        let recv_all = || {
            let mut got = Vec::new();
            let mut buf = [0u8; 256];
            while let Ok(n) = server.recv(&mut buf) {
                got.push(String::from_utf8_lossy(&buf[..n]).into_owned());
            }
            got
        };
        tokio::time::sleep(Duration::from_millis(250)).await;
        let early = recv_all();
        assert!(
            early.iter().filter(|m| *m == "WATCHDOG=1").count() >= 2,
            "{early:?}"
        );
        assert!(!early.iter().any(|m| m.contains("READY=1")), "{early:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
        let _ = recv_all(); // the threshold passes in here
        tokio::time::sleep(Duration::from_millis(400)).await;
        let late = recv_all();
        assert!(
            late.is_empty(),
            "still fed after the beat went stale: {late:?}"
        );
        stop_tx.send(true).unwrap();
        task.await.unwrap();
    }
}

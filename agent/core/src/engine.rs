//! The check engine: each round runs every check concurrently, each on its own thread under a
//! deadline, isolates panics, never restarts a check still stuck in the kernel from an earlier
//! round, applies flap damping, and publishes the round as one immutable `Snapshot`.

use crate::config::Config;
pub use crate::snapshot::{CheckCounters, LoopHeartbeat, Snapshot};
use checks::Common;
use checks::check::{Check, CheckError, Outcome};
use checks::host::Host;
use common::fmt::seconds as format_seconds;
use common::time::rfc3339_now;
use proto::{CheckResult, Finding, NodeInfo, NodeReport, SCHEMA_VERSION, Status};
use std::collections::BTreeMap;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::{oneshot, watch};

/// Deadline and flap damping of one check.
#[derive(Clone, Debug, PartialEq)]
pub struct Policy {
    pub timeout: Duration,
    pub success_before_passing: u32,
    pub failures_before_warning: u32,
    pub failures_before_critical: u32,
}

impl Policy {
    pub fn with_timeout(timeout: Duration) -> Self {
        Policy {
            timeout,
            success_before_passing: 0,
            failures_before_warning: 0,
            failures_before_critical: 0,
        }
    }

    /// The policy a check's common keys give, `default_timeout` when it sets none.
    pub fn of(common: &Common, default_timeout: f64) -> Self {
        Policy {
            timeout: Duration::from_secs_f64(common.timeout_seconds.unwrap_or(default_timeout)),
            success_before_passing: common.success_before_passing,
            failures_before_warning: common.failures_before_warning,
            failures_before_critical: common.failures_before_critical,
        }
    }
}

/// The policy of every check registered in `config`.
pub fn policies(config: &Config) -> BTreeMap<&'static str, Policy> {
    config
        .sections()
        .map(|(r, s)| (r.name, Policy::of(s.common(), config.check_timeout_seconds)))
        .collect()
}

/// Consul-style consecutive thresholds: a check must fail `failures_before_critical` rounds in a
/// row before `fail` is reported, and pass `success_before_passing` rounds before `ok` is
/// reported again. `warn` and `unknown` pass through. 0 and 1 both mean "at once".
#[derive(Debug, Default, Clone)]
struct Damper {
    reported: Option<Status>,
    ok_streak: u32,
    fail_streak: u32,
}

impl Damper {
    fn apply(&mut self, observed: Status, p: &Policy) -> Status {
        let status = match observed {
            Status::Ok => {
                self.ok_streak += 1;
                self.fail_streak = 0;
                match self.reported {
                    Some(prev) if self.ok_streak < p.success_before_passing.max(1) => prev,
                    _ => Status::Ok,
                }
            }
            Status::Fail => {
                self.fail_streak += 1;
                self.ok_streak = 0;
                match self.reported {
                    Some(_) if self.fail_streak >= p.failures_before_critical.max(1) => {
                        Status::Fail
                    }
                    None => Status::Fail,
                    Some(_)
                        if p.failures_before_warning > 0
                            && self.fail_streak >= p.failures_before_warning =>
                    {
                        Status::Warn
                    }
                    Some(prev) => prev,
                }
            }
            other => {
                self.ok_streak = 0;
                self.fail_streak = 0;
                other
            }
        };
        self.reported = Some(status);
        status
    }
}

struct Slot {
    check: Arc<dyn Check>,
    policy: Policy,
    /// Set while a thread runs this check; cleared by that thread when `run` returns.
    running: Arc<AtomicBool>,
    started_at: Option<(Instant, String)>,
    damper: Damper,
    counters: CheckCounters,
    inventory: Vec<(String, String)>,
}

/// Runs rounds of checks against one host.
pub struct Engine {
    host: Arc<Host>,
    node: NodeInfo,
    slots: Vec<Slot>,
    rounds_total: u64,
}

type RunResult = (std::thread::Result<Result<Outcome, CheckError>>, Duration);

enum Pending {
    Started(oneshot::Receiver<RunResult>),
    Stuck { since: String, for_: Duration },
    SpawnFailed(String),
}

impl Engine {
    /// An engine for `checks`, each with the policy named after it (or `default` if absent).
    pub fn new(
        host: Host,
        node: NodeInfo,
        checks: Vec<Arc<dyn Check>>,
        policies: &BTreeMap<&'static str, Policy>,
        default: Policy,
    ) -> Self {
        let slots = checks
            .into_iter()
            .map(|check| Slot {
                policy: policies
                    .get(check.name())
                    .cloned()
                    .unwrap_or_else(|| default.clone()),
                check,
                running: Arc::new(AtomicBool::new(false)),
                started_at: None,
                damper: Damper::default(),
                counters: CheckCounters::default(),
                inventory: Vec::new(),
            })
            .collect();
        Engine {
            host: Arc::new(host),
            node,
            slots,
            rounds_total: 0,
        }
    }

    /// The engine a validated config describes, on the machine at `host_root`: the one place
    /// the agent, the benchmarks and the tests build it (through [`Engine::for_host`]).
    pub fn from_config(config: &Config) -> Self {
        let host = Host::new(&config.host_root);
        let node = node_info(&host, config.effective_node_name());
        Engine::for_host(config, host, node)
    }

    /// [`Engine::from_config`] on a given `host` (a fixture tree with its architecture) and
    /// node identity: every enabled check of the registry, built with `Shared`, each under its
    /// policy.
    pub fn for_host(config: &Config, host: Host, node: NodeInfo) -> Self {
        let shared = config.shared();
        let checks = config
            .sections()
            .filter(|(_, s)| s.common().enabled)
            .map(|(r, s)| r.build(s, &shared))
            .collect();
        let default = Policy::with_timeout(Duration::from_secs_f64(config.check_timeout_seconds));
        Engine::new(host, node, checks, &policies(config), default)
    }

    pub fn host(&self) -> &Host {
        &self.host
    }

    /// Names of the checks, in report order.
    pub fn check_names(&self) -> Vec<&'static str> {
        self.slots.iter().map(|s| s.check.name()).collect()
    }

    /// Runs one round and returns it. Takes at most the longest check deadline.
    pub async fn run_round(&mut self) -> Snapshot {
        let round_start = Instant::now();
        let pending: Vec<Pending> = self
            .slots
            .iter_mut()
            .map(|s| start(s, &self.host))
            .collect();

        let mut checks = Vec::with_capacity(self.slots.len());
        let mut samples = Vec::with_capacity(self.slots.len());
        for (slot, p) in self.slots.iter_mut().zip(pending) {
            let name = slot.check.name();
            let (outcome, duration) = match p {
                Pending::Stuck { since, for_ } => {
                    slot.counters.skipped_total += 1;
                    (
                        Err(format!(
                            "still running since {since} ({} ago), stuck in a read; not started again",
                            format_seconds(for_.as_secs_f64())
                        )),
                        Duration::ZERO,
                    )
                }
                Pending::SpawnFailed(why) => (Err(why), Duration::ZERO),
                Pending::Started(rx) => {
                    slot.counters.runs_total += 1;
                    let deadline =
                        tokio::time::Instant::from_std(round_start + slot.policy.timeout);
                    match tokio::time::timeout_at(deadline, rx).await {
                        Ok(Ok((Ok(Ok(outcome)), d))) => (Ok(outcome), d),
                        Ok(Ok((Ok(Err(e)), d))) => (Err(e.to_string()), d),
                        Ok(Ok((Err(panic), d))) => {
                            slot.counters.panics_total += 1;
                            (Err(format!("check panicked: {}", panic_message(&panic))), d)
                        }
                        Ok(Err(_)) => (
                            Err("check thread ended without a result".into()),
                            round_start.elapsed(),
                        ),
                        Err(_) => {
                            slot.counters.timeouts_total += 1;
                            (
                                Err(format!(
                                    "timed out after {}",
                                    format_seconds(slot.policy.timeout.as_secs_f64())
                                )),
                                slot.policy.timeout,
                            )
                        }
                    }
                }
            };
            slot.counters.stuck = slot.running.load(Ordering::Acquire);
            let (observed, summary, findings, facts, metrics) = match outcome {
                Ok(o) => {
                    slot.inventory = o.inventory.clone();
                    (o.status(), o.summary(), o.findings, o.facts, o.metrics)
                }
                Err(reason) => (
                    Status::Unknown,
                    reason.clone(),
                    vec![Finding::new(Status::Unknown, reason)],
                    serde_json::Value::Null,
                    Vec::new(),
                ),
            };
            let status = slot.damper.apply(observed, &slot.policy);
            checks.push(CheckResult {
                name: name.to_string(),
                status,
                summary,
                duration_seconds: duration.as_secs_f64(),
                checked_at: rfc3339_now(),
                findings,
                facts,
                observed_status: (status != observed).then_some(observed),
            });
            samples.push(metrics);
        }

        self.rounds_total += 1;
        let mut node = self.node.clone();
        for slot in &self.slots {
            node.inventory.extend(slot.inventory.iter().cloned());
        }
        let report = NodeReport {
            schema_version: SCHEMA_VERSION,
            node,
            status: Status::worst(checks.iter().map(|c| c.status)),
            generated_at: rfc3339_now(),
            checks,
        };
        Snapshot {
            report,
            samples,
            counters: self.slots.iter().map(|s| s.counters.clone()).collect(),
            rounds_total: self.rounds_total,
            finished_unix_seconds: common::time::unix_seconds_now(),
        }
    }

    /// Runs a round every `interval` until `shutdown` fires, publishing each one. Beats the
    /// heartbeat before and after every round.
    pub async fn run_loop(
        mut self,
        interval: Duration,
        tx: watch::Sender<Option<Arc<Snapshot>>>,
        heartbeat: Arc<LoopHeartbeat>,
        mut shutdown: watch::Receiver<bool>,
    ) {
        let mut ticker = tokio::time::interval(interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = ticker.tick() => {}
                _ = shutdown.changed() => return,
            }
            heartbeat.beat();
            let snapshot = tokio::select! {
                s = self.run_round() => s,
                _ = shutdown.changed() => return,
            };
            tracing::debug!(round = snapshot.rounds_total, status = %snapshot.report.status, "round done");
            for c in &snapshot.report.checks {
                if c.status != Status::Ok {
                    tracing::info!(check = %c.name, status = %c.status, summary = %c.summary, "check not ok");
                }
            }
            heartbeat.beat();
            tx.send_replace(Some(Arc::new(snapshot)));
            common::allocator::release_free_memory();
        }
    }
}

/// Starts `slot`'s check on its own thread, unless an earlier run is still stuck.
fn start(slot: &mut Slot, host: &Arc<Host>) -> Pending {
    if slot.running.load(Ordering::Acquire) {
        let (since_instant, since) = slot
            .started_at
            .clone()
            .unwrap_or_else(|| (Instant::now(), rfc3339_now()));
        return Pending::Stuck {
            since,
            for_: since_instant.elapsed(),
        };
    }
    let (tx, rx) = oneshot::channel();
    let check = slot.check.clone();
    let host = host.clone();
    let running = slot.running.clone();
    running.store(true, Ordering::Release);
    let spawned = std::thread::Builder::new()
        .name(format!("check-{}", check.name()))
        .spawn(move || {
            let t0 = Instant::now();
            let result = std::panic::catch_unwind(AssertUnwindSafe(|| check.run(&host)));
            let elapsed = t0.elapsed();
            running.store(false, Ordering::Release);
            let _ = tx.send((result, elapsed));
        });
    match spawned {
        Ok(_) => {
            slot.started_at = Some((Instant::now(), rfc3339_now()));
            Pending::Started(rx)
        }
        Err(e) => {
            slot.running.store(false, Ordering::Release);
            Pending::SpawnFailed(format!("could not start a thread for the check: {e}"))
        }
    }
}

fn panic_message(p: &Box<dyn std::any::Any + Send>) -> String {
    if let Some(s) = p.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = p.downcast_ref::<String>() {
        s.clone()
    } else {
        "(non-string panic payload)".to_string()
    }
}

/// The node identity read once at start: boot id and kernel release of the host.
pub fn node_info(host: &Host, name: String) -> NodeInfo {
    let read = |p: &str| host.read_value(p).ok().flatten().filter(|s| !s.is_empty());
    NodeInfo {
        name,
        agent_version: env!("CARGO_PKG_VERSION").to_string(),
        boot_id: read("/proc/sys/kernel/random/boot_id"),
        kernel_release: read("/proc/sys/kernel/osrelease"),
        arch: Some(host.arch().to_string()),
        inventory: BTreeMap::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type Behaviour = fn() -> Result<Outcome, CheckError>;

    struct Fake {
        name: &'static str,
        behaviour: Behaviour,
    }

    impl Check for Fake {
        fn name(&self) -> &'static str {
            self.name
        }
        fn run(&self, _host: &Host) -> Result<Outcome, CheckError> {
            (self.behaviour)()
        }
    }

    fn engine(checks: Vec<(&'static str, Behaviour)>, timeout_ms: u64) -> Engine {
        let checks = checks
            .into_iter()
            .map(|(name, behaviour)| Arc::new(Fake { name, behaviour }) as Arc<dyn Check>)
            .collect();
        Engine::new(
            Host::new("/nonexistent"),
            NodeInfo::default(),
            checks,
            &BTreeMap::new(),
            Policy::with_timeout(Duration::from_millis(timeout_ms)),
        )
    }

    fn ok() -> Result<Outcome, CheckError> {
        Ok(Outcome::default())
    }
    fn warn() -> Result<Outcome, CheckError> {
        let mut o = Outcome::default();
        o.push(Finding::new(Status::Warn, "a warning"));
        Ok(o)
    }
    fn slow() -> Result<Outcome, CheckError> {
        std::thread::sleep(Duration::from_millis(4000));
        Ok(Outcome::default())
    }
    fn panics() -> Result<Outcome, CheckError> {
        panic!("boom in a parser")
    }
    fn errs() -> Result<Outcome, CheckError> {
        Err(CheckError::Other("cannot read it".into()))
    }

    #[tokio::test]
    async fn a_slow_a_panicking_and_an_erroring_check_do_not_affect_the_others() {
        let mut e = engine(
            vec![
                ("a", ok),
                ("slow", slow),
                ("panics", panics),
                ("errs", errs),
                ("w", warn),
            ],
            1500,
        );
        let t0 = Instant::now();
        let s = e.run_round().await;
        assert!(
            t0.elapsed() < Duration::from_millis(3000),
            "round waited for the slow check"
        );
        let st = |n: &str| s.check(n).unwrap().status;
        assert_eq!(st("a"), Status::Ok);
        assert_eq!(st("w"), Status::Warn);
        assert_eq!(st("slow"), Status::Unknown);
        assert_eq!(s.check("slow").unwrap().summary, "timed out after 1.5s");
        assert_eq!(st("panics"), Status::Unknown);
        assert!(
            s.check("panics")
                .unwrap()
                .summary
                .contains("boom in a parser")
        );
        assert_eq!(s.check("errs").unwrap().summary, "cannot read it");
        assert_eq!(s.report.status, Status::Unknown);
        assert_eq!(s.counters[1].timeouts_total, 1);
        assert_eq!(s.counters[2].panics_total, 1);
    }

    #[tokio::test]
    async fn a_stuck_check_is_not_started_again_until_it_returns() {
        let mut e = engine(vec![("slow", slow)], 300);
        let s1 = e.run_round().await;
        assert!(s1.counters[0].stuck);
        let s2 = e.run_round().await;
        let c = s2.check("slow").unwrap();
        assert_eq!(c.status, Status::Unknown);
        assert!(
            c.summary.starts_with("still running since"),
            "{}",
            c.summary
        );
        assert_eq!(s2.counters[0].runs_total, 1);
        assert_eq!(s2.counters[0].skipped_total, 1);
        // Once the thread returns, the check runs again.
        tokio::time::sleep(Duration::from_millis(4000)).await;
        let s3 = e.run_round().await;
        assert_eq!(s3.counters[0].runs_total, 2);
    }

    #[test]
    fn damping_holds_fail_and_ok_for_the_configured_rounds() {
        let p = Policy {
            timeout: Duration::from_secs(1),
            success_before_passing: 2,
            failures_before_warning: 2,
            failures_before_critical: 3,
        };
        let mut d = Damper::default();
        use Status::*;
        let seq = [Ok, Fail, Fail, Fail, Ok, Ok, Fail, Ok];
        let got: Vec<Status> = seq.iter().map(|s| d.apply(*s, &p)).collect();
        assert_eq!(got, [Ok, Ok, Warn, Fail, Fail, Ok, Ok, Ok]);
        // Off by default: every status passes through.
        let mut d = Damper::default();
        let p0 = Policy::with_timeout(Duration::from_secs(1));
        let got: Vec<Status> = seq.iter().map(|s| d.apply(*s, &p0)).collect();
        assert_eq!(got, seq);
    }
}

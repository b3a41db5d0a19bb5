//! The shape every node check has (`NodeCheck`: settings, a read from `Host` into typed facts, a
//! pure evaluate), the `Runner` that holds a check's settings and shared inputs, the object-safe
//! `Check` the engine runs, what a run returns (`Outcome`), and how
//! a check says it could not check (`CheckError`).

use crate::host::Host;
use proto::{Finding, Status};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::path::PathBuf;

pub use crate::error::{CheckError, ParseError, SettingsError};

/// What every check's settings type provides: its config table's own keys (strict, with
/// defaults), plus rules that span fields.
pub trait CheckSettings:
    DeserializeOwned + Serialize + Default + Clone + std::fmt::Debug + Send + Sync + 'static
{
    /// Rules that span fields. The error names the key within the table, without the section,
    /// and the problem: `SettingsError::new("fail_free_ratio", "(0.3) must be below
    /// `warn_free_ratio` (0.2)")`; the registry adds the table.
    fn validate(&self) -> Result<(), SettingsError> {
        Ok(())
    }
}

/// Inputs that more than one check reads, taken from the config once by the registry
/// (`checks::shared`), so that no check reads another check's settings.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Shared {
    /// The Spark `spark-defaults.conf` of the executors (key `memory.spark_defaults`).
    pub spark_defaults: Option<PathBuf>,
    /// Executors planned per node (key `memory.executors_per_node`).
    pub executors_per_node: u32,
    /// The executor's root filesystem in the agent's own filesystem (key
    /// `velox_library.executor_root`); `None`: the host root.
    pub executor_root: Option<PathBuf>,
    /// Gluten bundle jars named by the configuration (key `velox_library.jars`).
    pub gluten_jars: Vec<PathBuf>,
    /// `JAVA_HOME` in the executor root (key `velox_library.java_home`).
    pub java_home: Option<PathBuf>,
}

/// What a check reads with: its own settings and the inputs checks share. The [`Runner`] holds
/// it, so a check keeps only its real state (caches, counters) and a check without state is a
/// unit struct.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Context<S> {
    /// The check's own keys of its config table.
    pub settings: S,
    /// The inputs more than one check reads (`memory.spark_defaults`, ...).
    pub shared: Shared,
}

/// The one shape of a node check. Every check module has the same parts in the same order:
/// `Settings` (its config table), `Facts` (what it observed, typed), `read` (the only place that
/// touches the machine, through `host`), and `evaluate` (pure: facts and settings in, verdict out).
/// The check type itself holds only state kept between rounds (caches); its settings and the
/// shared inputs are the [`Runner`]'s, handed to `read` as a [`Context`]. A check starts as its
/// `Default`.
///
/// Synchronous on purpose: a check is testable without a runtime, and the engine runs it on its
/// own thread under a deadline, so a read stuck in the kernel cannot block anything else.
pub trait NodeCheck: Default + Send + Sync + Sized + 'static {
    /// Stable snake_case name: config table, JSON `name`, metric label, `/health/{name}`.
    const NAME: &'static str;
    /// The check's own keys of its config table `[NAME]`.
    type Settings: CheckSettings;
    /// What one read observed, in base units; serialised as the report's `facts`.
    type Facts: Serialize;

    /// Reads the machine only through `host`, as `cx` (settings, shared inputs) says. Never
    /// panics on odd input (the engine isolates a panic anyway). `Err` means "could not check"
    /// and becomes `unknown` with the reason. May use caches the check keeps (keyed by file
    /// identity), never the network.
    fn read(&self, host: &Host, cx: &Context<Self::Settings>) -> Result<Self::Facts, CheckError>;

    /// Pure: the findings, gauges and inventory that `facts` mean under `settings`. `warn` and
    /// `fail` are findings here, not errors.
    fn evaluate(facts: &Self::Facts, settings: &Self::Settings) -> Verdict;

    /// What this check's table gives to every check (`Shared`). Only a check whose keys are
    /// shared inputs overrides it (`memory`: `spark_defaults`, `executors_per_node`). Called
    /// whether or not the check is enabled.
    fn share(settings: &Self::Settings, shared: &mut Shared) {
        let _ = (settings, shared);
    }
}

/// What `NodeCheck::evaluate` decides: an `Outcome` without the facts.
#[derive(Debug, Default, Clone)]
pub struct Verdict {
    pub findings: Vec<Finding>,
    pub ok_summary: Option<String>,
    pub metrics: Vec<Sample>,
    pub inventory: Vec<(String, String)>,
}

impl Verdict {
    pub fn status(&self) -> Status {
        Status::worst(self.findings.iter().map(|f| f.status))
    }

    /// The summary sentence the outcome of this verdict will have.
    pub fn summary(&self) -> String {
        summary(&self.findings, self.ok_summary.as_deref())
    }

    pub fn push(&mut self, finding: Finding) {
        self.findings.push(finding);
    }

    /// Adds a gauge sample.
    pub fn gauge(
        &mut self,
        name: &'static str,
        help: &'static str,
        labels: &[(&'static str, &str)],
        value: f64,
    ) {
        self.metrics.push(Sample::new(name, help, labels, value));
    }

    /// The outcome of this verdict with `facts` serialised.
    pub fn with_facts<T: Serialize>(self, facts: &T) -> Outcome {
        Outcome {
            findings: self.findings,
            ok_summary: self.ok_summary,
            facts: serde_json::to_value(facts).unwrap_or(serde_json::Value::Null),
            metrics: self.metrics,
            inventory: self.inventory,
        }
    }
}

/// What the engine runs: the object-safe face of a `NodeCheck` (and of test doubles).
pub trait Check: Send + Sync {
    /// Stable snake_case name: config table, JSON `name`, metric label.
    fn name(&self) -> &'static str;

    /// One run: read, then evaluate.
    fn run(&self, host: &Host) -> Result<Outcome, CheckError>;
}

/// Runs a `NodeCheck`: holds the check (its state), its settings and the shared inputs; one run
/// is `read`, then `evaluate`, facts serialised into the outcome.
pub struct Runner<C: NodeCheck> {
    check: C,
    cx: Context<C::Settings>,
}

impl<C: NodeCheck> Runner<C> {
    /// The check at its start (`Default`) with `settings` and default shared inputs (tests,
    /// benches).
    pub fn new(settings: C::Settings) -> Self {
        Self::build(settings, Shared::default())
    }

    /// The check at its start with `settings` and the shared inputs: what the registry builds.
    pub fn build(settings: C::Settings, shared: Shared) -> Self {
        Self::with_check(C::default(), settings, shared)
    }

    /// A given check value (e.g. with its surroundings faked) with its settings and shared inputs.
    pub fn with_check(check: C, settings: C::Settings, shared: Shared) -> Self {
        Runner {
            check,
            cx: Context { settings, shared },
        }
    }

    /// The check's state (its caches and their counters).
    pub fn check(&self) -> &C {
        &self.check
    }

    /// The check's state, to change (tests stand in a probe that hangs).
    pub fn check_mut(&mut self) -> &mut C {
        &mut self.check
    }

    /// The settings and shared inputs the check runs with.
    pub fn context(&self) -> &Context<C::Settings> {
        &self.cx
    }

    /// The settings the check runs with.
    pub fn settings(&self) -> &C::Settings {
        &self.cx.settings
    }

    /// One read, without the evaluation: the typed facts.
    pub fn read(&self, host: &Host) -> Result<C::Facts, CheckError> {
        self.check.read(host, &self.cx)
    }
}

impl<C: NodeCheck> Check for Runner<C> {
    fn name(&self) -> &'static str {
        C::NAME
    }

    fn run(&self, host: &Host) -> Result<Outcome, CheckError> {
        let facts = self.read(host)?;
        Ok(C::evaluate(&facts, &self.cx.settings).with_facts(&facts))
    }
}

/// What one run of a check observed.
#[derive(Debug, Default, Clone)]
pub struct Outcome {
    /// Findings; the check's status is the worst of them (`ok` when there are none).
    pub findings: Vec<Finding>,
    /// The one-sentence summary used when the status is `ok` (otherwise the worst findings are).
    pub ok_summary: Option<String>,
    /// Typed facts, serialised (base units: bytes, seconds, counts).
    pub facts: serde_json::Value,
    /// Key facts as Prometheus gauges (bounded labels only).
    pub metrics: Vec<Sample>,
    /// What the fleet should agree on, `key -> value` (see `proto::NodeInfo::inventory`).
    pub inventory: Vec<(String, String)>,
}

impl Outcome {
    /// An outcome whose facts are `facts` serialised.
    pub fn with_facts<T: serde::Serialize>(facts: &T) -> Self {
        Outcome {
            facts: serde_json::to_value(facts).unwrap_or(serde_json::Value::Null),
            ..Outcome::default()
        }
    }

    pub fn status(&self) -> Status {
        Status::worst(self.findings.iter().map(|f| f.status))
    }

    /// The summary sentence: the `ok` summary, or the worst findings (at most two, then a count).
    pub fn summary(&self) -> String {
        summary(&self.findings, self.ok_summary.as_deref())
    }

    pub fn push(&mut self, finding: Finding) {
        self.findings.push(finding);
    }

    /// Adds a gauge sample.
    pub fn gauge(
        &mut self,
        name: &'static str,
        help: &'static str,
        labels: &[(&'static str, &str)],
        value: f64,
    ) {
        self.metrics.push(Sample::new(name, help, labels, value));
    }
}

/// The summary sentence: `ok_summary` when nothing is worse than `ok`, or the worst findings (at
/// most two, then a count).
fn summary(findings: &[Finding], ok_summary: Option<&str>) -> String {
    let status = Status::worst(findings.iter().map(|f| f.status));
    if status == Status::Ok {
        return ok_summary.unwrap_or("ok").to_string();
    }
    let worst: Vec<&Finding> = findings.iter().filter(|f| f.status == status).collect();
    let mut s = worst
        .iter()
        .take(2)
        .map(|f| f.message.as_str())
        .collect::<Vec<_>>()
        .join("; ");
    if worst.len() > 2 {
        s.push_str(&format!(" (and {} more)", worst.len() - 2));
    }
    s
}

/// One Prometheus gauge sample produced by a check. `name` starts with `gluten_node_`; labels
/// come from bounded sets (check, dir, numa_node, page size), never from error text.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub name: &'static str,
    pub help: &'static str,
    pub labels: Vec<(&'static str, String)>,
    pub value: f64,
}

impl Sample {
    pub fn new(
        name: &'static str,
        help: &'static str,
        labels: &[(&'static str, &str)],
        value: f64,
    ) -> Self {
        Sample {
            name,
            help,
            labels: labels.iter().map(|(k, v)| (*k, v.to_string())).collect(),
            value,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_and_summary_come_from_the_worst_findings() {
        let mut o = Outcome {
            ok_summary: Some("all fine".into()),
            ..Outcome::default()
        };
        assert_eq!(o.status(), Status::Ok);
        assert_eq!(o.summary(), "all fine");
        o.push(Finding::new(Status::Warn, "w1"));
        assert_eq!(o.summary(), "w1");
        for m in ["f1", "f2", "f3", "f4"] {
            o.push(Finding::new(Status::Fail, m));
        }
        assert_eq!(o.status(), Status::Fail);
        assert_eq!(o.summary(), "f1; f2 (and 2 more)");
    }
}

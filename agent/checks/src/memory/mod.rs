//! `memory`: can this node hold the Spark executors it is meant to run? MemTotal, MemAvailable,
//! swap, huge page pools, the memory cgroup (v2 or v1) with its limit, working set and OOM
//! events, PSI memory pressure, kernel OOM kills, and the Spark executor plan (from
//! `spark-defaults.conf` and/or explicit keys) against what is usable.
//!
//! Parts, in the order every check has them: `settings` (`[memory]`), `facts` (what a read
//! observed, serialised with the numbers derived from it), `parse` (pure parsers of meminfo,
//! vmstat, limits, PSI), `read` (the host reads and the OOM baselines), `evaluate` (pure: facts
//! and settings to findings and gauges); and its own subjects: `cgroup` (finding and reading the
//! memory cgroup, v2 or v1) and `spark_plan` (what the executors ask for, by Spark's and
//! Gluten's rules).

mod cgroup;
mod evaluate;
mod facts;
mod parse;
mod read;
mod settings;
mod spark_plan;

pub use cgroup::*;
pub use evaluate::*;
pub use facts::*;
pub use parse::*;
use read::Baselines;
pub use settings::*;
pub use spark_plan::*;

use crate::Registration;
use crate::check::{CheckError, Context, NodeCheck, Shared, Verdict};
use crate::host::Host;
use std::sync::Mutex;

const MIB: u64 = 1024 * 1024;
const GIB: u64 = 1024 * MIB;

/// The check: the OOM kill counters first seen (the check lives as long as the agent, so an
/// increase is "since the agent started").
#[derive(Default)]
pub struct Memory {
    baselines: Mutex<Baselines>,
}

/// This check in the registry (`checks::ALL`).
pub const REGISTRATION: Registration = Registration::of::<Memory>();

impl NodeCheck for Memory {
    const NAME: &'static str = "memory";
    type Settings = Settings;
    type Facts = Facts;

    fn read(&self, host: &Host, cx: &Context<Settings>) -> Result<Facts, CheckError> {
        self.read_facts(host, &cx.settings)
    }

    fn evaluate(facts: &Facts, settings: &Settings) -> Verdict {
        evaluate(facts, settings)
    }

    /// `memory.spark_defaults` and `memory.executors_per_node` are every check's Spark plan.
    fn share(settings: &Settings, shared: &mut Shared) {
        shared.spark_defaults = settings.spark_defaults.clone();
        shared.executors_per_node = settings.executors_per_node;
    }
}

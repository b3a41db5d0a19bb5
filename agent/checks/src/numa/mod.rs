//! `numa`: the NUMA topology (nodes, their CPUs, memory and distances), `kernel.numa_balancing`,
//! free-memory skew across nodes, and which nodes the agent's own cpuset spans.
//!
//! Gluten removed its own executor NUMA binding (apache/gluten#10578); its maintainers recommend
//! kernel NUMA balancing on multi-node hosts instead (apache/gluten#10557).
//!
//! Parts, one file each as every check has them: the check and its registration (here),
//! `settings`, `facts`, pure `parse`rs, the `read` (the only part that touches the `Host`), the
//! pure `evaluate`.

mod evaluate;
mod facts;
mod parse;
mod read;
mod settings;

pub use evaluate::evaluate;
pub use facts::{Cpuset, Facts, Node};
pub use parse::{free_skew_ratio, parse_distance, parse_numa_balancing, parse_status_cpuset};
pub use read::read_facts;
pub use settings::Settings;

use crate::Registration;
use crate::check::{CheckError, Context, NodeCheck, Verdict};
use crate::host::Host;

const NUMA_BALANCING: &str = "/proc/sys/kernel/numa_balancing";
/// `NUMA_BALANCING_NORMAL`: the bit of `numa_balancing` that migrates pages and tasks between
/// nodes (bit 2 is memory tiering only).
const NUMA_BALANCING_NORMAL: u32 = 1;

/// The check: no state, every read is fresh.
#[derive(Default)]
pub struct Numa;

/// This check in the registry (`checks::ALL`).
pub const REGISTRATION: Registration = Registration::of::<Numa>();

impl NodeCheck for Numa {
    const NAME: &'static str = "numa";
    type Settings = Settings;
    type Facts = Facts;

    fn read(&self, host: &Host, _cx: &Context<Settings>) -> Result<Facts, CheckError> {
        read_facts(host)
    }

    fn evaluate(facts: &Facts, settings: &Settings) -> Verdict {
        evaluate(facts, settings)
    }
}

#[cfg(test)]
mod tests;

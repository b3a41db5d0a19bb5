//! `limits`: the process limits executors start with. The hard open-files limit (or the soft one
//! when the executors' Java options turn HotSpot's `MaxFDLimit` off) of the process that starts
//! them, found by its pid file (the YARN NodeManager's by default), or in a container with no
//! pid file the agent's own (the runtime's defaults every pod gets); and core-dump readiness as
//! facts: `RLIMIT_CORE`, `kernel.core_pattern`, the free space where cores land.
//!
//! Parts, in the order every check has them: `settings` (`[limits]`), `facts`, `parse` (pure
//! parsers of `/proc/<pid>/limits`, pid files, Java options and `core_pattern`), `read` (the
//! host reads, and the container detection that looks at the agent's own root), `evaluate`
//! (pure). The Spark conf (`spark_defaults`) comes from `Shared`.

mod evaluate;
mod facts;
mod parse;
mod read;
mod settings;

pub use evaluate::*;
pub use facts::*;
pub use parse::*;
pub use read::{OwnEnvironment, detect_container};
pub use settings::*;

use crate::Registration;
use crate::check::{CheckError, Context, NodeCheck, Verdict};
use crate::host::Host;

/// The check: what it knows of its own surroundings (for container detection). Its settings and
/// the Spark conf (`Shared::spark_defaults`) come from the runner.
pub struct Limits {
    own: OwnEnvironment,
}

/// This check in the registry (`checks::ALL`).
pub const REGISTRATION: Registration = Registration::of::<Limits>();

impl Limits {
    /// The check with the surroundings given rather than this process's (tests, fixtures).
    pub fn with_environment(own: OwnEnvironment) -> Self {
        Limits { own }
    }
}

/// The surroundings of this process.
impl Default for Limits {
    fn default() -> Self {
        Limits::with_environment(OwnEnvironment::of_this_process())
    }
}

impl NodeCheck for Limits {
    const NAME: &'static str = "limits";
    type Settings = Settings;
    type Facts = Facts;

    /// `spark_defaults` (for the executors' Java options) comes from `Shared`.
    fn read(&self, host: &Host, cx: &Context<Settings>) -> Result<Facts, CheckError> {
        self.read_facts(host, cx)
    }

    fn evaluate(facts: &Facts, settings: &Settings) -> Verdict {
        evaluate(facts, settings)
    }
}

#[cfg(test)]
mod tests;

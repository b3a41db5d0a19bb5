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
use crate::check::{CheckError, NodeCheck, Shared, Verdict};
use crate::host::Host;
use std::path::PathBuf;

/// The check: its settings, the Spark conf from `Shared`, and what it knows of its own
/// surroundings (for container detection).
pub struct Limits {
    settings: Settings,
    spark_defaults: Option<PathBuf>,
    own: OwnEnvironment,
}

/// This check in the registry (`checks::ALL`).
pub const REGISTRATION: Registration = Registration::of::<Limits>();

impl Limits {
    /// The check with the surroundings given rather than this process's (tests, fixtures).
    pub fn with_environment(settings: Settings, shared: &Shared, own: OwnEnvironment) -> Self {
        Limits {
            settings,
            spark_defaults: shared.spark_defaults.clone(),
            own,
        }
    }
}

impl NodeCheck for Limits {
    const NAME: &'static str = "limits";
    type Settings = Settings;
    type Facts = Facts;

    /// `spark_defaults` (for the executors' Java options) comes from `Shared`.
    fn build(settings: Settings, shared: &Shared) -> Self {
        Limits::with_environment(settings, shared, OwnEnvironment::of_this_process())
    }

    fn settings(&self) -> &Settings {
        &self.settings
    }

    fn read(&self, host: &Host) -> Result<Facts, CheckError> {
        self.read_facts(host)
    }

    fn evaluate(facts: &Facts, settings: &Settings) -> Verdict {
        evaluate(facts, settings)
    }
}

#[cfg(test)]
mod tests;

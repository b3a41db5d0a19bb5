//! `scratch`: the local dirs Gluten spills, shuffles, caches and extracts its JNI libraries into.
//!
//! For each dir: exists and is a directory; its mount (longest prefix in the host's mountinfo),
//! filesystem type and options (`ro` and `noexec` fail, tmpfs warns); the whole disk behind it
//! (`/sys/dev/block/M:m`: rotational, NVMe, model, size); free bytes and inodes (statvfs); a
//! write probe; leftovers of killed executors. Everything that touches the dir itself runs on a
//! short-lived thread per dir under `dir_timeout_seconds`, so one hung NFS mount blinds only
//! its own dir, and a dir still stuck from an earlier round is not probed again. When the Spark
//! conf turns on Velox's SSD cache, its path is probed the same way and must hold
//! `ssdCacheSize` x `executors_per_node` (node-requirements check 5.7).
//!
//! Parts, in the order every check has them: `settings` (`[scratch]`), `facts`, `read` (which
//! dirs, then each probed with its mount and disk), `evaluate` (pure: findings, gauges,
//! inventory); and its own subjects: `mounts` (mount table and block devices), `probe` (the
//! per-dir threads under a deadline: stat, statvfs, write probe, leftovers) and `ssd_cache`
//! (Velox's SSD cache from the Spark conf). The Spark plan (`spark_defaults`,
//! `executors_per_node`) comes from `Shared`.

mod evaluate;
mod facts;
mod mounts;
mod probe;
mod read;
mod settings;
mod ssd_cache;
mod yarn_site;

pub use evaluate::*;
pub use facts::*;
pub use mounts::*;
pub use probe::*;
pub use settings::*;
pub use ssd_cache::*;

use crate::Registration;
use crate::check::{CheckError, Context, NodeCheck, Verdict};
use crate::host::Host;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Mutex;

/// The check: the per-dir probe and the dirs still stuck. Its settings and the Spark plan
/// (`Shared::spark_defaults`, `Shared::executors_per_node`) come from the runner.
pub struct Scratch {
    probe: ProbeFn,
    /// Dirs whose per-dir thread is still running past its deadline, by configured path.
    stuck: Mutex<HashMap<PathBuf, Stuck>>,
}

impl Default for Scratch {
    fn default() -> Self {
        Scratch {
            probe: probe_dir,
            stuck: Mutex::new(HashMap::new()),
        }
    }
}

/// This check in the registry (`checks::ALL`).
pub const REGISTRATION: Registration = Registration::of::<Scratch>();

impl NodeCheck for Scratch {
    const NAME: &'static str = "scratch";
    type Settings = Settings;
    type Facts = Facts;

    /// The Spark plan (`spark_defaults`, `executors_per_node`) comes from `Shared`.
    fn read(&self, host: &Host, cx: &Context<Settings>) -> Result<Facts, CheckError> {
        self.read_facts(host, cx)
    }

    fn evaluate(facts: &Facts, settings: &Settings) -> Verdict {
        evaluate(facts, settings)
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::check::{Check, Outcome, Runner, Shared};

    pub(crate) fn scratch(
        settings: Settings,
        spark_defaults: Option<PathBuf>,
        executors: u32,
    ) -> Runner<Scratch> {
        let shared = Shared {
            spark_defaults,
            executors_per_node: executors,
            ..Shared::default()
        };
        Runner::build(settings, shared)
    }

    /// One run as the engine does it: read, evaluate, facts serialised.
    pub(crate) fn run(check: &Runner<Scratch>, h: &Host) -> Outcome {
        check.run(h).unwrap()
    }
}

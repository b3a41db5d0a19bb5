//! `hugepages`: transparent huge page mode and defrag, every hugetlb pool (global and per NUMA
//! node, every page size), the `/proc/meminfo` huge page lines and the THP and compaction
//! counters of `/proc/vmstat`, compared with what Gluten expects.
//!
//! Velox's only huge page mechanism is THP via `madvise(MADV_HUGEPAGE)`; Gluten's benchmark nodes
//! run THP `madvise`. Explicit hugetlb pools matter for the QAT codec and for the memory check,
//! which must not count a static pool as "used" memory ([`read_pools`], [`pool_bytes`]).
//!
//! Parts, in the order every check has them: `settings` (`[hugepages]`), `facts` (what a read
//! observed), `parse` (pure parsers of the kernel's text), `read` (the only part that touches
//! the `Host`), `evaluate` (pure: facts and settings to findings and gauges).

mod evaluate;
mod facts;
mod parse;
mod read;
mod settings;

pub use evaluate::*;
pub use facts::*;
pub use parse::*;
pub use read::*;
pub use settings::*;

use crate::Registration;
use crate::check::{CheckError, Context, NodeCheck, Verdict};
use crate::host::Host;

/// The check: no state, every read is fresh.
#[derive(Default)]
pub struct Hugepages;

/// This check in the registry (`checks::ALL`).
pub const REGISTRATION: Registration = Registration::of::<Hugepages>();

impl NodeCheck for Hugepages {
    const NAME: &'static str = "hugepages";
    type Settings = Settings;
    type Facts = Facts;

    fn read(&self, host: &Host, _cx: &Context<Settings>) -> Result<Facts, CheckError> {
        read_facts(host)
    }

    fn evaluate(facts: &Facts, settings: &Settings) -> Verdict {
        evaluate(facts, settings)
    }
}

//! `velox_library`: can this host load Gluten's native libraries? Reads the ELF headers of the
//! configured `.so` files (and the ones inside Gluten bundle jars) without running them, resolves
//! their `DT_NEEDED` closure the way `ld.so` would under the host root, compares the symbol
//! versions they need with what the host's libraries define, and the CPU flags they need (read
//! from their own DWARF producer record, else a built-in list) with `/proc/cpuinfo`.
//!
//! Code map: `settings` (the `[velox_library]` table), `facts` (what a read observed), `read`
//! (the only part that touches the machine), `evaluate` (pure, one function per rule); and their
//! own subjects: `elf` (what an ELF file says), `elf_read` (the ELF reader), `ld_cache`
//! (`ld.so.cache`, `ld.so.conf`), `search` (the loader search), `cpuinfo`, `jar` (bundle jars and
//! their cache), `probe` (fork + dlopen),
//! `producer` (the CPU a library was built for, from its DWARF producer record).

mod closure;
mod cpuinfo;
mod elf;
mod elf_read;
mod evaluate;
mod facts;
mod glibc;
mod jar;
mod ld_cache;
mod needs;
mod probe;
mod producer;
mod read;
mod rules;
mod scan;
mod search;
mod settings;

pub use cpuinfo::parse_cpuinfo_flags;
pub use elf::{ElfSummary, elf_kind, host_elf_kind, machine_name, max_version, parse_version};
pub use elf_read::{
    ElfSource, Req, SliceSource, elf_summary, segment_reqs, string_ranges, summary_from_segments,
};
pub use evaluate::evaluate;
pub use facts::{
    CpuCoreFacts, CpuNeedsFacts, Facts, JarFacts, LibraryFacts, LoaderFacts, MissingDependency,
    MissingVersion, ProbeResult, TargetOption,
};
pub use glibc::parse_loader_binary;
pub use jar::{jar_arch, parse_build_info};
pub use ld_cache::{
    CacheEntry, ConfLine, LdCache, parse_ld_so_cache, parse_ld_so_conf, wildcard_match,
};
pub use scan::{Scan, scan_reader};
pub use settings::{
    AARCH64_CPU_FLAGS, DEFAULT_PATHS, Settings, X86_64_CPU_FLAGS, default_cpu_flags,
};

use crate::Registration;
use crate::check::{CheckError, Context, NodeCheck, Shared, Verdict};
use crate::host::Host;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

/// This check in the registry (`checks::ALL`).
pub const REGISTRATION: Registration = Registration::of::<VeloxLibrary>();

/// Bound of the per-file ELF summary cache.
const SUMMARY_CACHE_ENTRIES: usize = 4096;

use crate::file_key::FileKey;

/// A file's summary and strings scan, with the identity they were read at.
type Summarised = (FileKey, Arc<ElfSummary>, Arc<scan::Scan>);

/// The check: the caches its reads keep, keyed by file identity. Its settings and the shared
/// inputs (`Shared::spark_defaults`) come from the runner.
#[derive(Default)]
pub struct VeloxLibrary {
    /// ELF summaries by local path.
    cache: Mutex<HashMap<PathBuf, Summarised>>,
    /// Parsed jars.
    jars: jar::JarCache,
    /// The executor root's loader binary, parsed (release, default dirs).
    loader_cache: Mutex<Option<(FileKey, glibc::LoaderBinary)>>,
    /// Content digests of configured libraries without a build id, by local path.
    digests: Mutex<HashMap<PathBuf, (FileKey, String)>>,
    /// Producer records of configured libraries, by local path.
    cpu_records: Mutex<HashMap<PathBuf, (FileKey, Arc<CpuNeedsFacts>)>>,
    /// Producer records read from files (not from the cache) so far.
    cpu_records_read: std::sync::atomic::AtomicU64,
}

impl VeloxLibrary {
    /// How many `.so` entries this check has decompressed out of jars since it was created: a
    /// jar is read again only when its (device, inode, size, mtime) changes. For tests.
    pub fn jar_entries_decompressed(&self) -> u64 {
        self.jars.decompressed.load(Ordering::Relaxed)
    }

    /// How many files' ELF summaries this check holds (read through a closure, cached by file
    /// identity). For tests.
    pub fn summaries_cached(&self) -> usize {
        self.cache.lock().map_or(0, |c| c.len())
    }

    /// How many producer records this check has read from files on disk (not its cache), and
    /// how many bytes it has written to temporary copies of jar entries. For tests.
    pub fn cpu_records_read(&self) -> (u64, u64) {
        (
            self.cpu_records_read.load(Ordering::Relaxed),
            self.jars.spooled.load(Ordering::Relaxed),
        )
    }
}

impl NodeCheck for VeloxLibrary {
    const NAME: &'static str = "velox_library";
    type Settings = Settings;
    type Facts = Facts;

    fn read(&self, host: &Host, cx: &Context<Settings>) -> Result<Facts, CheckError> {
        self.read_facts(host, cx)
    }

    fn evaluate(facts: &Facts, settings: &Settings) -> Verdict {
        evaluate::evaluate(facts, settings)
    }

    /// `executor_root`, `jars` and `java_home` are also where `gluten_runtime` looks.
    fn share(settings: &Settings, shared: &mut Shared) {
        shared.executor_root = settings.executor_root.clone();
        shared.gluten_jars = settings.jars.clone();
        shared.java_home = settings.java_home.clone();
    }
}

//! What the `velox_library` check observed, typed: per library, per jar, the loader's
//! configuration, the executor's libc and libstdc++, CPU flags, dlopen probes. Serialised as the
//! report's `facts`; the field names are a contract tools read.

use serde::Serialize;
use std::collections::BTreeMap;

/// A dependency the loader would not find.
#[derive(Serialize, Debug, Clone, PartialEq, Eq)]
pub struct MissingDependency {
    /// The `DT_NEEDED` name.
    pub name: String,
    pub needed_by: String,
    /// Found, but refused by the loader or unreadable: the path and why.
    pub reason: Option<String>,
}

/// A symbol version needed but not defined by the library that provides it.
#[derive(Serialize, Debug, Clone, PartialEq, Eq)]
pub struct MissingVersion {
    pub version: String,
    /// The dependency expected to define it (`libc.so.6`).
    pub file: String,
    /// Host path of that dependency as resolved.
    pub provider: String,
    /// Highest version of the same family the provider defines.
    pub provider_max: Option<String>,
    pub needed_by: String,
}

/// One checked library (a file on the host or an entry of a jar).
#[derive(Serialize, Debug, Clone, Default, PartialEq)]
pub struct LibraryFacts {
    /// File name (the metric label).
    pub library: String,
    /// Host path, or `JAR!entry` for a jar entry.
    pub path: String,
    pub found: bool,
    /// Why it could not be read or parsed.
    pub error: Option<String>,
    /// The error means the library is broken (not ELF, truncated) rather than unreadable to us.
    #[serde(skip)]
    pub broken: bool,
    pub size_bytes: Option<u64>,
    pub mtime_unix_seconds: Option<i64>,
    pub build_id: Option<String>,
    pub elf_class_bits: Option<u8>,
    pub machine: Option<String>,
    #[serde(skip)]
    pub machine_code: Option<u16>,
    pub soname: Option<String>,
    pub needed: Vec<String>,
    pub rpath: Vec<String>,
    pub runpath: Vec<String>,
    /// Every dependency of the closure, name -> host path.
    pub resolved: BTreeMap<String, String>,
    pub missing_dependencies: Vec<MissingDependency>,
    pub missing_versions: Vec<MissingVersion>,
    pub max_glibc_required: Option<String>,
    pub max_glibcxx_required: Option<String>,
    pub max_cxxabi_required: Option<String>,
    pub exec_stack: Option<bool>,
}

/// A Gluten bundle jar.
#[derive(Serialize, Debug, Clone, Default, PartialEq)]
pub struct JarFacts {
    pub path: String,
    pub found: bool,
    pub error: Option<String>,
    /// `linux/<dir>/` names holding native libraries (`amd64`, `aarch64`).
    pub native_arches: Vec<String>,
    pub build_info: BTreeMap<String, String>,
}

/// Everything the check observed.
#[derive(Serialize, Debug, Clone, Default, PartialEq)]
pub struct Facts {
    pub host_arch: String,
    /// Where the executor's files were read (`[velox_library] executor_root`); `None`: the
    /// host root. CPU flags always come from the host root.
    pub executor_root: Option<String>,
    /// How the executor root's loader searches.
    pub loader: LoaderFacts,
    pub libraries: Vec<LibraryFacts>,
    pub jars: Vec<JarFacts>,
    /// Format of `/etc/ld.so.cache`; `None` when absent (then `ld.so.conf` dirs are searched).
    pub ld_so_cache_format: Option<String>,
    pub ld_so_cache_entries: Option<usize>,
    /// Directories from `/etc/ld.so.conf` (only read without a cache).
    pub ld_so_conf_dirs: Vec<String>,
    pub host_libc: Option<String>,
    /// Highest `GLIBC_x.y` the host's libc.so.6 defines (a lower bound of its release).
    pub host_glibc_version: Option<String>,
    /// Only when a library needs libstdc++.so.6.
    pub host_libstdcxx: Option<String>,
    pub host_glibcxx_version: Option<String>,
    pub host_cxxabi_version: Option<String>,
    pub required_cpu_flags: Vec<String>,
    /// `None` when /proc/cpuinfo is missing or lists no flags.
    pub missing_cpu_flags: Option<Vec<String>>,
    /// The ISA-relevant flags present (required ones plus AVX-512, SVE, ...), sorted.
    pub isa_cpu_flags: Option<Vec<String>>,
    /// `paths` is the default and nothing exists there, and no jar is configured.
    pub nothing_installed: bool,
    pub load_probe: Vec<ProbeResult>,
}

/// The executor root's glibc loader, as far as the search depends on it.
#[derive(Serialize, Debug, Clone, Default, PartialEq)]
pub struct LoaderFacts {
    /// From the loader's banner ("stable release version 2.36"); `None` without a loader.
    pub glibc_release: Option<String>,
    /// Default directories, each ending in `/`.
    pub default_dirs: Vec<String>,
    /// `ld.so` (read out of the root's loader) or `built-in` (no loader in the root).
    pub default_dirs_source: String,
    /// `$LIB` and `$PLATFORM` in RPATH/RUNPATH.
    pub lib: String,
    pub platform: String,
    /// Capability subdirectories searched first in every directory, best first.
    pub subdirs: Vec<String>,
}

/// Outcome of one dlopen probe.
#[derive(Serialize, Debug, Clone, PartialEq)]
pub struct ProbeResult {
    pub path: String,
    /// `loaded`, `failed`, `crashed`, `timed_out`, `skipped`.
    pub result: String,
    pub detail: Option<String>,
}

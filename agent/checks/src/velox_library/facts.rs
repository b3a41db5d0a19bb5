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
    /// `configured` (`paths`, `jars`) or `preload` (`spark.executorEnv.LD_PRELOAD`).
    pub role: String,
    /// Label-safe identity for fleet drift: the build id, else the jar's build info (Gluten
    /// version and Velox revision), else a content digest (`sha256-…`).
    pub identity: Option<String>,
    /// `build_id`, `jar_build_info` or `sha256`.
    pub identity_source: Option<String>,
    /// What the closure's strings say it needs from the executor's filesystem.
    pub needs: NeedsFacts,
    /// RPATH/RUNPATH dirs that do not exist in the executor root.
    pub rpath_missing: Vec<MissingDir>,
    /// What the library's own DWARF producer record says about the CPU it needs (configured
    /// libraries of the host's machine only).
    pub cpu_needs: Option<CpuNeedsFacts>,
    /// `producer` (judged by `cpu_needs`) or `builtin` (no usable record: judged by
    /// `required_cpu_flags`).
    pub cpu_needs_source: Option<String>,
}

/// The CPU flags a library needs, from the `DW_AT_producer` of its compile units.
#[derive(Serialize, Debug, Clone, Default, PartialEq)]
pub struct CpuNeedsFacts {
    /// `known`, `no_producer` (no DWARF, stripped), `no_flag_record` (producers without target
    /// options), `unreadable` (see `error`).
    pub record: String,
    /// Code-generation flags (kernel names) more than half of the project's units carry.
    pub required: Vec<String>,
    /// Code-generation flags at most half of them carry: flag -> those units' `DW_AT_name`.
    pub minority: BTreeMap<String, Vec<String>>,
    /// Flags of units the program only calls after its own CPU check: flag -> units.
    pub dispatched: BTreeMap<String, Vec<String>>,
    /// Flags enabled only for intrinsics (not required).
    pub intrinsics_only: Vec<String>,
    /// The target options most of the project's units were compiled with, and how many units
    /// carry each (`-mbmi2`, `-march=x86-64-v3`, `-mcpu=neoverse-v2`).
    pub target_options: Vec<TargetOption>,
    /// Compile units in `.debug_info`.
    pub units: usize,
    pub units_with_producer: usize,
    pub units_without_producer: usize,
    /// The project's units with a flag record (the majority's denominator).
    pub units_considered: usize,
    /// Units of the toolchain's own runtime (libgcc, libstdc++), set apart.
    pub units_runtime: usize,
    /// Units whose producer records no target option (assembler).
    pub units_without_flags: usize,
    /// Target options the tables do not know.
    pub unknown_options: Vec<String>,
    /// Why the record could not be read.
    pub error: Option<String>,
}

/// One target option and the number of the project's units compiled with it.
#[derive(Serialize, Debug, Clone, Default, PartialEq)]
pub struct TargetOption {
    pub option: String,
    pub units: usize,
}

/// The host's arm64 core (MIDR_EL1) and SoC.
#[derive(Serialize, Debug, Clone, Default, PartialEq)]
pub struct CpuCoreFacts {
    /// MIDR_EL1 as read (`0x413fd0c1`).
    pub midr: String,
    /// Where it was read: `sysfs` (`cpu0/regs/identification/midr_el1`) or `cpuinfo`.
    pub midr_source: String,
    /// GCC's `-mcpu` name of the core (`neoverse-n1`), when known.
    pub core: Option<String>,
    /// Label-safe: the core name, else `unknown-<implementer>-<part>`.
    pub label: String,
    /// `/sys/devices/soc0/soc_id`.
    pub soc_id: Option<String>,
    /// The machine the SoC id names (`nvidia-grace`).
    pub machine: Option<String>,
}

/// What a library's closure needs beyond `DT_NEEDED` (read from its strings).
#[derive(Serialize, Debug, Clone, Default, PartialEq)]
pub struct NeedsFacts {
    /// The object that carries Velox's time zone lookup (needs IANA zoneinfo).
    pub tzdata_by: Option<String>,
    /// The TLS stack compiled into the closure and the CA location it reads.
    pub tls: Option<TlsFacts>,
}

/// One TLS stack's default CA location.
#[derive(Serialize, Debug, Clone, Default, PartialEq)]
pub struct TlsFacts {
    /// `libcurl 8.18.0` or `OpenSSL`.
    pub stack: String,
    /// The object that carries it.
    pub by: String,
    /// The CA bundle (curl) or `OPENSSLDIR` (OpenSSL: its `cert.pem` or `certs/`).
    pub ca_path: String,
    /// The CA file or dir exists in the executor root.
    pub ca_present: bool,
}

/// An RPATH/RUNPATH directory missing from the executor root.
#[derive(Serialize, Debug, Clone, Default, PartialEq)]
pub struct MissingDir {
    pub dir: String,
    /// Its nearest existing ancestor.
    pub nearest: String,
    /// A non-root user could create `dir` there (world-writable, or owned by another user).
    pub writable_by_others: bool,
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
    /// The built-in list (`required_cpu_flags`, or the architecture's default) that judges a
    /// library without a producer record.
    pub required_cpu_flags: Vec<String>,
    /// The host's CPU flags (x86 `flags`, arm64 `Features`) every processor lists; `None` when
    /// /proc/cpuinfo is missing or lists none.
    pub cpu_flags: Option<Vec<String>>,
    /// The ISA-relevant flags present (required ones plus AVX-512, SVE, ...), sorted.
    pub isa_cpu_flags: Option<Vec<String>>,
    /// arm64 hosts: the core and SoC.
    pub cpu_core: Option<CpuCoreFacts>,
    pub load_probe: Vec<ProbeResult>,
    /// The executor root's files the beyond-`DT_NEEDED` rules judge.
    pub executor_files: ExecutorFiles,
    /// What the executors' `spark_defaults` say.
    pub spark: SparkFacts,
}

/// Files of the executor root that libraries need besides other libraries.
#[derive(Serialize, Debug, Clone, Default, PartialEq)]
pub struct ExecutorFiles {
    /// `/usr/share/zoneinfo` is a directory.
    pub zoneinfo: bool,
    /// `spark.executorEnv.TZDIR` names a directory that exists.
    pub tzdir_exists: Option<bool>,
    /// When `spark_defaults` names `hdfs://`: what resolves.
    pub hdfs: Option<HdfsFacts>,
}

/// HDFS client libraries (apache/gluten#9258).
#[derive(Serialize, Debug, Clone, Default, PartialEq)]
pub struct HdfsFacts {
    pub hadoop_home: Option<String>,
    pub java_home: Option<String>,
    /// `libhdfs3.so` as the loader finds it.
    pub libhdfs3: Option<String>,
    /// `$HADOOP_HOME/lib/native/libhdfs.so`, when it exists and is ELF.
    pub libhdfs: Option<String>,
    /// `libjvm.so` under `JAVA_HOME`.
    pub libjvm: Option<String>,
}

/// Keys of `spark_defaults` the rules use.
#[derive(Serialize, Debug, Clone, Default, PartialEq)]
pub struct SparkFacts {
    /// The file read (`memory.spark_defaults`); `None` when not configured.
    pub defaults: Option<String>,
    /// The first key naming object storage (`s3a://`, `abfs://`, `gs://`, `spark.hadoop.fs.s3a.*`).
    pub object_store_key: Option<String>,
    /// A key names `hdfs://`.
    pub hdfs_key: Option<String>,
    pub tzdir: Option<String>,
    /// `spark.executorEnv.HADOOP_HOME` and `JAVA_HOME`.
    pub hadoop_home: Option<String>,
    pub java_home: Option<String>,
    pub ld_preload: Vec<String>,
    pub ld_library_path: Vec<String>,
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

//! `memory`: can this node hold the Spark executors it is meant to run? MemTotal, MemAvailable,
//! swap, huge page pools, the memory cgroup (v2 or v1) with its limit, working set and OOM
//! events, PSI memory pressure, kernel OOM kills, and the Spark executor plan (from
//! `spark-defaults.conf` and/or explicit keys) against what is usable.
//!
//! Layout: settings; pure parsers (`&str -> Result<_, ParseError>`); the Spark plan (pure);
//! `evaluate` (pure: observation + settings -> findings and derived numbers); `Memory::run`, the
//! only part that reads the host.

use crate::check::{CheckError, CheckSettings, NodeCheck, ParseError, Shared, Verdict};
use crate::checks::Registration;
use crate::host::Host;
use crate::procfs_text::{field, parse_count, parse_flat_keyed, parse_meminfo, parse_mountinfo};
use crate::spark_conf::{ByteUnit, SparkConf, parse_spark_defaults};
use proto::{Finding, Status};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

const MIB: u64 = 1024 * 1024;
const GIB: u64 = 1024 * MIB;

// ---------------------------------------------------------------------------------------------
// Settings
// ---------------------------------------------------------------------------------------------

/// `[memory]` settings.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    /// `spark-defaults.conf` on the host (a host path, read under `host_root`), for the executor
    /// plan (and scratch's default dirs).
    pub spark_defaults: Option<PathBuf>,
    /// The cgroup to inspect instead of the agent's own, as `/proc/<pid>/cgroup` names it on the
    /// host (e.g. `/kubepods.slice` or `/spark.slice`): a path inside the cgroup hierarchy, not a
    /// filesystem path. It is looked up under the cgroup2 mount (or the v1 `memory` mount).
    pub cgroup: Option<String>,
    /// Executors planned per node.
    pub executors_per_node: u32,
    /// Memory to keep free beside the executors (OS, node daemons, the agent, a page-cache
    /// floor). Heuristic; see the README.
    pub reserve_bytes: u64,
    /// Warn when PSI memory `some` avg60 (percent of wall time, 0-100) reaches this. Heuristic.
    pub psi_some_avg60_warn: f64,
    /// Warn when the cgroup working set reaches this fraction of its limit. Heuristic.
    pub cgroup_usage_warn_ratio: f64,
    /// Fail when the cgroup working set reaches this fraction of its limit. Heuristic.
    pub cgroup_usage_fail_ratio: f64,
    /// Explicit Spark keys (`"spark.executor.memory" = "8g"`); they override `spark_defaults`.
    pub spark: BTreeMap<String, toml::Value>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            spark_defaults: None,
            cgroup: None,
            executors_per_node: 1,
            reserve_bytes: 2 * GIB,
            psi_some_avg60_warn: 10.0,
            cgroup_usage_warn_ratio: 0.85,
            cgroup_usage_fail_ratio: 0.95,
            spark: BTreeMap::new(),
        }
    }
}

/// The Spark keys the plan reads, with the unit Spark assumes for a bare number (`None`: not a
/// size).
pub const SPARK_KEYS: [(&str, Option<ByteUnit>); 9] = [
    (EXECUTOR_MEMORY, Some(ByteUnit::MiB)),
    (EXECUTOR_MEMORY_OVERHEAD, Some(ByteUnit::MiB)),
    (EXECUTOR_MEMORY_OVERHEAD_FACTOR, None),
    (EXECUTOR_MIN_MEMORY_OVERHEAD, Some(ByteUnit::MiB)),
    (OFFHEAP_ENABLED, None),
    (OFFHEAP_SIZE, Some(ByteUnit::Byte)),
    (PYSPARK_MEMORY, Some(ByteUnit::MiB)),
    (PLUGINS, None),
    (GLUTEN_DYNAMIC_OFFHEAP_SIZING, None),
];

pub const EXECUTOR_MEMORY: &str = "spark.executor.memory";
pub const EXECUTOR_MEMORY_OVERHEAD: &str = "spark.executor.memoryOverhead";
pub const EXECUTOR_MEMORY_OVERHEAD_FACTOR: &str = "spark.executor.memoryOverheadFactor";
pub const EXECUTOR_MIN_MEMORY_OVERHEAD: &str = "spark.executor.minMemoryOverhead";
pub const OFFHEAP_ENABLED: &str = "spark.memory.offHeap.enabled";
pub const OFFHEAP_SIZE: &str = "spark.memory.offHeap.size";
pub const PYSPARK_MEMORY: &str = "spark.executor.pyspark.memory";
pub const PLUGINS: &str = "spark.plugins";
pub const GLUTEN_DYNAMIC_OFFHEAP_SIZING: &str =
    "spark.gluten.memory.dynamic.offHeap.sizing.enabled";
/// Gluten's Spark plugin class, and its name before Gluten 1.2 (the `io.glutenproject` package).
pub const GLUTEN_PLUGIN_CLASSES: [&str; 2] = [
    "org.apache.gluten.GlutenPlugin",
    "io.glutenproject.GlutenPlugin",
];
/// Gluten's minimum off-heap size (`minOffHeapSize = "1MB"` in GlutenPlugin.scala).
pub const GLUTEN_MIN_OFFHEAP_BYTES: u64 = 1 << 20;

impl Settings {
    /// The explicit `[memory.spark]` keys as Spark would see them (strings).
    pub fn explicit_spark(&self) -> Result<SparkConf, String> {
        let mut conf = SparkConf::default();
        for (k, v) in &self.spark {
            let s = match v {
                toml::Value::String(s) => s.clone(),
                toml::Value::Integer(i) => i.to_string(),
                toml::Value::Float(f) => f.to_string(),
                toml::Value::Boolean(b) => b.to_string(),
                other => {
                    return Err(format!(
                        "`spark.\"{k}\"`: expected a string, number or boolean, got {other}"
                    ));
                }
            };
            conf.set(k, s);
        }
        Ok(conf)
    }

    /// Whether a Spark plan is configured at all.
    pub fn has_plan(&self) -> bool {
        self.spark_defaults.is_some() || !self.spark.is_empty()
    }
}

impl CheckSettings for Settings {
    fn validate(&self) -> Result<(), String> {
        if self.executors_per_node == 0 {
            return Err("`executors_per_node` must be at least 1, got 0".into());
        }
        if let Some(c) = &self.cgroup
            && !c.starts_with('/')
        {
            return Err(format!(
                "`cgroup` must be a cgroup path starting with '/' (as in /proc/<pid>/cgroup), got {c:?}"
            ));
        }
        if !(self.psi_some_avg60_warn.is_finite()
            && self.psi_some_avg60_warn > 0.0
            && self.psi_some_avg60_warn <= 100.0)
        {
            return Err(format!(
                "`psi_some_avg60_warn` is a percentage in (0, 100], got {}",
                self.psi_some_avg60_warn
            ));
        }
        for (key, v) in [
            ("cgroup_usage_warn_ratio", self.cgroup_usage_warn_ratio),
            ("cgroup_usage_fail_ratio", self.cgroup_usage_fail_ratio),
        ] {
            if !(v.is_finite() && v > 0.0 && v <= 1.0) {
                return Err(format!("`{key}` must be in (0, 1], got {v}"));
            }
        }
        if self.cgroup_usage_warn_ratio >= self.cgroup_usage_fail_ratio {
            return Err(format!(
                "`cgroup_usage_warn_ratio` ({}) must be below `cgroup_usage_fail_ratio` ({})",
                self.cgroup_usage_warn_ratio, self.cgroup_usage_fail_ratio
            ));
        }
        for k in self.spark.keys() {
            if !SPARK_KEYS.iter().any(|(known, _)| known == k) {
                let known: Vec<&str> = SPARK_KEYS.iter().map(|(k, _)| *k).collect();
                return Err(format!(
                    "`spark.\"{k}\"` is not a key the memory plan reads (known: {})",
                    known.join(", ")
                ));
            }
        }
        let conf = self.explicit_spark()?;
        SparkPlan::from_conf(&conf, self.executors_per_node)
            .map(|_| ())
            .map_err(|e| format!("`spark`: {e}"))
    }
}

// ---------------------------------------------------------------------------------------------
// Parsers (pure)
// ---------------------------------------------------------------------------------------------

/// What the check uses from `/proc/meminfo`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Meminfo {
    pub total: Option<u64>,
    pub free: Option<u64>,
    /// `MemAvailable`, or the estimate when the kernel lacks it (< 3.14) or the file omits it.
    pub available: Option<u64>,
    pub available_estimated: bool,
    pub swap_total: Option<u64>,
    pub swap_free: Option<u64>,
    /// Bytes held in hugetlb pools, as the hugepages check's `pool_bytes` counts them (total
    /// pages, surplus included, x page size, all page sizes), and the meminfo line(s) it came
    /// from.
    pub hugepages_pool_bytes: Option<u64>,
    pub hugepages_pool_source: Option<&'static str>,
}

impl Meminfo {
    pub fn from_fields(fields: &[(String, u64)]) -> Meminfo {
        let get = |k: &str| field(fields, k);
        let (available, available_estimated) = match get("MemAvailable") {
            Some(a) => (Some(a), false),
            None => (estimate_available(&get), true),
        };
        // The pools come from this file rather than from `hugepages::read_pools` (sysfs): memory
        // reads /proc/meminfo anyway, so it costs no extra reads (read_pools walks every pool dir
        // globally and per NUMA node), and `Hugetlb` (Linux 4.16+) already sums every page size.
        // It is the same number as `hugepages::pool_bytes` over the global sysfs pools (the
        // kernel sums nr_hugepages x page size over its hstates for it). On older kernels the
        // fallback, like read_pools' own meminfo fallback, sees only the default page size.
        let hp = crate::procfs_text::meminfo_hugepages(fields);
        let (hugepages_pool_bytes, hugepages_pool_source) = match hp.hugetlb_bytes {
            Some(b) => (Some(b), Some("Hugetlb")),
            None => match (hp.hugepages_total, hp.hugepagesize_bytes) {
                (Some(n), Some(size)) => (
                    Some(n.saturating_mul(size)),
                    Some("HugePages_Total x Hugepagesize"),
                ),
                _ => (None, None),
            },
        };
        Meminfo {
            total: get("MemTotal"),
            free: get("MemFree"),
            available,
            available_estimated: available_estimated && available.is_some(),
            swap_total: get("SwapTotal"),
            swap_free: get("SwapFree"),
            hugepages_pool_bytes,
            hugepages_pool_source,
        }
    }
}

/// `MemFree + Active(file) + Inactive(file) + SReclaimable`: the kernel's `si_mem_available()`
/// with the low watermarks and `totalreserve_pages` taken as zero (they need `/proc/zoneinfo`),
/// so it overestimates a little: an upper bound of what can be had without swapping.
fn estimate_available(get: &impl Fn(&str) -> Option<u64>) -> Option<u64> {
    let free = get("MemFree")?;
    let active = get("Active(file)")?;
    let inactive = get("Inactive(file)")?;
    let reclaimable = get("SReclaimable").unwrap_or(0);
    Some(
        free.saturating_add(active)
            .saturating_add(inactive)
            .saturating_add(reclaimable),
    )
}

/// `/proc/vmstat` `oom_kill` (kernel >= 4.13); `None` when the kernel has no such line.
pub fn parse_vmstat_oom_kill(text: &str) -> Result<Option<u64>, ParseError> {
    Ok(field(&parse_flat_keyed(text)?, "oom_kill"))
}

/// A cgroup memory limit: `max` (v2) or a v1 value at or above 2^62 (the kernel prints
/// `PAGE_COUNTER_MAX` pages, 9223372036854771712 with 4 KiB pages) is `None`, unlimited.
pub fn parse_cgroup_limit(text: &str) -> Result<Option<u64>, ParseError> {
    let v = text.trim();
    if v == "max" {
        return Ok(None);
    }
    let n: u64 = v
        .parse()
        .map_err(|_| ParseError::at_line(1, format!("{v:?} is neither a number nor \"max\"")))?;
    Ok(if n >= 1 << 62 { None } else { Some(n) })
}

/// The memory cgroup of a process, from `/proc/<pid>/cgroup`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProcCgroup {
    /// The v2 (unified) path, from the `0::/path` line.
    pub unified: Option<String>,
    /// The v1 path of the hierarchy that has the `memory` controller.
    pub v1_memory: Option<String>,
}

/// Parses `/proc/<pid>/cgroup`: `hierarchy-id:controllers:path` lines; v2 is `0::/path`, v1
/// `N:memory:/path` (controllers comma-separated, e.g. `4:memory,hugetlb:/x`); hybrid hosts have
/// both. The path may itself contain ':'.
pub fn parse_proc_cgroup(text: &str) -> Result<ProcCgroup, ParseError> {
    let mut out = ProcCgroup::default();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let mut parts = line.splitn(3, ':');
        let (Some(id), Some(controllers), Some(path)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(ParseError::at_line(
                i + 1,
                format!("expected id:controllers:path, got {line:?}"),
            ));
        };
        if id.parse::<u32>().is_err() {
            return Err(ParseError::at_line(
                i + 1,
                format!("hierarchy id {id:?} is not a number"),
            ));
        }
        if id == "0" && controllers.is_empty() {
            out.unified = Some(path.to_string());
        } else if controllers.split(',').any(|c| c == "memory") {
            out.v1_memory = Some(path.to_string());
        }
    }
    Ok(out)
}

/// A cgroup filesystem mount, from mountinfo.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CgroupMount {
    /// 2 for cgroup2, 1 for a v1 hierarchy with the `memory` controller.
    pub version: u8,
    /// The mount's root inside the hierarchy (field 4; not `/` inside a cgroup namespace).
    pub root: String,
    /// Where it is mounted (field 5).
    pub mount_point: String,
}

/// The cgroup2 mounts and the v1 `memory` mounts in a mountinfo file, in file order (parsed with
/// the shared [`parse_mountinfo`]: octal escapes undone, the double-space quirk tolerated).
pub fn parse_cgroup_mounts(text: &str) -> Result<Vec<CgroupMount>, ParseError> {
    Ok(parse_mountinfo(text)?
        .into_iter()
        .filter_map(|m| {
            let version = match m.fs_type.as_str() {
                "cgroup2" => 2,
                "cgroup" if m.super_options.iter().any(|o| o == "memory") => 1,
                _ => return None,
            };
            Some(CgroupMount {
                version,
                root: m.root,
                mount_point: m.mount_point,
            })
        })
        .collect())
}

/// One PSI line: the share of wall time (percent, 0-100) some or all tasks stalled.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct PsiLine {
    pub avg10: f64,
    pub avg60: f64,
    pub avg300: f64,
    /// Total stall time, microseconds.
    pub total_us: u64,
}

/// A PSI file (`/proc/pressure/memory`, cgroup `memory.pressure`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Psi {
    pub some: Option<PsiLine>,
    pub full: Option<PsiLine>,
}

/// Parses a PSI file: `some avg10=0.00 avg60=0.00 avg300=0.00 total=0` and a `full` line. Either
/// may be absent (`/proc/pressure/cpu` had no `full` before 5.13; `irq` has only `full`); lines
/// of another kind are skipped, fields in any order, unknown fields ignored.
pub fn parse_psi(text: &str) -> Result<Psi, ParseError> {
    let mut psi = Psi::default();
    for (i, line) in text.lines().enumerate() {
        let mut words = line.split_whitespace();
        let slot = match words.next() {
            None => continue,
            Some("some") => &mut psi.some,
            Some("full") => &mut psi.full,
            Some(_) => continue,
        };
        let (mut avg10, mut avg60, mut avg300, mut total) = (None, None, None, None);
        for w in words {
            let (k, v) = w.split_once('=').ok_or_else(|| {
                ParseError::at_line(i + 1, format!("expected key=value, got {w:?}"))
            })?;
            let bad = || ParseError::at_line(i + 1, format!("{k}: {v:?} is not a number"));
            match k {
                "avg10" | "avg60" | "avg300" => {
                    let x: f64 = v.parse().map_err(|_| bad())?;
                    if !(x.is_finite() && (0.0..=100.0).contains(&x)) {
                        return Err(ParseError::at_line(
                            i + 1,
                            format!("{k}: {v} is not a percentage"),
                        ));
                    }
                    match k {
                        "avg10" => avg10 = Some(x),
                        "avg60" => avg60 = Some(x),
                        _ => avg300 = Some(x),
                    }
                }
                "total" => total = Some(v.parse::<u64>().map_err(|_| bad())?),
                _ => {}
            }
        }
        match (avg10, avg60, avg300, total) {
            (Some(avg10), Some(avg60), Some(avg300), Some(total_us)) => {
                *slot = Some(PsiLine {
                    avg10,
                    avg60,
                    avg300,
                    total_us,
                })
            }
            _ => {
                return Err(ParseError::at_line(
                    i + 1,
                    "expected avg10=, avg60=, avg300= and total=",
                ));
            }
        }
    }
    Ok(psi)
}

// ---------------------------------------------------------------------------------------------
// Spark configuration
// ---------------------------------------------------------------------------------------------

/// The executor container Spark will ask for, per executor and per node, all in whole MiB as
/// Spark computes it (`ResourceProfile.calculateOverHeadMemory` and friends).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SparkPlan {
    pub executor_memory_bytes: u64,
    pub memory_overhead_bytes: u64,
    /// `set` (`spark.executor.memoryOverhead`), or `default` (Spark's factor, raised to Gluten's
    /// recommendation).
    pub memory_overhead_source: &'static str,
    /// `spark.memory.offHeap.size` when `spark.memory.offHeap.enabled`, else 0.
    pub offheap_bytes: u64,
    pub pyspark_memory_bytes: u64,
    /// Gluten's recommended overhead: max(0.3 x off-heap, 384 MiB).
    pub gluten_recommended_overhead_bytes: u64,
    pub per_executor_bytes: u64,
    pub executors_per_node: u32,
    pub planned_bytes: u64,
    /// `spark.plugins` names Gluten's plugin (`org.apache.gluten.GlutenPlugin`, or the pre-1.2
    /// `io.glutenproject.GlutenPlugin`).
    pub gluten_plugin: bool,
    /// `spark.memory.offHeap.enabled` as set (default false).
    pub offheap_enabled: bool,
    /// `spark.memory.offHeap.size` as set (default 0), whether or not off-heap is enabled.
    pub offheap_size_bytes: u64,
    /// `spark.gluten.memory.dynamic.offHeap.sizing.enabled` (default false).
    pub gluten_dynamic_offheap_sizing: bool,
}

/// Spark's `spark.executor.memory` default.
const DEFAULT_EXECUTOR_MEMORY_MIB: u64 = 1024;
/// Spark's overhead factor default (`spark.executor.memoryOverheadFactor`).
const DEFAULT_OVERHEAD_FACTOR: f64 = 0.10;
/// Spark's minimum overhead (`spark.executor.minMemoryOverhead`, 384 MiB), also Gluten's floor.
const MIN_OVERHEAD_MIB: u64 = 384;
/// Gluten's overhead rule: at least this share of off-heap (VeloxListenerApi).
const GLUTEN_OVERHEAD_OFFHEAP_SHARE: f64 = 0.3;

impl SparkPlan {
    pub fn from_conf(conf: &SparkConf, executors_per_node: u32) -> Result<SparkPlan, ParseError> {
        let mib = |b: u64| b / MIB;
        let executor_mib = conf
            .size(EXECUTOR_MEMORY, ByteUnit::MiB)?
            .map(mib)
            .unwrap_or(DEFAULT_EXECUTOR_MEMORY_MIB);
        let offheap_enabled = conf.bool(OFFHEAP_ENABLED)?.unwrap_or(false);
        let gluten_dynamic_offheap_sizing =
            conf.bool(GLUTEN_DYNAMIC_OFFHEAP_SIZING)?.unwrap_or(false);
        let gluten_plugin = conf.get(PLUGINS).is_some_and(|v| {
            v.split(',')
                .any(|c| GLUTEN_PLUGIN_CLASSES.contains(&c.trim()))
        });
        let offheap_size = conf.size(OFFHEAP_SIZE, ByteUnit::Byte)?.unwrap_or(0);
        let offheap_mib = if offheap_enabled {
            mib(offheap_size)
        } else {
            0
        };
        let pyspark_mib = conf
            .size(PYSPARK_MEMORY, ByteUnit::MiB)?
            .map(mib)
            .unwrap_or(0);
        let factor = conf
            .f64(EXECUTOR_MEMORY_OVERHEAD_FACTOR)?
            .unwrap_or(DEFAULT_OVERHEAD_FACTOR);
        if factor <= 0.0 {
            return Err(ParseError(format!(
                "`{EXECUTOR_MEMORY_OVERHEAD_FACTOR}`: must be positive, got {factor}"
            )));
        }
        let min_overhead_mib = conf
            .size(EXECUTOR_MIN_MEMORY_OVERHEAD, ByteUnit::MiB)?
            .map(mib)
            .unwrap_or(MIN_OVERHEAD_MIB);
        let gluten_mib =
            ((GLUTEN_OVERHEAD_OFFHEAP_SHARE * offheap_mib as f64) as u64).max(MIN_OVERHEAD_MIB);
        let (overhead_mib, source) = match conf.size(EXECUTOR_MEMORY_OVERHEAD, ByteUnit::MiB)? {
            Some(b) => (mib(b), "set"),
            None => {
                let spark = ((factor * executor_mib as f64) as u64).max(min_overhead_mib);
                (spark.max(gluten_mib), "default")
            }
        };
        let per_executor_mib = [executor_mib, overhead_mib, offheap_mib, pyspark_mib]
            .iter()
            .try_fold(0u64, |a, b| a.checked_add(*b))
            .ok_or_else(|| ParseError::new("the executor sizes add up past 2^64 MiB"))?;
        let too_big = || ParseError::new("the planned memory overflows 64 bits");
        let per_executor_bytes = per_executor_mib.checked_mul(MIB).ok_or_else(too_big)?;
        let planned_bytes = per_executor_bytes
            .checked_mul(u64::from(executors_per_node))
            .ok_or_else(too_big)?;
        Ok(SparkPlan {
            executor_memory_bytes: executor_mib * MIB,
            memory_overhead_bytes: overhead_mib * MIB,
            memory_overhead_source: source,
            offheap_bytes: offheap_mib * MIB,
            pyspark_memory_bytes: pyspark_mib * MIB,
            gluten_recommended_overhead_bytes: gluten_mib * MIB,
            per_executor_bytes,
            executors_per_node,
            planned_bytes,
            gluten_plugin,
            offheap_enabled,
            offheap_size_bytes: offheap_size,
            gluten_dynamic_offheap_sizing,
        })
    }

    /// Gluten's startup rule (GlutenPlugin.scala): unless dynamic off-heap sizing is on,
    /// off-heap must be enabled with at least 1 MiB, or the plugin throws "Must set
    /// 'spark.memory.offHeap.enabled' to true ...". The violation, as a sentence; `None` when
    /// the rule holds or the conf does not load Gluten's plugin.
    pub fn gluten_offheap_violation(&self) -> Option<String> {
        if !self.gluten_plugin || self.gluten_dynamic_offheap_sizing {
            return None;
        }
        let cause = if !self.offheap_enabled {
            format!("`{OFFHEAP_ENABLED}` is false (or unset)")
        } else if self.offheap_size_bytes < GLUTEN_MIN_OFFHEAP_BYTES {
            format!(
                "`{OFFHEAP_SIZE}` is {} bytes, below 1 MiB",
                self.offheap_size_bytes
            )
        } else {
            return None;
        };
        Some(format!(
            "{cause} while `{PLUGINS}` loads GlutenPlugin: Gluten throws at startup \
             (\"Must set '{OFFHEAP_ENABLED}' to true and set '{OFFHEAP_SIZE}' to be greater \
             than 1MB\"; GlutenPlugin.scala, node-requirements §6) unless \
             `{GLUTEN_DYNAMIC_OFFHEAP_SIZING}` is true"
        ))
    }
}

// ---------------------------------------------------------------------------------------------
// Evaluation (pure)
// ---------------------------------------------------------------------------------------------

/// The cgroup as read.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct CgroupFacts {
    pub version: u8,
    /// The cgroup path inside the hierarchy, e.g. `/kubepods.slice/...`.
    pub path: String,
    /// `/proc/self/cgroup` or `config`.
    pub source: &'static str,
    /// The directory on the host, e.g. `/sys/fs/cgroup/kubepods.slice/...`.
    pub dir: String,
    pub exists: bool,
    /// The tightest limit of this cgroup and its ancestors; `None` when unlimited.
    pub limit_bytes: Option<u64>,
    /// The file the limit came from (an ancestor's when that one is tighter).
    pub limit_file: Option<String>,
    pub usage_bytes: Option<u64>,
    /// `inactive_file` (v2) / `total_inactive_file` (v1) from `memory.stat`.
    pub inactive_file_bytes: Option<u64>,
    /// Usage minus inactive file pages: kubelet's and cAdvisor's working set.
    pub working_set_bytes: Option<u64>,
    /// Working set over limit.
    pub usage_ratio: Option<f64>,
    /// `memory.events` (v2): times the limit was hit, OOMs, OOM kills.
    pub events_max: Option<u64>,
    pub events_oom: Option<u64>,
    /// `memory.events` `oom_kill` (v2) or `memory.oom_control` `oom_kill` (v1, kernel >= 4.13).
    pub oom_kill: Option<u64>,
    pub oom_kill_at_start: Option<u64>,
    /// The cgroup's own `memory.pressure` (v2).
    pub psi: Option<Psi>,
}

/// What one read observed. Serialised in the report's layout ([`FactsReport`]), with the numbers
/// derived from it (usable, planned, headroom).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Facts {
    pub meminfo: Meminfo,
    pub cgroup: Option<CgroupFacts>,
    pub psi: Option<Psi>,
    pub oom_kill: Option<u64>,
    pub oom_kill_at_start: Option<u64>,
    pub plan: Option<SparkPlan>,
    /// `reserve_bytes` of the settings read with (the report shows it beside the headroom).
    pub reserve_bytes: u64,
}

impl Facts {
    /// Usable memory: the tighter of the cgroup limit and MemTotal minus the huge page pools,
    /// and which of the two it is.
    pub fn usable(&self) -> (Option<u64>, Option<&'static str>) {
        let host_usable = self
            .meminfo
            .total
            .map(|t| t.saturating_sub(self.meminfo.hugepages_pool_bytes.unwrap_or(0)));
        let cg_limit = self.cgroup.as_ref().and_then(|c| c.limit_bytes);
        match (cg_limit, host_usable) {
            (Some(l), Some(h)) if l < h => (Some(l), Some("cgroup limit")),
            (_, Some(h)) => (Some(h), Some("MemTotal minus huge page pools")),
            (Some(l), None) => (Some(l), Some("cgroup limit")),
            (None, None) => (None, None),
        }
    }

    /// The definition: headroom = usable - planned - reserve (negative: overcommitted).
    pub fn headroom(&self, reserve_bytes: u64) -> Option<i128> {
        match (&self.plan, self.usable().0) {
            (Some(p), Some(u)) => {
                Some(i128::from(u) - i128::from(p.planned_bytes) - i128::from(reserve_bytes))
            }
            _ => None,
        }
    }

    /// The facts in the report's layout.
    pub fn report(&self) -> FactsReport {
        let m = &self.meminfo;
        let (usable_bytes, usable_source) = self.usable();
        FactsReport {
            mem_total_bytes: m.total,
            mem_free_bytes: m.free,
            mem_available_bytes: m.available,
            mem_available_estimated: m.available_estimated,
            swap_total_bytes: m.swap_total,
            swap_free_bytes: m.swap_free,
            hugepages_pool_bytes: m.hugepages_pool_bytes,
            hugepages_pool_source: m.hugepages_pool_source,
            cgroup_limit_bytes: self.cgroup.as_ref().and_then(|c| c.limit_bytes),
            cgroup: self.cgroup.clone(),
            psi_memory: self.psi,
            oom_kill: self.oom_kill,
            oom_kill_at_start: self.oom_kill_at_start,
            planned_bytes: self.plan.as_ref().map(|p| p.planned_bytes),
            spark_plan: self.plan.clone(),
            usable_bytes,
            usable_source,
            reserve_bytes: self.reserve_bytes,
            headroom_bytes: self.headroom(self.reserve_bytes),
        }
    }
}

/// The facts as the report shows them (see [`Facts::report`]).
#[derive(Serialize, Debug, Default, PartialEq)]
pub struct FactsReport {
    pub mem_total_bytes: Option<u64>,
    pub mem_free_bytes: Option<u64>,
    pub mem_available_bytes: Option<u64>,
    /// True when `MemAvailable` is missing and the number is our estimate.
    pub mem_available_estimated: bool,
    pub swap_total_bytes: Option<u64>,
    pub swap_free_bytes: Option<u64>,
    pub hugepages_pool_bytes: Option<u64>,
    pub hugepages_pool_source: Option<&'static str>,
    pub cgroup: Option<CgroupFacts>,
    pub psi_memory: Option<Psi>,
    pub oom_kill: Option<u64>,
    pub oom_kill_at_start: Option<u64>,
    pub spark_plan: Option<SparkPlan>,
    pub cgroup_limit_bytes: Option<u64>,
    pub usable_bytes: Option<u64>,
    pub usable_source: Option<&'static str>,
    pub planned_bytes: Option<u64>,
    pub reserve_bytes: u64,
    pub headroom_bytes: Option<i128>,
}

impl Serialize for Facts {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.report().serialize(s)
    }
}

/// Sizes in sentences: GiB with one decimal, MiB below 1 GiB.
pub fn human(bytes: u64) -> String {
    if bytes >= GIB {
        format!("{:.1} GiB", bytes as f64 / GIB as f64)
    } else {
        format!("{} MiB", bytes / MIB)
    }
}

fn human_signed(b: i128) -> String {
    if b < 0 {
        format!("-{}", human(b.unsigned_abs() as u64))
    } else {
        human(b as u64)
    }
}

/// The findings, the ok sentence and the gauges that `o` means under `s` (pure).
pub fn evaluate(o: &Facts, s: &Settings) -> Verdict {
    let mut ev = Verdict::default();
    let mut f = |status: Status, msg: String| ev.findings.push(Finding::new(status, msg));

    let (usable, usable_source) = o.usable();
    let cg_limit = o.cgroup.as_ref().and_then(|c| c.limit_bytes);

    // The Spark plan against it.
    let mut summary = Vec::new();
    match (&o.plan, usable) {
        (None, _) => summary.push("no Spark plan configured".to_string()),
        (Some(p), None) => f(
            Status::Warn,
            format!(
                "planned {} x {} = {}, but usable memory is unknown (no MemTotal)",
                p.executors_per_node,
                human(p.per_executor_bytes),
                human(p.planned_bytes)
            ),
        ),
        (Some(p), Some(u)) => {
            // The definition: headroom = usable - planned - reserve.
            let reserve = i128::from(s.reserve_bytes);
            let headroom = i128::from(u) - i128::from(p.planned_bytes) - reserve;
            let src = usable_source.unwrap_or("");
            let planned = format!(
                "planned {} x {} = {}",
                p.executors_per_node,
                human(p.per_executor_bytes),
                human(p.planned_bytes)
            );
            if headroom < 0 {
                f(
                    Status::Fail,
                    format!(
                        "{planned} plus `reserve_bytes` {} exceeds usable {} ({src}) by {}",
                        human(s.reserve_bytes),
                        human(u),
                        human(headroom.unsigned_abs() as u64)
                    ),
                );
            } else if headroom < reserve {
                f(
                    Status::Warn,
                    format!(
                        "{planned} plus `reserve_bytes` {} leaves headroom {} of usable {} ({src}), below `reserve_bytes`",
                        human(s.reserve_bytes),
                        human(headroom as u64),
                        human(u),
                    ),
                );
            }
            summary.push(format!(
                "{planned} plus reserve {} fits usable {} ({src}) with headroom {}",
                human(s.reserve_bytes),
                human(u),
                human_signed(headroom)
            ));
        }
    }
    if let Some(msg) = o
        .plan
        .as_ref()
        .and_then(SparkPlan::gluten_offheap_violation)
    {
        f(Status::Fail, msg);
    }
    if let Some(p) = &o.plan
        && p.memory_overhead_bytes < p.gluten_recommended_overhead_bytes
    {
        f(
            Status::Warn,
            format!(
                "`{EXECUTOR_MEMORY_OVERHEAD}` {} is below Gluten's recommended {} \
                 (max(0.3 x off-heap {}, 384 MiB)); executors risk being killed for \
                 exceeding memory limits",
                human(p.memory_overhead_bytes),
                human(p.gluten_recommended_overhead_bytes),
                human(p.offheap_bytes)
            ),
        );
    }

    // The cgroup.
    if let Some(c) = &o.cgroup {
        if !c.exists {
            if c.source == "config" {
                f(
                    Status::Warn,
                    format!("configured `cgroup` {} not found at {}", c.path, c.dir),
                );
            }
        } else if let (Some(ratio), Some(limit), Some(ws)) =
            (c.usage_ratio, c.limit_bytes, c.working_set_bytes)
        {
            let msg = |level: f64, key: &str| {
                format!(
                    "cgroup {} working set {} is {:.0}% of its limit {}, at or above `{key}` {:.0}%",
                    c.path,
                    human(ws),
                    ratio * 100.0,
                    human(limit),
                    level * 100.0
                )
            };
            if ratio >= s.cgroup_usage_fail_ratio {
                f(
                    Status::Fail,
                    msg(s.cgroup_usage_fail_ratio, "cgroup_usage_fail_ratio"),
                );
            } else if ratio >= s.cgroup_usage_warn_ratio {
                f(
                    Status::Warn,
                    msg(s.cgroup_usage_warn_ratio, "cgroup_usage_warn_ratio"),
                );
            }
        }
        if let (Some(now), Some(start)) = (c.oom_kill, c.oom_kill_at_start)
            && now > start
        {
            f(
                Status::Warn,
                format!(
                    "{} OOM kill(s) in cgroup {} since the agent started (oom_kill {start} -> {now})",
                    now - start,
                    c.path
                ),
            );
        }
        if let Some(some) = c.psi.and_then(|p| p.some)
            && some.avg60 >= s.psi_some_avg60_warn
        {
            f(
                Status::Warn,
                format!(
                    "cgroup {} memory pressure: some avg60 {:.2}% at or above `psi_some_avg60_warn` {}%",
                    c.path, some.avg60, s.psi_some_avg60_warn
                ),
            );
        }
    }

    // Host-wide signals.
    if let Some(some) = o.psi.and_then(|p| p.some)
        && some.avg60 >= s.psi_some_avg60_warn
    {
        f(
            Status::Warn,
            format!(
                "memory pressure (/proc/pressure/memory): some avg60 {:.2}% at or above \
                 `psi_some_avg60_warn` {}%",
                some.avg60, s.psi_some_avg60_warn
            ),
        );
    }
    if let (Some(now), Some(start)) = (o.oom_kill, o.oom_kill_at_start)
        && now > start
    {
        f(
            Status::Warn,
            format!(
                "{} OOM kill(s) on the host since the agent started (/proc/vmstat oom_kill {start} -> {now})",
                now - start
            ),
        );
    }

    // The ok sentence.
    let mut host = Vec::new();
    if let Some(t) = o.meminfo.total {
        host.push(format!("MemTotal {}", human(t)));
    }
    if let Some(a) = o.meminfo.available {
        let est = if o.meminfo.available_estimated {
            " (estimated)"
        } else {
            ""
        };
        host.push(format!("MemAvailable {}{est}", human(a)));
    }
    if let Some(l) = cg_limit {
        host.push(format!("cgroup limit {}", human(l)));
    }
    summary.push(host.join(", "));
    ev.ok_summary = Some(
        summary
            .into_iter()
            .filter(|s| !s.is_empty())
            .collect::<Vec<_>>()
            .join("; "),
    );
    gauges(&mut ev, &o.report());
    ev
}

// ---------------------------------------------------------------------------------------------
// The check
// ---------------------------------------------------------------------------------------------

/// The OOM kill counters first seen, so an increase since the agent started can be told. The
/// check object lives as long as the agent, so this is "since start".
#[derive(Debug, Default)]
struct Baselines {
    vmstat_oom_kill: Option<u64>,
    /// Keyed by cgroup directory: a different cgroup starts a new baseline.
    cgroup_oom_kill: Option<(String, u64)>,
}

pub struct Memory {
    settings: Settings,
    baselines: Mutex<Baselines>,
}

/// This check in the registry (`checks::ALL`).
pub const REGISTRATION: Registration = Registration::of::<Memory>();

/// Where the memory cgroup is, as found.
struct Located {
    version: u8,
    path: String,
    source: &'static str,
    /// Host path of the mount point, and of the cgroup directory.
    mount_point: PathBuf,
    dir: PathBuf,
}

/// Joins a cgroup path to its mount: the part below the mount's root, under the mount point.
fn cgroup_dir(mount: &CgroupMount, path: &str) -> PathBuf {
    let root = mount.root.trim_end_matches('/');
    let rel = match path.strip_prefix(root) {
        Some(r) if root.is_empty() || r.is_empty() || r.starts_with('/') => r,
        _ => path,
    };
    Path::new(&mount.mount_point).join(rel.trim_start_matches('/'))
}

fn default_mount(version: u8) -> CgroupMount {
    CgroupMount {
        version,
        root: "/".into(),
        mount_point: if version == 2 {
            "/sys/fs/cgroup".into()
        } else {
            "/sys/fs/cgroup/memory".into()
        },
    }
}

impl Memory {
    fn locate(&self, host: &Host) -> Result<Option<Located>, CheckError> {
        let mounts = host
            .parse_optional("/proc/self/mountinfo", parse_cgroup_mounts)?
            .unwrap_or_default();
        let v2 = mounts.iter().find(|m| m.version == 2).cloned();
        let v1 = mounts.iter().find(|m| m.version == 1).cloned();
        let pick = |version: u8, path: String, source| {
            let mount = match version {
                2 => v2.clone().unwrap_or_else(|| default_mount(2)),
                _ => v1.clone().unwrap_or_else(|| default_mount(1)),
            };
            Located {
                version,
                dir: cgroup_dir(&mount, &path),
                mount_point: PathBuf::from(&mount.mount_point),
                path,
                source,
            }
        };
        if let Some(path) = &self.settings.cgroup {
            // The memory controller is on v1 when a v1 memory hierarchy is mounted (hybrid).
            let version = if v1.is_some() { 1 } else { 2 };
            return Ok(Some(pick(version, path.clone(), "config")));
        }
        let Some(own) = host.parse_optional("/proc/self/cgroup", parse_proc_cgroup)? else {
            return Ok(None);
        };
        Ok(match (own.v1_memory, own.unified) {
            (Some(p), _) => Some(pick(1, p, "/proc/self/cgroup")),
            (None, Some(p)) => Some(pick(2, p, "/proc/self/cgroup")),
            (None, None) => None,
        })
    }

    fn read_cgroup(&self, host: &Host, at: Located) -> Result<CgroupFacts, CheckError> {
        let file = |name: &str| at.dir.join(name);
        let mut c = CgroupFacts {
            version: at.version,
            path: at.path.clone(),
            source: at.source,
            dir: at.dir.display().to_string(),
            exists: host.path(&at.dir).is_dir(),
            ..CgroupFacts::default()
        };
        if !c.exists {
            return Ok(c);
        }
        let (limit_name, usage_name, inactive_key) = if at.version == 2 {
            ("memory.max", "memory.current", "inactive_file")
        } else {
            (
                "memory.limit_in_bytes",
                "memory.usage_in_bytes",
                "total_inactive_file",
            )
        };
        // The tightest limit on the way up to the mount point.
        let mut dir = at.dir.clone();
        loop {
            let p = dir.join(limit_name);
            if let Some(Some(l)) = host.parse_optional(&p, parse_cgroup_limit)?
                && c.limit_bytes.is_none_or(|cur| l < cur)
            {
                c.limit_bytes = Some(l);
                c.limit_file = Some(p.display().to_string());
            }
            if dir == at.mount_point || !dir.pop() || !dir.starts_with(&at.mount_point) {
                break;
            }
        }
        c.usage_bytes = host.parse_optional(file(usage_name), parse_count)?;
        let stat = host.parse_optional(file("memory.stat"), parse_flat_keyed)?;
        c.inactive_file_bytes = stat.as_deref().and_then(|s| field(s, inactive_key));
        c.working_set_bytes = c
            .usage_bytes
            .map(|u| u.saturating_sub(c.inactive_file_bytes.unwrap_or(0)));
        c.usage_ratio = match (c.working_set_bytes, c.limit_bytes) {
            (Some(ws), Some(l)) if l > 0 => Some(ws as f64 / l as f64),
            _ => None,
        };
        if at.version == 2 {
            if let Some(ev) = host.parse_optional(file("memory.events"), parse_flat_keyed)? {
                c.events_max = field(&ev, "max");
                c.events_oom = field(&ev, "oom");
                c.oom_kill = field(&ev, "oom_kill");
            }
            c.psi = host.parse_optional(file("memory.pressure"), parse_psi)?;
        } else if let Some(oc) =
            host.parse_optional(file("memory.oom_control"), parse_flat_keyed)?
        {
            c.oom_kill = field(&oc, "oom_kill");
        }
        Ok(c)
    }

    /// Records first-seen OOM kill counters; returns the baselines for this round.
    fn baselines(
        &self,
        vmstat: Option<u64>,
        cgroup: Option<(&str, u64)>,
    ) -> (Option<u64>, Option<u64>) {
        let mut b = self.baselines.lock().unwrap_or_else(|e| e.into_inner());
        let vm = match (vmstat, b.vmstat_oom_kill) {
            // A counter that went down is a new boot or a different file: start again.
            (Some(now), Some(start)) if now >= start => Some(start),
            (Some(now), _) => {
                b.vmstat_oom_kill = Some(now);
                Some(now)
            }
            (None, _) => None,
        };
        let cg = match (cgroup, &b.cgroup_oom_kill) {
            (Some((dir, now)), Some((d, start))) if d == dir && now >= *start => Some(*start),
            (Some((dir, now)), _) => {
                b.cgroup_oom_kill = Some((dir.to_string(), now));
                Some(now)
            }
            (None, _) => None,
        };
        (vm, cg)
    }

    fn plan(&self, host: &Host) -> Result<Option<SparkPlan>, CheckError> {
        if !self.settings.has_plan() {
            return Ok(None);
        }
        let mut conf = SparkConf::default();
        if let Some(path) = &self.settings.spark_defaults {
            conf = host.parse(path, |t| Ok(parse_spark_defaults(t)))?;
        }
        let explicit = self.settings.explicit_spark().map_err(CheckError::Other)?;
        conf.overlay(&explicit);
        SparkPlan::from_conf(&conf, self.settings.executors_per_node)
            .map(Some)
            .map_err(|e| match &self.settings.spark_defaults {
                Some(p) => CheckError::parse(&host.path(p), e),
                None => CheckError::Other(format!("[memory.spark]: {e}")),
            })
    }
}

impl NodeCheck for Memory {
    const NAME: &'static str = "memory";
    type Settings = Settings;
    type Facts = Facts;

    fn build(settings: Settings, _shared: &Shared) -> Self {
        Memory {
            settings,
            baselines: Mutex::new(Baselines::default()),
        }
    }

    fn settings(&self) -> &Settings {
        &self.settings
    }

    fn read(&self, host: &Host) -> Result<Facts, CheckError> {
        let fields = host.parse("/proc/meminfo", parse_meminfo)?;
        let meminfo = Meminfo::from_fields(&fields);
        let mut cgroup = match self.locate(host)? {
            Some(at) => Some(self.read_cgroup(host, at)?),
            None => None,
        };
        let psi = host.parse_optional("/proc/pressure/memory", parse_psi)?;
        let oom_kill = host
            .parse_optional("/proc/vmstat", parse_vmstat_oom_kill)?
            .flatten();
        let cg_oom = cgroup
            .as_ref()
            .and_then(|c| c.oom_kill.map(|n| (c.dir.as_str(), n)));
        let (oom_kill_at_start, cg_start) = self.baselines(oom_kill, cg_oom);
        if let Some(c) = cgroup.as_mut() {
            c.oom_kill_at_start = cg_start;
        }
        let plan = self.plan(host)?;
        Ok(Facts {
            meminfo,
            cgroup,
            psi,
            oom_kill,
            oom_kill_at_start,
            plan,
            reserve_bytes: self.settings.reserve_bytes,
        })
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

/// The key facts as gauges.
fn gauges(v_: &mut Verdict, facts: &FactsReport) {
    let mut gauge = |name, help, v: Option<f64>| {
        if let Some(v) = v {
            v_.gauge(name, help, &[], v);
        }
    };
    let f = |v: Option<u64>| v.map(|x| x as f64);
    gauge(
        "gluten_node_memory_total_bytes",
        "MemTotal of the host.",
        f(facts.mem_total_bytes),
    );
    gauge(
        "gluten_node_memory_available_bytes",
        "MemAvailable of the host (estimated on kernels without it).",
        f(facts.mem_available_bytes),
    );
    gauge(
        "gluten_node_memory_hugepages_pool_bytes",
        "Memory held in huge page pools.",
        f(facts.hugepages_pool_bytes),
    );
    gauge(
        "gluten_node_memory_cgroup_limit_bytes",
        "Memory limit of the inspected cgroup (tightest of it and its ancestors).",
        f(facts.cgroup_limit_bytes),
    );
    gauge(
        "gluten_node_memory_cgroup_usage_bytes",
        "Memory usage of the inspected cgroup (memory.current or memory.usage_in_bytes).",
        f(facts.cgroup.as_ref().and_then(|c| c.usage_bytes)),
    );
    gauge(
        "gluten_node_memory_usable_bytes",
        "Memory usable by executors: the tighter of the cgroup limit and MemTotal minus huge page pools.",
        f(facts.usable_bytes),
    );
    gauge(
        "gluten_node_memory_planned_bytes",
        "Memory the Spark plan asks for on this node (all executors).",
        f(facts.planned_bytes),
    );
    gauge(
        "gluten_node_memory_headroom_bytes",
        "Usable minus planned memory (negative: overcommitted).",
        facts.headroom_bytes.map(|h| h as f64),
    );
    gauge(
        "gluten_node_memory_psi_some_avg60_ratio",
        "PSI memory some avg60 of the host, as a 0-1 ratio.",
        facts
            .psi_memory
            .and_then(|p| p.some)
            .map(|s| s.avg60 / 100.0),
    );
    gauge(
        "gluten_node_memory_oom_kills",
        "The kernel's oom_kill counter (/proc/vmstat) since boot.",
        f(facts.oom_kill),
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// node-exporter-upstream's `/proc/meminfo` head (a 3.x-era file: no MemAvailable).
    const MEMINFO_NO_AVAILABLE: &str = "MemTotal:        3742148 kB\nMemFree:          225472 kB\n\
        Buffers:           22040 kB\nCached:           930888 kB\nActive(file):     213412 kB\n\
        Inactive(file):   145676 kB\nSwapTotal:       4194300 kB\nSwapFree:        3155360 kB\n\
        SReclaimable:      44772 kB\nHugePages_Total:       0\nHugepagesize:       2048 kB\n";

    fn get(fields: &[(String, u64)], k: &str) -> Option<u64> {
        field(fields, k)
    }

    #[test]
    fn meminfo_values_are_bytes_and_counts_stay_counts() {
        let f = parse_meminfo(MEMINFO_NO_AVAILABLE).unwrap();
        assert_eq!(get(&f, "MemTotal"), Some(3742148 * 1024));
        assert_eq!(get(&f, "HugePages_Total"), Some(0));
        assert_eq!(get(&f, "Active(file)"), Some(213412 * 1024));
    }

    #[test]
    fn meminfo_without_memavailable_is_estimated_and_labelled() {
        let m = Meminfo::from_fields(&parse_meminfo(MEMINFO_NO_AVAILABLE).unwrap());
        assert!(m.available_estimated);
        assert_eq!(m.available, Some((225472 + 213412 + 145676 + 44772) * 1024));
        let with = format!("{MEMINFO_NO_AVAILABLE}MemAvailable:    1000 kB\n");
        let m = Meminfo::from_fields(&parse_meminfo(&with).unwrap());
        assert_eq!(
            (m.available, m.available_estimated),
            (Some(1000 * 1024), false)
        );
        // Nothing to estimate from: unknown, not a guess.
        let m = Meminfo::from_fields(&parse_meminfo("MemTotal: 10 kB\n").unwrap());
        assert_eq!((m.available, m.available_estimated), (None, false));
    }

    #[test]
    fn meminfo_huge_page_pools_prefer_hugetlb_over_the_default_size_count() {
        let two_sizes =
            "HugePages_Total:       4\nHugepagesize:       2048 kB\nHugetlb:  2105344 kB\n";
        let m = Meminfo::from_fields(&parse_meminfo(two_sizes).unwrap());
        assert_eq!(m.hugepages_pool_bytes, Some(2105344 * 1024));
        assert_eq!(m.hugepages_pool_source, Some("Hugetlb"));
        let old = "HugePages_Total:       4\nHugepagesize:       2048 kB\n";
        let m = Meminfo::from_fields(&parse_meminfo(old).unwrap());
        assert_eq!(m.hugepages_pool_bytes, Some(4 * 2048 * 1024));
        assert_eq!(
            m.hugepages_pool_source,
            Some("HugePages_Total x Hugepagesize")
        );
    }

    #[test]
    fn vmstat_oom_kill_and_its_absence_before_4_13() {
        let text = "nr_free_pages 45123\npgfault 123456789\noom_kill 3\nthp_fault_alloc 0\n";
        assert_eq!(parse_vmstat_oom_kill(text).unwrap(), Some(3));
        assert_eq!(parse_vmstat_oom_kill("nr_free_pages 1\n").unwrap(), None);
        let e = parse_vmstat_oom_kill("nr_free_pages 1\noom_kill x\n").unwrap_err();
        assert!(e.0.starts_with("line 2: oom_kill"), "{e}");
    }

    #[test]
    fn cgroup_limits_max_and_v1_unlimited_are_none() {
        assert_eq!(parse_cgroup_limit("max\n").unwrap(), None);
        assert_eq!(parse_cgroup_limit("9223372036854771712\n").unwrap(), None);
        // 64 KiB pages round PAGE_COUNTER_MAX differently.
        assert_eq!(parse_cgroup_limit("9223372036854710272\n").unwrap(), None);
        assert_eq!(parse_cgroup_limit("8589934592\n").unwrap(), Some(8 * GIB));
        assert!(parse_cgroup_limit("-1\n").is_err());
        assert_eq!(parse_count("123456\n").unwrap(), 123456);
        assert!(parse_count("").is_err());
    }

    #[test]
    fn proc_cgroup_v2_nested() {
        let c = parse_proc_cgroup(
            "0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1.slice/cri-containerd-abc.scope\n",
        )
        .unwrap();
        assert_eq!(
            c.unified.as_deref(),
            Some(
                "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1.slice/cri-containerd-abc.scope"
            )
        );
        assert_eq!(c.v1_memory, None);
    }

    #[test]
    fn proc_cgroup_v1_and_hybrid() {
        let v1 = "12:hugetlb:/\n11:memory:/user.slice/user-1000.slice\n10:cpu,cpuacct:/user.slice\n1:name=systemd:/user.slice/user-1000.slice/session-2.scope\n";
        let c = parse_proc_cgroup(v1).unwrap();
        assert_eq!(c.v1_memory.as_deref(), Some("/user.slice/user-1000.slice"));
        assert_eq!(c.unified, None);
        let hybrid = format!("{v1}0::/user.slice/user-1000.slice/session-2.scope\n");
        let c = parse_proc_cgroup(&hybrid).unwrap();
        assert!(c.v1_memory.is_some() && c.unified.is_some());
        // Controllers listed together, and a path with ':' in it.
        let c = parse_proc_cgroup("4:memory,hugetlb:/a:b\n").unwrap();
        assert_eq!(c.v1_memory.as_deref(), Some("/a:b"));
    }

    #[test]
    fn proc_cgroup_errors_name_the_line() {
        let e = parse_proc_cgroup("0::/\nnonsense\n").unwrap_err();
        assert!(e.0.starts_with("line 2:"), "{e}");
        assert!(parse_proc_cgroup("x:memory:/\n").is_err());
    }

    #[test]
    fn mountinfo_finds_cgroup2_and_v1_memory() {
        // From node-exporter-upstream-variants/bindmount and a v1 host.
        let text = "29 1 259:0 / /host rw,seclabel,relatime,data=ordered shared:1 - ext4 /dev/nvme1n0 rw\n\
            33 24 0:28 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:9 - cgroup2 cgroup2 rw\n\
            36 33 0:26 / /sys/fs/cgroup/cpuset rw,nosuid,nodev,noexec,relatime shared:12 - cgroup cgroup rw,cpuset\n\
            40 31 0:35 / /sys/fs/cgroup/memory rw,nosuid,nodev,noexec,relatime shared:20 - cgroup cgroup rw,memory\n";
        let m = parse_cgroup_mounts(text).unwrap();
        assert_eq!(
            m,
            vec![
                CgroupMount {
                    version: 2,
                    root: "/".into(),
                    mount_point: "/sys/fs/cgroup".into()
                },
                CgroupMount {
                    version: 1,
                    root: "/".into(),
                    mount_point: "/sys/fs/cgroup/memory".into()
                },
            ]
        );
    }

    #[test]
    fn mountinfo_without_optional_fields_and_with_octal_escapes() {
        // No `shared:N` optional field; a mount point with a space (\040) in it.
        let text =
            "50 1 0:40 /kubepods.slice /sys/fs/cgroup\\040x rw - cgroup2 cgroup2 rw,nsdelegate\n";
        let m = parse_cgroup_mounts(text).unwrap();
        assert_eq!(m[0].root, "/kubepods.slice");
        assert_eq!(m[0].mount_point, "/sys/fs/cgroup x");
        // procfs-upstream's double space after the root.
        let m = parse_cgroup_mounts("1 1 0:5 /  /root rw,nosuid shared:8 - rootfs rootfs rw\n")
            .unwrap();
        assert!(m.is_empty());
    }

    #[test]
    fn mountinfo_errors_name_the_line() {
        let e = parse_cgroup_mounts("29 1 259:0 / / rw - ext4 /dev/x rw\n33 24 0:28 / /sys\n")
            .unwrap_err();
        assert!(e.0.starts_with("line 2:"), "{e}");
    }

    #[test]
    fn cgroup_dir_strips_the_mount_root() {
        let ns = CgroupMount {
            version: 2,
            root: "/kubepods.slice".into(),
            mount_point: "/sys/fs/cgroup".into(),
        };
        assert_eq!(
            cgroup_dir(&ns, "/kubepods.slice/pod1.slice"),
            PathBuf::from("/sys/fs/cgroup/pod1.slice")
        );
        // `/kubepods.slicex` is not under `/kubepods.slice`.
        assert_eq!(
            cgroup_dir(&ns, "/kubepods.slicex"),
            PathBuf::from("/sys/fs/cgroup/kubepods.slicex")
        );
        let host = default_mount(2);
        assert_eq!(cgroup_dir(&host, "/"), PathBuf::from("/sys/fs/cgroup"));
    }

    #[test]
    fn psi_some_and_full() {
        let p = parse_psi(
            "some avg10=0.10 avg60=2.00 avg300=3.85 total=15\nfull avg10=0.20 avg60=3.00 avg300=4.95 total=25\n",
        )
        .unwrap();
        assert_eq!(p.some.unwrap().avg60, 2.0);
        assert_eq!(p.full.unwrap().total_us, 25);
    }

    #[test]
    fn psi_cpu_before_5_13_has_only_some() {
        let p = parse_psi("some avg10=0.10 avg60=2.00 avg300=3.85 total=15\n").unwrap();
        assert!(p.some.is_some() && p.full.is_none());
    }

    #[test]
    fn psi_irq_has_only_full_and_no_trailing_newline() {
        let p = parse_psi("full avg10=0.00 avg60=0.00 avg300=0.00 total=8494").unwrap();
        assert!(p.some.is_none());
        assert_eq!(p.full.unwrap().total_us, 8494);
    }

    #[test]
    fn psi_errors_name_the_line() {
        let e = parse_psi("some avg10=0.00 avg60=0.00 avg300=0.00 total=0\nfull avg10=x\n")
            .unwrap_err();
        assert!(e.0.starts_with("line 2: avg10"), "{e}");
        assert!(parse_psi("some avg10=0.00\n").is_err());
        assert!(parse_psi("some avg10=101.00 avg60=0 avg300=0 total=0\n").is_err());
    }

    fn conf(pairs: &[(&str, &str)]) -> SparkConf {
        let mut c = SparkConf::default();
        for (k, v) in pairs {
            c.set(k, *v);
        }
        c
    }

    #[test]
    fn plan_follows_spark_and_gluten_rules() {
        // (conf, executors, expected overhead MiB, source, per executor MiB)
        type Case<'a> = (&'a [(&'a str, &'a str)], u32, u64, &'a str, u64);
        let cases: &[Case] = &[
            // Spark defaults alone: 1g heap + 384m minimum overhead.
            (&[], 1, 384, "default", 1024 + 384),
            // 10% of 8g = 819m.
            (&[(EXECUTOR_MEMORY, "8g")], 2, 819, "default", 8192 + 819),
            // Off-heap enabled: Gluten's 0.3 x 20g = 6144m beats Spark's 819m.
            (
                &[
                    (EXECUTOR_MEMORY, "8g"),
                    (OFFHEAP_ENABLED, "true"),
                    (OFFHEAP_SIZE, "20g"),
                ],
                1,
                6144,
                "default",
                8192 + 6144 + 20480,
            ),
            // Off-heap size without enabled does not count.
            (
                &[(EXECUTOR_MEMORY, "8g"), (OFFHEAP_SIZE, "20g")],
                1,
                819,
                "default",
                8192 + 819,
            ),
            // Set overhead wins, bare numbers in MiB; off-heap bare number is bytes.
            (
                &[
                    (EXECUTOR_MEMORY, "4096"),
                    (EXECUTOR_MEMORY_OVERHEAD, "1024"),
                    (OFFHEAP_ENABLED, "TRUE"),
                    (OFFHEAP_SIZE, "2147483648"),
                    (PYSPARK_MEMORY, "512"),
                ],
                3,
                1024,
                "set",
                4096 + 1024 + 2048 + 512,
            ),
            // The factor and Spark 4's minimum.
            (
                &[
                    (EXECUTOR_MEMORY, "10g"),
                    (EXECUTOR_MEMORY_OVERHEAD_FACTOR, "0.4"),
                ],
                1,
                4096,
                "default",
                10240 + 4096,
            ),
            (
                &[(EXECUTOR_MIN_MEMORY_OVERHEAD, "1g")],
                1,
                1024,
                "default",
                2048,
            ),
        ];
        for (pairs, n, overhead, source, per) in cases {
            let p = SparkPlan::from_conf(&conf(pairs), *n).unwrap();
            assert_eq!(p.memory_overhead_bytes, overhead * MIB, "{pairs:?}");
            assert_eq!(p.memory_overhead_source, *source, "{pairs:?}");
            assert_eq!(p.per_executor_bytes, per * MIB, "{pairs:?}");
            assert_eq!(p.planned_bytes, per * MIB * u64::from(*n), "{pairs:?}");
        }
    }

    #[test]
    fn plan_reads_gluten_plugin_and_offheap_settings() {
        for (plugins, want) in [
            ("org.apache.gluten.GlutenPlugin", true),
            ("com.example.Other, io.glutenproject.GlutenPlugin ", true),
            ("org.apache.gluten.GlutenPluginX", false),
            ("", false),
        ] {
            let p = SparkPlan::from_conf(&conf(&[(PLUGINS, plugins)]), 1).unwrap();
            assert_eq!(p.gluten_plugin, want, "{plugins:?}");
        }
        let p = SparkPlan::from_conf(
            &conf(&[
                (OFFHEAP_SIZE, "2m"),
                (GLUTEN_DYNAMIC_OFFHEAP_SIZING, "TRUE"),
            ]),
            1,
        )
        .unwrap();
        assert!(!p.gluten_plugin && !p.offheap_enabled && p.gluten_dynamic_offheap_sizing);
        assert_eq!((p.offheap_size_bytes, p.offheap_bytes), (2 * MIB, 0));
        let e =
            SparkPlan::from_conf(&conf(&[(GLUTEN_DYNAMIC_OFFHEAP_SIZING, "yes")]), 1).unwrap_err();
        assert!(e.0.contains(GLUTEN_DYNAMIC_OFFHEAP_SIZING), "{e}");
    }

    #[test]
    fn plan_errors_name_the_key() {
        let e = SparkPlan::from_conf(
            &conf(&[(OFFHEAP_SIZE, "1.5g"), (OFFHEAP_ENABLED, "true")]),
            1,
        )
        .unwrap_err();
        assert!(e.0.contains(OFFHEAP_SIZE), "{e}");
        let e =
            SparkPlan::from_conf(&conf(&[(EXECUTOR_MEMORY_OVERHEAD_FACTOR, "0")]), 1).unwrap_err();
        assert!(e.0.contains(EXECUTOR_MEMORY_OVERHEAD_FACTOR), "{e}");
        assert!(SparkPlan::from_conf(&conf(&[(EXECUTOR_MEMORY, "16000p")]), 1000).is_err());
    }

    fn plan(per_gib: u64, n: u32, overhead_gib: u64, recommended_gib: u64) -> SparkPlan {
        SparkPlan {
            executor_memory_bytes: per_gib * GIB,
            memory_overhead_bytes: overhead_gib * GIB,
            memory_overhead_source: "set",
            offheap_bytes: 0,
            pyspark_memory_bytes: 0,
            gluten_recommended_overhead_bytes: recommended_gib * GIB,
            per_executor_bytes: per_gib * GIB,
            executors_per_node: n,
            planned_bytes: per_gib * GIB * u64::from(n),
            gluten_plugin: false,
            offheap_enabled: false,
            offheap_size_bytes: 0,
            gluten_dynamic_offheap_sizing: false,
        }
    }

    /// `plan(8, 1, 1, 1)` with Gluten's plugin and the given off-heap settings.
    fn gluten_plan(offheap_enabled: bool, offheap_size_bytes: u64, dynamic: bool) -> SparkPlan {
        SparkPlan {
            gluten_plugin: true,
            offheap_enabled,
            offheap_size_bytes,
            gluten_dynamic_offheap_sizing: dynamic,
            ..plan(8, 1, 1, 1)
        }
    }

    fn host(total_gib: u64, pools_gib: u64) -> Meminfo {
        Meminfo {
            total: Some(total_gib * GIB),
            hugepages_pool_bytes: Some(pools_gib * GIB),
            ..Meminfo::default()
        }
    }

    fn cgroup(limit_gib: Option<u64>, ws_gib: u64) -> CgroupFacts {
        CgroupFacts {
            version: 2,
            path: "/spark.slice".into(),
            source: "config",
            dir: "/sys/fs/cgroup/spark.slice".into(),
            exists: true,
            limit_bytes: limit_gib.map(|l| l * GIB),
            working_set_bytes: Some(ws_gib * GIB),
            usage_ratio: limit_gib.map(|l| ws_gib as f64 / l as f64),
            ..CgroupFacts::default()
        }
    }

    fn psi(avg60: f64) -> Psi {
        Psi {
            some: Some(PsiLine {
                avg10: 0.0,
                avg60,
                avg300: 0.0,
                total_us: 0,
            }),
            full: None,
        }
    }

    #[test]
    fn evaluate_table() {
        let s = Settings::default();
        // (name, observation, expected status, a phrase of the worst finding or the ok summary)
        let cases: Vec<(&str, Facts, Status, &str)> = vec![
            (
                "no plan: host facts only",
                Facts {
                    meminfo: host(64, 0),
                    ..Default::default()
                },
                Status::Ok,
                "no Spark plan configured; MemTotal 64.0 GiB",
            ),
            (
                "fits with room",
                Facts {
                    meminfo: host(128, 0),
                    plan: Some(plan(40, 3, 4, 1)),
                    ..Default::default()
                },
                Status::Ok,
                "planned 3 x 40.0 GiB = 120.0 GiB plus reserve 2.0 GiB fits usable 128.0 GiB (MemTotal minus huge page pools) with headroom 6.0 GiB",
            ),
            (
                "huge page pools are not usable",
                Facts {
                    meminfo: host(128, 10),
                    plan: Some(plan(40, 3, 4, 1)),
                    ..Default::default()
                },
                Status::Fail,
                "planned 3 x 40.0 GiB = 120.0 GiB plus `reserve_bytes` 2.0 GiB exceeds usable 118.0 GiB (MemTotal minus huge page pools) by 4.0 GiB",
            ),
            (
                "the cgroup limit is tighter",
                Facts {
                    meminfo: host(256, 0),
                    cgroup: Some(cgroup(Some(120), 1)),
                    plan: Some(plan(45, 3, 4, 1)),
                    ..Default::default()
                },
                Status::Fail,
                "exceeds usable 120.0 GiB (cgroup limit) by 17.0 GiB",
            ),
            (
                "headroom below the reserve",
                Facts {
                    meminfo: host(132, 0),
                    plan: Some(plan(43, 3, 4, 1)),
                    ..Default::default()
                },
                Status::Warn,
                "leaves headroom 1.0 GiB of usable 132.0 GiB (MemTotal minus huge page pools), below `reserve_bytes`",
            ),
            (
                "headroom exactly 0 is below the reserve, not a fail",
                Facts {
                    meminfo: host(122, 0),
                    plan: Some(plan(40, 3, 4, 1)),
                    ..Default::default()
                },
                Status::Warn,
                "leaves headroom 0 MiB",
            ),
            (
                "overhead below Gluten's recommendation",
                Facts {
                    meminfo: host(128, 0),
                    plan: Some(plan(10, 1, 1, 6)),
                    ..Default::default()
                },
                Status::Warn,
                "`spark.executor.memoryOverhead` 1.0 GiB is below Gluten's recommended 6.0 GiB",
            ),
            (
                "cgroup working set at 90%",
                Facts {
                    meminfo: host(64, 0),
                    cgroup: Some(cgroup(Some(10), 9)),
                    ..Default::default()
                },
                Status::Warn,
                "working set 9.0 GiB is 90% of its limit 10.0 GiB, at or above `cgroup_usage_warn_ratio` 85%",
            ),
            (
                "cgroup working set at 96%",
                Facts {
                    meminfo: host(64, 0),
                    cgroup: Some(CgroupFacts {
                        working_set_bytes: Some(96 * GIB),
                        usage_ratio: Some(0.96),
                        ..cgroup(Some(100), 0)
                    }),
                    ..Default::default()
                },
                Status::Fail,
                "is 96% of its limit 100.0 GiB, at or above `cgroup_usage_fail_ratio` 95%",
            ),
            (
                "unlimited cgroup: no ratio",
                Facts {
                    meminfo: host(64, 0),
                    cgroup: Some(cgroup(None, 60)),
                    ..Default::default()
                },
                Status::Ok,
                "MemTotal 64.0 GiB",
            ),
            (
                "host memory pressure",
                Facts {
                    meminfo: host(64, 0),
                    psi: Some(psi(12.5)),
                    ..Default::default()
                },
                Status::Warn,
                "some avg60 12.50% at or above `psi_some_avg60_warn` 10%",
            ),
            (
                "pressure below the threshold",
                Facts {
                    meminfo: host(64, 0),
                    psi: Some(psi(9.99)),
                    ..Default::default()
                },
                Status::Ok,
                "MemTotal",
            ),
            (
                "cgroup memory pressure",
                Facts {
                    meminfo: host(64, 0),
                    cgroup: Some(CgroupFacts {
                        psi: Some(psi(30.0)),
                        ..cgroup(None, 1)
                    }),
                    ..Default::default()
                },
                Status::Warn,
                "cgroup /spark.slice memory pressure: some avg60 30.00%",
            ),
            (
                "host OOM kills since start",
                Facts {
                    meminfo: host(64, 0),
                    oom_kill: Some(5),
                    oom_kill_at_start: Some(3),
                    ..Default::default()
                },
                Status::Warn,
                "2 OOM kill(s) on the host since the agent started (/proc/vmstat oom_kill 3 -> 5)",
            ),
            (
                "OOM kills before start do not count",
                Facts {
                    meminfo: host(64, 0),
                    oom_kill: Some(5),
                    oom_kill_at_start: Some(5),
                    ..Default::default()
                },
                Status::Ok,
                "MemTotal",
            ),
            (
                "cgroup OOM kills since start",
                Facts {
                    meminfo: host(64, 0),
                    cgroup: Some(CgroupFacts {
                        oom_kill: Some(1),
                        oom_kill_at_start: Some(0),
                        ..cgroup(None, 1)
                    }),
                    ..Default::default()
                },
                Status::Warn,
                "1 OOM kill(s) in cgroup /spark.slice",
            ),
            (
                "configured cgroup missing",
                Facts {
                    meminfo: host(64, 0),
                    cgroup: Some(CgroupFacts {
                        exists: false,
                        ..cgroup(None, 0)
                    }),
                    ..Default::default()
                },
                Status::Warn,
                "configured `cgroup` /spark.slice not found at /sys/fs/cgroup/spark.slice",
            ),
            (
                "Gluten without off-heap: startup throws",
                Facts {
                    meminfo: host(64, 0),
                    plan: Some(gluten_plan(false, 0, false)),
                    ..Default::default()
                },
                Status::Fail,
                "`spark.memory.offHeap.enabled` is false (or unset) while `spark.plugins` loads GlutenPlugin: Gluten throws at startup",
            ),
            (
                "Gluten with off-heap below 1 MiB",
                Facts {
                    meminfo: host(64, 0),
                    plan: Some(gluten_plan(true, 1024, false)),
                    ..Default::default()
                },
                Status::Fail,
                "`spark.memory.offHeap.size` is 1024 bytes, below 1 MiB",
            ),
            (
                "Gluten with dynamic off-heap sizing needs no off-heap",
                Facts {
                    meminfo: host(64, 0),
                    plan: Some(gluten_plan(false, 0, true)),
                    ..Default::default()
                },
                Status::Ok,
                "planned 1 x 8.0 GiB",
            ),
            (
                "Gluten with 1 MiB off-heap",
                Facts {
                    meminfo: host(64, 0),
                    plan: Some(gluten_plan(true, GLUTEN_MIN_OFFHEAP_BYTES, false)),
                    ..Default::default()
                },
                Status::Ok,
                "planned 1 x 8.0 GiB",
            ),
            (
                "no off-heap without Gluten's plugin: not Gluten's rule",
                Facts {
                    meminfo: host(64, 0),
                    plan: Some(plan(8, 1, 1, 1)),
                    ..Default::default()
                },
                Status::Ok,
                "planned 1 x 8.0 GiB",
            ),
            (
                "plan but no MemTotal",
                Facts {
                    plan: Some(plan(1, 1, 1, 1)),
                    ..Default::default()
                },
                Status::Warn,
                "usable memory is unknown",
            ),
        ];
        for (name, obs, status, phrase) in cases {
            let ev = evaluate(&obs, &s);
            let got = Status::worst(ev.findings.iter().map(|f| f.status));
            let text = if got == Status::Ok {
                ev.ok_summary.clone().unwrap_or_default()
            } else {
                ev.findings
                    .iter()
                    .filter(|f| f.status == got)
                    .map(|f| f.message.clone())
                    .collect::<Vec<_>>()
                    .join("; ")
            };
            assert_eq!(got, status, "{name}: {text}");
            assert!(text.contains(phrase), "{name}: {text:?} lacks {phrase:?}");
        }
    }

    #[test]
    fn evaluate_reports_usable_and_headroom() {
        let obs = Facts {
            meminfo: host(256, 0),
            cgroup: Some(cgroup(Some(120), 1)),
            plan: Some(plan(45, 3, 4, 1)),
            ..Default::default()
        };
        assert_eq!(obs.usable(), (Some(120 * GIB), Some("cgroup limit")));
        let reserve = Settings::default().reserve_bytes;
        assert_eq!(obs.headroom(reserve), Some(-17 * i128::from(GIB)));
    }

    #[test]
    fn oom_baselines_are_kept_and_reset_when_the_counter_drops() {
        let m = Memory::build(Settings::default(), &Shared::default());
        assert_eq!(m.baselines(Some(3), Some(("/a", 1))), (Some(3), Some(1)));
        assert_eq!(m.baselines(Some(5), Some(("/a", 2))), (Some(3), Some(1)));
        // Another cgroup, or a counter that went down: a new baseline.
        assert_eq!(m.baselines(Some(1), Some(("/b", 4))), (Some(1), Some(4)));
        assert_eq!(m.baselines(None, None), (None, None));
    }

    #[test]
    fn settings_validate_names_the_key() {
        let ok = Settings::default();
        assert!(ok.validate().is_ok());
        let bad = |s: Settings, key: &str| {
            let e = s.validate().unwrap_err();
            assert!(e.starts_with(&format!("`{key}")), "{e}");
        };
        bad(
            Settings {
                executors_per_node: 0,
                ..ok.clone()
            },
            "executors_per_node",
        );
        bad(
            Settings {
                cgroup: Some("kubepods".into()),
                ..ok.clone()
            },
            "cgroup",
        );
        bad(
            Settings {
                psi_some_avg60_warn: 0.0,
                ..ok.clone()
            },
            "psi_some_avg60_warn",
        );
        bad(
            Settings {
                cgroup_usage_warn_ratio: 0.96,
                ..ok.clone()
            },
            "cgroup_usage_warn_ratio",
        );
        bad(
            Settings {
                cgroup_usage_fail_ratio: 1.5,
                ..ok.clone()
            },
            "cgroup_usage_fail_ratio",
        );
        let spark = |k: &str, v: toml::Value| Settings {
            spark: BTreeMap::from([(k.to_string(), v)]),
            ..ok.clone()
        };
        bad(
            spark("spark.executor.memry", "8g".into()),
            "spark.\"spark.executor.memry\"",
        );
        bad(spark(EXECUTOR_MEMORY, "8x".into()), "spark");
        assert!(spark(OFFHEAP_ENABLED, true.into()).validate().is_ok());
        assert!(spark(EXECUTOR_MEMORY, 8192.into()).validate().is_ok());
    }

    proptest! {
        #[test]
        fn parsers_never_panic(s in "\\PC*", bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            for text in [s.clone(), String::from_utf8_lossy(&bytes).into_owned()] {
                let _ = parse_meminfo(&text).map(|f| Meminfo::from_fields(&f));
                let _ = parse_flat_keyed(&text);
                let _ = parse_vmstat_oom_kill(&text);
                let _ = parse_cgroup_limit(&text);
                let _ = parse_count(&text);
                let _ = parse_proc_cgroup(&text);
                let _ = parse_cgroup_mounts(&text);
                let _ = parse_psi(&text);
                let conf = parse_spark_defaults(&text);
                let _ = SparkPlan::from_conf(&conf, 64);
            }
        }

        #[test]
        fn kernel_shaped_lines_never_panic(
            key in "[A-Za-z_()]{1,12}", n in any::<u64>(), unit in prop::sample::select(vec!["", " kB", " MB", " kB x"]),
            path in "/[ -~]{0,40}", avg in any::<f64>(),
        ) {
            let _ = parse_meminfo(&format!("{key}: {n}{unit}\n"));
            let _ = parse_proc_cgroup(&format!("0::{path}\n3:memory:{path}"));
            let _ = parse_cgroup_mounts(&format!("1 2 0:3 {path} {path} rw - cgroup2 cgroup2 rw\n"));
            let _ = parse_psi(&format!("some avg10={avg} avg60={avg} avg300=0 total={n}"));
        }
    }
}

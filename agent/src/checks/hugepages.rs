//! `hugepages`: transparent huge page mode and defrag, every hugetlb pool (global and per NUMA
//! node, every page size), the `/proc/meminfo` huge page lines and the THP and compaction
//! counters of `/proc/vmstat`, compared with what Gluten expects.
//!
//! Velox's only huge page mechanism is THP via `madvise(MADV_HUGEPAGE)`; Gluten's benchmark nodes
//! run THP `madvise`. Explicit hugetlb pools matter for the QAT codec and for the memory check,
//! which must not count a static pool as "used" memory ([`read_pools`], [`pool_bytes`]).

use crate::check::{CheckError, CheckSettings, NodeCheck, ParseError, Shared, Verdict};
use crate::checks::Registration;
use crate::host::Host;
use crate::procfs_text::{
    NODES_DIR, field, node_ids, parse_count, parse_flat_keyed, parse_meminfo,
};
use proto::{Finding, Status};
use serde::{Deserialize, Serialize};

/// Where the kernel lists the global hugetlb pools, one `hugepages-<size>kB` dir per page size.
const GLOBAL_POOLS_DIR: &str = "/sys/kernel/mm/hugepages";
const THP_DIR: &str = "/sys/kernel/mm/transparent_hugepage";
const VMSTAT: &str = "/proc/vmstat";

/// The `/proc/vmstat` counters reported under `vmstat` and as the `counter` label of
/// `gluten_node_hugepages_vmstat`: THP faults, khugepaged collapses, splits and compaction.
pub const VMSTAT_COUNTERS: [&str; 9] = [
    "thp_fault_alloc",
    "thp_fault_fallback",
    "thp_collapse_alloc",
    "thp_collapse_alloc_failed",
    "thp_split_page",
    "compact_stall",
    "compact_fail",
    "compact_success",
    "nr_anon_transparent_hugepages",
];

/// A THP `enabled` mode as `thp_expected` names it.
#[derive(Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum ThpMode {
    Always,
    #[default]
    Madvise,
    Never,
}

impl ThpMode {
    pub fn as_str(self) -> &'static str {
        match self {
            ThpMode::Always => "always",
            ThpMode::Madvise => "madvise",
            ThpMode::Never => "never",
        }
    }
}

/// `[hugepages]` settings.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    /// The THP `enabled` mode this node should run. Default `madvise`: Gluten's benchmark nodes
    /// set it, and Velox only asks for huge pages with `madvise(MADV_HUGEPAGE)`.
    pub thp_expected: ThpMode,
    /// Whether executors run with `spark.gluten.sql.columnar.backend.velox.memoryUseHugePages`
    /// (Gluten's default: false). When true, THP `never` and a stalling `defrag` mode warn.
    pub memory_use_hugepages: bool,
    /// Hugetlb pools that must exist (QAT shuffle codec: 1024 pages of 2 MiB, for example).
    pub pools: Vec<RequiredPool>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            thp_expected: ThpMode::Madvise,
            memory_use_hugepages: false,
            pools: Vec::new(),
        }
    }
}

/// One entry of `pools`: a pool of `size_bytes` pages, global or on `numa_node`, with at least
/// `min_total` pages of which at least `min_free` are free.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Eq, Default)]
#[serde(deny_unknown_fields, default)]
pub struct RequiredPool {
    pub size_bytes: u64,
    pub min_total: u64,
    pub min_free: u64,
    /// The node's pool (`/sys/devices/system/node/nodeN/hugepages`); absent: the global pool.
    pub numa_node: Option<u32>,
}

impl CheckSettings for Settings {
    fn validate(&self) -> Result<(), String> {
        for (i, p) in self.pools.iter().enumerate() {
            if p.size_bytes < 4096 || !p.size_bytes.is_power_of_two() {
                return Err(format!(
                    "`pools[{i}].size_bytes` ({}) must be a page size: a power of two of at least 4096 bytes, e.g. 2097152 or 1073741824",
                    p.size_bytes
                ));
            }
            if p.min_free > 0 && p.min_total > 0 && p.min_free > p.min_total {
                return Err(format!(
                    "`pools[{i}].min_free` ({}) must not exceed `pools[{i}].min_total` ({})",
                    p.min_free, p.min_total
                ));
            }
            if let Some(j) = self.pools[..i]
                .iter()
                .position(|q| q.size_bytes == p.size_bytes && q.numa_node == p.numa_node)
            {
                return Err(format!(
                    "`pools[{i}]` names the same pool as `pools[{j}]` (size_bytes {}, numa_node {})",
                    p.size_bytes,
                    node_name(p.numa_node)
                ));
            }
        }
        Ok(())
    }
}

/// Where a pool's numbers came from.
#[derive(Serialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum PoolSource {
    /// `hugepages-<size>kB/{nr,free,resv,surplus}_hugepages` in sysfs.
    Sysfs,
    /// `HugePages_*` lines of `/proc/meminfo` or a node's `meminfo` (default page size only),
    /// used when sysfs does not list the pool.
    Meminfo,
}

/// One hugetlb pool: one page size, global or on one NUMA node. Counts are pages; `None` when the
/// kernel file is missing (the kernel has no per-node `resv_hugepages`, so `reserved` is always
/// `None` on a node pool).
#[derive(Serialize, Clone, Debug, PartialEq, Eq)]
pub struct Pool {
    pub page_size_bytes: u64,
    /// `None`: the global pool (all nodes together).
    pub numa_node: Option<u32>,
    /// Pages in the pool, surplus included (`nr_hugepages`, `HugePages_Total`).
    pub total: Option<u64>,
    pub free: Option<u64>,
    /// Promised to a mapping but not yet faulted in (`resv_hugepages`, `HugePages_Rsvd`).
    pub reserved: Option<u64>,
    /// Above the persistent size, allocated on demand (`surplus_hugepages`, `HugePages_Surp`).
    pub surplus: Option<u64>,
    pub source: PoolSource,
}

/// A THP sysfs file: the selected (bracketed) mode and every mode the kernel offers.
#[derive(Serialize, Clone, Debug, PartialEq, Eq)]
pub struct ThpSetting {
    pub selected: String,
    pub available: Vec<String>,
}

/// The huge page lines of `/proc/meminfo`; a line the kernel did not print is `None`.
#[derive(Serialize, Clone, Debug, Default, PartialEq, Eq)]
pub struct MeminfoHugepages {
    pub hugepages_total: Option<u64>,
    pub hugepages_free: Option<u64>,
    pub hugepages_rsvd: Option<u64>,
    pub hugepages_surp: Option<u64>,
    /// The default huge page size.
    pub hugepagesize_bytes: Option<u64>,
    /// Memory in hugetlb pages of every size (Linux 4.16+); the memory check's pool bytes.
    pub hugetlb_bytes: Option<u64>,
    /// Anonymous memory mapped with transparent huge pages.
    pub anon_huge_pages_bytes: Option<u64>,
}

/// THP and compaction counters of `/proc/vmstat`, events since boot except
/// `nr_anon_transparent_hugepages` (THP pages mapped now). A line the kernel does not print (an
/// older kernel, `CONFIG_TRANSPARENT_HUGEPAGE` or `CONFIG_COMPACTION` off; `thp_split_page` was
/// `thp_split` before Linux 4.5) is `None`.
#[derive(Serialize, Clone, Debug, Default, PartialEq, Eq)]
pub struct VmstatThp {
    pub thp_fault_alloc: Option<u64>,
    /// Page faults that wanted a huge page and got small pages (allocation or cgroup charge
    /// failed).
    pub thp_fault_fallback: Option<u64>,
    pub thp_collapse_alloc: Option<u64>,
    pub thp_collapse_alloc_failed: Option<u64>,
    pub thp_split_page: Option<u64>,
    /// Times a process stalled to run direct compaction.
    pub compact_stall: Option<u64>,
    pub compact_fail: Option<u64>,
    pub compact_success: Option<u64>,
    pub nr_anon_transparent_hugepages: Option<u64>,
}

impl VmstatThp {
    /// `(name, value)` in [`VMSTAT_COUNTERS`] order.
    pub fn counters(&self) -> [(&'static str, Option<u64>); 9] {
        let v = [
            self.thp_fault_alloc,
            self.thp_fault_fallback,
            self.thp_collapse_alloc,
            self.thp_collapse_alloc_failed,
            self.thp_split_page,
            self.compact_stall,
            self.compact_fail,
            self.compact_success,
            self.nr_anon_transparent_hugepages,
        ];
        std::array::from_fn(|i| (VMSTAT_COUNTERS[i], v[i]))
    }
}

/// What the check observed.
#[derive(Serialize, Clone, Debug, PartialEq)]
pub struct Facts {
    /// `transparent_hugepage/enabled`; `None` when the file is missing.
    pub thp_enabled: Option<ThpSetting>,
    /// `transparent_hugepage/defrag`; `None` when the file is missing.
    pub thp_defrag: Option<ThpSetting>,
    /// Every pool, global ones first, then by node, then by page size.
    pub pools: Vec<Pool>,
    /// Bytes held in the global pools (total pages x page size): see [`pool_bytes`].
    pub pool_bytes: u64,
    /// `/proc/meminfo`'s huge page lines; `None` when the file is missing.
    pub meminfo: Option<MeminfoHugepages>,
    /// `/proc/vmstat`'s THP and compaction counters; `None` when the file is missing.
    pub vmstat: Option<VmstatThp>,
}

pub struct Hugepages {
    settings: Settings,
}

/// This check in the registry (`checks::ALL`).
pub const REGISTRATION: Registration = Registration::of::<Hugepages>();

// ---------------------------------------------------------------------------------------------
// Pure parsers.

/// Parses a THP mode file such as `always [madvise] never` (the selected mode is bracketed).
pub fn parse_thp_setting(text: &str) -> Result<ThpSetting, ParseError> {
    let mut selected = None;
    let mut available = Vec::new();
    for word in text.split_whitespace() {
        let mode = match word.strip_prefix('[') {
            Some(inner) => {
                let inner = inner
                    .strip_suffix(']')
                    .ok_or_else(|| ParseError::new(format!("unbalanced bracket in {word:?}")))?;
                if selected.replace(inner.to_string()).is_some() {
                    return Err(ParseError::new("more than one [selected] mode"));
                }
                inner
            }
            None if word.contains(['[', ']']) => {
                return Err(ParseError::new(format!("unbalanced bracket in {word:?}")));
            }
            None => word,
        };
        if mode.is_empty() {
            return Err(ParseError::new("empty mode name"));
        }
        available.push(mode.to_string());
    }
    let selected = selected
        .ok_or_else(|| ParseError::new(format!("no [selected] mode in {:?}", text.trim())))?;
    Ok(ThpSetting {
        selected,
        available,
    })
}

/// The page size in bytes of a pool directory named `hugepages-<n>kB`; `None` for other names.
pub fn parse_pool_dir_name(name: &str) -> Option<u64> {
    let kib: u64 = name
        .strip_prefix("hugepages-")?
        .strip_suffix("kB")?
        .parse()
        .ok()?;
    kib.checked_mul(1024).filter(|b| *b > 0)
}

/// The huge page lines of parsed meminfo fields.
pub fn meminfo_hugepages(fields: &[(String, u64)]) -> MeminfoHugepages {
    let get = |k: &str| field(fields, k);
    MeminfoHugepages {
        hugepages_total: get("HugePages_Total"),
        hugepages_free: get("HugePages_Free"),
        hugepages_rsvd: get("HugePages_Rsvd"),
        hugepages_surp: get("HugePages_Surp"),
        hugepagesize_bytes: get("Hugepagesize"),
        hugetlb_bytes: get("Hugetlb"),
        anon_huge_pages_bytes: get("AnonHugePages"),
    }
}

/// The THP and compaction counters of `/proc/vmstat` text (`key value` lines); a malformed line
/// is an error naming the line.
pub fn parse_vmstat_thp(text: &str) -> Result<VmstatThp, ParseError> {
    let fields = parse_flat_keyed(text)?;
    let get = |k: &str| field(&fields, k);
    Ok(VmstatThp {
        thp_fault_alloc: get("thp_fault_alloc"),
        thp_fault_fallback: get("thp_fault_fallback"),
        thp_collapse_alloc: get("thp_collapse_alloc"),
        thp_collapse_alloc_failed: get("thp_collapse_alloc_failed"),
        thp_split_page: get("thp_split_page"),
        compact_stall: get("compact_stall"),
        compact_fail: get("compact_fail"),
        compact_success: get("compact_success"),
        nr_anon_transparent_hugepages: get("nr_anon_transparent_hugepages"),
    })
}

/// Bytes held in huge page pools: total pages x page size over the **global** pools only (the
/// per-node pools are the same pages again). A pool whose total is unknown counts 0. This is the
/// memory the kernel keeps out of `MemFree`/`MemAvailable` for hugetlb, whoever uses it.
pub fn pool_bytes(pools: &[Pool]) -> u64 {
    pools
        .iter()
        .filter(|p| p.numa_node.is_none())
        .map(|p| p.total.unwrap_or(0).saturating_mul(p.page_size_bytes))
        .fold(0u64, u64::saturating_add)
}

/// The global pools as `size:total` pairs sorted by size, e.g. `2097152:1024,1073741824:4`
/// (`none` without pools, `?` for an unknown total). Fleet inventory: nodes should agree.
pub fn layout(pools: &[Pool]) -> String {
    let parts: Vec<String> = pools
        .iter()
        .filter(|p| p.numa_node.is_none())
        .map(|p| match p.total {
            Some(t) => format!("{}:{t}", p.page_size_bytes),
            None => format!("{}:?", p.page_size_bytes),
        })
        .collect();
    if parts.is_empty() {
        "none".to_string()
    } else {
        parts.join(",")
    }
}

// ---------------------------------------------------------------------------------------------
// Reading.

/// Every hugetlb pool on `host`: the global pools of `/sys/kernel/mm/hugepages` and each node's
/// `hugepages/` pools. Where sysfs lists none, the default-size pool from `/proc/meminfo` (global)
/// or the node's `meminfo` (per node) stands in, marked `source: meminfo`.
pub fn read_pools(host: &Host) -> Result<Vec<Pool>, CheckError> {
    let meminfo = read_meminfo(host)?;
    read_pools_with(host, meminfo.as_ref())
}

fn read_meminfo(host: &Host) -> Result<Option<MeminfoHugepages>, CheckError> {
    Ok(host
        .parse_optional("/proc/meminfo", parse_meminfo)?
        .map(|f| meminfo_hugepages(&f)))
}

fn read_pool_dir(
    host: &Host,
    dir: &str,
    numa_node: Option<u32>,
    out: &mut Vec<Pool>,
) -> Result<(), CheckError> {
    let mut found: Vec<(u64, String)> = host
        .list_dir(dir)?
        .into_iter()
        .filter_map(|name| parse_pool_dir_name(&name).map(|size| (size, name)))
        .collect();
    found.sort();
    for (size, name) in found {
        let count = |file: &str| host.parse_optional(format!("{dir}/{name}/{file}"), parse_count);
        out.push(Pool {
            page_size_bytes: size,
            numa_node,
            total: count("nr_hugepages")?,
            free: count("free_hugepages")?,
            // The kernel has no per-node reservation count.
            reserved: match numa_node {
                None => count("resv_hugepages")?,
                Some(_) => None,
            },
            surplus: count("surplus_hugepages")?,
            source: PoolSource::Sysfs,
        });
    }
    Ok(())
}

fn read_pools_with(
    host: &Host,
    meminfo: Option<&MeminfoHugepages>,
) -> Result<Vec<Pool>, CheckError> {
    let mut pools = Vec::new();
    read_pool_dir(host, GLOBAL_POOLS_DIR, None, &mut pools)?;
    let default_size = meminfo.and_then(|m| m.hugepagesize_bytes);
    if pools.is_empty()
        && let (Some(m), Some(size)) = (meminfo, default_size)
        && m.hugepages_total.is_some()
    {
        pools.push(Pool {
            page_size_bytes: size,
            numa_node: None,
            total: m.hugepages_total,
            free: m.hugepages_free,
            reserved: m.hugepages_rsvd,
            surplus: m.hugepages_surp,
            source: PoolSource::Meminfo,
        });
    }
    for id in node_ids(host)? {
        let before = pools.len();
        read_pool_dir(
            host,
            &format!("{NODES_DIR}/node{id}/hugepages"),
            Some(id),
            &mut pools,
        )?;
        if pools.len() > before {
            continue;
        }
        let Some(size) = default_size else { continue };
        let Some(fields) =
            host.parse_optional(format!("{NODES_DIR}/node{id}/meminfo"), parse_meminfo)?
        else {
            continue;
        };
        let m = meminfo_hugepages(&fields);
        if m.hugepages_total.is_some() {
            pools.push(Pool {
                page_size_bytes: size,
                numa_node: Some(id),
                total: m.hugepages_total,
                free: m.hugepages_free,
                reserved: None,
                surplus: m.hugepages_surp,
                source: PoolSource::Meminfo,
            });
        }
    }
    Ok(pools)
}

/// Reads everything the check looks at.
pub fn read_facts(host: &Host) -> Result<Facts, CheckError> {
    let meminfo = read_meminfo(host)?;
    let pools = read_pools_with(host, meminfo.as_ref())?;
    Ok(Facts {
        thp_enabled: host.parse_optional(format!("{THP_DIR}/enabled"), parse_thp_setting)?,
        thp_defrag: host.parse_optional(format!("{THP_DIR}/defrag"), parse_thp_setting)?,
        pool_bytes: pool_bytes(&pools),
        pools,
        meminfo,
        vmstat: host.parse_optional(VMSTAT, parse_vmstat_thp)?,
    })
}

// ---------------------------------------------------------------------------------------------
// Evaluation.

/// `2097152` -> `2 MiB`; exact binary units only, otherwise bytes.
pub fn human_size(bytes: u64) -> String {
    const UNITS: [(&str, u64); 4] = [
        ("TiB", 1 << 40),
        ("GiB", 1 << 30),
        ("MiB", 1 << 20),
        ("KiB", 1 << 10),
    ];
    for (unit, size) in UNITS {
        if bytes >= size && bytes.is_multiple_of(size) {
            return format!("{} {unit}", bytes / size);
        }
    }
    format!("{bytes} bytes")
}

/// Like [`human_size`] but for any amount: one decimal in the largest unit that fits.
fn approx_size(bytes: u64) -> String {
    const UNITS: [(&str, u64); 3] = [("TiB", 1 << 40), ("GiB", 1 << 30), ("MiB", 1 << 20)];
    for (unit, size) in UNITS {
        if bytes >= size {
            return format!("{:.1} {unit}", bytes as f64 / size as f64);
        }
    }
    format!("{bytes} bytes")
}

fn node_name(n: Option<u32>) -> String {
    match n {
        Some(n) => format!("node{n}"),
        None => "global".to_string(),
    }
}

fn pool_subject(size: u64, node: Option<u32>) -> String {
    match node {
        None => format!("hugepages-{}kB", size / 1024),
        Some(n) => format!("node{n}/hugepages-{}kB", size / 1024),
    }
}

/// Defrag modes that make a `madvise`d region stall in direct reclaim/compaction.
const STALLING_DEFRAG: [&str; 3] = ["always", "madvise", "defer+madvise"];

/// Compares the facts with the settings.
pub fn evaluate(facts: &Facts, settings: &Settings) -> Verdict {
    let mut o = Verdict::default();
    let expected = settings.thp_expected.as_str();
    let mut thp_note = String::new();
    match facts.thp_enabled.as_ref().map(|s| s.selected.as_str()) {
        None => {
            o.push(
                Finding::new(
                    Status::Ok,
                    format!(
                        "transparent huge page mode unknown: {THP_DIR}/enabled is missing (expected `{expected}`)"
                    ),
                )
                .about(format!("{THP_DIR}/enabled")),
            );
            thp_note = "THP mode unknown".into();
        }
        Some(mode) if mode == expected => thp_note = format!("THP `{mode}` as expected"),
        Some("always") => o.push(
            Finding::new(
                Status::Warn,
                format!(
                    "transparent huge pages are `always` (expected `{expected}`): system-wide THP and khugepaged also hit the JVM and every other process; Gluten's benchmark nodes run `madvise`"
                ),
            )
            .about(format!("{THP_DIR}/enabled")),
        ),
        Some("never") => {
            let (status, tail) = if settings.memory_use_hugepages {
                (Status::Warn, "")
            } else {
                (Status::Ok, ", which is off by default")
            };
            o.push(
                Finding::new(
                    status,
                    format!(
                        "transparent huge pages are `never` (expected `{expected}`): Gluten's memoryUseHugePages (Velox madvise) has no effect{tail}"
                    ),
                )
                .about(format!("{THP_DIR}/enabled")),
            );
        }
        Some(mode) => o.push(
            Finding::new(
                Status::Warn,
                format!("transparent huge pages are `{mode}` (expected `{expected}`)"),
            )
            .about(format!("{THP_DIR}/enabled")),
        ),
    }
    if settings.memory_use_hugepages
        && let Some(defrag) = &facts.thp_defrag
        && STALLING_DEFRAG.contains(&defrag.selected.as_str())
    {
        o.push(
            Finding::new(
                Status::Warn,
                format!(
                    "THP defrag is `{}` while `memory_use_hugepages` is on: madvised Velox allocations stall in direct compaction (expected `defer` or `never`; Gluten turned huge pages off after higher kernel CPU, apache/gluten#3483)",
                    defrag.selected
                ),
            )
            .about(format!("{THP_DIR}/defrag")),
        );
    }

    for req in &settings.pools {
        evaluate_required_pool(&mut o, facts, req);
    }
    if settings.memory_use_hugepages
        && let Some(v) = &facts.vmstat
        && let (Some(alloc), Some(fallback)) = (v.thp_fault_alloc, v.thp_fault_fallback)
        && fallback > 0
    {
        let share = 100.0 * fallback as f64 / (alloc as f64 + fallback as f64);
        o.push(
            Finding::new(
                Status::Ok,
                format!(
                    "{share:.0}% of THP page faults since boot fell back to small pages (thp_fault_fallback {fallback}, thp_fault_alloc {alloc}): no free huge page (fragmentation, low memory) or a cgroup charge failed, so madvised Velox memory is partly on 4 KiB pages"
                ),
            )
            .about(VMSTAT),
        );
    }

    let held = if facts.pools.iter().any(|p| p.numa_node.is_none()) {
        format!(
            "{} held in huge page pools ({})",
            approx_size(facts.pool_bytes),
            facts
                .pools
                .iter()
                .filter(|p| p.numa_node.is_none())
                .map(|p| match p.total {
                    Some(t) => format!("{} x {t}", human_size(p.page_size_bytes)),
                    None => format!("{} x ?", human_size(p.page_size_bytes)),
                })
                .collect::<Vec<_>>()
                .join(", ")
        )
    } else {
        "no huge page pools listed".to_string()
    };
    o.ok_summary = Some(if thp_note.is_empty() {
        held
    } else {
        format!("{thp_note}; {held}")
    });
    add_metrics(&mut o, facts);
    o.inventory = vec![
        (
            "hugepages.thp_enabled".into(),
            facts
                .thp_enabled
                .as_ref()
                .map_or("unknown".into(), |s| s.selected.clone()),
        ),
        (
            "hugepages.thp_defrag".into(),
            facts
                .thp_defrag
                .as_ref()
                .map_or("unknown".into(), |s| s.selected.clone()),
        ),
        ("hugepages.layout".into(), layout(&facts.pools)),
    ];
    o
}

fn evaluate_required_pool(o: &mut Verdict, facts: &Facts, req: &RequiredPool) {
    let subject = pool_subject(req.size_bytes, req.numa_node);
    let what = match req.numa_node {
        None => format!("global {} huge page pool", human_size(req.size_bytes)),
        Some(n) => format!(
            "{} huge page pool on NUMA node {n}",
            human_size(req.size_bytes)
        ),
    };
    let Some(pool) = facts
        .pools
        .iter()
        .find(|p| p.page_size_bytes == req.size_bytes && p.numa_node == req.numa_node)
    else {
        o.push(
            Finding::new(
                Status::Fail,
                format!(
                    "no {what} (required: `min_total` {}, `min_free` {})",
                    req.min_total, req.min_free
                ),
            )
            .about(subject),
        );
        return;
    };
    for (key, observed, required, file) in [
        ("min_total", pool.total, req.min_total, "nr_hugepages"),
        ("min_free", pool.free, req.min_free, "free_hugepages"),
    ] {
        if required == 0 {
            continue;
        }
        match observed {
            None => o.push(
                Finding::new(
                    Status::Unknown,
                    format!("{what}: {file} is missing, cannot compare with `{key}` {required}"),
                )
                .about(subject.clone()),
            ),
            Some(v) if v < required => o.push(
                Finding::new(
                    Status::Fail,
                    format!(
                        "{what} has {v} {} pages, below `{key}` {required}",
                        if key == "min_total" { "total" } else { "free" }
                    ),
                )
                .about(subject.clone()),
            ),
            Some(_) => {}
        }
    }
}

const THP_ENABLED_MODES: [&str; 3] = ["always", "madvise", "never"];
const THP_DEFRAG_MODES: [&str; 5] = ["always", "defer", "defer+madvise", "madvise", "never"];

fn add_metrics(o: &mut Verdict, facts: &Facts) {
    for p in &facts.pools {
        let size = p.page_size_bytes.to_string();
        let node = p.numa_node.map_or("global".to_string(), |n| n.to_string());
        for (state, v) in [
            ("total", p.total),
            ("free", p.free),
            ("reserved", p.reserved),
            ("surplus", p.surplus),
        ] {
            if let Some(v) = v {
                o.gauge(
                    "gluten_node_hugepages_pool_pages",
                    "Pages in a hugetlb pool by state; numa_node=\"global\" is the whole-host pool (per-node pools are the same pages again).",
                    &[("page_size_bytes", &size), ("numa_node", &node), ("state", state)],
                    v as f64,
                );
            }
        }
    }
    o.gauge(
        "gluten_node_hugepages_pool_bytes",
        "Bytes held in the global hugetlb pools (total pages x page size).",
        &[],
        facts.pool_bytes as f64,
    );
    for (name, help, setting, modes) in [
        (
            "gluten_node_hugepages_thp_enabled",
            "Transparent huge page mode as a state set (absent when unknown).",
            &facts.thp_enabled,
            &THP_ENABLED_MODES[..],
        ),
        (
            "gluten_node_hugepages_thp_defrag",
            "Transparent huge page defrag mode as a state set (absent when unknown).",
            &facts.thp_defrag,
            &THP_DEFRAG_MODES[..],
        ),
    ] {
        if let Some(s) = setting {
            for mode in modes {
                o.gauge(
                    name,
                    help,
                    &[("mode", mode)],
                    if s.selected == *mode { 1.0 } else { 0.0 },
                );
            }
        }
    }
    for (counter, v) in facts.vmstat.iter().flat_map(VmstatThp::counters) {
        if let Some(v) = v {
            o.gauge(
                "gluten_node_hugepages_vmstat",
                "A /proc/vmstat THP or compaction counter since boot (nr_anon_transparent_hugepages: THP pages mapped now); absent when the kernel has no such line.",
                &[("counter", counter)],
                v as f64,
            );
        }
    }
    if let Some(anon) = facts.meminfo.as_ref().and_then(|m| m.anon_huge_pages_bytes) {
        o.gauge(
            "gluten_node_hugepages_anon_bytes",
            "Anonymous memory mapped with transparent huge pages (AnonHugePages).",
            &[],
            anon as f64,
        );
    }
}

impl NodeCheck for Hugepages {
    const NAME: &'static str = "hugepages";
    type Settings = Settings;
    type Facts = Facts;

    fn build(settings: Settings, _shared: &Shared) -> Self {
        Hugepages { settings }
    }

    fn settings(&self) -> &Settings {
        &self.settings
    }

    fn read(&self, host: &Host) -> Result<Facts, CheckError> {
        read_facts(host)
    }

    fn evaluate(facts: &Facts, settings: &Settings) -> Verdict {
        evaluate(facts, settings)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    // --- parsers: one test per quirk, real kernel text ---

    #[test]
    fn thp_enabled_selected_mode_is_the_bracketed_one() {
        let s = parse_thp_setting("always [madvise] never\n").unwrap();
        assert_eq!(s.selected, "madvise");
        assert_eq!(s.available, ["always", "madvise", "never"]);
    }

    #[test]
    fn thp_defrag_has_five_modes_including_defer_plus_madvise() {
        let s = parse_thp_setting("always defer defer+madvise [madvise] never\n").unwrap();
        assert_eq!(s.selected, "madvise");
        assert_eq!(s.available.len(), 5);
        let s = parse_thp_setting("always defer [defer+madvise] madvise never").unwrap();
        assert_eq!(s.selected, "defer+madvise");
    }

    #[test]
    fn thp_without_a_selection_or_with_two_is_an_error() {
        assert!(parse_thp_setting("always madvise never\n").is_err());
        assert!(parse_thp_setting("").is_err());
        assert!(parse_thp_setting("[always] [never]").is_err());
        assert!(parse_thp_setting("always [madvise never").is_err());
    }

    #[test]
    fn pool_dir_names_give_the_page_size_in_bytes() {
        assert_eq!(parse_pool_dir_name("hugepages-2048kB"), Some(2 << 20));
        assert_eq!(parse_pool_dir_name("hugepages-1048576kB"), Some(1 << 30));
        assert_eq!(parse_pool_dir_name("hugepages-64kB"), Some(64 << 10));
        assert_eq!(parse_pool_dir_name("hugepages-0kB"), None);
        assert_eq!(parse_pool_dir_name("hugepages-2048"), None);
        assert_eq!(parse_pool_dir_name("transparent_hugepage"), None);
        assert_eq!(
            parse_pool_dir_name("hugepages-99999999999999999999kB"),
            None
        );
    }

    #[test]
    fn proc_meminfo_huge_page_lines_are_counts_or_bytes() {
        let text = "MemTotal:       16110080 kB\nAnonHugePages:     12288 kB\n\
HugePages_Total:       4\nHugePages_Free:        3\nHugePages_Rsvd:        1\n\
HugePages_Surp:        0\nHugepagesize:       2048 kB\nHugetlb:            8192 kB\n";
        let m = meminfo_hugepages(&parse_meminfo(text).unwrap());
        assert_eq!(
            m,
            MeminfoHugepages {
                hugepages_total: Some(4),
                hugepages_free: Some(3),
                hugepages_rsvd: Some(1),
                hugepages_surp: Some(0),
                hugepagesize_bytes: Some(2 << 20),
                hugetlb_bytes: Some(8 << 20),
                anon_huge_pages_bytes: Some(12 << 20),
            }
        );
    }

    #[test]
    fn proc_meminfo_without_huge_page_lines_gives_unknowns() {
        let m =
            meminfo_hugepages(&parse_meminfo("MemTotal:  1024 kB\nMemFree:  512 kB\n").unwrap());
        assert_eq!(m, MeminfoHugepages::default());
    }

    /// Lines of a Linux 4.x `/proc/vmstat` (node-exporter's fixture): `thp_split`, not yet
    /// `thp_split_page`.
    const VMSTAT_4X: &str = "nr_free_pages 977769\nnr_anon_transparent_hugepages 556\n\
compact_stall 210959\ncompact_fail 164840\ncompact_success 46119\nthp_fault_alloc 142261\n\
thp_fault_fallback 98119\nthp_collapse_alloc 88421\nthp_collapse_alloc_failed 20954\n\
thp_split 69984\nthp_zero_page_alloc 9\n";

    #[test]
    fn proc_vmstat_thp_counters_are_read_by_name() {
        let v = parse_vmstat_thp(VMSTAT_4X).unwrap();
        assert_eq!(v.thp_fault_alloc, Some(142261));
        assert_eq!(v.thp_fault_fallback, Some(98119));
        assert_eq!(v.thp_collapse_alloc_failed, Some(20954));
        assert_eq!(
            (v.compact_stall, v.compact_fail, v.compact_success),
            (Some(210959), Some(164840), Some(46119))
        );
        assert_eq!(v.nr_anon_transparent_hugepages, Some(556));
        let names: Vec<_> = v.counters().iter().map(|(n, _)| *n).collect();
        assert_eq!(names, VMSTAT_COUNTERS);
    }

    #[test]
    fn proc_vmstat_counter_missing_is_unknown_never_guessed() {
        // Before Linux 4.5 the split counter was `thp_split`: not taken for `thp_split_page`.
        let v = parse_vmstat_thp(VMSTAT_4X).unwrap();
        assert_eq!(v.thp_split_page, None);
        // A kernel without THP or compaction prints none of them.
        let v = parse_vmstat_thp("nr_free_pages 1\noom_kill 0\n").unwrap();
        assert_eq!(v, VmstatThp::default());
        assert_eq!(parse_vmstat_thp("").unwrap(), VmstatThp::default());
    }

    #[test]
    fn proc_vmstat_malformed_line_is_an_error_naming_the_line() {
        let e = parse_vmstat_thp("nr_free_pages 1\nthp_fault_alloc\n").unwrap_err();
        assert_eq!(e.to_string(), "line 2: thp_fault_alloc: no value");
        let e = parse_vmstat_thp("thp_fault_alloc 1\ncompact_stall -3\n").unwrap_err();
        assert!(e.to_string().starts_with("line 2: compact_stall"), "{e}");
    }

    // --- pool arithmetic ---

    fn pool(size: u64, node: Option<u32>, total: Option<u64>, free: Option<u64>) -> Pool {
        Pool {
            page_size_bytes: size,
            numa_node: node,
            total,
            free,
            reserved: None,
            surplus: Some(0),
            source: PoolSource::Sysfs,
        }
    }

    const M2: u64 = 2 << 20;
    const G1: u64 = 1 << 30;

    #[test]
    fn pool_bytes_counts_global_pools_only() {
        let pools = [
            pool(M2, None, Some(1024), Some(0)),
            pool(G1, None, Some(4), Some(4)),
            pool(M2, Some(0), Some(512), Some(0)),
            pool(G1, Some(1), Some(4), Some(4)),
            pool(M2 * 8, None, None, None),
        ];
        assert_eq!(pool_bytes(&pools), 1024 * M2 + 4 * G1);
        assert_eq!(pool_bytes(&[]), 0);
        assert_eq!(
            pool_bytes(&[pool(G1, None, Some(u64::MAX), None)]),
            u64::MAX
        );
        assert_eq!(layout(&pools), "2097152:1024,1073741824:4,16777216:?");
        assert_eq!(layout(&pools[2..4]), "none");
    }

    #[test]
    fn sizes_read_as_people_write_them() {
        assert_eq!(human_size(M2), "2 MiB");
        assert_eq!(human_size(G1), "1 GiB");
        assert_eq!(human_size(65536), "64 KiB");
        assert_eq!(human_size(1000), "1000 bytes");
        assert_eq!(approx_size(6 << 30), "6.0 GiB");
    }

    // --- settings ---

    #[test]
    fn settings_validate_pool_entries_naming_the_key() {
        let mut s = Settings::default();
        assert_eq!(s.validate(), Ok(()));
        s.pools.push(RequiredPool {
            size_bytes: 3000,
            ..RequiredPool::default()
        });
        assert!(
            s.validate()
                .unwrap_err()
                .starts_with("`pools[0].size_bytes` (3000)")
        );
        s.pools[0].size_bytes = M2;
        s.pools[0].min_total = 2;
        s.pools[0].min_free = 3;
        assert!(
            s.validate()
                .unwrap_err()
                .starts_with("`pools[0].min_free` (3)")
        );
        s.pools[0].min_free = 1;
        s.pools.push(s.pools[0].clone());
        assert!(
            s.validate()
                .unwrap_err()
                .starts_with("`pools[1]` names the same pool")
        );
        s.pools[1].numa_node = Some(1);
        assert_eq!(s.validate(), Ok(()));
    }

    #[test]
    fn settings_read_from_toml_and_reject_unknown_keys() {
        let s: Settings = toml::from_str(
            "thp_expected = \"always\"\npools = [{ size_bytes = 1073741824, min_total = 4, numa_node = 1 }]",
        )
        .unwrap();
        assert_eq!(s.thp_expected, ThpMode::Always);
        assert_eq!(s.pools[0].numa_node, Some(1));
        assert_eq!(s.pools[0].min_free, 0);
        assert!(toml::from_str::<Settings>("thp_expected = \"sometimes\"").is_err());
        assert!(toml::from_str::<Settings>("pools = [{ size = 1 }]").is_err());
    }

    // --- evaluate: a table ---

    fn thp(mode: &str) -> Option<ThpSetting> {
        Some(ThpSetting {
            selected: mode.into(),
            available: vec!["always".into(), "madvise".into(), "never".into()],
        })
    }

    fn facts(enabled: Option<&str>, defrag: Option<&str>, pools: Vec<Pool>) -> Facts {
        Facts {
            thp_enabled: enabled.and_then(thp),
            thp_defrag: defrag.and_then(thp),
            pool_bytes: pool_bytes(&pools),
            pools,
            meminfo: None,
            vmstat: None,
        }
    }

    #[test]
    fn evaluate_thp_modes() {
        let madvise = Settings::default();
        let never_expected = Settings {
            thp_expected: ThpMode::Never,
            ..Settings::default()
        };
        let velox_hp = Settings {
            memory_use_hugepages: true,
            ..Settings::default()
        };
        // (enabled, defrag, settings, status, a word the worst message must hold)
        type Row<'a> = (
            Option<&'a str>,
            Option<&'a str>,
            &'a Settings,
            Status,
            &'a str,
        );
        let table: [Row; 9] = [
            (
                Some("madvise"),
                Some("madvise"),
                &madvise,
                Status::Ok,
                "as expected",
            ),
            (Some("always"), None, &madvise, Status::Warn, "khugepaged"),
            (Some("never"), None, &madvise, Status::Ok, "no effect"),
            (Some("never"), None, &velox_hp, Status::Warn, "no effect"),
            (
                Some("madvise"),
                None,
                &never_expected,
                Status::Warn,
                "expected `never`",
            ),
            (
                Some("never"),
                None,
                &never_expected,
                Status::Ok,
                "as expected",
            ),
            (None, None, &madvise, Status::Ok, "unknown"),
            (
                Some("madvise"),
                Some("defer"),
                &velox_hp,
                Status::Ok,
                "as expected",
            ),
            (
                Some("madvise"),
                Some("madvise"),
                &velox_hp,
                Status::Warn,
                "direct compaction",
            ),
        ];
        for (enabled, defrag, settings, status, word) in table {
            let o = evaluate(&facts(enabled, defrag, vec![]), settings);
            let text = if status == Status::Ok {
                format!("{} {:?}", o.summary(), o.findings)
            } else {
                o.summary()
            };
            assert_eq!(o.status(), status, "{enabled:?} {defrag:?}: {text}");
            assert!(text.contains(word), "{enabled:?} {defrag:?}: {text}");
        }
    }

    #[test]
    fn evaluate_required_pools() {
        let pools = vec![
            pool(M2, None, Some(1024), Some(1000)),
            pool(G1, None, Some(4), Some(4)),
            pool(G1, Some(1), Some(4), Some(1)),
            pool(G1, Some(0), Some(0), Some(0)),
            pool(M2 * 8, None, None, None),
        ];
        let req = |size, node, min_total, min_free| RequiredPool {
            size_bytes: size,
            numa_node: node,
            min_total,
            min_free,
        };
        // (required pool, status, text in the message)
        let table = [
            (req(M2, None, 1024, 5), Status::Ok, ""),
            (
                req(M2, None, 2048, 0),
                Status::Fail,
                "1024 total pages, below `min_total` 2048",
            ),
            (
                req(M2, None, 0, 1001),
                Status::Fail,
                "1000 free pages, below `min_free` 1001",
            ),
            (req(G1, Some(1), 4, 1), Status::Ok, ""),
            (
                req(G1, Some(1), 4, 2),
                Status::Fail,
                "NUMA node 1 has 1 free pages",
            ),
            (
                req(G1, Some(0), 1, 0),
                Status::Fail,
                "NUMA node 0 has 0 total pages",
            ),
            (
                req(G1, Some(2), 1, 0),
                Status::Fail,
                "no 1 GiB huge page pool on NUMA node 2",
            ),
            (
                req(64 << 10, None, 1, 0),
                Status::Fail,
                "no global 64 KiB huge page pool",
            ),
            (
                req(M2 * 8, None, 1, 0),
                Status::Unknown,
                "nr_hugepages is missing",
            ),
        ];
        for (r, status, text) in table {
            let settings = Settings {
                pools: vec![r.clone()],
                ..Settings::default()
            };
            let o = evaluate(&facts(Some("madvise"), None, pools.clone()), &settings);
            assert_eq!(o.status(), status, "{r:?}: {}", o.summary());
            assert!(o.summary().contains(text), "{r:?}: {}", o.summary());
        }
    }

    #[test]
    fn evaluate_reports_pool_memory_gauges_and_inventory() {
        let f = facts(
            Some("madvise"),
            Some("defer"),
            vec![
                pool(M2, None, Some(1024), Some(0)),
                pool(G1, Some(1), Some(4), Some(4)),
            ],
        );
        let o = evaluate(&f, &Settings::default());
        assert_eq!(
            o.summary(),
            "THP `madvise` as expected; 2.0 GiB held in huge page pools (2 MiB x 1024)"
        );
        let g = |name: &str, labels: &[(&str, &str)]| {
            o.metrics
                .iter()
                .find(|s| {
                    s.name == name
                        && labels
                            .iter()
                            .all(|(k, v)| s.labels.iter().any(|(a, b)| a == k && b == v))
                })
                .map(|s| s.value)
        };
        let node1 = [
            ("page_size_bytes", "1073741824"),
            ("numa_node", "1"),
            ("state", "free"),
        ];
        assert_eq!(g("gluten_node_hugepages_pool_pages", &node1), Some(4.0));
        let global = [("numa_node", "global"), ("state", "reserved")];
        assert_eq!(g("gluten_node_hugepages_pool_pages", &global), None);
        assert_eq!(
            g("gluten_node_hugepages_pool_bytes", &[]),
            Some((2u64 << 30) as f64)
        );
        assert_eq!(
            g("gluten_node_hugepages_thp_enabled", &[("mode", "madvise")]),
            Some(1.0)
        );
        assert_eq!(
            g("gluten_node_hugepages_thp_enabled", &[("mode", "always")]),
            Some(0.0)
        );
        assert_eq!(
            g("gluten_node_hugepages_thp_defrag", &[("mode", "defer")]),
            Some(1.0)
        );
        assert_eq!(
            o.inventory,
            [
                ("hugepages.thp_enabled".to_string(), "madvise".to_string()),
                ("hugepages.thp_defrag".to_string(), "defer".to_string()),
                ("hugepages.layout".to_string(), "2097152:1024".to_string()),
            ]
        );
        let unknown = evaluate(&facts(None, None, vec![]), &Settings::default());
        assert!(unknown.metrics.iter().all(|s| !s.name.contains("thp")));
        assert_eq!(unknown.inventory[0].1, "unknown");
    }

    fn with_vmstat(mut f: Facts, text: &str) -> Facts {
        f.vmstat = Some(parse_vmstat_thp(text).unwrap());
        f
    }

    #[test]
    fn vmstat_counters_leave_statuses_unchanged_and_are_gauges() {
        let velox_hp = Settings {
            memory_use_hugepages: true,
            ..Settings::default()
        };
        for (enabled, defrag, settings) in [
            (Some("madvise"), Some("defer"), &Settings::default()),
            (Some("always"), None, &Settings::default()),
            (Some("madvise"), Some("madvise"), &velox_hp),
            (Some("never"), None, &velox_hp),
            (None, None, &velox_hp),
        ] {
            let without = evaluate(&facts(enabled, defrag, vec![]), settings);
            let with = evaluate(
                &with_vmstat(facts(enabled, defrag, vec![]), VMSTAT_4X),
                settings,
            );
            assert_eq!(with.status(), without.status(), "{enabled:?} {defrag:?}");
            assert_eq!(with.summary(), without.summary(), "{enabled:?} {defrag:?}");
            assert_eq!(with.inventory, without.inventory);
        }
        let o = evaluate(
            &with_vmstat(facts(Some("madvise"), None, vec![]), VMSTAT_4X),
            &Settings::default(),
        );
        assert!(o.findings.iter().all(|f| !f.message.contains("fell back")));
        let counter = |o: &Verdict, c: &str| {
            o.metrics
                .iter()
                .find(|s| {
                    s.name == "gluten_node_hugepages_vmstat"
                        && s.labels.iter().any(|(k, v)| *k == "counter" && v == c)
                })
                .map(|s| s.value)
        };
        assert_eq!(counter(&o, "thp_fault_fallback"), Some(98119.0));
        assert_eq!(counter(&o, "nr_anon_transparent_hugepages"), Some(556.0));
        assert_eq!(counter(&o, "thp_split_page"), None, "missing: no sample");
        assert_eq!(counter(&o, "thp_split"), None, "bounded label set");
        let none = evaluate(&facts(Some("madvise"), None, vec![]), &Settings::default());
        assert!(
            none.metrics
                .iter()
                .all(|s| s.name != "gluten_node_hugepages_vmstat")
        );
    }

    #[test]
    fn thp_fault_fallback_share_is_an_ok_finding_with_memory_use_hugepages() {
        let velox_hp = Settings {
            memory_use_hugepages: true,
            ..Settings::default()
        };
        let o = evaluate(
            &with_vmstat(facts(Some("madvise"), Some("defer"), vec![]), VMSTAT_4X),
            &velox_hp,
        );
        assert_eq!(o.status(), Status::Ok);
        let f = o
            .findings
            .iter()
            .find(|f| f.message.contains("fell back"))
            .expect("fallback finding");
        assert_eq!(f.status, Status::Ok);
        // 98119 / (142261 + 98119) = 40.8%
        assert!(
            f.message.starts_with("41% of THP page faults"),
            "{}",
            f.message
        );
        // No fallback, or a counter missing: nothing to say.
        for text in [
            "thp_fault_alloc 10\nthp_fault_fallback 0\n",
            "thp_fault_fallback 5\n",
        ] {
            let o = evaluate(
                &with_vmstat(facts(Some("madvise"), Some("defer"), vec![]), text),
                &velox_hp,
            );
            assert!(
                o.findings.iter().all(|f| !f.message.contains("fell back")),
                "{text}"
            );
        }
    }

    // --- reading through Host: the fallbacks ---

    fn write(root: &std::path::Path, rel: &str, text: &str) {
        let p = root.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }

    #[test]
    fn pools_come_from_sysfs_next_to_each_other_and_per_node() {
        let dir = tempfile::tempdir().unwrap();
        let r = dir.path();
        for (size, n) in [("2048", "8"), ("1048576", "2")] {
            let d = format!("sys/kernel/mm/hugepages/hugepages-{size}kB");
            write(r, &format!("{d}/nr_hugepages"), &format!("{n}\n"));
            write(r, &format!("{d}/free_hugepages"), "1\n");
            write(r, &format!("{d}/resv_hugepages"), "0\n");
            write(r, &format!("{d}/surplus_hugepages"), "0\n");
        }
        let d = "sys/devices/system/node/node1/hugepages/hugepages-1048576kB";
        write(r, &format!("{d}/nr_hugepages"), "2\n");
        write(r, &format!("{d}/free_hugepages"), "1\n");
        write(r, "sys/devices/system/node/node0/cpulist", "0-3\n");
        let pools = read_pools(&Host::new(r)).unwrap();
        let keys: Vec<_> = pools
            .iter()
            .map(|p| (p.numa_node, p.page_size_bytes, p.total))
            .collect();
        assert_eq!(
            keys,
            [
                (None, M2, Some(8)),
                (None, G1, Some(2)),
                (Some(1), G1, Some(2))
            ]
        );
        assert_eq!(pools[2].reserved, None);
        assert_eq!(pools[2].surplus, None, "missing file: unknown, not 0");
        assert_eq!(pool_bytes(&pools), 8 * M2 + 2 * G1);
    }

    #[test]
    fn without_sysfs_pools_meminfo_stands_in_for_the_default_size() {
        let dir = tempfile::tempdir().unwrap();
        let r = dir.path();
        write(
            r,
            "proc/meminfo",
            "HugePages_Total:       4\nHugePages_Free:        4\nHugePages_Rsvd:        0\nHugePages_Surp:        0\nHugepagesize:       2048 kB\n",
        );
        write(
            r,
            "sys/devices/system/node/node0/meminfo",
            "Node 0 HugePages_Total:     4\nNode 0 HugePages_Free:      4\nNode 0 HugePages_Surp:      0\n",
        );
        write(
            r,
            "sys/devices/system/node/node1/vmstat",
            "nr_free_pages 1\n",
        );
        let pools = read_pools(&Host::new(r)).unwrap();
        assert_eq!(pools.len(), 2, "{pools:?}");
        assert_eq!(pools[0].source, PoolSource::Meminfo);
        assert_eq!((pools[0].numa_node, pools[0].reserved), (None, Some(0)));
        assert_eq!((pools[1].numa_node, pools[1].total), (Some(0), Some(4)));
        assert_eq!(pool_bytes(&pools), 4 * M2);
    }

    #[test]
    fn a_bare_host_has_no_pools_and_malformed_files_name_the_path() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(read_pools(&Host::new(dir.path())).unwrap(), vec![]);
        write(
            dir.path(),
            "sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages",
            "x\n",
        );
        let e = read_pools(&Host::new(dir.path())).unwrap_err().to_string();
        assert!(
            e.contains("hugepages-2048kB/nr_hugepages") && e.contains("\"x\""),
            "{e}"
        );
    }

    #[test]
    fn proc_vmstat_is_optional_and_a_malformed_one_is_unknown_naming_file_and_line() {
        let dir = tempfile::tempdir().unwrap();
        let host = Host::new(dir.path());
        assert_eq!(read_facts(&host).unwrap().vmstat, None);
        write(dir.path(), "proc/vmstat", VMSTAT_4X);
        let v = read_facts(&host).unwrap().vmstat.unwrap();
        assert_eq!(v.thp_fault_alloc, Some(142261));
        write(
            dir.path(),
            "proc/vmstat",
            "nr_free_pages 1\nthp_fault_alloc x\n",
        );
        let e = Hugepages::build(Settings::default(), &Shared::default())
            .read(&host)
            .err()
            .unwrap()
            .to_string();
        assert!(
            e.contains("proc/vmstat") && e.contains("line 2: thp_fault_alloc"),
            "{e}"
        );
    }

    proptest! {
        #[test]
        fn parsers_never_panic(s in "\\PC*", b in proptest::collection::vec(any::<u8>(), 0..256)) {
            let lossy = String::from_utf8_lossy(&b);
            for t in [s.as_str(), &lossy] {
                let _ = parse_thp_setting(t);
                let _ = parse_pool_dir_name(t);
                if let Ok(f) = parse_meminfo(t) {
                    let _ = meminfo_hugepages(&f);
                }
                if let Ok(v) = parse_vmstat_thp(t) {
                    let _ = v.counters();
                }
            }
        }

        #[test]
        fn vmstat_like_text_never_panics(
            lines in proptest::collection::vec("(thp_fault_alloc|thp_split_page|compact_stall|[a-z_]{1,12})( +-?[0-9]{0,21}){0,3}", 0..20)
        ) {
            let _ = parse_vmstat_thp(&lines.join("\n"));
        }
    }
}

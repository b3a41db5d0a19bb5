//! What one read of the hugepages check observed, in base units, and sums over it.

pub use crate::procfs_text::MeminfoHugepages;
use serde::Serialize;

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

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    pub(crate) fn pool(
        size: u64,
        node: Option<u32>,
        total: Option<u64>,
        free: Option<u64>,
    ) -> Pool {
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

    pub(crate) const M2: u64 = 2 << 20;
    pub(crate) const G1: u64 = 1 << 30;

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
}

//! What a read of the NUMA topology observed.

use crate::procfs_text::CpuList;
use serde::Serialize;

/// One NUMA node. `None`: the file that says it is missing.
#[derive(Serialize, Clone, Debug, PartialEq)]
pub struct Node {
    pub id: u32,
    /// `cpulist`, canonical form; `""` for a CPU-less (memory-only) node.
    pub cpus: Option<CpuList>,
    pub cpu_count: Option<u64>,
    pub memory_total_bytes: Option<u64>,
    pub memory_free_bytes: Option<u64>,
    /// `distance`: this node's row of the SLIT, indexed like the node list (10 = local).
    pub distances: Option<Vec<u32>>,
}

/// The agent's own cpuset (`/proc/self/status`), and the nodes it spans.
#[derive(Serialize, Clone, Debug, PartialEq)]
pub struct Cpuset {
    /// `Cpus_allowed_list`.
    pub cpus: Option<CpuList>,
    pub cpu_count: Option<u64>,
    /// `Mems_allowed_list`: the NUMA nodes it may allocate from.
    pub mems: Option<CpuList>,
    /// Nodes whose CPUs the cpuset includes (from the nodes' `cpulist`).
    pub cpu_nodes: Vec<u32>,
}

/// What the check observed.
#[derive(Serialize, Clone, Debug, PartialEq)]
pub struct Facts {
    /// Number of `node<N>` dirs under `/sys/devices/system/node` (0: no NUMA sysfs, e.g. a kernel
    /// without `CONFIG_NUMA`).
    pub node_count: usize,
    pub nodes: Vec<Node>,
    /// Nodes whose `MemTotal` is above 0.
    pub memory_nodes: Vec<u32>,
    /// Nodes with an empty `cpulist`.
    pub cpuless_nodes: Vec<u32>,
    /// CPU-less nodes that have memory (CXL or HBM expanders, or a socket with CPUs offline).
    pub memory_only_nodes: Vec<u32>,
    /// `kernel.numa_balancing`: 0 off, 1 normal, 2 memory tiering, 3 both; `None` when absent.
    pub numa_balancing: Option<u32>,
    /// `(max free - min free) / max free` over the nodes with memory; `None` with fewer than 2.
    pub free_skew_ratio: Option<f64>,
    /// `None` when `/proc/self/status` is missing.
    pub cpuset: Option<Cpuset>,
}

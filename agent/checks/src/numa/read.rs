//! The read: the only part of `numa` that touches the host.

use super::NUMA_BALANCING;
use super::*;
use crate::check::CheckError;
use crate::host::Host;
use crate::procfs_text::{CpuList, NODES_DIR, field, node_ids, parse_cpulist, parse_meminfo};

pub(super) fn read_node(host: &Host, id: u32) -> Result<Node, CheckError> {
    let dir = format!("{NODES_DIR}/node{id}");
    let cpus = host.parse_optional(format!("{dir}/cpulist"), parse_cpulist)?;
    let meminfo = host.parse_optional(format!("{dir}/meminfo"), parse_meminfo)?;
    let get = |k: &str| meminfo.as_deref().and_then(|f| field(f, k));
    Ok(Node {
        id,
        cpu_count: cpus.as_ref().map(CpuList::count),
        cpus,
        memory_total_bytes: get("MemTotal"),
        memory_free_bytes: get("MemFree"),
        distances: host.parse_optional(format!("{dir}/distance"), parse_distance)?,
    })
}

/// Reads everything the check looks at.
pub fn read_facts(host: &Host) -> Result<Facts, CheckError> {
    let nodes = node_ids(host)?
        .into_iter()
        .map(|id| read_node(host, id))
        .collect::<Result<Vec<_>, _>>()?;
    let cpuset = host
        .parse_optional("/proc/self/status", parse_status_cpuset)?
        .map(|(cpus, mems)| Cpuset {
            cpu_count: cpus.as_ref().map(CpuList::count),
            cpu_nodes: match &cpus {
                Some(c) => nodes
                    .iter()
                    .filter(|n| n.cpus.as_ref().is_some_and(|nc| nc.intersects(c)))
                    .map(|n| n.id)
                    .collect(),
                None => Vec::new(),
            },
            cpus,
            mems,
        });
    let has_memory = |n: &&Node| n.memory_total_bytes.unwrap_or(0) > 0;
    let cpuless = |n: &&Node| n.cpus.as_ref().is_some_and(CpuList::is_empty);
    Ok(Facts {
        node_count: nodes.len(),
        memory_nodes: nodes.iter().filter(has_memory).map(|n| n.id).collect(),
        cpuless_nodes: nodes.iter().filter(cpuless).map(|n| n.id).collect(),
        memory_only_nodes: nodes
            .iter()
            .filter(|n| has_memory(n) && cpuless(n))
            .map(|n| n.id)
            .collect(),
        numa_balancing: host.parse_optional(NUMA_BALANCING, parse_numa_balancing)?,
        free_skew_ratio: free_skew_ratio(&nodes),
        cpuset,
        nodes,
    })
}

//! The pure evaluation: facts and settings to a verdict.

use super::*;
use super::{NUMA_BALANCING, NUMA_BALANCING_NORMAL};
use crate::check::Verdict;
use crate::fmt;
use crate::procfs_text::NODES_DIR;
use proto::{Finding, Status};

pub(super) fn ids(ids: &[u32]) -> String {
    ids.iter()
        .map(|i| format!("node{i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Compares the facts with the settings.
pub fn evaluate(facts: &Facts, settings: &Settings) -> Verdict {
    let mut o = Verdict::default();
    let mem_nodes = facts.memory_nodes.len();
    match facts.numa_balancing {
        Some(v) if mem_nodes > 1 && v & NUMA_BALANCING_NORMAL == 0 => o.push(
            Finding::new(
                Status::Warn,
                format!(
                    "kernel.numa_balancing is {v} on a host with {mem_nodes} NUMA nodes with memory (expected 1 or 3): Gluten removed its own NUMA binding and its maintainers recommend NUMA balancing on multi-node hosts (apache/gluten#10557)"
                ),
            )
            .about(NUMA_BALANCING),
        ),
        None if mem_nodes > 1 => o.push(
            Finding::new(
                Status::Ok,
                format!(
                    "kernel.numa_balancing is unknown ({NUMA_BALANCING} is missing) on a host with {mem_nodes} NUMA nodes with memory"
                ),
            )
            .about(NUMA_BALANCING),
        ),
        _ => {}
    }
    if let Some(skew) = facts.free_skew_ratio
        && skew > settings.max_free_skew_ratio
    {
        let with_mem = facts
            .nodes
            .iter()
            .filter(|n| n.memory_total_bytes.unwrap_or(0) > 0);
        let free = with_mem
            .filter_map(|n| {
                n.memory_free_bytes
                    .map(|f| format!("node{} {}", n.id, fmt::bytes(f)))
            })
            .collect::<Vec<_>>()
            .join(", ");
        o.push(Finding::new(
            Status::Warn,
            format!(
                "free memory is skewed across NUMA nodes ({free}): (max - min) / max free is {skew:.2}, above `max_free_skew_ratio` {}",
                settings.max_free_skew_ratio
            ),
        ));
    }
    if !facts.memory_only_nodes.is_empty() {
        o.push(Finding::new(
            Status::Ok,
            format!(
                "memory-only NUMA nodes (memory, no CPUs): {}",
                ids(&facts.memory_only_nodes)
            ),
        ));
    }
    let unknown_mem: Vec<u32> = facts
        .nodes
        .iter()
        .filter(|n| n.memory_total_bytes.is_none())
        .map(|n| n.id)
        .collect();
    if !unknown_mem.is_empty() {
        o.push(Finding::new(
            Status::Ok,
            format!(
                "memory of {} unknown (no meminfo); balancing and skew judged on the other nodes",
                ids(&unknown_mem)
            ),
        ));
    }

    o.ok_summary = Some(summary(facts));
    add_metrics(&mut o, facts);
    o.inventory = vec![
        ("numa.nodes".into(), facts.node_count.to_string()),
        (
            "numa.balancing".into(),
            facts
                .numa_balancing
                .map_or("unknown".into(), |v| v.to_string()),
        ),
    ];
    o
}

pub(super) fn summary(facts: &Facts) -> String {
    if facts.node_count == 0 {
        return format!("no NUMA nodes listed in {NODES_DIR}");
    }
    let cpus = facts
        .nodes
        .iter()
        .map(|n| match &n.cpus {
            Some(c) if c.is_empty() => "none".to_string(),
            Some(c) => c.to_string(),
            None => "?".to_string(),
        })
        .collect::<Vec<_>>()
        .join(" / ");
    let mut s = format!(
        "{} NUMA node{} (cpus {cpus}), numa_balancing {}",
        facts.node_count,
        if facts.node_count == 1 { "" } else { "s" },
        facts
            .numa_balancing
            .map_or("unknown".to_string(), |v| v.to_string())
    );
    if let Some(skew) = facts.free_skew_ratio {
        s.push_str(&format!(", free skew {skew:.2}"));
    }
    if let Some(c) = &facts.cpuset
        && c.cpus.is_some()
    {
        s.push_str(&format!(
            ", agent cpuset spans {} node(s)",
            c.cpu_nodes.len()
        ));
    }
    s
}

pub(super) fn add_metrics(o: &mut Verdict, facts: &Facts) {
    o.gauge(
        "gluten_node_numa_nodes",
        "NUMA nodes listed in /sys/devices/system/node.",
        &[],
        facts.node_count as f64,
    );
    for n in &facts.nodes {
        let id = n.id.to_string();
        for (state, v) in [
            ("total", n.memory_total_bytes),
            ("free", n.memory_free_bytes),
        ] {
            if let Some(v) = v {
                o.gauge(
                    "gluten_node_numa_node_memory_bytes",
                    "Memory of a NUMA node (node meminfo MemTotal, MemFree).",
                    &[("numa_node", &id), ("state", state)],
                    v as f64,
                );
            }
        }
        if let Some(c) = n.cpu_count {
            o.gauge(
                "gluten_node_numa_node_cpus",
                "CPUs of a NUMA node (its cpulist).",
                &[("numa_node", &id)],
                c as f64,
            );
        }
    }
    if let Some(v) = facts.numa_balancing {
        o.gauge(
            "gluten_node_numa_balancing",
            "kernel.numa_balancing (0 off, 1 normal, 2 memory tiering, 3 both).",
            &[],
            f64::from(v),
        );
    }
    if let Some(s) = facts.free_skew_ratio {
        o.gauge(
            "gluten_node_numa_free_skew_ratio",
            "(max - min) / max of MemFree over the NUMA nodes with memory.",
            &[],
            s,
        );
    }
    if let Some(c) = &facts.cpuset
        && c.cpus.is_some()
    {
        o.gauge(
            "gluten_node_numa_cpuset_nodes",
            "NUMA nodes whose CPUs the agent's own cpuset includes.",
            &[],
            c.cpu_nodes.len() as f64,
        );
    }
}

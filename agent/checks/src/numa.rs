//! `numa`: the NUMA topology (nodes, their CPUs, memory and distances), `kernel.numa_balancing`,
//! free-memory skew across nodes, and which nodes the agent's own cpuset spans.
//!
//! Gluten removed its own executor NUMA binding (apache/gluten#10578); its maintainers recommend
//! kernel NUMA balancing on multi-node hosts instead (apache/gluten#10557).
//!
//! Parts, in the order every check has them: the check and its registration, settings, facts,
//! pure parsers, the read (the only part that touches the `Host`), the pure evaluation.

use crate::Registration;
use crate::check::{CheckError, CheckSettings, NodeCheck, ParseError, Shared, Verdict};
use crate::error::excerpt;
use crate::fmt;
use crate::host::Host;
use crate::procfs_text::{
    CpuList, NODES_DIR, field, node_ids, parse_count, parse_cpulist, parse_meminfo,
};
use proto::{Finding, Status};
use serde::{Deserialize, Serialize};

const NUMA_BALANCING: &str = "/proc/sys/kernel/numa_balancing";
/// `NUMA_BALANCING_NORMAL`: the bit of `numa_balancing` that migrates pages and tasks between
/// nodes (bit 2 is memory tiering only).
const NUMA_BALANCING_NORMAL: u32 = 1;

// ---------------------------------------------------------------------------------------------
// The check

/// The check: its settings; every read is fresh.
pub struct Numa {
    settings: Settings,
}

/// This check in the registry (`checks::ALL`).
pub const REGISTRATION: Registration = Registration::of::<Numa>();

impl NodeCheck for Numa {
    const NAME: &'static str = "numa";
    type Settings = Settings;
    type Facts = Facts;

    fn build(settings: Settings, _shared: &Shared) -> Self {
        Numa { settings }
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

// ---------------------------------------------------------------------------------------------
// Settings

/// `[numa]` settings.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    /// Warn when `(max free - min free) / max free` over the nodes with memory exceeds this.
    pub max_free_skew_ratio: f64,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            max_free_skew_ratio: 0.5,
        }
    }
}

impl CheckSettings for Settings {
    fn validate(&self) -> Result<(), String> {
        let r = self.max_free_skew_ratio;
        if !(r.is_finite() && r > 0.0 && r <= 1.0) {
            return Err(format!(
                "`max_free_skew_ratio` ({r}) must be in (0, 1]: it compares (max free - min free) / max free across nodes"
            ));
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// Facts

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

// ---------------------------------------------------------------------------------------------
// Pure parsers.

/// Parses a node's `distance` file: one row of the distance matrix, `10 21`.
pub fn parse_distance(text: &str) -> Result<Vec<u32>, ParseError> {
    let row: Vec<u32> = text
        .split_whitespace()
        .map(|w| {
            w.parse()
                .map_err(|_| ParseError::new(format!("bad distance {}", excerpt(w))))
        })
        .collect::<Result<_, _>>()?;
    if row.is_empty() {
        return Err(ParseError::new("no distances"));
    }
    Ok(row)
}

/// Parses `/proc/sys/kernel/numa_balancing` (0..=3 today; any small number accepted).
pub fn parse_numa_balancing(text: &str) -> Result<u32, ParseError> {
    let v = parse_count(text)?;
    u32::try_from(v).map_err(|_| ParseError::new(format!("numa_balancing {v} is out of range")))
}

/// `Cpus_allowed_list` and `Mems_allowed_list` of a `/proc/<pid>/status`; `None` when absent.
pub fn parse_status_cpuset(text: &str) -> Result<(Option<CpuList>, Option<CpuList>), ParseError> {
    let mut cpus = None;
    let mut mems = None;
    for (i, line) in text.lines().enumerate() {
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        let slot = match key.trim() {
            "Cpus_allowed_list" => &mut cpus,
            "Mems_allowed_list" => &mut mems,
            _ => continue,
        };
        *slot = Some(
            parse_cpulist(value).map_err(|e| ParseError::at_line(i + 1, format!("{key}: {e}")))?,
        );
    }
    Ok((cpus, mems))
}

/// `(max - min) / max` of the free memory of nodes that have memory; `None` with fewer than two
/// such nodes, 0 when all are empty.
pub fn free_skew_ratio(nodes: &[Node]) -> Option<f64> {
    let free: Vec<u64> = nodes
        .iter()
        .filter(|n| n.memory_total_bytes.unwrap_or(0) > 0)
        .filter_map(|n| n.memory_free_bytes)
        .collect();
    if free.len() < 2 {
        return None;
    }
    let max = *free.iter().max()?;
    let min = *free.iter().min()?;
    if max == 0 {
        return Some(0.0);
    }
    Some((max - min) as f64 / max as f64)
}

// ---------------------------------------------------------------------------------------------
// Read: the only part that touches the host.

fn read_node(host: &Host, id: u32) -> Result<Node, CheckError> {
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

// ---------------------------------------------------------------------------------------------
// Evaluate (pure).

fn ids(ids: &[u32]) -> String {
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

fn summary(facts: &Facts) -> String {
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

fn add_metrics(o: &mut Verdict, facts: &Facts) {
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

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    // --- parsers: one test per quirk ---

    #[test]
    fn distance_rows() {
        assert_eq!(parse_distance("10 21\n").unwrap(), [10, 21]);
        assert_eq!(parse_distance("10").unwrap(), [10]);
        assert!(parse_distance("\n").is_err());
        assert!(parse_distance("10 x").is_err());
    }

    #[test]
    fn numa_balancing_values() {
        assert_eq!(parse_numa_balancing("1\n"), Ok(1));
        assert_eq!(parse_numa_balancing("0"), Ok(0));
        assert!(parse_numa_balancing("on").is_err());
        assert!(parse_numa_balancing("99999999999").is_err());
    }

    #[test]
    fn status_cpuset_lines() {
        let text = "Name:\tgluten-node-agent\nCpus_allowed:\tffff\nCpus_allowed_list:\t0-15\n\
Mems_allowed:\t00000000,00000001\nMems_allowed_list:\t0\nvoluntary_ctxt_switches:\t1\n";
        let (cpus, mems) = parse_status_cpuset(text).unwrap();
        assert_eq!(cpus.unwrap().to_string(), "0-15");
        assert_eq!(mems.unwrap().to_string(), "0");
        assert_eq!(parse_status_cpuset("Name:\tx\n").unwrap(), (None, None));
        let e = parse_status_cpuset("Name:\tx\nCpus_allowed_list:\t3-1\n").unwrap_err();
        assert!(e.0.starts_with("line 2: Cpus_allowed_list"), "{e}");
    }

    // --- evaluate: a table ---

    const G: u64 = 1 << 30;

    fn node(id: u32, cpus: &str, total: Option<u64>, free: Option<u64>) -> Node {
        let cpus = parse_cpulist(cpus).unwrap();
        Node {
            id,
            cpu_count: Some(cpus.count()),
            cpus: Some(cpus),
            memory_total_bytes: total,
            memory_free_bytes: free,
            distances: None,
        }
    }

    fn facts(nodes: Vec<Node>, balancing: Option<u32>) -> Facts {
        let memory_nodes: Vec<u32> = nodes
            .iter()
            .filter(|n| n.memory_total_bytes.unwrap_or(0) > 0)
            .map(|n| n.id)
            .collect();
        let cpuless: Vec<u32> = nodes
            .iter()
            .filter(|n| n.cpus.as_ref().unwrap().is_empty())
            .map(|n| n.id)
            .collect();
        Facts {
            node_count: nodes.len(),
            memory_only_nodes: cpuless
                .iter()
                .copied()
                .filter(|i| memory_nodes.contains(i))
                .collect(),
            memory_nodes,
            cpuless_nodes: cpuless,
            numa_balancing: balancing,
            free_skew_ratio: free_skew_ratio(&nodes),
            cpuset: None,
            nodes,
        }
    }

    #[test]
    fn evaluate_table() {
        let two = |f0, f1| {
            vec![
                node(0, "0-15", Some(64 * G), Some(f0 * G)),
                node(1, "16-31", Some(64 * G), Some(f1 * G)),
            ]
        };
        let settings = Settings::default();
        // (nodes, numa_balancing, status, text in the summary or findings)
        let table: Vec<(Vec<Node>, Option<u32>, Status, &str)> = vec![
            (
                two(40, 38),
                Some(1),
                Status::Ok,
                "2 NUMA nodes (cpus 0-15 / 16-31), numa_balancing 1, free skew 0.05",
            ),
            (
                two(40, 38),
                Some(0),
                Status::Warn,
                "kernel.numa_balancing is 0 on a host with 2 NUMA nodes with memory",
            ),
            (two(40, 38), Some(2), Status::Warn, "is 2"),
            (two(40, 38), Some(3), Status::Ok, "numa_balancing 3"),
            (two(40, 38), None, Status::Ok, "unknown"),
            (
                two(40, 10),
                Some(1),
                Status::Warn,
                "(max - min) / max free is 0.75, above `max_free_skew_ratio` 0.5",
            ),
            (two(40, 20), Some(1), Status::Ok, "free skew 0.50"),
            (two(0, 0), Some(1), Status::Ok, "free skew 0.00"),
            (
                vec![node(0, "0-7", Some(64 * G), Some(G))],
                Some(0),
                Status::Ok,
                "1 NUMA node (cpus 0-7), numa_balancing 0",
            ),
            (
                vec![
                    node(0, "0-7", Some(64 * G), Some(G)),
                    node(1, "", Some(0), Some(0)),
                ],
                Some(0),
                Status::Ok,
                "cpus 0-7 / none",
            ),
            (
                vec![
                    node(0, "0-7", Some(64 * G), Some(40 * G)),
                    node(1, "", Some(64 * G), Some(40 * G)),
                ],
                Some(1),
                Status::Ok,
                "memory-only NUMA nodes (memory, no CPUs): node1",
            ),
            (
                vec![
                    node(0, "0-7", Some(64 * G), Some(G)),
                    node(1, "8-15", None, None),
                ],
                Some(0),
                Status::Ok,
                "memory of node1 unknown",
            ),
            (vec![], None, Status::Ok, "no NUMA nodes"),
        ];
        for (nodes, balancing, status, text) in table {
            let f = facts(nodes, balancing);
            let o = evaluate(&f, &settings);
            let all = format!("{} | {:?}", o.summary(), o.findings);
            assert_eq!(o.status(), status, "{all}");
            assert!(all.contains(text), "wanted {text:?} in {all}");
        }
    }

    #[test]
    fn skew_threshold_is_configurable_and_validated() {
        let f = facts(
            vec![
                node(0, "0", Some(64 * G), Some(40 * G)),
                node(1, "1", Some(64 * G), Some(30 * G)),
            ],
            Some(1),
        );
        assert_eq!(evaluate(&f, &Settings::default()).status(), Status::Ok);
        let strict = Settings {
            max_free_skew_ratio: 0.2,
        };
        assert_eq!(evaluate(&f, &strict).status(), Status::Warn);
        for bad in [0.0, -1.0, 1.5, f64::NAN] {
            let e = Settings {
                max_free_skew_ratio: bad,
            }
            .validate()
            .unwrap_err();
            assert!(e.starts_with("`max_free_skew_ratio`"), "{e}");
        }
        assert!(toml::from_str::<Settings>("skew = 1").is_err());
    }

    #[test]
    fn gauges_and_inventory() {
        let f = facts(
            vec![
                node(0, "0-15", Some(64 * G), Some(40 * G)),
                node(1, "16-31", Some(64 * G), Some(30 * G)),
            ],
            Some(1),
        );
        let o = evaluate(&f, &Settings::default());
        let find = |name: &str, labels: &[(&str, &str)]| {
            o.metrics
                .iter()
                .find(|s| {
                    s.name == name
                        && s.labels.len() == labels.len()
                        && labels
                            .iter()
                            .all(|(k, v)| s.labels.iter().any(|(a, b)| a == k && b == v))
                })
                .map(|s| s.value)
        };
        assert_eq!(find("gluten_node_numa_nodes", &[]), Some(2.0));
        assert_eq!(
            find(
                "gluten_node_numa_node_memory_bytes",
                &[("numa_node", "1"), ("state", "free")]
            ),
            Some((30 * G) as f64)
        );
        assert_eq!(
            find("gluten_node_numa_node_cpus", &[("numa_node", "0")]),
            Some(16.0)
        );
        assert_eq!(find("gluten_node_numa_balancing", &[]), Some(1.0));
        assert_eq!(
            o.inventory,
            [
                ("numa.nodes".to_string(), "2".to_string()),
                ("numa.balancing".to_string(), "1".to_string())
            ]
        );
    }

    // --- reading: node dirs with only vmstat, cpuset spanning nodes ---

    fn write(root: &std::path::Path, rel: &str, text: &str) {
        let p = root.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }

    #[test]
    fn a_node_dir_with_only_vmstat_is_a_node_with_unknown_memory() {
        let dir = tempfile::tempdir().unwrap();
        write(
            dir.path(),
            "sys/devices/system/node/node1/vmstat",
            "nr_free_pages 1\n",
        );
        let f = read_facts(&Host::new(dir.path())).unwrap();
        assert_eq!(f.node_count, 1);
        assert_eq!(
            f.nodes[0],
            Node {
                id: 1,
                cpus: None,
                cpu_count: None,
                memory_total_bytes: None,
                memory_free_bytes: None,
                distances: None
            }
        );
        assert_eq!((f.numa_balancing, &f.cpuset), (None, &None));
    }

    #[test]
    fn the_agent_cpuset_spans_the_nodes_whose_cpus_it_holds() {
        let dir = tempfile::tempdir().unwrap();
        let r = dir.path();
        write(r, "sys/devices/system/node/node0/cpulist", "0-15\n");
        write(r, "sys/devices/system/node/node1/cpulist", "16-31\n");
        write(r, "sys/devices/system/node/node10/cpulist", "32-47\n");
        write(
            r,
            "proc/self/status",
            "Cpus_allowed_list:\t8-20\nMems_allowed_list:\t0-1\n",
        );
        let f = read_facts(&Host::new(r)).unwrap();
        assert_eq!(f.nodes.iter().map(|n| n.id).collect::<Vec<_>>(), [0, 1, 10]);
        let c = f.cpuset.unwrap();
        assert_eq!((c.cpu_nodes, c.cpu_count), (vec![0, 1], Some(13)));
        assert_eq!(c.mems.unwrap().to_string(), "0-1");
    }

    proptest! {
        #[test]
        fn parsers_never_panic(s in "\\PC*", b in proptest::collection::vec(any::<u8>(), 0..256)) {
            let lossy = String::from_utf8_lossy(&b);
            for t in [s.as_str(), &lossy] {
                if let Ok(c) = parse_cpulist(t) {
                    let _ = (c.count(), c.to_string());
                }
                let _ = parse_distance(t);
                let _ = parse_numa_balancing(t);
                let _ = parse_status_cpuset(t);
            }
        }
    }
}

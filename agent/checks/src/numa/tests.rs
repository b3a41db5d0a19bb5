//! Unit tests of the numa check: parsers (one per quirk), reads of fixture trees, evaluation.

use super::evaluate::*;
use super::parse::*;
use super::read::*;
use super::*;
use crate::check::CheckSettings;
use crate::procfs_text::parse_cpulist;
use proptest::prelude::*;
use proto::Status;

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
        .unwrap_err()
        .to_string();
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

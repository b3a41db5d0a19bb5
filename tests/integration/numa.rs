//! The `numa` check on the upstream trees and the crafted two-socket tree, against golden reports
//! (`tests/fixtures/expected/numa-*.json`; `UPDATE_EXPECT=1` rewrites them).

use checks::check::{Check, Runner};
use checks::host::Host;
use checks::numa::Numa;
use gluten_node_tests::*;
use proto::Status;
use std::path::Path;

/// The check's report through the engine, plus its gauges and inventory from a direct run.
fn report(root: &Path, settings_toml: &str) -> (proto::CheckResult, serde_json::Value) {
    let result = run_check(root, "numa", settings_toml);
    let settings = config(root, &format!("[numa]\n{settings_toml}\n"))
        .check::<Numa>()
        .settings
        .clone();
    let outcome = Runner::<Numa>::new(settings).run(&Host::new(root)).unwrap();
    let golden = report_with_gauges(root, &result, &outcome);
    (result, golden)
}

#[test]
fn node_exporter_tree_has_three_nodes_one_memory_only() {
    let root = upstream("node-exporter-upstream");
    let (r, golden) = report(&root, "");
    assert_eq!(r.status, Status::Ok, "{}", r.summary);
    assert_eq!(r.facts["memory_only_nodes"], serde_json::json!([2]));
    assert_eq!(r.facts["numa_balancing"], serde_json::Value::Null);
    assert_golden("numa-node-exporter-upstream", &golden);
}

#[test]
fn procfs_tree_has_nodes_with_only_vmstat() {
    let root = upstream("procfs-upstream");
    let (r, golden) = report(&root, "");
    assert_eq!(r.status, Status::Ok, "{}", r.summary);
    assert_eq!(r.facts["node_count"], 2);
    assert_eq!(
        r.facts["nodes"][0]["memory_total_bytes"],
        serde_json::Value::Null
    );
    assert_golden("numa-procfs-upstream", &golden);
}

#[test]
fn two_sockets_balanced() {
    let root = fixture("two-sockets-1g");
    let (r, golden) = report(&root, "");
    assert_eq!(r.status, Status::Ok, "{}", r.summary);
    assert_eq!(r.facts["cpuset"]["cpu_nodes"], serde_json::json!([0, 1]));
    assert_golden("numa-two-sockets-1g", &golden);
}

#[test]
fn two_sockets_without_balancing_and_with_skew_warn_twice() {
    let tree = copy_tree(&fixture("two-sockets-1g"));
    let t = tree.path();
    std::fs::write(t.join("proc/sys/kernel/numa_balancing"), "0\n").unwrap();
    let meminfo = t.join("sys/devices/system/node/node1/meminfo");
    let text = std::fs::read_to_string(&meminfo)
        .unwrap()
        .replace("MemFree:        37748736 kB", "MemFree:         4194304 kB");
    std::fs::write(&meminfo, text).unwrap();
    let (r, golden) = report(t, "");
    assert_eq!(r.status, Status::Warn);
    assert_eq!(r.findings.len(), 2, "{:?}", r.findings);
    assert_golden("numa-two-sockets-1g-unbalanced", &golden);
    // A looser threshold keeps only the numa_balancing warning.
    let r = run_check(t, "numa", "max_free_skew_ratio = 0.95");
    assert_eq!(r.findings.len(), 1, "{:?}", r.findings);
    // Balancing absent: unknown fact, no warning.
    std::fs::remove_file(t.join("proc/sys/kernel/numa_balancing")).unwrap();
    let r = run_check(t, "numa", "max_free_skew_ratio = 0.95");
    assert_eq!(r.status, Status::Ok, "{}", r.summary);
}

//! The `hugepages` check on the upstream trees and the crafted two-socket tree, against golden
//! reports (`tests/fixtures/expected/hugepages-*.json`; `UPDATE_EXPECT=1` rewrites them).

use checks::check::{Check, Runner};
use checks::host::Host;
use checks::hugepages::{self, Hugepages};
use gluten_node_tests::*;
use proto::Status;
use std::path::Path;

/// The check's report through the engine, plus its gauges and inventory from a direct run.
fn report(root: &Path, settings_toml: &str) -> (proto::CheckResult, serde_json::Value) {
    let result = run_check(root, "hugepages", settings_toml);
    let settings = config(root, &format!("[hugepages]\n{settings_toml}\n"))
        .check::<Hugepages>()
        .settings
        .clone();
    let outcome = Runner::<Hugepages>::new(settings)
        .run(&Host::new(root))
        .unwrap();
    let golden = report_with_gauges(root, &result, &outcome);
    (result, golden)
}

#[test]
fn node_exporter_tree_has_no_thp_files_and_meminfo_pools_only() {
    let root = upstream("node-exporter-upstream");
    let (r, golden) = report(&root, "");
    assert_eq!(r.status, Status::Ok);
    assert!(r.summary.contains("THP mode unknown"), "{}", r.summary);
    assert_eq!(r.facts["thp_enabled"], serde_json::Value::Null);
    // /proc/vmstat of a 4.x kernel: THP counters, but `thp_split` instead of `thp_split_page`.
    let v = &r.facts["vmstat"];
    assert_eq!(v["thp_fault_alloc"], 142261);
    assert_eq!(v["thp_fault_fallback"], 98119);
    assert_eq!(v["compact_stall"], 210959);
    assert_eq!(v["nr_anon_transparent_hugepages"], 556);
    assert_eq!(v["thp_split_page"], serde_json::Value::Null);
    assert!(r.findings.iter().all(|f| !f.message.contains("fell back")));
    assert_golden("hugepages-node-exporter-upstream", &golden);
    // With memoryUseHugePages on, the fallback share is said, still `ok`.
    let r = run_check(&root, "hugepages", "memory_use_hugepages = true");
    assert_eq!(r.status, Status::Ok, "{}", r.summary);
    assert!(
        r.findings
            .iter()
            .any(|f| f.status == Status::Ok && f.message.starts_with("41% of THP page faults")),
        "{:?}",
        r.findings
    );
}

#[test]
fn procfs_tree_has_no_thp_files_and_no_node_pools() {
    let root = upstream("procfs-upstream");
    let (r, golden) = report(&root, "");
    assert_eq!(r.status, Status::Ok);
    assert_eq!(r.facts["pools"].as_array().unwrap().len(), 1, "{}", r.facts);
    assert_eq!(
        r.facts["vmstat"],
        serde_json::Value::Null,
        "no /proc/vmstat"
    );
    assert_golden("hugepages-procfs-upstream", &golden);
}

#[test]
fn two_sockets_with_1g_pages_on_one_node() {
    let root = fixture("two-sockets-1g");
    let (r, golden) = report(&root, "");
    assert_eq!(r.status, Status::Ok, "{}", r.summary);
    assert_eq!(r.facts["pool_bytes"], 6u64 << 30);
    assert_eq!(
        hugepages::pool_bytes(&hugepages::read_pools(&Host::new(&root)).unwrap()),
        6 << 30
    );
    assert_golden("hugepages-two-sockets-1g", &golden);
}

#[test]
fn two_sockets_required_pools_pass_on_node1_and_fail_on_node0() {
    let root = fixture("two-sockets-1g");
    let ok = "pools = [{ size_bytes = 1073741824, min_total = 4, min_free = 3, numa_node = 1 }, { size_bytes = 2097152, min_total = 1024, min_free = 1000 }]";
    assert_eq!(report(&root, ok).0.status, Status::Ok);
    let bad = "pools = [{ size_bytes = 1073741824, min_total = 4, numa_node = 0 }, { size_bytes = 1073741824, min_free = 4 }]";
    let (r, golden) = report(&root, bad);
    assert_eq!(r.status, Status::Fail);
    assert_eq!(r.findings.len(), 2, "{:?}", r.findings);
    assert_golden("hugepages-two-sockets-1g-required-pools", &golden);
}

#[test]
fn thp_always_warns_and_never_is_informational() {
    let tree = copy_tree(&fixture("two-sockets-1g"));
    let enabled = tree
        .path()
        .join("sys/kernel/mm/transparent_hugepage/enabled");
    std::fs::write(&enabled, "[always] madvise never\n").unwrap();
    let r = run_check(tree.path(), "hugepages", "");
    assert_eq!(r.status, Status::Warn);
    assert!(
        r.summary.contains("`always` (expected `madvise`)"),
        "{}",
        r.summary
    );
    assert_eq!(
        run_check(tree.path(), "hugepages", "thp_expected = \"always\"").status,
        Status::Ok
    );
    std::fs::write(&enabled, "always madvise [never]\n").unwrap();
    assert_eq!(run_check(tree.path(), "hugepages", "").status, Status::Ok);
    std::fs::write(&enabled, "always madvise never\n").unwrap();
    let r = run_check(tree.path(), "hugepages", "");
    assert_eq!(r.status, Status::Unknown);
    assert!(
        r.summary.contains("transparent_hugepage/enabled")
            && r.summary.contains("no [selected] mode"),
        "{}",
        r.summary
    );
}

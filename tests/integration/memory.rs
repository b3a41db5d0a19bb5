//! The `memory` check on the upstream trees and our crafted ones (a nested v2 cgroup, a v1 host
//! without MemAvailable), compared with golden reports; malformed input; OOM kills across rounds.

use checks::check::{Check, Runner};
use checks::host::Host;
use checks::memory::{Memory, Settings};
use gluten_node_tests::*;
use proto::Status;
use std::path::Path;

fn golden(name: &str, root: &Path, settings: &str) -> proto::CheckResult {
    run_check_golden(root, "memory", settings, name)
}

#[test]
fn node_exporter_upstream_without_a_plan_reports_the_host_only() {
    let r = golden(
        "memory/node-exporter-upstream",
        &upstream("node-exporter-upstream"),
        "",
    );
    assert_eq!(r.status, Status::Ok);
    assert!(
        r.summary.contains("no Spark plan configured"),
        "{}",
        r.summary
    );
    // No MemAvailable in this file: the estimate, labelled as such.
    assert_eq!(r.facts["mem_available_estimated"], true);
    assert!(r.summary.contains("(estimated)"), "{}", r.summary);
    assert_eq!(r.facts["oom_kill"], 0);
}

#[test]
fn procfs_upstream_with_an_explicit_plan() {
    // 15666184 kB MemTotal (14.9 GiB); 2 executors of 4g + 384m overhead = 8.8 GiB: ok, with room.
    let r = golden(
        "memory/procfs-upstream",
        &upstream("procfs-upstream"),
        "executors_per_node = 2\n[memory.spark]\n\"spark.executor.memory\" = \"4g\"\n",
    );
    assert_eq!(r.status, Status::Ok, "{}", r.summary);
    assert_eq!(r.facts["planned_bytes"], 2 * (4096 + 409) * 1024 * 1024u64);
    assert!(
        r.facts["cgroup"].is_null(),
        "this tree has no /proc/self/cgroup"
    );
}

#[test]
fn procfs_upstream_psi_above_a_lowered_threshold_warns() {
    // Its /proc/pressure/memory has some avg60=2.00.
    let r = run_check(
        &upstream("procfs-upstream"),
        "memory",
        "psi_some_avg60_warn = 1.5",
    );
    assert_eq!(r.status, Status::Warn);
    assert!(
        r.summary.contains("some avg60 2.00%") && r.summary.contains("1.5%"),
        "{}",
        r.summary
    );
}

#[test]
fn nested_cgroup_v2_finds_the_ancestor_limit_and_fails_the_overcommitted_plan() {
    let r = golden(
        "memory/nested-cgroup-v2",
        &fixture("nested-cgroup-v2"),
        "spark_defaults = \"/opt/spark/conf/spark-defaults.conf\"\nexecutors_per_node = 2\n",
    );
    assert_eq!(r.status, Status::Fail);
    assert_eq!(r.facts["cgroup"]["limit_bytes"], 100u64 << 30);
    assert!(
        r.facts["cgroup"]["limit_file"]
            .as_str()
            .unwrap()
            .ends_with("kubepods-burstable-pod1.slice/memory.max")
    );
    assert_eq!(r.facts["usable_bytes"], 100u64 << 30);
    assert_eq!(r.facts["planned_bytes"], 102u64 << 30);
    // usable - planned - reserve (2 GiB by default)
    assert_eq!(r.facts["headroom_bytes"], -(4i64 << 30));
    assert_eq!(
        r.summary,
        "planned 2 x 51.0 GiB = 102.0 GiB plus `reserve_bytes` 2.0 GiB exceeds usable 100.0 GiB (cgroup limit) by 4.0 GiB"
    );
}

#[test]
fn cgroup_v1_host_without_memavailable_with_a_configured_cgroup() {
    let r = golden(
        "memory/cgroup-v1-no-memavailable",
        &fixture("cgroup-v1-no-memavailable"),
        "cgroup = \"/hadoop-yarn\"\n[memory.spark]\n\
         \"spark.executor.memory\" = \"8g\"\n\"spark.executor.memoryOverhead\" = \"1g\"\n\
         \"spark.memory.offHeap.enabled\" = true\n\"spark.memory.offHeap.size\" = \"16g\"\n",
    );
    assert_eq!(r.status, Status::Warn);
    assert_eq!(r.facts["mem_available_estimated"], true);
    assert_eq!(r.facts["cgroup"]["version"], 1);
    assert_eq!(r.facts["cgroup"]["working_set_bytes"], 45u64 << 30);
    let messages: Vec<&str> = r.findings.iter().map(|f| f.message.as_str()).collect();
    assert!(
        messages
            .iter()
            .any(|m| m.contains("94% of its limit 48.0 GiB")),
        "{messages:?}"
    );
    assert!(
        messages
            .iter()
            .any(|m| m.contains("1.0 GiB is below Gluten's recommended 4.8 GiB")),
        "{messages:?}"
    );
}

#[test]
fn the_agents_own_unlimited_v1_cgroup_is_read_from_proc_self_cgroup() {
    let r = run_check(&fixture("cgroup-v1-no-memavailable"), "memory", "");
    assert_eq!(r.status, Status::Ok, "{}", r.summary);
    assert_eq!(
        r.facts["cgroup"]["path"],
        "/system.slice/nodemanager.service"
    );
    assert!(r.facts["cgroup"]["limit_bytes"].is_null(), "unlimited");
    assert_eq!(r.facts["cgroup"]["usage_bytes"], 402653184u64);
}

#[test]
fn malformed_meminfo_is_unknown_naming_the_file_and_the_line() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("proc")).unwrap();
    std::fs::write(
        dir.path().join("proc/meminfo"),
        "MemTotal:  1000 kB\nMemFree:  lots kB\n",
    )
    .unwrap();
    let r = run_check(dir.path(), "memory", "");
    assert_eq!(r.status, Status::Unknown);
    assert!(
        r.summary.contains("proc/meminfo") && r.summary.contains("line 2"),
        "{}",
        r.summary
    );
}

#[test]
fn a_missing_spark_defaults_file_is_unknown_naming_it() {
    let r = run_check(
        &upstream("node-exporter-upstream"),
        "memory",
        "spark_defaults = \"/etc/spark/conf/spark-defaults.conf\"",
    );
    assert_eq!(r.status, Status::Unknown);
    assert!(
        r.summary.contains("etc/spark/conf/spark-defaults.conf"),
        "{}",
        r.summary
    );
}

#[test]
fn oom_kills_after_the_first_round_warn() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::create_dir_all(root.join("proc")).unwrap();
    std::fs::write(root.join("proc/meminfo"), "MemTotal: 1048576 kB\n").unwrap();
    std::fs::write(root.join("proc/vmstat"), "oom_kill 4\n").unwrap();
    let check = Runner::<Memory>::new(Settings::default());
    let host = Host::new(root);
    let first = check.run(&host).unwrap();
    assert_eq!(
        first.status(),
        Status::Ok,
        "kills before the agent started do not count"
    );
    std::fs::write(root.join("proc/vmstat"), "oom_kill 6\n").unwrap();
    let second = check.run(&host).unwrap();
    assert_eq!(second.status(), Status::Warn);
    assert!(
        second.summary().contains("oom_kill 4 -> 6"),
        "{}",
        second.summary()
    );
}

#[test]
fn huge_page_pool_bytes_agree_with_the_hugepages_check() {
    // memory reads /proc/meminfo `Hugetlb`; hugepages sums the sysfs pools (2 MiB x 1024 and
    // 1 GiB x 4 here): the same memory, counted from two files.
    let root = fixture("two-sockets-1g");
    let memory = run_check(&root, "memory", "");
    let pools = run_check(&root, "hugepages", "");
    assert_eq!(memory.facts["hugepages_pool_source"], "Hugetlb");
    assert_eq!(memory.facts["hugepages_pool_bytes"], 6u64 << 30);
    assert_eq!(
        memory.facts["hugepages_pool_bytes"],
        pools.facts["pool_bytes"]
    );
}

#[test]
fn gluten_plugin_without_off_heap_fails_and_dynamic_sizing_passes() {
    let base = "[memory.spark]\n\"spark.plugins\" = \"org.apache.gluten.GlutenPlugin\"\n";
    let r = run_check(&upstream("procfs-upstream"), "memory", base);
    assert_eq!(r.status, Status::Fail, "{}", r.summary);
    assert!(
        r.summary
            .contains("`spark.memory.offHeap.enabled` is false")
            && r.summary.contains("GlutenPlugin.scala"),
        "{}",
        r.summary
    );
    assert_eq!(r.facts["spark_plan"]["gluten_plugin"], true);
    let dynamic = format!("{base}\"spark.gluten.memory.dynamic.offHeap.sizing.enabled\" = true\n");
    let r = run_check(&upstream("procfs-upstream"), "memory", &dynamic);
    assert_eq!(r.status, Status::Ok, "{}", r.summary);
}

//! Reads stay inside `host_root`, and what a malformed file puts into the report stays small
//! (issue 12, items 5 and 6): a fixture whose kernel files link outside the root must not bring
//! a line of the outside file into the report (the `/health` body and the push are that report),
//! and a 2 MB malformed kernel file gives an error of a few hundred bytes.

use gluten_node_tests::*;
use std::os::unix::fs::symlink;
use std::path::Path;

/// A line only the file outside the root holds.
const SECRET: &str = "root:$6$S3CR3T-HASH-MUST-NOT-LEAK$abc:19000:0:99999:7:::";

/// A small host tree: meminfo and a `spark-defaults.conf`, everything else as the test links it.
fn tree(root: &Path) {
    std::fs::create_dir_all(root.join("proc/pressure")).unwrap();
    std::fs::create_dir_all(root.join("sys/kernel/mm/transparent_hugepage")).unwrap();
    std::fs::create_dir_all(root.join("etc/spark")).unwrap();
    std::fs::write(
        root.join("proc/meminfo"),
        "MemTotal: 16384000 kB\nMemFree: 8192000 kB\nMemAvailable: 12000000 kB\n",
    )
    .unwrap();
}

/// Everything the agent would serve or push about one round: the report (the `/health` body
/// and the push payload) and the gauges (`/metrics`).
fn everything(root: &Path) -> String {
    let c = config(
        root,
        "[memory]\nspark_defaults = \"/etc/spark/spark-defaults.conf\"\n\
         [scratch]\ndirs = [\"/data\"]\nwrite_probe = false\n",
    );
    let s = round(&c, "x86_64");
    format!(
        "{}\n{:?}",
        serde_json::to_string(&s.report).unwrap(),
        s.samples
    )
}

#[test]
fn kernel_files_linking_outside_the_root_never_bring_their_content_into_the_report() {
    let outside = tempfile::tempdir().unwrap();
    let secret = outside.path().join("shadow");
    std::fs::write(&secret, format!("{SECRET}\nbin:*:19000:0:99999:7:::\n")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    tree(root);
    // Absolute links (followed on the real `/` before), a relative one climbing out, and a
    // directory link: each must resolve inside the root, where there is no such file.
    symlink(&secret, root.join("proc/vmstat")).unwrap();
    let up = "../".repeat(root.components().count() + 2);
    let rel = format!(
        "{up}{}",
        secret.display().to_string().trim_start_matches('/')
    );
    symlink(&rel, root.join("proc/pressure/memory")).unwrap();
    symlink(
        &secret,
        root.join("sys/kernel/mm/transparent_hugepage/enabled"),
    )
    .unwrap();
    symlink(&secret, root.join("etc/spark/spark-defaults.conf")).unwrap();
    symlink(outside.path(), root.join("data")).unwrap();
    std::fs::write(outside.path().join("spark-defaults.conf"), SECRET).unwrap();
    symlink(outside.path(), root.join("etc/outside")).unwrap();

    let all = everything(root);
    assert!(!all.contains("S3CR3T"), "the outside file leaked:\n{all}");
    assert!(!all.contains("bin:*"), "the outside file leaked:\n{all}");
}

#[test]
fn a_link_to_the_hosts_own_etc_is_read_inside_the_root() {
    // `/etc/spark/spark-defaults.conf -> /etc/alternatives/spark-defaults.conf`, as on hosts
    // with alternatives: the target is the root's own file, not the agent's.
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    tree(root);
    std::fs::create_dir_all(root.join("etc/alternatives")).unwrap();
    std::fs::write(
        root.join("etc/alternatives/spark-defaults.conf"),
        "spark.executor.memory 2g\n",
    )
    .unwrap();
    symlink(
        "/etc/alternatives/spark-defaults.conf",
        root.join("etc/spark/spark-defaults.conf"),
    )
    .unwrap();
    let c = config(
        root,
        "[memory]\nspark_defaults = \"/etc/spark/spark-defaults.conf\"\n",
    );
    let r = round(&c, "x86_64");
    let memory = r.check("memory").unwrap();
    assert_eq!(
        memory.facts["spark_plan"]["executor_memory_bytes"],
        2u64 << 30,
        "{}",
        memory.summary
    );
}

#[test]
fn a_2mb_malformed_kernel_file_gives_a_short_error() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    tree(root);
    // One 2 MB line that is no `key value` line, with bytes that need escaping.
    let mut junk = String::from("nr_free_pages 1\noom_kill ");
    junk.push_str(&"\u{1b}[31mx\"\\".repeat(2 << 20 >> 3));
    std::fs::write(root.join("proc/vmstat"), &junk).unwrap();
    let c = config(root, "");
    let s = round(&c, "x86_64");
    let memory = s.check("memory").unwrap();
    assert_eq!(memory.status, proto::Status::Unknown, "{}", memory.summary);
    assert!(memory.summary.contains("proc/vmstat"), "{}", memory.summary);
    assert!(memory.summary.contains("line 2"), "{}", memory.summary);
    assert!(
        memory.summary.len() < 512,
        "{} bytes: {}",
        memory.summary.len(),
        &memory.summary[..512]
    );
    assert!(!memory.summary.contains('\u{1b}'), "{}", memory.summary);
    let hugepages = s.check("hugepages").unwrap();
    assert_eq!(
        hugepages.status,
        proto::Status::Unknown,
        "{}",
        hugepages.summary
    );
    assert!(hugepages.summary.len() < 512, "{}", hugepages.summary.len());
    let report = serde_json::to_string(&s.report).unwrap();
    assert!(report.len() < 64 * 1024, "report of {} bytes", report.len());
}

#[test]
fn a_2mb_thp_mode_word_stays_out_of_the_report() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    tree(root);
    std::fs::write(
        root.join("sys/kernel/mm/transparent_hugepage/enabled"),
        format!("always [{}] never\n", "m".repeat(2 << 20)),
    )
    .unwrap();
    let s = round(&config(root, ""), "x86_64");
    let hugepages = s.check("hugepages").unwrap();
    assert_eq!(
        hugepages.status,
        proto::Status::Unknown,
        "{}",
        hugepages.summary
    );
    assert!(
        hugepages.summary.contains("is not a THP mode"),
        "{}",
        hugepages.summary
    );
    assert!(hugepages.summary.len() < 512, "{}", hugepages.summary.len());
    let report = serde_json::to_string(&s.report).unwrap();
    assert!(report.len() < 64 * 1024, "report of {} bytes", report.len());
}
